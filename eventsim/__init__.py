"""eventsim: exact, fast simulation of large sparse spiking neural networks."""

from ._compile import warmup
from .connectivity import (AllToAll, Distribution, FixedInDegree, FixedProbability, FromArrays, Normal,
                           OneToOne, Uniform)
from .models import ALIF, IF, LIF, propagator
from .models.plasticity import STDP, STDPPowerLaw
from .network import Network, NodeView, Population, Projection
from .record import SpikeRecorder, StateRecorder, WeightRecorder

__version__ = "0.1.0"

__all__ = [
    "Network", "Population", "NodeView", "Projection",
    "LIF", "IF", "ALIF", "propagator",
    "STDP", "STDPPowerLaw",
    "FixedInDegree", "FixedProbability", "OneToOne", "AllToAll", "FromArrays",
    "Distribution", "Normal", "Uniform",
    "SpikeRecorder", "StateRecorder", "WeightRecorder",
    "warmup",
]
