"""Conversion: ANN graph -> SNN graph, as a sequence of Graph -> Graph passes."""

from snnconv.convert.convert import ConversionSettings, convert, prepare_ann
from snnconv.convert.neurons import to_ann

__all__ = ["ConversionSettings", "convert", "prepare_ann", "to_ann"]
