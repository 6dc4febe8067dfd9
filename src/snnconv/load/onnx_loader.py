"""ONNX -> Graph: parse and check the file, then walk its nodes (``dispatch``: schema and
range checks, constant folding, the op handlers) and finish the graph.

Every failure is an ``InputError`` naming the file and the node; unsupported ops are collected
over the whole graph and reported together, so one run tells the user everything to fix.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnx.inliner
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from snnconv.errors import InputError, UnsupportedOpsError
from snnconv.graph import Graph, GraphError
from snnconv.load import handlers  # noqa: F401  (registers the op handlers)
from snnconv.load.backres import fold_backres
from snnconv.load.context import Context
from snnconv.load.dispatch import walk
from snnconv.load.limits import check_size
from snnconv.load.registry import SNN_DOMAIN, known_domains, lookup
from snnconv.load.verify import verify_graph
from snnconv.ops.qcfs import ANN_DOMAIN

MIN_OPSET = 7
_UNSUPPORTED_HINT = (
    "Replace these ops in the model before exporting it (e.g. ReLU for GELU/LeakyReLU/Tanh, "
    "average or max pooling for other pooling), or, if they come at the end of the model, "
    "cut the model before them. Sigmoid, Softmax and LRN are accepted in the ANN part of a "
    "hybrid network (snnconv convert --hybrid-after NODE). snnconv never skips a layer."
)


def load_onnx(source: str | Path | bytes | onnx.ModelProto, *, verify: bool = True) -> Graph:
    """Load an ONNX model as an snnconv ``Graph``.

    With ``verify`` (and a model onnxruntime can run: no ``snnconv`` ops), the graph's ANN
    forward pass is checked against onnxruntime on the original model; a mismatch raises
    ``InputError``. Provenance and the check's numbers go into ``graph.metadata``.
    """
    data, name, folder = _read(source)
    model = source if isinstance(source, onnx.ModelProto) else _parse(data, name)
    _load_external_data(model, name, folder)
    graph, onnx_of = build_graph(model, name)
    graph.metadata.setdefault("source_sha256", hashlib.sha256(data).hexdigest())
    graph.metadata.setdefault("source_name", name)
    if verify and not _uses_snn_domain(model):
        result = verify_graph(graph, model, onnx_of, source=name)
        graph.metadata.update(result.as_metadata())
        result.raise_if_bad(name, onnx_of)
    return graph


# --- reading and checking the file --------------------------------------------------------


def _read(source) -> tuple[bytes, str, Path | None]:
    if isinstance(source, onnx.ModelProto):
        return source.SerializeToString(), "<model>", None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>", None
    path = Path(source)
    try:
        return path.read_bytes(), path.name, path.resolve().parent
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None


def _parse(data: bytes, name: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise InputError(f"{name}: not an ONNX model (the file does not parse: {e})") from None
    if not data or not model.HasField("graph") or not model.opset_import or not model.graph.node:
        raise InputError(
            f"{name}: not an ONNX model (no graph or no opset); is the file truncated or of "
            "another format?"
        )
    return model


def _external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]


def _load_external_data(model: onnx.ModelProto, name: str, folder: Path | None) -> None:
    """Resolve external weight files, refusing any that lies outside the model's folder."""
    tensors = _external_tensors(model)
    if not tensors:
        return
    if folder is None:
        raise InputError(f"{name}: the model keeps weights in external files; load it from a path")
    for t in tensors:
        location = {e.key: e.value for e in t.external_data}.get("location", "")
        target = (folder / location).resolve()
        if not location or not target.is_relative_to(folder) or not target.is_file():
            raise InputError(
                f"{name}: initializer {t.name!r} points to external data {location!r}, which "
                f"is missing or outside the model's folder {folder}; refusing to read it"
            )
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(folder))
    except (OSError, ValueError) as e:
        raise InputError(f"{name}: cannot read external weights: {e}") from None


