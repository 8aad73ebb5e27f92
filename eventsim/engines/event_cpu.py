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
target's state row ``SS[i]`` (one 64-byte cache line with three state slots); parameters are shared
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

The neuron model is the family's (:mod:`eventsim.models.family`, the event
engine's contract): the engine is generic over the families present, whose
functions it calls through the ``event_*`` functions of that module with
the tuple of their tags ``fams`` (a compile-time argument) and the family
code of the neuron's parameter row.  A family says how its state evolves
between events, how an input changes it, whether an input makes the neuron
spike at once, how it resets, and when its free trajectory first reaches
threshold (e.g. :mod:`eventsim.models.iaf_event` for LIF, IF and ALIF).

A spike of neuron ``i`` at ``t``: recorded, the family's reset, the
refractory period ``[t, t + PP[p, T_REF])`` (``SS[i, TR]``), then one heap
entry per delay group of its synapses.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import _compile  # noqa: F401  (announces the first compilation of the engine's kernels)
from ..models.family import (CM, FAMILY, IB, N_PARAMS, RECORD, T_REF, TL, TR, XPOS,
                              event_advance, event_fires, event_multiplicity, event_never_crosses, event_next_crossing,
                              event_receive, event_reset, event_sample, event_row)
from ..rng import group_words, pick, u01
from ._intrinsics import prefetch_row
from .clock_cpu import MULT_SHIFT
from .csr import counting_order

#: The kernels never allocate (the caller grows the queues and buffers when they ask for it), so
#: they are compiled without Numba's reference counting: with it, every array argument and
#: tuple field costs atomic increments and decrements, a fifth of the run time.
_jit = njit(cache=True, _nrt=False)
#: Helpers of the inner loops are inlined by Numba into each caller; the families' crossing searches and the
#: rare sites of the main loop (crossings, DC switches, state samples) call functions compiled once instead
#: (``_advance``, ``_cross``, ``sample``): every inlined copy is typed and optimised again, and calls there cost
#: little, so the engine compiles in about 40% of the time it took with everything inlined.
_inline = njit(cache=True, inline="always")

#: Purpose tag of the Poisson intervals of the event engine (mixed into the key).
POISSON_EVENT = 0x5EED0003

# The layout of the parameter table ``PP[n_classes, N_PARAMS]`` and of the state rows ``SS[N, W]`` (float64) is
# :mod:`eventsim.models.family`'s (re-exported here: FAMILY, RECORD, T_REF; TL, TR, IB, CM, XPOS).  Neurons with identical parameters share one row (a *class*); a neuron's class is stored in its state
# row (``SS[i, CM] = 2 * class + mark``, the mark: has input at the current time), so that a homogeneous
# population of any size reads its parameters from one cached row, and everything an incoming spike touches of
# its target is in one state row (64 bytes with three slots).  Integers are exact in float64.
__all__ = ["CM", "FAMILY", "IB", "N_PARAMS", "RECORD", "T_REF", "TL", "TR", "XPOS"]

_AHEAD = 8  # targets whose state row is prefetched ahead of the delivery loop


# ---------------------------------------------------------------------------- state evaluation
_cls = event_row


@_inline
def _marked(SS, i):
    """Whether neuron ``i`` received input at the current time (and awaits its threshold test)."""
    return (np.int64(SS[i, CM]) & 1) == 1


@_jit
def next_crossing(fams, i, PP, SS, TH, ITH, stack):
    """Absolute time at which neuron ``i`` first reaches threshold without further input (inf: never)."""
    p = _cls(SS, i)
    return event_next_crossing(fams, PP[p, FAMILY], i, p, PP, SS, TH, ITH, stack)


@_jit
def sample(fams, i, s, var, PP, SS, TH, ITH):
    """Recorded variable ``var`` (:data:`eventsim.engines.clock_cpu.VAR_CODES`) of neuron ``i`` at ``s`` ms
    after its last event (no side effect)."""
    p = _cls(SS, i)
    return event_sample(fams, PP[p, FAMILY], i, p, s, var, PP, SS, TH, ITH)


