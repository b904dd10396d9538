"""Write docs/reference/config.md from the pydantic models in ``xnai.config``.

Run ``python scripts/gen_config_reference.py`` after changing a setting;
``--check`` exits with status 1 when the committed page is out of date.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from xnai.config import SecretUrl, Settings

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "reference" / "config.md"
ENV_PREFIX = "XNAI_"
ENV_DELIMITER = "__"

# Fuller explanations than the one-word descriptions some fields carry; a key not listed
# here shows its field's own description. test_docs fails when a key here no longer exists.
NOTES: dict[str, str] = {
    "enterprise.name": "Display name of this installation.",
    "enterprise.environment": "Kind of deployment; reserved for planned production checks.",
    "enterprise.monitoring.enabled": "Prometheus metrics at `GET /metrics` and on the "
    "metrics port; false: kept in memory only, `/metrics` answers 404.",
    "enterprise.monitoring.prometheus_port": "`xnai serve` also serves the metrics on this "
    "port, bound to `prometheus_host`; 0: no metrics port. See "
    "[monitoring](../how-to/monitoring.md).",
    "enterprise.monitoring.prometheus_host": "Address the metrics port binds to. On a "
    "loopback address (the default) only this machine can scrape it; any other address "
    "needs `prometheus_token`, or the configuration is refused.",
    "enterprise.monitoring.prometheus_token": "Bearer token the metrics port asks for "
    "(`Authorization: Bearer <token>`, Prometheus' `authorization` setting); empty: none, "
    "allowed only on loopback. A secret: `xnai config show` masks it; prefer "
    "`XNAI_ENTERPRISE__MONITORING__PROMETHEUS_TOKEN`.",
    "enterprise.monitoring.log_level": "Log level of `xnai serve`.",
    "enterprise.monitoring.log_format": "`json`: one JSON object per line (time, level, "
    "logger, message, request_id, extras); `text`: one readable line per record. Both "
    "escape line breaks and control characters from requests.",
    "enterprise.monitoring.log_to_file": "Write the log file as well as stderr.",
    "enterprise.monitoring.log_file": "The log file (mode 0600); default "
    "`<data_dir>/logs/xnai.log`.",
    "enterprise.monitoring.log_max_mb": "The log file is rotated at this size, MB.",
    "enterprise.monitoring.log_backups": "Rotated log files kept (`xnai.log.1` ...).",
    "enterprise.monitoring.anomaly_bucket_s": "Anomaly detection groups queries into buckets "
    "of this many seconds; each bucket is one data point of each watched series.",
    "enterprise.monitoring.anomaly_window": "Buckets in the rolling baseline (median and MAD); "
    "90 x 10 s is 15 minutes.",
    "enterprise.monitoring.anomaly_threshold": "Robust z-score above which a bucket is "
    "anomalous (3.5 is the usual cut-off for median/MAD scores).",
    "enterprise.monitoring.anomaly_persistence": "Anomalous buckets in a row that raise an "
    "alert, and normal buckets in a row that clear it.",
    "enterprise.security.session_timeout": "Absolute lifetime of a login session in seconds "
    "(8 h); compliance checks flag more than 8 h.",
    "enterprise.security.session_idle_timeout": "A session unused for this many seconds expires.",
    "enterprise.security.failed_login_lockout": "Consecutive failed logins (passwords or "
    "one-time codes) that lock an account.",
    "enterprise.security.lockout_duration": "Seconds a locked account stays locked "
    "(admins can unlock sooner).",
    "enterprise.security.login_throttle_window": "Seconds of the sliding window in which "
    "failed logins are counted per client address and overall; older ones are purged.",
    "enterprise.security.login_client_failures": "Failed logins one client address (an IPv6 "
    "/64 network) may make in the window; beyond it, sign-ins from that address get 429 "
    "with `Retry-After` and no password is checked.",
    "enterprise.security.login_global_failures": "Failed logins of all clients together in "
    "the window; beyond it, every client that failed in the window gets 429, while a client "
    "with no failure keeps its attempt. See [security](../explanation/security.md).",
    "enterprise.security.password_min_length": "Shortest password accepted.",
    "enterprise.security.password_context_words": "Words of your organisation (names of "
    "the company, products, places) a password must not be built on. The product's name, "
    "`enterprise.name` and the username are always refused: `Acme2026!` is refused when "
    "`acme` is listed, because its letters alone are a listed word.",
    "enterprise.security.mfa_required": "Every user must enrol in TOTP and give a code at login.",
    "enterprise.security.encryption_enabled": "Encrypt document text, titles, the lexical "
    "index, stored originals and the manifest at rest.",
    "enterprise.security.master_key": "Master key for encryption at rest (base64, 32 bytes) "
    "instead of the key file; several keys separated by commas, newest first, while a "
    "rotation re-encrypts. Secret: `xnai config show` prints it redacted.",
    "enterprise.security.master_key_file": "Key file created by `xnai init` with mode 0600; "
    "default `<data_dir>/keys/master.key`.",
    "enterprise.security.key_max_age_days": "Compliance runs flag a master key older than "
    "this; `xnai keys rotate` renews it.",
    "enterprise.compliance.frameworks": "Frameworks the scheduled compliance self-audit runs.",
    "enterprise.compliance.data_retention_days": "Documents, expired sessions and audit lines "
    "older than this are removed by the retention job (7 years).",
    "enterprise.compliance.audit_interval_hours": "Hours between scheduled compliance runs "
    "of `xnai serve` (weekly).",
    "enterprise.compliance.backups_dir": "Directory backups are written to; compliance "
    "checks that it is set.",
    "enterprise.circuit_breaker.fail_max": "Consecutive failed calls to the language model "
    "(unreachable, timed out, HTTP 5xx) that open the circuit breaker: questions that need "
    "the model then get HTTP 503 with `Retry-After` at once, without calling it.",
    "enterprise.circuit_breaker.reset_timeout": "Seconds the breaker stays open; then one "
    "trial call decides: success closes it, failure opens it for another period.",
    "models.llm_backend": "`llama_server` (default): llama.cpp's server engine in-process, "
    "several answers decoded in one batch over parallel slots, no TCP port; `llama_cpp`: "
    "llama-cpp-python in-process, one answer at a time; `openai`: an OpenAI-compatible "
    "server; `fake`: deterministic test model.",
    "models.llm_path": "A GGUF file to load instead of the bundled preset.",
    "models.llm_preset": "Bundled model used when `models.llm_path` is unset.",
    "models.n_ctx": "Context window of the model in tokens (prompt, sources and answer).",
    "models.n_threads": "CPU threads llama.cpp uses to generate.",
    "models.n_batch": "Prompt tokens llama.cpp evaluates per step.",
    "models.temperature": "Sampling temperature; low values keep answers close to the sources.",
    "models.max_tokens": "Longest answer, in tokens, unless a request asks for less or more.",
    "models.openai_base_url": "Base URL of the OpenAI-compatible server (backend `openai`).",
    "models.openai_model": "Model name sent to the server (backend `openai`).",
    "models.openai_api_key": "Bearer token for the server, if it wants one. Secret.",
    "models.timeout_s": "Hard deadline of one call to the model, seconds: a call that has "
    "not finished by then fails (and counts for the circuit breaker). Also the HTTP timeout "
    "of backend `openai`.",
    "models.retry_attempts": "Calls per answer when the model fails transiently (connection "
    "error, timeout, HTTP 5xx); never retried: HTTP 4xx, invalid replies, an open breaker. "
    "Each failed call counts for the circuit breaker.",
    "models.retry_backoff_s": "Wait before the first retry, seconds; doubles per retry, "
    "with random jitter.",
    "models.max_concurrent_generations": "Answers the model generates at the same time. "
    "0 (default): 4 with `llama_server` (its parallel slots, decoded in one batch), 1 with "
    "`llama_cpp` (one sequence at a time); raise it for an HTTP backend that serves several.",
    "models.generation_queue": "Questions that may wait for a generation slot; when slots "
    "and queue are full, new ones get HTTP 429 with `Retry-After` instead of waiting. "
    "Keep slots plus queue well below the server's worker threads (40).",
    "models.fake_fault_file": "Fault injection for backend `fake` (tests, `make chaos`): "
    "the fake reads this file on every call; `ok` (or no file) answers, `fail` fails as an "
    "unreachable server, `hang` blocks until the content changes, `slow N` waits N seconds "
    "first, `invalid` fails as a rejected request (4xx). Each call appends a line to the "
    "file with `.calls` added to its name.",
    "models.embedder_backend": "`onnx`: all-MiniLM-L6-v2 ONNX, 384 dimensions; "
    "`fake`: deterministic hashing embedder for tests.",
    "models.embed_batch_size": "Texts embedded per batch during ingest.",
    "models.embed_threads": "CPU threads of the embedding model.",
    "models.max_seq_length": "Word pieces the embedding model reads per text; "
    "longer texts are truncated.",
    "models.models_dir": "Where bundled GGUF models are assembled.",
    "rag.mode": "Default retrieval mode.",
    "rag.top_k": "Chunks retrieved per question.",
    "rag.candidates": "Chunks each retriever (dense, lexical) returns before fusion.",
    "rag.min_score": "Best dense cosine similarity below which the library counts as "
    "silent on the question: the answer then says so instead of guessing.",
    "rag.context_tokens": 'With `rag.evidence = "chunks"`: token budget for the quoted '
    "whole chunks, capped by what `models.n_ctx` leaves after the prompt and the answer (0: "
    "all of that). Prompt evaluation dominates the time to first token on a CPU, so a "
    "smaller budget answers sooner.",
    "rag.evidence": "What the model is shown. `sentences`: the sentences of the retrieved "
    "chunks that bear on the question, each with its neighbours, within "
    "`rag.evidence_tokens`; each citation is the exact span of its document. `chunks`: whole "
    "retrieved chunks within `rag.context_tokens` (slower to answer; kept for comparison). "
    "See [evidence selection](../explanation/evidence.md).",
    "rag.evidence_tokens": 'With `rag.evidence = "sentences"`: token budget for the quoted '
    "sentences and their quotation markup, capped like `rag.context_tokens` (0: all that the "
    "window leaves).",
    "rag.rrf_k": "Constant k of reciprocal-rank fusion: score = sum of 1 / (k + rank).",
    "ingest.chunk_tokens": "Longest chunk, in word pieces of the embedding model.",
    "ingest.chunk_overlap": "Word pieces shared by neighbouring chunks; "
    "must be smaller than `ingest.chunk_tokens`.",
    "ingest.max_file_mb": "Larger files are refused with a per-file error.",
    "ingest.commit_every_chunks": "A long ingest commits a new index generation "
    "after this many new chunks.",
    "ingest.suffixes": "File types picked up when a folder is ingested.",
    "storage.data_dir": "Database, index generations and manifest; a relative path is "
    "relative to the working directory.",
    "storage.database_url": "SQLAlchemy URL; empty: the SQLite file `xnai.db` in the data "
    "directory. A PostgreSQL URL needs the `postgres` extra. Treated as a secret: "
    "`xnai config show`, the audit trail and the compliance state show it with its "
    "password and query string masked; prefer `XNAI_STORAGE__DATABASE_URL` to the file.",
    "storage.keep_generations": "Committed index generations kept on disk.",
    "server.host": "Address `xnai serve` binds to.",
    "server.port": "Port `xnai serve` listens on.",
    "server.max_body_mb": "Larger request bodies get HTTP 413.",
    "server.header_timeout_seconds": "A request's line and headers must arrive within this "
    "many seconds of the connection being made (or of the first byte of a later request on "
    "a kept-alive connection), or the server answers 408 and closes the connection; a "
    "client that sends nothing is closed without an answer. Sending more bytes does not "
    "extend it. Bodies are not limited by it.",
    "server.max_connections": "When this many connections (idle, slow or busy) are open, "
    "`xnai serve` answers further requests with HTTP 503 until some close. It raises the "
    "process's limit of open files to fit them when the hard limit allows.",
    "redis.url": "Redis for the answer cache and the ingest checkpoints, e.g. "
    "`redis://127.0.0.1:6379/0` (`rediss://` for TLS, `unix://` for a socket); empty: no "
    "Redis, no answer cache. The password goes in `redis.password`, never in the URL. "
    "See [Cache answers in Redis](../how-to/redis.md).",
    "redis.password": "Password of the Redis server (`requirepass` or an ACL user's). Secret.",
    "redis.namespace": "Prefix of every key (`<namespace>:answer:...`, "
    "`<namespace>:snapshot:<collection>`); give installations that share one Redis "
    "database different namespaces.",
    "redis.answer_cache_ttl": "Seconds a cached answer is kept; 0: no answer cache (the "
    "ingest checkpoints are still written).",
    "redis.snapshot_ttl": "Seconds an ingest checkpoint `<namespace>:snapshot:<collection>` "
    "is kept (one day).",
    "redis.socket_timeout": "Seconds to wait for Redis to connect or answer; an outage costs "
    "a request at most this much once, then nothing until the next retry.",
    "redis.retry_interval": "Seconds between attempts to reach Redis again during an "
    "outage; meanwhile the service answers without the cache.",
    "voice.stt_model": "Speech to text: `tiny.en` (fast, English only, 75 MB) or `base` "
    "(more accurate, multilingual, 145 MB, assembled into `models.models_dir` and verified on "
    "first use); `off`: none. Loaded on first use. See [Speak and listen](../how-to/voice.md).",
    "voice.stt_threads": "CPU threads of Whisper (CTranslate2, int8).",
    "voice.stt_beam_size": "Beam width of Whisper's decoding; 1 (greedy) is fastest and "
    "was as accurate on our test sentences as 5.",
    "voice.stt_language": "Language spoken (`en`, `de`, `fr` ...); empty: detected. "
    "tiny.en understands English only.",
    "voice.max_audio_seconds": "Recordings longer than this are refused (while decoding, "
    "so a long file costs no more than this).",
    "voice.tts_backend": "Text to speech: `piper` (the bundled en_US voice; falls back to "
    "espeak-ng when piper-tts or the voice is not installed), `espeak` (espeak-ng: robotic, "
    "tiny, instant), `kokoro` (needs `voice.kokoro_model` and `voice.kokoro_voices`), "
    "`off`: no spoken answers.",
    "voice.tts_threads": "CPU threads of Piper and Kokoro (onnxruntime).",
    "voice.speaking_rate": "Speed of speech: 1.0 normal, 1.25 a quarter faster, 0.8 slower.",
    "voice.piper_voice": "Another Piper voice: its `.onnx` file, with the `.onnx.json` "
    "beside it; default the bundled `en_US-joe-medium`.",
    "voice.espeak_voice": "Voice of espeak-ng (`espeak-ng --voices` lists them).",
    "voice.kokoro_model": "The Kokoro model file (e.g. `kokoro-v1.0.onnx`); with "
    '`voice.tts_backend = "kokoro"`.',
    "voice.kokoro_voices": "The Kokoro voices file (e.g. `voices-v1.0.bin`).",
    "voice.kokoro_voice": "Voice in the voices file (`af_heart`, `am_adam`, `bf_emma` ...).",
    "voice.kokoro_lang": "Language of the Kokoro voice (`en-us`, `en-gb` ...).",
    "server.cors_origins": "Planned: browser origins allowed to call the API (no CORS "
    "headers are sent yet).",
}

HEADER = """\
# Configuration reference

