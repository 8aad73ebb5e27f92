"""PyTorch bridge: surrogate-gradient training of eventsim's neuron models.

Import it explicitly (``import eventsim.torch``); importing ``eventsim``
alone never imports torch.

* :mod:`~eventsim.torch.functional` — fused autograd Functions over whole
  sequences (forward and reverse-time kernels in Numba, CPU and CUDA);
* :mod:`~eventsim.torch.surrogate` — surrogate derivatives by name;
* modules — :class:`LIF`, :class:`IF`, :class:`ALIF`, :class:`LIFRecurrent`;
* :func:`to_network` / :func:`simulate` — run a trained stack in the simulator.
"""

from .. import _compile  # noqa: F401  (announces the first compilation of the torch kernels)
from . import functional, surrogate
from .export import Export, simulate, to_network
from .functional import NeuronState
from .modules import ALIF, IF, LIF, LIFRecurrent
from .surrogate import SURROGATES

__all__ = ["LIF", "IF", "ALIF", "LIFRecurrent", "NeuronState", "to_network", "simulate", "Export",
           "SURROGATES", "functional", "surrogate"]
