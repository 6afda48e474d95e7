"""Agents' test scenarios: stored per agent, run out of process by ``worker.scenarios``."""
