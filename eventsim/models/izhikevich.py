r"""Izhikevich (2003) neurons, stepped exactly as NEST's ``izhikevich`` model.

State ``v`` (mV) and the recovery variable ``u`` (mV/ms, the units of
:math:`\dot v`; NEST's ``U_m``):

.. math::

    \dot v = 0.04\,v^2 + 5\,v + 140 - u + I, \qquad \dot u = a\,(b\,v - u),

with a spike when :math:`v \ge v_{th}`, then :math:`v \leftarrow c`,
:math:`u \leftarrow u + d`.  The coefficients 0.04, 5 and 140 are the
paper's (mV and ms); the input current :math:`I` (pA) enters :math:`\dot v`
as a number of mV/ms, as in NEST (a capacitance of 1 pF).  Input spikes
jump ``v`` by their weight (mV), like delta synapses; the sign of the
weight plays no part (one port).

The model is defined by its update rule, not by an exact solution, and the
rule is NEST's (Izhikevich 2003, the published scheme being the second
option).  Order of one step of length ``h = dt``:

1. ``consistent_integration=True`` (NEST's default): one forward-Euler step
   from the values at the start of the step,
   :math:`v \leftarrow v + (h\,(0.04 v^2 + 5 v + 140 - u + I + I_e) + J)`,
   :math:`u \leftarrow u + h\,a\,(b\,v_{old} - u)`, where :math:`J` is the sum
   of the weights (mV) of the spikes arriving in this step.
   ``consistent_integration=False``: the published scheme: two half steps
   of ``v``, each :math:`v \leftarrow v + \tfrac{h}{2}(0.04 v^2 + 5 v + 140
   - u + I + I_e + J)` (the weights act as a current there, :math:`h J / 2`
   in each half step: :math:`J` in all at the paper's ``h = 1`` ms, as in NEST),
   then :math:`u \leftarrow u + h\,a\,(b\,v - u)` with the new ``v``.
2. Lower bound: :math:`v \leftarrow \max(v, v_{min})`.
3. Threshold: if :math:`v \ge v_{th}`, a spike (stamped at the end of the
   step), :math:`v \leftarrow c`, :math:`u \leftarrow u + d`.  Never
   refractory.

The current :math:`I` is that of the DC sources (``net.dc``,
``net.step_current``) in this step.  NEST uses the current received in the
previous step, from a generator whose connection delay is at least one step:
the two agree when eventsim's source is given NEST's connection delay as its
``delay`` (a change at time :math:`t` acts from the step that starts at
:math:`t + delay` on, in both); ``delay=0`` (eventsim's default) has no
NEST counterpart.  The sums are formed in NEST's order, so the trace is
NEST's to the last bit.

This module is the whole family: the parameters, their validation and
packing, the step, the block update and the declaration
(:data:`IZHIKEVICH_FAMILY`) through which the clock engines (CPU and CUDA)
run it.  The event engine does not run it (no exact solution to step
between events).

References
----------
E. M. Izhikevich, Simple model of spiking neurons, IEEE Transactions on
Neural Networks 14, 1569-1572 (2003).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
from numba import njit

from . import dynamics
from ._params import model_repr, as_param, broadcast, check, check_keywords, param_length
from .family import Family, block_kernel, pack_fields, register

_jit = njit(inline="always", cache=True)

#: Columns of the family's coefficients (``Params.coef``).
A, B, C, D, H, I_E, CONSISTENT = range(7)
#: Column of ``u`` in the family's state (``State.x``).
U = 0


@_jit
def step_izhikevich(v, u, a, b, c, d, v_th, v_min, i_e, dt, jump, i_stim, consistent):
    """One step (the order of the module docstring); returns ``(v, u, spiked)``.

    ``jump``: the sum of the weights (mV) of the spikes arriving in this
    step; ``i_stim``: the DC input (pA); ``i_e``: the bias current (pA).
    """
    if consistent:
        v_new = v + (dt * (0.04 * v * v + 5.0 * v + 140.0 - u + i_stim + i_e) + jump)
        u = u + dt * a * (b * v - u)
        v = v_new
    else:
        v = v + dt * 0.5 * (0.04 * v * v + 5.0 * v + 140.0 - u + i_stim + i_e + jump)
        v = v + dt * 0.5 * (0.04 * v * v + 5.0 * v + 140.0 - u + i_stim + i_e + jump)
        u = u + dt * a * (b * v - u)
    v = max(v, v_min)
    if v >= v_th:
        return c, u + d, True
    return v, u, False


@dataclass(frozen=True, repr=False)
class Izhikevich:
    r"""Izhikevich (2003) neuron, NEST's ``izhikevich`` (defaults: NEST's, a regular-spiking cell).

    Parameters (each a scalar or an array with one value per neuron)
    ----------
    a : float
        Time scale of the recovery variable ``u`` (1/ms), > 0.
    b : float
        Sensitivity of ``u`` to ``v`` (1/ms as a coupling of mV to mV/ms).
    c : float
        Reset potential (mV), < ``v_th``.
    d : float
        Increment of ``u`` at a spike (mV/ms).
    v_th : float
        Spike detection threshold (mV); a spike when ``v >= v_th``.
    v_min : float or None
        Lower bound of ``v`` (mV), < ``v_th``; None or -inf: no bound (NEST's
        default, the lowest double).
    i_e : float
        Constant bias current (pA, entering :math:`\dot v` as mV/ms).
    u_init : float
        Initial value of ``u`` (mV/ms); NEST's default ``U_m`` is
        :math:`b\,V_m` at its defaults, -13.  (The initial ``v`` is
        ``net.population(..., v_init=...)``, by default -65 mV, NEST's.)
    consistent_integration : bool or array of bool
        NEST's option of the same name: True (default), forward Euler from
        the values at the start of the step; False, the published scheme
        (see :mod:`eventsim.models.izhikevich` for both, in order).

    Notes
    -----
    Weights are voltage jumps (mV), of either sign, added to ``v`` in the
    step they arrive (with ``consistent_integration=False``, the
    published scheme, they enter each half step as a current, as in NEST).  State variables ``v`` (mV) and ``u`` (mV/ms) can be
    recorded, read and set.  Clock engine only (CPU and CUDA).
    """

    a: float = 0.02
    b: float = 0.2
    c: float = -65.0
    d: float = 8.0
    v_th: float = 30.0
    v_min: float | None = None
    i_e: float = 0.0
    u_init: float = -13.0
    consistent_integration: bool = True

    #: Each user-visible state variable and where the engines keep it (a State field or a column of State.x).
    state_columns = {"v": "v", "u": U}
    #: Units of the state variables.
    state_units = {"v": "mV", "u": "mV/ms"}
    #: Default initial potential (mV): NEST's initial V_m.
    v_rest = -65.0
    #: Never refractory.
    t_ref = 0.0

    def __new__(cls, *args, **kwargs):
        check_keywords(cls, kwargs, [f.name for f in fields(cls)],
                       {k: "Izhikevich neurons have no refractory period" for k in ("t_ref", "tau_ref", "t_refrac")})
        return super().__new__(cls)

    def __post_init__(self):
        ci = self.consistent_integration
        if isinstance(ci, (bool, np.bool_)):
            ci = bool(ci)
        else:
            arr = np.asarray(ci) if isinstance(ci, (list, tuple, np.ndarray)) else None
            if arr is None or arr.dtype != np.bool_ or arr.ndim != 1:
                raise ValueError(f"consistent_integration={ci!r} must be True, False or a 1-D array of bools "
                                 "(one per neuron)")
            ci = arr.copy()
            ci.setflags(write=False)
        object.__setattr__(self, "consistent_integration", ci)
        for f in fields(self):
            if f.name != "consistent_integration":
                object.__setattr__(self, f.name, as_param(f.name, getattr(self, f.name),
                                                          allow_none=f.name == "v_min", allow_inf=f.name == "v_min"))
        check("a", self.a, np.asarray(self.a) > 0, "a > 0 (1/ms)")
        check("c", self.c, np.asarray(self.c) < np.asarray(self.v_th), "c < v_th (mV): the reset lies below the threshold")
        if self.v_min is not None:
            check("v_min", self.v_min, np.asarray(self.v_min) < np.asarray(self.v_th), "v_min < v_th (mV)")
        param_length(self._values())

    def _values(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __repr__(self):
        return model_repr(self)

    @property
    def family(self):
        """:data:`IZHIKEVICH_FAMILY`."""
        return IZHIKEVICH_FAMILY

    @property
    def synapse(self):
        """``"delta"``: weights are voltage jumps (mV)."""
        return "delta"

    @property
    def state_names(self):
        """Names of the recordable state variables."""
        return ("v", "u")

    @property
    def n_values(self):
        """Number of neurons implied by array parameters (None if all scalar)."""
        return param_length(self._values())

    def pack(self, n, dt):
        """Per-neuron arrays consumed by the clock engines (float64 / int64, length ``n``).

        The family's coefficients (``coef``, columns :data:`A` ... :data:`CONSISTENT`)
        hold ``a, b, c, d``, the step ``dt``, ``i_e`` and the integration option;
        ``i_e`` is kept there (the engines' own ``i_e`` is 0) so that the step adds
        the DC input and the bias current separately, in NEST's order.
        """
        b = lambda name, v: broadcast(name, v, n)  # noqa: E731
        coef = np.column_stack([b("a", self.a), b("b", self.b), b("c", self.c), b("d", self.d),
                                np.full(n, float(dt)), b("i_e", self.i_e),
                                broadcast("consistent_integration", self.consistent_integration, n)])
        return pack_fields(IZHIKEVICH_FAMILY, n, 1, v_rest=self.v_rest, v_th=b("v_th", self.v_th),
                           v_reset=b("c", self.c), v_min=b("v_min", -math.inf if self.v_min is None else self.v_min),
                           reset_mode=dynamics.RESET_VALUE, coef=coef,
                           x_init=b("u_init", self.u_init).reshape(n, 1))


@block_kernel
def _run_izhikevich(a, b, c0, ring, v_th, v_min, a_, b_, c_, d_, h, i_e, consistent, sv, sdc, x, flag):
    """Neurons ``a..b-1`` of one parameter set: read and clear their input, step, test the threshold."""
    for n in range(a, b):
        jump = ring[c0 + n]
        ring[c0 + n] = 0.0
        v, u, spiked = step_izhikevich(sv[n], x[n, U], a_, b_, c_, d_, v_th, v_min, i_e, h, jump, sdc[n],
                                       consistent)
        sv[n] = v
        x[n, U] = u
        flag[n] = spiked


@_jit
def _izhikevich_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of the Izhikevich family (reads the DC input
    ``st.i_dc`` per neuron and its own ``i_e``, whatever ``per_neuron``: the engines' ``i_e`` is 0)."""
    k = pr.coef
    _run_izhikevich(a, b, c0, ring, pr.v_th[q], pr.v_min[q], k[q, A], k[q, B], k[q, C], k[q, D], k[q, H],
                    k[q, I_E], k[q, CONSISTENT] != 0.0, st.v, st.i_dc, st.x, flag)


class IzhikevichTag(NamedTuple):
    """Compile-time key of the Izhikevich family (see :mod:`eventsim.models.family`)."""

    code: int


#: Izhikevich neurons: state ``v`` and ``u`` (column 0 of the family state), no refractory counter, one port
#: (every weight, mV, jumps ``v``).
IZHIKEVICH_FAMILY = register(Family(
    name="izhikevich", code=10, tag=IzhikevichTag(10), state=(("v", "mV"), ("u", "mV/ms")), ports=("ex",),
    propagator=None, update_block=_izhikevich_block, models=(Izhikevich,), event_engine=False))