<!-- Generated by scripts/gen_config_reference.py from xnai.config; do not edit by hand. -->

Every setting of Xoe-NovAi, by section, as read from `config.toml`. Each key can also be
set with an environment variable named `XNAI_<SECTION>__<KEY>` in upper case (nested
sections add one `__` per level); the environment wins over the file. Lists are given to
environment variables as JSON, for example `XNAI_INGEST__SUFFIXES='[".md", ".txt"]'`.
An invalid value stops start-up with a message naming the key and the allowed values.
See [Configure Xoe-NovAi](../how-to/configure.md) for where the file is read from.
"""


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def sections(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], type[BaseModel]]]:
    """Every (dotted path, model) pair in document order, sections before subsections."""
    leaves = [n for n, f in model.model_fields.items() if not _is_section(f.annotation)]
    if prefix and leaves:
        yield prefix, model
    for name, field in model.model_fields.items():
        if _is_section(field.annotation):
            yield from sections(typing.cast(type[BaseModel], field.annotation), (*prefix, name))


def type_name(annotation: Any) -> str:
    """A short readable type: ``int``, ``path or unset``, ``list of text``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return type_name(type(args[0]))
    if origin in (typing.Union, types.UnionType):
        named = [type_name(a) for a in args if a is not type(None)]
        suffix = " or unset" if type(None) in args else ""
        return " or ".join(named) + suffix
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "text",
        Path: "path",
        SecretStr: "secret text",
        SecretUrl: "URL (its password is secret)",
    }.get(annotation, getattr(annotation, "__name__", str(annotation)))


