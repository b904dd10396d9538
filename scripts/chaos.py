"""The circuit breaker's three-step chaos test over HTTP against a real ``xnai serve``.

The server runs the fault-injectable fake model (``models.llm_backend = "fake"`` with
``models.fake_fault_file``) and a short breaker reset timeout; this script switches the
fault file and checks what clients see:

1. normal operation: a question is answered (200);
2. activation: with the model failing, ``fail_max`` failed calls open the breaker; then
   questions get 503 with ``Retry-After`` and the documented body within 50 ms, and the
   model is not called; retrieval-only questions still get 200;
3. recovery: once ``Retry-After`` has passed, one trial call succeeds and closes the
   breaker.

Usage: ``python scripts/chaos.py [--reset-timeout 2]``; exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

QUESTION = "At what rpm does the coolant pump run?"
DOCUMENT = "# Reactor\n\nThe coolant pump of reactor seven runs at 1450 rpm.\n"
DEGRADED = "AI service temporarily unavailable"
FAIL_MAX = 3
FAST_S = 0.050

CONFIG = """\
[models]
llm_backend = "fake"
embedder_backend = "fake"
fake_fault_file = "{fault}"
retry_attempts = 2
retry_backoff_s = 0.05
timeout_s = 5

[enterprise.circuit_breaker]
fail_max = {fail_max}
reset_timeout = {reset_timeout}

[enterprise.monitoring]
prometheus_port = 0

[storage]
data_dir = "{data}"

[server]
host = "127.0.0.1"
port = {port}
"""


@dataclass
class Setup:
    """A data directory with one document and an admin, configured for the chaos test."""

    root: Path
    port: int
    reset_timeout: float
    token: str = ""

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def fault(self) -> Path:
        return self.root / "fault"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self) -> int:
        """Calls the server made to the model so far."""
        path = self.fault.with_name(self.fault.name + ".calls")
        return len(path.read_text().splitlines()) if path.exists() else 0

    def set_fault(self, mode: str) -> None:
        """Switch the model's behaviour (read by the server on every call)."""
        self.fault.write_text(mode + "\n", encoding="utf-8")


