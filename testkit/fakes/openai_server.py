"""A small OpenAI-compatible chat completions server with scripted answers, for tests.

The real ``livekit.plugins.openai.LLM`` talks to it over HTTP, so the plugin's own streaming
code runs. Answers are chosen by rules: the first rule whose ``match`` occurs in the last user
message (case-insensitive) gives the reply; otherwise the default reply. A rule with a third
element (``"instructions"`` in JSON) applies only when the agent's instructions (the first
system message) contain it too, so an answer can depend on how the agent was instructed.
Every request body is kept in ``requests`` so a test can look at what the LLM was given.

In-process::

    async with FakeOpenAIServer([("book", "For how many people?")]) as server:
        llm = openai.LLM(model="fake", base_url=server.base_url, api_key="test")

As a process (prints its base URL as the first line of stdout)::

    python -m testkit.fakes.openai_server --port 0 --reply "Hello." --rules rules.json

where ``rules.json`` is ``[{"match": "book", "reply": "For how many people?"}]``.

Beyond plain replies:

- ``mode="fail"`` answers every request with HTTP 500, ``mode="hang"`` never answers (``--fail``
  / ``--hang``): an LLM endpoint that is down, for failover tests.
- A rule whose reply is ``{"tool": name, "arguments": {...}}`` streams a ``tool_calls`` delta
  instead of text; with ``"say": text`` as well, the text streams first, then the call (what
  a model does when it says "I am transferring you" and transfers). Once the conversation ends
  with the tool's result, the first ``after_tool`` pair whose substring occurs in the result
  gives the reply; without one, the reply is ``TOOL_RESULT_PREFIX`` followed by that result.
- ``{context}`` in a reply is replaced by the text of every system message after the first
  (the context the agent added for this turn), so a test can see what the LLM was given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

DEFAULT_REPLY = "I am a scripted test assistant."
TOOL_RESULT_PREFIX = "The tool answered: "

Mode = Literal["ok", "fail", "hang"]
Reply = str | dict[str, Any]
"""Text, or ``{"tool": name, "arguments": {...}, "say": optional text}`` for a tool call."""
Rule = tuple[str, Reply] | tuple[str, Reply, str]
"""``(match, reply)``, or ``(match, reply, instructions)``: also needs that in the instructions."""


class FakeOpenAIServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1 with scripted replies.

    Args:
        rules: ``(substring, reply)`` pairs, tried in order against the last user message;
            ``(substring, reply, instructions)`` needs ``instructions`` in the first system
            message as well.
        default_reply: The reply when no rule matches.
        host: Interface to listen on.
        port: Port to listen on; 0 picks a free one.
        chunk_delay: Seconds to wait between streamed chunks (to simulate a slow model).
        mode: ``ok``; ``fail`` (HTTP 500 to everything) or ``hang`` (never answers).
        after_tool: ``(substring, reply)`` pairs, tried in order against a tool's result.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        default_reply: str = DEFAULT_REPLY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        chunk_delay: float = 0.0,
        mode: Mode = "ok",
        after_tool: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.rules: list[Rule] = list(rules)
        self.after_tool: list[tuple[str, str]] = list(after_tool)
        self.mode: Mode = mode
        self._released = asyncio.Event()
        self.default_reply = default_reply
        self.requests: list[dict[str, Any]] = []
        self._host = host
        self._port = port
        self._chunk_delay = chunk_delay
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``; only valid once started."""
        if self._base_url is None:
            raise RuntimeError("server not started")
        return self._base_url

    async def start(self) -> str:
        """Start listening and return the base URL (ending in ``/v1``)."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self._base_url = f"http://{self._host}:{port}/v1"
        return self._base_url

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAIServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def reply_for(self, body: dict[str, Any]) -> Reply:
        """The scripted reply for one chat completions request body."""
        messages = body.get("messages", [])
        if messages and messages[-1].get("role") == "tool":
            result = last_text(messages[-1])
            for match, answer in self.after_tool:
                if match.lower() in result.lower():
                    return answer
            return TOOL_RESULT_PREFIX + result
        text = last_user_text(messages).lower()
        system = [last_text(m) for m in messages if m.get("role") in ("system", "developer")]
        instructions = system[0].lower() if system else ""
        reply: Reply = self.default_reply
        for rule in self.rules:
            match, candidate = rule[0], rule[1]
            needs = rule[2].lower() if len(rule) == 3 else ""
            if match.lower() in text and needs in instructions:
                reply = candidate
                break
        if isinstance(reply, str) and "{context}" in reply:
            reply = reply.replace("{context}", " ".join(system[1:]))
        return reply

    @property
    def user_messages(self) -> list[str]:
        """The last user message of every request received, in order."""
        return [last_user_text(r.get("messages", [])) for r in self.requests]

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": "fake", "object": "model", "created": 0, "owned_by": "stimm"}],
            }
        )

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": {"message": "invalid JSON"}}, status=400)
        self.requests.append(body)
        if self.mode == "fail":
            return web.json_response({"error": {"message": "scripted outage"}}, status=500)
        if self.mode == "hang":
            await self._released.wait()  # until the client gives up, or the server stops
            return web.json_response({"error": {"message": "shutting down"}}, status=503)
        scripted = self.reply_for(body)
        tool_call = scripted if isinstance(scripted, dict) else None
        reply = scripted if isinstance(scripted, str) else ""
        model = str(body.get("model", "fake"))
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        prompt_tokens = sum(len(last_text(m).split()) for m in body.get("messages", []))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(reply.split()),
            "total_tokens": prompt_tokens + len(reply.split()),
        }

        if not body.get("stream"):
            if tool_call is not None:
                return web.json_response(
                    {"error": {"message": "tool calls are only scripted when streaming"}},
                    status=400,
                )
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )

        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }

        events: list[dict[str, Any]] = [chunk({"role": "assistant", "content": ""})]
        if tool_call is not None:
            events += [chunk({"content": piece}) for piece in split_reply(tool_call.get("say", ""))]
            call = {
                "index": 0,
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {
                    "name": str(tool_call["tool"]),
                    "arguments": json.dumps(tool_call.get("arguments", {})),
                },
            }
            events += [chunk({"tool_calls": [call]}), chunk({}, finish_reason="tool_calls")]
        else:
            events += [chunk({"content": piece}) for piece in split_reply(reply)]
            events.append(chunk({}, finish_reason="stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        for event in events:
            if self._chunk_delay:
                await asyncio.sleep(self._chunk_delay)
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def split_reply(reply: str) -> list[str]:
    """Split a reply into word-sized deltas that concatenate back to it exactly."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", reply)


