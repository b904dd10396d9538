"""Speech around the voice ports: sentence streaming, speakable text, WAV."""

from __future__ import annotations

import io
import re
import wave
from collections.abc import Iterable, Iterator

from xnai.domain.errors import ModelError
from xnai.domain.voice import AudioChunk, TextToSpeech
from xnai.services.delegation import Through

# Words whose trailing period does not end a sentence.
ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "cf"}
    | {"fig", "vol", "approx", "inc", "ltd", "co", "dept"}
)
_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)")
_CITATION = re.compile(r"\s*\[(?:\d+(?:\s*[,-]\s*\d+)*)\](?!\()")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+")
_FENCE = re.compile(r"```.*?(?:```|$)", re.S)
_LINE_MARK = re.compile(r"^\s*(?:#{1,6}\s+|>\s*|[-*+]\s+|\d+[.)]\s+)", re.M)
_EMPHASIS = re.compile(r"[*_`~|]+")
_SPACES = re.compile(r"[ \t]+")
LONG_SENTENCE = 300  # characters: longer sentences are cut at clause boundaries


def split_sentences(text: str) -> list[str]:
    """``text`` as sentences, in order: paragraphs and lines break too; no empty items."""
    sentences: list[str] = []
    for line in text.splitlines():
        sentences.extend(_sentences_of_line(line))
    return [piece for s in sentences for piece in _cut_long(s)]


def _sentences_of_line(line: str) -> list[str]:
    """Split one line at sentence ends, except after abbreviations and initials."""
    out: list[str] = []
    start = 0
    for match in _END.finditer(line):
        candidate = line[start : match.end()].strip()
        last_word = candidate.rsplit(maxsplit=1)[-1] if candidate else ""
        bare = last_word.rstrip(".\"')]").lower()
        if bare in ABBREVIATIONS or (len(bare) == 1 and bare.isalpha()):
            continue
        out.append(candidate)
        start = match.end()
    out.append(line[start:].strip())
    return [s for s in out if any(ch.isalnum() for ch in s)]


def _cut_long(sentence: str) -> list[str]:
    """A very long sentence in pieces at commas, semicolons or colons (a faster first chunk)."""
    if len(sentence) <= LONG_SENTENCE:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for clause in re.split(r"(?<=[,;:])\s+", sentence):
        if current and len(current) + len(clause) + 1 > LONG_SENTENCE:
            pieces.append(current)
            current = clause
        else:
            current = f"{current} {clause}" if current else clause
    if current:
        pieces.append(current)
    return pieces


def speakable(text: str) -> str:
    """An answer as it should be read aloud: no citation marks, link targets, code blocks
    or Markdown symbols."""
    text = _FENCE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub("link", text)
    text = _CITATION.sub("", text)
    text = _LINE_MARK.sub("", text)
    text = _EMPHASIS.sub("", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


class SentenceSpeech:
    """A TextToSpeech that speaks ``text`` one sentence at a time, so the first audio is
    ready after the first sentence instead of after the whole text."""

    def __init__(self, engine: TextToSpeech) -> None:
        self.engine = engine

    # The engine's name and sample rate.
    name = Through[str]("engine")
    sample_rate = Through[int]("engine")

    def synthesize(self, text: str) -> Iterator[AudioChunk]:
        """Chunks of each sentence of ``text``, yielded as soon as each is ready."""
        for sentence in split_sentences(text):
            for chunk in self.engine.synthesize(sentence):
                if chunk.pcm:
                    yield chunk


def join_chunks(chunks: Iterable[AudioChunk]) -> tuple[bytes, int]:
    """All PCM of ``chunks`` and their common sample rate (0 when there were none)."""
    pcm = bytearray()
    rate = 0
    for chunk in chunks:
        if rate and chunk.sample_rate != rate:
            raise ModelError(f"audio chunks at {rate} Hz and {chunk.sample_rate} Hz")
        rate = chunk.sample_rate
        pcm += chunk.pcm
    return bytes(pcm), rate


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """16-bit mono PCM as a WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buf.getvalue()


def pcm_seconds(pcm: bytes, sample_rate: int) -> float:
    """Duration of 16-bit mono PCM."""
    return len(pcm) / 2 / sample_rate if sample_rate else 0.0
