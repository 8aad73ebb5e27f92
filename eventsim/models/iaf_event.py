r"""The integrate-and-fire families in the event engine: continuous time, exact threshold crossings.

One set of functions (the :class:`eventsim.models.family.EventFunctions`
contract) serves ``iaf_psc_delta``, ``iaf_psc_exp`` (:mod:`.lif`) and the
adaptive-threshold family (:mod:`.adaptive`); each family binds it with
:func:`functions`, which records for its tag whether the neuron has
exponential synaptic currents (always, never, or as its parameter row
says) and threshold components, so that each family's compiled code keeps
only its own branches.

State between events (columns of the state row): ``v`` (mV), ``i_ex``,
``i_in`` (pA; zero with delta synapses); threshold components
:math:`\theta_k` in ``TH``.  After ``s`` ms without input (exact,
:func:`eventsim.models.dynamics.free_membrane`):
:math:`I_x(s) = e^{-s/\tau_x} I_x`, :math:`\theta_k(s) = e^{-s/\tau_{\theta,k}}\theta_k`,
and ``v`` clamped until the end of the refractory period, then the exact
propagator of :mod:`eventsim.models.dynamics` for the rest of ``s``
(the currents keep decaying while the membrane is clamped).

Input of weight ``w`` at ``t``: delta synapses add ``w`` (mV) to ``v``
unless ``t`` is inside the refractory period ``[t_spike, t_spike + t_ref)``
(input at exactly ``t_spike + t_ref`` counts); current synapses add ``w``
(pA) to ``i_ex`` if ``w >= 0``, else to ``i_in``.  A jump of ``v`` to
:math:`v \ge v_{th} + \sum_k \theta_k` is a spike at ``t`` (the inputs at
``t`` summed first, as NEST's ``iaf_psc_delta_ps``); currents reach
threshold continuously, at the time found by :func:`next_crossing`.

Spike at ``t``: ``v`` reset by the model's rule
(:func:`eventsim.models.dynamics.reset_voltage`, with the effective
threshold crossed), :math:`\theta_k \mathrel{+}= d_k`, then the engine
starts the refractory period of ``t_ref`` ms.

Threshold crossing (first ``s`` with :math:`v(s) \ge v_{th} + \sum_k\theta_k(s)`):

* delta synapses without threshold components: closed form,
  :math:`s = \tau_m \log(1 + (v_{th} - v_0) / (v_\infty - v_{th}))`
  (:math:`v_\infty` the asymptote of the constant current; non-leaky:
  :math:`(v_{th} - v_0) C_m / I_e`);
* otherwise :func:`eventsim.models.crossing.leftmost_crossing` with the
  bounds of :func:`bounds`: the comparison theorem gives an upper bound of
  ``v`` (the leak only pulls ``v`` towards its asymptote; every synaptic
  current has constant sign and decays monotonically) and each
  :math:`\theta_k` is monotonic.  Bounds and values come from the exact
  propagators, so the search is exact at and near ``tau_m == tau_syn``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.extending import overload

from .crossing import leftmost_crossing
from .dynamics import free_membrane, reset_voltage
from .family import FIRST, IB, N_PARAMS, T_REF, TL, TR, EventFunctions

_inline = njit(cache=True, inline="always")
#: The crossing search's functions are called, not inlined: they are compiled once per family, and each
#: inlined copy would be typed and optimised again (compile time) for little run time.
_jit = njit(cache=True, _nrt=False)

#: The family's columns of the event engine's parameter rows.
INV_TM = FIRST          # 1/tau_m (1/ms; 0: no leak)
C_M = FIRST + 1         # pF
V_REST = FIRST + 2      # mV
V_TH = FIRST + 3        # mV
V_RESET = FIRST + 4     # mV
INV_TE = FIRST + 5      # 1/tau_syn_ex (1/ms)
INV_TI = FIRST + 6      # 1/tau_syn_in (1/ms)
IS_EXP = FIRST + 7      # 1: exponential current synapses
RESET_MODE = FIRST + 8  # eventsim.models.dynamics.RESET_*
RESET_M = FIRST + 9
RESET_B = FIRST + 10
TAU_MAX = FIRST + 11    # longest time constant (ms): the first horizon of the crossing search
#: Columns of the state row.
V = 0
IE = 1
II = 2

#: ``{tag class: (currents, adaptive)}``: currents "delta" (none), "exp" (always) or "row" (as ``IS_EXP`` says).
_KIND = {}


def functions(tag_class, currents, adaptive):
    """The :class:`EventFunctions` of an integrate-and-fire family tagged by instances of ``tag_class``:
    ``currents`` "delta", "exp" or "row" (per parameter row), ``adaptive``: threshold components."""
    if currents not in ("delta", "exp", "row"):
        raise ValueError(f"currents={currents!r} must be 'delta', 'exp' or 'row'")
    _KIND[tag_class] = (currents, bool(adaptive))
    return EventFunctions(pack=pack, slots={"v": V, "i_ex": IE, "i_in": II}, advance=advance, sample=sample,
                          receive=receive, fires=fires, reset=reset, never_crosses=never_crosses,
                          next_crossing=next_crossing, distance=distance, slope=slope, bounds=bounds)


def pack(model, n):
    """Parameter rows of ``n`` neurons of ``model`` (LIF, IF or ALIF) and their threshold components."""
    b = lambda x: np.broadcast_to(np.asarray(x, np.float64), (n,))  # noqa: E731
    P = np.zeros((n, N_PARAMS))
    leaky = bool(np.all(np.isfinite(model.tau_m)))
    P[:, INV_TM] = 1.0 / b(model.tau_m) if leaky else 0.0
    for name, col in (("c_m", C_M), ("v_rest", V_REST), ("v_th", V_TH), ("v_reset", V_RESET), ("t_ref", T_REF)):
        P[:, col] = b(getattr(model, name))
    taus = [b(model.tau_m)] if leaky else []
    if model.synapse == "exp":
        P[:, IS_EXP] = 1.0
        P[:, INV_TE] = 1.0 / b(model.tau_syn_ex)
        P[:, INV_TI] = 1.0 / b(model.tau_syn_in)
        taus += [b(model.tau_syn_ex), b(model.tau_syn_in)]
    P[:, RESET_MODE] = model._resets[model.reset]
    P[:, RESET_M], P[:, RESET_B] = model._reset_coefficients(n)
    tau_theta, d_theta = getattr(model, "tau_theta", ()), getattr(model, "d_theta", ())
    ith = np.zeros((n, len(tau_theta)))
    dth = np.zeros((n, len(tau_theta)))
    for k, (tau, d) in enumerate(zip(tau_theta, d_theta)):
        ith[:, k] = 1.0 / b(tau)
        dth[:, k] = b(d)
        taus.append(b(tau))
    P[:, TAU_MAX] = np.maximum.reduce(taus + [np.ones(n)])
    return P, ith, dth


# ---------------------------------------------------------------- compile-time properties of a family's tag
def _currents(fam, PP, p):
    """Whether neuron class ``p`` of the family tagged ``fam`` has exponential synaptic currents."""
    mode = _KIND[type(fam)][0]
    return mode == "exp" or (mode == "row" and PP[p, IS_EXP] != 0.0)


def _adaptive(fam):
    """Whether the family tagged ``fam`` has threshold components."""
    return _KIND[type(fam)][1]


@overload(_currents)
def _currents_compiled(fam, PP, p):
    mode = _KIND[fam.instance_class][0]
    if mode == "row":
        return lambda fam, PP, p: PP[p, IS_EXP] != 0.0
    if mode == "exp":
        return lambda fam, PP, p: True
    return lambda fam, PP, p: False


@overload(_adaptive)
def _adaptive_compiled(fam):
    if _KIND[fam.instance_class][1]:
        return lambda fam: True
    return lambda fam: False


# ---------------------------------------------------------------- state
@_inline
def _state_at(fam, i, p, s, PP, SS):
    """``(v, i_ex, i_in)`` of neuron ``i`` at ``s`` ms after its last event (no side effect)."""
    currents = _currents(fam, PP, p)
    v = SS[i, V]
    ie = SS[i, IE]
    ii = SS[i, II]
    inv_te = PP[p, INV_TE]
    inv_ti = PP[p, INV_TI]
    hr = SS[i, TR] - SS[i, TL]
    if hr < s:
        if hr > 0.0:
            v = free_membrane(v, ie * math.exp(-hr * inv_te), ii * math.exp(-hr * inv_ti), s - hr, PP[p, INV_TM],
                              PP[p, C_M], PP[p, V_REST], SS[i, IB], inv_te, inv_ti, currents)
        else:
            v = free_membrane(v, ie, ii, s, PP[p, INV_TM], PP[p, C_M], PP[p, V_REST], SS[i, IB], inv_te, inv_ti,
                              currents)
    if currents:
        ie = ie * math.exp(-s * inv_te)
        ii = ii * math.exp(-s * inv_ti)
    return v, ie, ii


# ---------------------------------------------------------------- threshold components (every family that has them)
@_inline
def theta_sum(i, TH):
    """Sum of neuron ``i``'s threshold components now (mV)."""
    th = 0.0
    for k in range(TH.shape[1]):
        th += TH[i, k]
    return th


