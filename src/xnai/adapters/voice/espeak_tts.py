"""Text to speech with the ``espeak-ng`` program: robotic, but tiny and instant."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

from xnai.domain.errors import ModelError
from xnai.domain.voice import AudioChunk

WORDS_PER_MINUTE = 175  # espeak-ng's normal speed
HEADER = 44  # espeak-ng --stdout writes a canonical 44-byte WAV header
TIMEOUT_S = 60.0
INSTALL = "apt-get install -y --no-install-recommends espeak-ng"


def espeak_binary() -> Path | None:
    """The ``espeak-ng`` program on PATH, if installed."""
    found = shutil.which("espeak-ng")
    return Path(found) if found else None


class EspeakTextToSpeech:
    """espeak-ng run once per text (given on stdin, never as an argument)."""

    def __init__(self, voice: str = "en-us", *, rate: float = 1.0) -> None:
        binary = espeak_binary()
        if binary is None:
            raise ModelError(f"espeak-ng is not installed; install it with: {INSTALL}")
        self._binary = binary
        self.voice = voice
        self.name = f"espeak-ng:{voice}"
        self._wpm = round(WORDS_PER_MINUTE * rate)
        self.sample_rate = self._probe()

    def _run(self, text: str) -> bytes:
        """The WAV bytes espeak-ng writes for ``text``."""
        argv = [str(self._binary), "--stdout", "-b", "1", "-v", self.voice, "-s", str(self._wpm)]
        try:
            done = subprocess.run(
                argv, input=text.encode("utf-8"), capture_output=True, timeout=TIMEOUT_S
            )
        except subprocess.TimeoutExpired as exc:
            raise ModelError(f"espeak-ng took longer than {TIMEOUT_S:g} s") from exc
        if done.returncode != 0 or len(done.stdout) < HEADER:
            why = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
            raise ModelError(f"espeak-ng failed (voice {self.voice!r}): {why}")
        return done.stdout

    def _probe(self) -> int:
        """The sample rate of the voice (and a check that the voice exists)."""
        return _parse(self._run("."))[1]

    def synthesize(self, text: str) -> Iterator[AudioChunk]:
        """Speech for ``text`` as one chunk."""
        if not text.strip():
            return
        pcm, rate = _parse(self._run(text))
        if pcm:
            yield AudioChunk(pcm, rate)


def _parse(wav: bytes) -> tuple[bytes, int]:
    """PCM and sample rate of espeak-ng's streamed WAV (whose size fields are placeholders)."""
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE" or wav[36:40] != b"data":
        raise ModelError("espeak-ng wrote something other than a WAV stream")
    channels, rate, _, _, bits = struct.unpack("<HIIHH", wav[22:36])
    if channels != 1 or bits != 16:
        raise ModelError(f"espeak-ng wrote {channels} channels of {bits} bits, expected 1 x 16")
    pcm = wav[HEADER:]
    return pcm[: len(pcm) - len(pcm) % 2], rate
