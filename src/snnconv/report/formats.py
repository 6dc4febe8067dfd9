"""How numbers read in tables: energies, counts, fractions."""

from __future__ import annotations


def fmt_joules(j: float) -> str:
    """Energy per image in the unit that reads best: µJ, or nJ below 0.1 µJ."""
    return f"{j * 1e6:.3f} µJ" if j >= 1e-7 else f"{j * 1e9:.2f} nJ"


def fmt_count(n: float) -> str:
    """A count with a k/M/G suffix, for tables."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.1f}" if n != int(n) else f"{int(n)}"


def pct(a: float) -> str:
    """A fraction in [0, 1] as a percentage with two decimals."""
    return f"{100 * a:.2f} %"
