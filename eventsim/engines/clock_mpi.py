"""Kernels of the clock engine on one MPI rank (see :mod:`eventsim.engines.plan_mpi`).

A rank's plan holds its own neurons only (local indices ``0..N-1``, in
network order) but one CSR row per *network* sender (every neuron, then
every source channel), each row holding the synapses onto this rank's
neurons.  The steps of an interval go in three phases, as NEST's:

1. :func:`update_part` updates each partition's neurons through the
   interval (as :func:`eventsim.engines.clock_cpu.run_clock` does), keeping
   each step's spikers;
2. :func:`collect` lists this rank's spikers by step in network ids (and
   records them); the ranks exchange these lists (one collective) and sort
   each step's list by network id;
3. :func:`deliver_part` adds the interval's events into each partition
   step after step: the spikes stamped ``k`` by network id, then explicit
   source spikes, then Poisson channels.

That is the single process's order of additions into every ring cell, so
the results are bit-identical to it for any number of ranks and threads.
Every function here takes one partition (or none) and releases the GIL,
so the partitions of a rank run on threads of their own.

A spike travels in the exchange as ``id << MULT_BITS | (m - 1)``, ``m`` its
multiplicity (1 but for parrot neurons): ascending values are ascending
ids, so the merged lists keep the single process's order, and the
multiplicity reaches every rank.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .clock_cpu import MULT_SHIFT, _deliver_list, _deliver_sources, _poisson_inputs, _skip_sources, _update_steps, _warm_rows
from .mpi_native import allgather, wtime
from .plastic import deliver as deliver_plastic
from .plastic import push_spikes

#: Bits of an exchanged value that hold a spike's multiplicity minus one (up to ``2**MULT_BITS`` spikes of one
#: parrot in one step, :data:`eventsim.models.parrot.MAX_MULTIPLICITY`; the ids take the other 43 bits).
MULT_BITS = 20
MULT_MASK = (1 << MULT_BITS) - 1


@njit(cache=True, nogil=True)
def update_part(u, s, e, s0, M, pr, st, ring, work, rec, C, L, fams):
    """Steps ``s .. e-1`` of partition ``u``'s neurons (spikers of step ``k`` into list ``k % M``; ``fams``: the
    tags of the neuron families present)."""
    _update_steps(u, s, e, s0, M, work.part[u], work.part[u + 1], pr, st, ring, work, rec, C, L, fams)


@njit(cache=True, nogil=True)
def deliver_part(u, s, e, ids, mul, ptr, local, L, C, conn, ring, src, work, f_pois, f_one, f_pl):
    """The events stamped ``s .. e-1`` into partition ``u``: the network's spikers ``ids[ptr[j]:ptr[j+1]]``
    stamped ``s + j`` (network ids, ascending; ``mul``: their multiplicities; ``local``: their local indices,
    -1 on other ranks), through
    the static synapses, then (``f_pl``) the plastic ones after the partition's own spikers entered their
    histories, then the explicit source spikes, then the Poisson counts.  The heads of a step's rows are
    read first (:func:`~eventsim.engines.clock_cpu._warm_rows`, as the single process does): a rank
    walks every network spiker's row, and without it each row began with a cache miss.  Returns the
    sum of the values read (the caller keeps it, so that the reads are not optimised away)."""
    T = work.nsp.shape[0]
    p = src.ss_ptr[0]
    sink = 0
    for k in range(s, e):
        j = k - s
        sink += _warm_rows(u, T, ids, ptr[j], ptr[j + 1], conn.row_split, conn.syn_off)
        _deliver_list(u, T, k, L, C, ids, mul, ptr[j], ptr[j + 1], conn, ring)
        if f_pl is not None:
            push_spikes(u, k, local, ptr[j], ptr[j + 1], work.part[u], work.part[u + 1], f_pl)
            deliver_plastic(u, T, k, ids, mul, ptr[j], ptr[j + 1], k % L, L, C, f_pl, ring)
        p = _deliver_sources(u, T, k, L, C, p, src, conn, ring)
        _poisson_inputs(u, k, conn, ring, src, work, C, L, f_pois, f_one)
    return sink


@njit(cache=True, nogil=True)
def collect(s, e, M, work, gid, rec, out, cnt):
    """This rank's spikers of steps ``s .. e-1`` into ``out`` as exchanged values (network id and
    multiplicity, see the module docstring; step after step, ascending ids; ``cnt[k - s]`` per step); the
    recorded ones also into the spike recording (stamp ``k + 1``).  Returns how many."""
    T = work.nsp.shape[0]
    N = work.flag.shape[0]
    m = 0
    for k in range(s, e):
        j = k % M
        c0 = m
        for t in range(T):
            lo = work.part[t]
            for q in range(work.insp[j * T + t]):
                n = work.isp[j * N + lo + q]
                c = np.int64(work.imul[j * N + lo + q])
                g = gid[n]
                out[m] = (g << MULT_BITS) | (c - 1)
                m += 1
                if rec.spk_flag[n]:
                    r = rec.spk_n[0]
                    rec.spk_step[r] = k + 1
                    rec.spk_id[r] = g | ((c - 1) << MULT_SHIFT)
                    rec.spk_n[0] = r + 1
        cnt[k - s] = m - c0
    return m


@njit(cache=True, nogil=True)
def count_events(ids, mul, outdeg, counters):
    """Count the synaptic events of the network's spikers ``ids`` (multiplicities ``mul``) onto this rank's
    neurons."""
    c = 0
    for q in range(ids.shape[0]):
        c += outdeg[ids[q]] * np.int64(mul[q])
    counters[0] += c


@njit(cache=True, nogil=True)
def skip_sources(s, src):
    """Move the explicit-source pointer past the spikes stamped up to ``s``."""
    _skip_sources(s, src)


@njit(cache=True)
def merge_steps(buf, W, H, R, J, out, mul, ptr):
    """The ranks' spiker lists of ``J`` steps in ``buf`` (rank ``r``'s block at ``r * W``: a header of
    ``H`` words holding its count per step at ``2 + j``, then its exchanged values step after step) into
    one list per step, ascending network ids: ``out[ptr[j]:ptr[j+1]]``, their multiplicities at the same
    places of ``mul``.  Returns the total."""
    m = 0
    for j in range(J):
        ptr[j] = m
        for r in range(R):
            base = r * W
            a = 0
            for i in range(j):
                a += buf[base + 2 + i]
            c = buf[base + 2 + j]
            for q in range(c):
                out[m] = buf[base + H + a + q]
                m += 1
        # each rank's list is ascending; the ranks' blocks interleave (ownership per population)
        seg = out[ptr[j]:m]
        seg.sort()
        for i in range(ptr[j], m):
            v = out[i]
            mul[i] = (v & MULT_MASK) + 1
            out[i] = v >> MULT_BITS
    ptr[J] = m
    return m


@njit(cache=True, inline="always")
def _headers(recv, W, R):
    """``(most spikers of a rank, some rank's stop request)`` of an exchange's headers in ``recv``."""
    most = 0
    stop = 0
    for r in range(R):
        most = max(most, recv[r * W])
        stop |= recv[r * W + 1]
    return most, stop


#: Return codes of :func:`interval_loop`.
EXCHANGE = 0  # the next interval's spikers are in the send buffer: exchange them, then call again
DONE = 1      # the chunk ended (or some rank asked to stop): pending spikers at ``dbuf[:ctl[2]]``
GROW = 2      # some rank's spikers outgrew the buffer (``ctl[4]`` of them): grow it, exchange again


@njit(cache=True, nogil=True)
def interval_loop(first, s0, s1, Jmax, ctl, recv, send, W, H, R, out, dbuf, dmul, dptr, ptr, loc, gid, g2l, n_flag, pr,
                  st, ring, work, rec, L, C, conn, src, fams, f_pois, f_one, f_pl):
    """Everything of an interval between two exchanges, on a rank of one partition (``Jmax >= 1`` steps: the
    shortest delay is ``Jmax + 1`` steps or more; ``Jmax == 0``, a delay of one step: :func:`_one_step`).

    Unless ``first``, the exchange of the interval ``ctl[0] .. ctl[1]-1`` is in ``recv`` (rank ``r``'s block
    of ``W`` words at ``r * W``: its count, its stop request, its count per step, then from ``H`` its ids),
    and its events are delivered: every rank's spikers merged per step in ascending network ids after the
    pending ones (``dbuf[:ctl[2]]``, the spikers of the step before the interval; their multiplicities
    beside them in ``dmul``), counted, delivered
    (:func:`deliver_part`: the events stamped ``s .. e-1``), the explicit-source pointer moved past ``e - 1``,
    and the last step's spikers kept pending at the front of ``dbuf``.  Then, unless the chunk ended at
    ``s1`` or some rank asked to stop, the next interval's neurons are updated (:func:`update_part`) and
    its spikers packed into ``send`` (:func:`collect`; with the stop request when the spike recording
    could overflow in the interval after it).  Returns :data:`EXCHANGE`, :data:`DONE` or :data:`GROW`
    (nothing done); ``ctl``: ``[s, e, pending, spikers, most, ...]``, ``ctl[7]`` the sum that
    :func:`deliver_part` returns (not used).  ``Jmax == 0`` (a shortest delay of one step): one step per
    exchange, :func:`_one_step`.
    """
    if Jmax == 0:
        return _one_step(first, s0, s1, ctl, recv, send, W, H, R, out, dbuf, dmul, dptr, ptr, loc, gid, g2l, n_flag,
                         pr, st, ring, work, rec, L, C, conn, src, fams, f_pois, f_one, f_pl)
    cap = send.shape[0] - H
    if not first:
        s = ctl[0]
        e = ctl[1]
        J = e - s
        most, stop = _headers(recv, W, R)
        if most > cap:
            ctl[4] = most
            return GROW
        npend = ctl[2]
        total = merge_steps(recv, W, H, R, J, dbuf[npend:], dmul[npend:], ptr)
        count_events(dbuf[npend:npend + total], dmul[npend:npend + total], conn.outdeg, rec.counters)
        dptr[0] = 0
        for j in range(J):
            dptr[j + 1] = npend + ptr[j]
        nd = dptr[J]
        for i in range(nd):
            loc[i] = g2l[dbuf[i]]
        ctl[7] += deliver_part(0, s, e, dbuf, dmul, dptr, loc, L, C, conn, ring, src, work, f_pois, f_one, f_pl)
        skip_sources(e - 1, src)
        a = npend + ptr[J - 1]
        b = npend + ptr[J]
        for i in range(b - a):
            dbuf[i] = dbuf[a + i]
            dmul[i] = dmul[a + i]
        ctl[2] = b - a
        ctl[0] = e
        if stop != 0 or e >= s1:
            return DONE
    s = ctl[0]
    J = min(Jmax, s1 - s)
    e = s + J
    M = Jmax + 1
    update_part(0, s, e, s0, M, pr, st, ring, work, rec, C, L, fams)
    m = collect(s, e, M, work, gid, rec, out, send[2:2 + J])
    nxt = min(Jmax, s1 - e)
    send[0] = m
    send[1] = 1 if (e < s1 and rec.spk_n[0] + (1 + nxt) * n_flag > rec.spk_step.shape[0]) else 0
    for i in range(min(m, cap)):
        send[H + i] = out[i]
    ctl[1] = e
    ctl[3] = m
    return EXCHANGE


@njit(cache=True, nogil=True)
def _one_step(first, s0, s1, ctl, recv, send, W, H, R, out, dbuf, dmul, dptr, ptr, loc, gid, g2l, n_flag, pr, st,
              ring, work, rec, L, C, conn, src, fams, f_pois, f_one, f_pl):
    """:func:`interval_loop` for a shortest delay of one step (an exchange after every step): the spikers of a
    step reach their targets' input of the next step, so they are delivered before it is updated.

    Unless ``first``, the exchange of step ``ctl[0] - 1`` is in ``recv``: its spikers (every rank's, merged in
    ascending network ids) become the pending ones (``dbuf[:ctl[2]]``).  Then, unless the chunk ended at ``s1``
    or some rank asked to stop, step ``s = ctl[0]``: the events stamped ``s`` (the pending spikers, the explicit
    sources, the Poisson counts; :func:`deliver_part`), the update, and its spikers packed into ``send``
    (the per-step path's order, step after step)."""
    cap = send.shape[0] - H
    if not first:
        most, stop = _headers(recv, W, R)
        if most > cap:
            ctl[4] = most
            return GROW
        total = merge_steps(recv, W, H, R, 1, dbuf, dmul, ptr)
        count_events(dbuf[:total], dmul[:total], conn.outdeg, rec.counters)
        ctl[2] = total
        if stop != 0 or ctl[0] >= s1:
            return DONE
    s = ctl[0]
    npend = ctl[2]
    dptr[0] = 0
    dptr[1] = npend
    for i in range(npend):
        loc[i] = g2l[dbuf[i]]
    ctl[7] += deliver_part(0, s, s + 1, dbuf, dmul, dptr, loc, L, C, conn, ring, src, work, f_pois, f_one, f_pl)
    skip_sources(s, src)
    update_part(0, s, s + 1, s0, 2, pr, st, ring, work, rec, C, L, fams)
    m = collect(s, s + 1, 2, work, gid, rec, out, send[2:3])
    send[0] = m
    send[1] = 1 if (s + 1 < s1 and rec.spk_n[0] + (1 + min(1, s1 - s - 1)) * n_flag > rec.spk_step.shape[0]) else 0
    for i in range(min(m, cap)):
        send[H + i] = out[i]
    ctl[0] = s + 1
    ctl[1] = s + 1
    ctl[3] = m
    return EXCHANGE


ERROR = 3     # the MPI call returned an error code (in ``ctl[5]``)


@njit(cache=True, nogil=True)
def chunk_loop(first, s0, s1, Jmax, ctl, recv, send, W, H, R, out, dbuf, dmul, dptr, ptr, loc, gid, g2l, n_flag, pr,
               st, ring, work, rec, L, C, conn, src, fams, f_pois, f_one, f_pl, comm, dtype, clock):
    """:func:`interval_loop` over a chunk with the exchanges between its calls made here
    (:func:`eventsim.engines.mpi_native.allgather`): one compiled call per chunk.  Returns :data:`DONE`,
    :data:`GROW` (grow the buffers, exchange again from Python, call again with ``first`` false) or
    :data:`ERROR`; ``ctl[6]`` counts the exchanges, ``clock[0]`` adds the seconds spent in them."""
    code = interval_loop(first, s0, s1, Jmax, ctl, recv, send, W, H, R, out, dbuf, dmul, dptr, ptr, loc, gid, g2l,
                         n_flag, pr, st, ring, work, rec, L, C, conn, src, fams, f_pois, f_one, f_pl)
    while code == EXCHANGE:
        t0 = wtime()
        err = allgather(send, recv, comm, dtype)
        clock[0] += wtime() - t0
        if err != 0:
            ctl[5] = err
            return ERROR
        ctl[6] += 1
        code = interval_loop(False, s0, s1, Jmax, ctl, recv, send, W, H, R, out, dbuf, dmul, dptr, ptr, loc, gid,
                             g2l, n_flag, pr, st, ring, work, rec, L, C, conn, src, fams, f_pois, f_one, f_pl)
    return code