# ---------------------------------------------------------------------------- build helper
@njit(cache=True)
def synapse_order(pre, d, post, n_em):
    """The permutation that sorts synapses by emitter, then delay, then target, stable for equal
    triples: the same as ``np.lexsort((post, d, pre))``, in O(n) plus short per-emitter sorts.

    A counting sort by emitter keeps the input order within each emitter; each emitter's run is
    then sorted by ``(delay, target)``: by insertion (no work when already sorted, the usual case)
    for short runs, by two stable merge sorts for long ones.
    """
    order, start = counting_order(pre, n_em, np.arange(pre.size, dtype=np.int64))
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
def advance_neuron(fams, i, t, PP, SS, TH, ITH):
    """Bring neuron ``i`` to time ``t`` (ms) with its family's exact propagator."""
    s = t - SS[i, TL]
    if s <= 0.0:
        return
    p = _cls(SS, i)
    event_advance(fams, PP[p, FAMILY], i, p, s, PP, SS, TH, ITH)
    SS[i, TL] = t


@_jit
def _advance(fams, i, t, PP, SS, TH, ITH):
    """:func:`advance_neuron` as a call, compiled once, for the sites outside the delivery loop."""
    advance_neuron(fams, i, t, PP, SS, TH, ITH)


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
def init_crossings(fams, X, PP, SS, TH, ITH, stack):
    """Predict the first crossing of every neuron (before the first run)."""
    for i in range(SS.shape[0]):
        cross_set(X, SS, i, next_crossing(fams, i, PP, SS, TH, ITH, stack))


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
def _spike(fams, i, t, PP, SS, TH, DTH, G, Q, n, R):
    """Neuron ``i`` (advanced to ``t``) spikes at ``t``: ``m`` spikes at once for a family that sends several
    (:func:`~eventsim.models.family.event_multiplicity`, a parrot's), each delivered as its own event (a
    parrot behind it counts them all) and recorded once with ``m`` in the id (``clock_cpu.MULT_SHIFT``)."""
    p = _cls(SS, i)
    m = np.int64(event_multiplicity(fams, PP[p, FAMILY], i, p, PP, SS))
    if PP[p, RECORD]:
        k = R.n[0]
        R.t[k] = t
        R.i[k] = i | ((m - 1) << MULT_SHIFT)
        R.n[0] = k + 1
    event_reset(fams, PP[p, FAMILY], i, p, t, PP, SS, TH, DTH)
    SS[i, TR] = t + PP[p, T_REF]
    for _ in range(m):
        n = _emit(Q, n, G, i, t)
    return n


@_jit
def run_event(fams, t_end, PP, SS, TH, ITH, DTH, G, SRC, X, Q, qn, qroom, R, M, counters, stack, sample_t, RS):
    """Process every event with time <= ``t_end`` (ms); ``fams``: the tags of the families present
    (:func:`eventsim.models.family.tags`).

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
                i = M.lst[j]
                p = _cls(SS, i)
                code = PP[p, FAMILY]
                # (a spike of multiplicity m pushes m times the emitter's groups)
                if qn + qroom * max(event_multiplicity(fams, code, i, p, PP, SS), 1) > cap_q:
                    # keep the untested neurons for the next call
                    for jj in range(j, npend):
                        M.lst[jj - j] = M.lst[jj]
                    M.n[0] = npend - j
                    return qn, 3
                SS[i, CM] -= 1.0
                if event_fires(fams, code, i, p, tb, PP, SS, TH):
                    qn = _spike(fams, i, tb, PP, SS, TH, DTH, G, Q, qn, R)
                if event_never_crosses(fams, code, i, p, PP, SS):
                    tx = math.inf
                else:
                    tx = next_crossing(fams, i, PP, SS, TH, ITH, stack)
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
                RS.buf[base + j] = sample(fams, i, ts - SS[i, TL], RS.var[j], PP, SS, TH, ITH)
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
            _advance(fams, i, tc, PP, SS, TH, ITH)
            qn = _spike(fams, i, tc, PP, SS, TH, DTH, G, Q, qn, R)
            _cross(X, SS, i, next_crossing(fams, i, PP, SS, TH, ITH, stack))
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
                    _advance(fams, np.int64(i), te, PP, SS, TH, ITH)  # (one signature: targets are int32)
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
        port = np.int64(G.gport[g])
        for s in range(a, min(a + _AHEAD, b)):
            prefetch_row(SS, G.tgt[s])
        for s in range(a, b):
            if s + _AHEAD < b:
                prefetch_row(SS, G.tgt[s + _AHEAD])
            i = G.tgt[s]
            w = G.w[s]
            p = _cls(SS, i)
            code = PP[p, FAMILY]
            s_adv = te - SS[i, TL]
            if s_adv > 0.0:
                event_advance(fams, code, i, p, s_adv, PP, SS, TH, ITH)
                SS[i, TL] = te
            event_receive(fams, code, i, p, te, w, port, PP, SS)
            npend = _touch(SS, M, i, npend)
        M.n[0] = npend
    return qn, 0
