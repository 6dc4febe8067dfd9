"""snnconv's IF neuron in NIR's nodes, both ways: the reset loop and the initial membrane.

NIR's IF (nir >= 1.0.6) resets to ``v_reset``. An IF that resets by subtraction is, in NIR's
own nodes, an integrator (``I``, ``dv/dt = r I``) whose spikes (``Threshold``: 1 where
``v > threshold``) come back through ``Scale(-theta)``: with dt = 1 and a recurrent edge
carrying the previous step's value, ``v[t] = v[t-1] + r (I[t] - theta s[t-1])``.

NIR neurons start at rest (v = 0). A neuron of snnconv that starts at ``v0 * theta +
potential`` (call it ``start``) is the same neuron measured from ``start``: ``w = v - start``
starts at 0, fires where ``w >= theta - start`` and loses theta per spike (subtraction) or
falls to ``-start`` (reset to zero: NIR's ``v_reset``). So the exported firing level is
``theta - start``, the reset stays theta, and the reader recovers ``start`` as their gap.
The exporter records theta and start in the node's metadata; the reader uses them where they
reproduce the node's parameters exactly (a file snnconv wrote), so a round trip is bit-exact.
"""

from __future__ import annotations

import numpy as np

from snnconv.errors import InputError
from snnconv.graph import Node

#: Node metadata keys the exporter writes and the reader checks.
META_THRESHOLD, META_START = "snnconv_threshold", "snnconv_initial_membrane"


def nir_threshold(theta: np.ndarray) -> np.ndarray:
    """The NIR ``v_threshold`` (fires on v > it) that fires where snnconv (v >= theta) does."""
    return np.nextafter(np.asarray(theta, np.float32), np.float32(-np.inf))


def initial_membrane(node: Node, theta: np.ndarray) -> np.ndarray:
    """The membrane the engine starts ``node`` at, per element of ``theta``, in float32 as it
    computes it (``v0 * theta``, then the calibrated ``potential`` added)."""
    start = (np.float32(node.attrs.get("v0", 0.0)) * theta).astype(np.float32)
    if "potential" in node.params:
        p = node.params["potential"].astype(np.float32)
        start = start + p.reshape((-1,) + (1,) * (theta.ndim - 1))
    return start.astype(np.float32)


def firing_level(theta: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Where a neuron measured from ``start`` fires: ``theta - start`` in float32."""
    return (theta.astype(np.float64) - start.astype(np.float64)).astype(np.float32)


def graph_level(threshold: np.ndarray, units: np.ndarray, unit: bool) -> tuple:
    """``(level, units)``: where snnconv fires (v >= level) for NIR's ``v > threshold`` on a
    membrane ``units`` times the graph's (float64 division, rounded once; none if ``unit``)."""
    bound = np.asarray(threshold if unit else threshold / units, np.float32)
    return np.nextafter(bound, np.float32(np.inf)), units


def neuron_meta(theta: np.ndarray, start: np.ndarray) -> dict:
    return {META_THRESHOLD: theta, META_START: start} if np.any(start != 0) else {}


def recorded(meta: dict, level: np.ndarray, reset: np.ndarray, reset_of) -> tuple | None:
    """``(theta, start)`` from a node's metadata, if they give exactly its NIR firing ``level``
    and its ``reset`` parameter (``reset_of(theta, start)``); else None."""
    theta, start = meta.get(META_THRESHOLD), meta.get(META_START)
    if theta is None or start is None:
        return None
    theta, start = np.asarray(theta, np.float32), np.asarray(start, np.float32)
    if theta.shape != level.shape or start.shape != level.shape:
        return None
    same_level = np.array_equal(nir_threshold(firing_level(theta, start)), level)
    if not (same_level and np.array_equal(reset_of(theta, start), reset)):
        return None
    return theta, start


def snnconv_neuron(theta: np.ndarray, start: np.ndarray) -> tuple[dict, dict]:
    """The ``if_neuron`` attrs and params that start at ``start``: a ``v0`` fraction where one
    reproduces it exactly, else a ``potential`` per channel."""
    th, st = theta.reshape(theta.shape[0], -1)[:, 0], start.reshape(start.shape[0], -1)[:, 0]
    params = {"threshold": th.astype(np.float32)}
    if not np.any(st):
        return {"v0": 0.0}, params
    v0 = float(st[0] / th[0])
    if 0 <= v0 < 1 and np.array_equal((np.float32(v0) * th).astype(np.float32), st):
        return {"v0": v0}, params
    return {"v0": 0.0}, {**params, "potential": st.astype(np.float32)}


def _kind(graph, nid: str) -> str:
    return type(graph.nodes[nid]).__name__


def subtraction_loops(graph, preds: dict[str, list[str]]) -> dict[str, tuple[str, str]]:
    """Threshold id -> ``(integrator id, reset Scale id)`` for each loop in ``graph``
    (``preds``: each node's sources). A loop whose membrane reaches other nodes is refused."""
    loops = {}
    for nid in graph.nodes:
        if _kind(graph, nid) != "Threshold" or len(preds[nid]) != 1:
            continue
        integrator = preds[nid][0]
        if _kind(graph, integrator) != "I":
            continue
        resets = [p for p in preds[integrator] if _kind(graph, p) == "Scale" and preds[p] == [nid]]
        if len(resets) != 1:
            continue
        used = {t for s, t in graph.edges if s in (integrator, resets[0])}
        if used != {nid, integrator}:
            raise InputError(
                f"NIR node {integrator!r}: the membrane of the reset loop through {nid!r} "
                "reaches other nodes; snnconv's neurons pass on their spikes only"
            )
        loops[nid] = (integrator, resets[0])
    return loops
