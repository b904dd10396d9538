"""Typed, validated configuration: embedded defaults < config.toml < XNAI_* environment."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from xnai.domain.errors import ConfigError
from xnai.domain.network import is_loopback

TELEMETRY_OFF = {
    "CHAINLIT_NO_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "LANGCHAIN_TRACING_V2": "false",
    "SCARF_NO_ANALYTICS": "true",
    "CRAWL4AI_TELEMETRY": "0",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
}


def disable_telemetry() -> None:
    """Set every known telemetry/phone-home switch of our dependencies to off."""
    os.environ.update(TELEMETRY_OFF)


SECRET_MARK = "**********"
SECRET_WORDS = ("password", "token", "secret", "key", "url")


def masked_url(url: str) -> str:
    """``url`` with its password and query string replaced by the secret mark; the scheme,
    user, host, port and path stay, so an operator still sees which database is used."""
    if not url:
        return ""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return SECRET_MARK
    head, query, _ = rest.partition("#")[0].partition("?")
    userinfo, at, location = head.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        head = f"{user}:{SECRET_MARK}@{location}" if colon else f"{user}@{location}"
    return f"{scheme}://{head}" + (f"?{SECRET_MARK}" if query else "")


class SecretUrl(SecretStr):
    """A URL that may hold a password: printed, logged and audited with it masked."""

    def _display(self) -> str:
        return masked_url(self.get_secret_value())


class Section(BaseModel):
    """A config section: unknown keys are errors, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Monitoring(Section):
    enabled: bool = True
    prometheus_port: int | None = Field(
        default=8001, ge=0, le=65535, description="metrics on a port of their own; 0: none"
    )
    prometheus_host: str = Field(
        default="127.0.0.1",
        description="address the metrics port binds to; off loopback it needs prometheus_token",
    )
    prometheus_token: SecretStr = Field(
        default=SecretStr(""),
        description="bearer token scrapers of the metrics port must send; required when "
        "prometheus_host is not a loopback address",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one JSON object per line; text: for reading"
    )
    log_to_file: bool = Field(default=True, description="also write the rotating log file")
    log_file: Path | None = Field(default=None, description="default: <data_dir>/logs/xnai.log")
    log_max_mb: float = Field(default=10.0, gt=0, description="size at which the file rotates")
    log_backups: int = Field(default=5, ge=0, description="rotated files kept")
    anomaly_bucket_s: float = Field(
        default=10.0, gt=0, description="anomaly detection: seconds of queries per data point"
    )
    anomaly_window: int = Field(
        default=90, ge=12, description="anomaly detection: data points in the baseline"
    )
    anomaly_threshold: float = Field(
        default=3.5, gt=0, description="anomaly detection: robust z-score that is anomalous"
    )
    anomaly_persistence: int = Field(
        default=3, ge=1, description="anomaly detection: anomalous points in a row to alert"
    )

    @model_validator(mode="after")
    def _token_off_loopback(self) -> Monitoring:
        serves = self.enabled and bool(self.prometheus_port)
        exposed = serves and not is_loopback(self.prometheus_host)
        if exposed and not self.prometheus_token.get_secret_value().strip():
            raise ValueError(
                f"the metrics port binds to {self.prometheus_host!r}, which other machines "
                "can reach: set a bearer token in enterprise.monitoring.prometheus_token "
                "(env XNAI_ENTERPRISE__MONITORING__PROMETHEUS_TOKEN), or bind it to 127.0.0.1"
            )
        return self


class Security(Section):
    session_timeout: int = Field(
        default=28800, ge=60, description="absolute lifetime of a login session, seconds"
    )
    session_idle_timeout: int = Field(
        default=1800, ge=60, description="a session unused this long expires, seconds"
    )
    failed_login_lockout: int = Field(
        default=5, ge=1, description="consecutive failed logins that lock an account"
    )
    lockout_duration: int = Field(default=900, ge=1, description="seconds an account stays locked")
    login_throttle_window: int = Field(
        default=900, ge=1, description="seconds of the sliding window failed logins count in"
    )
    login_client_failures: int = Field(
        default=20, ge=1, description="failed logins per client address in the window"
    )
    login_global_failures: int = Field(
        default=500, ge=1, description="failed logins over all clients in the window"
    )
    password_min_length: int = Field(default=12, ge=8)
    password_context_words: list[str] = Field(
        default=[], description="more words a password must not be built on"
    )
    mfa_required: bool = Field(default=False, description="every user must enrol in TOTP")
    encryption_enabled: bool = True
    master_key: SecretStr | None = Field(
        default=None, description="base64 Fernet key; default: the key file in the data dir"
    )
    master_key_file: Path | None = Field(
        default=None, description="default: <data_dir>/keys/master.key (mode 0600)"
    )
    key_max_age_days: int = Field(
        default=365, ge=1, description="compliance flags a master key older than this"
    )


