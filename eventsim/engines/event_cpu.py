r"""Event-driven engine: continuous spike times, exact threshold crossings, a priority queue.

Every neuron keeps its state at the time of its last event (``tl``) and is
advanced lazily with the exact propagator of :mod:`eventsim.models.dynamics`
when something happens to it.  Two queues and a stream drive the simulation:

* the *event heap* holds ``(time, emitter, group)`` entries: ``group = -1``
  is the emission of a source channel with explicit spike times;
  ``group = -2`` / ``-3`` switches a DC channel on / off (its targets' bias
  current changes by ``factor * amplitude`` pA);
  ``group >= 0`` is the delivery of one emitter's spike through its synapses
  of one delay (outgoing synapses are grouped by delay, so a neuron with one
  delay costs one heap entry per spike);
* the *Poisson stream*: the emissions of all Poisson channels in a time
  window, generated channel by channel (:func:`poisson_window`) and sorted
  once by ``(time, channel)``; it is merged with the event heap as if its
  entries were ``(time, emitter, -1)`` heap entries, so a million Poisson
  channels do not make the heap a million entries deep;
* the *crossing heap* is an indexed heap with at most one entry per neuron:
  the time its free trajectory (no further input) first reaches threshold.

Memory layout: everything an incoming spike touches of its target is in the
target's 64-byte state row ``SS[i]`` (one cache line); parameters are shared
by all neurons with equal values (``PP`` rows), and the targets of a
delivery are prefetched a few synapses ahead.  The kernels never allocate:
when the heap or a buffer may overflow they return a status, the caller
grows or empties it and calls again, and nothing is lost.

Order of events at identical times (the result never depends on how the
heap breaks ties, because every key is unique or identical in content):

1. threshold crossings, by neuron index;
2. source emissions, DC switches and deliveries, by ``(emitter index, delay group)``,
   synapses of a group in target order;
3. after all deliveries at that time: the threshold test of every neuron
   that received input (delta synapses: the inputs that arrive at exactly
   the same time are summed before the test, as in NEST's
   ``iaf_psc_delta_ps``), in the order the neurons first received input at
   that time, then new crossing predictions.

Refractoriness: after a spike at ``t`` the membrane is clamped for
``t_ref`` ms; delta inputs arriving in ``[t, t + t_ref)`` are discarded,
input at exactly ``t + t_ref`` is applied; current synapses keep decaying
and integrating input.

Threshold crossing (first time ``v(s) >= v_th + sum theta_k(s)``):

* delta synapses without adaptation: closed form,
  ``s = tau_m log1p((v_th - v0) / (v_inf - v_th))`` (``v_inf`` the
  asymptote of the bias current; non-leaky: ``(v_th - v0) C_m / I_e``);
* otherwise a bracketed leftmost-root search that cannot miss a crossing:
  on an interval ``[a, b]`` a rigorous upper bound of ``v`` (from the
  comparison theorem: the leak can only pull ``v`` towards its asymptote, and
  every synaptic current has constant sign and decays monotonically) and a
  lower bound of the threshold prune intervals without a crossing; the rest
  are halved left first; an interval on which ``v - threshold`` is provably
  increasing and changes sign is solved by safeguarded Newton to 1e-13 ms.
  Bounds and values are computed from the exact propagators, so the search
  is exact at and near ``tau_m == tau_syn``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import _compile  # noqa: F401  (announces the first compilation of the engine's kernels)
from ..models.dynamics import exp_propagators, phi, reset_voltage, subthreshold_exp
from ..rng import group_words, pick, u01
from ._intrinsics import prefetch_row

#: The kernels never allocate (the caller grows the queues and buffers when they ask for it), so
#: they are compiled without Numba's reference counting: with it, every array argument and
#: tuple field costs atomic increments and decrements, a fifth of the run time.
_jit = njit(cache=True, _nrt=False)
#: Helpers of the inner loops are inlined by Numba into each caller; the crossing search (``_f``, ``_fprime``,
#: ``_bounds``) and the rare sites of the main loop (crossings, DC switches, state samples) call functions
#: compiled once instead (``_advance``, ``_cross``, ``_state``): every inlined copy is
#: typed and optimised again, and calls there cost little, so the engine compiles in about 40% of the time
#: it took with everything inlined (the README's event-engine snippet: ~16 s instead of ~40 s of CPU time).
_inline = njit(cache=True, inline="always")

#: Purpose tag of the Poisson intervals of the event engine (mixed into the key).
POISSON_EVENT = 0x5EED0003

#: Columns of the parameter table ``PP[n_classes, N_PARAMS]`` (float64).  Neurons with identical
#: parameters share one row (a *class*); a neuron's class is stored in its state row (``SS[i, CM]``),
#: so that a homogeneous population of any size reads its parameters from one cached row.
INV_TM = 0
C_M = 1
V_REST = 2
V_TH = 3
V_RESET = 4
T_REF = 5
INV_TE = 6
INV_TI = 7
IS_EXP = 8
ADAPTIVE = 9
RESET_MODE = 10
RESET_M = 11
RESET_B = 12
TAU_MAX = 13
RECORD = 14
N_PARAMS = 15
#: Columns of the per-neuron state matrix ``SS[N, N_STATE]`` (float64, one 64-byte row per neuron, so
#: that an incoming spike touches one cache line): v (mV), i_ex, i_in (pA), the time of the last
#: event and the end of the refractory period (ms), the bias current (pA: ``i_e`` plus the DC
#: sources that are on), ``2 * class + mark`` (the mark: has input at the current time) and the
#: neuron's position in the crossing heap (-1: none).  Integers are exact in float64.
V = 0
IE = 1
II = 2
TL = 3
TR = 4
IB = 5
CM = 6
XPOS = 7
N_STATE = 8

_TOL = 1e-13  # ms, width at which a crossing is located
_STACK = 256
_AHEAD = 8  # targets whose state row is prefetched ahead of the delivery loop


# ---------------------------------------------------------------------------- state evaluation
@_inline
def _cls(SS, i):
    """Row of neuron ``i`` in the parameter table."""
    return np.int64(SS[i, CM]) >> 1


@_inline
def _marked(SS, i):
    """Whether neuron ``i`` received input at the current time (and awaits its threshold test)."""
    return (np.int64(SS[i, CM]) & 1) == 1


@_inline
def _free_v(v, ie, ii, h, inv_tm, c_m, v_rest, i_e, inv_te, inv_ti, is_exp):
    """Membrane potential after ``h`` ms of free (non-refractory) evolution."""
    if is_exp:
        p_vv, p_vi, p_ve, p_vn, _, _ = exp_propagators(h, inv_tm, c_m, inv_te, inv_ti)
        return subthreshold_exp(v, ie, ii, v_rest, p_vv, p_vi, p_ve, p_vn, i_e)
    p_vv = math.exp(-h * inv_tm)
    if i_e == 0.0:
        return v_rest + p_vv * (v - v_rest)
    return v_rest + p_vv * (v - v_rest) + h / c_m * phi(-h * inv_tm) * i_e


@_inline
def _state_at(i, s, PP, SS, TH, ITH):
    """``(v, i_ex, i_in)`` of neuron ``i`` at ``s`` ms after its last event (no side effect)."""
    p = _cls(SS, i)
    v = SS[i, V]
    ie = SS[i, IE]
    ii = SS[i, II]
    inv_te = PP[p, INV_TE]
    inv_ti = PP[p, INV_TI]
    hr = SS[i, TR] - SS[i, TL]
    if hr < s:
        if hr > 0.0:
            v = _free_v(v, ie * math.exp(-hr * inv_te), ii * math.exp(-hr * inv_ti), s - hr, PP[p, INV_TM],
                        PP[p, C_M], PP[p, V_REST], SS[i, IB], inv_te, inv_ti, PP[p, IS_EXP])
        else:
            v = _free_v(v, ie, ii, s, PP[p, INV_TM], PP[p, C_M], PP[p, V_REST], SS[i, IB], inv_te, inv_ti,
                        PP[p, IS_EXP])
    if PP[p, IS_EXP]:
        ie = ie * math.exp(-s * inv_te)
        ii = ii * math.exp(-s * inv_ti)
    return v, ie, ii


@_inline
def _theta_at(i, s, PP, SS, TH, ITH):
    """Sum of the adaptive threshold components of neuron ``i`` at ``s`` ms after its last event."""
    th = 0.0
    for k in range(TH.shape[1]):
        th += TH[i, k] * math.exp(-s * ITH[i, k])
    return th


@_jit
def _f(i, s, PP, SS, TH, ITH):
    """Distance to threshold ``v - (v_th + theta)`` at ``s`` (mV)."""
    p = _cls(SS, i)
    v, _, _ = _state_at(i, s, PP, SS, TH, ITH)
    return v - PP[p, V_TH] - _theta_at(i, s, PP, SS, TH, ITH)


@_jit
def _fprime(i, s, PP, SS, TH, ITH):
    """Distance to threshold and its time derivative at ``s`` (free evolution)."""
    p = _cls(SS, i)
    v, ie, ii = _state_at(i, s, PP, SS, TH, ITH)
    dv = (PP[p, V_REST] - v) * PP[p, INV_TM] + (SS[i, IB] + ie + ii) / PP[p, C_M]
    th = 0.0
    dth = 0.0
    for k in range(TH.shape[1]):
        x = TH[i, k] * math.exp(-s * ITH[i, k])
        th += x
        dth -= x * ITH[i, k]
    return v - PP[p, V_TH] - th, dv - dth


@_jit
def _bounds(i, a, b, PP, SS, TH, ITH):
    """On ``[a, b]``: (upper bound of v minus lower bound of the threshold, lower bound of d/ds of the distance)."""
    p = _cls(SS, i)
    v, ie, ii = _state_at(i, a, PP, SS, TH, ITH)
    D = b - a
    c = PP[p, C_M]
    inv_tm = PP[p, INV_TM]
    i_e = SS[i, IB]
    syn_int = 0.0  # upper bound of the charge the positive currents can still deliver
    i_hi = 0.0  # largest synaptic current on the interval
    i_lo = 0.0  # smallest synaptic current on the interval
    if PP[p, IS_EXP]:
        for x, inv in ((ie, PP[p, INV_TE]), (ii, PP[p, INV_TI])):
            e = math.exp(-D * inv)
            if x > 0.0:
                syn_int += x * (-math.expm1(-D * inv)) / inv
                i_hi += x
                i_lo += x * e
            else:
                i_hi += x * e
                i_lo += x
    if inv_tm > 0.0:
        v_inf = PP[p, V_REST] + i_e / (c * inv_tm)
        u1 = max(v, v_inf) + syn_int / c
        w = v_inf + i_hi / (c * inv_tm)
        u2 = v + max(w - v, 0.0) * (-math.expm1(-D * inv_tm))
        u = min(u1, u2)
        dv_lo = (v_inf - u) * inv_tm + i_lo / c
    else:
        rate = max(i_e + i_hi, 0.0)
        u = v + rate * D / c if rate > 0.0 else v
        u = min(u, v + syn_int / c + (i_e * D / c if i_e > 0.0 else 0.0))
        dv_lo = (i_e + i_lo) / c
    th_lo = PP[p, V_TH]
    dth_hi = 0.0
    for k in range(TH.shape[1]):
        x = TH[i, k] * math.exp(-a * ITH[i, k])
        inv = ITH[i, k]
        e = math.exp(-D * inv)
        if x > 0.0:
            th_lo += x * e
            dth_hi -= x * inv * e
        else:
            th_lo += x
            dth_hi -= x * inv
    return u - th_lo, dv_lo - dth_hi


@_jit
def _newton(i, a, b, PP, SS, TH, ITH):
    """Root of the increasing distance on ``[a, b]`` (f(a) < 0 <= f(b)), to 1e-13 ms."""
    x = b
    for _ in range(200):
        fx, dfx = _fprime(i, x, PP, SS, TH, ITH)
        if fx >= 0.0:
            b = x
        else:
            a = x
        if b - a <= _TOL:
            return b
        nx = x - fx / dfx if dfx > 0.0 else 0.5 * (a + b)
        if not (a < nx < b):
            nx = 0.5 * (a + b)
        if abs(nx - x) <= _TOL:
            return nx  # converged: |root - nx| < 1e-13 ms
        x = nx
    return b


@_inline
def _never_crosses(i, PP, SS):
    """Cheap sufficient test (leaky delta neuron without adaptation, below threshold, not refractory,
    bias asymptote at or below threshold): no crossing without further input."""
    p = _cls(SS, i)
    if PP[p, IS_EXP] or PP[p, ADAPTIVE] or PP[p, INV_TM] == 0.0 or SS[i, TL] < SS[i, TR]:
        return False
    v_inf = PP[p, V_REST] + SS[i, IB] / (PP[p, C_M] * PP[p, INV_TM])
    return SS[i, V] < PP[p, V_TH] and v_inf <= PP[p, V_TH]


@_jit
def next_crossing(i, PP, SS, TH, ITH, stack):
    """Absolute time at which neuron ``i`` first reaches threshold without further input (inf: never)."""
    p = _cls(SS, i)
    tl = SS[i, TL]
    s0 = max(SS[i, TR] - tl, 0.0)
    if _f(i, s0, PP, SS, TH, ITH) >= 0.0:
        return tl + s0
    gap, _ = _bounds(i, s0, math.inf, PP, SS, TH, ITH)
    if gap < 0.0:
        return math.inf
    if not PP[p, IS_EXP] and not PP[p, ADAPTIVE]:  # closed form
        v0, _, _ = _state_at(i, s0, PP, SS, TH, ITH)
        vth = PP[p, V_TH]
        if PP[p, INV_TM] > 0.0:
            v_inf = PP[p, V_REST] + SS[i, IB] / (PP[p, C_M] * PP[p, INV_TM])
            if v_inf <= vth:
                return math.inf
            return tl + s0 + math.log1p((vth - v0) / (v_inf - vth)) / PP[p, INV_TM]
        if SS[i, IB] <= 0.0:
            return math.inf
        return tl + s0 + (vth - v0) * PP[p, C_M] / SS[i, IB]
    # a horizon beyond which no crossing can happen, or where the distance is >= 0
    H = PP[p, TAU_MAX]
    b = s0 + H
    for _ in range(200):
        b = s0 + H
        if _f(i, b, PP, SS, TH, ITH) >= 0.0:
            break
        gap, _ = _bounds(i, b, math.inf, PP, SS, TH, ITH)
        if gap < 0.0:
            break
        H *= 2.0
    else:
        return math.inf
    # leftmost root on [s0, b]: branch and bound, left half first
    sp = 0
    stack[0, 0] = s0
    stack[0, 1] = b
    sp = 1
    while sp > 0:
        sp -= 1
        a = stack[sp, 0]
        c = stack[sp, 1]
        gap, slope = _bounds(i, a, c, PP, SS, TH, ITH)
        if gap < 0.0:
            continue
        fc = _f(i, c, PP, SS, TH, ITH)
        if c - a <= _TOL:
            if fc >= 0.0:
                return tl + c
            continue
        if fc >= 0.0 and slope > 0.0:
            return tl + _newton(i, a, c, PP, SS, TH, ITH)
        if sp + 2 > stack.shape[0]:  # cannot happen with 256 levels of halving; be safe
            return tl + c if fc >= 0.0 else math.inf
        m = 0.5 * (a + c)
        stack[sp, 0] = m
        stack[sp, 1] = c
        stack[sp + 1, 0] = a
        stack[sp + 1, 1] = m
        sp += 2
    return math.inf


# ---------------------------------------------------------------------------- build helper
@njit(cache=True)
def synapse_order(pre, d, post, n_em):
    """The permutation that sorts synapses by emitter, then delay, then target, stable for equal
    triples: the same as ``np.lexsort((post, d, pre))``, in O(n) plus short per-emitter sorts.

    A counting sort by emitter keeps the input order within each emitter; each emitter's run is
    then sorted by ``(delay, target)``: by insertion (no work when already sorted, the usual case)
    for short runs, by two stable merge sorts for long ones.
    """
    n = pre.size
    start = np.zeros(n_em + 1, np.int64)
    for k in range(n):
        start[pre[k] + 1] += 1
    for e in range(n_em):
        start[e + 1] += start[e]
    fill = start[:-1].copy()
    order = np.empty(n, np.int64)
    for k in range(n):
        e = pre[k]
        order[fill[e]] = k
        fill[e] += 1
    for e in range(n_em):
        a = start[e]
        b = start[e + 1]
        if b - a <= 64:
            for j in range(a + 1, b):
                x = order[j]
                i = j - 1
                while i >= a and (d[order[i]] > d[x] or (d[order[i]] == d[x] and post[order[i]] > post[x])):
                    order[i + 1] = order[i]
                    i -= 1
                order[i + 1] = x
        else:
            run = order[a:b]
            run = run[np.argsort(post[run], kind="mergesort")]
            run = run[np.argsort(d[run], kind="mergesort")]
            for j in range(b - a):  # (an element loop: a slice assignment compiles its shape checks too)
                order[a + j] = run[j]
    return order


# ---------------------------------------------------------------------------- lazy update
@_inline
def advance_neuron(i, t, PP, SS, TH, ITH):
    """Bring neuron ``i`` to time ``t`` (ms) with the exact propagator."""
    s = t - SS[i, TL]
    if s <= 0.0:
        return
    v, ie, ii = _state_at(i, s, PP, SS, TH, ITH)
    SS[i, V] = v
    SS[i, IE] = ie
    SS[i, II] = ii
    for k in range(TH.shape[1]):
        TH[i, k] *= math.exp(-s * ITH[i, k])
    SS[i, TL] = t



@_jit
def _advance(i, t, PP, SS, TH, ITH):
    """:func:`advance_neuron` as a call, compiled once, for the sites outside the delivery loop."""
    advance_neuron(i, t, PP, SS, TH, ITH)


@_jit
def _state(i, s, PP, SS, TH, ITH):
    """:func:`_state_at` as a call, compiled once (state samples)."""
    return _state_at(i, s, PP, SS, TH, ITH)

# ---------------------------------------------------------------------------- queues
@_inline
def _less(t1, e1, g1, t2, e2, g2):
    if t1 != t2:
        return t1 < t2
    if e1 != e2:
        return e1 < e2
    return g1 < g2


@_inline
def heap_push(Q, n, t, e, g):
    """Push ``(t, e, g)`` (the arrays have room for it); returns the new size."""
    ht, he, hg = Q
    j = n
    while j > 0:
        p = (j - 1) >> 1
        if _less(t, e, g, ht[p], he[p], hg[p]):
            ht[j] = ht[p]
            he[j] = he[p]
            hg[j] = hg[p]
            j = p
        else:
            break
    ht[j] = t
    he[j] = e
    hg[j] = g
    return n + 1


@_inline
def heap_pop(Q, n):
    """Remove the smallest entry (the caller has read it at index 0); returns the new size."""
    ht, he, hg = Q
    n -= 1
    t, e, g = ht[n], he[n], hg[n]
    j = 0
    while True:
        c = 2 * j + 1
        if c >= n:
            break
        if c + 1 < n and _less(ht[c + 1], he[c + 1], hg[c + 1], ht[c], he[c], hg[c]):
            c += 1
        if _less(ht[c], he[c], hg[c], t, e, g):
            ht[j] = ht[c]
            he[j] = he[c]
            hg[j] = hg[c]
            j = c
        else:
            break
    if n > 0:
        ht[j] = t
        he[j] = e
        hg[j] = g
    return n


@_inline
def _xless(X, a, b):
    ka = X.key[a]
    kb = X.key[b]
    return ka < kb or (ka == kb and a < b)


@_inline
def _xswap(X, SS, p, q):
    a = X.heap[p]
    b = X.heap[q]
    X.heap[p] = b
    X.heap[q] = a
    SS[b, XPOS] = p
    SS[a, XPOS] = q


@_inline
def _xsift(X, SS, p):
    n = X.n[0]
    while p > 0:
        q = (p - 1) >> 1
        if _xless(X, X.heap[p], X.heap[q]):
            _xswap(X, SS, p, q)
            p = q
        else:
            break
    while True:
        c = 2 * p + 1
        if c >= n:
            break
        if c + 1 < n and _xless(X, X.heap[c + 1], X.heap[c]):
            c += 1
        if _xless(X, X.heap[c], X.heap[p]):
            _xswap(X, SS, p, c)
            p = c
        else:
            break


@_inline
def cross_set(X, SS, i, t):
    """Set neuron ``i``'s predicted crossing to ``t`` (inf removes it)."""
    p = np.int64(SS[i, XPOS])
    if t == math.inf:
        if p < 0:
            return
        n = X.n[0] - 1
        X.n[0] = n
        if p != n:
            _xswap(X, SS, p, n)
            SS[i, XPOS] = -1.0
            X.key[i] = t
            _xsift(X, SS, p)
        else:
            SS[i, XPOS] = -1.0
            X.key[i] = t
        return
    X.key[i] = t
    if p < 0:
        p = X.n[0]
        X.heap[p] = i
        SS[i, XPOS] = p
        X.n[0] = p + 1
    _xsift(X, SS, p)



