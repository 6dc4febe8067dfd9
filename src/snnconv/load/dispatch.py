"""Walk the sorted ONNX nodes: check each against its schema and value ranges, then fold it
(all inputs constant) or hand it to its handler.

One error policy: whatever goes wrong with a node becomes an ``InputError`` naming the file,
the node and, where known, the attribute. Unsupported ops are collected, not raised, so one
run lists all of them.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from snnconv.errors import InputError, UnsupportedOpsError
from snnconv.load.context import Context, Unsupported
from snnconv.load.fold import FOLDERS, attrs_of
from snnconv.load.ranges import Facts, range_problem
from snnconv.load.registry import DEFAULT_DOMAIN, lookup
from snnconv.load.schema import interface, interface_problem


def walk(ctx: Context, order: list, onnx_names: Counter) -> tuple[list, list[str]]:
    """Dispatch every node; returns the unsupported (node, op) pairs and their reasons."""
    unsupported: list[tuple[str, str]] = []
    reasons: list[str] = []
    poisoned: set[str] = set()
    for i, node in enumerate(order):
        ctx.node = node
        unique = node.name and onnx_names[node.name] == 1 and node.name != ctx.input_name
        ctx.node_name = node.name if unique else ctx.unique(f"{node.op_type}_{i}")
        inputs = [t for t in node.input if t]
        try:
            attrs = attrs_of(node)
        except ValueError as e:
            raise ctx.error(f"malformed node: {e}") from None
        domain = DEFAULT_DOMAIN if node.domain == "ai.onnx" else node.domain
        handler = lookup(domain, node.op_type)
        foldable = domain == DEFAULT_DOMAIN and node.op_type in FOLDERS
        if any(t in poisoned for t in inputs):
            if handler is None and not foldable:
                unsupported.append((ctx.node_name, node.op_type))
            poisoned.update(node.output)
        elif foldable and all(t in ctx.consts for t in inputs):
            _check(ctx, node, domain, attrs)
            _fold(ctx, node, attrs)
        elif handler is None:
            unsupported.append((ctx.node_name, node.op_type))
            poisoned.update(node.output)
        else:
            _check(ctx, node, domain, attrs)
            try:
                _run(ctx, handler, node, domain)
            except Unsupported as e:
                unsupported.append((ctx.node_name, node.op_type))
                reasons.append(f"{ctx.node_name}: {e}")
                poisoned.update(node.output)
    ctx.node = None
    return unsupported, reasons


def _check(ctx: Context, node, domain: str, attrs: dict) -> None:
    """The node's schema, then its value ranges; the first problem is an InputError."""
    problem = interface_problem(node, domain, ctx.opset)
    if problem is None:
        facts = Facts(
            attrs,
            [ctx.full_shape(t) if t else None for t in node.input],
            [ctx.consts.get(t) if t else None for t in node.input],
        )
        try:
            problem = range_problem(domain, node.op_type, facts)
        except Exception as e:  # a value no rule can compare (a string bound, ...)
            problem = f"{type(e).__name__}: {e}"
    if problem is not None:
        raise ctx.error(f"malformed node: {problem}")


def _run(ctx: Context, handler, node, domain: str) -> None:
    try:
        handler(ctx, node)
    except (Unsupported, UnsupportedOpsError, MemoryError):
        raise
    except InputError as e:
        raise _located(ctx, e) from None
    except IndexError:
        raise ctx.error(
            f"malformed node: too few inputs ({len(node.input)}) or outputs "
            f"({len(node.output)}) for {node.op_type}"
        ) from None
    except Exception as e:  # any other failure of a handler is a model it cannot read
        raise ctx.error(f"malformed node: {_describe(e, node, domain, ctx.opset)}") from None


def _located(ctx: Context, e: InputError) -> InputError:
    """``e`` as it is when it names the file, else with the file and node in front."""
    return e if str(e).startswith(ctx.source) else ctx.error(str(e))


def _describe(e: Exception, node, domain: str, opset: int) -> str:
    spec = interface(domain, node.op_type, opset)
    if isinstance(e, KeyError) and e.args and spec and e.args[0] in spec.attributes:
        return f"attribute {e.args[0]!r} is missing"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _fold(ctx: Context, node, attrs: dict) -> None:
    try:
        outs = FOLDERS[node.op_type](attrs, [ctx.consts[t] if t else None for t in node.input])
    except Exception as e:  # numpy's errors on bad constants, and check_size's InputError
        raise ctx.error(f"cannot evaluate this constant expression: {e}") from None
    for t, v in zip(node.output, outs, strict=False):
        ctx.consts[t] = np.asarray(v)
