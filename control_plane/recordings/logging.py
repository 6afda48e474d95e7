"""Keep signed recording URLs out of the access log: within their lifetime they open the audio
to whoever reads the log."""

from __future__ import annotations

import logging

AUDIO_PATH = "/api/recordings/"


class _HideSignature(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn.access: (client, method, path with query, http version, status)
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = args[2]
            if path.startswith(AUDIO_PATH) and "?" in path:
                record.args = (*args[:2], path.split("?", 1)[0] + "?…", *args[3:])
        return True


_FILTER = _HideSignature()


def hide_signed_urls() -> None:
    """Install the filter on uvicorn's access logger (once per process)."""
    logger = logging.getLogger("uvicorn.access")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
