"""Stereo Ogg/Opus files for the recording tests: write one, and read one back per channel."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from testkit.audio import SAMPLE_RATE


def write_ogg(path: Path, left: NDArray[np.int16], right: NDArray[np.int16]) -> Path:
    """Encode two 48 kHz mono signals as the left and right channels of an Ogg/Opus file."""
    n = max(len(left), len(right))
    block = np.zeros((2, n), dtype=np.float32)
    block[0, : len(left)] = left / 32768.0
    block[1, : len(right)] = right / 32768.0
    with av.open(str(path), mode="w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=SAMPLE_RATE, layout="stereo")
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def read_ogg(path: Path) -> tuple[NDArray[np.int16], NDArray[np.int16]]:
    """The decoded left and right channels of a stereo Ogg/Opus file, 48 kHz int16."""
    chunks: list[NDArray[np.float32]] = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.channels == 2, "the recording is not stereo"
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().astype(np.float32))
    both = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), dtype=np.float32)
    pcm = (np.clip(both, -1.0, 1.0) * 32767).astype(np.int16)
    return pcm[0], pcm[1]
