"""Neuron model families: validated parameters and exact dynamics."""

from .adaptive import ALIF
from .li import LI
from .lif import IF, LIF, Propagator, propagator

__all__ = ["LIF", "IF", "ALIF", "LI", "Propagator", "propagator"]
