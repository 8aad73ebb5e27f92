r"""Current-based LIF and IF neurons with several receptor ports (NEST ``iaf_psc_exp_multisynapse``).

``es.LIF(..., tau_syn=[2.0, 100.0, 5.0])`` gives each neuron one
exponentially decaying synaptic current per port :math:`k` (time constant
``tau_syn[k]``, ms); a connection names its port
(``net.connect(..., receptor=k)``, ``0 <= k < len(tau_syn)``; NEST's
``receptor_type`` is ``k + 1``), and the sign of the weight (pA) no longer
chooses the port: any port takes weights of either sign.

.. math::

    \frac{dv}{dt} = -\frac{v - v_{rest}}{\tau_m} + \frac{\sum_k I_k + I_e}{C_m},\qquad
    \frac{dI_k}{dt} = -\frac{I_k}{\tau_{syn,k}}

integrated exactly: one step of length ``h`` is
:math:`v \leftarrow v_{rest} + P_{vv}(v - v_{rest}) + P_{vi} I_e + \sum_k P_{k} I_k`,
:math:`I_k \leftarrow e^{-h/\tau_{syn,k}} I_k`, with :math:`P_k` the
``p_ve`` coefficient of :func:`eventsim.models.dynamics.exp_propagators` for
:math:`\tau_{syn,k}` (its ``tau_m == tau_syn`` limit exact).

Order of one step (NEST's ``iaf_psc_exp_multisynapse``, the same as
``iaf_psc_exp``): if not refractory, exact update of ``v`` from the currents
at the start of the step, else the refractory counter is decremented;
``v = max(v, v_min)``; each port's current decays and the input arriving
at the end of the step is added to it; threshold test ``v >= v_th``, reset
and start of the refractory period.

Storage (:mod:`eventsim.models.family`): the currents are columns
``0..P-1`` of the family's state ``x`` (state names ``i_syn_0`` ...); the
coefficients of a parameter set are ``coef = [P, P_0..P_{P-1},
e^{-h/\tau_{syn,0}}..]``; the input of port ``k`` of neuron ``n`` arrives in
ring column ``k N + n`` (block ``k`` of the ring).  The time constants are
one value per port for the whole population.

The event engine (:data:`PORTS_EVENT`, up to :data:`MAX_EVENT_PORTS` ports):
continuous time, as :mod:`eventsim.models.iaf_event` for ``iaf_psc_exp``
(NEST has no precise-spike-time model with ports; this is what
``iaf_psc_exp_ps`` would be with them).  State row: ``v`` (mV), then the
port currents (pA).  After ``s`` ms without input each current decays,
:math:`I_k e^{-s/\tau_{syn,k}}`, and ``v`` is held until the end of the
refractory period, then follows the exact propagator of a step of any
length, :math:`v_{rest} + P_{vv}(v - v_{rest}) + P_{vi} I_e + \sum_k P_k I_k`
(the terms in this order: with two ports it is the arithmetic of
``iaf_psc_exp``'s event functions).  An input of weight ``w`` at ``t`` adds
``w`` to its port's current (refractory or not); the threshold is reached
continuously, at the time :func:`eventsim.models.crossing.leftmost_crossing`
finds with the bounds of :func:`event_bounds` (the upper bound of ``v``
from the charge the positive currents can still deliver and the largest
current, as for two currents); at a spike ``v`` is reset by the model's
rule and the refractory period starts.  ``v_min`` is not supported there
(the network refuses it).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

import math

from . import dynamics, iaf_event
from .crossing import next_crossing_bounded
from .dynamics import phi, reset_voltage
from .family import FIRST, IB, N_PARAMS, T_REF, TL, TR, EventFunctions, Family, block_kernel, register
from .lif import IF, LIF, _inv, _vec_prop


def port_propagators(model, dt):
    """``(p_syn, p_decay)``: per port the current-to-voltage coefficient (mV/pA; one value, or one per neuron
    where ``tau_m`` or ``c_m`` differ between neurons) and the decay factor of a step of ``dt`` ms."""
    inv_m = 0.0 if isinstance(model, IF) else _inv(model.tau_m)
    p_syn, p_dec = [], []
    for tau in model.tau_syn:
        out = _vec_prop(float(dt), inv_m, model.c_m, 1.0 / tau, 1.0 / tau)
        p_syn.append(out[2])
        p_dec.append(float(np.exp(-float(dt) / tau)))
    return p_syn, p_dec


def pack_ports(model, n, dt, common):
    """The engines' arrays of an LIF / IF ``model`` with receptor ports: ``common`` (the fields every LIF packs,
    with its current propagators unused) plus ``coef`` and ``x_init`` (see the module docstring)."""
    P = len(model.tau_syn)
    p_syn, p_dec = port_propagators(model, dt)
    coef = np.empty((n, 1 + 2 * P))
    coef[:, 0] = P
    for k in range(P):
        coef[:, 1 + k] = p_syn[k]
        coef[:, 1 + P + k] = p_dec[k]
    zeros = np.zeros(n)
    common.update(family=np.full(n, MULTISYNAPSE.code, np.int64), is_exp=np.zeros(n, np.int64),
                  p_ve=zeros, p_vn=zeros.copy(), p_ee=zeros.copy(), p_nn=zeros.copy(), coef=coef,
                  x_init=np.zeros((n, P)))
    return common


@block_kernel
def _run_ports(a, b, q, c0, ring, i_c, per_neuron, pr, st, flag):
    """Neurons ``a..b-1`` (parameter set ``q``) with receptor ports: the order of the module docstring."""
    N = st.v.size
    co = pr.coef
    P = np.int64(co[q, 0])
    v_rest = pr.v_rest[q]
    v_th = pr.v_th[q]
    p_vv = pr.p_vv[q]
    p_vi = pr.p_vi[q]
    v_min = pr.v_min[q]
    mode = pr.reset_mode[q]
    v_reset = pr.v_reset[q]
    reset_m = pr.reset_m[q]
    reset_b = pr.reset_b[q]
    ref_steps = pr.ref_steps[q]
    x = st.x
    for n in range(a, b):
        i_const = i_c + st.i_dc[n] if per_neuron else i_c
        v = st.v[n]
        refr = st.refr[n]
        v_new = v_rest + p_vv * (v - v_rest) + p_vi * i_const
        for k in range(P):
            v_new += co[q, 1 + k] * x[n, k]
        v_new = max(v_new, v_min)
        v = v_new if refr == 0 else v
        refr = max(refr - 1, 0)
        for k in range(P):
            c = c0 + k * N + n
            x[n, k] = co[q, 1 + P + k] * x[n, k] + ring[c]
            ring[c] = 0.0
        spiked = v >= v_th
        st.v[n] = reset_voltage(v, mode, v_reset, v_rest, v_th, reset_m, reset_b) if spiked else v
        st.refr[n] = ref_steps if spiked else refr
        flag[n] = spiked


@njit(inline="always", cache=True)
def _ports_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of the receptor-port family."""
    _run_ports(a, b, q, c0, ring, i_c, per_neuron, pr, st, flag)


