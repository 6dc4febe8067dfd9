"""Recognise BackRes blocks in a loaded (flat) graph and fold each into one ``backres`` node.

An ANN trained with BackRes exports as R unrolled copies of its block that read the same
weights (the same initializers, the same ones through ``Identity`` nodes, or byte-identical
copies: after loading, all three are equal parameter arrays). A chain is R >= 2 consecutive
segments of nodes with the same ops, attributes, parameters and wiring, where segment k reads
only its own nodes and the previous segment's output (``replace``), or ends with an ``add`` of
its block output and the chain's input x0 (``add``), keeps x0's shape, holds a conv or linear
layer and no pooling, and whose inner values nothing outside the segment reads.
"""

from __future__ import annotations

import hashlib

from snnconv.graph import SYNAPTIC_OPS, Graph, Node
from snnconv.ops import infer_shapes

_NOT_IN_BLOCK = frozenset({"avgpool", "maxpool", "global_avgpool", "flatten", "reshape"})


def fold_backres(graph: Graph) -> Graph:
    """``graph`` with every maximal repeated chain folded into a ``backres`` node named after
    the chain's last node (so its consumers and the graph output stay as they are)."""
    finder = _Finder(graph)
    nodes, i = [], 0
    while i < len(graph.nodes):
        best = finder.best_chain(i)
        if best is None:
            nodes.append(graph.nodes[i])
            i += 1
            continue
        # A chain whose segment starts with a node equal to the one before the chain also
        # matches one node early (rotated); prefer the latest start covering as much.
        for shift in range(1, best[0]):
            later = finder.best_chain(i + shift)
            if later is None or later[0] * later[1] < best[0] * best[1]:
                break
            nodes.append(graph.nodes[i])
            i, best = i + 1, later
        length, repeats, mode = best
        nodes.append(finder.block(i, length, repeats, mode))
        i += length * repeats
    if len(nodes) == len(graph.nodes):
        return graph
    return Graph(nodes, graph.input_name, graph.input_shape, graph.output, graph.metadata)


def _signature(node: Node) -> tuple:
    params = tuple(
        (k, v.dtype.str, v.shape, hashlib.sha256(v.tobytes()).hexdigest())
        for k, v in sorted(node.params.items())
    )
    return node.op, repr(sorted(node.attrs.items())), params


class _Finder:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes = graph.nodes
        self.index = {n.name: i for i, n in enumerate(self.nodes)}
        self.signature = [_signature(n) for n in self.nodes]
        self.readers: dict[str, set[int]] = {}
        for i, n in enumerate(self.nodes):
            for name in n.inputs:
                self.readers.setdefault(name, set()).add(i)
        self._shapes: dict[str, tuple[int, ...]] | None = None

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        if self._shapes is None:
            self._shapes = infer_shapes(self.graph)
        return self._shapes

    def best_chain(self, i: int) -> tuple[int, int, str] | None:
        """(length, repeats, mode) of the chain starting at node i covering most nodes
        (ties: the shortest segment, i.e. the most repeats), or None."""
        best = None
        for length in range(1, (len(self.nodes) - i) // 2 + 1):
            if self.signature[i] != self.signature[i + length]:
                continue
            for mode in ("replace", "add"):
                repeats = self._repeats(i, length, mode)
                if repeats >= 2 and (best is None or repeats * length > best[0] * best[1]):
                    best = (length, repeats, mode)
        return best

    def _first_segment(self, i: int, length: int, mode: str) -> str | None:
        """x0, the one outside value segment [i, i+length) reads, if it can be a block."""
        seg = self.nodes[i : i + length]
        names = {n.name for n in seg}
        outside = {x for n in seg for x in n.inputs if x not in names}
        if len(outside) != 1:
            return None
        if any(n.op in _NOT_IN_BLOCK or n.op == "backres" for n in seg):
            return None
        body = seg[:-1] if mode == "add" else seg
        if not body or not any(n.op in SYNAPTIC_OPS for n in body):
            return None
        if mode == "add":
            last = seg[-1]
            if (
                last.op != "add"
                or len(last.inputs) != 2
                or sum(x in names for x in last.inputs) != 1
            ):
                return None
            y = next(x for x in last.inputs if x in names)
            if any(y in n.inputs for n in body):  # y must be the body's last node
                return None
        x0 = outside.pop()
        if not self._sealed(i, length) or self.shapes[x0] != self.shapes[seg[-1].name]:
            return None
        return x0

    def _sealed(self, start: int, length: int) -> bool:
        """Nothing outside the segment reads its inner values."""
        end = start + length
        for n in self.nodes[start : end - 1]:
            if n.name == self.graph.output or any(j >= end for j in self.readers.get(n.name, ())):
                return False
        return True

    def _repeats(self, i: int, length: int, mode: str) -> int:
        x0 = self._first_segment(i, length, mode)
        if x0 is None:
            return 0
        seg0 = self.nodes[i : i + length]
        offset = {n.name: j for j, n in enumerate(seg0)}
        repeats, prev = 1, seg0[-1].name
        while i + (repeats + 1) * length <= len(self.nodes):
            start = i + repeats * length
            if not self._matches(seg0, offset, start, x0, prev, mode):
                break
            if not self._sealed(start, length):
                break
            end = start + length
            if prev == self.graph.output or any(
                not start <= j < end for j in self.readers.get(prev, ())
            ):
                break
            repeats, prev = repeats + 1, self.nodes[end - 1].name
        return repeats

    def _matches(self, seg0, offset, start, x0, prev, mode) -> bool:
        length = len(seg0)
        for j, n0 in enumerate(seg0):
            nk = self.nodes[start + j]
            if self.signature[start + j] != self.signature[self.index[n0.name]]:
                return False
            if len(nk.inputs) != len(n0.inputs):
                return False
            skip = mode == "add" and j == length - 1
            for a, b in zip(n0.inputs, nk.inputs, strict=True):
                if a in offset:
                    expected = self.nodes[start + offset[a]].name
                else:
                    expected = x0 if skip else prev
                if b != expected:
                    return False
        return True

    def block(self, i: int, length: int, repeats: int, mode: str) -> Node:
        seg0 = self.nodes[i : i + length]
        x0 = self._first_segment(i, length, mode)
        body = list(seg0)
        if mode == "add":
            add = body.pop()
            y = next(x for x in add.inputs if x in {n.name for n in body})
            out = next(n for n in body if n.name == y)
            body = [n for n in body if n is not out] + [out]  # only the add read it
        last = self.nodes[i + length * repeats - 1]
        attrs = {"repeats": repeats, "mode": mode, "body": body}
        return Node(last.name, "backres", [x0], attrs)
