"""Value-range rules per op, checked after the schema and before the handler: strides and
kernels >= 1, pads >= 0 and of the input's rank, groups dividing the channels, axes within
the rank, ...

The rules are data: ``RULES[(domain, op_type)]`` lists them; each is a small object whose
``problem(facts)`` says what is wrong, or None. An op's handler may then rely on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from snnconv.load.registry import DEFAULT_DOMAIN, SNN_DOMAIN


@dataclass(frozen=True)
class Facts:
    """One node as the rules see it: its attributes and, per input, the full shape
    (batch axis first) and the values of a constant; None where absent or unknown."""

    attrs: dict
    shapes: list[tuple[int, ...] | None]
    values: list[np.ndarray | None]

    def weight_shape(self) -> tuple[int, ...] | None:
        """The shape of input 1 when it is a constant (a conv's weight)."""
        w = self.values[1] if len(self.values) > 1 else None
        return None if w is None else tuple(w.shape)

    def rank(self, i: int = 0) -> int | None:
        shape = self.shapes[i] if i < len(self.shapes) else None
        return None if shape is None else len(shape)


def _listed(v) -> list:
    return list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]


@dataclass(frozen=True)
class AtLeast:
    attr: str
    low: float

    def problem(self, f: Facts) -> str | None:
        v = f.attrs.get(self.attr)
        if v is None or all(x >= self.low for x in _listed(v)):
            return None
        each = "each value" if isinstance(v, list) else "it"
        return f"attribute {self.attr!r} is {v}; {each} must be >= {self.low:g}"


@dataclass(frozen=True)
class Finite:
    attr: str

    def problem(self, f: Facts) -> str | None:
        v = f.attrs.get(self.attr)
        if v is None or all(math.isfinite(x) for x in _listed(v)):
            return None
        return f"attribute {self.attr!r} is {v}; it must be a finite number"


@dataclass(frozen=True)
class OneOf:
    attr: str
    options: tuple

    def problem(self, f: Facts) -> str | None:
        v = f.attrs.get(self.attr)
        if v is None or v in self.options:
            return None
        options = ", ".join(map(repr, self.options))
        return f"attribute {self.attr!r} is {v!r}; expected one of {options}"


@dataclass(frozen=True)
class PerSpatialAxis:
    """``attr`` holds ``per_axis`` values for each spatial axis of input 0."""

    attr: str
    per_axis: int = 1

    def problem(self, f: Facts) -> str | None:
        v, rank = f.attrs.get(self.attr), f.rank(0)
        if v is None or rank is None or len(v) == (rank - 2) * self.per_axis:
            return None
        return (
            f"attribute {self.attr!r} has {len(v)} values; an input of rank {rank} "
            f"needs {(rank - 2) * self.per_axis}"
        )


@dataclass(frozen=True)
class Axis:
    """``attr`` is an axis of input 0: in [-r, r) or, with ``end``, in [-r, r]."""

    attr: str
    end: bool = False

    def problem(self, f: Facts) -> str | None:
        v, rank = f.attrs.get(self.attr), f.rank(0)
        if v is None or rank is None:
            return None
        rank = max(rank, 1)
        high = rank if self.end else rank - 1
        if -rank <= v <= high:
            return None
        return (
            f"attribute {self.attr!r} is {v}, outside [{-rank}, {high}] for an input of rank {rank}"
        )


@dataclass(frozen=True)
class Permutation:
    attr: str

    def problem(self, f: Facts) -> str | None:
        v, rank = f.attrs.get(self.attr), f.rank(0)
        if v is None or rank is None or sorted(v) == list(range(rank)):
            return None
        return f"attribute {self.attr!r} is {v}, not a permutation of the input's {rank} axes"


@dataclass(frozen=True)
class Groups:
    """A convolution's ``group`` divides its input channels and its output channels, and
    the weight's input channels times ``group`` are the input's channels."""

    def problem(self, f: Facts) -> str | None:
        g, x, w = f.attrs.get("group", 1), f.shapes[0], f.weight_shape()
        if g < 1:
            return f"attribute 'group' is {g}; it must be >= 1"
        if x is None or w is None or len(x) < 2 or len(w) < 2:
            return None
        if x[1] % g or w[0] % g:
            return (
                f"attribute 'group' is {g}, which does not divide the input's {x[1]} channels "
                f"and the weight's {w[0]} output channels"
            )
        if w[1] * g != x[1]:
            return (
                f"attribute 'group' is {g}: the weight takes {w[1]} x {g} input channels, "
                f"the input has {x[1]}"
            )
        return None


@dataclass(frozen=True)
class KernelOfWeight:
    """A convolution's ``kernel_shape``, when given, is its weight's spatial shape."""

    def problem(self, f: Facts) -> str | None:
        k, w = f.attrs.get("kernel_shape"), f.weight_shape()
        if k is None or w is None or list(k) == list(w[2:]):
            return None
        return f"attribute 'kernel_shape' is {list(k)} but the weight's kernel is {list(w[2:])}"