# ---------------------------------------------------------------- the event engine (see eventsim.models.family)
#: Most receptor ports a neuron may have in the event engine (its state row holds ``v`` and one current per port:
#: with more ports than this the network is refused).
MAX_EVENT_PORTS = 8
#: The family's columns of the event engine's parameter rows: those of :mod:`eventsim.models.iaf_event` (membrane,
#: reset and the longest time constant), the number of ports and, from :data:`INV_SYN`, ``1/tau_syn[k]`` (1/ms).
_INV_TM, _C_M, _V_REST, _V_TH = iaf_event.INV_TM, iaf_event.C_M, iaf_event.V_REST, iaf_event.V_TH
_TAU_MAX = iaf_event.TAU_MAX
N_PORTS = _TAU_MAX + 1
INV_SYN = N_PORTS + 1
assert INV_SYN + MAX_EVENT_PORTS <= N_PARAMS and FIRST <= _INV_TM
_jit = njit(inline="always", cache=True)
#: The crossing search's functions are called, not inlined (as :mod:`eventsim.models.iaf_event`'s).
_call = njit(cache=True, _nrt=False)


def event_pack(model, n):
    """Parameter rows of ``n`` neurons of an LIF / IF ``model`` with receptor ports (no threshold components)."""
    K = len(model.tau_syn)
    if K > MAX_EVENT_PORTS:
        raise NotImplementedError(f"{model!r}: engine='event' runs neurons of at most {MAX_EVENT_PORTS} receptor "
                                  f"ports, this one has {K}; use engine='clock'")
    b = lambda x: np.broadcast_to(np.asarray(x, np.float64), (n,))  # noqa: E731
    P = np.zeros((n, N_PARAMS))
    leaky = not isinstance(model, IF)
    P[:, _INV_TM] = 1.0 / b(model.tau_m) if leaky else 0.0
    for name, col in (("c_m", _C_M), ("v_rest", _V_REST), ("v_th", _V_TH), ("v_reset", iaf_event.V_RESET),
                      ("t_ref", T_REF)):
        P[:, col] = b(getattr(model, name))
    P[:, iaf_event.RESET_MODE] = model._resets[model.reset]
    P[:, iaf_event.RESET_M], P[:, iaf_event.RESET_B] = model._reset_coefficients(n)
    P[:, N_PORTS] = K
    for k, tau in enumerate(model.tau_syn):
        P[:, INV_SYN + k] = 1.0 / tau
    P[:, _TAU_MAX] = max([1.0, *model.tau_syn] + ([float(np.max(model.tau_m))] if leaky else []))
    return P, np.zeros((n, 0)), np.zeros((n, 0))


