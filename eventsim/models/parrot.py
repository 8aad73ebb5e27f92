r"""Parrot neurons: a relay that re-emits the spikes it receives (NEST's ``parrot_neuron``).

A parrot neuron has no dynamics: in each step in which spikes reach it
(each after its connection's delay), it emits a spike, stamped at the end
of that step, as NEST's ``parrot_neuron`` does.  A spike sent at time
:math:`t` through a connection of delay :math:`d` therefore leaves the
parrot at :math:`t + d`, and its connections pass it on after their own
delays.  It never spikes on its own.  Uses: sending one Poisson train to
several targets, putting a spike source behind neuron-to-neuron connections
(plastic synapses connect neurons only), delay lines.

Differences from NEST, both consequences of the engines carrying at most
one spike per neuron and step:

* several spikes reaching a parrot in one step leave it as **one** spike
  (NEST re-emits them all, as one event of that multiplicity): a relay of a
  Poisson source of rate :math:`\lambda` loses the extra spikes of a step,
  a fraction of about :math:`\lambda\,dt / 2` of them when
  :math:`\lambda\,dt \ll 1`;
* the weight of a connection onto a parrot does not scale anything (as in
  NEST), but a connection of weight exactly 0 relays nothing.  (Positive
  and negative weights arrive on separate ports, so they cannot cancel.)

There is no second port for spikes to ignore (NEST's receptor 1), and
parrots take no current (connecting a DC source to them is an error).

In the event engine a parrot spikes at the exact (off-grid) time its
inputs arrive: one spike per distinct arrival time, after every input
arriving then (the engine's threshold test after the deliveries of a
time), so inputs at the same time leave as one spike, as in the clock
engine's step.  On the grid (spike times and delays multiples of dt) both
engines give the same spikes.

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
    """Parrot neuron (NEST's ``parrot_neuron``): re-emits each step's incoming spikes as one spike.

    No parameters and no state.  Weights onto parrots are ignored (a weight
    of exactly 0 relays nothing); delays apply as for any connection.  See
    :mod:`eventsim.models.parrot` for the timing and the differences from
    NEST (one spike per step however many arrive).
    """

    #: No state variables.
    state_columns = {}
    state_units = {}
    #: Placeholders of the model interface (no membrane: ``v`` stays at 0 and cannot be recorded).
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
        sv[n] = m


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


PARROT_EVENT = EventFunctions(
    pack=_event_pack, slots={"v": _EV_V, "relay": _EV_GOT}, advance=_event_advance, sample=_event_sample,
    receive=_event_receive, fires=_event_fires, reset=_event_reset, never_crosses=never_crosses,
    next_crossing=no_crossing)


class ParrotTag(NamedTuple):
    """Compile-time key of the parrot family (see :mod:`eventsim.models.family`)."""

    code: int


#: Parrot neurons: no state, two ports (one per sign of the weight) so that weights cannot cancel.
PARROT_FAMILY = register(Family(
    name="parrot_neuron", code=11, tag=ParrotTag(11), state=(), ports=("ex", "in"), propagator=None,
    update_block=_parrot_block, models=(Parrot,), event=PARROT_EVENT, counts=True))
