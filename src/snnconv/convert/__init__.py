"""Conversion: ANN graph -> SNN graph, as a sequence of Graph -> Graph passes."""

from snnconv.convert.convert import ConversionSettings, convert, prepare_ann
from snnconv.convert.neurons import to_ann
from snnconv.convert.prepared import prepared_defaults

__all__ = ["ConversionSettings", "convert", "prepare_ann", "prepared_defaults", "to_ann"]
