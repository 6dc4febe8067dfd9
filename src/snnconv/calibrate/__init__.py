"""Calibration: thresholds for every activation layer, measured on data."""

from snnconv.calibrate.calibrate import calibrate
from snnconv.calibrate.thresholds import ThresholdMethod, parse_method

__all__ = ["ThresholdMethod", "calibrate", "parse_method"]
