"""Speech in the chat: cutting the microphone stream into utterances, and the sample rate
conversions between the browser, speech to text and text to speech.

The browser streams 16-bit mono PCM while the microphone is on. ``Utterances`` finds the
end of each thing said by its energy (speech, then a pause), so every utterance is
transcribed and answered while the conversation goes on. Speech synthesized at the voice's
own rate is resampled to the rate of the browser's player.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from xnai.domain.voice import AudioChunk

SAMPLE_WIDTH = 2  # 16-bit PCM
#: The rate of the browser's microphone stream and player (the chat's audio setting).
AUDIO_SAMPLE_RATE = 24000
UNAVAILABLE = (
    "Speech is not available on this server (the voice extra or its models are not "
    "installed): type your question instead."
)


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """16-bit mono PCM at another sample rate (linear interpolation)."""
    if from_rate == to_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32)
    count = max(1, round(len(samples) * to_rate / from_rate))
    positions = np.linspace(0, len(samples) - 1, count)
    out = np.interp(positions, np.arange(len(samples)), samples)
    return np.clip(np.round(out), -32768, 32767).astype("<i2").tobytes()


def speech_at(chunks: Iterable[AudioChunk], rate: int) -> Iterator[bytes]:
    """Synthesized speech as PCM at ``rate`` (what the browser's player expects)."""
    for chunk in chunks:
        if chunk.pcm:
            yield resample(chunk.pcm, chunk.sample_rate, rate)


def level(pcm: bytes) -> float:
    """Root mean square of 16-bit PCM, 0 to 1."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32)
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples / 32768.0))))


@dataclass
class Utterances:
    """Collects microphone PCM; ``add`` returns an utterance's PCM once its speaker pauses.

    Speech is sound above ``threshold`` (RMS, 0..1); an utterance ends after ``pause_s`` of
    quiet following at least ``min_speech_s`` of speech, or when it reaches ``max_s``.
    """

    sample_rate: int
    threshold: float = 0.02
    pause_s: float = 0.8
    min_speech_s: float = 0.25
    max_s: float = 60.0
    _buffer: bytearray = field(default_factory=bytearray)
    _speech_s: float = 0.0
    _quiet_s: float = 0.0

    def add(self, pcm: bytes) -> bytes | None:
        """Take a piece of the stream; the whole utterance when this piece ended one."""
        seconds = len(pcm) / (SAMPLE_WIDTH * self.sample_rate)
        loud = level(pcm) >= self.threshold
        if not loud and self._speech_s == 0:
            # Keep a little quiet before speech, so its first syllable is not cut.
            self._buffer = (self._buffer + pcm)[-int(0.3 * self.sample_rate) * SAMPLE_WIDTH :]
            return None
        self._buffer += pcm
        if loud:
            self._speech_s += seconds
            self._quiet_s = 0.0
        else:
            self._quiet_s += seconds
        if self._quiet_s >= self.pause_s or self.seconds >= self.max_s:
            return self.flush()  # None after a click too short to be speech
        return None

    def flush(self) -> bytes | None:
        """The utterance collected so far (None when nobody spoke), and start afresh."""
        spoke = self._speech_s >= self.min_speech_s
        pcm = bytes(self._buffer)
        self._buffer = bytearray()
        self._speech_s = self._quiet_s = 0.0
        return pcm if spoke else None

    @property
    def seconds(self) -> float:
        """Length of the audio collected, seconds."""
        return len(self._buffer) / (SAMPLE_WIDTH * self.sample_rate)