@dataclass(frozen=True)
class Ordered:
    """Bounds ``low <= high``, each an attribute or (opset >= 11 Clip) a constant input."""

    low_attr: str
    high_attr: str
    low_input: int | None = None
    high_input: int | None = None

    def _value(self, f: Facts, attr: str, i: int | None):
        v = f.values[i] if i is not None and i < len(f.values) else None
        if v is not None:
            return float(v.reshape(-1)[0]) if v.size else None
        return f.attrs.get(attr)

    def problem(self, f: Facts) -> str | None:
        lo = self._value(f, self.low_attr, self.low_input)
        hi = self._value(f, self.high_attr, self.high_input)
        if lo is None or hi is None or lo <= hi:
            return None
        return f"{self.low_attr} {lo:g} is above {self.high_attr} {hi:g}"


@dataclass(frozen=True)
class ChannelVectors:
    """Constant inputs ``names`` (at positions 1, 2, ...) hold one value per input channel."""

    names: tuple[str, ...]

    def problem(self, f: Facts) -> str | None:
        x = f.shapes[0]
        if x is None or len(x) < 2:
            return None
        for i, name in enumerate(self.names, start=1):
            v = f.values[i] if i < len(f.values) else None
            if v is not None and v.size != x[1]:
                return f"input {name!r} has {v.size} values for the input's {x[1]} channels"
        return None


_BINARY = (0, 1)
_AUTO_PAD = ("NOTSET", "", "SAME_UPPER", "SAME_LOWER", "VALID")
_WINDOW = (
    AtLeast("kernel_shape", 1),
    AtLeast("strides", 1),
    AtLeast("dilations", 1),
    AtLeast("pads", 0),
    PerSpatialAxis("kernel_shape"),
    PerSpatialAxis("strides"),
    PerSpatialAxis("dilations"),
    PerSpatialAxis("pads", 2),
    OneOf("auto_pad", _AUTO_PAD),
)
_POOL = (*_WINDOW, OneOf("ceil_mode", _BINARY))
_SOFTMAX = (Axis("axis"),)

#: (domain, op_type) -> the rules its nodes must pass.
RULES: dict[tuple[str, str], tuple] = {
    (DEFAULT_DOMAIN, "Conv"): (*_WINDOW, Groups(), KernelOfWeight()),
    (DEFAULT_DOMAIN, "MaxPool"): (*_POOL, OneOf("storage_order", _BINARY)),
    (DEFAULT_DOMAIN, "AveragePool"): (*_POOL, OneOf("count_include_pad", _BINARY)),
    (DEFAULT_DOMAIN, "Gemm"): (
        OneOf("transA", _BINARY),
        OneOf("transB", _BINARY),
        Finite("alpha"),
        Finite("beta"),
    ),
    (DEFAULT_DOMAIN, "BatchNormalization"): (
        AtLeast("epsilon", 0),
        ChannelVectors(("scale", "B", "input_mean", "input_var")),
    ),
    (DEFAULT_DOMAIN, "LRN"): (AtLeast("size", 1), Finite("alpha"), Finite("beta"), Finite("bias")),
    (DEFAULT_DOMAIN, "Clip"): (Ordered("min", "max", 1, 2),),
    (DEFAULT_DOMAIN, "Softmax"): _SOFTMAX,
    (DEFAULT_DOMAIN, "LogSoftmax"): _SOFTMAX,
    (DEFAULT_DOMAIN, "Concat"): (Axis("axis"),),
    (DEFAULT_DOMAIN, "Gather"): (Axis("axis"),),
    (DEFAULT_DOMAIN, "Flatten"): (Axis("axis", end=True),),
    (DEFAULT_DOMAIN, "Transpose"): (Permutation("perm"),),
    (DEFAULT_DOMAIN, "Reshape"): (OneOf("allowzero", _BINARY),),
    (DEFAULT_DOMAIN, "ReduceMean"): (OneOf("keepdims", _BINARY),),
    (SNN_DOMAIN, "IF"): (
        OneOf("reset", ("subtract", "zero")),
        OneOf("signed", _BINARY),
        Finite("v0"),
        Finite("clip_max"),
    ),
    (SNN_DOMAIN, "HybridBoundary"): (OneOf("mode", ("rate", "membrane")),),
    (SNN_DOMAIN, "MaxPoolGate"): _POOL,
    (SNN_DOMAIN, "BackRes"): (AtLeast("repeats", 1), OneOf("mode", ("replace", "add"))),
}


def range_problem(domain: str, op_type: str, facts: Facts) -> str | None:
    """The first rule of ``op_type`` that ``facts`` break, as a message; None if none."""
    for rule in RULES.get((domain, op_type), ()):
        problem = rule.problem(facts)
        if problem is not None:
            return problem
    return None
