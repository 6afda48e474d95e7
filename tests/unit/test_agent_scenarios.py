"""Agent test scenarios run in text mode (livekit's ``AgentSession.run`` with ``RunResult``
checks) against the real OpenAI plugin and a scripted LLM whose answers depend on the agent's
instructions: a suite passes on the agent it was written for and fails, naming the scenario and
the check, once the instructions no longer ask for what the suite expects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from stimm.scenarios import ScenarioFileError, ScenarioSuite, parse_scenarios
from stimm.schema import AgentConfig
from testkit.fakes.openai_server import FakeOpenAIServer
from worker.scenarios import run_suite

pytestmark = pytest.mark.unit

HOURS = "The museum is open every Sunday afternoon."
INSTRUCTIONS = (
    "You tell visitors the museum's opening hours and book tickets with the book_ticket tool."
)
BROKEN_INSTRUCTIONS = "You tell visitors about the museum's paintings."

# The scripted LLM answers the hours and books tickets only for an agent instructed to; the
# judge (livekit's check_intent tool) approves only a message that gives the hours.
RULES: list[Any] = [
    ("open", HOURS, "opening hours"),
    ("ticket", {"tool": "book_ticket", "arguments": {"day": "Sunday"}}, "book tickets"),
    (
        "message:\nthe museum is open every sunday",
        {"tool": "check_intent", "arguments": {"success": True, "reason": "gives the hours"}},
    ),
    (
        "intent:",
        {"tool": "check_intent", "arguments": {"success": False, "reason": "no hours given"}},
    ),
]
AFTER_TOOL = [("booked", "Your ticket for Sunday is booked.")]

SUITE = """
scenarios:
  - name: Opening hours
    turns:
      - user: When are you open?
        expect:
          - says: sunday
          - not_says: closed
          - judge: Gives the museum's opening hours
  - name: Ticket booking
    mock_tools:
      book_ticket: {status: booked}
    turns:
      - user: Hello
      - user: I would like a ticket, please.
        expect:
          - calls: {name: book_ticket, arguments: {day: Sunday}}
          - not_calls: end_call
          - says: is booked
"""


@pytest.fixture
async def llm_url() -> AsyncIterator[str]:
    async with FakeOpenAIServer(RULES, "Sorry, I cannot help.", after_tool=AFTER_TOOL) as s:
        yield s.base_url


def agent(llm_url: str, instructions: str) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "name": "Museum guide",
            "instructions": instructions,
            "llm": [{"provider": "openai", "model": "scripted", "options": {"base_url": llm_url}}],
            "tools": [
                {
                    "type": "webhook",
                    "name": "book_ticket",
                    "description": "Books a ticket for a day.",
                    "parameters": {
                        "type": "object",
                        "properties": {"day": {"type": "string"}},
                    },
                    "url": "https://tickets.example/book",
                },
                {"type": "end_call"},
            ],
        }
    )


async def test_the_suite_passes_on_the_agent_it_was_written_for(llm_url: str) -> None:
    result = await run_suite(agent(llm_url, INSTRUCTIONS), parse_scenarios(SUITE))

    assert result.passed, result.model_dump_json(indent=2)
    hours, booking = result.scenarios
    assert [c.check for c in hours.checks] == [
        'says "sunday"',
        'not says "closed"',
        'judge "Gives the museum\'s opening hours"',
    ]
    assert [c.check for c in booking.checks] == [
        'calls book_ticket with {"day": "Sunday"}',
        "not calls end_call",
        'says "is booked"',
    ]
    assert all(c.passed and c.turn == 2 for c in booking.checks)
    # the mock answered instead of the webhook, and the agent read its answer
    assert 'tool result: {"status": "booked"}' in booking.transcript
    assert booking.transcript[-1] == "agent: Your ticket for Sunday is booked."


async def test_broken_instructions_fail_naming_the_scenario_and_the_check(llm_url: str) -> None:
    result = await run_suite(agent(llm_url, BROKEN_INSTRUCTIONS), parse_scenarios(SUITE))

    assert not result.passed
    hours, booking = result.scenarios
    assert (hours.name, hours.passed) == ("Opening hours", False)
    failed = hours.failed_check
    assert failed is not None
    assert (failed.turn, failed.check) == (1, 'says "sunday"')
    assert failed.detail == 'the agent said "Sorry, I cannot help."'
    assert (booking.name, booking.passed) == ("Ticket booking", False)
    failed = booking.failed_check
    assert failed is not None
    assert (failed.turn, failed.check) == (2, 'calls book_ticket with {"day": "Sunday"}')
    assert "No FunctionCallEvent" in (failed.detail or "")


async def test_a_judge_that_disagrees_fails_the_check(llm_url: str) -> None:
    suite = parse_scenarios(
        """
scenarios:
  - name: Paintings
    turns:
      - user: Which paintings do you have?
        expect:
          - says: sorry
          - judge: Names a painting
"""
    )
    result = await run_suite(agent(llm_url, INSTRUCTIONS), suite)

    checks = result.scenarios[0].checks
    assert [c.passed for c in checks] == [True, False]
    assert "Judgement failed: no hours given" in (checks[1].detail or "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scenarios: [\n  - name: a\n   turns: x", "not valid YAML: line 2, column 3"),
        ("- just a list", "must be a mapping"),
        ("scenarios: []", "scenarios: List should have at least 1 item"),
        (
            "scenarios:\n  - name: a\n    turns:\n      - user: hi\n        expect:\n"
            "          - says: x\n            calls: y\n",
            "scenarios[0].turns[0].expect[0]: a check has exactly one of says, not_says, "
            "calls, not_calls, judge (got says, calls)",
        ),
        (
            "scenarios:\n  - {name: a, turns: [{user: hi}]}\n  - {name: a, turns: [{user: hi}]}",
            "two scenarios are named 'a'",
        ),
        (
            "judge_llm: {provider: openai, options: {api_key: sk-1}}\n"
            "scenarios: [{name: a, turns: [{user: hi}]}]",
            'must be a {"secret": NAME} reference',
        ),
    ],
)
def test_a_bad_file_is_refused_saying_where(text: str, message: str) -> None:
    with pytest.raises(ScenarioFileError) as e:
        parse_scenarios(text)
    assert message in str(e.value)


def test_a_good_file_reads_back_as_written() -> None:
    suite = parse_scenarios(SUITE)
    assert isinstance(suite, ScenarioSuite)
    assert [s.name for s in suite.scenarios] == ["Opening hours", "Ticket booking"]
    assert suite.scenarios[1].mock_tools == {"book_ticket": {"status": "booked"}}