@_inline
def theta_at(i, s, TH, ITH):
    """Sum of neuron ``i``'s threshold components ``s`` ms after its last event (mV)."""
    th = 0.0
    for k in range(TH.shape[1]):
        th += TH[i, k] * math.exp(-s * ITH[i, k])
    return th


@_inline
def theta_decay(i, s, TH, ITH):
    """Decay neuron ``i``'s threshold components by ``s`` ms."""
    for k in range(TH.shape[1]):
        TH[i, k] *= math.exp(-s * ITH[i, k])


@_inline
def theta_jump(i, TH, DTH):
    """Add neuron ``i``'s increments to its threshold components (after a spike)."""
    for k in range(TH.shape[1]):
        TH[i, k] += DTH[i, k]


@_inline
def theta_slope(i, s, TH, ITH):
    """``(sum, time derivative)`` of neuron ``i``'s threshold components ``s`` ms after its last event."""
    th = 0.0
    dth = 0.0
    for k in range(TH.shape[1]):
        x = TH[i, k] * math.exp(-s * ITH[i, k])
        th += x
        dth -= x * ITH[i, k]
    return th, dth


@_inline
def theta_bounds(th_lo, i, a, d, TH, ITH):
    """On ``[a, a + d]`` after the last event (``d`` may be inf): ``th_lo`` plus a lower bound of the sum of
    neuron ``i``'s threshold components, and an upper bound of that sum's time derivative (each component
    decays monotonically, so its extremes are at the ends)."""
    dth_hi = 0.0
    for k in range(TH.shape[1]):
        x = TH[i, k] * math.exp(-a * ITH[i, k])
        inv = ITH[i, k]
        e = 0.0 if d == math.inf else math.exp(-d * inv)
        if x > 0.0:
            th_lo += x * e
            dth_hi -= x * inv * e
        else:
            th_lo += x
            dth_hi -= x * inv
    return th_lo, dth_hi


