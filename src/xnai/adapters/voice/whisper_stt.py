"""Speech to text with faster-whisper (CTranslate2, int8 on the CPU) from a local model."""

from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from xnai.adapters.optional import optional_import
from xnai.domain.errors import DocumentError
from xnai.domain.voice import Transcript

SAMPLE_RATE = 16_000  # what Whisper listens at
# Containers recognised by their first bytes; the declared MIME type is only a hint.
SIGNATURES = {
    "wav": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WAVE",
    "webm": lambda b: b[:4] == b"\x1a\x45\xdf\xa3",  # EBML: WebM / Matroska (Chrome)
    "ogg": lambda b: b[:4] == b"OggS",  # Ogg Opus (Firefox)
}
FFMPEG_LOG_QUIET = 8  # AV_LOG_FATAL: damaged input is reported by our error, not on stderr

log = logging.getLogger(__name__)


def audio_format(audio: bytes, mime: str = "") -> str:
    """``wav``, ``webm`` or ``ogg`` from the bytes; DocumentError for anything else."""
    for name, matches in SIGNATURES.items():
        if matches(audio):
            return name
    declared = f" (declared {mime})" if mime else ""
    raise DocumentError(
        f"unsupported audio{declared}: expected WAV, WebM/Opus or Ogg/Opus, "
        f"got {len(audio)} bytes of something else"
    )


def decode(audio: bytes, *, max_seconds: float, mime: str = "") -> np.ndarray:
    """Mono float32 samples at 16 kHz; DocumentError when the audio cannot be read, is
    silent-empty or longer than ``max_seconds``."""
    audio_format(audio, mime)
    import av

    av.logging.set_level(FFMPEG_LOG_QUIET)
    limit = int(max_seconds * SAMPLE_RATE)
    pieces: list[np.ndarray] = []
    total = 0
    try:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        with av.open(io.BytesIO(audio), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise DocumentError("the recording has no audio track")
            for frame in _frames(container, resampler):
                samples = frame.to_ndarray().reshape(-1)
                pieces.append(samples)
                total += samples.size
                if total > limit:
                    raise DocumentError(
                        f"the recording is longer than voice.max_audio_seconds ({max_seconds:g})"
                    )
    except DocumentError:
        raise
    except Exception as exc:  # PyAV raises its own error types for damaged input
        raise DocumentError(f"cannot decode the audio: {type(exc).__name__}: {exc}") from exc
    if not total:
        raise DocumentError("the recording holds no audio samples")
    return np.concatenate(pieces).astype(np.float32) / 32768.0


def _frames(container: Any, resampler: Any) -> Any:
    """Resampled frames of the first audio stream, then the resampler's remainder."""
    for frame in container.decode(container.streams.audio[0]):
        yield from resampler.resample(frame)
    yield from resampler.resample(None)


class WhisperSpeechToText:
    """Whisper via faster-whisper, CPU int8, loaded from a local CTranslate2 directory."""

    def __init__(
        self,
        model_dir: Path,
        *,
        name: str,
        threads: int = 2,
        language: str | None = "en",
        beam_size: int = 1,
        max_seconds: float = 120.0,
    ) -> None:
        faster_whisper = optional_import(
            "faster_whisper", feature="speech to text", package="faster-whisper", extra="voice"
        )
        self.name = name
        self.language = language or None
        self.beam_size = beam_size
        self.max_seconds = max_seconds
        self._lock = threading.Lock()  # one recognition at a time: the threads are shared
        started = time.perf_counter()
        self._model = faster_whisper.WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
            num_workers=1,
            local_files_only=True,
        )
        log.info("loaded %s in %.2f s", name, time.perf_counter() - started)

    def transcribe(self, audio: bytes, *, mime: str = "audio/wav") -> Transcript:
        """Text of a WAV, WebM/Opus or Ogg/Opus recording; DocumentError for other data."""
        samples = decode(audio, max_seconds=self.max_seconds, mime=mime)
        started = time.perf_counter()
        with self._lock:
            segments, info = self._model.transcribe(
                samples,
                language=self.language,
                beam_size=self.beam_size,
                condition_on_previous_text=False,
                without_timestamps=True,
            )
            text = " ".join(s.text.strip() for s in segments if s.text.strip())
        return Transcript(
            text=text,
            language=info.language,
            duration_s=samples.size / SAMPLE_RATE,
            seconds=time.perf_counter() - started,
        )
