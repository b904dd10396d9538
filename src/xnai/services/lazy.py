"""Heavy components (chat model, speech to text, text to speech) loaded on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from xnai.domain.models import ChatMessage
from xnai.domain.ports import ChatModel
from xnai.domain.voice import AudioChunk, SpeechToText, TextToSpeech, Transcript

T = TypeVar("T")


class _Lazy(Generic[T]):
    """Builds a heavy object on first use, once, even from several threads."""

    def __init__(self, factory: Callable[[], T], name: str) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()
        self.name = name  # the configured name until loaded, then the loaded one's

    @property
    def loaded(self) -> bool:
        """Whether the object is built."""
        return self._value is not None

    def load(self) -> T:
        """Build (once) and return the object."""
        if self._value is None:
            with self._lock:
                if self._value is None:
                    value = self._factory()
                    self.name = str(getattr(value, "name", self.name))
                    self._value = value
        return self._value


class LazySpeechToText(_Lazy[SpeechToText]):
    """Speech to text whose model loads on the first transcription."""

    def transcribe(self, audio: bytes, *, mime: str = "audio/wav") -> Transcript:
        """Transcribe with the loaded model."""
        return self.load().transcribe(audio, mime=mime)


class LazyTextToSpeech(_Lazy[TextToSpeech]):
    """Text to speech whose voice loads on the first synthesis (or sample rate query)."""

    @property
    def sample_rate(self) -> int:
        """The loaded voice's sample rate."""
        return self.load().sample_rate

    @sample_rate.setter
    def sample_rate(self, value: int) -> None:
        self.load().sample_rate = value

    def synthesize(self, text: str) -> Iterator[AudioChunk]:
        """Synthesize with the loaded voice."""
        return self.load().synthesize(text)


class LazyChatModel(_Lazy[ChatModel]):
    """A chat model that loads on first use, so commands that never generate stay fast."""

    def __init__(self, factory: Callable[[], ChatModel], name: str, context_size: int) -> None:
        super().__init__(factory, name)
        self.context_size = context_size

    def count_tokens(self, text: str) -> int:
        """Tokens as the loaded model counts them."""
        return self.load().count_tokens(text)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """Stream from the loaded model."""
        return self.load().stream(
            messages, max_tokens=max_tokens, temperature=temperature, stop=stop
        )
