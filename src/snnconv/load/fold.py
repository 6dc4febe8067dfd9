"""Constant folding with numpy: the shape arithmetic and weight-making subgraphs exporters emit.

A node whose inputs are all constants is evaluated here, so handlers only ever see
activations and plain arrays. ``BATCH`` stands for the (unknown) batch size in folded shapes,
which lets ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` chains fold to a constant.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from snnconv.load.limits import check_size

#: Stand-in for a symbolic batch size inside folded shape tensors.
BATCH = 1_000_000_007

Folder = Callable[[dict, list], list]
FOLDERS: dict[str, Folder] = {}


def folds(*ops: str) -> Callable[[Folder], Folder]:
    def deco(fn: Folder) -> Folder:
        for op in ops:
            FOLDERS[op] = fn
        return fn

    return deco


def attrs_of(node: onnx.NodeProto) -> dict:
    """A node's attributes as plain Python values (strings decoded, tensors as arrays)."""
    out = {}
    for a in node.attribute:
        try:
            v = onnx.helper.get_attribute_value(a)
        except (ValueError, TypeError) as e:
            raise ValueError(f"attribute {a.name!r} cannot be read ({e})") from None
        if v is None:
            raise ValueError(f"attribute {a.name!r} has no value (type {a.type})")
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode("utf-8", "replace") for s in v]
        out[a.name] = v
    return out


@folds("Constant")
def _constant(a, xs):
    if "value" in a:
        return [np.asarray(a["value"])]
    for key, dtype in (
        ("value_float", np.float32),
        ("value_floats", np.float32),
        ("value_int", np.int64),
        ("value_ints", np.int64),
    ):
        if key in a:
            return [np.asarray(a[key], dtype=dtype)]
    raise ValueError("Constant without a numeric value")


@folds("ConstantOfShape")
def _constant_of_shape(a, xs):
    value = np.asarray(a.get("value", np.zeros(1, np.float32))).reshape(-1)
    check_size(xs[0], value.dtype.itemsize, "the constant")
    return [np.full(tuple(int(d) for d in xs[0]), value[0], dtype=value.dtype)]


@folds("Identity", "Dropout")
def _identity(a, xs):
    return [xs[0]]


@folds("Shape")
def _shape(a, xs):
    dims = np.asarray(xs[0].shape, np.int64)
    return [dims[a.get("start", 0) : a.get("end", len(dims))]]


@folds("Size")
def _size(a, xs):
    return [np.asarray(xs[0].size, np.int64)]


@folds("Gather")
def _gather(a, xs):
    return [np.take(xs[0], xs[1].astype(np.int64), axis=a.get("axis", 0))]


def _axes(a: dict, xs: list) -> list[int] | None:
    if len(xs) > 1 and xs[1] is not None:
        return [int(v) for v in np.asarray(xs[1]).reshape(-1)]
    return a.get("axes")


@folds("Unsqueeze")
def _unsqueeze(a, xs):
    x = xs[0]
    axes = _axes(a, xs)
    rank = x.ndim + len(axes)
    for ax in sorted(ax % rank for ax in axes):
        x = np.expand_dims(x, ax)
    return [x]


@folds("Squeeze")
def _squeeze(a, xs):
    axes = _axes(a, xs)
    x = xs[0]
    return [np.squeeze(x, axis=None if axes is None else tuple(ax % x.ndim for ax in axes))]


@folds("Concat")
def _concat(a, xs):
    return [np.concatenate([np.atleast_1d(x) for x in xs], axis=a["axis"])]


@folds("Cast")
def _cast(a, xs):
    return [xs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(a["to"]))]


@folds("Reshape")
def _reshape(a, xs):
    x, shape = xs[0], [int(d) for d in xs[1]]
    if not a.get("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [x.reshape(shape)]


@folds("Flatten")
def _flatten(a, xs):
    x = xs[0]
    axis = a.get("axis", 1) % max(x.ndim, 1)
    return [x.reshape(int(np.prod(x.shape[:axis])), -1)]


@folds("Transpose")
def _transpose(a, xs):
    return [np.transpose(xs[0], a.get("perm"))]


def _binary(fn):
    def run(a, xs):
        x, y = xs
        out = fn(x, y)
        return [np.asarray(out).astype(np.result_type(x, y), copy=False)]

    return run


def _div(x, y):
    if np.issubdtype(np.result_type(x, y), np.integer):
        return np.trunc(x / y)
    return x / y


FOLDERS["Add"] = _binary(np.add)
FOLDERS["Sub"] = _binary(np.subtract)
FOLDERS["Mul"] = _binary(np.multiply)
FOLDERS["Div"] = _binary(_div)
FOLDERS["Pow"] = _binary(np.power)
FOLDERS["Sqrt"] = lambda a, xs: [np.sqrt(xs[0])]
FOLDERS["Neg"] = lambda a, xs: [np.negative(xs[0])]
FOLDERS["Reciprocal"] = lambda a, xs: [np.reciprocal(xs[0])]


@folds("Slice")
def _slice(a, xs):
    x = xs[0]
    if len(xs) > 1:
        starts, ends = xs[1], xs[2]
        axes = xs[3] if len(xs) > 3 and xs[3] is not None else range(len(starts))
        steps = xs[4] if len(xs) > 4 and xs[4] is not None else [1] * len(starts)
    else:
        starts, ends = a["starts"], a["ends"]
        axes = a.get("axes", range(len(starts)))
        steps = [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=False):
        index[int(ax) % x.ndim] = slice(int(s), int(e), int(st))
    return [x[tuple(index)]]


@folds("Range")
def _range(a, xs):
    start, limit, delta = (np.asarray(v).item() for v in xs)
    if delta == 0:
        raise ValueError("Range with delta 0")
    check_size([max(0, math.ceil((limit - start) / delta))], xs[0].dtype.itemsize, "the range")
    return [np.arange(start, limit, delta, dtype=xs[0].dtype)]