@_inline
def _theta_at(fam, i, s, TH, ITH):
    """Sum of the threshold components of neuron ``i`` at ``s`` ms after its last event (mV)."""
    return theta_at(i, s, TH, ITH) if _adaptive(fam) else 0.0


@_inline
def advance(fam, i, p, s, PP, SS, TH, ITH):
    """State ``s`` ms later, without input."""
    v, ie, ii = _state_at(fam, i, p, s, PP, SS)
    SS[i, V] = v
    SS[i, IE] = ie
    SS[i, II] = ii
    if _adaptive(fam):
        theta_decay(i, s, TH, ITH)


@_inline
def sample(fam, i, p, s, var, PP, SS, TH, ITH):
    """``v``, ``i_ex``, ``i_in``, ``theta`` (the sum of the components) or ``v_th`` (with them) at ``s``."""
    if var < 3:
        v, ie, ii = _state_at(fam, i, p, s, PP, SS)
        if var == 0:
            return v
        return ie if var == 1 else ii
    x = _theta_at(fam, i, s, TH, ITH)
    if var == 4:
        x += PP[p, V_TH]
    return x


@_inline
def receive(fam, i, p, t, w, port, PP, SS):
    """Input of weight ``w`` at ``t``: to ``i_ex`` / ``i_in`` by its sign, or a jump of ``v`` outside the
    refractory period."""
    if _currents(fam, PP, p):
        if w >= 0.0:
            SS[i, IE] += w
        else:
            SS[i, II] += w
    elif t >= SS[i, TR]:
        SS[i, V] += w


