"""``xnai cache``: the Redis cache's health, the ingest checkpoints, dropping cached answers."""

from __future__ import annotations

import json
from typing import Any

import typer

from xnai.bootstrap import Container
from xnai.cli.context import container, out

app = typer.Typer(help="The Redis answer cache and ingest checkpoints.", no_args_is_help=True)


def checkpoints_of(c: Container) -> dict[str, Any]:
    """The ingest checkpoint of every collection that has one (empty without Redis)."""
    checkpoints = c.checkpoints
    if checkpoints is None:
        return {}
    return checkpoints.read_all(sorted(c.access.collections()))


@app.command("status")
def status() -> None:
    """Show whether Redis is configured and reachable, and the ingest checkpoints."""
    c = container()
    r = c.settings.redis
    payload: dict[str, Any] = {"configured": c.cache is not None}
    if c.cache is not None:
        payload |= {
            "url": getattr(c.cache, "location", ""),
            "namespace": r.namespace,
            "healthy": c.cache.healthy,
            "answer_cache_ttl": r.answer_cache_ttl,
            "snapshot_ttl": r.snapshot_ttl,
            "checkpoints": checkpoints_of(c),
        }
    out.print_json(json.dumps(payload))


@app.command("clear")
def clear() -> None:
    """Drop every cached answer (checkpoints stay)."""
    c = container()
    if c.cache is None:
        out.print("no cache is configured ([redis] url is empty)")
        return
    removed = c.forget_cached_answers()
    out.print(f"removed {removed} cached answers")