class Compliance(Section):
    frameworks: list[Literal["gdpr", "soc2", "ccpa", "iso27001"]] = ["gdpr", "soc2"]
    data_retention_days: int = Field(
        default=2555, ge=1, description="documents, sessions and audit lines older go"
    )
    audit_interval_hours: float = Field(
        default=168.0, gt=0, description="scheduled compliance runs (weekly)"
    )
    backups_dir: Path | None = Field(default=None, description="where backups are written")


class CircuitBreaker(Section):
    fail_max: int = Field(default=3, ge=1)
    reset_timeout: float = Field(default=60.0, gt=0)


class Enterprise(Section):
    name: str = "Xoe-NovAi"
    environment: Literal["development", "production"] = "development"
    monitoring: Monitoring = Monitoring()
    security: Security = Security()
    compliance: Compliance = Compliance()
    circuit_breaker: CircuitBreaker = CircuitBreaker()


# Parallel slots of the llama.cpp server engine by default: answers being written share one
# batch per token, so four decode for little more than one costs on 2 cores.
SERVER_SLOTS = 4


class Models(Section):
    llm_backend: Literal["llama_cpp", "llama_server", "openai", "fake"] = Field(
        default="llama_server",
        description="llama_server: llama.cpp's server engine in this process, several answers "
        "at once; llama_cpp: llama-cpp-python, one answer at a time; openai: an "
        "OpenAI-compatible HTTP server; fake: tests",
    )
    llm_path: Path | None = Field(default=None, description="GGUF file; default: bundled model")
    llm_preset: Literal[
        "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-q4_0", "qwen2.5-coder-1.5b", "smollm2-135m"
    ] = "qwen2.5-coder-0.5b"
    n_ctx: int = Field(default=4096, ge=512)
    n_threads: int = Field(default=2, ge=1)
    n_batch: int = Field(default=512, ge=8)
    omp_wait_policy: Literal["passive", "active"] = Field(
        default="passive",
        description="how idle llama.cpp threads wait: active spins (fastest on an otherwise "
        "idle machine), passive sleeps (no collapse when other work shares the CPUs)",
    )
    temperature: float = Field(default=0.1, ge=0.0, le=2.0)
    max_tokens: int = Field(default=384, ge=1)
    openai_base_url: str = "http://127.0.0.1:11434/v1"
    openai_model: str = "qwen2.5:0.5b"
    openai_api_key: SecretStr = SecretStr("")
    timeout_s: float = Field(
        default=120.0, gt=0, description="hard deadline of one call to the model, seconds"
    )
    retry_attempts: int = Field(
        default=2,
        ge=1,
        le=10,
        description="calls per answer when the model fails transiently (connection error, "
        "timeout, HTTP 5xx); 1: no retry",
    )
    retry_backoff_s: float = Field(
        default=0.5, ge=0, description="first wait before a retry, seconds (doubles, jittered)"
    )
    max_concurrent_generations: int = Field(
        default=0,
        ge=0,
        description="answers generated at the same time; 0 (default): 4 with backend "
        "llama_server (the engine's parallel slots, decoded in one batch), 1 otherwise "
        "(llama-cpp-python decodes one sequence at a time)",
    )
    generation_queue: int = Field(
        default=8, ge=0, description="answers that may wait for a free slot; more get HTTP 429"
    )
    max_queue_wait_s: float = Field(
        default=60.0,
        gt=0,
        description="a request waits in the queue only while its expected wait (answers ahead "
        "of it times the average answer time) fits this; otherwise HTTP 429 with that estimate "
        "as Retry-After",
    )
    fake_fault_file: Path | None = Field(
        default=None,
        description="backend fake: a file whose content (ok, fail, hang, slow N, invalid) "
        "sets how each call behaves",
    )
    embedder_backend: Literal["onnx", "fake"] = "onnx"
    embedder_variant: Literal["fp32", "int8"] = Field(
        default="fp32",
        description="fp32: built locally from the bundled weights (faster, less memory); "
        "int8: the bundled int8 file",
    )
    embed_batch_size: int = Field(default=16, ge=1)
    embed_threads: int = Field(default=2, ge=1)
    max_seq_length: int = Field(default=256, ge=16, le=512)
    models_dir: Path = Field(default=Path("~/.cache/xnai/models"))

    @property
    def generation_slots(self) -> int:
        """``max_concurrent_generations`` with 0 resolved for the backend."""
        if self.max_concurrent_generations:
            return self.max_concurrent_generations
        return SERVER_SLOTS if self.llm_backend == "llama_server" else 1