@_jit
def _cross(X, SS, i, t):
    """:func:`cross_set` as a call, compiled once, for the sites outside the threshold tests."""
    cross_set(X, SS, i, t)

@_jit
def init_crossings(X, PP, SS, TH, ITH, stack):
    """Predict the first crossing of every neuron (before the first run)."""
    for i in range(SS.shape[0]):
        cross_set(X, SS, i, next_crossing(i, PP, SS, TH, ITH, stack))


@_inline
def poisson_interval(key0, key1, channel, k, rate):
    """The ``k``-th interval (ms) of Poisson channel ``channel`` at ``rate`` Hz: counter-based, so it
    depends only on the seed's key, the channel and ``k``."""
    words = group_words(key0, key1, np.int64(channel), np.int64(k) >> 2)
    return -math.log(u01(pick(words, k & 3))) * 1000.0 / rate


@_jit
def poisson_start(rate, count, nxt, key0, key1):
    """First emission time (ms) of every Poisson channel (rate > 0)."""
    for c in range(rate.size):
        if rate[c] > 0.0:
            nxt[c] = poisson_interval(key0, key1, c, 0, rate[c])
            count[c] = 1


@_jit
def poisson_window(rate, count, nxt, key0, key1, t_hi, out_t, out_c):
    """Emissions of every Poisson channel before ``t_hi`` (ms), channel by channel in time order.

    ``nxt[c]`` is channel ``c``'s next emission time and ``count[c]`` the
    number of intervals drawn so far (the next emission after ``nxt[c]`` is
    ``nxt[c] + poisson_interval(..., c, count[c], ...)``).  With ``out_t``
    of size 0 nothing changes and the number of emissions is returned;
    otherwise they are written to ``out_t``/``out_c`` (which have exactly
    that size) and ``nxt``/``count`` advance past them.
    """
    write = out_t.size > 0
    m = 0
    for c in range(rate.size):
        r = rate[c]
        if r <= 0.0:
            continue
        t = nxt[c]
        k = count[c]
        while t < t_hi:
            if write:
                out_t[m] = t
                out_c[m] = c
            m += 1
            t = t + poisson_interval(key0, key1, c, k, r)
            k += 1
        if write:
            nxt[c] = t
            count[c] = k
    return m


