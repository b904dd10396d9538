"""Speech adapters without models: text is encoded into PCM and decoded back exactly.

Each UTF-8 byte of the text becomes a short run of samples of one level, so the fake
speech of a text transcribes to that very text: a deterministic round trip for tests.
"""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator

import numpy as np

from xnai.domain.errors import DocumentError
from xnai.domain.voice import AudioChunk, Transcript

SAMPLE_RATE = 16000
RUN = 960  # samples per byte: 60 ms, so a text lasts about as long as when spoken
STEP = 64  # level of byte b is (b + 1) * STEP; 0 is silence


class CodedTextToSpeech:
    """The ``TextToSpeech`` port: one chunk per non-empty line of the text."""

    name = "coded-speech"
    sample_rate = SAMPLE_RATE

    def synthesize(self, text: str) -> Iterator[AudioChunk]:
        """Coded speech for each line of ``text`` (nothing for blank text)."""
        for line in text.splitlines():
            if line.strip():
                yield AudioChunk(encode(line.strip() + " "), self.sample_rate)


class CodedSpeechToText:
    """The ``SpeechToText`` port: reads a 16-bit mono WAV of coded speech back as text."""

    name = "coded-speech"

    def transcribe(self, audio: bytes, *, mime: str = "audio/wav") -> Transcript:
        """The text coded in ``audio``; DocumentError when it is not a 16-bit mono WAV."""
        started = time.perf_counter()
        pcm, rate = _read_wav(audio)
        text = " ".join(decode(pcm).split())
        duration = len(pcm) / 2 / rate
        return Transcript(text, "en", duration, time.perf_counter() - started)


def encode(text: str) -> bytes:
    """16-bit PCM of ``text``: one run of ``RUN`` samples per UTF-8 byte."""
    levels = (np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int16) + 1) * STEP
    return np.repeat(levels, RUN).astype("<i2").tobytes()


def decode(pcm: bytes) -> str:
    """The text of coded PCM; silence and levels between codes are skipped."""
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % (2 * RUN)], dtype="<i2")
    levels = np.median(samples.reshape(-1, RUN), axis=1) if samples.size else samples
    codes = np.rint(np.asarray(levels, dtype=np.float64) / STEP).astype(np.int64) - 1
    data = bytes(int(c) for c in codes if 0 <= c <= 255)
    return data.decode("utf-8", "replace")


def _read_wav(audio: bytes) -> tuple[bytes, int]:
    try:
        with wave.open(io.BytesIO(audio), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise DocumentError("coded speech is 16-bit mono WAV only")
            return w.readframes(w.getnframes()), w.getframerate()
    except (wave.Error, EOFError) as exc:
        raise DocumentError(f"not a WAV recording: {exc}") from None
