"""Plastic synapses in the clock engine: their layout, the postsynaptic spike history and the kernels.

Layout (built by :func:`build`): the plastic synapses of all projections
with a ``synapse=`` rule, in rows by presynaptic neuron, each row sorted by
target neuron, and split per thread partition (``split[i, t]``: the first
synapse of row ``i`` whose target ``t`` owns), exactly like the static
synapses.  Per synapse: target neuron (int32), delay (int16 steps), rule
(uint8) and weight (the network's weight dtype): 15 bytes with float64
weights.  The ring column follows from the target and the sign of the
weight at delivery (NEST's receptor choice): the neuron's own column, or,
for a negative weight onto a neuron with separate receptors (exponential
synapses), its inhibitory column ``neg[n]`` further on; onto receptor ports
(``connect(..., receptor=k)``) the port's block, ``port[r] = k N`` columns
further, whatever the sign (rule rows are per port:
``(generation, rule, receptor)``, :func:`row_key`).

Who writes what (no atomics, results independent of the thread count):

* a synapse's weight is read and written only by the thread that owns its
  target, when a spike of its presynaptic neuron is delivered (NEST's
  convention: the update made at delivery uses the postsynaptic spikes up to
  the spike's arrival minus the dendritic delay, here the whole delay);
* a neuron's spike history (stamps and ``K_-`` per rule, a ring of ``H``
  entries) is written by its owner when its spikes are delivered, and read
  by the same owner for its incoming synapses;
* the presynaptic state (``K_+`` per rule and the last spike time) is a
  function of the sender's spike train: every thread keeps its own copy
  (``kp[t]``, ``tl[t]``) and updates it for every spike of every plastic
  sender, after the spike's synapses in its partition, so all copies stay
  equal; copy 0 is the one saved and read.

History entries a synapse may still need are never overwritten: before
each chunk the host grows the rings and bounds the chunk's length
(:func:`room`) so that the entries newer than the oldest one any synapse
can still ask for fit, whatever the neurons do in the chunk.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from ..models.plasticity import (MAX_TRACES, depress, facilitate, n_post, n_pre, post_after_spike, post_decay,
                                 pre_after_spike, pre_decay)
from .csr import counting_order

#: Postsynaptic spikes more than this many of the rules' longest time constant before the time a
#: synapse asks about are not read: their contribution to a weight is a factor below e^-50 (about
#: 2e-22) of the trace's, under the rounding of any weight, and without this bound one silent
#: presynaptic neuron would make its targets keep every spike of an arbitrarily long run.
HORIZON = 50.0

#: History entries per neuron at the start (the rings grow as needed, by doubling: always a power of two).
HISTORY_START = 16

#: Most spikes a neuron may add to its history in one chunk: a chunk of a plastic network runs at most
#: ``HISTORY_CHUNK - 1`` times the shortest interval between two spikes of a neuron (the shortest refractory
#: period + 1 step).  The rings must hold that many entries beyond the ones synapses may still ask for; with
#: the engine's default chunk and a 0.5 ms refractory period they would grow to 512 entries per neuron, and
#: the history search reads them from further away (NEST's hpc_benchmark network at scale 0.2,
#: ``benchmarks/peers/plastic_networks.py --scale 0.2 --psc exp``: 16-20 % faster with this bound).  Chunks
#: only end sooner, with the same results.
HISTORY_CHUNK = 64


class Plastic(NamedTuple):
    ptr: np.ndarray     # int64 [N+1] row of each presynaptic neuron
    split: np.ndarray   # int64 [N, T+1] first synapse of each partition in each row
    tgt: np.ndarray     # int32 target neuron
    neg: np.ndarray     # int32 [N] column offset of a negative weight onto each neuron (N with separate receptors;
                        # -1: a neuron that counts its input spikes, a parrot: it receives 1 per spike, not w)
    dly: np.ndarray     # int16 delay (steps)
    rule: np.ndarray    # uint8 row in rp
    w: np.ndarray       # weight (network's weight dtype)
    rp: np.ndarray      # float64 [R, N_RULE_PARAMS] rule table
    kp: np.ndarray      # float64 [T, MAX_TRACES R, N] presynaptic traces (rule r's trace m: MAX_TRACES r + m,
                        # the first K_+), one copy per thread
    tl: np.ndarray      # int64 [T, N] stamp of the last presynaptic spike (0 before the first), one copy per thread
    hs: np.ndarray      # int64 [N, H] history: spike stamps (ring)
    hk: np.ndarray      # float64 [N, H, MAX_TRACES R] history: the postsynaptic traces just after each spike
                        # (rule r's trace m: MAX_TRACES r + m, the first K_-)
    hn: np.ndarray      # int64 [N] spikes pushed so far
    km: np.ndarray      # float64 [N, MAX_TRACES R] the postsynaptic traces after the last spike
    lp: np.ndarray      # float64 [N] last postsynaptic spike (ms)
    post: np.ndarray    # uint8 [N] 1: the neuron has plastic input (keeps a history)
    dt: np.ndarray      # float64 [1] time step (ms)
    hz: np.ndarray      # int64 [1] horizon (steps): older postsynaptic spikes are not read (see HORIZON)
    kc_s: np.ndarray    # int64 [N, R] stamp at which kc_v holds K_- (a cache, -1: none; not state)
    kc_v: np.ndarray    # float64 [N, R] K_- at that stamp
    port: np.ndarray    # int64 [R] ring-column offset of rule row r's synapses (connect(..., receptor=k): k N,
                        # the port's block; 0 without ports: then the weight's sign chooses, neg)
    loc: np.ndarray     # int64 local index of each neuron a spike list names (push_spikes): the identity where the
                        # lists hold local indices (CPU engines, one process); over MPI ranks with backend='cuda',
                        # whose lists hold network ids, the rank's map network id -> local index (-1: not here)


#: The arrays a run changes (saved in checkpoints and in each chunk's snapshot).
MUTABLE = ("w", "kp", "tl", "hs", "hk", "hn", "km", "lp")


@njit(cache=True, inline="always")
def push_spikes(t, k, lst, a, b, lo, hi, P):
    """Record the spikes stamped ``k`` of neurons ``lst[a:b]`` owned by thread ``t`` (local index
    ``P.loc[lst[q]]`` in ``lo <= n < hi``) in their histories."""
    H = P.hs.shape[1]
    R = P.rp.shape[0]
    tk = k * P.dt[0]
    for q in range(a, b):
        n = lst[q]
        if n >= 0:  # (a list of local indices may mark other ranks' spikers -1)
            n = P.loc[n]
        if n < lo or n >= hi or P.post[n] == 0:
            continue
        j = P.hn[n] & (H - 1)  # (H is a power of two)
        for r in range(R):
            p = P.rp[r]
            for m in range(MAX_TRACES):
                if m < n_post(p):  # (the declared traces; a loop of constant length, unrolled)
                    km = post_after_spike(P.km[n, MAX_TRACES * r + m], P.lp[n] - tk, m, p)
                    P.km[n, MAX_TRACES * r + m] = km
                    P.hk[n, j, MAX_TRACES * r + m] = km
        P.lp[n] = tk
        P.hs[n, j] = k
        P.hn[n] += 1


@njit(cache=True, inline="always")
def _k_minus(n, r, s2, P):
    """``K_-`` of neuron ``n`` (rule ``r``) at stamp ``s2``: its last spike strictly before, decayed.

    Every spike delivered to ``n`` in one step with one delay asks for the same
    stamp: the value is kept in a per-neuron cache, valid for good since later
    spikes of ``n`` have later stamps."""
    if P.kc_s[n, r] == s2:
        return P.kc_v[n, r]
    v = _k_minus_search(n, r, s2, P)
    P.kc_s[n, r] = s2
    P.kc_v[n, r] = v
    return v


@njit(cache=True, inline="always")
def _k_minus_search(n, r, s2, P):
    H = P.hs.shape[1]
    cnt = P.hn[n]
    lo = cnt - H if cnt > H else 0
    for e in range(cnt - 1, lo - 1, -1):
        j = e & (H - 1)
        if P.hs[n, j] <= s2 - P.hz[0]:
            return 0.0  # beyond the horizon
        if P.hs[n, j] < s2:
            return P.hk[n, j, MAX_TRACES * r] * post_decay(P.hs[n, j] * P.dt[0] - s2 * P.dt[0], 0, P.rp[r])
    return 0.0


@njit(cache=True, inline="always")
def deliver(t, T, k, lst, mul, a, b, slot, L, C, P, ring):
    """Deliver the spikes stamped ``k`` of neurons ``lst[a:b]`` (multiplicities ``mul[a:b]``) through their
    plastic synapses into partition ``t``, updating the weights first; then update partition ``t``'s copy
    of the presynaptic traces (the CPU engine: every partition keeps one)."""
    deliver_only(t, T, t, k, lst, mul, a, b, slot, L, C, P, ring)
    update_traces(t, k, lst, a, b, P)


@njit(cache=True, inline="always")
def update_traces(c, k, lst, a, b, P):
    """Copy ``c`` of the presynaptic traces after the spikes stamped ``k`` of neurons ``lst[a:b]``."""
    R = P.rp.shape[0]
    dt = P.dt[0]
    tk = k * dt
    for q in range(a, b):
        i = lst[q]
        if P.ptr[i + 1] == P.ptr[i]:
            continue
        t_last = P.tl[c, i] * dt
        for r in range(R):
            p = P.rp[r]
            for m in range(MAX_TRACES):
                if m < n_pre(p):  # (the declared traces; a loop of constant length, unrolled)
                    P.kp[c, MAX_TRACES * r + m, i] = pre_after_spike(P.kp[c, MAX_TRACES * r + m, i], t_last - tk,
                                                                     m, p)
        P.tl[c, i] = k


@njit(cache=True, inline="always")
def deliver_only(t, T, c, k, lst, mul, a, b, slot, L, C, P, ring):
    """The weight updates and deliveries of :func:`deliver` into partition ``t``, reading copy ``c`` of the
    presynaptic traces and leaving them unchanged (the CUDA engine updates its single copy once all
    partitions are done, :func:`update_traces`).

    A spike of multiplicity ``m`` (a parrot's) updates each weight once and delivers ``m`` times the new
    weight, as NEST's synapses do; the traces take it as one spike (:func:`update_traces`, NEST's
    ``K_+ + 1``).  Onto a neuron that counts its input (``neg[n] < 0``) a spike adds ``m``, not the weight.

    Multapses: a synapse's update is a function of its weight before the spike, its target, delay and
    rule, and the sender's traces.  A synapse equal in all of these to the one before it in the row (rows
    are sorted by target: multapses are neighbours) gets that one's new weight without computing it again
    (its weight before the spike compared bit for bit, so the result is the same to the last bit); one
    that differs only in weight reuses the search of the postsynaptic history."""
    H = P.hs.shape[1]
    LC = L * C
    base = slot * C
    dt = P.dt[0]
    tk = k * dt
    for q in range(a, b):
        i = lst[q]
        if P.ptr[i + 1] == P.ptr[i]:
            continue
        last = P.tl[c, i]
        t_last = last * dt
        fm = np.float64(mul[q])
        y = P.split[i, t]
        end = P.split[i, t + 1]
        n_prev = np.int64(-1)
        d_prev = np.int64(-1)
        r_prev = np.int64(-1)
        e0 = np.int64(0)
        while y < end:
            n = np.int64(P.tgt[y])
            d = np.int64(P.dly[y])
            r = np.int64(P.rule[y])
            w0 = np.float64(P.w[y])
            p = P.rp[r]
            dd = d * dt
            w = w0
            # postsynaptic spikes with stamps in (last - d, k - d], oldest first
            s2 = k - d
            cnt = P.hn[n]
            if n != n_prev or d != d_prev or r != r_prev:  # (else: the search of the synapse before)
                s1 = max(last - d, k - d - P.hz[0])  # (spikes beyond the horizon are not read)
                first = cnt - H if cnt > H else 0
                e0 = cnt
                # (n's last spike, lp = stamp * dt, after s1 at all? About half the synapses find it did not, and
                # skip reading n's history, a cache miss: stamp * dt grows strictly with the stamp below 2**52)
                if P.lp[n] > s1 * dt:
                    while e0 > first and P.hs[n, (e0 - 1) & (H - 1)] > s1:
                        e0 -= 1
                n_prev, d_prev, r_prev = n, d, r
            kplus = P.kp[c, MAX_TRACES * r, i]
            post2 = n_post(p) > 1
            for e in range(e0, cnt):
                j = e & (H - 1)
                if P.hs[n, j] > s2:
                    break
                minus_dt = t_last - (P.hs[n, j] * dt + dd)
                # the second postsynaptic trace as stored just after that spike, if the rule has one
                o2 = P.hk[n, j, MAX_TRACES * r + 1] if post2 else 0.0
                w = facilitate(w, kplus * pre_decay(minus_dt, 0, p), o2, p)
            # the second presynaptic trace just before this spike, if the rule has one
            r2 = P.kp[c, MAX_TRACES * r + 1, i] * pre_decay(t_last - tk, 1, p) if n_pre(p) > 1 else 0.0
            w = depress(w, _k_minus(n, r, s2, P), r2, p)
            g = P.neg[n]
            x = w * fm  # (w itself for a single spike: x 1.0 is exact)
            o = base + d * C + n + P.port[r]  # (a receptor port's block, whatever the weight's sign; else 0)
            if g < 0:
                x = fm
            elif w < 0:  # (neg[n] is 0 for a neuron with receptor ports)
                o += g
            if o >= LC:
                o -= LC
            # this synapse and the multapses after it with the same weight (bit for bit), delay and rule
            # (their sum kept in a register: the same additions in the same order as adding to ring[o] each time)
            sign = math.copysign(1.0, w0)
            acc = ring[o]
            while True:
                P.w[y] = w
                acc += x
                y += 1
                if y == end or P.tgt[y] != n or P.dly[y] != d or P.rule[y] != r:
                    break
                w1 = np.float64(P.w[y])
                if w1 != w0 or math.copysign(1.0, w1) != sign:
                    break
            ring[o] = acc


def room(P, step, chunk_steps, min_isi, d_max=None):
    """``(H, steps)``: the history length needed and the steps the next chunk may run (``d_max``: the
    longest plastic delay in steps, ``P.dly.max()`` if not given).

    An entry can still be asked for while its stamp is above ``tl_min - d_max``
    (the oldest last presynaptic spike of a plastic sender, minus the longest
    plastic delay); the ring must keep those plus the spikes the chunk can add,
    at most one per ``min_isi`` steps (the shortest refractory period + 1), and
    the chunk adds at most ``HISTORY_CHUNK`` (it is shortened to that).
    """
    if P.w.size == 0:
        return P.hs.shape[1], chunk_steps
    senders = np.flatnonzero(np.diff(P.ptr) > 0)
    if d_max is None:
        d_max = int(P.dly.max())
    oldest = max(int(P.tl[0, senders].min()), step - int(P.hz[0])) - d_max
    recv = np.flatnonzero(P.post)
    H = P.hs.shape[1]
    kept = np.minimum(P.hn[recv], H)
    # entries newer than `oldest` in each ring
    newer = np.zeros(recv.size, np.int64)
    for back in range(H):
        has = kept > back
        if not has.any():
            break
        j = (P.hn[recv] - 1 - back) % H
        newer += has & (P.hs[recv, j] > oldest)
    need = int(newer.max(initial=0))
    steps = min(chunk_steps, (HISTORY_CHUNK - 1) * max(min_isi, 1))
    per_chunk = steps // max(min_isi, 1) + 1
    H_new = H
    while need + per_chunk > H_new and H_new < need + 64 + 1024:
        H_new *= 2
    if need + per_chunk > H_new:  # a long chunk of many spikes: run fewer steps instead of a huge ring
        steps = max(1, (H_new - need - 1) * max(min_isi, 1))
    return H_new, steps


def grow_history(P, H):
    """``P`` with rings of ``H`` entries (the entries kept in order)."""
    old_H = P.hs.shape[1]
    if H == old_H:
        return P
    N, R = P.hk.shape[0], P.hk.shape[2]
    hs = np.zeros((N, H), np.int64)
    hk = np.zeros((N, H, R))
    for back in range(min(old_H, H)):
        j_old = (P.hn - 1 - back) % old_H
        j_new = (P.hn - 1 - back) % H
        has = P.hn > back
        rows = np.flatnonzero(has)
        hs[rows, j_new[rows]] = P.hs[rows, j_old[rows]]
        hk[rows, j_new[rows]] = P.hk[rows, j_old[rows]]
    return P._replace(hs=hs, hk=hk)


def horizon_steps(rules, dt):
    """The horizon (steps) of ``rules``: HORIZON times their longest trace time constant."""
    tau = max(max(r.pre_taus + r.post_taus) for r in rules)
    return int(math.ceil(HORIZON * tau / dt))


def sender_target_order(pre, tgt, NP, NT):
    """``(order, ptr)``: the permutation that sorts synapses by sender ``pre`` (``0 <= pre < NP``), then
    target ``tgt`` (``0 <= tgt < NT``), keeping the given order among equal pairs (``np.lexsort((tgt,
    pre))``), by two counting sorts (by target, then stably by sender: O(n), where the sort of 25 million
    synapses took seconds); ``ptr`` (``NP + 1``) the first position of each sender's row."""
    by_tgt, _ = counting_order(tgt, NT, np.arange(pre.size, dtype=np.int64))
    return counting_order(pre, NP, by_tgt)


