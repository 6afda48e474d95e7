"""What the scripted LLM answers the tests' and benchmarks' museum-guide agent, keyed by a word
the (transcribed) user turn contains (``openai_server`` rules)."""

from __future__ import annotations

from typing import Any

LLM_RULES: list[dict[str, Any]] = [
    # the MCP tool of testkit.fakes.mcp_server; its answer is read out after "The tool answered:".
    # "planet": Whisper tiny, given the caller's Opus audio on a busy machine, heard the asked
    # "planetarium" as "planetary and" or "planetary ensure" in 2 of 6 runs (the turn whole)
    {
        "match": "planet",
        "reply": {"tool": "planetarium_hours", "arguments": {"day": "Sunday"}},
    },
    {"match": "museum", "reply": "The museum is open every Sunday afternoon."},
    # the post-call analysis of a call that mentions it (tests/e2e/test_web_post_call.py)
    {
        "match": "dishwasher",
        "reply": '{"summary": "Ada reported a leaking dishwasher.", "caller_name": "Ada", '
        '"resolved": false}',
    },
    {"match": "open", "reply": "The museum is open every Sunday afternoon."},
]
LLM_DEFAULT_REPLY = "Sorry, I only know about the museum."
