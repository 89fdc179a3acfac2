"""CPU time by component while a phase runs, read from /proc: on a machine where the web
server, the workers, the databases, the Kubernetes API and the load all share the same cores,
where the CPU goes says what bounds the throughput."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")

# The first pattern found in a process's command line names its component.
COMPONENTS = (
    ("gunicorn", "web (gunicorn)"),
    ("celery", "celery workers"),
    ("kube-apiserver", "kube-apiserver"),
    ("kube-controller-manager", "kube-controller-manager"),
    ("etcd", "etcd"),
    ("postgres", "postgresql"),
    ("redis-server", "redis"),
    ("pytest", "bench process (clients, emulator)"),
    ("tests.support.runner", "bench process (clients, emulator)"),
)


def _component(pid: str) -> str | None:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    for pattern, name in COMPONENTS:
        if pattern in command:
            return name
    return None


def _cpu_seconds(pid: str) -> float:
    # Own time plus that of children it has reaped (PostgreSQL's ended backends).
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def snapshot() -> dict[str, float]:
    """CPU seconds used so far per (pid, component), for every process of a component."""
    used: dict[str, float] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        component = _component(pid)
        if component is None:
            continue
        try:
            used[f"{pid}:{component}"] = _cpu_seconds(pid)
        except OSError:  # ended meanwhile
            continue
    return used


class CpuMeter:
    """CPU seconds each component used between enter and exit. Processes that started and
    ended inside the window are not seen (unless their parent reaped them)."""

    def __enter__(self) -> CpuMeter:
        self.before = snapshot()
        return self

    def __exit__(self, *exc) -> None:
        after = snapshot()
        self.seconds: Counter[str] = Counter()
        for key, seconds in after.items():
            component = key.split(":", 1)[1]
            self.seconds[component] += seconds - self.before.get(key, 0.0)

    def per_unit(self, units: int) -> dict[str, float]:
        """Milliseconds of CPU per unit of work (a create), by component, largest first."""
        return {
            component: round(seconds * 1e3 / units, 1)
            for component, seconds in self.seconds.most_common()
            if units
        }
