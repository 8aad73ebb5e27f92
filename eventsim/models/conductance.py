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

A step's input current ``i_stim`` (pA, from current sources) is the one
received in the previous step, as in NEST.  Parameters are a float64 row
indexed by the constants below (one layout for the four models).
"""

import math
from typing import NamedTuple

from numba import njit

from .rk45 import evolve, register_rhs

_jit = njit(cache=True)

# parameter row layout
G_L, C_M, E_L, E_EX, E_IN, V_TH, V_RESET, TAU_EX, TAU_IN, I_E, DELTA_T, V_PEAK, A, B, TAU_W, EPS_ABS, EPS_REL, \
    A_Y, A_DY = range(19)
N_PARAMS = 19


class CondExpTag(NamedTuple):
    code: int = 0


class CondAlphaTag(NamedTuple):
    code: int = 1


class AdExCondTag(NamedTuple):
    code: int = 2


class AdExPscTag(NamedTuple):
    code: int = 3


COND_EXP, COND_ALPHA, ADEX_COND, ADEX_PSC = CondExpTag(), CondAlphaTag(), AdExCondTag(), AdExPscTag()
#: State variables of each model, in the order of ``y``.
STATE = {COND_EXP: ("v", "g_ex", "g_in"), COND_ALPHA: ("v", "dg_ex", "g_ex", "dg_in", "g_in"),
         ADEX_COND: ("v", "g_ex", "g_in", "w"), ADEX_PSC: ("v", "i_ex", "i_in", "w")}


@_jit
def _rhs_cond_exp(p, y, refractory, i_stim, f):
    v = p[V_RESET] if refractory else min(y[0], p[V_TH])
    dv = -p[G_L] * (v - p[E_L]) - y[1] * (v - p[E_EX]) - y[2] * (v - p[E_IN]) + p[I_E] + i_stim
    f[0] = 0.0 if refractory else dv / p[C_M]
    f[1] = -y[1] / p[TAU_EX]
    f[2] = -y[2] / p[TAU_IN]


@_jit
def _rhs_cond_alpha(p, y, refractory, i_stim, f):
    v = p[V_RESET] if refractory else min(y[0], p[V_TH])
    dv = -p[G_L] * (v - p[E_L]) - y[2] * (v - p[E_EX]) - y[4] * (v - p[E_IN]) + p[I_E] + i_stim
    f[0] = 0.0 if refractory else dv / p[C_M]
    f[1] = -y[1] / p[TAU_EX]
    f[2] = y[1] - y[2] / p[TAU_EX]
    f[3] = -y[3] / p[TAU_IN]
    f[4] = y[3] - y[4] / p[TAU_IN]


@_jit
def _spike_current(p, v):
    return 0.0 if p[DELTA_T] == 0.0 else p[G_L] * p[DELTA_T] * math.exp((v - p[V_TH]) / p[DELTA_T])


@_jit
def _rhs_adex_cond(p, y, refractory, i_stim, f):
    v = p[V_RESET] if refractory else min(y[0], p[V_PEAK])
    dv = (-p[G_L] * (v - p[E_L]) + _spike_current(p, v) - y[1] * (v - p[E_EX]) - y[2] * (v - p[E_IN]) - y[3]
          + p[I_E] + i_stim)
    f[0] = 0.0 if refractory else dv / p[C_M]
    f[1] = -y[1] / p[TAU_EX]
    f[2] = -y[2] / p[TAU_IN]
    f[3] = (p[A] * (v - p[E_L]) - y[3]) / p[TAU_W]


@_jit
def _rhs_adex_psc(p, y, refractory, i_stim, f):
    v = p[V_RESET] if refractory else min(y[0], p[V_PEAK])
    dv = -p[G_L] * (v - p[E_L]) + _spike_current(p, v) + y[1] - y[2] - y[3] + p[I_E] + i_stim
    f[0] = 0.0 if refractory else dv / p[C_M]
    f[1] = -y[1] / p[TAU_EX]
    f[2] = -y[2] / p[TAU_IN]
    f[3] = (p[A] * (v - p[E_L]) - y[3]) / p[TAU_W]


register_rhs(CondExpTag, _rhs_cond_exp)
register_rhs(CondAlphaTag, _rhs_cond_alpha)
register_rhs(AdExCondTag, _rhs_adex_cond)
register_rhs(AdExPscTag, _rhs_adex_psc)


@_jit
def _integrate(fam, p, y, refr, i_stim, dt, h, ws):
    """Integrate over one step of ``dt`` ms (no spike test inside); returns the next step size."""
    t = 0.0
    while t < dt:
        t, h = evolve(fam, p, y, refr > 0, i_stim, t, dt, h, ws, p[EPS_ABS], p[EPS_REL], p[A_Y], p[A_DY])
    return h


@_jit
def step_cond_exp(fam, p, y, refr, ref_steps, h, dt, ws, in_ex, in_in, i_stim):
    """One step of ``COND_EXP``: returns ``(spiked, refr, h)``; ``in_ex`` >= 0, ``in_in`` <= 0 (nS)."""
    h = _integrate(fam, p, y, refr, i_stim, dt, h, ws)
    y[1] += in_ex
    y[2] -= in_in
    if refr > 0:
        y[0] = p[V_RESET]
        return False, refr - 1, h
    if y[0] >= p[V_TH]:
        y[0] = p[V_RESET]
        return True, ref_steps, h
    return False, refr, h


@_jit
def step_cond_alpha(fam, p, y, refr, ref_steps, h, dt, ws, in_ex, in_in, i_stim):
    """One step of ``COND_ALPHA``: returns ``(spiked, refr, h)``."""
    h = _integrate(fam, p, y, refr, i_stim, dt, h, ws)
    spiked = False
    if refr > 0:
        refr -= 1
        y[0] = p[V_RESET]
    elif y[0] >= p[V_TH]:
        refr = ref_steps
        y[0] = p[V_RESET]
        spiked = True
    y[1] += in_ex * (math.e / p[TAU_EX])
    y[3] -= in_in * (math.e / p[TAU_IN])
    return spiked, refr, h


@_jit
def step_adex(fam, p, y, refr, ref_steps, h, dt, ws, in_ex, in_in, i_stim):
    """One step of ``ADEX_COND`` / ``ADEX_PSC``: returns ``(spiked, refr, h)``."""
    spiked = False
    v_spike = p[V_PEAK] if p[DELTA_T] > 0.0 else p[V_TH]  # (Delta_T = 0: an LIF with a threshold)
    t = 0.0
    while t < dt:
        t, h = evolve(fam, p, y, refr > 0, i_stim, t, dt, h, ws, p[EPS_ABS], p[EPS_REL], p[A_Y], p[A_DY])
        if refr > 0:
            y[0] = p[V_RESET]
        elif y[0] >= v_spike:
            y[0] = p[V_RESET]
            y[3] += p[B]
            refr = ref_steps + 1 if ref_steps > 0 else 0
            spiked = True
    if refr > 0:
        refr -= 1
    y[1] += in_ex
    y[2] -= in_in
    return spiked, refr, h