@_inline
def fires(fam, i, p, t, PP, SS, TH):
    """Delta synapses: ``v`` at or above the effective threshold after the inputs at ``t``, outside the
    refractory period (current synapses cross continuously: never here)."""
    if _currents(fam, PP, p) or t < SS[i, TR]:
        return False
    th = theta_sum(i, TH) if _adaptive(fam) else 0.0
    return SS[i, V] >= PP[p, V_TH] + th


@_inline
def reset(fam, i, p, t, PP, SS, TH, DTH):
    """Reset of ``v`` by the model's rule and threshold increments."""
    th = theta_sum(i, TH) if _adaptive(fam) else 0.0
    SS[i, V] = reset_voltage(SS[i, V], PP[p, RESET_MODE], PP[p, V_RESET], PP[p, V_REST], PP[p, V_TH] + th,
                             PP[p, RESET_M], PP[p, RESET_B])
    if _adaptive(fam):
        theta_jump(i, TH, DTH)


@_inline
def never_crosses(fam, i, p, PP, SS):
    """Leaky, delta synapses, no threshold components, not refractory, below threshold with the asymptote
    of the constant current at or below it."""
    if _adaptive(fam) or _currents(fam, PP, p) or PP[p, INV_TM] == 0.0 or SS[i, TL] < SS[i, TR]:
        return False
    v_inf = PP[p, V_REST] + SS[i, IB] / (PP[p, C_M] * PP[p, INV_TM])
    return SS[i, V] < PP[p, V_TH] and v_inf <= PP[p, V_TH]


# ---------------------------------------------------------------- the crossing search
@_jit
def distance(fam, i, p, s, PP, SS, TH, ITH):
    """Distance to threshold ``v - (v_th + sum theta)`` at ``s`` (mV)."""
    v, _, _ = _state_at(fam, i, p, s, PP, SS)
    return v - PP[p, V_TH] - _theta_at(fam, i, s, TH, ITH)


@_jit
def slope(fam, i, p, s, PP, SS, TH, ITH):
    """Distance to threshold and its time derivative at ``s`` (free evolution)."""
    v, ie, ii = _state_at(fam, i, p, s, PP, SS)
    dv = (PP[p, V_REST] - v) * PP[p, INV_TM] + (SS[i, IB] + ie + ii) / PP[p, C_M]
    th = 0.0
    dth = 0.0
    if _adaptive(fam):
        th, dth = theta_slope(i, s, TH, ITH)
    return v - PP[p, V_TH] - th, dv - dth


@_inline
def current_bound(x, inv, D):
    """A current ``x`` (pA) decaying at rate ``inv`` (1/ms) over ``D`` ms (may be inf): ``(charge bound, largest,
    smallest)``: the charge (fC) its positive part can still deliver, and its extremes (at the interval's ends)."""
    e = math.exp(-D * inv)
    if x > 0.0:
        return x * (-math.expm1(-D * inv)) / inv, x, x * e
    return 0.0, x * e, x