@njit(cache=True)
def _gather(order, tgt, w, dly, rule):
    """``tgt[order], w[order], dly[order], rule[order]`` in one pass."""
    n = order.size
    t2 = np.empty(n, tgt.dtype)
    w2 = np.empty(n, w.dtype)
    d2 = np.empty(n, dly.dtype)
    r2 = np.empty(n, rule.dtype)
    for j in range(n):
        k = order[j]
        t2[j] = tgt[k]
        w2[j] = w[k]
        d2[j] = dly[k]
        r2[j] = rule[k]
    return t2, w2, d2, r2


def row_key(proj):
    """The rule row of plastic projection ``proj``: its ``(generation, rule, receptor)``."""
    return proj.generation, proj.synapse, proj.receptor


def build(net, params, N, weight_dtype, part, tgt_map=None):
    """The :class:`Plastic` arrays of ``net``'s plastic projections (None if there are none).

    ``params``: the plan's parameter sets (``Params``) of its ``N`` neurons, for each target's receptor
    blocks (``is_exp``: a negative weight goes to ``neg[n] = N`` columns further) and whether it counts its
    input spikes (``counts``: a parrot, ``neg[n] = -1``).

    ``tgt_map`` (MPI): the plan's ``N`` neurons are a part of the network's, ``tgt_map[id]`` the local
    index of network neuron ``id``; the projections hold only synapses onto them.  The presynaptic arrays
    (``ptr``, ``split``, ``kp``, ``tl``) then stay indexed by network neuron, the others by local index."""
    projs = [p for p in net.projections if getattr(p, "synapse", None) is not None]
    if not projs:
        return None
    # one rule row per distinct rule and generation (a projection made after a run starts from presynaptic
    # traces of its own, NEST's K_+ = 0 of a new synapse), in the order of first use: a later build only
    # appends rows (Plan._take_state)
    # (and per receptor port: a row's synapses reach one port)
    keys = []
    for p in projs:
        if row_key(p) not in keys:
            keys.append(row_key(p))
    rules = [r for _, r, _ in keys]
    pre = np.concatenate([p.source.ids[p.pre] for p in projs]).astype(np.int64)
    tgt = np.concatenate([p.target.ids[p.post] for p in projs]).astype(np.int64)
    if tgt_map is not None:
        tgt = tgt_map[tgt]
    NP = N if tgt_map is None else net.n_neurons  # presynaptic neurons
    w = np.concatenate([np.asarray(p.weight) for p in projs]).astype(weight_dtype)
    dly = np.concatenate([p.delay_steps for p in projs]).astype(np.int16)
    rule = np.concatenate([np.full(len(p), keys.index(row_key(p)), np.uint8) for p in projs])
    # by sender, then target; stable (projection order) within: np.lexsort((tgt, pre)), in O(n)
    order, ptr = sender_target_order(pre, tgt, NP, N)
    tgt, w, dly, rule = _gather(order, tgt.astype(np.int32), w, dly, rule)
    is_exp = params.is_exp[params.pid] if N else np.zeros(0, np.int64)  # 1 if the receptors are separate
    neg = np.where(is_exp == 1, N, 0).astype(np.int32)
    if N:
        neg[params.counts[params.pid] != 0] = -1
    R = len(rules)
    post = np.zeros(N, np.uint8)
    post[tgt] = 1
    H = HISTORY_START
    P = Plastic(ptr=ptr, split=np.zeros((NP, 2), np.int64), tgt=tgt, neg=neg, dly=dly, rule=rule,
                w=w, rp=np.stack([r.pack() for r in rules]), kp=np.zeros((1, MAX_TRACES * R, NP)),
                tl=np.zeros((1, NP), np.int64), hs=np.zeros((N, H), np.int64), hk=np.zeros((N, H, MAX_TRACES * R)),
                hn=np.zeros(N, np.int64), km=np.zeros((N, MAX_TRACES * R)), lp=np.full(N, -1.0), post=post, dt=np.array([net.dt]),
                hz=np.array([horizon_steps(rules, net.dt)], np.int64),
                kc_s=np.full((N, R), -1, np.int64), kc_v=np.zeros((N, R)),
                port=np.array([0 if k is None else k * N for _, _, k in keys], np.int64),
                loc=np.arange(N, dtype=np.int64))
    return partition(P, part), order, rules


def partition(P, part, copies=None):
    """``P`` split for the partitions ``part`` (neuron bounds); ``copies`` (default: one per partition)
    copies of the presynaptic traces, all equal to copy 0."""
    N = P.ptr.size - 1
    T = part.size - 1
    split = np.empty((N, T + 1), np.int64)
    for i in range(N):  # (rows are sorted by target)
        a, b = P.ptr[i], P.ptr[i + 1]
        split[i] = a + np.searchsorted(P.tgt[a:b], part, side="left")
    kp = np.repeat(P.kp[:1], copies or T, axis=0)
    tl = np.repeat(P.tl[:1], copies or T, axis=0)
    return P._replace(split=split, kp=kp, tl=tl)

