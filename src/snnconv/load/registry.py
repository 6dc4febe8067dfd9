"""The op-handler registry: ``(domain, op_type) -> handler``.

Each ONNX op snnconv understands has exactly one handler, registered with ``@register``.
An op without a handler is reported to the user, never skipped (DESIGN decision 4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: The ONNX default domain; "ai.onnx" is its long spelling.
DEFAULT_DOMAIN = ""
SNN_DOMAIN = "snnconv"

Handler = Callable[[Any, Any], None]
HANDLERS: dict[tuple[str, str], Handler] = {}


def _canonical(domain: str) -> str:
    return DEFAULT_DOMAIN if domain in ("", "ai.onnx") else domain


def register(*op_types: str, domain: str = DEFAULT_DOMAIN) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``op_types`` in ``domain``."""

    def deco(fn: Handler) -> Handler:
        for op in op_types:
            key = (_canonical(domain), op)
            if key in HANDLERS:
                raise ValueError(f"two handlers for {key}")
            HANDLERS[key] = fn
        return fn

    return deco


def lookup(domain: str, op_type: str) -> Handler | None:
    """The handler of ``op_type`` in ``domain``, or None when snnconv has none."""
    return HANDLERS.get((_canonical(domain), op_type))


def known_domains() -> set[str]:
    """The ONNX domains some handler is registered for."""
    return {d for d, _ in HANDLERS}
