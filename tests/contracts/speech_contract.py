"""Behaviour every SpeechToText and TextToSpeech adapter must share."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.voice_helpers import word_error_rate
from xnai.domain.errors import DocumentError
from xnai.domain.voice import AudioChunk, SpeechToText, TextToSpeech, Transcript
from xnai.services.voice import join_chunks, wav_bytes

SPOKEN = "The quick brown fox jumps over the lazy dog. Please open the settings page."
Speak = Callable[[str], bytes]


class SpeechToTextContract:
    """Mixin of contract tests; a `Test...` subclass supplies `stt` and `speak(text)`, which
    returns a WAV recording of ``text`` the recogniser should understand."""

    #: Word error rate the recogniser must stay under on ``SPOKEN``.
    max_wer = 0.10

    @pytest.fixture
    def stt(self) -> SpeechToText:
        """The adapter under test (subclasses override this fixture)."""
        pytest.fail("SpeechToTextContract subclasses must override the `stt` fixture")

    @pytest.fixture
    def speak(self) -> Speak:
        """WAV bytes of a text (subclasses override this fixture)."""
        pytest.fail("SpeechToTextContract subclasses must override the `speak` fixture")

    def test_satisfies_the_port(self, stt: SpeechToText) -> None:
        assert isinstance(stt, SpeechToText)
        assert isinstance(stt.name, str) and stt.name

    def test_understands_speech(self, stt: SpeechToText, speak: Speak) -> None:
        wav = speak(SPOKEN)
        transcript = stt.transcribe(wav)
        assert isinstance(transcript, Transcript)
        assert word_error_rate(SPOKEN, transcript.text) < self.max_wer, transcript.text
        assert transcript.language == "en"
        assert transcript.duration_s > 0 and transcript.seconds >= 0

    @pytest.mark.parametrize("data", [b"", b"not audio at all", b"RIFF\x00\x00\x00\x00WAVE"])
    def test_unreadable_audio_is_a_document_error(self, stt: SpeechToText, data: bytes) -> None:
        with pytest.raises(DocumentError):
            stt.transcribe(data)


class TextToSpeechContract:
    """Mixin of contract tests; a `Test...` subclass supplies `tts`."""

    @pytest.fixture
    def tts(self) -> TextToSpeech:
        """The adapter under test (subclasses override this fixture)."""
        pytest.fail("TextToSpeechContract subclasses must override the `tts` fixture")

    def test_satisfies_the_port(self, tts: TextToSpeech) -> None:
        assert isinstance(tts, TextToSpeech)
        assert isinstance(tts.name, str) and tts.name
        assert isinstance(tts.sample_rate, int) and tts.sample_rate >= 8000

    def test_speech_is_16_bit_pcm_at_the_sample_rate(self, tts: TextToSpeech) -> None:
        chunks = list(tts.synthesize("Every answer shows its sources."))
        assert chunks and all(isinstance(c, AudioChunk) for c in chunks)
        assert all(c.sample_rate == tts.sample_rate for c in chunks)
        assert all(c.pcm and len(c.pcm) % 2 == 0 for c in chunks)
        pcm, rate = join_chunks(chunks)
        assert 0.3 < len(pcm) / 2 / rate < 10  # about two seconds of speech

    def test_longer_text_gives_longer_speech(self, tts: TextToSpeech) -> None:
        short = join_chunks(list(tts.synthesize("Hello.")))[0]
        long = join_chunks(list(tts.synthesize("Hello. " + SPOKEN)))[0]
        assert len(long) > len(short)

    def test_blank_text_gives_no_speech(self, tts: TextToSpeech) -> None:
        assert join_chunks(list(tts.synthesize("   ")))[0] == b""

    def test_speech_is_a_valid_wav(self, tts: TextToSpeech) -> None:
        pcm, rate = join_chunks(list(tts.synthesize("Open the settings page.")))
        assert wav_bytes(pcm, rate)[:4] == b"RIFF"
