"""ONNX op handlers: each turns one ONNX node into IR nodes, constants or aliases.

Importing this package registers every handler (one ``@register`` each, by op family).
"""

from snnconv.load.handlers import (  # noqa: F401
    activations,
    elementwise,
    pooling,
    qcfs,
    shapes,
    snn_domain,
    synapses,
)
