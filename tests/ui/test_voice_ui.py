"""Speech in the chat: utterances cut from the microphone stream, PCM and WAV conversions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnai.bootstrap import Container
from xnai.domain.errors import ModelError
from xnai.domain.voice import AudioChunk
from xnai.services.voice import join_chunks, wav_bytes
from xnai.ui.voice import Utterances, level, resample, speech_at

RATE = 24000


def tone(seconds: float, amplitude: float = 0.3, rate: int = RATE) -> bytes:
    n = int(seconds * rate)
    t = np.arange(n) / rate
    return (amplitude * 32767 * np.sin(2 * math.pi * 300 * t)).astype("<i2").tobytes()


def quiet(seconds: float, rate: int = RATE) -> bytes:
    return b"\0\0" * int(seconds * rate)


def feed(u: Utterances, pcm: bytes, piece_s: float = 0.1) -> list[bytes]:
    step = int(piece_s * u.sample_rate) * 2
    found = []
    for i in range(0, len(pcm), step):
        if (done := u.add(pcm[i : i + step])) is not None:
            found.append(done)
    return found


def test_an_utterance_ends_at_the_pause_after_speech() -> None:
    u = Utterances(RATE)
    said = feed(u, quiet(1.0) + tone(1.0) + quiet(1.0))
    assert len(said) == 1
    seconds = len(said[0]) / 2 / RATE
    # The speech, a little quiet before it and the pause that ended it.
    assert 1.0 + 0.8 <= seconds <= 1.0 + 0.8 + 0.3 + 0.11
    assert level(said[0][: int(0.2 * RATE) * 2]) < 0.01  # starts quiet, not cut mid-word


def test_two_utterances_are_answered_separately_and_silence_is_not() -> None:
    u = Utterances(RATE)
    said = feed(u, tone(0.6) + quiet(1.0) + tone(0.6) + quiet(1.0) + quiet(3.0))
    assert len(said) == 2
    assert u.flush() is None


def test_a_click_is_not_speech() -> None:
    u = Utterances(RATE)
    assert feed(u, tone(0.1) + quiet(2.0)) == []
    assert u.flush() is None


def test_flush_returns_what_was_said_when_the_microphone_stops() -> None:
    u = Utterances(RATE)
    assert feed(u, tone(0.5)) == []
    rest = u.flush()
    assert rest is not None and len(rest) >= len(tone(0.5))


def test_a_long_monologue_is_cut_at_the_maximum() -> None:
    u = Utterances(RATE, max_s=2.0)
    said = feed(u, tone(5.0))
    assert len(said) == 2 and all(len(s) / 2 / RATE <= 2.05 for s in said)


@pytest.mark.parametrize(("src", "dst"), [(22050, 24000), (24000, 16000), (16000, 16000)])
def test_resample_keeps_duration_and_pitch(src: int, dst: int) -> None:
    out = resample(tone(1.0, rate=src), src, dst)
    samples = np.frombuffer(out, dtype="<i2").astype(float)
    assert abs(len(samples) - dst) <= 1
    spectrum = np.abs(np.fft.rfft(samples))
    peak_hz = np.argmax(spectrum) * dst / len(samples)
    assert abs(peak_hz - 300) < 3


def test_speech_is_delivered_at_the_players_rate() -> None:
    chunks = [AudioChunk(tone(0.5, rate=22050), 22050), AudioChunk(b"", 22050)]
    out = list(speech_at(chunks, 24000))
    assert len(out) == 1 and abs(len(out[0]) / 2 - 12000) <= 1


def test_a_real_spoken_question_survives_the_chats_audio_path(container: Container) -> None:
    """Synthesized speech, streamed as the browser does (24 kHz PCM in small pieces), cut
    into an utterance, wrapped as WAV and transcribed by the configured speech to text."""
    stt, tts = container.speech_to_text, container.text_to_speech
    if stt is None or tts is None:
        pytest.skip("speech is switched off in the configuration")
    sentence = "Please tell me how the library keeps every document safe."
    try:
        pcm, rate = join_chunks(tts.synthesize(sentence))
        stt.transcribe(wav_bytes(quiet(0.5, rate=16000), 16000))  # loads the model
    except (ImportError, ModelError, OSError) as exc:  # the voice extra or models missing
        pytest.skip(f"speech is not available here: {exc}")
    u = Utterances(RATE)
    said = feed(u, quiet(0.5) + resample(pcm, rate, RATE) + quiet(1.5))
    assert len(said) == 1
    heard = stt.transcribe(wav_bytes(said[0], RATE)).text.lower()
    words = [w.strip(".,") for w in sentence.lower().split()]
    found = [w for w in words if w in heard]
    assert len(found) >= 0.8 * len(words), heard
