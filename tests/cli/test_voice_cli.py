"""``xnai say`` and ``xnai transcribe`` with the real bundled voice and Whisper model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cli.output import plain
from tests.voice_helpers import opus_recording, read_wav, word_error_rate
from xnai.cli.main import app
from xnai.domain.errors import ConfigError, DocumentError, InvalidInputError

runner = CliRunner()
SENTENCE = "Please open the settings page and change the port of the server."


def test_say_writes_a_wav_that_transcribe_reads_back(env: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.wav"
    said = runner.invoke(app, ["say", SENTENCE, "-o", str(target)])
    assert said.exit_code == 0, said.output
    assert said.stdout.strip() == str(target)
    pcm, rate, width = read_wav(target.read_bytes())
    assert (rate, width) == (22050, 2) and len(pcm) > 2 * rate * 2  # over 2 s of speech
    heard = runner.invoke(app, ["transcribe", str(target)])
    assert heard.exit_code == 0, heard.output
    assert word_error_rate(SENTENCE, heard.stdout) < 0.10, heard.stdout


def test_say_without_output_writes_into_the_data_directory(env: Path) -> None:
    said = runner.invoke(app, ["say", "Hello there."])
    assert said.exit_code == 0, said.output
    path = Path(said.stdout.strip())
    assert path.parent == env.resolve() / "voice" and path.name.startswith("say-")
    assert path.suffix == ".wav" and read_wav(path.read_bytes())[1] == 22050
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert "s of speech by piper:en_US-joe-medium" in said.stderr


def test_say_reads_standard_input_and_can_use_espeak(env: Path, tmp_path: Path) -> None:
    target = tmp_path / "espeak.wav"
    said = runner.invoke(
        app, ["say", "-", "--backend", "espeak", "-o", str(target)], input="Good morning."
    )
    assert said.exit_code == 0, said.output
    assert "espeak-ng:en-us" in said.stderr
    assert len(read_wav(target.read_bytes())[0]) > 22050  # over half a second


def test_transcribe_json_reports_text_language_duration_and_time(env: Path, tmp_path: Path) -> None:
    wav = tmp_path / "s.wav"
    assert runner.invoke(app, ["say", SENTENCE, "-o", str(wav)]).exit_code == 0
    pcm, rate, _ = read_wav(wav.read_bytes())
    webm = tmp_path / "s.webm"
    webm.write_bytes(opus_recording(pcm, rate, "webm"))
    result = runner.invoke(app, ["transcribe", "--json", str(webm)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"text", "language", "duration", "seconds", "model"}
    assert word_error_rate(SENTENCE, payload["text"]) < 0.10, payload["text"]
    assert payload["language"] == "en" and payload["model"] == "whisper-tiny.en"
    assert payload["duration"] == pytest.approx(len(pcm) / 2 / rate, abs=0.1)
    assert 0 < payload["seconds"] < payload["duration"]


def test_transcribe_refuses_files_that_are_not_audio(env: Path, tmp_path: Path) -> None:
    junk = tmp_path / "notes.wav"
    junk.write_bytes(os.urandom(5000))
    result = runner.invoke(app, ["transcribe", str(junk)])
    assert isinstance(result.exception, DocumentError)
    assert "unsupported audio (declared audio/x-wav)" in str(result.exception)
    missing = runner.invoke(app, ["transcribe", str(tmp_path / "none.wav")])
    assert missing.exit_code == 2 and "does not exist" in plain(missing.output)


def test_say_refuses_empty_text_and_a_voice_that_is_off(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = runner.invoke(app, ["say", "  "])
    assert isinstance(empty.exception, InvalidInputError)
    monkeypatch.setenv("XNAI_VOICE__TTS_BACKEND", "off")
    off = runner.invoke(app, ["say", "Hello."])
    assert isinstance(off.exception, ConfigError)
    assert "voice.tts_backend is off" in str(off.exception)
