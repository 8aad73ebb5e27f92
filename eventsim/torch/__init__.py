"""PyTorch bridge: surrogate-gradient training of eventsim's neuron models.

Import it explicitly (``import eventsim.torch``); importing ``eventsim``
alone never imports torch.

* :mod:`~eventsim.torch.functional` — fused autograd Functions over whole
  sequences (forward and reverse-time kernels in Numba, CPU and CUDA);
* :mod:`~eventsim.torch.surrogate` — surrogate derivatives by name;
* modules — :class:`LIF`, :class:`IF`, :class:`ALIF` (``K`` threshold
  components), :class:`LIFRecurrent` (optionally adaptive; CPU and CUDA)
  (``return_state=False`` for ``nn.Sequential``), :class:`TimeDistributed`;
  :class:`LI`, the leaky-integrator readout (exact gradients), a layer of a
  family of :mod:`eventsim.models` run through its own declaration
  (:class:`FamilyLayer`, :func:`~eventsim.torch.functional.family_layer`);
* :func:`init_for_spikes` — scale the weights so that a stack fires from the first epoch;
* :func:`to_network` / :func:`simulate` — run a trained stack in the simulator.

One set-up for every layer: a layer runs the family of :mod:`eventsim.models`
that the simulator's own resolution gives for its options
(``iaf_psc_delta``, ``iaf_psc_exp``, ``iaf_psc_alpha``, ``alif``, ``li``),
and :func:`~eventsim.torch.functional.layer_rows` builds its coefficient
rows from that family's declaration (``Family.torch``, see
:mod:`eventsim.models.family`, "The torch contract"), which
:func:`~eventsim.torch.functional.run_layer` runs on the kernels the
declaration names: the generic family kernels over the family's own
scalar steps (``LI``, ``LIF(psc="alpha")``) or the point-neuron kernels
(``LIF``, ``IF``, ``ALIF``, ``LIFRecurrent``, every integrator); the
bridge itself never branches on the kind of layer.

PyTorch tooling: ``torch.func`` (``grad`` of ``functional_call``, ``vmap``
over the batch, per-sample gradients by ``vmap(grad(...))``);
``torch.compile(model, fullgraph=True)`` and ``torch.export`` (the fused
kernels are ``torch.library`` operators ``eventsim::ff_forward``,
``ff_backward``, ``rec_forward``, ``rec_backward``, and ``native_rows``
for the forward coefficients: every layer, exact and peer-parity
integrators alike, traces without graph breaks and computes with the eager
layer's coefficients bit for bit); float16 / bfloat16 inputs and
``torch.autocast``, computed in float32 inside.
"""

from .. import _compile  # noqa: F401  (announces the first compilation of the torch kernels)
from . import functional, surrogate
from .export import Export, simulate, to_network
from .functional import NeuronState
from .init import init_for_spikes
from .modules import (ALIF, IF, LI, LIF, TAU_MIN_STEPS, FamilyLayer, LIFRecurrent, PositiveTime,
                      TimeDistributed, detach_states, reset_states)
from .surrogate import SURROGATES

__all__ = ["LIF", "IF", "ALIF", "LIFRecurrent", "LI", "FamilyLayer", "TimeDistributed", "PositiveTime", "TAU_MIN_STEPS",
           "reset_states", "detach_states", "init_for_spikes", "NeuronState", "to_network", "simulate", "Export",
           "SURROGATES", "functional", "surrogate"]
