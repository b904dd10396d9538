"""Speech ports: speech to text and text to speech (adapters: faster-whisper, Piper, espeak-ng)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a recording said."""

    text: str
    language: str
    duration_s: float  # length of the audio
    seconds: float  # time the recognition took


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A piece of synthesized speech: 16-bit little-endian mono PCM at ``sample_rate``."""

    pcm: bytes
    sample_rate: int


@runtime_checkable
class SpeechToText(Protocol):
    """Recognises speech in audio."""

    name: str

    def transcribe(self, audio: bytes, *, mime: str = "audio/wav") -> Transcript:
        """Text of a recording (WAV, or any format the adapter can decode); raise
        DocumentError for audio it cannot read."""
        ...


@runtime_checkable
class TextToSpeech(Protocol):
    """Turns text into speech, streamed in chunks."""

    name: str
    sample_rate: int

    def synthesize(self, text: str) -> Iterator[AudioChunk]:
        """Speech for ``text``, sentence by sentence, as soon as each is ready."""
        ...
