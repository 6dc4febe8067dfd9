"""Reset by subtraction in NIR: the loop ``I -> Threshold -> Scale(-c) -> I``.

NIR's IF (nir >= 1.0.6) resets to ``v_reset``. An IF that resets by subtraction is, in NIR's
own nodes, an integrator (``I``, ``dv/dt = r I``) whose spikes (``Threshold``: 1 where
``v > threshold``) come back through ``Scale(-c)``: with dt = 1 and a recurrent edge carrying
the previous step's value, ``v[t] = v[t-1] + r (I[t] - c s[t-1])``. The writer
(``export/nir.py``) emits this loop for ``--reset subtract``; the reader finds it here and
reads each one as a single neuron.
"""

from __future__ import annotations

from snnconv.errors import InputError


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
