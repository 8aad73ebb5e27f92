"""Slow, obviously-correct continuous-time reference of LIF networks, for tests only.

An event-driven simulation in plain Python/NumPy (float64) of LIF neurons
with delta synapses (voltage jumps, mV) or exponential current synapses
(pA), with spike times that are not tied to any grid.  It implements the
semantics of NEST's precise-timing models ``iaf_psc_delta_ps`` and
``iaf_psc_exp_ps`` as documented in ``generate_nest_ps_reference.py``:

* Between events the state follows the closed-form solution of

  .. math::

      \\frac{dv}{dt} = -\\frac{v - v_{rest}}{\\tau_m} + \\frac{I_{ex} + I_{in} + I_e}{C_m},\\qquad
      \\frac{dI_x}{dt} = -\\frac{I_x}{\\tau_{syn,x}}

  (delta synapses: no :math:`I_{ex}, I_{in}`).
* A spike is emitted at the first time :math:`v \\ge v_{th}`.  Delta
  synapses: the crossing driven by :math:`I_e` between two inputs is solved in
  closed form, :math:`t = \\tau_m \\log((u_\\infty - u_0)/(u_\\infty - u_{th}))`;
  a jump that reaches the threshold spikes at the arrival time itself.
  Exponential synapses: the first crossing of the free trajectory is located
  by dense sampling (also of :math:`dv/dt`, so that a maximum that pokes
  above threshold between samples is found) and bisection to ~1e-14 ms.
* After a spike, v is reset and clamped for ``t_ref`` ms.  Delta synapses:
  inputs arriving while refractory are discarded.  Exponential synapses: the
  currents keep decaying and keep taking up input during refractoriness.
* At equal times the order is: end of refractoriness, then threshold
  crossings, then input arrivals.  Delta synapses: all inputs that reach a
  neuron at exactly the same time are summed before the threshold test
  (``sum_coincident=False`` applies them one by one, in storage order).
  Exponential synapses: each input goes to I_ex if its weight is >= 0, else
  to I_in.

Only NumPy and the standard library are used, so the NEST generator script
can use it too.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

_END_REF, _CROSS, _ARRIVAL = 0, 1, 2
_BISECT_ITER = 200


def _psc_factor(s, tau_m, tau_x):
    """Response of u (per unit current over C_m, i.e. ms) at s to a current e^{-s/tau_x}.

    ``int_0^s exp(-(s-r)/tau_m) exp(-r/tau_x) dr``; exact at tau_x == tau_m.
    """
    a = 1.0 / tau_m - 1.0 / tau_x
    s = np.asarray(s, dtype=np.float64)
    e_m = np.exp(-s / tau_m)
    if a == 0.0:
        return s * e_m
    x = s * a
    small = np.abs(x) < 1.0
    near = e_m * np.expm1(np.where(small, x, 0.0)) / a
    far = (np.exp(-s / tau_x) - e_m) / a
    return np.where(small, near, far)


def _psc_scalar(s, tau_m, tau_x):
    """Scalar :func:`_psc_factor`."""
    a = 1.0 / tau_m - 1.0 / tau_x
    if a == 0.0:
        return s * math.exp(-s / tau_m)
    x = s * a
    if abs(x) < 1.0:
        return math.exp(-s / tau_m) * math.expm1(x) / a
    return (math.exp(-s / tau_x) - math.exp(-s / tau_m)) / a


class _Neuron:
    __slots__ = ("tau_m", "c_m", "u_inf", "u_th", "u_reset", "t_ref", "tau_ex", "tau_in",
                 "t", "u", "i_ex", "i_in", "ref", "version")


def simulate(params, t_stop, ext, conn=None, sum_coincident=True):
    """Simulate and return the spikes ``(senders, times)`` with times <= t_stop, sorted by time.

    Parameters
    ----------
    params : mapping of arrays (n,)
        ``tau_m, c_m, v_rest, v_reset, v_th, t_ref, i_e, v_init`` and, for
        exponential synapses, ``tau_syn_ex, tau_syn_in`` (all NaN, or absent,
        for delta synapses).  Units ms, pF, mV, pA.
    t_stop : float
        End of the simulation (ms); spikes at ``t <= t_stop`` are returned.
    ext : (post, time, weight)
        External inputs already at their arrival times (ms), any order.
    conn : (pre, post, weight, delay), optional
        Recurrent synapses among the neurons; a spike at t arrives at t + delay.
    sum_coincident : bool
        Delta synapses: sum inputs that arrive at the same time before the
        threshold test (NEST's ``iaf_psc_delta_ps``).
    """
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    n = p["tau_m"].size
    exp_syn = "tau_syn_ex" in p and not np.all(np.isnan(p["tau_syn_ex"]))
    neurons = []
    for i in range(n):
        nr = _Neuron()
        nr.tau_m, nr.c_m, nr.t_ref = float(p["tau_m"][i]), float(p["c_m"][i]), float(p["t_ref"][i])
        v_rest = float(p["v_rest"][i])
        nr.u_inf = float(p["i_e"][i]) * nr.tau_m / nr.c_m
        nr.u_th = float(p["v_th"][i]) - v_rest
        nr.u_reset = float(p["v_reset"][i]) - v_rest
        nr.tau_ex = float(p["tau_syn_ex"][i]) if exp_syn else math.nan
        nr.tau_in = float(p["tau_syn_in"][i]) if exp_syn else math.nan
        nr.t, nr.u, nr.i_ex, nr.i_in = 0.0, float(p["v_init"][i]) - v_rest, 0.0, 0.0
        nr.ref, nr.version = False, 0
        if nr.u >= nr.u_th:
            raise ValueError(f"neuron {i} starts at or above threshold")
        neurons.append(nr)

    out = [[] for _ in range(n)]
    if conn is not None:
        c_pre, c_post, c_w, c_d = (np.asarray(a) for a in conn)
        for k in np.argsort(c_pre, kind="stable"):
            out[int(c_pre[k])].append((int(c_post[k]), float(c_w[k]), float(c_d[k])))

    e_post, e_time, e_w = (np.asarray(a) for a in ext)
    order = np.lexsort((np.arange(e_time.size), e_time))
    # next external arrival per neuron (bounds the window of the threshold search)
    ext_times = [[] for _ in range(n)]
    heap = []
    seq = 0
    for k in order:
        i, t = int(e_post[k]), float(e_time[k])
        if t > t_stop:
            continue
        heap.append((t, _ARRIVAL, i, seq, float(e_w[k]), True))
        ext_times[i].append(t)
        seq += 1
    heapq.heapify(heap)
    ext_ptr = [0] * n

    def next_ext(i):
        k = ext_ptr[i]
        return ext_times[i][k] if k < len(ext_times[i]) else math.inf

    def propagate(nr, t):
        s = t - nr.t
        if s > 0.0:
            if not nr.ref:
                if exp_syn:
                    nr.u = (nr.u_inf + (nr.u - nr.u_inf) * math.exp(-s / nr.tau_m)
                            + (nr.i_ex * _psc_scalar(s, nr.tau_m, nr.tau_ex)
                               + nr.i_in * _psc_scalar(s, nr.tau_m, nr.tau_in)) / nr.c_m)
                else:
                    nr.u = nr.u + (nr.u_inf - nr.u) * -math.expm1(-s / nr.tau_m)
            if exp_syn:
                nr.i_ex *= math.exp(-s / nr.tau_ex)
                nr.i_in *= math.exp(-s / nr.tau_in)
        nr.t = t

    def u_at(nr, s):
        u = nr.u_inf + (nr.u - nr.u_inf) * np.exp(-s / nr.tau_m)
        if exp_syn:
            u = u + (nr.i_ex * _psc_factor(s, nr.tau_m, nr.tau_ex)
                     + nr.i_in * _psc_factor(s, nr.tau_m, nr.tau_in)) / nr.c_m
        return u

    def du_at(nr, s, u):
        cur = nr.u_inf * nr.c_m / nr.tau_m
        if exp_syn:
            cur = cur + nr.i_ex * np.exp(-s / nr.tau_ex) + nr.i_in * np.exp(-s / nr.tau_in)
        return -u / nr.tau_m + cur / nr.c_m

    def u_scalar(nr, s):
        u = nr.u_inf + (nr.u - nr.u_inf) * math.exp(-s / nr.tau_m)
        if exp_syn:
            u += (nr.i_ex * _psc_scalar(s, nr.tau_m, nr.tau_ex)
                  + nr.i_in * _psc_scalar(s, nr.tau_m, nr.tau_in)) / nr.c_m
        return u

    def du_scalar(nr, s):
        cur = nr.u_inf * nr.c_m / nr.tau_m
        if exp_syn:
            cur += nr.i_ex * math.exp(-s / nr.tau_ex) + nr.i_in * math.exp(-s / nr.tau_in)
        return -u_scalar(nr, s) / nr.tau_m + cur / nr.c_m

    def bisect(f, lo, hi):
        """f(lo) False, f(hi) True: the smallest float where f turns True (to rounding)."""
        for _ in range(_BISECT_ITER):
            mid = 0.5 * (lo + hi)
            if mid <= lo or mid >= hi:
                break
            if f(mid):
                hi = mid
            else:
                lo = mid
        return hi

    def first_crossing(nr, length):
        """Offset s in (0, length] of the first u(s) >= u_th, or None."""
        if not exp_syn:
            if nr.u_inf <= nr.u_th:
                return None
            s = nr.tau_m * math.log((nr.u_inf - nr.u) / (nr.u_inf - nr.u_th))
            return s if s <= length else None
        # cheap upper bound: the leak term stays below max(u, u_inf), I_in <= 0
        # only lowers u, and I_ex adds at most i_ex * min(s, tau_ex) / C_m
        bound = max(nr.u, nr.u_inf) + max(nr.i_ex, 0.0) * min(length, nr.tau_ex) / nr.c_m
        if bound < nr.u_th:
            return None
        tau_min = min(nr.tau_m, nr.tau_ex, nr.tau_in)
        k = max(8, int(math.ceil(length / (tau_min / 16.0))))
        s = np.linspace(0.0, length, k + 1)
        u = u_at(nr, s)
        du = du_at(nr, s, u)
        above = u >= nr.u_th
        peak = (du[:-1] > 0) & (du[1:] <= 0) & ~above[1:]
        cand = np.flatnonzero(above[1:] | peak)
        for j in cand:
            lo, hi = float(s[j]), float(s[j + 1])
            if not above[j + 1]:
                top = bisect(lambda x: du_scalar(nr, x) <= 0.0, lo, hi)
                if u_scalar(nr, top) < nr.u_th:
                    continue
                hi = top
            return bisect(lambda x: u_scalar(nr, x) >= nr.u_th, lo, hi)
        return None

    def predict(i):
        nr = neurons[i]
        nr.version += 1
        if nr.ref:
            return
        horizon = min(next_ext(i), t_stop)
        if horizon <= nr.t:
            return
        s = first_crossing(nr, horizon - nr.t)
        if s is not None:
            heapq.heappush(heap, (nr.t + s, _CROSS, i, 0, float(nr.version), False))

    def fire(i, t):
        nonlocal seq
        nr = neurons[i]
        propagate(nr, t)
        spikes.append((t, i))
        nr.u, nr.ref = nr.u_reset, True
        nr.version += 1
        heapq.heappush(heap, (t + nr.t_ref, _END_REF, i, 0, 0.0, False))
        for post, w, d in out[i]:
            if t + d <= t_stop:
                heapq.heappush(heap, (t + d, _ARRIVAL, post, seq, w, False))
                seq += 1

    spikes = []
    for i in range(n):
        predict(i)
    while heap:
        t, kind, i, _, payload, is_ext = heapq.heappop(heap)
        if t > t_stop:
            break
        nr = neurons[i]
        if kind == _END_REF:
            propagate(nr, t)
            nr.ref = False
            nr.u = nr.u_reset
            predict(i)
        elif kind == _CROSS:
            if payload == nr.version and not nr.ref:
                fire(i, t)
        else:
            weights = [payload]
            if is_ext:
                ext_ptr[i] += 1
            if not exp_syn and sum_coincident:
                while heap and heap[0][0] == t and heap[0][1] == _ARRIVAL and heap[0][2] == i:
                    _, _, _, _, w2, ext2 = heapq.heappop(heap)
                    weights.append(w2)
                    if ext2:
                        ext_ptr[i] += 1
                weights = [math.fsum(weights)] if len(weights) > 1 else weights
            propagate(nr, t)
            if exp_syn:
                for w in weights:
                    if w >= 0.0:
                        nr.i_ex += w
                    else:
                        nr.i_in += w
                predict(i)
            elif not nr.ref:
                nr.u += weights[0]
                if nr.u >= nr.u_th:
                    fire(i, t)
                else:
                    predict(i)
            else:
                predict(i)
    spikes.sort()
    times = np.array([s[0] for s in spikes], dtype=np.float64)
    senders = np.array([s[1] for s in spikes], dtype=np.int64)
    return senders, times


def match_spikes(ref_senders, ref_times, senders, times, tol):
    """Greedy one-to-one matching of spikes by sender within ``tol`` ms.

    Returns ``(matched, max_abs_dt)``: the number of reference spikes that
    found a partner, and the largest time difference among the matches.
    """
    matched, worst = 0, 0.0
    ref_senders, senders = np.asarray(ref_senders), np.asarray(senders)
    for s in np.union1d(np.unique(ref_senders), np.unique(senders)):
        a = np.sort(np.asarray(ref_times)[ref_senders == s])
        b = np.sort(np.asarray(times)[senders == s])
        i = j = 0
        while i < a.size and j < b.size:
            d = b[j] - a[i]
            if abs(d) <= tol:
                matched += 1
                worst = max(worst, abs(d))
                i += 1
                j += 1
            elif d < 0:
                j += 1
            else:
                i += 1
    return matched, worst
