"""``xnai say`` and ``xnai transcribe``: the speech backends from the command line."""

from __future__ import annotations

import json
import mimetypes
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from xnai.bootstrap import build_speech_to_text, build_text_to_speech
from xnai.cli.context import err, out, settings
from xnai.config import Settings
from xnai.domain.errors import ConfigError, InvalidInputError
from xnai.services.voice import join_chunks, pcm_seconds, wav_bytes

TtsBackend = Literal["piper", "espeak", "kokoro"]
SttModel = Literal["tiny.en", "base"]


def register(app: typer.Typer) -> None:
    """Add ``say`` and ``transcribe`` to the top level of ``app``."""
    app.command()(say)
    app.command()(transcribe)


def say(
    text: Annotated[str, typer.Argument(help="what to say; - reads standard input")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="WAV file to write; default under the data dir"),
    ] = None,
    backend: Annotated[
        TtsBackend | None, typer.Option(help="text to speech backend; default voice.tts_backend")
    ] = None,
) -> None:
    """Speak TEXT into a WAV file and print the file's path."""
    s = settings()
    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise InvalidInputError("nothing to say: the text is empty")
    tts = build_text_to_speech(s, backend)
    if tts is None:
        raise ConfigError("voice.tts_backend is off: set it or pass --backend")
    started = time.perf_counter()
    first: float | None = None
    chunks = []
    for chunk in tts.synthesize(text):
        first = first if first is not None else time.perf_counter() - started
        chunks.append(chunk)
    pcm, rate = join_chunks(chunks)
    if not pcm:
        raise InvalidInputError("nothing to say: the text has no speakable words")
    path = output if output is not None else _default_output(s)
    path.write_bytes(wav_bytes(pcm, rate))
    err.print(
        f"{pcm_seconds(pcm, rate):.1f} s of speech by {escape(tts.name)} in "
        f"{time.perf_counter() - started:.2f} s (first audio after {first or 0.0:.2f} s)",
        highlight=False,
    )
    out.print(str(path), markup=False, highlight=False, soft_wrap=True)


def _default_output(s: Settings) -> Path:
    """A new owner-only file ``<data_dir>/voice/say-<time>.wav``."""
    folder = s.data_dir / "voice"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return folder / f"say-{stamp}.wav"


def transcribe(
    file: Annotated[
        Path,
        typer.Argument(help="a WAV, WebM or Ogg (Opus) recording", exists=True, dir_okay=False),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="print text, language, duration and seconds as JSON")
    ] = False,
    model: Annotated[
        SttModel | None, typer.Option(help="Whisper model; default voice.stt_model")
    ] = None,
) -> None:
    """Print what a recording says."""
    s = settings()
    if model is not None:
        s = s.model_copy(deep=True)
        s.voice.stt_model = model
    stt = build_speech_to_text(s)
    if stt is None:
        raise ConfigError("voice.stt_model is off: set it or pass --model")
    mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    t = stt.transcribe(file.read_bytes(), mime=mime)
    if as_json:
        payload = {
            "text": t.text,
            "language": t.language,
            "duration": round(t.duration_s, 3),
            "seconds": round(t.seconds, 3),
            "model": stt.name,
        }
        out.print_json(json.dumps(payload))
        return
    out.print(t.text, markup=False, highlight=False, soft_wrap=True)
