"""Speech in and out ([voice]), each loaded on first use."""

from __future__ import annotations

import logging
from functools import partial

from xnai.config import Settings
from xnai.domain.errors import ConfigError, ModelError
from xnai.domain.voice import SpeechToText, TextToSpeech
from xnai.services.lazy import LazySpeechToText, LazyTextToSpeech
from xnai.services.voice import SentenceSpeech

log = logging.getLogger("xnai")


def build_speech_to_text(settings: Settings) -> SpeechToText | None:
    """Whisper of ``voice.stt_model``, loaded on first use; None when it is ``off``."""
    v = settings.voice
    if v.stt_model == "off":
        return None
    if v.stt_model == "tiny.en" and v.stt_language not in ("", "en"):
        raise ConfigError(
            f"voice.stt_language {v.stt_language!r} needs voice.stt_model = 'base' "
            "(tiny.en understands English only)"
        )
    return LazySpeechToText(partial(load_speech_to_text, settings), f"whisper-{v.stt_model}")


def load_speech_to_text(settings: Settings) -> SpeechToText:
    """The configured Whisper model, loaded (Whisper base is assembled and verified first)."""
    from xnai.adapters.voice.model_files import whisper_base_dir, whisper_tiny_en_dir
    from xnai.adapters.voice.whisper_stt import WhisperSpeechToText

    v = settings.voice
    if v.stt_model == "base":
        folder = whisper_base_dir(settings.models_dir)
    else:
        folder = whisper_tiny_en_dir()
    return WhisperSpeechToText(
        folder,
        name=f"whisper-{v.stt_model}",
        threads=v.stt_threads,
        language=v.stt_language or None,
        beam_size=v.stt_beam_size,
        max_seconds=v.max_audio_seconds,
    )


def build_text_to_speech(settings: Settings, backend: str | None = None) -> TextToSpeech | None:
    """Text to speech of ``backend`` (default ``voice.tts_backend``), sentence by sentence,
    loaded on first use; None when it is ``off``."""
    backend = backend or settings.voice.tts_backend
    if backend == "off":
        return None
    lazy = LazyTextToSpeech(partial(load_text_to_speech, settings, backend), backend)
    return SentenceSpeech(lazy)


def load_text_to_speech(settings: Settings, backend: str) -> TextToSpeech:
    """The voice of ``backend``, loaded. The bundled Piper voice falls back to espeak-ng
    when piper-tts or the voice package is not installed."""
    from xnai.adapters.voice.espeak_tts import EspeakTextToSpeech, espeak_binary
    from xnai.adapters.voice.kokoro_tts import KokoroTextToSpeech
    from xnai.adapters.voice.model_files import piper_voice_file
    from xnai.adapters.voice.piper_tts import PiperTextToSpeech

    v = settings.voice
    rate, threads = v.speaking_rate, v.tts_threads
    match backend:
        case "piper" if v.piper_voice is not None:
            return PiperTextToSpeech(settings.absolute(v.piper_voice), threads=threads, rate=rate)
        case "piper":
            try:
                return PiperTextToSpeech(piper_voice_file(), threads=threads, rate=rate)
            except ModelError as exc:
                if espeak_binary() is None:
                    raise
                log.warning("Piper is unavailable (%s); speaking with espeak-ng", exc)
                return EspeakTextToSpeech(v.espeak_voice, rate=rate)
        case "espeak":
            return EspeakTextToSpeech(v.espeak_voice, rate=rate)
        case "kokoro":
            model, voices = v.kokoro_model, v.kokoro_voices
            return KokoroTextToSpeech(
                settings.absolute(model) if model else None,
                settings.absolute(voices) if voices else None,
                voice=v.kokoro_voice,
                lang=v.kokoro_lang,
                rate=rate,
                threads=threads,
            )
    raise ConfigError(f"unknown voice.tts_backend {backend!r}")