def _uses_snn_domain(model: onnx.ModelProto) -> bool:
    return any(n.domain == SNN_DOMAIN for n in model.graph.node)


def _opset(model: onnx.ModelProto, name: str) -> int:
    versions = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    version = versions.get("")
    if version is None or version < MIN_OPSET:
        raise InputError(
            f"{name}: ONNX opset {version} is too old (snnconv reads opset {MIN_OPSET}+); "
            "upgrade it with onnx.version_converter or re-export the model"
        )
    newest = onnx.defs.onnx_opset_version()
    if version > newest:
        raise InputError(
            f"{name}: ONNX opset {version} is newer than the newest this installation knows "
            f"({newest}); re-export the model at opset {newest} or lower, or upgrade onnx"
        )
    known = known_domains()
    for node in model.graph.node:
        domain = "" if node.domain == "ai.onnx" else node.domain
        if domain not in versions or domain not in known:
            raise InputError(
                f"{name}: node {node.name or node.op_type!r} ({node.op_type}) is in the op "
                f"domain {node.domain!r}, which snnconv does not know or the model does not "
                "declare"
            )
    return version


def _sorted_nodes(graph: onnx.GraphProto, available: set[str], name: str) -> list:
    """The nodes in dependency order; a missing tensor or a cycle is an InputError."""
    pending, order, known = list(graph.node), [], set(available)
    while pending:
        rest = []
        for n in pending:  # one pass keeps an already sorted graph in its order
            if all(not t or t in known for t in n.input):
                order.append(n)
                known.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            break
        pending = rest
    if pending:
        produced = {o for n in pending for o in n.output}
        for n in pending:
            for t in n.input:
                if t and t not in known and t not in produced:
                    raise InputError(
                        f"{name}: node {n.name or n.op_type!r} ({n.op_type}) reads tensor {t!r}, "
                        "which no node, initializer or input provides (missing weights?)"
                    )
        n = pending[0]
        raise InputError(f"{name}: node {n.name or n.op_type!r} ({n.op_type}) is in a cycle")
    return order


def _graph_input(graph: onnx.GraphProto, name: str) -> tuple[str, tuple[int, ...], int | None]:
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise InputError(
            f"{name}: the model has {len(inputs)} input(s) and {len(graph.output)} output(s); "
            "snnconv needs exactly one of each"
        )
    inp = inputs[0]
    t = inp.type.tensor_type
    if t.elem_type != onnx.TensorProto.FLOAT:
        raise InputError(f"{name}: input {inp.name!r} is not float32")
    dims = list(t.shape.dim)
    if len(dims) < 2:
        raise InputError(f"{name}: input {inp.name!r} needs a batch axis and a per-sample shape")
    shape = []
    for axis, d in enumerate(dims[1:], start=1):
        if not d.HasField("dim_value") or d.dim_value <= 0:
            raise InputError(
                f"{name}: input {inp.name!r} axis {axis} has no fixed size ({d.dim_param or '?'}); "
                "export the model with a fixed input shape (only the batch axis may vary)"
            )
        shape.append(int(d.dim_value))
    check_size(shape, 4, f"{name}: input {inp.name!r} (one image)")
    batch = int(dims[0].dim_value) if dims[0].HasField("dim_value") else None
    return inp.name, tuple(shape), batch


# --- building the graph ---------------------------------------------------------------------


