r"""Leaky integrate-and-fire neurons with conductance-based synapses (NEST's ``iaf_cond_exp`` and ``iaf_cond_alpha``).

.. math::

    C_m \frac{dV}{dt} = -g_L (V - v_{rest}) - g_{ex} (V - e_{ex}) - g_{in} (V - e_{in}) + I_e + I_{stim},
    \qquad g_L = C_m / \tau_m

with exponential conductances (``psc="exp"``,
:math:`\dot g_x = -g_x / \tau_{syn,x}`; a spike of weight :math:`w` nS adds
:math:`|w|` to :math:`g_x`) or alpha-shaped ones (``psc="alpha"``,
:math:`\dot{dg}_x = -dg_x / \tau_{syn,x}`,
:math:`\dot g_x = dg_x - g_x / \tau_{syn,x}`; a spike adds
:math:`|w| e / \tau_{syn,x}` to :math:`dg_x`, so :math:`g_x` peaks at
:math:`|w|` nS :math:`\tau_{syn,x}` ms after it).  The sign of the weight
selects the receptor: :math:`w \ge 0` excitatory, :math:`w < 0` inhibitory.
``I_stim`` is the current of current sources (pA).

The equations are not linear (conductance times voltage), so they are
integrated with the adaptive Runge-Kutta-Fehlberg 4(5) pair of
:mod:`eventsim.models.rk45` (NEST's integrator for these models), each
neuron with its own step size, kept from step to step, under NEST's error
control: :math:`|e_i| \le \epsilon_{abs} + \epsilon_{rel} |y_i|` per state
variable, :math:`\epsilon_{abs} = 10^{-3}`, :math:`\epsilon_{rel} = 0` (mV
and nS).  Inside the integrator :math:`V` is read as
:math:`\min(V, v_{th})`, and as :math:`v_{reset}` with :math:`\dot V = 0`
while refractory (NEST's clamps).

Order of one step of length ``dt`` (NEST's):

* ``psc="exp"``: integrate over ``dt`` (Runge-Kutta steps inside);
  add the step's synaptic input to :math:`g_{ex}`, :math:`g_{in}`; if
  refractory, count down and hold :math:`V = v_{reset}`; else if
  :math:`V \ge v_{th}`: spike, :math:`V \leftarrow v_{reset}`, refractory
  for ``t_ref``.
* ``psc="alpha"``: integrate; the refractory count-down or the threshold
  test as above; then add the step's input to :math:`dg_{ex}`,
  :math:`dg_{in}`.

An input spike of step ``s`` reaches the conductances at the end of step
``s``, and the current of a source from the step after it arrives (NEST's
one-step delay of devices and synapses is the connection's delay here).

This module is the family: the parameters, their validation and packing,
the block updates and the declarations :data:`COND_EXP_FAMILY` and
:data:`COND_ALPHA_FAMILY` through which the clock engines run it; the
right-hand sides and the step functions are in :mod:`.conductance`.  Runs
in the clock engine (CPU threads, CUDA), not in the event engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numba import njit

from . import conductance as cm
from ._params import model_repr, as_param, broadcast, check, check_keywords, param_length, steps_of
from .family import Family, pack_fields, register
from .rk45 import full_step_for

_PSC = ("exp", "alpha")

#: Decorator of the block updates: :data:`eventsim.models.family.block_kernel` with NumPy's error model (a
#: division by zero gives inf or NaN instead of raising, so a loop of divisions has no exit and vectorises;
#: the integrator's divisors are never zero for valid parameters).
_kernel = njit(cache=True, _nrt=False, error_model="numpy")


def validate_common(model, names):
    """Convert the numeric parameters ``names`` of ``model`` (a frozen dataclass) to floats / arrays and check
    the rules shared by the conductance-based and AdEx models (ValueError naming the parameter)."""
    for name in names:
        object.__setattr__(model, name, as_param(name, getattr(model, name)))
    check("c_m", model.c_m, np.asarray(model.c_m) > 0, "c_m > 0 (pF)")
    check("t_ref", model.t_ref, np.asarray(model.t_ref) >= 0, "t_ref >= 0 (ms)")
    for name in ("tau_syn_ex", "tau_syn_in"):
        check(name, getattr(model, name), np.asarray(getattr(model, name)) > 0, f"{name} > 0 (ms)")
    check("eps_abs", model.eps_abs, np.asarray(model.eps_abs) > 0, "eps_abs > 0 (the integrator's absolute "
          "error tolerance)")
    check("eps_rel", model.eps_rel, np.asarray(model.eps_rel) >= 0, "eps_rel >= 0 (the integrator's relative "
          "error tolerance)")
    param_length({name: getattr(model, name) for name in names})


def coef_rows(n, dt, **values):
    """The parameter rows of :mod:`.conductance` (float64 ``[n, N_PARAMS]``) from ``values`` (name of a column
    constant, lower-case, -> scalar or array of ``n``); the others are 0, ``DT`` is ``dt``."""
    rows = np.zeros((n, cm.N_PARAMS))
    for name, v in values.items():
        rows[:, getattr(cm, name.upper())] = broadcast(name, v, n)
    rows[:, cm.DT] = dt
    return cm.complete_rows(rows)


@dataclass(frozen=True, repr=False)
class CondLIF:
    r"""Leaky integrate-and-fire neuron with conductance-based synapses (NEST ``iaf_cond_exp`` /
    ``iaf_cond_alpha``).

    Equations, integrator and the order of a step: :mod:`eventsim.models.cond_lif`.
    Defaults are NEST's (``tau_m = C_m / g_L``).

    Parameters (each a scalar or an array with one value per neuron)
    ----------
    tau_m : float
        Membrane time constant (ms), > 0; the leak conductance is
        ``g_L = c_m / tau_m`` (nS).
    c_m : float
        Membrane capacitance (pF), > 0.
    v_rest : float
        Resting (leak reversal) potential (mV), NEST's ``E_L``.
    v_reset : float
        Reset potential (mV), < ``v_th``.
    v_th : float
        Spike threshold (mV): a spike when ``V >= v_th`` at the end of a step.
    t_ref : float
        Refractory period (ms), >= 0, a multiple of dt: ``V`` held at ``v_reset``.
    i_e : float
        Constant bias current (pA).
    e_ex, e_in : float
        Reversal potentials of the excitatory and inhibitory conductances (mV).
    tau_syn_ex, tau_syn_in : float
        Time constants of the conductances (ms), > 0 (``psc="alpha"``: the
        time to the peak).
    psc : {"exp", "alpha"}
        Shape of a synaptic conductance: exponential (``iaf_cond_exp``) or
        alpha (``iaf_cond_alpha``).  Weights are in nS (the jump of an
        exponential conductance, the peak of an alpha one).
    eps_abs, eps_rel : float
        Error tolerances of the Runge-Kutta step-size control, absolute
        (mV, nS; > 0) and relative (>= 0): NEST's 1e-3 and 0.
    """

    tau_m: float = 15.0
    c_m: float = 250.0
    v_rest: float = -70.0
    v_reset: float = -60.0
    v_th: float = -55.0
    t_ref: float = 2.0
    i_e: float = 0.0
    e_ex: float = 0.0
    e_in: float = -85.0
    tau_syn_ex: float = 0.2
    tau_syn_in: float = 2.0
    psc: str = "exp"
    eps_abs: float = 1e-3
    eps_rel: float = 0.0

    _hints = {"g_L": "CondLIF takes tau_m = C_m / g_L (ms) and c_m", "g_l": "CondLIF takes tau_m = c_m / g_l (ms)",
              "tau_syn": "give tau_syn_ex and tau_syn_in", "gsl_error_tol": "the tolerances are eps_abs and eps_rel",
              "v_min": "CondLIF has no lower bound of V", "E_ex": "NEST's E_ex is e_ex here",
              "E_in": "NEST's E_in is e_in here"}

    def __new__(cls, *args, **kwargs):
        check_keywords(cls, kwargs, [f.name for f in fields(cls)], cls._hints)
        return super().__new__(cls)

    def __post_init__(self):
        if not isinstance(self.psc, str) or self.psc not in _PSC:
            raise ValueError(f"psc={self.psc!r} must be one of {list(_PSC)}")
        names = [f.name for f in fields(self) if f.name != "psc"]
        validate_common(self, names)
        check("tau_m", self.tau_m, np.asarray(self.tau_m) > 0, "tau_m > 0 (ms)")
        check("v_reset", self.v_reset, np.asarray(self.v_reset) < np.asarray(self.v_th), "v_reset < v_th (mV)")

    def __repr__(self):
        return model_repr(self)

    # the parts of the model interface shared with the current-based models
    v_min = None            #: no lower bound of ``V``
    synapse = "cond"        #: conductance-based synapses, weights in nS

    @property
    def family(self):
        """:data:`COND_EXP_FAMILY` or :data:`COND_ALPHA_FAMILY`."""
        return COND_EXP_FAMILY if self.psc == "exp" else COND_ALPHA_FAMILY

    @property
    def state_columns(self):
        """Recordable state names -> where the engines keep them (a State field, or a column of ``State.x``;
        column 0 of ``x`` is the integrator's step size)."""
        if self.psc == "exp":
            return {"v": "v", "g_ex": "i_ex", "g_in": "i_in"}
        return {"v": "v", "g_ex": "i_ex", "g_in": "i_in", "dg_ex": 1, "dg_in": 2}

    @property
    def state_units(self):
        """Unit of each recordable state variable."""
        return {"v": "mV", "g_ex": "nS", "g_in": "nS", "dg_ex": "nS/ms", "dg_in": "nS/ms"}

    @property
    def state_names(self):
        """Names of the recordable state variables."""
        return tuple(self.state_columns)

    @property
    def n_values(self):
        """Number of neurons implied by array parameters (None if all scalar)."""
        return param_length({f.name: getattr(self, f.name) for f in fields(self) if f.name != "psc"})

    def pack(self, n, dt):
        """Arrays consumed by the clock engines (length ``n``), ``coef`` (the parameter rows of
        :mod:`.conductance`) and ``x_init`` (the step size ``dt``, then ``dg_ex``, ``dg_in`` = 0)."""
        b = lambda name, v: broadcast(name, v, n)  # noqa: E731
        ref = steps_of("t_ref", self.t_ref, dt)
        # (i_e reaches the neuron with the constant input, State.i_dc: its column of the row stays 0)
        coef = coef_rows(n, dt, g_l=np.asarray(self.c_m) / np.asarray(self.tau_m), c_m=self.c_m, e_l=self.v_rest,
                         e_ex=self.e_ex, e_in=self.e_in, v_th=self.v_th, v_reset=self.v_reset,
                         tau_ex=self.tau_syn_ex, tau_in=self.tau_syn_in, eps_abs=self.eps_abs,
                         eps_rel=self.eps_rel)
        kx = 1 if self.psc == "exp" else 3
        x_init = np.zeros((n, kx))
        x_init[:, 0] = dt
        return pack_fields(self.family, n, 2, v_rest=b("v_rest", self.v_rest), v_th=b("v_th", self.v_th),
                           v_reset=b("v_reset", self.v_reset), i_e=b("i_e", self.i_e),
                           ref_steps=broadcast("t_ref", ref, n, np.int64), p_vv=0.0, coef=coef, x_init=x_init)


# ---------------------------------------------------------------- the families' block updates
#: One Runge-Kutta step of ``dt`` of ``COND_EXP`` (:func:`.rk45.full_step_for`).
_full_step_exp = full_step_for(cm.CondExpTag, 3)


@njit(inline="always", cache=True)
def _single_steps(N, c0, a, b, ring, p, ref_steps, i_c, per_neuron, sv, sge, sgi, srefr, sdc, flag):
    """The second pass of :func:`_run_cond_exp` (``flag[n]``: 1 where the step size is at least ``5 dt``)."""
    dt = p[cm.DT]
    h_long = dt * 5.0
    v_th = p[cm.V_TH]
    v_reset = p[cm.V_RESET]
    eps_abs = p[cm.EPS_ABS]
    eps_rel = p[cm.EPS_REL]
    re = ring[c0 + a: c0 + b]
    ri = ring[c0 + N + a: c0 + N + b]
    xv = sv[a:b]
    xe = sge[a:b]
    xi = sgi[a:b]
    xr = srefr[a:b]
    xd = sdc[a:b]
    xf = flag[a:b]
    for n in range(xv.size):
        in_ex = re[n]
        in_in = ri[n]
        refr = xr[n]
        # (a step size of 5 dt where it is at least that: full_step takes it as such; 0 where not).  Every
        # neuron is stepped as if it were not refractory, which saves the refractory selects in all six
        # right-hand sides: a refractory neuron's V is replaced by v_reset below, its conductances do not
        # depend on V, and its V error is then counted although evolve counts 0 for it, so the step is
        # accepted here only where evolve accepts it too (the others take evolve's path): the same numbers.
        y, ok = _full_step_exp(p, (float(xv[n]), float(xe[n]), float(xi[n])), False,
                               float(i_c + xd[n] if per_neuron else i_c), dt, xf[n] * h_long, eps_abs, eps_rel)
        # step_cond_exp's order: the input added, then the refractory count-down or the threshold test
        fire = (refr <= 0) & (y[0] >= v_th)
        hold = (refr > 0) | fire
        # (every store whatever ok is, the old value where not ok: no branch)
        xv[n] = (v_reset if hold else y[0]) if ok else xv[n]
        xe[n] = y[1] + in_ex if ok else xe[n]
        xi[n] = y[2] - in_in if ok else xi[n]
        xr[n] = (refr - 1 if refr > 0 else (ref_steps if fire else refr)) if ok else refr
        re[n] = 0.0 if ok else in_ex
        ri[n] = 0.0 if ok else in_in
        xf[n] = (1 if fire else 0) if ok else 2


@_kernel
def _run_cond_exp(a, b, c0, ring, p, ref_steps, i_c, per_neuron, sv, sge, sgi, srefr, sdc, sx, flag):
    """Neurons ``a..b-1`` of one parameter set (row ``p``): read and clear their input (excitatory in ring
    column ``c0 + n``, inhibitory ``N`` columns further), one step of :func:`.conductance.step_cond_exp`.

    Three passes, with the results of the last alone: the first marks in
    ``flag`` the neurons whose step size is at least ``5 dt``; the second,
    without branches (it vectorises), takes those whose step is then a
    single accepted Runge-Kutta step of ``dt`` (:func:`.rk45.full_step_for`:
    nearly all of them, at rest or firing at tens of Hz) and marks the
    others (``flag = 2``, their input left in the ring); the third steps
    those with :func:`.conductance.step_cond_exp`.  The second pass runs
    over slices (indices provably in range), which lets LLVM vectorise it;
    it reads the marks, not the step sizes (a strided column of ``sx``: the
    vectorised loop would lose two thirds of its speed).
    """
    N = sv.size
    dt = p[cm.DT]
    h_long = dt * 5.0
    for n in range(a, b):
        flag[n] = 1 if h_long <= sx[n, 0] else 0
    _single_steps(N, c0, a, b, ring, p, ref_steps, i_c, per_neuron, sv, sge, sgi, srefr, sdc, flag)
    for n in range(a, b):
        if flag[n] != 2:   # (the few neurons whose step takes more than one Runge-Kutta step)
            continue
        in_ex = ring[c0 + n]
        in_in = ring[c0 + N + n]
        ring[c0 + n] = 0.0
        ring[c0 + N + n] = 0.0
        y, spiked, refr, h = cm.step_cond_exp(cm.COND_EXP, p, (float(sv[n]), float(sge[n]), float(sgi[n])), srefr[n],
                                              ref_steps, float(sx[n, 0]), dt, float(in_ex), float(in_in),
                                              float(i_c + sdc[n] if per_neuron else i_c))
        sv[n] = y[0]
        sge[n] = y[1]
        sgi[n] = y[2]
        srefr[n] = refr
        sx[n, 0] = h
        flag[n] = spiked


#: One Runge-Kutta step of ``dt`` of ``COND_ALPHA`` (:func:`.rk45.full_step_for`).
_full_step_alpha = full_step_for(cm.CondAlphaTag, 5)


@njit(inline="always", cache=True)
def _single_steps_alpha(N, c0, a, b, ring, p, ref_steps, i_c, per_neuron, sv, sge, sgi, srefr, sdc, sx, flag):
    """The second pass of :func:`_run_cond_alpha`, as :func:`_single_steps` (``dg_ex``, ``dg_in``: columns
    1, 2 of ``sx``)."""
    dt = p[cm.DT]
    h_long = dt * 5.0
    v_th = p[cm.V_TH]
    v_reset = p[cm.V_RESET]
    eps_abs = p[cm.EPS_ABS]
    eps_rel = p[cm.EPS_REL]
    f_ex = math.e * p[cm.R_TAU_EX]
    f_in = math.e * p[cm.R_TAU_IN]
    re = ring[c0 + a: c0 + b]
    ri = ring[c0 + N + a: c0 + N + b]
    xv = sv[a:b]
    xe = sge[a:b]
    xi = sgi[a:b]
    xr = srefr[a:b]
    xd = sdc[a:b]
    xde = sx[a:b, 1]
    xdi = sx[a:b, 2]
    xf = flag[a:b]
    for n in range(xv.size):
        in_ex = re[n]
        in_in = ri[n]
        refr = xr[n]
        # (stepped as not refractory, as in _single_steps: the conductances do not depend on V)
        y, ok = _full_step_alpha(p, (float(xv[n]), float(xde[n]), float(xe[n]), float(xdi[n]), float(xi[n])),
                                 False, float(i_c + xd[n] if per_neuron else i_c), dt, xf[n] * h_long, eps_abs,
                                 eps_rel)
        # step_cond_alpha's order: the refractory count-down or the threshold test, then the input
        fire = (refr <= 0) & (y[0] >= v_th)
        hold = (refr > 0) | fire
        xv[n] = (v_reset if hold else y[0]) if ok else xv[n]
        xde[n] = y[1] + in_ex * f_ex if ok else xde[n]
        xe[n] = y[2] if ok else xe[n]
        xdi[n] = y[3] - in_in * f_in if ok else xdi[n]
        xi[n] = y[4] if ok else xi[n]
        xr[n] = (refr - 1 if refr > 0 else (ref_steps if fire else refr)) if ok else refr
        re[n] = 0.0 if ok else in_ex
        ri[n] = 0.0 if ok else in_in
        xf[n] = (1 if fire else 0) if ok else 2


@_kernel
def _run_cond_alpha(a, b, c0, ring, p, ref_steps, i_c, per_neuron, sv, sge, sgi, srefr, sdc, sx, flag):
    """As :func:`_run_cond_exp` with :func:`.conductance.step_cond_alpha` (``dg_ex``, ``dg_in``: columns 1, 2
    of ``sx``): the same three passes."""
    N = sv.size
    dt = p[cm.DT]
    h_long = dt * 5.0
    for n in range(a, b):
        flag[n] = 1 if h_long <= sx[n, 0] else 0
    _single_steps_alpha(N, c0, a, b, ring, p, ref_steps, i_c, per_neuron, sv, sge, sgi, srefr, sdc, sx, flag)
    for n in range(a, b):
        if flag[n] != 2:   # (the few neurons whose step takes more than one Runge-Kutta step)
            continue
        in_ex = ring[c0 + n]
        in_in = ring[c0 + N + n]
        ring[c0 + n] = 0.0
        ring[c0 + N + n] = 0.0
        i_stim = i_c + sdc[n] if per_neuron else i_c
        y0 = (float(sv[n]), float(sx[n, 1]), float(sge[n]), float(sx[n, 2]), float(sgi[n]))
        y, spiked, refr, h = cm.step_cond_alpha(cm.COND_ALPHA, p, y0, srefr[n], ref_steps, float(sx[n, 0]), dt,
                                                float(in_ex), float(in_in), float(i_stim))
        sv[n] = y[0]
        sx[n, 1] = y[1]
        sge[n] = y[2]
        sx[n, 2] = y[3]
        sgi[n] = y[4]
        srefr[n] = refr
        sx[n, 0] = h
        flag[n] = spiked


@njit(inline="always", cache=True)
def _cond_exp_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of ``iaf_cond_exp``."""
    _run_cond_exp(a, b, c0, ring, pr.coef[q], pr.ref_steps[q], i_c, per_neuron, st.v, st.i_ex, st.i_in, st.refr,
                  st.i_dc, st.x, flag)


@njit(inline="always", cache=True)
def _cond_alpha_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of ``iaf_cond_alpha``."""
    _run_cond_alpha(a, b, c0, ring, pr.coef[q], pr.ref_steps[q], i_c, per_neuron, st.v, st.i_ex, st.i_in,
                    st.refr, st.i_dc, st.x, flag)


#: CondLIF with exponential conductances: state ``v``, ``g_ex``, ``g_in`` (in ``State.v``, ``i_ex``, ``i_in``),
#: the step size (``State.x`` column 0) and the refractory counter; one port per sign of the weight (nS).
COND_EXP_FAMILY = register(Family(
    name="iaf_cond_exp", code=cm.COND_EXP.code, tag=cm.COND_EXP, state=(("v", "mV"), ("g_ex", "nS"), ("g_in", "nS")),
    ports=("ex", "in"), propagator=None, update_block=_cond_exp_block, models=(CondLIF,),
    event_engine=False))

#: CondLIF with alpha-shaped conductances: as :data:`COND_EXP_FAMILY` plus ``dg_ex``, ``dg_in`` (``State.x``
#: columns 1, 2).
COND_ALPHA_FAMILY = register(Family(
    name="iaf_cond_alpha", code=cm.COND_ALPHA.code, tag=cm.COND_ALPHA,
    state=(("v", "mV"), ("dg_ex", "nS/ms"), ("g_ex", "nS"), ("dg_in", "nS/ms"), ("g_in", "nS")),
    ports=("ex", "in"), propagator=None, update_block=_cond_alpha_block, models=(CondLIF,),
    event_engine=False))