@_inline
def _touch(SS, M, i, npend):
    """Add neuron ``i`` to the neurons tested after the current batch of same-time deliveries."""
    if not _marked(SS, i):
        SS[i, CM] += 1.0
        M.lst[npend] = i
        npend += 1
    return npend


# ---------------------------------------------------------------------------- the loop
@_inline
def _emit(Q, n, G, e, t):
    for g in range(G.gptr[e], G.gptr[e + 1]):
        n = heap_push(Q, n, t + G.gdel[g], e, g)
    return n


@_inline
def _spike(i, t, PP, SS, TH, DTH, G, Q, n, R):
    """Neuron ``i`` (advanced to ``t``) spikes at ``t``."""
    p = _cls(SS, i)
    if PP[p, RECORD]:
        k = R.n[0]
        R.t[k] = t
        R.i[k] = i
        R.n[0] = k + 1
    th = 0.0
    for k in range(TH.shape[1]):
        th += TH[i, k]
    SS[i, V] = reset_voltage(SS[i, V], PP[p, RESET_MODE], PP[p, V_RESET], PP[p, V_REST], PP[p, V_TH] + th,
                           PP[p, RESET_M], PP[p, RESET_B])
    for k in range(TH.shape[1]):
        TH[i, k] += DTH[i, k]
    SS[i, TR] = t + PP[p, T_REF]
    return _emit(Q, n, G, i, t)


