"""Neuron model families: validated parameters and exact dynamics."""

from .adaptive import ALIF
from .lif import IF, LIF, Propagator, propagator

__all__ = ["LIF", "IF", "ALIF", "Propagator", "propagator"]
