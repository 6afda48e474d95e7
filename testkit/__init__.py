"""What the tests and the benchmarks both drive Stimm with, imported by both.

- ``testkit.fakes``: small local servers speaking the protocols of the paid APIs (OpenAI's chat
  completions, Deepgram's and ElevenLabs' speech), MCP and OTLP, so the real plugin and client
  code paths run against them.
- The test caller: ``caller`` (a LiveKit participant that speaks and listens), ``audio``
  (offline speech: Piper to say, Whisper to hear), ``rtp`` and ``sipp`` (a SIP peer), and
  ``faults`` (calls through toxiproxy faults).

Test-only helpers (the ``stimm dev`` process, recordings, voicemail audio) stay in
``tests/support``.
"""
