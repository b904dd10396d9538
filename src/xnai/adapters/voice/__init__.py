"""Speech adapters: faster-whisper (speech to text); Piper, espeak-ng, Kokoro (text to
speech). Vendor imports stay inside each adapter's constructor."""