def toml_value(value: Any) -> str:
    """``value`` as it would be written in config.toml."""
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return '""' if not value.get_secret_value() else "(secret)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path) and not value.is_absolute() and str(value)[0] not in "~.":
        return f'"./{value}"'
    if isinstance(value, str | Path):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def allowed(field: FieldInfo) -> str:
    """Allowed values or bounds, e.g. ``1 ≤ x ≤ 100`` or ``"dense", "hybrid"``."""
    literal = _literal_args(field.annotation)
    if literal:
        return ", ".join(toml_value(v) for v in literal)
    lower = upper = ""
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            lower = f"{item.ge} ≤ "
        elif isinstance(item, annotated_types.Gt):
            lower = f"{item.gt} < "
        elif isinstance(item, annotated_types.Le):
            upper = f" ≤ {item.le}"
        elif isinstance(item, annotated_types.Lt):
            upper = f" < {item.lt}"
    return f"{lower}x{upper}" if lower or upper else ""


def _literal_args(annotation: Any) -> tuple[Any, ...]:
    """Literal values of ``annotation`` or of a list of literals."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return typing.get_args(annotation)
    if origin is list:
        (inner,) = typing.get_args(annotation) or (None,)
        return _literal_args(inner)
    return ()


def env_name(path: tuple[str, ...]) -> str:
    """The environment variable that overrides the key at ``path``."""
    return ENV_PREFIX + ENV_DELIMITER.join(path).upper()


def describe(dotted: str, field: FieldInfo) -> str:
    """The note kept here, else the field's own description."""
    text = NOTES.get(dotted) or field.description or ""
    if text and not text[0].isupper() and not text.startswith("`"):
        text = text[0].upper() + text[1:]
    if text and not text.endswith("."):
        text += "."
    return text.replace("|", "\\|")


def section_table(path: tuple[str, ...], model: type[BaseModel]) -> str:
    """The markdown of one section: heading and one row per key."""
    lines = [
        f"## `[{'.'.join(path)}]`",
        "",
        "| key | type | default | allowed | description | environment variable |",
        "|---|---|---|---|---|---|",
    ]
    for name, field in model.model_fields.items():
        if _is_section(field.annotation):
            continue
        dotted = ".".join((*path, name))
        cells = [
            f"`{name}`",
            type_name(field.annotation),
            f"`{toml_value(field.default)}`",
            allowed(field),
            describe(dotted, field),
            f"`{env_name((*path, name))}`",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def setting_keys(model: type[BaseModel] = Settings) -> list[str]:
    """Every dotted key of the settings."""
    return [
        ".".join((*path, name))
        for path, section in sections(model)
        for name, field in section.model_fields.items()
        if not _is_section(field.annotation)
    ]


def render() -> str:
    """The whole reference page."""
    parts = [HEADER]
    parts.extend(section_table(path, model) for path, model in sections(Settings))
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Write the page, or with ``--check`` report whether it is current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the page is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run scripts/gen_config_reference.py")
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
