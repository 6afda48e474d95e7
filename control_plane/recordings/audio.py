"""What an uploaded recording holds, read with PyAV (FFmpeg): refuse anything but Ogg/Opus."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av


class NotARecording(ValueError):
    """The file is not an Ogg/Opus recording (the message says why)."""


@dataclass(frozen=True)
class AudioInfo:
    duration_s: float
    channels: int


def probe(path: Path) -> AudioInfo:
    """Duration and channel count of an Ogg/Opus file; raises ``NotARecording`` otherwise."""
    try:
        with av.open(str(path), format="ogg") as container:
            streams = container.streams.audio
            if len(streams) != 1 or streams[0].codec_context.name != "opus":
                raise NotARecording("the file must hold one Opus audio stream")
            stream = streams[0]
            channels = stream.codec_context.channels
            if container.duration is not None:
                duration = container.duration / av.time_base
            elif stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                raise NotARecording("the file's duration cannot be read")
    except av.error.FFmpegError as e:
        raise NotARecording("the file is not an Ogg/Opus recording") from e
    if duration <= 0:
        raise NotARecording("the recording is empty")
    return AudioInfo(duration_s=duration, channels=channels)