def build_graph(
    model: onnx.ModelProto, name: str, *, fold: bool = True
) -> tuple[Graph, dict[str, str]]:
    """The IR graph of ``model`` and, for verification, the ONNX tensor of each IR node;
    with ``fold``, repeated blocks (exported BackRes) are folded into ``backres`` nodes."""
    opset = _opset(model, name)
    if model.functions:  # inline all but the functions a handler reads as one op (QCFS)
        own = [(f.domain, f.name) for f in model.functions if lookup(f.domain, f.name)]
        model = onnx.inliner.inline_selected_functions(model, own, exclude=True)
    g = model.graph
    input_name, input_shape, batch = _graph_input(g, name)
    order = _sorted_nodes(g, {t.name for t in g.initializer} | {i.name for i in g.input}, name)
    uses = Counter(t for n in order for t in n.input if t)
    uses[g.output[0].name] += 1
    onnx_names = Counter(n.name for n in order if n.name)
    ctx = Context(
        name,
        input_name,
        input_shape,
        batch,
        g.output[0].name,
        opset,
        dict(uses),
        reserved=set(onnx_names),
    )
    ctx.body_loader = load_body
    _check_tensor_attributes(g, name)
    for t in g.initializer:
        ctx.consts[t.name] = _to_array(t, f"{name}: initializer {t.name!r}")
    unsupported, reasons = walk(ctx, order, onnx_names)
    if unsupported:
        hint = "\n".join(reasons + [_UNSUPPORTED_HINT])
        raise UnsupportedOpsError(unsupported, hint=hint, source=name)
    graph = _finish(ctx, model, input_shape)
    if fold:
        graph = fold_backres(graph)
    return graph, {k: v for k, v in ctx.onnx_of.items() if k in {n.name for n in graph.nodes}}


def _to_array(t: onnx.TensorProto, what: str) -> np.ndarray:
    """The values of ``t``, its declared size checked before numpy allocates it."""
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except KeyError:
        raise InputError(f"{what} has an unknown data type {t.data_type}") from None
    check_size(t.dims, itemsize, what)
    try:
        return numpy_helper.to_array(t)
    except (ValueError, TypeError) as e:
        raise InputError(
            f"{what} declares shape {tuple(t.dims)} but its data does not fit it ({e}); "
            "the file is corrupt or was edited"
        ) from None


def _check_tensor_attributes(g: onnx.GraphProto, name: str) -> None:
    """Constant-like nodes carry tensors in attributes; check their sizes before parsing."""
    for node in g.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                what = f"{name}: node {node.name or node.op_type!r} ({node.op_type}) attribute "
                _to_array(a.t, what + repr(a.name))


def _finish(ctx: Context, model: onnx.ModelProto, input_shape: tuple[int, ...]) -> Graph:
    out = ctx.output
    if out in ctx.consts or ctx.alias.get(out, ctx.input_name) == ctx.input_name:
        raise InputError(f"{ctx.source}: the model's output {out!r} does not depend on its input")
    metadata = {p.key: p.value for p in model.metadata_props}
    metadata.update(ctx.notes)
    graph = Graph(
        _live(ctx.nodes, ctx.alias[out]), ctx.input_name, input_shape, ctx.alias[out], metadata
    )
    try:
        graph.validate()
    except GraphError as e:
        raise InputError(f"{ctx.source}: {e}") from None
    return graph


def _live(nodes: list, output: str) -> list:
    """Drop nodes the output does not depend on (e.g. the unused branch of a folded Add)."""
    needed, by_name = {output}, {n.name: n for n in nodes}
    for n in reversed(nodes):
        if n.name in needed:
            needed.update(n.inputs)
    return [n for n in nodes if n.name in needed and n.name in by_name]


def load_body(body: onnx.GraphProto, input_name: str, input_shape: tuple[int, ...], ctx) -> list:
    """The nodes of a BackRes body (a GRAPH attribute reading ``input_name`` from the outer
    scope), loaded as a model of its own with that input."""
    g = helper.make_graph(
        list(body.node),
        body.name or "body",
        [helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, [1, *input_shape])],
        list(body.output),
        list(body.initializer),
    )
    opsets = [helper.make_opsetid("", ctx.opset)]
    opsets += [helper.make_opsetid(d, 1) for d in (SNN_DOMAIN, ANN_DOMAIN)]
    model = helper.make_model(g, opset_imports=opsets)
    graph, _ = build_graph(model, f"{ctx.source} (body of {ctx.node_name})", fold=False)
    if graph.output != graph.nodes[-1].name:
        raise ctx.error("the BackRes body's output must be its last node")
    return graph.nodes
