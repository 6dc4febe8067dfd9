"""``qcfs``: quantisation clip-floor-shift (Bu et al., ICLR 2022), the activation that
``snnconv prepare`` trains in place of each ReLU:

    h(x) = λ · clip(floor(x · L/λ + ½) / L, 0, 1)

with L levels and a threshold λ per layer or per channel. An IF neuron with threshold λ,
initial membrane λ/2 and reset by subtraction, driven by a constant x for T = L steps, emits
exactly ``clip(floor(x · L/λ + ½), 0, L)`` spikes: its rate x λ is h(x). So the converted SNN
at T = L reproduces this layer.

The kernel computes the float32 operations of the ONNX function it is written as, in the
same order, so the loader's check against onnxruntime holds to rounding; under autograd the
floor passes its gradient straight through (the straight-through estimator), so the same
kernel trains λ and the weights before it.
"""

from __future__ import annotations

import onnx
import torch
from onnx import helper

from snnconv.graph import Node
from snnconv.ops.spec import OpSpec, register

#: The ONNX domain of the function the op is written as (``snnconv.load`` reads it back).
ANN_DOMAIN = "snnconv.ann"
#: The shift φ: the neuron starts at φ·θ.
SHIFT = 0.5
FUNCTION = "QCFS"


def quantise(x: torch.Tensor, threshold: torch.Tensor, levels: int) -> torch.Tensor:
    """h(x) for λ ``threshold`` of shape [1] or [C] (the channel axis is axis 1 of ``x``)."""
    lam = torch.as_tensor(threshold, device=x.device, dtype=x.dtype)
    if lam.numel() > 1:
        lam = lam.reshape((1, -1) + (1,) * (x.dim() - 2))
    u = x * (levels / lam) + SHIFT
    f = torch.floor(u)
    if u.requires_grad:  # straight-through: floor forward, identity backward
        f = u + (f - u).detach()
    return f.clamp(0, levels) * (lam / levels)


def _kernel(n: Node, xs: list[torch.Tensor]) -> torch.Tensor:
    return quantise(xs[0], n.params["threshold"], int(n.attrs["levels"]))


def function_proto() -> onnx.FunctionProto:
    """``snnconv.ann.QCFS(X, threshold) <levels>``: h(x) as standard ONNX ops; ``threshold``
    is [1] or [C], reshaped to [C, 1, ...] to broadcast over X's channel axis."""
    levels = onnx.AttributeProto(
        name="value_int", ref_attr_name="levels", type=onnx.AttributeProto.INT
    )
    read_levels = helper.make_node("Constant", [], ["levels_int"])
    read_levels.attribute.append(levels)
    nodes = [
        read_levels,
        helper.make_node("Cast", ["levels_int"], ["L"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Constant", [], ["shift"], value_float=SHIFT),
        helper.make_node("Constant", [], ["zero"], value_float=0.0),
        # [-1, 1, ...] with one 1 per axis after the channels
        helper.make_node("Shape", ["X"], ["spatial"], start=2),
        helper.make_node("Shape", ["spatial"], ["spatial_rank"]),
        helper.make_node(
            "ConstantOfShape",
            ["spatial_rank"],
            ["ones"],
            value=helper.make_tensor("one", onnx.TensorProto.INT64, [1], [1]),
        ),
        helper.make_node("Constant", [], ["minus_one"], value_ints=[-1]),
        helper.make_node("Concat", ["minus_one", "ones"], ["lam_shape"], axis=0),
        helper.make_node("Reshape", ["threshold", "lam_shape"], ["lam"]),
        helper.make_node("Div", ["L", "lam"], ["scale"]),
        helper.make_node("Mul", ["X", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], ["shifted"]),
        helper.make_node("Floor", ["shifted"], ["floored"]),
        helper.make_node("Clip", ["floored", "zero", "L"], ["count"]),
        helper.make_node("Div", ["lam", "L"], ["step"]),
        helper.make_node("Mul", ["count", "step"], ["Y"]),
    ]
    return helper.make_function(
        ANN_DOMAIN,
        FUNCTION,
        ["X", "threshold"],
        ["Y"],
        nodes,
        [helper.make_opsetid("", 17)],
        attributes=["levels"],
    )


def _write(w, n: Node) -> None:
    w.function(function_proto())
    w.emit(
        n,
        FUNCTION,
        [n.inputs[0], w.param(n, "threshold")],
        domain=ANN_DOMAIN,
        levels=int(n.attrs["levels"]),
    )


QCFS = register(OpSpec("qcfs", ann=_kernel, write=_write))
