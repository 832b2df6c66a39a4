"""CPU time and memory of a process, read from /proc (Linux only, like the rest of the bench)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float | None:
    """User plus system time of every thread of ``pid`` so far; None when it cannot be read."""
    if pid is None:
        return None
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ")".
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def memory_mb(pid: int, field: str = "VmHWM") -> float | None:
    """A /proc/<pid>/status memory line in MB: VmHWM is the peak resident set, VmRSS the current."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return None


def pin(pid: int, cpus: set[int] | None) -> None:
    """Keep ``pid`` on ``cpus`` (no-op without a set, or where affinity is not allowed)."""
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, cpus)
