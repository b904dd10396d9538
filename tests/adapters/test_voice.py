"""Speech adapters with the real bundled models: Piper and espeak-ng speak, Whisper listens."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.voice_helpers import opus_recording, read_wav, word_error_rate
from xnai.adapters.voice import model_files
from xnai.adapters.voice.espeak_tts import EspeakTextToSpeech
from xnai.adapters.voice.kokoro_tts import KokoroTextToSpeech, pcm16
from xnai.adapters.voice.piper_tts import PiperTextToSpeech
from xnai.adapters.voice.whisper_stt import WhisperSpeechToText, decode
from xnai.bootstrap import Container, build_speech_to_text, build_text_to_speech
from xnai.domain.errors import ConfigError, DocumentError, ModelError
from xnai.domain.voice import AudioChunk, SpeechToText, TextToSpeech
from xnai.services.lazy import LazySpeechToText, LazyTextToSpeech
from xnai.services.voice import (
    SentenceSpeech,
    join_chunks,
    wav_bytes,
)

# Plain words Whisper knows; "Answers cite" would come back as "Answer site" (a homophone).
SPOKEN = (
    "The quick brown fox jumps over the lazy dog. Private documents stay on this computer. "
    "Please open the settings page and change the port of the server. "
    "Every answer shows the sources it was built from."
)
# espeak-ng's formant voice is much harder to recognise. Measured on SPOKEN with tiny.en:
# 10 errors in 36 words (28 %; "quick brown fox jumps" became "quick roundfark stump");
# both programs are deterministic, so the bound only leaves room for other espeak-ng
# versions. Per sentence the measured WER ranged from 4 % to 67 %.
ESPEAK_MAX_WER = 0.35


@pytest.fixture(scope="module")
def stt() -> WhisperSpeechToText:
    return WhisperSpeechToText(model_files.whisper_tiny_en_dir(), name="whisper-tiny.en")


@pytest.fixture(scope="module")
def piper() -> PiperTextToSpeech:
    return PiperTextToSpeech(model_files.piper_voice_file())


@pytest.fixture(scope="module")
def spoken_wav(piper: PiperTextToSpeech) -> bytes:
    pcm, rate = join_chunks(SentenceSpeech(piper).synthesize(SPOKEN))
    return wav_bytes(pcm, rate)


def test_adapters_implement_the_ports(stt: WhisperSpeechToText, piper: PiperTextToSpeech) -> None:
    assert isinstance(stt, SpeechToText)
    assert isinstance(piper, TextToSpeech)
    assert isinstance(EspeakTextToSpeech(), TextToSpeech)
    assert piper.sample_rate == 22050


def test_piper_to_whisper_round_trip_has_word_error_rate_below_10_percent(
    stt: WhisperSpeechToText, spoken_wav: bytes
) -> None:
    pcm, rate, width = read_wav(spoken_wav)
    assert (rate, width) == (22050, 2)
    t = stt.transcribe(spoken_wav)
    assert word_error_rate(SPOKEN, t.text) < 0.10, t.text
    assert t.language == "en"
    assert t.duration_s == pytest.approx(len(pcm) / 2 / rate, abs=0.01)
    assert 0 < t.seconds < t.duration_s  # faster than real time


def test_espeak_round_trip_stays_within_its_looser_bound(stt: WhisperSpeechToText) -> None:
    espeak = SentenceSpeech(EspeakTextToSpeech("en-us"))
    pcm, rate = join_chunks(espeak.synthesize(SPOKEN))
    assert rate == 22050 and len(pcm) > 2 * rate * 5  # more than 5 s of speech
    t = stt.transcribe(wav_bytes(pcm, rate))
    assert word_error_rate(SPOKEN, t.text) < ESPEAK_MAX_WER, t.text


@pytest.mark.parametrize("container", ["webm", "ogg"])
def test_browser_recordings_in_opus_are_understood(
    stt: WhisperSpeechToText, spoken_wav: bytes, container: str
) -> None:
    pcm, rate, _ = read_wav(spoken_wav)
    recording = opus_recording(pcm, rate, container)
    assert len(recording) < len(spoken_wav) / 3  # really compressed, not WAV in disguise
    t = stt.transcribe(recording, mime=f"audio/{container};codecs=opus")
    assert word_error_rate(SPOKEN, t.text) < 0.10, t.text
    assert t.duration_s == pytest.approx(len(pcm) / 2 / rate, abs=0.1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (os.urandom(4000), "unsupported audio"),
        (b"", "unsupported audio"),
        (b"ID3\x04\x00" + os.urandom(2000), "unsupported audio"),  # MP3 is not accepted
        (b"RIFF\x00\x10\x00\x00WAVE" + os.urandom(2000), "cannot decode"),
        (b"\x1a\x45\xdf\xa3" + os.urandom(2000), "cannot decode"),
    ],
)
def test_other_data_is_refused(stt: WhisperSpeechToText, data: bytes, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        stt.transcribe(data, mime="audio/wav")


def test_a_wav_without_samples_is_refused(stt: WhisperSpeechToText) -> None:
    with pytest.raises(DocumentError, match="no audio samples"):
        stt.transcribe(wav_bytes(b"", 16000))


def test_recordings_over_the_limit_are_refused_while_decoding(spoken_wav: bytes) -> None:
    assert decode(spoken_wav, max_seconds=60).size > 16000 * 5
    with pytest.raises(DocumentError, match=r"longer than voice.max_audio_seconds \(2\)"):
        decode(spoken_wav, max_seconds=2)


class Recording:
    """A text to speech that notes which texts it was asked to speak."""

    def __init__(self, inner: TextToSpeech) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self.asked: list[str] = []

    def synthesize(self, text: str) -> Iterator[AudioChunk]:
        self.asked.append(text)
        yield from self.inner.synthesize(text)


def test_speech_streams_sentence_by_sentence(piper: PiperTextToSpeech) -> None:
    engine = Recording(piper)
    stream = SentenceSpeech(engine).synthesize(
        "First, the index loads. Then the question is embedded! Is the answer cited? "
        "Yes, every answer is."
    )
    started = time.perf_counter()
    first = next(stream)
    first_at = time.perf_counter() - started
    assert engine.asked == ["First, the index loads."]  # the rest is not spoken yet
    rest = list(stream)
    total = time.perf_counter() - started
    assert len(engine.asked) == 4 and len(rest) == 3
    assert first.sample_rate == 22050 and len(first.pcm) > 22050  # over half a second
    assert first_at < total


def test_espeak_follows_the_speaking_rate() -> None:
    text = "Speaking faster makes the same sentence shorter."
    normal, _ = join_chunks(EspeakTextToSpeech(rate=1.0).synthesize(text))
    fast, _ = join_chunks(EspeakTextToSpeech(rate=2.0).synthesize(text))
    assert len(fast) < 0.7 * len(normal)


def test_an_unknown_espeak_voice_is_reported() -> None:
    with pytest.raises(ModelError, match="voice 'zz-nowhere'"):
        EspeakTextToSpeech("zz-nowhere")


def test_whisper_base_is_assembled_verified_and_repaired(tmp_path: Path, spoken_wav: bytes) -> None:
    folder = model_files.whisper_base_dir(tmp_path)
    model = folder / "model.bin"
    assert model.stat().st_size == 145_217_607
    assert (folder.stat().st_mode & 0o777, model.stat().st_mode & 0o777) == (0o700, 0o600)
    stt = WhisperSpeechToText(folder, name="whisper-base")
    assert word_error_rate(SPOKEN, stt.transcribe(spoken_wav).text) < 0.10
    with model.open("r+b") as f:  # damage one byte; the size stays right
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    damaged = model_files.hash_file(model)
    model_files.whisper_base_dir(tmp_path)  # trusted by size
    assert model_files.hash_file(model) == damaged
    model_files.whisper_base_dir(tmp_path, verify=True)  # re-hashed, so rebuilt
    assert model_files.hash_file(model) == model_files.WHISPER_BASE[0].sha256


def test_the_container_loads_voice_models_on_first_use(
    make_container: Callable[..., Container],
) -> None:
    c = make_container()
    stt, tts = c.speech_to_text, c.text_to_speech
    assert isinstance(stt, LazySpeechToText) and isinstance(tts, SentenceSpeech)
    assert isinstance(tts.engine, LazyTextToSpeech)
    assert (stt.loaded, tts.engine.loaded) == (False, False)  # building stays fast
    assert (stt.name, tts.name) == ("whisper-tiny.en", "piper")
    assert next(iter(tts.synthesize("Hello."))).sample_rate == tts.sample_rate == 22050
    assert tts.engine.loaded and tts.name == "piper:en_US-joe-medium"
    off = make_container(voice={"tts_backend": "off", "stt_model": "off"})
    assert off.text_to_speech is None and off.speech_to_text is None


def test_tiny_en_refuses_another_language(tmp_path: Path) -> None:
    s = make_settings(tmp_path / "data", voice={"stt_language": "de"})
    with pytest.raises(ConfigError, match="stt_model = 'base'"):
        build_speech_to_text(s)


def test_without_piper_the_bundled_voice_falls_back_to_espeak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("piper", "piper.config", "piper.voice"):
        monkeypatch.setitem(sys.modules, module, None)  # as if piper-tts were not installed
    tts = build_text_to_speech(make_settings(tmp_path / "data"))
    assert tts is not None
    chunks = list(tts.synthesize("Still speaking."))
    assert tts.name == "espeak-ng:en-us" and chunks and chunks[0].sample_rate == 22050


def test_a_configured_piper_voice_must_exist(tmp_path: Path) -> None:
    s = make_settings(tmp_path / "data", voice={"piper_voice": str(tmp_path / "nope.onnx")})
    tts = build_text_to_speech(s)
    assert tts is not None
    with pytest.raises(ConfigError, match="voice.piper_voice: no such file"):
        list(tts.synthesize("Hello."))


def test_kokoro_needs_both_files(tmp_path: Path) -> None:
    model, voices = tmp_path / "kokoro.onnx", tmp_path / "voices.bin"
    cases = [
        ({}, "voice.kokoro_model is not set"),
        ({"kokoro_model": str(model)}, "voice.kokoro_model: no such file"),
    ]
    model.write_bytes(b"not a model")
    cases += [
        ({"kokoro_model": str(model)}, "voice.kokoro_voices is not set"),
        ({"kokoro_model": str(model), "kokoro_voices": str(voices)}, "kokoro_voices: no such"),
    ]
    for i, (keys, message) in enumerate(cases):
        if i == 1:
            model.unlink()
        if i == 2:
            model.write_bytes(b"not a model")
        s = make_settings(tmp_path / "data", voice={"tts_backend": "kokoro", **keys})
        tts = build_text_to_speech(s)
        assert tts is not None
        with pytest.raises(ConfigError, match=message):
            list(tts.synthesize("Hello."))


def test_kokoro_refuses_files_that_are_not_kokoro(tmp_path: Path) -> None:
    model, voices = tmp_path / "kokoro.onnx", tmp_path / "voices.bin"
    model.write_bytes(b"not an onnx model")
    voices.write_bytes(b"not voices")
    # Without kokoro-onnx installed the error says how to install it; with it, that the
    # files are not a Kokoro model: a ModelError either way, never a crash.
    with pytest.raises(ModelError, match="kokoro-onnx|cannot load Kokoro"):
        KokoroTextToSpeech(model, voices)


def test_kokoro_samples_become_16_bit_pcm() -> None:
    import numpy as np

    pcm = pcm16(np.array([0.0, 0.5, -1.0, 2.0], dtype=np.float32))
    assert np.frombuffer(pcm, "<i2").tolist() == [0, 16383, -32767, 32767]
