"""Readiness of each component (llm, index, database, redis), fast and without a model call.

Each component reports ``status``: ``ok``, ``starting`` (still loading) or ``error``, and
feeds ``xoe_component_health_status{component}`` (1 for ok, else 0). The service is ready
when the index, the database and the model are ``ok``; the model counts as ready once loaded
even while its circuit breaker is open, because retrieval-only queries still work, and Redis
is optional: the service answers without its cache. The database and Redis are asked in a
worker thread with a short deadline, so a hung backend cannot stall the probe. Anonymous
callers see each component's status only (``public_view``); the details, errors included,
are for callers with ``read:metrics``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from xnai.bootstrap import Container
from xnai.domain.cache import Cache
from xnai.domain.metrics import Metrics
from xnai.services.breaker import CircuitBreaker
from xnai.services.knowledge import KnowledgeBase
from xnai.services.lazy import LazyChatModel
from xnai.services.startup import Readiness, Startup

OK, STARTING, ERROR = "ok", "starting", "error"
CHECK_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class Probe:
    """What the probe reads: the library and its database, what has finished loading, the
    model and its circuit breaker, the shared cache, and the metrics it reports into."""

    kb: KnowledgeBase
    readiness: Readiness
    model: LazyChatModel
    metrics: Metrics
    breaker: CircuitBreaker | None = None
    cache: Cache | None = None
    startup: Startup | None = None

    @classmethod
    def of(cls, c: Container) -> Probe:
        """The probe of a container."""
        return cls(
            kb=c.kb,
            readiness=c.readiness,
            model=c.model,
            metrics=c.metrics,
            breaker=getattr(c, "breaker", None),
            cache=getattr(c, "cache", None),
            startup=c.startup,
        )


async def within(check: Callable[[], Any], timeout: float = CHECK_TIMEOUT_S) -> Any:
    """Run a blocking check in a worker thread; TimeoutError after ``timeout`` seconds (the
    thread finishes on its own)."""
    return await asyncio.wait_for(asyncio.to_thread(check), timeout)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT_S:g} s"
    return f"{type(exc).__name__}: {exc}"


async def database(probe: Probe) -> dict[str, Any]:
    """The document and identity database answers a trivial query."""
    started = time.perf_counter()
    out: dict[str, Any] = {"backend": probe.kb.database}
    try:
        await within(probe.kb.ping_database)
    except Exception as exc:
        return {**out, "status": ERROR, "error": _failure(exc)}
    return {**out, "status": OK, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def redis(probe: Probe) -> dict[str, Any]:
    """The shared cache, when one is configured (``healthy`` may ping it)."""
    cache = probe.cache
    if cache is None:
        return {"configured": False}
    try:
        healthy = bool(await within(lambda: cache.healthy))
    except Exception as exc:
        return {"configured": True, "status": ERROR, "error": _failure(exc)}
    return {"configured": True, "status": OK if healthy else ERROR}


def breaker_state(probe: Probe) -> str | None:
    """The model's circuit breaker state (closed, open, half_open), when there is one."""
    breaker = probe.breaker
    if breaker is None:
        return None
    state = getattr(breaker, "state", None)
    if callable(state):
        state = state()
    if state is None:
        return None
    if isinstance(state, Enum):
        return state.name.lower()
    return str(state).lower().replace("-", "_")


def llm(probe: Probe) -> dict[str, Any]:
    """Loaded, or still loading, or failed to load; and the breaker's state."""
    error = probe.readiness.model_error
    out: dict[str, Any] = {"ready": probe.model.loaded, "model": probe.model.name, "error": error}
    breaker = breaker_state(probe)
    if breaker is not None:
        out["breaker"] = breaker
    if error or breaker == "open":
        out["status"] = ERROR
    else:
        out["status"] = OK if probe.model.loaded else STARTING
    return out


def index(probe: Probe) -> dict[str, Any]:
    """The committed index generation is loaded and intact (damaged files are an error
    that names the fix, until a rebuild by any process repairs them)."""
    r = probe.readiness
    if probe.startup is not None and (r.index_ready or r.index_error):
        probe.startup.check_index()
    if r.index_error:
        return {"status": ERROR, "ready": False, "generation": None, "error": r.index_error}
    ready = r.index_ready
    return {
        "status": OK if ready else STARTING,
        "ready": ready,
        "generation": probe.kb.snapshot.generation if ready else None,
    }


async def components(probe: Probe) -> dict[str, dict[str, Any]]:
    """Every component's state; also sets ``xoe_component_health_status``."""
    db, cache = await asyncio.gather(database(probe), redis(probe))
    found = {"llm": llm(probe), "index": index(probe), "database": db, "redis": cache}
    for name, state in found.items():
        if "status" in state:
            healthy = 1.0 if state["status"] == OK else 0.0
            probe.metrics.set("xoe_component_health_status", healthy, component=name)
    return found


PUBLIC_KEYS = ("status", "configured")


def public_view(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each component's status only: error texts name hosts, users and files, which
    anonymous callers must not see."""
    return {
        name: {k: v for k, v in state.items() if k in PUBLIC_KEYS} for name, state in found.items()
    }


def verdict(found: dict[str, dict[str, Any]]) -> tuple[str, int]:
    """The overall status and HTTP code: ``ready`` 200; ``degraded`` 200 when only optional
    parts fail (the breaker is open, Redis is down) and 503 when a required one failed;
    ``starting`` 503 while loading."""
    llm_, index_, db = found["llm"], found["index"], found["database"]
    model_ok = bool(llm_["ready"]) and not llm_["error"]
    if model_ok and index_["status"] == OK and db["status"] == OK:
        optional = (llm_["status"], found["redis"].get("status", OK))
        return ("ready" if optional == (OK, OK) else "degraded"), 200
    if llm_["error"] or ERROR in (index_["status"], db["status"]):
        return "degraded", 503
    return "starting", 503
