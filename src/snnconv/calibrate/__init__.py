"""Calibration: thresholds for every activation layer (threshold methods), and the layer-wise
steps that fit the SNN at its target T."""

# registers the method that simulates in the loop (the others register where they are defined)
from snnconv.calibrate import spikenorm  # noqa: E402, F401, I001
from snnconv.calibrate import prepared  # noqa: F401  (--threshold qcfs)
from snnconv.calibrate.observe import observe_thresholds
from snnconv.calibrate.thresholds import METHODS, ThresholdMethod, parse_method

__all__ = ["METHODS", "ThresholdMethod", "observe_thresholds", "parse_method"]