class Rag(Section):
    mode: Literal["dense", "lexical", "hybrid"] = "hybrid"
    top_k: int = Field(default=5, ge=1, le=100)
    candidates: int = Field(default=50, ge=1, le=1000, description="per retriever before fusion")
    rrf_k: int = Field(default=60, ge=1)
    min_score: float = Field(
        default=0.2,
        ge=-1.0,
        le=1.0,
        description="best dense cosine below which nothing counts as relevant",
    )
    context_tokens: int = Field(
        default=1536, ge=0, description="token budget for quoted sources; 0: the whole window"
    )
    evidence: Literal["sentences", "chunks"] = Field(
        default="sentences",
        description="what the model is shown: the sentences that bear on the question "
        "(within evidence_tokens), or whole chunks (within context_tokens)",
    )
    evidence_tokens: int = Field(
        default=600, ge=0, description="token budget for quoted sentences; 0: the whole window"
    )


class Ingest(Section):
    chunk_tokens: int = Field(default=200, ge=16)
    chunk_overlap: int = Field(default=40, ge=0)
    max_file_mb: float = Field(default=50.0, gt=0)
    max_archive_mb: float = Field(
        default=100.0, gt=0, description="a .docx (a ZIP) may expand to at most this in total, MB"
    )
    max_archive_ratio: float = Field(
        default=200.0,
        ge=1,
        description="largest expansion of one ZIP member over 1 MB (Word XML stays under "
        "~185, zip bombs reach ~1000)",
    )
    max_archive_members: int = Field(default=1000, ge=1, description="most files in one .docx")
    commit_every_chunks: int = Field(default=2000, ge=1)
    suffixes: list[str] = [".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"]

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, v: int, info: Any) -> int:
        size = info.data.get("chunk_tokens", 200)
        if v >= size:
            raise ValueError(f"must be smaller than ingest.chunk_tokens ({size})")
        return v


class Storage(Section):
    data_dir: Path = Field(default=Path("./data"))
    database_url: SecretUrl = Field(
        default=SecretUrl(""), description="empty: SQLite file in data_dir"
    )
    keep_generations: int = Field(default=2, ge=1)


