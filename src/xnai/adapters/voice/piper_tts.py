"""Text to speech with Piper (an ONNX voice run by onnxruntime on the CPU)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from xnai.adapters.optional import optional_import
from xnai.domain.errors import ConfigError, ModelError
from xnai.domain.voice import AudioChunk

log = logging.getLogger(__name__)


class PiperTextToSpeech:
    """A Piper voice: ``<voice>.onnx`` with its ``<voice>.onnx.json`` beside it."""

    def __init__(self, voice_file: Path, *, threads: int = 2, rate: float = 1.0) -> None:
        config_file = Path(f"{voice_file}.json")
        for path in (voice_file, config_file):
            if not path.is_file():
                raise ConfigError(f"voice.piper_voice: no such file: {path}")
        needs = {"feature": "Piper", "package": "piper-tts", "extra": "voice"}
        onnxruntime = optional_import("onnxruntime", **needs)
        piper_config = optional_import("piper.config", **needs)
        PiperVoice = optional_import("piper.voice", **needs).PiperVoice
        started = time.perf_counter()
        try:
            config = piper_config.PiperConfig.from_dict(
                json.loads(config_file.read_text(encoding="utf-8"))
            )
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(
                str(voice_file), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a damaged voice file or configuration
            raise ModelError(f"cannot load the Piper voice {voice_file}: {exc}") from exc
        self._voice = PiperVoice(session=session, config=config)
        # A higher speaking rate is a shorter phoneme length.
        self._synthesis = piper_config.SynthesisConfig(length_scale=config.length_scale / rate)
        self.name = f"piper:{voice_file.name.removesuffix('.onnx')}"
        self.sample_rate: int = config.sample_rate
        log.info("loaded %s in %.2f s", self.name, time.perf_counter() - started)

    def synthesize(self, text: str) -> Iterator[AudioChunk]:
        """Speech for ``text``, one chunk per sentence Piper finds in it."""
        for chunk in self._voice.synthesize(text, syn_config=self._synthesis):
            yield AudioChunk(chunk.audio_int16_bytes, chunk.sample_rate)
