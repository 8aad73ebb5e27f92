"""Neuron model families: validated parameters and exact dynamics."""

from .adaptive import ALIF
from .adex import AdEx
from .cond_lif import CondLIF
from .izhikevich import Izhikevich
from .integrator import Integrator
from .li import LI
from .lif import IF, LIF, Propagator, propagator
from . import psc_alpha  # noqa: F401  (registers the iaf_psc_alpha family)
from .parrot import Parrot
from . import multisynapse  # noqa: F401  (registers the receptor-port family)

__all__ = ["LIF", "IF", "ALIF", "LI", "Integrator", "Izhikevich", "Parrot", "CondLIF", "AdEx", "Propagator", "propagator"]
