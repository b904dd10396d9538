"""Machine and process figures read from ``/proc`` and ``os.statvfs`` when scraped.

Linux only; on a system without ``/proc`` a reader returns None and the metric is left out
of the scrape rather than reported wrong.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

# Below this many clock ticks since the last sample, CPU use is too coarse to report; the
# previous sample stays the baseline so quick scrapes report a longer average instead.
MIN_CPU_TICKS = 50


def cpu_times(proc: Path) -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, from ``/proc/stat``."""
    try:
        with open(proc / "stat", encoding="ascii") as f:
            first = f.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal (guest time is inside user and nice)
    ticks = [int(v) for v in first[1:9]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    total = sum(ticks)
    return total - idle, total


def rss_bytes(proc: Path) -> int | None:
    """Resident memory of this process, from ``/proc/self/statm``."""
    try:
        pages = int((proc / "self" / "statm").read_text(encoding="ascii").split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def disk_percent(path: Path) -> float | None:
    """Use of the file system holding ``path`` (or its nearest existing parent), as ``df``
    counts it: used / (used + available to unprivileged users)."""
    target = path.absolute()
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        st = os.statvfs(target)
    except OSError:
        return None
    used = st.f_blocks - st.f_bfree
    usable = used + st.f_bavail
    return 100.0 * used / usable if usable > 0 else None


def network_bytes(proc: Path) -> tuple[int, int] | None:
    """(received, sent) bytes of every interface but loopback, from ``/proc/net/dev``."""
    try:
        lines = (proc / "net" / "dev").read_text(encoding="ascii").splitlines()[2:]
    except OSError:
        return None
    rx = tx = 0
    for line in lines:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name.strip() == "lo" or len(fields) < 9:
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


def process_uptime(proc: Path) -> float | None:
    """Seconds since this process started, from ``/proc/self/stat`` and ``/proc/uptime``."""
    try:
        stat = (proc / "self" / "stat").read_text(encoding="ascii")
        since_boot = float((proc / "uptime").read_text(encoding="ascii").split()[0])
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        start_ticks = int(stat.rpartition(")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return None
    return max(0.0, since_boot - start_ticks / os.sysconf("SC_CLK_TCK"))


class SystemReader:
    """The system metrics of the catalogue, each a function called at scrape time."""

    def __init__(self, data_dir: Path, proc: Path = Path("/proc")) -> None:
        self.data_dir = data_dir
        self.proc = proc
        self._lock = threading.Lock()
        self._baseline = cpu_times(proc) or (0, 0)
        self._cpu: float | None = None
        self._started = time.monotonic()

    def cpu_percent(self) -> float | None:
        """Machine CPU use since the previous sample, percent of all CPUs (since boot until
        enough time has passed for a sample of its own)."""
        now = cpu_times(self.proc)
        if now is None:
            return None
        with self._lock:
            busy, total = now[0] - self._baseline[0], now[1] - self._baseline[1]
            if total >= MIN_CPU_TICKS:
                self._cpu = 100.0 * busy / total
                self._baseline = now
            elif self._cpu is None and now[1] > 0:
                self._cpu = 100.0 * now[0] / now[1]
            return self._cpu

    def memory_bytes(self) -> float | None:
        """Resident memory of this process, bytes."""
        rss = rss_bytes(self.proc)
        return float(rss) if rss is not None else None

    def disk_percent(self) -> float | None:
        """Use of the data directory's file system, percent."""
        return disk_percent(self.data_dir)

    def rx_bytes(self) -> float | None:
        """Bytes received by the machine's interfaces (loopback excluded)."""
        net = network_bytes(self.proc)
        return float(net[0]) if net is not None else None

    def tx_bytes(self) -> float | None:
        """Bytes sent by the machine's interfaces (loopback excluded)."""
        net = network_bytes(self.proc)
        return float(net[1]) if net is not None else None

    def uptime(self) -> float | None:
        """Seconds since the process started (since this reader was made without /proc)."""
        up = process_uptime(self.proc)
        return up if up is not None else time.monotonic() - self._started

    def readers(self) -> dict[str, Callable[[], float | None]]:
        """Catalogue name -> reader."""
        return {
            "xoe_cpu_usage_percent": self.cpu_percent,
            "xoe_memory_usage_bytes": self.memory_bytes,
            "xoe_disk_usage_percent": self.disk_percent,
            "xoe_network_rx_bytes_total": self.rx_bytes,
            "xoe_network_tx_bytes_total": self.tx_bytes,
            "xoe_uptime_seconds": self.uptime,
        }
