"""eventsim: exact, fast simulation of large sparse spiking neural networks."""

from . import _cache

_cache.install()  # before any kernel module: a change to any source of the package recompiles its kernels

from ._compile import warmup  # noqa: E402
from .connectivity import (AllToAll, Distribution, FixedInDegree, FixedProbability, FromArrays, Normal,  # noqa: E402
                           OneToOne, Uniform)
from .models import *  # noqa: E402,F403  (every neuron model of eventsim.models.__all__)
from .models import __all__ as _models_all  # noqa: E402
from .models.plasticity import STDP, STDPPowerLaw, TripletSTDP  # noqa: E402
from .network import Network, NodeView, Population, Projection  # noqa: E402
from .record import SpikeRecorder, StateRecorder, WeightRecorder  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Network", "Population", "NodeView", "Projection",
    *_models_all,
    "STDP", "STDPPowerLaw", "TripletSTDP",
    "FixedInDegree", "FixedProbability", "OneToOne", "AllToAll", "FromArrays",
    "Distribution", "Normal", "Uniform",
    "SpikeRecorder", "StateRecorder", "WeightRecorder",
    "warmup",
]
