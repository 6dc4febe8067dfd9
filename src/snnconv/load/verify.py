"""Check the loaded graph against onnxruntime on the original model (DESIGN decision 3).

Both run the same seeded random inputs; the output must agree within a relative tolerance.
On a mismatch the intermediate tensors are compared too, to name the first IR node whose
activations diverge: that is where a handler misread the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import torch

from snnconv import threads
from snnconv.errors import InputError
from snnconv.graph import Graph
from snnconv.ops import ann_forward

RTOL = 1e-4
ATOL = 1e-6
SAMPLES = 4


@dataclass
class Verification:
    """How far the IR's ANN forward pass is from onnxruntime's on the same inputs."""

    max_abs_diff: float
    max_rel_diff: float
    ok: bool
    first_bad_node: str | None = None

    def as_metadata(self) -> dict[str, str]:
        meta = {
            "verify_max_abs_diff": f"{self.max_abs_diff:.3g}",
            "verify_max_rel_diff": f"{self.max_rel_diff:.3g}",
            "verify_ok": "true" if self.ok else "false",
            "verify_samples": str(SAMPLES),
        }
        if self.first_bad_node:
            meta["verify_first_bad_node"] = self.first_bad_node
        return meta

    def raise_if_bad(self, source: str, onnx_of: dict[str, str]) -> None:
        if self.ok:
            return
        where = ""
        if self.first_bad_node:
            tensor = onnx_of.get(self.first_bad_node, "?")
            where = f"; first diverging node {self.first_bad_node!r} (ONNX tensor {tensor!r})"
        raise InputError(
            f"{source}: the loaded graph does not match onnxruntime: max abs diff "
            f"{self.max_abs_diff:.3g}, relative {self.max_rel_diff:.3g} (tolerance {RTOL:g})"
            f"{where}. This is a loader bug; please report it with the model, or load "
            "without verification."
        )


def _compare(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float, bool]:
    if ours.size != ref.size:
        return float("inf"), float("inf"), False
    diff = float(np.max(np.abs(ours.reshape(-1) - ref.reshape(-1)), initial=0.0))
    magnitude = float(np.max(np.abs(ref), initial=0.0))
    rel = diff / magnitude if magnitude > 0 else diff
    ok = bool(np.isfinite(diff)) and diff <= RTOL * magnitude + ATOL
    return diff, rel, ok


def _session(model: onnx.ModelProto, outputs: list[str], source: str):
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    present = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.ValueInfoProto(name=t) for t in outputs if t not in present)
    opts = threads.onnxruntime_options()
    opts.log_severity_level = 4  # failures reach the user as one InputError, not logs
    try:
        return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise InputError(
            f"{source}: onnxruntime cannot run the model to verify it: {str(e).splitlines()[0]}"
        ) from None


def _inputs(graph: Graph, model: onnx.ModelProto, seed: int) -> list[np.ndarray]:
    dim0 = next(i for i in model.graph.input if i.name == graph.input_name).type.tensor_type
    fixed = dim0.shape.dim[0].dim_value if dim0.shape.dim[0].HasField("dim_value") else 0
    batch = fixed or SAMPLES
    rng = np.random.default_rng(seed)
    count = max(1, SAMPLES // batch)
    return [rng.random((batch, *graph.input_shape), dtype=np.float32) for _ in range(count)]


def _run(graph: Graph, model: onnx.ModelProto, tensors: list[str], source: str, seed: int):
    """Our activations and onnxruntime's for ``tensors``, over all input batches."""
    sess = _session(model, tensors, source)
    ref: dict[str, list[np.ndarray]] = {t: [] for t in tensors}
    for x in _inputs(graph, model, seed):
        try:
            values = sess.run(tensors, {graph.input_name: x})
        except Exception as e:  # onnxruntime raises its own exception types
            raise InputError(
                f"{source}: onnxruntime cannot run the model to verify it: {str(e).splitlines()[0]}"
            ) from None
        for t, v in zip(tensors, values, strict=True):
            ref[t].append(np.asarray(v).reshape(len(x), -1))
    return {t: np.concatenate(v) for t, v in ref.items()}


def verify_graph(
    graph: Graph,
    model: onnx.ModelProto,
    onnx_of: dict[str, str],
    *,
    source: str = "<model>",
    seed: int = 0,
) -> Verification:
    """Compare ``graph`` (IR) with onnxruntime on ``model``; ``onnx_of`` maps IR -> ONNX names."""
    out_tensor = onnx_of[graph.output]
    xs = _inputs(graph, model, seed)
    x = torch.from_numpy(np.concatenate(xs))
    ref = _run(graph, model, [out_tensor], source, seed)[out_tensor]
    ours, _ = ann_forward(graph, x)
    diff, rel, ok = _compare(ours.numpy(), ref)
    if ok:
        return Verification(diff, rel, True)
    return Verification(diff, rel, False, _first_bad(graph, model, onnx_of, x, source, seed))


def _first_bad(graph, model, onnx_of, x, source, seed) -> str | None:
    names = [n.name for n in graph.nodes if n.name in onnx_of]
    refs = _run(graph, model, [onnx_of[n] for n in names], source, seed)
    _, kept = ann_forward(graph, x, keep=names)
    for n in names:
        if not _compare(kept[n].numpy(), refs[onnx_of[n]])[2]:
            return n
    return None