@dataclass
class Report:
    """Checks made and violations found, printed as they happen."""

    say: Callable[[str], None] = print
    violations: list[str] = field(default_factory=list)

    def step(self, title: str) -> None:
        self.say(f"\n{title}")

    def check(self, ok: bool, what: str) -> bool:
        self.say(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            self.violations.append(what)
        return ok


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(root: Path, reset_timeout: float) -> Setup:
    """Write the configuration, create an admin and ingest one document, in-process."""
    from xnai.bootstrap import build
    from xnai.config import load_settings
    from xnai.domain.rbac import LOCAL_ADMIN, Role

    setup = Setup(root, free_port(), reset_timeout)
    setup.set_fault("ok")
    setup.config.write_text(
        CONFIG.format(
            fault=setup.fault,
            data=root / "data",
            port=setup.port,
            fail_max=FAIL_MAX,
            reset_timeout=reset_timeout,
        ),
        encoding="utf-8",
    )
    doc = root / "reactor.md"
    doc.write_text(DOCUMENT, encoding="utf-8")
    c = build(load_settings(setup.config))
    try:
        c.startup.open_index()
        password = secrets.token_urlsafe(24)
        c.auth.create_user(LOCAL_ADMIN, "chaos", Role.ADMIN, password)
        c.ingestion.ingest_files([doc], user="chaos")
        setup.token = c.auth.login("chaos", password).token
    finally:
        c.close()
    return setup


@contextlib.contextmanager
def serve(setup: Setup, timeout_s: float = 30.0) -> Iterator[None]:
    """``xnai serve`` in a child process until the block ends."""
    xnai = Path(sys.executable).with_name("xnai")
    command = [str(xnai)] if xnai.exists() else [sys.executable, "-m", "xnai"]
    log = (setup.root / "server.log").open("wb")
    env = {**os.environ, "XNAI_CONFIG": str(setup.config)}
    server = subprocess.Popen(
        [*command, "serve", "--port", str(setup.port)], env=env, stdout=log, stderr=log
    )
    try:
        wait_ready(setup.url, server, timeout_s)
        yield
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def wait_ready(url: str, server: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Return once ``/ready`` answers 200 (the model warmed up); RuntimeError otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"xnai serve exited with status {server.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"xnai serve was not ready within {timeout_s:g} s")


def ask(http: httpx.Client, **extra: object) -> tuple[httpx.Response, float]:
    """POST /v1/query; the response and its round-trip time in seconds."""
    started = time.perf_counter()
    r = http.post("/v1/query", json={"query": QUESTION, **extra})
    return r, time.perf_counter() - started


def is_degraded(r: httpx.Response, reset_timeout: float) -> bool:
    """503 with ``Retry-After`` (1 s up to the reset timeout) and the documented body."""
    try:
        retry_after = int(r.headers.get("Retry-After", ""))
        body = r.json()
    except ValueError:
        return False
    return (
        r.status_code == 503
        and 1 <= retry_after <= max(1, round(reset_timeout + 0.5))
        and body == {"error": DEGRADED, "retry_after": retry_after}
    )


def normal_operation(http: httpx.Client, setup: Setup, report: Report) -> None:
    """Step 1: the model answers."""
    report.step("1. normal operation")
    before = setup.calls()
    r, _ = ask(http)
    answered = r.status_code == 200 and "1450 rpm" in r.json().get("response", "")
    report.check(answered, f"a question is answered with 200 (got {r.status_code})")
    report.check(setup.calls() == before + 1, "the model was called once")


def activation(http: httpx.Client, setup: Setup, report: Report) -> int:
    """Step 2: failures open the breaker; then 503 at once without calling the model.
    Returns the last Retry-After."""
    report.step(f"2. activation: the model fails; {FAIL_MAX} failed calls open the breaker")
    setup.set_fault("fail")
    before = setup.calls()
    opened = False
    for _ in range(FAIL_MAX + 1):
        r, _ = ask(http)
        report.check(r.status_code == 503, f"a failing model gives 503 (got {r.status_code})")
        if is_degraded(r, setup.reset_timeout):
            opened = True
            break
    failed = setup.calls() - before
    report.check(opened, "the breaker opened")
    report.check(failed == FAIL_MAX, f"after exactly {FAIL_MAX} failed calls (made {failed})")
    before = setup.calls()
    retry_after = 1
    for i in range(5):
        r, elapsed = ask(http)
        ms = elapsed * 1000
        report.check(
            is_degraded(r, setup.reset_timeout) and elapsed < FAST_S,
            f"question {i + 1}: 503, Retry-After {r.headers.get('Retry-After')}, "
            f"body {r.text} in {ms:.1f} ms (limit {FAST_S * 1000:.0f} ms)",
        )
        retry_after = int(r.headers.get("Retry-After", "1") or 1)
    with http.stream("POST", "/v1/query", json={"query": QUESTION, "stream": True}) as r:
        r.read()
        report.check(is_degraded(r, setup.reset_timeout), "a streaming question: a real 503")
    report.check(setup.calls() == before, "the model was not called while the breaker is open")
    breaker_metric(http, report, expected=1)
    r, _ = ask(http, generate=False)
    report.check(
        r.status_code == 200 and bool(r.json().get("sources")),
        f"a retrieval-only question still gets 200 with sources (got {r.status_code})",
    )
    return retry_after


def breaker_metric(http: httpx.Client, report: Report, expected: int) -> None:
    """``xoe_circuit_breaker_state{backend="fake"}`` on ``/metrics`` has ``expected``."""
    r = http.get("/metrics")
    if r.status_code == 404:
        report.say("  --   /metrics is not served: breaker metric not checked")
        return
    prefix = 'xoe_circuit_breaker_state{backend="fake"} '
    values = [line.removeprefix(prefix) for line in r.text.splitlines() if line.startswith(prefix)]
    shown = values[0] if values else "missing"
    report.check(
        values == [f"{float(expected)}"],
        f"/metrics reports xoe_circuit_breaker_state {expected} (got {shown})",
    )


def recovery(http: httpx.Client, setup: Setup, report: Report, retry_after: int) -> None:
    """Step 3: after the reset timeout one trial call succeeds and closes the breaker."""
    report.step("3. recovery: the model is back; after Retry-After one trial call decides")
    setup.set_fault("ok")
    r, _ = ask(http)
    report.check(is_degraded(r, setup.reset_timeout), "before the timeout: still 503")
    time.sleep(retry_after + 0.1)
    before = setup.calls()
    r, _ = ask(http)
    report.check(r.status_code == 200, f"the trial question gets 200 (got {r.status_code})")
    report.check(setup.calls() == before + 1, "exactly one call was made to the model")
    r, _ = ask(http)
    report.check(r.status_code == 200, f"the breaker is closed: 200 again (got {r.status_code})")
    report.check(setup.calls() == before + 2, "and the model is called again")
    breaker_metric(http, report, expected=0)


def scenario(setup: Setup, report: Report) -> None:
    """The three steps against the running server."""
    headers = {"Authorization": f"Bearer {setup.token}"}
    with httpx.Client(base_url=setup.url, headers=headers, timeout=15) as http:
        http.get("/health")  # open the connection, so timings measure the request alone
        normal_operation(http, setup, report)
        retry_after = activation(http, setup, report)
        recovery(http, setup, report, retry_after)


def run(reset_timeout: float = 2.0, say: Callable[[str], None] = print) -> list[str]:
    """Prepare, serve and run the scenario; the violations found."""
    report = Report(say)
    with tempfile.TemporaryDirectory(prefix="xnai-chaos-") as tmp:
        setup = prepare(Path(tmp), reset_timeout)
        say(
            f"xnai serve on {setup.url}: fake model, breaker fail_max {FAIL_MAX}, "
            f"reset_timeout {reset_timeout:g} s"
        )
        try:
            with serve(setup):
                scenario(setup, report)
        except RuntimeError as exc:
            log = setup.root / "server.log"
            say(log.read_text(errors="replace")[-3000:] if log.exists() else "")
            report.check(False, str(exc))
    return report.violations


def main(argv: list[str] | None = None) -> int:
    """Run the chaos test; 0 when every check passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reset-timeout", type=float, default=2.0, help="seconds (default 2)")
    args = parser.parse_args(argv)
    violations = run(args.reset_timeout)
    if violations:
        print(f"\n{len(violations)} violation(s)")
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
