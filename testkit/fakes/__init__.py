"""Local servers speaking the protocols of the services Stimm talks to (``testkit``)."""
