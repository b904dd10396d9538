"""Text to speech with Kokoro (kokoro-onnx) from model and voices files the user supplies."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from xnai.adapters.optional import optional_import
from xnai.domain.errors import ConfigError, ModelError
from xnai.domain.voice import AudioChunk

log = logging.getLogger(__name__)


def check_files(model: Path | None, voices: Path | None) -> tuple[Path, Path]:
    """Both configured files, existing; ConfigError naming the key to set otherwise."""
    checked: list[Path] = []
    for key, path in (("voice.kokoro_model", model), ("voice.kokoro_voices", voices)):
        if path is None:
            raise ConfigError(
                f"voice.tts_backend is kokoro but {key} is not set: give the path of the "
                "Kokoro file (see the voice how-to)"
            )
        if not path.is_file():
            raise ConfigError(f"{key}: no such file: {path}")
        checked.append(path)
    return checked[0], checked[1]


def pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] as 16-bit little-endian PCM."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


class KokoroTextToSpeech:
    """A Kokoro model (``kokoro-v1.0.onnx`` or similar) with its voices file."""

    sample_rate = 24_000  # Kokoro's output rate

    def __init__(
        self,
        model: Path | None,
        voices: Path | None,
        *,
        voice: str = "af_heart",
        lang: str = "en-us",
        rate: float = 1.0,
        threads: int = 2,
    ) -> None:
        model_file, voices_file = check_files(model, voices)
        needs = {"feature": "Kokoro", "package": "kokoro-onnx", "extra": "kokoro"}
        onnxruntime = optional_import("onnxruntime", **needs)
        Kokoro = optional_import("kokoro_onnx", **needs).Kokoro
        started = time.perf_counter()
        try:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(
                str(model_file), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._kokoro = Kokoro.from_session(session, str(voices_file))
        except Exception as exc:  # a damaged or wrong model or voices file
            raise ModelError(f"cannot load Kokoro from {model_file}, {voices_file}: {exc}") from exc
        known = self._kokoro.get_voices()
        if voice not in known:
            sample = ", ".join(known[:12])
            raise ConfigError(f"voice.kokoro_voice: {voice!r} is not in {voices_file} ({sample})")
        self.voice, self.lang, self.rate = voice, lang, rate
        self.name = f"kokoro:{voice}"
        log.info("loaded %s in %.2f s", self.name, time.perf_counter() - started)

    def synthesize(self, text: str) -> Iterator[AudioChunk]:
        """Speech for ``text`` as one chunk."""
        if not text.strip():
            return
        samples, rate = self._kokoro.create(text, voice=self.voice, speed=self.rate, lang=self.lang)
        yield AudioChunk(pcm16(samples), int(rate))
