r"""Adaptive exponential integrate-and-fire neurons (Brette & Gerstner 2005; NEST's ``aeif_cond_exp`` and
``aeif_psc_exp``).

.. math::

    C_m \frac{dV}{dt} = -g_L (V - v_{rest}) + g_L \Delta_T e^{(V - v_{th}) / \Delta_T} - w + I_{syn}
        + I_e + I_{stim},\qquad
    \tau_w \frac{dw}{dt} = a (V - v_{rest}) - w

with conductance-based synapses (``synapse="cond"``,
:math:`I_{syn} = -g_{ex}(V - e_{ex}) - g_{in}(V - e_{in})`, weights in nS) or
exponential current synapses (``synapse="exp"``,
:math:`I_{syn} = I_{ex} - I_{in}`, weights in pA); in both cases
:math:`\dot g_x = -g_x / \tau_{syn,x}` (:math:`\dot I_x = -I_x / \tau_{syn,x}`)
and a spike of weight :math:`w` adds :math:`|w|` to the excitatory
(:math:`w \ge 0`) or inhibitory (:math:`w < 0`) variable.  ``I_stim`` is the
current of current sources (pA).

Spike: when :math:`V \ge v_{peak}` (:math:`v_{th}` if :math:`\Delta_T = 0`),
:math:`V \leftarrow v_{reset}`, :math:`w \leftarrow w + b`, and ``V`` is held
at ``v_reset`` for ``t_ref`` ms.

Integration: the adaptive Runge-Kutta-Fehlberg 4(5) pair of
:mod:`eventsim.models.rk45` (NEST's integrator for these models), each
neuron with its own step size, kept from step to step, under NEST's error
control :math:`|e_i| \le \epsilon_{abs} + \epsilon_{rel} h |\dot y_i|`
(``eps_abs = eps_rel = 1e-6``, NEST's ``gsl_error_tol``).  Inside the
integrator :math:`V` is read as :math:`\min(V, v_{peak})`, and as
:math:`v_{reset}` with :math:`\dot V = 0` while refractory (NEST's clamps).

Order of one step of length ``dt`` (NEST's): Runge-Kutta steps up to the
end of the step, testing :math:`V \ge v_{peak}` after each (a spike resets
``V``, adds ``b`` to ``w`` and starts the refractory period, so a neuron
can spike more than once in a step without refractoriness; the step flags
one spike); the refractory count-down; then the step's synaptic input added
to :math:`g_{ex}, g_{in}` (:math:`I_{ex}, I_{in}`).

This module is the family: the parameters, their validation and packing,
the block updates and the declarations :data:`ADEX_COND_FAMILY` and
:data:`ADEX_PSC_FAMILY`; the right-hand sides and the step function are in
:mod:`.conductance`.  Runs in the clock engine (CPU threads, CUDA), not in
the event engine.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numba import njit

from . import conductance as cm
from ._params import model_repr, broadcast, check, check_keywords, param_length, steps_of
from .cond_lif import _kernel, coef_rows, validate_common
from .family import Family, pack_fields, register
from .rk45 import first_step_for

_SYNAPSES = ("cond", "exp")


@dataclass(frozen=True, repr=False)
class AdEx:
    r"""Adaptive exponential integrate-and-fire neuron (NEST ``aeif_cond_exp`` / ``aeif_psc_exp``).

    Equations, integrator and the order of a step: :mod:`eventsim.models.adex`.
    Defaults are NEST's.

    Parameters (each a scalar or an array with one value per neuron)
    ----------
    c_m : float
        Membrane capacitance (pF), > 0.
    g_l : float
        Leak conductance (nS), > 0 (NEST's ``g_L``; the membrane time
        constant is ``c_m / g_l``).
    v_rest : float
        Leak reversal potential (mV), NEST's ``E_L``.
    v_th : float
        Spike initiation threshold (mV), NEST's ``V_th``.
    delta_t : float
        Slope factor of the exponential (mV), >= 0 (0: an adaptive LIF with
        threshold ``v_th``).
    v_peak : float
        Spike detection threshold (mV), >= ``v_th``.
    v_reset : float
        Reset potential (mV), < ``v_peak``.
    a : float
        Subthreshold adaptation (nS).
    b : float
        Spike-triggered adaptation (pA).
    tau_w : float
        Adaptation time constant (ms), > 0.
    t_ref : float
        Refractory period (ms), >= 0, a multiple of dt.
    i_e : float
        Constant bias current (pA).
    e_ex, e_in : float
        Reversal potentials (mV) of the conductances (``synapse="cond"``).
    tau_syn_ex, tau_syn_in : float
        Synaptic time constants (ms), > 0.
    synapse : {"cond", "exp"}
        Conductance-based (``aeif_cond_exp``, weights in nS) or exponential
        current (``aeif_psc_exp``, weights in pA) synapses.
    eps_abs, eps_rel : float
        Error tolerances of the Runge-Kutta step-size control, absolute
        (> 0) and relative to ``h |dy/dt|`` (>= 0): NEST's ``gsl_error_tol``
        1e-6 for both.
    """

    c_m: float = 281.0
    g_l: float = 30.0
    v_rest: float = -70.6
    v_th: float = -50.4
    delta_t: float = 2.0
    v_peak: float = 0.0
    v_reset: float = -60.0
    a: float = 4.0
    b: float = 80.5
    tau_w: float = 144.0
    t_ref: float = 0.0
    i_e: float = 0.0
    e_ex: float = 0.0
    e_in: float = -85.0
    tau_syn_ex: float = 0.2
    tau_syn_in: float = 2.0
    synapse: str = "cond"
    eps_abs: float = 1e-6
    eps_rel: float = 1e-6

    _hints = {"tau_m": "AdEx takes the leak conductance g_l (nS); tau_m = c_m / g_l",
              "g_L": "NEST's g_L is g_l here", "E_L": "NEST's E_L is v_rest here",
              "Delta_T": "NEST's Delta_T is delta_t here", "V_peak": "NEST's V_peak is v_peak here",
              "gsl_error_tol": "NEST's gsl_error_tol is eps_abs and eps_rel here",
              "E_ex": "NEST's E_ex is e_ex here", "E_in": "NEST's E_in is e_in here",
              "tau_syn": "give tau_syn_ex and tau_syn_in", "psc": "AdEx takes synapse='cond' or 'exp'"}

    def __new__(cls, *args, **kwargs):
        check_keywords(cls, kwargs, [f.name for f in fields(cls)], cls._hints)
        return super().__new__(cls)

    def __post_init__(self):
        if not isinstance(self.synapse, str) or self.synapse not in _SYNAPSES:
            raise ValueError(f"synapse={self.synapse!r} must be one of {list(_SYNAPSES)}")
        validate_common(self, [f.name for f in fields(self) if f.name != "synapse"])
        check("g_l", self.g_l, np.asarray(self.g_l) > 0, "g_l > 0 (nS)")
        check("tau_w", self.tau_w, np.asarray(self.tau_w) > 0, "tau_w > 0 (ms)")
        check("delta_t", self.delta_t, np.asarray(self.delta_t) >= 0, "delta_t >= 0 (mV)")
        check("v_peak", self.v_peak, np.asarray(self.v_peak) >= np.asarray(self.v_th), "v_peak >= v_th (mV)")
        check("v_reset", self.v_reset, np.asarray(self.v_reset) < np.asarray(self.v_peak), "v_reset < v_peak (mV)")
        dt_ = np.asarray(self.delta_t)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(dt_ > 0, (np.asarray(self.v_peak) - np.asarray(self.v_th)) / np.where(dt_ > 0, dt_, 1), 0)
        check("v_peak", self.v_peak, x < 500.0, "(v_peak - v_th) / delta_t < 500 (else the exponential "
              "spike current overflows)")

    def __repr__(self):
        return model_repr(self)

    v_min = None            #: no lower bound of ``V``

    @property
    def family(self):
        """:data:`ADEX_COND_FAMILY` or :data:`ADEX_PSC_FAMILY`."""
        return ADEX_COND_FAMILY if self.synapse == "cond" else ADEX_PSC_FAMILY

    @property
    def state_columns(self):
        """Recordable state names -> where the engines keep them (a State field, or a column of ``State.x``;
        column 0 of ``x`` is the integrator's step size)."""
        if self.synapse == "cond":
            return {"v": "v", "g_ex": "i_ex", "g_in": "i_in", "w": 1}
        return {"v": "v", "i_ex": "i_ex", "i_in": "i_in", "w": 1}

    @property
    def state_units(self):
        """Unit of each recordable state variable."""
        return {"v": "mV", "g_ex": "nS", "g_in": "nS", "i_ex": "pA", "i_in": "pA", "w": "pA"}

    @property
    def state_names(self):
        """Names of the recordable state variables."""
        return tuple(self.state_columns)

    @property
    def n_values(self):
        """Number of neurons implied by array parameters (None if all scalar)."""
        return param_length({f.name: getattr(self, f.name) for f in fields(self) if f.name != "synapse"})

    def pack(self, n, dt):
        """Arrays consumed by the clock engines (length ``n``), ``coef`` (the parameter rows of
        :mod:`.conductance`) and ``x_init`` (the step size ``dt``, then ``w`` = 0)."""
        b = lambda name, v: broadcast(name, v, n)  # noqa: E731
        ref = steps_of("t_ref", self.t_ref, dt)
        # (i_e reaches the neuron with the constant input, State.i_dc: its column of the row stays 0)
        coef = coef_rows(n, dt, g_l=self.g_l, c_m=self.c_m, e_l=self.v_rest, e_ex=self.e_ex, e_in=self.e_in,
                         v_th=self.v_th, v_reset=self.v_reset, tau_ex=self.tau_syn_ex, tau_in=self.tau_syn_in,
                         delta_t=self.delta_t, v_peak=self.v_peak, a=self.a, b=self.b, tau_w=self.tau_w,
                         eps_abs=self.eps_abs, eps_rel=self.eps_rel)
        x_init = np.zeros((n, 2))
        x_init[:, 0] = dt
        return pack_fields(self.family, n, 2, v_rest=b("v_rest", self.v_rest), v_th=b("v_peak", self.v_peak),
                           v_reset=b("v_reset", self.v_reset), i_e=b("i_e", self.i_e),
                           ref_steps=broadcast("t_ref", ref, n, np.int64), p_vv=0.0, coef=coef, x_init=x_init)


# ---------------------------------------------------------------- the families' block updates
#: One Runge-Kutta step of ``dt`` of each AdEx family, where that is the whole step
#: (:func:`.rk45.first_step_for`).
_first_cond = first_step_for(cm.AdExCondTag, 4)
_first_psc = first_step_for(cm.AdExPscTag, 4)


@njit(inline="always", cache=True)
def _adex_one(fam, first, n, N, c0, ring, p, ref_steps, dt, i_stim, sv, sge, sgi, srefr, sx, flag):
    """One step of neuron ``n``: read and clear its input, :func:`.conductance.step_adex`, store.

    The common case, a step size of at least ``dt`` and the first
    Runge-Kutta step over the whole of ``dt`` accepted, is computed by
    ``first`` (:func:`.rk45.first_step_for`) without step_adex's loops
    (the same operations, so the same numbers); the others take
    step_adex from the start.
    """
    in_ex = ring[c0 + n]
    in_in = ring[c0 + N + n]
    ring[c0 + n] = 0.0
    ring[c0 + N + n] = 0.0
    y0 = (float(sv[n]), float(sge[n]), float(sgi[n]), float(sx[n, 1]))
    refr0 = srefr[n]
    h0 = float(sx[n, 0])
    y1, ok, h1 = first(p, y0, refr0 > 0, i_stim, dt, h0, p[cm.EPS_ABS], p[cm.EPS_REL])
    if ok:
        y2, refr2, spiked2 = cm.adex_boundary(p, y1, refr0, ref_steps, cm.adex_spike_value(p), False)
        y, spiked, refr, h = cm.adex_finish(y2, spiked2, refr2, h1, float(in_ex), float(in_in))
    else:
        y, spiked, refr, h = cm.step_adex(fam, p, y0, refr0, ref_steps, h0, dt, float(in_ex), float(in_in),
                                          float(i_stim))
    sv[n] = y[0]
    sge[n] = y[1]
    sgi[n] = y[2]
    sx[n, 1] = y[3]
    srefr[n] = refr
    sx[n, 0] = h
    flag[n] = spiked


@_kernel
def _run_adex_cond(a, b, c0, ring, p, ref_steps, i_c, per_neuron, sv, sge, sgi, srefr, sdc, sx, flag):
    """Neurons ``a..b-1`` of one parameter set (row ``p``) of ``aeif_cond_exp``."""
    N = sv.size
    for n in range(a, b):
        _adex_one(cm.ADEX_COND, _first_cond, n, N, c0, ring, p, ref_steps, p[cm.DT],
                  i_c + sdc[n] if per_neuron else i_c, sv, sge, sgi, srefr, sx, flag)


@_kernel
def _run_adex_psc(a, b, c0, ring, p, ref_steps, i_c, per_neuron, sv, sge, sgi, srefr, sdc, sx, flag):
    """Neurons ``a..b-1`` of one parameter set (row ``p``) of ``aeif_psc_exp``."""
    N = sv.size
    for n in range(a, b):
        _adex_one(cm.ADEX_PSC, _first_psc, n, N, c0, ring, p, ref_steps, p[cm.DT],
                  i_c + sdc[n] if per_neuron else i_c, sv, sge, sgi, srefr, sx, flag)


@njit(inline="always", cache=True)
def _adex_cond_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of ``aeif_cond_exp``."""
    _run_adex_cond(a, b, c0, ring, pr.coef[q], pr.ref_steps[q], i_c, per_neuron, st.v, st.i_ex, st.i_in, st.refr,
                   st.i_dc, st.x, flag)


@njit(inline="always", cache=True)
def _adex_psc_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of ``aeif_psc_exp``."""
    _run_adex_psc(a, b, c0, ring, pr.coef[q], pr.ref_steps[q], i_c, per_neuron, st.v, st.i_ex, st.i_in, st.refr,
                  st.i_dc, st.x, flag)


#: AdEx with conductance-based synapses: ``v``, ``g_ex``, ``g_in`` (``State.v``, ``i_ex``, ``i_in``), ``w``
#: (``State.x`` column 1), the step size (column 0), the refractory counter; one port per sign of the weight (nS).
ADEX_COND_FAMILY = register(Family(
    name="aeif_cond_exp", code=cm.ADEX_COND.code, tag=cm.ADEX_COND,
    state=(("v", "mV"), ("g_ex", "nS"), ("g_in", "nS"), ("w", "pA")), ports=("ex", "in"), propagator=None,
    update_block=_adex_cond_block, models=(AdEx,), event_engine=False))

#: AdEx with exponential current synapses: as :data:`ADEX_COND_FAMILY` with ``i_ex``, ``i_in`` (pA).
ADEX_PSC_FAMILY = register(Family(
    name="aeif_psc_exp", code=cm.ADEX_PSC.code, tag=cm.ADEX_PSC,
    state=(("v", "mV"), ("i_ex", "pA"), ("i_in", "pA"), ("w", "pA")), ports=("ex", "in"), propagator=None,
    update_block=_adex_psc_block, models=(AdEx,), event_engine=False))