@_jit
def _v_at(i, p, s, PP, SS):
    """``v`` of neuron ``i`` ``s`` ms after its last event (no side effect): held until the end of the refractory
    period, then the exact free evolution with the currents decayed to the end of it."""
    v = SS[i, 0]
    hr = SS[i, TR] - SS[i, TL]
    if hr >= s:
        return v
    h0 = hr if hr > 0.0 else 0.0
    h = s - h0
    inv_tm = PP[p, _INV_TM]
    c_m = PP[p, _C_M]
    p_vv = math.exp(-h * inv_tm)
    out = PP[p, _V_REST] + p_vv * (v - PP[p, _V_REST]) + h / c_m * phi(-h * inv_tm) * SS[i, IB]
    for k in range(np.int64(PP[p, N_PORTS])):
        inv = PP[p, INV_SYN + k]
        x = SS[i, 1 + k] * math.exp(-h0 * inv) if h0 > 0.0 else SS[i, 1 + k]
        out += p_vv * h / c_m * phi(-h * (inv - inv_tm)) * x
    return out


@_jit
def event_advance(fam, i, p, s, PP, SS, TH, ITH):
    """State ``s`` ms later, without input."""
    SS[i, 0] = _v_at(i, p, s, PP, SS)
    for k in range(np.int64(PP[p, N_PORTS])):
        SS[i, 1 + k] = SS[i, 1 + k] * math.exp(-s * PP[p, INV_SYN + k])


@_jit
def event_sample(fam, i, p, s, var, PP, SS, TH, ITH):
    """``v`` (code 0) or the current of port ``k`` (``X_CODE + k``) at ``s``."""
    if var == 0:
        return _v_at(i, p, s, PP, SS)
    k = var - 5  # (eventsim.engines.clock_cpu.X_CODE)
    return SS[i, 1 + k] * math.exp(-s * PP[p, INV_SYN + k])


@_jit
def event_receive(fam, i, p, t, w, port, PP, SS):
    """Input of weight ``w`` (pA) at ``t`` to receptor port ``port``, refractory or not."""
    SS[i, 1 + port] += w


@_jit
def event_fires(fam, i, p, t, PP, SS, TH):
    """Never at an input: the currents are continuous, so is ``v`` (its crossings are predicted)."""
    return False


@_jit
def event_reset(fam, i, p, t, PP, SS, TH, DTH):
    """Reset of ``v`` by the model's rule."""
    SS[i, 0] = reset_voltage(SS[i, 0], PP[p, iaf_event.RESET_MODE], PP[p, iaf_event.V_RESET], PP[p, _V_REST],
                             PP[p, _V_TH], PP[p, iaf_event.RESET_M], PP[p, iaf_event.RESET_B])


