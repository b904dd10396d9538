"""Helpers of the speech tests: word error rate and browser-style Opus recordings."""

from __future__ import annotations

import io
import re
import wave

import numpy as np


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (``Fox,`` and ``fox`` are the same word)."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / words of ``reference`` (Levenshtein)."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return float(bool(hyp))
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[len(hyp)] / len(ref)


def read_wav(data: bytes) -> tuple[bytes, int, int]:
    """PCM, sample rate and sample width of a mono WAV."""
    with wave.open(io.BytesIO(data), "rb") as w:
        assert w.getnchannels() == 1
        return w.readframes(w.getnframes()), w.getframerate(), w.getsampwidth()


def opus_recording(pcm: bytes, rate: int, container: str = "webm") -> bytes:
    """16-bit mono PCM encoded as a browser records it: Opus at 48 kHz in WebM or Ogg."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
