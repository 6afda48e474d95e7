"""Extraction in a child process with a memory limit and a timeout: a document that unpacks to
gigabytes, or parses for minutes, costs that child and never the control plane.

The child is a fresh interpreter (``python -m control_plane.knowledge.sandbox``): the document
comes on its stdin, its chunks or the reason it failed go back as JSON on its stdout. A fresh
interpreter rather than a fork, so no thread of the control plane (uvicorn, asyncio's executor,
the embedding model) is ever forked, and nothing of the parent's memory is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import resource
import sys
from pathlib import Path
from typing import Any, get_args

from control_plane.knowledge import errors
from control_plane.knowledge.errors import DocumentTooLarge, KnowledgeError
from control_plane.knowledge.extraction import DocumentFormat, ExtractionLimits, extract_chunks

_OUT_OF_MEMORY = 3
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])


async def extract_chunks_isolated(
    fmt: DocumentFormat, data: bytes, *, size: int, overlap: int, limits: ExtractionLimits
) -> list[str]:
    """``extract_chunks`` in a child process; past the memory or time limit (or if the child
    dies) it raises ``DocumentTooLarge`` with the reason, and the child is killed."""
    job = {"format": fmt, "size": size, "overlap": overlap, "limits": dataclasses.asdict(limits)}
    python_path = os.pathsep.join(filter(None, [_SOURCE_ROOT, os.environ.get("PYTHONPATH")]))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        json.dumps(job),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": python_path},
    )
    try:
        async with asyncio.timeout(limits.timeout_s):
            out, err = await child.communicate(data)
    except TimeoutError:
        raise DocumentTooLarge(f"Extraction took longer than {limits.timeout_s:g} s") from None
    finally:
        # Also on cancellation (the document was deleted): the child must not outlive this.
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
    if child.returncode == _OUT_OF_MEMORY:
        raise DocumentTooLarge(f"Extraction needed more than {limits.memory_mb} MB of memory")
    if child.returncode != 0:
        last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise DocumentTooLarge(
            f"Extraction stopped unexpectedly (exit code {child.returncode}: {last[:200]})"
        )
    result: dict[str, Any] = json.loads(out)
    if "error" in result:
        error_type = getattr(errors, result["error"], KnowledgeError)
        raise error_type(result["message"])
    return list(result["chunks"])


def _main() -> None:
    job = json.loads(sys.argv[1])
    limits = ExtractionLimits(**job["limits"])
    memory = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # Ends the child even if the control plane was killed and can no longer time it out.
    cpu_s = int(limits.timeout_s) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    fmt = job["format"]
    if fmt not in get_args(DocumentFormat):
        raise SystemExit(f"unknown format {fmt!r}")
    data = sys.stdin.buffer.read()
    result: dict[str, Any]
    try:
        chunks = extract_chunks(fmt, data, size=job["size"], overlap=job["overlap"], limits=limits)
        result = {"chunks": chunks}
    except KnowledgeError as e:
        result = {"error": type(e).__name__, "message": str(e)}
    except MemoryError:
        os._exit(_OUT_OF_MEMORY)
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    _main()