class Server(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_mb: float = Field(default=60.0, gt=0)
    cors_origins: list[str] = []
    behind_tls_proxy: bool = Field(
        default=False, description="a TLS-terminating proxy is in front (for a non-loopback host)"
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="a request's line and headers must arrive within this time, or the "
        "connection is closed",
    )
    max_connections: int = Field(
        default=2048, ge=1, le=65536, description="open connections beyond which requests get 503"
    )


class Redis(Section):
    url: str = Field(default="", description="empty: no Redis")
    password: SecretStr = SecretStr("")
    namespace: str = Field(default="xnai", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    answer_cache_ttl: int = Field(default=3600, ge=0, description="0: no answer cache")
    snapshot_ttl: int = Field(default=86400, ge=1)
    socket_timeout: float = Field(default=0.2, gt=0, le=30)
    retry_interval: float = Field(default=2.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        v = v.strip()
        if v and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix:// (or be empty)")
        if v and urlsplit(v).password:
            raise ValueError("give the password in redis.password, where it stays secret")
        return v


class Voice(Section):
    stt_model: Literal["tiny.en", "base", "off"] = Field(
        default="tiny.en",
        description="speech to text: tiny.en (fast, English) or base (more accurate); off: none",
    )
    stt_threads: int = Field(default=2, ge=1, description="CPU threads of speech to text")
    stt_beam_size: int = Field(default=1, ge=1, le=10, description="1: greedy decoding")
    stt_language: str = Field(
        default="en", pattern=r"^([a-z]{2,3})?$", description="empty: detect (base only)"
    )
    max_audio_seconds: float = Field(
        default=120.0, gt=0, description="longer recordings are refused"
    )
    tts_backend: Literal["piper", "espeak", "kokoro", "off"] = "piper"
    tts_threads: int = Field(default=2, ge=1, description="CPU threads of piper and kokoro")
    speaking_rate: float = Field(default=1.0, ge=0.5, le=2.0, description="1.0: normal speed")
    piper_voice: Path | None = Field(
        default=None, description="a Piper .onnx voice; default: the bundled en_US voice"
    )
    espeak_voice: str = Field(default="en-us", pattern=r"^[A-Za-z][A-Za-z0-9_+-]{0,39}$")
    kokoro_model: Path | None = Field(default=None, description="the Kokoro .onnx model file")
    kokoro_voices: Path | None = Field(default=None, description="the Kokoro voices file")
    kokoro_voice: str = Field(default="af_heart", pattern=r"^[A-Za-z0-9_]{1,40}$")
    kokoro_lang: str = Field(default="en-us", pattern=r"^[a-z]{2,3}(-[a-z]{2,3})?$")


class Settings(BaseSettings):
    """The effective configuration of one process."""

    model_config = SettingsConfigDict(
        env_prefix="XNAI_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    enterprise: Enterprise = Enterprise()
    models: Models = Models()
    rag: Rag = Rag()
    ingest: Ingest = Ingest()
    storage: Storage = Storage()
    server: Server = Server()
    redis: Redis = Redis()
    voice: Voice = Voice()

    # Relative paths are relative to the config file that set them (else the working dir).
    _base_dir: Path | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_CONFIG_FILE.get("path"))
        # XOE_* is the predecessor's prefix: still honoured, below XNAI_*.
        legacy = EnvSettingsSource(settings_cls, env_prefix="XOE_", env_nested_delimiter="__")
        return (init_settings, env_settings, legacy, toml)

    def absolute(self, path: Path) -> Path:
        """``path`` made absolute against the config file's directory."""
        path = path.expanduser()
        if not path.is_absolute() and self._base_dir is not None:
            path = self._base_dir / path
        return path.resolve()

    @property
    def data_dir(self) -> Path:
        """Absolute data directory."""
        return self.absolute(self.storage.data_dir)

    @property
    def models_dir(self) -> Path:
        """Absolute directory of assembled model files."""
        return self.absolute(self.models.models_dir)


_CONFIG_FILE: dict[str, Path | None] = {"path": None}


def find_config_file(explicit: Path | None = None) -> Path | None:
    """The config file to read: explicit, $XNAI_CONFIG, or ./config.toml when present."""
    if explicit is not None:
        return explicit
    env = os.environ.get("XNAI_CONFIG")
    if env:
        return Path(env)
    local = Path("config.toml")
    return local if local.is_file() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate settings; raise ConfigError naming the bad key and allowed values."""
    path = find_config_file(config_file)
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    _CONFIG_FILE["path"] = path
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path)) from None
    finally:
        _CONFIG_FILE["path"] = None
    settings._base_dir = path.resolve().parent if path is not None else None
    return settings


def describe_validation_error(exc: ValidationError, path: Path | None) -> str:
    """One line per bad key: ``models.llm_backend: Input should be ... (got 'x')``."""
    where = f" in {path}" if path else ""
    lines = [f"invalid configuration{where}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        got = err.get("input")
        hidden = isinstance(got, dict) or _may_be_secret(err["loc"])
        shown = "" if hidden else f" (got {got!r})"
        env = "XNAI_" + "__".join(str(p) for p in err["loc"]).upper()
        lines.append(f"  {key}: {err['msg']}{shown}  [file key {key} or env {env}]")
    return "\n".join(lines)


def _may_be_secret(loc: tuple[int | str, ...]) -> bool:
    """Whether the value at ``loc`` is (or, for an unknown key, may be) a secret: error
    messages never repeat it."""
    model: Any = Settings
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return any(word in str(part).lower() for word in SECRET_WORDS)
        model = field.annotation
    return "Secret" in str(model)


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, secrets replaced by a mark."""

    def walk(value: Any) -> Any:
        if isinstance(value, SecretStr):  # the mark, or a URL with its password masked
            return str(value)
        if isinstance(value, BaseModel):
            return {k: walk(getattr(value, k)) for k in type(value).model_fields}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(settings)
