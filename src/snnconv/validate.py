"""A converted model as a contract: limits on a report, each with its verdict (``validate``)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass

from snnconv.report.record import Report


@dataclass(frozen=True)
class LimitKind:
    """What a limit bounds in a report, and how: at least (``min_*``) or at most."""

    measure: Callable[[Report], float]
    holds: Callable[[float, float], bool]  # (measured, limit) -> passed


#: Every limit validate knows, by its name in the CLI (``--min-accuracy``) and in the JSON.
LIMITS: dict[str, LimitKind] = {
    "min_accuracy": LimitKind(lambda r: r.snn_accuracy, operator.ge),
    "max_drop": LimitKind(lambda r: r.accuracy_drop_points, operator.le),
    "max_synops": LimitKind(lambda r: r.synops_per_image, operator.le),
    "max_energy_ratio": LimitKind(lambda r: r.energy.ratio, operator.le),
}


@dataclass
class Limit:
    """One limit checked: its name, the value allowed, the value measured, the verdict."""

    name: str
    limit: float
    measured: float
    passed: bool


def check_limits(report: Report, **limits: float | None) -> list[Limit]:
    """The verdict on each limit given (``min_accuracy=0.9, max_drop=1.0``; None: unchecked),
    in the order of :data:`LIMITS`."""
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise TypeError(f"unknown limits {sorted(unknown)}; known: {', '.join(LIMITS)}")
    checks = []
    for name, kind in LIMITS.items():
        allowed = limits.get(name)
        if allowed is not None:
            measured = kind.measure(report)
            checks.append(Limit(name, allowed, measured, bool(kind.holds(measured, allowed))))
    return checks


def validation_record(report: Report, checks: list[Limit]) -> dict:
    """The report's JSON with each limit and the overall verdict under ``validation``."""
    payload = report.to_dict()
    payload["validation"] = {
        "passed": all(c.passed for c in checks),
        "limits": [asdict(c) for c in checks],
    }
    return payload