@_jit
def run_event(t_end, PP, SS, TH, ITH, DTH, G, SRC, X, Q, qn, qroom, R, M, counters, stack, sample_t, RS):
    """Process every event with time <= ``t_end`` (ms).

    ``qroom`` is the largest number of delay groups of one emitter (the
    entries one spike pushes).  Returns ``(qn, status)``: status 0 = reached
    ``t_end``, 1 = the spike buffer is nearly full, 2 = the sample buffer is
    full (call again after emptying them), 3 = the event heap may overflow
    (call again after growing it), 4 = the Poisson stream needs its next
    window; nothing is lost.  ``M.n[0] == npend`` (the neurons awaiting their
    threshold test) holds at the top of every iteration, so a return there
    leaves them pending for the next call.
    """
    cap_q = Q[0].size
    N = SS.shape[0]
    cap = R.t.size
    npend = M.n[0]
    tb = M.tb[0]
    while True:
        tc = X.key[X.heap[0]] if X.n[0] > 0 else math.inf
        te = Q[0][0] if qn > 0 else math.inf
        pos = SRC.spos[0]
        streamed = False  # the next event is the emission of a Poisson channel
        if pos < SRC.spos[1]:
            ts = SRC.st[pos]
            if qn == 0 or _less(ts, N + SRC.sc[pos], -1, te, Q[1][0], Q[2][0]):
                te = ts
                streamed = True
        elif SRC.win[1] > 0.0 and SRC.win[0] <= t_end:
            return qn, 4  # the Poisson emissions of the next window are needed
        tnext = min(tc, te)
        if npend > 0 and tnext > tb:
            # end of the deliveries at tb: threshold tests, then new predictions
            if R.n[0] + npend + 1 > cap:
                return qn, 1
            for j in range(npend):
                if qn + qroom > cap_q:  # keep the untested neurons for the next call
                    for jj in range(j, npend):
                        M.lst[jj - j] = M.lst[jj]
                    M.n[0] = npend - j
                    return qn, 3
                i = M.lst[j]
                SS[i, CM] -= 1.0
                p = _cls(SS, i)
                if not PP[p, IS_EXP] and tb >= SS[i, TR]:
                    th = 0.0
                    for k in range(TH.shape[1]):
                        th += TH[i, k]
                    if SS[i, V] >= PP[p, V_TH] + th:
                        qn = _spike(i, tb, PP, SS, TH, DTH, G, Q, qn, R)
                tx = math.inf if _never_crosses(i, PP, SS) else next_crossing(i, PP, SS, TH, ITH, stack)
                cross_set(X, SS, i, tx)
            npend = 0
            M.n[0] = 0
            continue
        # state samples due before the next event
        ts = sample_t[0]
        if RS.idx.size > 0 and ts <= t_end and ts < tnext:
            c = RS.cnt[0]
            if (c + 1) * RS.idx.size > RS.buf.size:
                return qn, 2
            base = c * RS.idx.size
            for j in range(RS.idx.size):
                i = RS.idx[j]
                p = _cls(SS, i)
                s = ts - SS[i, TL]
                v, ie, ii = _state(i, s, PP, SS, TH, ITH)
                code = RS.var[j]
                if code == 0:
                    x = v
                elif code == 1:
                    x = ie
                elif code == 2:
                    x = ii
                else:
                    x = _theta_at(i, s, PP, SS, TH, ITH)
                    if code == 4:
                        x += PP[p, V_TH]
                RS.buf[base + j] = x
            RS.cnt[0] = c + 1
            sample_t[1] += 1.0
            sample_t[0] = sample_t[1] * sample_t[2]
            continue
        if tnext > t_end:
            break
        if R.n[0] + 2 > cap:
            return qn, 1
        if qn + qroom + 1 > cap_q:
            return qn, 3
        if tc <= te:
            i = X.heap[0]
            _cross(X, SS, i, math.inf)
            _advance(i, tc, PP, SS, TH, ITH)
            qn = _spike(i, tc, PP, SS, TH, DTH, G, Q, qn, R)
            _cross(X, SS, i, next_crossing(i, PP, SS, TH, ITH, stack))
            continue
        if streamed:  # emission of a Poisson channel
            SRC.spos[0] = pos + 1
            qn = _emit(Q, qn, G, N + SRC.sc[pos], te)
            continue
        e = Q[1][0]
        g = Q[2][0]
        qn = heap_pop(Q, qn)
        if g < -1:  # a DC channel switches on (-2) or off (-3): the bias of its targets changes
            tb = te
            M.tb[0] = te
            for gg in range(G.gptr[e], G.gptr[e + 1]):
                for s in range(G.sptr[gg], G.sptr[gg + 1]):
                    i = G.tgt[s]
                    _advance(np.int64(i), te, PP, SS, TH, ITH)  # (one signature: targets are int32)
                    SS[i, IB] += G.w[s] if g == -2 else -G.w[s]
                    npend = _touch(SS, M, i, npend)
            M.n[0] = npend
            continue
        if g < 0:  # emission of a source channel with explicit spike times
            qn = _emit(Q, qn, G, e, te)
            c = e - N
            p = SRC.ptr[c] + 1
            SRC.ptr[c] = p
            if p < SRC.sptr[c + 1]:
                qn = heap_push(Q, qn, SRC.times[p], e, -1)
            continue
        # delivery of emitter e's spike through group g
        tb = te
        M.tb[0] = te
        a = G.sptr[g]
        b = G.sptr[g + 1]
        counters[1 if e >= N else 0] += b - a
        for s in range(a, min(a + _AHEAD, b)):
            prefetch_row(SS, G.tgt[s])
        for s in range(a, b):
            if s + _AHEAD < b:
                prefetch_row(SS, G.tgt[s + _AHEAD])
            i = G.tgt[s]
            w = G.w[s]
            advance_neuron(i, te, PP, SS, TH, ITH)
            if PP[_cls(SS, i), IS_EXP]:
                if w >= 0.0:
                    SS[i, IE] += w
                else:
                    SS[i, II] += w
            elif te >= SS[i, TR]:
                SS[i, V] += w
            npend = _touch(SS, M, i, npend)
        M.n[0] = npend
    return qn, 0
