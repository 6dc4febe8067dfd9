"""How many CPU threads torch and onnxruntime use: as many as this process may really run.

torch starts one intra-op thread per core it sees, but a container's CPU quota or a
restricted affinity can grant far fewer; then every small operation waits for threads that
are not scheduled. The rule: ``--threads N``, else ``OMP_NUM_THREADS``, else the CPUs this
process may run on (``os.sched_getaffinity``) capped by the cgroup CPU quota and by the CPUs
that other processes leave idle (the load average).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from snnconv.errors import InputError

#: Overrides where the cgroup files are read from (tests point it at a fake directory).
CGROUP_ROOT_ENV = "SNNCONV_CGROUP_ROOT"
DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"
# cgroup v1 mounts the cpu controller under one of these names.
_V1_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu", "")


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and where it came from, as printed: "torch threads: 2 (cgroup quota)"."""

    count: int
    source: str

    def __str__(self) -> str:
        return f"{self.count} ({self.source})"


def cgroup_quota(root: str | Path | None = None) -> float | None:
    """CPUs the cgroup quota grants (quota / period, e.g. 1.5), or None when unlimited or
    unknown. Reads cgroup v2 ``cpu.max`` ("max" = none), else v1 ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us`` (-1 = none)."""
    base = Path(root or os.environ.get(CGROUP_ROOT_ENV) or DEFAULT_CGROUP_ROOT)
    v2 = _read(base / "cpu.max")
    if v2 is not None:
        parts = v2.split()
        if len(parts) == 2 and parts[0] != "max":
            return _ratio(parts[0], parts[1])
        return None
    for sub in _V1_DIRS:
        quota = _read(base / sub / "cpu.cfs_quota_us")
        period = _read(base / sub / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return _ratio(quota, period)
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None  # a file we do not understand grants nothing we can rely on
    return q / p if q > 0 and p > 0 else None


def affinity_cpus() -> int:
    """CPUs this process may be scheduled on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def free_cpus(load: float | None = None) -> int:
    """CPUs the rest of the machine leaves idle: its CPU count less the 1-minute load
    average (``load``, read when None), at least 1."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    return max(1, math.floor((os.cpu_count() or 1) - load + 0.5))


def default_threads(
    cgroup_root: str | Path | None = None, load: float | None = None
) -> ThreadChoice:
    """The CPUs this process may run on, the cgroup quota where that is smaller, and no
    more than the CPUs other processes leave idle.

    The last cap is there because snnconv's operations are small: an intra-op thread that
    is descheduled stalls every one of them, so on a loaded machine one thread beats two
    many times over (bench/busy.py measures it), while a thread too few on an idle machine
    costs at most that thread's share of each op. The load average is system-wide (in a
    container, the host's), so a busy host also means fewer threads.
    """
    cpus = affinity_cpus()
    choice = ThreadChoice(max(1, cpus), "CPU affinity")
    quota = cgroup_quota(cgroup_root)
    if quota is not None and math.ceil(quota) < choice.count:
        choice = ThreadChoice(max(1, math.ceil(quota)), "cgroup quota")
    idle = free_cpus(load)
    if idle < choice.count:
        choice = ThreadChoice(idle, "CPUs left idle by other processes")
    return choice


def choose_threads(
    requested: int | None = None,
    env: Mapping[str, str] | None = None,
    cgroup_root: str | Path | None = None,
    load: float | None = None,
) -> ThreadChoice:
    """``requested`` (``--threads``) wins, then ``OMP_NUM_THREADS``, then the default."""
    if requested is not None:
        if requested < 1:
            raise InputError(f"--threads must be >= 1, got {requested}")
        return ThreadChoice(requested, "--threads")
    env = os.environ if env is None else env
    text = env.get("OMP_NUM_THREADS", "").strip()
    if text:
        first = text.split(",")[0]  # OpenMP allows a list, one count per nesting level
        if not first.isdigit() or int(first) < 1:
            raise InputError(f"OMP_NUM_THREADS={text!r}: expected a positive integer")
        return ThreadChoice(int(first), "OMP_NUM_THREADS")
    return default_threads(cgroup_root, load)


_applied: ThreadChoice | None = None


def apply(choice: ThreadChoice) -> ThreadChoice:
    """Set torch's intra-op threads to ``choice``; onnxruntime sessions made later follow."""
    import torch

    global _applied
    torch.set_num_threads(choice.count)
    _applied = choice
    return choice


def current() -> ThreadChoice:
    """The choice applied in this process, or the one the rule gives now."""
    return _applied or choose_threads()


def onnxruntime_options(opts=None):
    """``onnxruntime.SessionOptions`` with the same thread count as torch (one pool each,
    so a verification never runs more threads than the CPUs granted)."""
    import onnxruntime as ort

    opts = opts or ort.SessionOptions()
    opts.intra_op_num_threads = current().count
    opts.inter_op_num_threads = 1
    return opts
