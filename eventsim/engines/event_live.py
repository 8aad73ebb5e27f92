"""Kernels of the event engine's changes between runs (see ``EventPlan.refresh``).

Small loops over the engine's arrays that the plan runs when it takes over
the state of the previous plan: they never run inside a simulation step.
"""

from __future__ import annotations

import math

from numba import njit

from .event_cpu import XPOS, cross_set, heap_push, next_crossing, poisson_interval

_jit = njit(cache=True, _nrt=False)


@_jit
def heap_fill(Q, t, e, g):
    """Push the entries ``(t[k], e[k], g[k])`` into the empty event heap ``Q`` (it has room for them);
    returns its size.  The order of the pushes does not matter: keys are unique or identical in content."""
    n = 0
    for k in range(t.size):
        n = heap_push(Q, n, t[k], e[k], g[k])
    return n


@_jit
def crossings_from_keys(X, SS, key):
    """Fill the crossing heap with the predicted crossing times ``key`` (ms; inf: none) of every
    neuron (the heap's pop order depends on the keys only: ties go by neuron index)."""
    X.n[0] = 0
    for i in range(SS.shape[0]):
        SS[i, XPOS] = -1.0
        X.key[i] = math.inf
    for i in range(SS.shape[0]):
        if key[i] < math.inf:
            cross_set(X, SS, i, key[i])


@_jit
def predict_crossings(fams, ids, X, PP, SS, TH, ITH, stack):
    """Predict the next threshold crossing of neurons ``ids`` again (after their state or parameters changed)."""
    for j in range(ids.size):
        i = ids[j]
        cross_set(X, SS, i, next_crossing(fams, i, PP, SS, TH, ITH, stack))


@_jit
def poisson_restart(chans, rate, count, nxt, key0, key1, t):
    """Poisson channels ``chans`` start again at ``t`` (ms): the next emission of each is drawn from
    ``t`` at its (new) rate (Hz) with its interval counter ``count[c]`` (none if the rate is 0)."""
    for j in range(chans.size):
        c = chans[j]
        if rate[c] > 0.0:
            nxt[c] = t + poisson_interval(key0, key1, c, count[c], rate[c])
            count[c] += 1
        else:
            nxt[c] = math.inf


@_jit
def same_groups(gptr_a, gdel_a, gport_a, sptr_a, tgt_a, w_a, gptr_b, gdel_b, gport_b, sptr_b, tgt_b, w_b, em_b, out):
    """``out[e]``: emitter ``e`` of graph a has the same delay groups (delays, ports, targets, weights) as
    emitter ``em_b[e]`` of graph b."""
    for e in range(out.size):
        f = em_b[e]
        na = gptr_a[e + 1] - gptr_a[e]
        same = na == gptr_b[f + 1] - gptr_b[f]
        k = 0
        while same and k < na:
            ga = gptr_a[e] + k
            gb = gptr_b[f] + k
            m = sptr_a[ga + 1] - sptr_a[ga]
            if gdel_a[ga] != gdel_b[gb] or gport_a[ga] != gport_b[gb] or m != sptr_b[gb + 1] - sptr_b[gb]:
                same = False
                break
            for s in range(m):
                if tgt_a[sptr_a[ga] + s] != tgt_b[sptr_b[gb] + s] or w_a[sptr_a[ga] + s] != w_b[sptr_b[gb] + s]:
                    same = False
                    break
            k += 1
        out[e] = same