def last_text(message: dict[str, Any]) -> str:
    """The text of one chat message, whether its content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def last_user_text(messages: Sequence[dict[str, Any]]) -> str:
    """The text of the last ``user`` message, or ``""``."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return last_text(message)
    return ""


def load_rules(path: str | Path) -> list[Rule]:
    """Read ``[{"match": "...", "reply": "..." or {"tool": ..., "arguments": ...}}]``, each
    with an optional ``"instructions"``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rules: list[Rule] = []
    for rule in data:
        match = str(rule["match"])
        reply = rule["reply"] if isinstance(rule["reply"], dict) else str(rule["reply"])
        if "instructions" in rule:
            rules.append((match, reply, str(rule["instructions"])))
        else:
            rules.append((match, reply))
    return rules


@contextlib.contextmanager
def serve_in_process(
    log_dir: Path,
    *,
    rules: Sequence[dict[str, Any]] = (),
    reply: str = DEFAULT_REPLY,
) -> Iterator[str]:
    """This server in a process of its own, so other processes (workers) can reach it.

    Yields its base URL (``http://127.0.0.1:<port>/v1``) once it answers; stops it on exit.
    """
    from stimm.stack import ManagedProcess
    from stimm.stack.process import free_port, http_ok

    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "testkit.fakes.openai_server", "--port", str(port := free_port())]
    if rules:
        rules_file = log_dir / f"llm-rules-{port}.json"
        rules_file.write_text(json.dumps(list(rules)))
        argv += ["--rules", str(rules_file)]
    proc = ManagedProcess(
        "fake-llm", [*argv, "--reply", reply], log_dir=log_dir, cwd=Path(__file__).parents[2]
    )
    proc.start()
    try:
        url = f"http://127.0.0.1:{port}/v1"
        proc.wait_ready(lambda: http_ok(f"{url}/models"), timeout=30)
        yield url
    finally:
        proc.stop()


async def _serve(args: argparse.Namespace) -> None:
    rules = load_rules(args.rules) if args.rules else []
    mode: Mode = "fail" if args.fail else "hang" if args.hang else "ok"
    server = FakeOpenAIServer(
        rules,
        args.reply,
        host=args.host,
        port=args.port,
        chunk_delay=args.chunk_delay,
        mode=mode,
    )
    base_url = await server.start()
    print(base_url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server until SIGINT/SIGTERM, printing its base URL first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="reply when no rule matches")
    parser.add_argument("--rules", help='JSON file: [{"match": "...", "reply": "..."}]')
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    outage = parser.add_mutually_exclusive_group()
    outage.add_argument("--fail", action="store_true", help="answer every request with HTTP 500")
    outage.add_argument("--hang", action="store_true", help="accept requests, never answer")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
