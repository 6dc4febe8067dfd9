"""The IR's ops: one spec per op (``OpSpec``, registered in ``SPECS``), their torch kernels,
and the ANN forward pass, shape inference and MAC counts built on them."""

from snnconv.ops import activations, pools, qcfs, spiking, synaptic, wiring  # noqa: F401
from snnconv.ops.forward import (
    ann_forward,
    infer_shapes,
    last_uses,
    macs,
    params_on,
    run_node,
    shaped,
)
from snnconv.ops.kernels import (
    affine,
    avgpool,
    avgpool_divisor,
    clip,
    conv,
    gather_windows,
    linear,
    maxpool,
    maxpool_indices,
    sum_pool,
)
from snnconv.ops.spec import SPECS, OpSpec, register, spec_of, unregister

__all__ = [
    "SPECS",
    "OpSpec",
    "affine",
    "ann_forward",
    "avgpool",
    "avgpool_divisor",
    "clip",
    "conv",
    "gather_windows",
    "infer_shapes",
    "last_uses",
    "linear",
    "macs",
    "maxpool",
    "maxpool_indices",
    "params_on",
    "register",
    "run_node",
    "shaped",
    "spec_of",
    "sum_pool",
    "unregister",
]
