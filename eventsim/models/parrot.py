r"""Parrot neurons: a relay that re-emits the spikes it receives (NEST's ``parrot_neuron``).

A parrot neuron has no dynamics: in each step in which spikes reach it
(each after its connection's delay), it emits a spike, stamped at the end
of that step, as NEST's ``parrot_neuron`` does.  A spike sent at time
:math:`t` through a connection of delay :math:`d` therefore leaves the
parrot at :math:`t + d`, and its connections pass it on after their own
delays.  It never spikes on its own.  Uses: sending one Poisson train to
several targets, putting a spike source behind neuron-to-neuron connections
(plastic synapses connect neurons only), delay lines.

As in NEST, the weight of a connection onto a parrot is ignored (0 and
negative weights relay too) and the :math:`k` spikes reaching a parrot in
one step (several inputs, a Poisson count above one, repeated times of a
spike source) leave it as **one spike of multiplicity** :math:`k`: its
targets receive weight x :math:`k`, a spike recorder records it
:math:`k` times, and a plastic synapse makes one weight update for it
(NEST's synapses see one event; its presynaptic trace grows by 1).  The
family declares ``counts=True`` (:class:`eventsim.models.family.Family`):
the engines add 1 per spike onto a parrot instead of the weight, the
parrot's update leaves the count in its (otherwise unused) ``v``, and the
spike lists carry it beside the neuron (``Work.imul``, ``smul``, ``pmul``
in :mod:`eventsim.engines.clock_cpu`; in the MPI exchange inside the
exchanged value, :mod:`eventsim.engines.clock_mpi`).  A parrot sends at
most :data:`MAX_MULTIPLICITY` (:math:`2^{20}`) spikes in one step (more
inputs than that in one step, e.g. a Poisson channel above
:math:`10^{10}` Hz, are cut there), in every engine and on any number of
MPI ranks alike.

There is no second port for spikes to ignore (NEST's receptor 1), and
parrots take no current (connecting a DC source to them is an error).

In the event engine a parrot spikes at the exact (off-grid) time its
inputs arrive: one spike per distinct arrival time, after every input
arriving then (the engine's threshold test after the deliveries of a
time), with the number of those inputs as its multiplicity (the family's
``multiplicity`` event function): it is recorded that many times and
delivered as that many events at that time (a parrot behind it counts
them all; a neuron adds the weight that many times).  On the grid (spike
times and delays multiples of dt) both engines give NEST's spikes.

This module is the whole family: the model class, its packing, the block
update, the event engine's functions and the declaration
(:data:`PARROT_FAMILY`).  Clock engine (CPU and CUDA) and event engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from ._params import check_keywords
from .family import (N_PARAMS, EventFunctions, Family, block_kernel, never_crosses, no_crossing, pack_fields,
                     register)


@dataclass(frozen=True, repr=False)
class Parrot:
    """Parrot neuron (NEST's ``parrot_neuron``): re-emits the spikes it receives.

    No parameters and no state.  Weights onto parrots are ignored; delays
    apply as for any connection; the ``k`` spikes reaching it in one step
    (event engine: at one time) leave as one spike of multiplicity ``k``
    (weight x ``k`` at its targets, recorded ``k`` times).  See
    :mod:`eventsim.models.parrot` for the timing.
    """

    #: No state variables.
    state_columns = {}
    state_units = {}
    #: Placeholders of the model interface (no membrane: ``v`` holds the engine's count of the last step's
    #: input spikes and cannot be recorded).
    v_rest = 0.0
    v_min = None
    i_e = 0.0
    t_ref = 0.0
    #: Parrots take spikes only: no DC sources.
    current_input = False

    def __new__(cls, *args, **kwargs):
        check_keywords(cls, kwargs, [], {k: "a parrot neuron has no parameters" for k in kwargs})
        return super().__new__(cls)

    def __repr__(self):
        return "Parrot()"

    @property
    def family(self):
        """:data:`PARROT_FAMILY`."""
        return PARROT_FAMILY

    @property
    def synapse(self):
        """``"delta"``: spikes are relayed, weights carry no unit (mV for the record)."""
        return "delta"

    @property
    def state_names(self):
        """No recordable state."""
        return ()

    @property
    def n_values(self):
        """None: no per-neuron parameters."""
        return None

    def pack(self, n, dt):
        """Per-neuron arrays consumed by the clock engines: two ports (one per sign of the weight)."""
        return pack_fields(PARROT_FAMILY, n, 2)


#: Most spikes a parrot sends in one step (the multiplicity the MPI exchange carries, :mod:`.clock_mpi`).
MAX_MULTIPLICITY = float(1 << 20)


@block_kernel
def _run_parrot(a, b, c0, ring, sv, flag):
    """Neurons ``a..b-1``: read and clear both ports (the engines add 1 per spike: a count); a spike where
    any arrived, its multiplicity (the count) left in ``sv``."""
    N = sv.size
    for n in range(a, b):
        m = ring[c0 + n] + ring[c0 + N + n]
        ring[c0 + n] = 0.0
        ring[c0 + N + n] = 0.0
        flag[n] = m > 0.5
        sv[n] = min(m, MAX_MULTIPLICITY)


@njit(inline="always", cache=True)
def _parrot_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of parrot neurons."""
    _run_parrot(a, b, c0, ring, st.v, flag)


# ---------------------------------------------------------------- event engine (see eventsim.models.family)
#: State-row columns: ``v`` (unused: it stays at its initial value, not recordable) and the relay flag (1.0:
#: an input of nonzero weight arrived at the current event time; cleared by the spike).
_EV_V = 0
_EV_GOT = 1


def _event_pack(model, n):
    """Parameter rows of ``n`` parrots: no refractory period, no parameters, no threshold component."""
    return np.zeros((n, N_PARAMS)), np.zeros((n, 0)), np.zeros((n, 0))


@njit(inline="always", cache=True)
def _event_advance(fam, i, p, s, PP, SS, TH, ITH):
    """No dynamics between events."""
    return None


@njit(inline="always", cache=True)
def _event_sample(fam, i, p, s, var, PP, SS, TH, ITH):
    """No recordable variable (record_state refuses parrots before this is reached)."""
    return math.nan


@njit(inline="always", cache=True)
def _event_receive(fam, i, p, t, w, port, PP, SS):
    """Every input arms the relay, whatever its weight (NEST's parrot ignores weights)."""
    SS[i, _EV_GOT] += 1.0


@njit(inline="always", cache=True)
def _event_fires(fam, i, p, t, PP, SS, TH):
    """A spike at ``t`` if any input arrived at ``t``."""
    return SS[i, _EV_GOT] != 0.0


@njit(inline="always", cache=True)
def _event_reset(fam, i, p, t, PP, SS, TH, DTH):
    SS[i, _EV_GOT] = 0.0


@njit(inline="always", cache=True)
def _event_multiplicity(fam, i, p, PP, SS):
    """The inputs that arrived at the spike's time: it leaves with that multiplicity."""
    return np.int64(min(SS[i, _EV_GOT], MAX_MULTIPLICITY))


PARROT_EVENT = EventFunctions(
    pack=_event_pack, slots={"v": _EV_V, "relay": _EV_GOT}, advance=_event_advance, sample=_event_sample,
    receive=_event_receive, fires=_event_fires, reset=_event_reset, never_crosses=never_crosses,
    next_crossing=no_crossing, multiplicity=_event_multiplicity)


class ParrotTag(NamedTuple):
    """Compile-time key of the parrot family (see :mod:`eventsim.models.family`)."""

    code: int


#: Parrot neurons: no state, two ports (one per sign of the weight; each spike adds 1, ``counts``), spikes sent
#: with their multiplicity.
PARROT_FAMILY = register(Family(
    name="parrot_neuron", code=11, tag=ParrotTag(11), state=(), ports=("ex", "in"), propagator=None,
    update_block=_parrot_block, models=(Parrot,), event=PARROT_EVENT, counts=True))
