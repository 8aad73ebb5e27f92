r"""Conductance-based LIF and AdEx neurons: right-hand sides and one time step (NEST's order).

The four models, their state ``y`` (float64, in this order) and NEST twins:

``COND_EXP`` (``iaf_cond_exp``): ``V`` (mV), ``g_ex``, ``g_in`` (nS)
    :math:`C_m \dot V = -g_L (V - E_L) - g_{ex}(V - E_{ex}) - g_{in}(V - E_{in}) + I_e + I_{stim}`,
    :math:`\dot g_x = -g_x / \tau_x`; a spike of weight :math:`w` nS adds
    :math:`w` to :math:`g_{ex}` (:math:`w \ge 0`) or :math:`|w|` to :math:`g_{in}`.
``COND_ALPHA`` (``iaf_cond_alpha``): ``V``, ``dg_ex``, ``g_ex``, ``dg_in``, ``g_in``
    alpha-shaped conductances, :math:`\dot{dg}_x = -dg_x/\tau_x`,
    :math:`\dot g_x = dg_x - g_x/\tau_x`; a spike adds :math:`|w| e/\tau_x` to
    :math:`dg_x`, so the conductance peaks at :math:`|w|` nS at :math:`\tau_x`.
``ADEX_COND`` (``aeif_cond_exp``): ``V``, ``g_ex``, ``g_in``, ``w`` (pA)
    adds the spike current :math:`g_L \Delta_T e^{(V - V_{th})/\Delta_T}` and
    the adaptation current :math:`-w`, :math:`\tau_w \dot w = a (V - E_L) - w`;
    a spike is detected at :math:`V \ge V_{peak}`; it resets :math:`V` and
    adds :math:`b` to :math:`w`.
``ADEX_PSC`` (``aeif_psc_exp``): ``V``, ``i_ex``, ``i_in`` (pA, both >= 0), ``w``
    AdEx with exponential current synapses (a spike of weight :math:`w` pA adds
    :math:`w` to :math:`i_{ex}` or :math:`|w|` to :math:`i_{in}`, which enters
    with a minus sign).

In every right-hand side the membrane potential is read as
:math:`\min(V, V_{th})` (``COND_*``) or :math:`\min(V, V_{peak})` (AdEx) and,
while the neuron is refractory, as :math:`V_{reset}` with :math:`\dot V = 0`:
NEST's clamps, which keep the integrator away from the exponential's blow-up.

One time step (:func:`step`), as NEST orders it:

* ``COND_EXP``: integrate over ``dt``; add the step's synaptic input; if
  refractory, count down and hold ``V`` at ``V_reset``, else test
  :math:`V \ge V_{th}` (spike: reset, refractory for ``ref_steps``).
* ``COND_ALPHA``: integrate; refractory count-down / threshold test; then
  add the step's input.
* ``ADEX_*``: integrate, testing :math:`V \ge V_{peak}` after every
  Runge-Kutta step inside ``dt`` (a spike resets ``V``, adds ``b`` to ``w``
  and starts a refractory period of ``ref_steps`` steps after this one,
  during which ``V`` stays at ``V_reset``); then count down; then add the
  step's input.

A step's input current ``i_stim`` (pA: the bias current ``I_e`` plus
current sources) is the one received in the previous step, as in NEST.
Parameters are a float64 row indexed by the constants below (one layout for
the four models); the state ``y`` is a tuple of floats in the order above
(the integrator of :mod:`.rk45` keeps it in registers), and every step
function returns the new one.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .rk45 import evolve, register_rhs

_jit = njit(inline="always", cache=True)

# parameter row layout (units: nS, pF, mV, ms, pA; DT: the time step, ms; R_*: reciprocals, set by
# :func:`complete_rows`, which the right-hand sides multiply by instead of dividing)
G_L, C_M, E_L, E_EX, E_IN, V_TH, V_RESET, TAU_EX, TAU_IN, I_E, DELTA_T, V_PEAK, A, B, TAU_W, EPS_ABS, EPS_REL, \
    DT, R_C_M, R_TAU_EX, R_TAU_IN, R_TAU_W, R_DELTA_T = range(23)
N_PARAMS = 23


def complete_rows(rows):
    """Fill the reciprocal columns ``R_*`` of parameter rows ``rows`` (float64 ``[n, N_PARAMS]``, in place;
    ``R_DELTA_T`` is 0 where ``DELTA_T`` is 0, ``R_TAU_W`` where ``TAU_W`` is); returns ``rows``."""
    for r, c in ((R_C_M, C_M), (R_TAU_EX, TAU_EX), (R_TAU_IN, TAU_IN), (R_TAU_W, TAU_W), (R_DELTA_T, DELTA_T)):
        x = rows[..., c]
        rows[..., r] = np.divide(1.0, x, out=np.zeros_like(x), where=x != 0)
    return rows


class CondExpTag(NamedTuple):
    """Compile-time key of ``COND_EXP`` (and of its neuron family, :mod:`.cond_lif`)."""

    code: int = 6


class CondAlphaTag(NamedTuple):
    """Compile-time key of ``COND_ALPHA`` (and of its neuron family, :mod:`.cond_lif`)."""

    code: int = 7


class AdExCondTag(NamedTuple):
    """Compile-time key of ``ADEX_COND`` (and of its neuron family, :mod:`.adex`)."""

    code: int = 8


class AdExPscTag(NamedTuple):
    """Compile-time key of ``ADEX_PSC`` (and of its neuron family, :mod:`.adex`)."""

    code: int = 9


COND_EXP, COND_ALPHA, ADEX_COND, ADEX_PSC = CondExpTag(), CondAlphaTag(), AdExCondTag(), AdExPscTag()
#: State variables of each model, in the order of ``y``.
STATE = {COND_EXP: ("v", "g_ex", "g_in"), COND_ALPHA: ("v", "dg_ex", "g_ex", "dg_in", "g_in"),
         ADEX_COND: ("v", "g_ex", "g_in", "w"), ADEX_PSC: ("v", "i_ex", "i_in", "w")}


@_jit
def _rhs_cond_exp(p, y, refractory, i_stim):
    v = p[V_RESET] if refractory else min(y[0], p[V_TH])
    dv = -p[G_L] * (v - p[E_L]) - y[1] * (v - p[E_EX]) - y[2] * (v - p[E_IN]) + p[I_E] + i_stim
    return (0.0 if refractory else dv * p[R_C_M]), -y[1] * p[R_TAU_EX], -y[2] * p[R_TAU_IN]


@_jit
def _rhs_cond_alpha(p, y, refractory, i_stim):
    v = p[V_RESET] if refractory else min(y[0], p[V_TH])
    dv = -p[G_L] * (v - p[E_L]) - y[2] * (v - p[E_EX]) - y[4] * (v - p[E_IN]) + p[I_E] + i_stim
    return ((0.0 if refractory else dv * p[R_C_M]), -y[1] * p[R_TAU_EX], y[1] - y[2] * p[R_TAU_EX],
            -y[3] * p[R_TAU_IN], y[3] - y[4] * p[R_TAU_IN])


@_jit
def _spike_current(p, v):
    return 0.0 if p[DELTA_T] == 0.0 else p[G_L] * p[DELTA_T] * math.exp((v - p[V_TH]) * p[R_DELTA_T])


@_jit
def _rhs_adex_cond(p, y, refractory, i_stim):
    v = p[V_RESET] if refractory else min(y[0], p[V_PEAK])
    dv = (-p[G_L] * (v - p[E_L]) + _spike_current(p, v) - y[1] * (v - p[E_EX]) - y[2] * (v - p[E_IN]) - y[3]
          + p[I_E] + i_stim)
    return ((0.0 if refractory else dv * p[R_C_M]), -y[1] * p[R_TAU_EX], -y[2] * p[R_TAU_IN],
            (p[A] * (v - p[E_L]) - y[3]) * p[R_TAU_W])


@_jit
def _rhs_adex_psc(p, y, refractory, i_stim):
    v = p[V_RESET] if refractory else min(y[0], p[V_PEAK])
    dv = -p[G_L] * (v - p[E_L]) + _spike_current(p, v) + y[1] - y[2] - y[3] + p[I_E] + i_stim
    return ((0.0 if refractory else dv * p[R_C_M]), -y[1] * p[R_TAU_EX], -y[2] * p[R_TAU_IN],
            (p[A] * (v - p[E_L]) - y[3]) * p[R_TAU_W])


# NEST's error controls: gsl_odeiv_control_y_new for iaf_cond_*, gsl_odeiv_control_yp_new for aeif_*
register_rhs(CondExpTag, _rhs_cond_exp, "y")
register_rhs(CondAlphaTag, _rhs_cond_alpha, "y")
register_rhs(AdExCondTag, _rhs_adex_cond, "yp")
register_rhs(AdExPscTag, _rhs_adex_psc, "yp")


@_jit
def _integrate(fam, p, y, refr, i_stim, dt, h):
    """Integrate over one step of ``dt`` ms (no spike test inside); returns ``(y, h)`` (h: the next step size)."""
    t = 0.0
    while t < dt:
        y, t, h = evolve(fam, p, y, refr > 0, i_stim, t, dt, h, p[EPS_ABS], p[EPS_REL])
    return y, h


@_jit
def step_cond_exp(fam, p, y, refr, ref_steps, h, dt, in_ex, in_in, i_stim):
    """One step of ``COND_EXP``: returns ``(y, spiked, refr, h)``; ``in_ex`` >= 0, ``in_in`` <= 0 (nS)."""
    y, h = _integrate(fam, p, y, refr, i_stim, dt, h)
    g_ex = y[1] + in_ex
    g_in = y[2] - in_in
    if refr > 0:
        return (p[V_RESET], g_ex, g_in), False, refr - 1, h
    if y[0] >= p[V_TH]:
        return (p[V_RESET], g_ex, g_in), True, ref_steps, h
    return (y[0], g_ex, g_in), False, refr, h


@_jit
def step_cond_alpha(fam, p, y, refr, ref_steps, h, dt, in_ex, in_in, i_stim):
    """One step of ``COND_ALPHA``: returns ``(y, spiked, refr, h)``."""
    y, h = _integrate(fam, p, y, refr, i_stim, dt, h)
    spiked = False
    v = y[0]
    if refr > 0:
        refr -= 1
        v = p[V_RESET]
    elif v >= p[V_TH]:
        refr = ref_steps
        v = p[V_RESET]
        spiked = True
    return ((v, y[1] + in_ex * (math.e * p[R_TAU_EX]), y[2], y[3] - in_in * (math.e * p[R_TAU_IN]), y[4]), spiked,
            refr, h)


@_jit
def adex_spike_value(p):
    """The voltage (mV) at which an ``ADEX_*`` neuron spikes: ``V_PEAK``, or ``V_TH`` where ``DELTA_T`` is 0
    (then an LIF with a threshold)."""
    return p[V_PEAK] if p[DELTA_T] > 0.0 else p[V_TH]


@_jit
def adex_boundary(p, y, refr, ref_steps, v_spike, spiked):
    """The end of one Runge-Kutta step of :func:`step_adex` that reached ``y``: the refractory clamp or the
    spike test and reset (``w += b``); returns ``(y, refr, spiked)``."""
    if refr > 0:
        return (p[V_RESET], y[1], y[2], y[3]), refr, spiked
    if y[0] >= v_spike:
        return (p[V_RESET], y[1], y[2], y[3] + p[B]), (ref_steps + 1 if ref_steps > 0 else 0), True
    return y, refr, spiked


@_jit
def adex_finish(y, spiked, refr, h, in_ex, in_in):
    """The end of a time step of :func:`step_adex`: the refractory count-down and the step's synaptic input;
    returns ``(y, spiked, refr, h)``."""
    if refr > 0:
        refr -= 1
    return (y[0], y[1] + in_ex, y[2] - in_in, y[3]), spiked, refr, h


@_jit
def step_adex(fam, p, y, refr, ref_steps, h, dt, in_ex, in_in, i_stim):
    """One step of ``ADEX_COND`` / ``ADEX_PSC``: returns ``(y, spiked, refr, h)``."""
    spiked = False
    v_spike = adex_spike_value(p)
    t = 0.0
    while t < dt:
        y, t, h = evolve(fam, p, y, refr > 0, i_stim, t, dt, h, p[EPS_ABS], p[EPS_REL])
        y, refr, spiked = adex_boundary(p, y, refr, ref_steps, v_spike, spiked)
    return adex_finish(y, spiked, refr, h, in_ex, in_in)
