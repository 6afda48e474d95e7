"""One inference process per worker serves Whisper and Piper to every call (worker/inference.py).

The shared stack's worker runs that design (it is the default): four concurrent callers each hear
the answer to their own question, and killing the inference process costs no later turn.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stimm.stack import LocalStack
from testkit.audio import synthesize, transcribe
from testkit.caller import Caller
from testkit.fakes.openai_server import serve_in_process
from tests.e2e.test_roundtrip import agent_body, wait_for_session

pytestmark = pytest.mark.e2e

# question -> (its answer, the words that tell that answer from the others, as Whisper hears it)
CALLS = {
    "How much is a ticket?": ("A ticket costs twelve euros.", r"ticket|twelve|12|euro"),
    "Where is the cafe?": ("The cafe is on the second floor.", r"caf|floor"),
    "Can I bring my dog?": ("Dogs are welcome in the garden.", r"dog|garden"),
    "When is the museum open?": ("The museum is open every Sunday afternoon.", r"museum|sunday"),
}
# each question by more than one of its words: four Whispers at once on two cores mishear some
KEYS = {
    "How much is a ticket?": ("ticket", "how much"),
    "Where is the cafe?": ("caf", "where"),
    "Can I bring my dog?": ("dog", "bring"),
    "When is the museum open?": ("open", "when"),
}
RULES = [
    {"match": key, "reply": CALLS[question][0]} for question, keys in KEYS.items() for key in keys
]


@pytest.fixture(scope="module")
def desk_llm_url(run_dir: Path) -> Iterator[str]:
    with serve_in_process(run_dir / "logs", rules=RULES, reply="Sorry, I did not get that.") as url:
        yield url


def desk_agent(llm_url: str) -> dict[str, object]:
    # one short sentence: four greetings synthesized at once never reach a caller in pieces
    return agent_body(llm_url, name="Museum desk", greeting="Welcome to the museum desk.")


async def start_session(http: httpx.AsyncClient, agent_id: str) -> dict[str, str]:
    """A session, once the worker has a free slot (an earlier test's calls may still be ending)."""
    deadline = time.monotonic() + 90
    while True:
        resp = await http.post("/api/sessions", json={"agent_id": agent_id})
        if resp.status_code != 503 or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    assert resp.status_code == 201, resp.text
    body: dict[str, str] = resp.json()
    return body


async def hear_greeting(caller: Caller) -> None:
    """Wait until the caller has heard the whole greeting: on a saturated machine the room may
    carry a blip before it, or deliver it in two parts."""
    deadline = time.monotonic() + 120
    heard: list[str] = []
    while not any(re.search(r"museum|desk", h) for h in heard):
        try:
            utterance = await caller.next_utterance(
                timeout=deadline - time.monotonic(), silence_s=2.5
            )
        except TimeoutError:
            # a silent agent (every frame heard is zero) is not a missing one
            raise AssertionError(
                f"no greeting heard, only {heard}; agent in the room: "
                f"{caller.agent_joined.is_set()}, loudest rms heard: {caller.loudest():.0f}"
            ) from None
        heard.append(await asyncio.to_thread(transcribe, utterance.pcm))


async def call(http: httpx.AsyncClient, agent_id: str, question: str) -> tuple[str, str]:
    """One call: wait for the greeting, ask ``question``; what the caller heard, and the
    session's id."""
    sess = await start_session(http, agent_id)
    caller = Caller()
    await caller.join(sess["livekit_url"], sess["token"])
    try:
        await hear_greeting(caller)
        await caller.say(await asyncio.to_thread(synthesize, question))
        # the first words heard after the question (a blip that transcribes to nothing is not)
        deadline = time.monotonic() + 90
        while True:
            utterance = await caller.next_utterance(timeout=deadline - time.monotonic())
            heard = await asyncio.to_thread(transcribe, utterance.pcm)
            if re.search(r"\w", heard):
                return heard, sess["session_id"]
    finally:
        await caller.leave()


async def test_four_concurrent_callers_each_hear_their_own_answer(
    stack: LocalStack, desk_llm_url: str
) -> None:
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=60
    ) as http:
        agent = (await http.post("/api/agents", json=desk_agent(desk_llm_url))).json()
        heard = await asyncio.gather(*(call(http, agent["id"], q) for q in CALLS))
        for (question, (_, own)), (answer, session_id) in zip(CALLS.items(), heard, strict=True):
            # what the agent transcribed, to tell its hearing from the caller's
            record = (await http.get(f"/api/sessions/{session_id}")).json()
            agent_heard = [t["text"] for t in record.get("turns", []) if t["role"] == "user"]
            assert re.search(own, answer), (question, answer, agent_heard)
            others = [words for q, (_, words) in CALLS.items() if q != question]
            assert not any(re.search(words, answer) for words in others), (
                question,
                answer,
                agent_heard,
            )


def inference_pid(log: str) -> int:
    pids = re.findall(r"inference process (\d+) ready", log)
    assert pids, "the worker logged no inference process"
    return int(pids[-1])


async def test_a_killed_inference_process_is_replaced_and_the_next_turn_answered(
    stack: LocalStack, desk_llm_url: str
) -> None:
    worker = stack.workers[0]
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=60
    ) as http:
        agent = (await http.post("/api/agents", json=desk_agent(desk_llm_url))).json()
        sess = await start_session(http, agent["id"])
        caller = Caller()
        await caller.join(sess["livekit_url"], sess["token"])
        try:
            await hear_greeting(caller)
            crashed = inference_pid(worker.log_tail(5000))
            os.kill(crashed, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while inference_pid(worker.log_tail(5000)) == crashed:
                assert time.monotonic() < deadline, "no new inference process within 60 s"
                await asyncio.sleep(0.5)

            # the same call goes on: its next turn is transcribed and spoken by the new process
            await caller.say(synthesize("Can I bring my dog?"))
            answer = await asyncio.to_thread(
                transcribe, (await caller.next_utterance(timeout=90)).pcm
            )
            assert "garden" in answer, answer
        finally:
            await caller.leave()
        record = await wait_for_session(http, sess["session_id"], {"completed", "failed"})
    assert record["status"] == "completed", record
    assert worker.alive()
