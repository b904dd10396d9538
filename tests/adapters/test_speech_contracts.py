"""The SpeechToText and TextToSpeech contracts: Whisper, Piper and espeak-ng with the bundled
models, and the coded in-memory speech."""

from __future__ import annotations

import pytest

from tests.contracts.speech_contract import (
    Speak,
    SpeechToTextContract,
    TextToSpeechContract,
)
from xnai.adapters.memory import CodedSpeechToText, CodedTextToSpeech
from xnai.adapters.voice import model_files
from xnai.adapters.voice.espeak_tts import EspeakTextToSpeech, espeak_binary
from xnai.adapters.voice.piper_tts import PiperTextToSpeech
from xnai.adapters.voice.whisper_stt import WhisperSpeechToText
from xnai.domain.voice import SpeechToText, TextToSpeech
from xnai.services.voice import SentenceSpeech, join_chunks, wav_bytes


def speaker(tts: TextToSpeech) -> Speak:
    """A function from text to a WAV recording of it."""
    return lambda text: wav_bytes(*join_chunks(SentenceSpeech(tts).synthesize(text)))


@pytest.fixture(scope="module")
def whisper() -> WhisperSpeechToText:
    return WhisperSpeechToText(model_files.whisper_tiny_en_dir(), name="whisper-tiny.en")


@pytest.fixture(scope="module")
def piper() -> PiperTextToSpeech:
    return PiperTextToSpeech(model_files.piper_voice_file())


class TestWhisperContract(SpeechToTextContract):
    @pytest.fixture
    def stt(self, whisper: WhisperSpeechToText) -> SpeechToText:
        return whisper

    @pytest.fixture
    def speak(self, piper: PiperTextToSpeech) -> Speak:
        return speaker(piper)


class TestCodedSpeechToTextContract(SpeechToTextContract):
    max_wer = 0.0001  # exact

    @pytest.fixture
    def stt(self) -> SpeechToText:
        return CodedSpeechToText()

    @pytest.fixture
    def speak(self) -> Speak:
        return speaker(CodedTextToSpeech())


class TestPiperContract(TextToSpeechContract):
    @pytest.fixture
    def tts(self, piper: PiperTextToSpeech) -> TextToSpeech:
        return piper


@pytest.mark.skipif(espeak_binary() is None, reason="espeak-ng is not installed")
class TestEspeakContract(TextToSpeechContract):
    @pytest.fixture
    def tts(self) -> TextToSpeech:
        return EspeakTextToSpeech()


class TestCodedTextToSpeechContract(TextToSpeechContract):
    @pytest.fixture
    def tts(self) -> TextToSpeech:
        return CodedTextToSpeech()


def test_coded_speech_round_trips_any_text_exactly() -> None:
    text = "Grüße aus Köln: 42 °C, naïve café — 日本語."
    wav = speaker(CodedTextToSpeech())(text)
    assert CodedSpeechToText().transcribe(wav).text == text