@_jit
def event_never_crosses(fam, i, p, PP, SS):
    r"""Not refractory, and :math:`\max(v, v_\infty) + Q^+/C_m` below ``v_th`` (:math:`Q^+` the charge the
    positive currents can still deliver; a non-leaky neuron: no positive constant input, :math:`v + Q^+/C_m`)."""
    if SS[i, TL] < SS[i, TR]:
        return False
    q = 0.0
    for k in range(np.int64(PP[p, N_PORTS])):
        x = SS[i, 1 + k]
        if x > 0.0:
            q += x / PP[p, INV_SYN + k]
    v = SS[i, 0]
    inv_tm = PP[p, _INV_TM]
    i_e = SS[i, IB]
    if inv_tm > 0.0:
        v = max(v, PP[p, _V_REST] + i_e / (PP[p, _C_M] * inv_tm))
    elif i_e > 0.0:
        return False
    return v + q / PP[p, _C_M] < PP[p, _V_TH]


@_call
def event_distance(fam, i, p, s, PP, SS, TH, ITH):
    """Distance to threshold ``v - v_th`` at ``s`` (mV)."""
    return _v_at(i, p, s, PP, SS) - PP[p, _V_TH]


@_call
def event_slope(fam, i, p, s, PP, SS, TH, ITH):
    """Distance to threshold and its time derivative at ``s`` (free evolution, after the refractory period)."""
    v = _v_at(i, p, s, PP, SS)
    cur = SS[i, IB]  # the constant input, then each port's current
    for k in range(np.int64(PP[p, N_PORTS])):
        cur += SS[i, 1 + k] * math.exp(-s * PP[p, INV_SYN + k])
    dv = (PP[p, _V_REST] - v) * PP[p, _INV_TM] + cur / PP[p, _C_M]
    return v - PP[p, _V_TH], dv


@_call
def event_bounds(fam, i, p, a, b, PP, SS, TH, ITH):
    """On ``[a, b]`` (after the refractory period): (upper bound of ``v - v_th``, lower bound of its time
    derivative), as :func:`eventsim.models.iaf_event.bounds` with one current per port."""
    v = _v_at(i, p, a, PP, SS)
    D = b - a
    c = PP[p, _C_M]
    inv_tm = PP[p, _INV_TM]
    i_e = SS[i, IB]
    syn_int = 0.0  # upper bound of the charge the positive currents can still deliver
    i_hi = 0.0  # largest synaptic current on the interval
    i_lo = 0.0  # smallest synaptic current on the interval
    for k in range(np.int64(PP[p, N_PORTS])):
        inv = PP[p, INV_SYN + k]
        q, hi, lo = iaf_event.current_bound(SS[i, 1 + k] * math.exp(-a * inv), inv, D)
        syn_int += q
        i_hi += hi
        i_lo += lo
    u, dv_lo = iaf_event.membrane_bound(v, D, c, inv_tm, PP[p, _V_REST], i_e, syn_int, i_hi, i_lo)
    return u - PP[p, _V_TH], dv_lo


@_call
def event_next_crossing(fam, i, p, PP, SS, TH, ITH, stack):
    """Absolute time (ms) at which neuron ``i`` first reaches threshold without further input, not before the
    end of its refractory period (inf: never): :func:`eventsim.models.crossing.next_crossing_bounded`."""
    return next_crossing_bounded(fam, i, p, PP[p, _TAU_MAX], PP, SS, TH, ITH, stack)


#: The family's functions for the event engine: state row ``v``, then the port currents (keys ``0 ..``: the
#: columns of the clock engine's ``State.x``).
PORTS_EVENT = EventFunctions(
    pack=event_pack, slots={"v": 0, **{k: 1 + k for k in range(MAX_EVENT_PORTS)}}, advance=event_advance,
    sample=event_sample, receive=event_receive, fires=event_fires, reset=event_reset,
    never_crosses=event_never_crosses, next_crossing=event_next_crossing, distance=event_distance,
    slope=event_slope, bounds=event_bounds)


class MultisynapseTag(NamedTuple):
    """Compile-time key of the receptor-port family (see :mod:`eventsim.models.family`)."""

    code: int


#: LIF and IF with receptor ports (NEST's ``iaf_psc_exp_multisynapse``): state ``v``, one current per port
#: (columns of ``x``) and the refractory counter; port ``k`` is block ``k`` of the ring.
MULTISYNAPSE = register(Family(
    name="iaf_psc_exp_multisynapse", code=12, tag=MultisynapseTag(12), state=(("v", "mV"),),
    ports=("receptor",), propagator=dynamics.exp_propagators, update_block=_ports_block, models=(LIF, IF),
    event=PORTS_EVENT))
