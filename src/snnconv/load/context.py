"""The state a loader builds while it walks an ONNX graph, shared by all op handlers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import torch

from snnconv.errors import InputError
from snnconv.graph import GraphError, Node
from snnconv.load.limits import check_size
from snnconv.ops import shaped


class Unsupported(Exception):
    """Raised by a handler: this node's op (or this use of it) cannot be converted."""


class Context:
    """Maps ONNX tensors to IR nodes or constants, tracks per-sample shapes, names nodes."""

    def __init__(
        self,
        source: str,
        input_name: str,
        input_shape: tuple[int, ...],
        batch: int | None,
        output: str,
        opset: int,
        uses: dict[str, int],
        reserved: set[str],
    ):
        self.source = source
        self.input_name = input_name
        self.batch = batch
        self.output = output
        self.opset = opset
        self.nodes: list[Node] = []
        self.consts: dict[str, np.ndarray] = {}
        self.alias: dict[str, str] = {input_name: input_name}
        #: IR node name -> the ONNX tensor holding the same values, for verification.
        self.onnx_of: dict[str, str] = {}
        self.notes: dict[str, str] = {}
        self._uses = uses
        self._used_names = {input_name} | reserved
        self._meta = {input_name: torch.zeros((1,) + input_shape, device="meta")}
        self._by_name: dict[str, Node] = {}
        self.node: onnx.NodeProto | None = None
        self.node_name = ""
        #: Loads a BackRes body; set by the loader, so handlers need not import it.
        self.body_loader: Callable[..., list[Node]] | None = None

    # --- errors -------------------------------------------------------------------------
    def error(self, msg: str) -> InputError:
        where = f"node {self.node_name!r} ({self.node.op_type})" if self.node else "graph"
        return InputError(f"{self.source}: {where}: {msg}")

    # --- tensors ------------------------------------------------------------------------
    def is_const(self, tensor: str) -> bool:
        return tensor in self.consts

    def const(self, tensor: str) -> np.ndarray:
        if tensor not in self.consts:
            raise Unsupported(f"input {tensor!r} must be a constant (weights), not an activation")
        return self.consts[tensor]

    def full_shape(self, tensor: str) -> tuple[int, ...] | None:
        """The shape of a constant, or of one image of an activation with its batch axis;
        None for an absent (empty-named) or unknown input."""
        if tensor in self.consts:
            return tuple(np.shape(self.consts[tensor]))
        ir_name = self.alias.get(tensor)
        return None if ir_name is None or ir_name not in self._meta else (1, *self.shape(ir_name))

    def optional_const(self, i: int) -> np.ndarray | None:
        ins = self.node.input
        return self.const(ins[i]) if len(ins) > i and ins[i] else None

    def act(self, tensor: str) -> str:
        """The IR node that produces activation ``tensor``."""
        if tensor in self.consts:
            raise Unsupported(f"input {tensor!r} is a constant where an activation is expected")
        return self.alias[tensor]

    def shape(self, ir_name: str) -> tuple[int, ...]:
        return tuple(self._meta[ir_name].shape[1:])

    def producer(self, ir_name: str) -> Node | None:
        return self._by_name.get(ir_name)

    def uses_tensor(self, tensor: str) -> int:
        return self._uses.get(tensor, 0)

    def uses(self, ir_name: str) -> int:
        """How many ONNX node inputs (and graph outputs) read this IR node's values."""
        tensors = [t for t, n in self.alias.items() if n == ir_name]
        return sum(self._uses.get(t, 0) for t in tensors)

    # --- building -----------------------------------------------------------------------
    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self._used_names:
            i += 1
            name = f"{base}_{i}"
        self._used_names.add(name)
        return name

    def add(
        self,
        op: str,
        inputs: list[str],
        attrs: dict | None = None,
        params: dict[str, np.ndarray] | None = None,
        suffix: str = "",
    ) -> str:
        """Append an IR node for the current ONNX node; it becomes its output's producer."""
        name = self.node_name if not suffix else self.unique(f"{self.node_name}/{suffix}")
        params = {k: np.array(v, dtype=np.float32, order="C") for k, v in (params or {}).items()}
        node = Node(name, op, list(inputs), dict(attrs or {}), params)
        self._meta[name] = self._meta_forward(node)
        where = f"{self.source}: node {name!r}'s output (one image)"
        check_size(self._meta[name].shape[1:], 4, where)
        self.nodes.append(node)
        self._by_name[name] = node
        self.bind(self.node.output[0], name)
        return name

    def _meta_forward(self, node: Node) -> torch.Tensor:
        xs = [self._meta[i] for i in node.inputs]
        try:
            return shaped(node, xs)
        except (RuntimeError, ValueError, GraphError) as e:
            shapes = [tuple(x.shape[1:]) for x in xs]
            params = ", ".join(f"{k} {v.shape}" for k, v in node.params.items())
            raise self.error(
                f"cannot apply to input shape(s) {shapes}{' with ' + params if params else ''}: {e}"
            ) from None

    def bind(self, tensor: str, ir_name: str) -> None:
        """Let ONNX ``tensor`` stand for IR node ``ir_name`` (its producer or an alias)."""
        self.alias[tensor] = ir_name
        if ir_name in self._by_name:
            self.onnx_of[ir_name] = tensor if ir_name not in self.onnx_of else self.onnx_of[ir_name]

    def retarget(self, ir_name: str, tensor: str) -> None:
        """A later ONNX node was fused into ``ir_name``: its output is now that node's value."""
        self.alias[tensor] = ir_name
        self.onnx_of[ir_name] = tensor
