"""Speech services: sentence splitting, text made speakable, WAV and the lazy wrappers."""

from __future__ import annotations

import threading
import time

import pytest

from tests.voice_helpers import read_wav, word_error_rate
from xnai.domain.errors import ModelError
from xnai.domain.voice import AudioChunk, Transcript
from xnai.services.lazy import LazySpeechToText
from xnai.services.voice import (
    LONG_SENTENCE,
    join_chunks,
    pcm_seconds,
    speakable,
    split_sentences,
    wav_bytes,
)


def test_sentences_split_at_ends_but_not_after_abbreviations_or_decimals() -> None:
    text = (
        "Hello Dr. Smith, how are you? I am fine. The rate is 3.5 percent! "
        'See e.g. the guide. J. R. R. Tolkien wrote it. He said "stop." Then left.\n'
        "A line without a full stop\n\n- a list item\n...\n"
    )
    assert split_sentences(text) == [
        "Hello Dr. Smith, how are you?",
        "I am fine.",
        "The rate is 3.5 percent!",
        "See e.g. the guide.",
        "J. R. R. Tolkien wrote it.",
        'He said "stop."',
        "Then left.",
        "A line without a full stop",
        "- a list item",
    ]


def test_very_long_sentences_are_cut_at_clauses() -> None:
    clause = "the index holds every chunk of every document in the library"
    sentence = ", ".join([clause] * 12) + "."
    pieces = split_sentences(sentence)
    assert len(pieces) > 1
    assert all(len(p) <= LONG_SENTENCE for p in pieces)
    assert " ".join(pieces) == sentence


def test_answers_are_made_speakable() -> None:
    answer = (
        "## Port\n"
        "The server listens on **port 8000** [1]. Change it in `config.toml` [2, 3].\n"
        "- See [the guide](https://example.org/guide) or https://example.org/x\n"
        "```toml\n[server]\nport = 8000\n```\n"
        "> quoted"
    )
    assert speakable(answer) == (
        "Port\n"
        "The server listens on port 8000. Change it in config.toml.\n"
        "See the guide or link\n"
        "quoted"
    )


def test_wav_bytes_hold_the_pcm() -> None:
    pcm = bytes(range(200)) * 10
    assert read_wav(wav_bytes(pcm, 16000)) == (pcm, 16000, 2)
    assert pcm_seconds(pcm, 16000) == pytest.approx(2000 / 32000)


def test_chunks_join_only_at_one_sample_rate() -> None:
    assert join_chunks([AudioChunk(b"ab", 22050), AudioChunk(b"cd", 22050)]) == (b"abcd", 22050)
    assert join_chunks([]) == (b"", 0)
    with pytest.raises(ModelError, match="22050 Hz and 24000 Hz"):
        join_chunks([AudioChunk(b"ab", 22050), AudioChunk(b"cd", 24000)])


class SlowRecogniser:
    """A speech to text that takes a while to load (counts its loads)."""

    loads = 0

    def __init__(self) -> None:
        time.sleep(0.05)
        type(self).loads += 1
        self.name = "slow-1"

    def transcribe(self, audio: bytes, *, mime: str = "audio/wav") -> Transcript:
        return Transcript(f"{len(audio)} bytes of {mime}", "en", 1.0, 0.0)


def test_lazy_speech_to_text_loads_once_across_threads() -> None:
    lazy = LazySpeechToText(SlowRecogniser, "slow")
    assert not lazy.loaded and lazy.name == "slow"
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(lazy.transcribe(b"abc").text))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert SlowRecogniser.loads == 1 and lazy.loaded and lazy.name == "slow-1"
    assert results == ["3 bytes of audio/wav"] * 4


def test_word_error_rate_counts_edits_per_reference_word() -> None:
    assert word_error_rate("The quick brown fox.", "the quick, brown fox") == 0.0
    assert word_error_rate("the quick brown fox", "the quick fox") == 0.25
    assert word_error_rate("the quick brown fox", "a quick brown fox jumps") == 0.5