@_inline
def membrane_bound(v, D, c, inv_tm, v_rest, i_e, syn_int, i_hi, i_lo):
    """From ``v`` at the start of an interval of ``D`` ms (``D`` may be inf), free: (an upper bound of ``v`` on
    it, a lower bound of ``dv/ds``), given the synaptic currents' bounds on it: ``syn_int`` the most charge
    (fC) their positive parts can still deliver, ``i_hi`` / ``i_lo`` their largest / smallest sum (pA).  The
    leak only pulls ``v`` towards its asymptote: ``v`` stays below ``max(v, v_inf) + syn_int / c`` and below
    its value under the constant current ``i_hi``.  Shared by the families with exponential currents."""
    if inv_tm > 0.0:
        v_inf = v_rest + i_e / (c * inv_tm)
        u1 = max(v, v_inf) + syn_int / c
        w = v_inf + i_hi / (c * inv_tm)
        u2 = v + max(w - v, 0.0) * (-math.expm1(-D * inv_tm))
        u = min(u1, u2)
        return u, (v_inf - u) * inv_tm + i_lo / c
    rate = max(i_e + i_hi, 0.0)
    u = v + rate * D / c if rate > 0.0 else v
    u = min(u, v + syn_int / c + (i_e * D / c if i_e > 0.0 else 0.0))
    return u, (i_e + i_lo) / c


@_jit
def bounds(fam, i, p, a, b, PP, SS, TH, ITH):
    """On ``[a, b]``: (upper bound of v minus lower bound of the threshold, lower bound of d/ds of the distance)."""
    v, ie, ii = _state_at(fam, i, p, a, PP, SS)
    D = b - a
    c = PP[p, C_M]
    inv_tm = PP[p, INV_TM]
    i_e = SS[i, IB]
    syn_int = 0.0  # upper bound of the charge the positive currents can still deliver
    i_hi = 0.0  # largest synaptic current on the interval
    i_lo = 0.0  # smallest synaptic current on the interval
    if _currents(fam, PP, p):
        for x, inv in ((ie, PP[p, INV_TE]), (ii, PP[p, INV_TI])):
            q, hi, lo = current_bound(x, inv, D)
            syn_int += q
            i_hi += hi
            i_lo += lo
    u, dv_lo = membrane_bound(v, D, c, inv_tm, PP[p, V_REST], i_e, syn_int, i_hi, i_lo)
    th_lo = PP[p, V_TH]
    dth_hi = 0.0
    if _adaptive(fam):
        th_lo, dth_hi = theta_bounds(th_lo, i, a, D, TH, ITH)
    return u - th_lo, dv_lo - dth_hi


@_jit
def next_crossing(fam, i, p, PP, SS, TH, ITH, stack):
    """Absolute time at which neuron ``i`` first reaches threshold without further input (inf: never)."""
    tl = SS[i, TL]
    s0 = max(SS[i, TR] - tl, 0.0)
    if distance(fam, i, p, s0, PP, SS, TH, ITH) >= 0.0:
        return tl + s0
    gap, _ = bounds(fam, i, p, s0, math.inf, PP, SS, TH, ITH)
    if gap < 0.0:
        return math.inf
    if not _currents(fam, PP, p) and not _adaptive(fam):  # closed form
        v0, _, _ = _state_at(fam, i, p, s0, PP, SS)
        vth = PP[p, V_TH]
        if PP[p, INV_TM] > 0.0:
            v_inf = PP[p, V_REST] + SS[i, IB] / (PP[p, C_M] * PP[p, INV_TM])
            if v_inf <= vth:
                return math.inf
            return tl + s0 + math.log1p((vth - v0) / (v_inf - vth)) / PP[p, INV_TM]
        if SS[i, IB] <= 0.0:
            return math.inf
        return tl + s0 + (vth - v0) * PP[p, C_M] / SS[i, IB]
    return leftmost_crossing(fam, i, p, tl, s0, PP[p, TAU_MAX], PP, SS, TH, ITH, stack)
