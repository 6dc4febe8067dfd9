"""snnconv: turn trained ANNs into spiking neural networks, and measure them."""

__version__ = "0.1.0"
