"""The clock engine's plan on one MPI rank: this rank's neurons, their synapses, one exchange per interval.

A :class:`DistributedPlan` is a :class:`eventsim.engines.plan.ClockPlan`
whose neurons are the ones this rank owns (:mod:`eventsim.mpi`), in network
order (local index ``i`` is network id ``gid[i]``), and whose CSR rows are
indexed by network sender (every neuron, then every source channel) but
hold only the synapses onto this rank's neurons.  It keeps the plan's
living design: changes between runs rebuild or update it (each rank its own
part) and carry the engine state over as in one process.

Running (:meth:`DistributedPlan._run_mpi`) goes interval by interval, an
interval being at most the shortest delay minus one step (the same on every
rank): update the interval's steps, exchange the interval's spikers with one
``Allgather`` of int64 buffers (a header with the count per step, then the
network ids; a second round only when some rank's spikers outgrow the
buffer, which then grows), sort each step's list by network id, deliver.
Pending spikers (the last step's) are kept in network ids, so a chunk, a
run, a checkpoint or a rebuild can end after any step.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import clock_cpu as cc
from . import clock_mpi as km
from . import plastic as pl
from .plan import (ClockPlan, _build_connectivity, _build_dc, _build_params, _build_sources, _spike_flags, finite_rows,
                   initial_state, state_column, state_layout)

_POOLS = {}


def _pool(n):
    if n not in _POOLS:
        _POOLS[n] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="eventsim-rank")
    return _POOLS[n]


def _each(fn, T, *args):
    """``fn(u, *args)`` for every partition ``u`` of ``T``, on ``T`` threads (this one and ``T - 1`` others)."""
    if T == 1:
        fn(np.int64(0), *args)
        return
    futures = [_pool(T - 1).submit(fn, np.int64(u), *args) for u in range(1, T)]
    err = None
    try:
        fn(np.int64(0), *args)
    except BaseException as e:  # noqa: BLE001 - the other partitions finish first
        err = e
    for f in futures:
        exc = f.exception()
        if err is None and exc is not None:
            err = exc
    if err is not None:
        raise err


def owned_ids(net):
    """Network ids of the neurons this rank owns, ascending (int64)."""
    ranks = net._dist
    parts = []
    for p in net.populations:
        a, b = ranks.owned_range(p.n)
        parts.append(np.arange(p.offset + a, p.offset + b, dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def build_distributed_plan(net):
    """Build this rank's plan of ``net`` (collective: every rank calls it at the same point)."""
    ranks = net._dist
    gid = owned_ids(net)
    NG = net.n_neurons
    g2l = np.full(NG, -1, np.int64)
    g2l[gid] = np.arange(gid.size, dtype=np.int64)
    full, i_e_full, K = _build_params(net)
    params = full._replace(col=np.arange(gid.size, dtype=np.int64), pid=full.pid[gid])
    i_e = i_e_full[gid]
    N = gid.size
    state = initial_state(net, gid)
    conn_parts, ring_shape = _build_connectivity(net, params, tgt_map=g2l)
    dmin = conn_parts[3][0]
    used = np.diff(conn_parts[2]) > 0
    local_short = int(dmin[used].min()) if used.any() else 1 << 30
    plastic = pl.build(net, params, N, net.weight_dtype, np.array([0, N], np.int64), tgt_map=g2l)
    if plastic is not None and plastic[0].dly.size:
        local_short = min(local_short, int(plastic[0].dly.min()))
    d_short = _all_min(ranks, local_short)  # every rank's intervals must be alike
    # a Poisson channel's kind (one synapse or several) by its synapses on all ranks
    outdeg = np.diff(conn_parts[2])
    outdeg[NG:] = ranks.allsum(outdeg[NG:])
    return DistributedPlan(net, gid, g2l, d_short, outdeg, params, state, conn_parts, ring_shape, _build_sources(net),
                           _spike_flags(net)[gid], _local_dc(net, g2l), i_e, plastic)


def _all_min(ranks, x):
    from mpi4py import MPI

    out = np.empty(1, np.int64)
    ranks.comm.Allreduce(np.array([x], np.int64), out, op=MPI.MIN)
    return int(out[0])


def _local_dc(net, g2l):
    return [(a, b, g2l[t], c) for a, b, t, c in _build_dc(net)]


def _dc_edges(net):
    """Every DC source's switching steps (the same on every rank, so all ranks cut chunks alike)."""
    return sorted({int(e) for s in net.dc_sources for e in s._delivery_window() if e != np.iinfo(np.int64).max})


class DistributedPlan(ClockPlan):
    """This rank's part of the clock engine (see the module docstring)."""

    _TUNED = False  # every rank's chunks (and so its intervals) must end at the same steps

    def __init__(self, net, gid, g2l, d_short, outdeg, params, state, conn_parts, ring_shape, sources, spk_flag, dc,
                 i_e, plastic=None):
        self._gid = gid
        self._outdeg_global = outdeg
        self._g2l = g2l
        self._d_global = d_short if d_short < (1 << 30) else ring_shape[0]
        self._ranks = net._dist
        super().__init__(net, params, state, conn_parts, ring_shape, sources, spk_flag, dc, i_e, plastic)
        self._dc_edges = _dc_edges(net)
        # pending spikers in network ids (any neuron of the network may have spiked)
        self.pend = np.zeros(max(net.n_neurons, 1), np.int64)
        self.pmul = np.ones(self.pend.size, np.int32)
        self._partition(self.T)
        self._x_cap = 256  # room for ids per rank in the exchange buffer (grows)
        self.comm_seconds = 0.0  # time in the exchange's collectives (s)
        self.comm_bytes = 0  # bytes received by this rank in the exchanges
        self.comm_rounds = 0  # exchanges

    # ---------------------------------------------------------------- recorders: this rank's neurons
    def _set_recorders(self, spk_flag):
        super()._set_recorders(spk_flag)
        idx, ptr = [], [0]
        for r in self.state_recorders:
            loc = self._g2l[r.group.ids]
            loc = loc[loc >= 0]
            idx.append(loc)
            ptr.append(ptr[-1] + loc.size)
        self.rec_ptr = np.array(ptr, np.int64)
        self.rec_idx = np.concatenate(idx).astype(np.int64) if idx else np.zeros(0, np.int64)

    # ---------------------------------------------------------------- changes between runs
    def refresh(self, changes):
        if "structure" in changes:
            return super().refresh(changes)  # build_plan builds this rank's plan again
        net = self.net
        if "params" in changes:
            full, i_e, K = _build_params(net)
            if state_layout(net) != (self.state.theta.shape[1], self.state.x.shape[1]):
                raise AssertionError("parameter changes may not change the state layout")
            self.params = full._replace(col=np.arange(self._gid.size, dtype=np.int64), pid=full.pid[self._gid])
            self.i_e = i_e[self._gid]
        if "sources" in changes:
            self._sources_base = _build_sources(net)
        if "dc" in changes:
            self.dc = _local_dc(net, self._g2l)
            self._dc_edges = _dc_edges(net)
        if "recorders" in changes:
            self._set_recorders(_spike_flags(net)[self._gid])
        self._partition(self.T)
        return self

    def get_state(self, name, ids):
        """float64 values of ``name`` of network neurons ``ids`` (collective: gathered from their ranks)."""
        ids = np.asarray(ids, np.int64)
        loc = self._g2l[ids]
        mine = np.flatnonzero(loc >= 0)
        vals = super().get_state(name, loc[mine])
        all_pos, _ = self._ranks.allgatherv(mine, np.int64)
        all_vals, _ = self._ranks.allgatherv(vals, np.float64)
        out = np.zeros(ids.size)
        out[all_pos] = all_vals
        return out

    def set_state(self, name, ids, values):
        loc = self._g2l[np.asarray(ids, np.int64)]
        mine = loc >= 0
        state_column(self.state, name)[loc[mine]] = np.broadcast_to(values, loc.shape)[mine]

    def _take_state(self, old):
        super()._take_state(old)
        self.pend[: old.pend.size] = old.pend
        self.pmul[: old.pmul.size] = old.pmul

    # ---------------------------------------------------------------- failures seen by every rank
    def _finite(self):
        return self._ranks.all_true(super()._finite())

    def _raise_non_finite(self, snap):
        st = self.state

        def local():
            bad = ~finite_rows(st)
            if not bad.any():
                self._restore(snap)
                return
            n = int(self._gid[np.flatnonzero(bad)[0]])
            self._restore(snap)
            pop = next(p for p in self.net.populations if p.offset <= n < p.offset + p.n)
            t = (self.net._step + 1) * self.net.dt
            raise FloatingPointError(
                f"non-finite state in population {pop!r}, neuron {n - pop.offset} (network index {n}) in the "
                f"step ending at t = {t} ms; the network is left at t = {self.net.t} ms, its last finite state")

        self._ranks.agree(local)

    def _commit(self, s, reached, rec):
        def stage():
            self._collect(s, reached, rec)
            for r in self.net.recorders:
                r._commit(reached)

        self._ranks.agree(stage)
        self.counters[1] += self.work.ext.sum()
        self.work.ext[:] = 0
        self.net._step = reached  # the commit point
        for r in self.net.recorders:
            r._settle()

    # ---------------------------------------------------------------- running
    def _chunk_end(self, s, target):
        """The earliest of the ranks' chunk ends (plastic synapses bound a chunk by each rank's histories)."""
        return _all_min(self._ranks, super()._chunk_end(s, target))

    def _cpu_chunk(self, s, end):
        need = (max(int(self.work.interval[0]), 1) + 1) * self.n_flag
        if self.spk_buf_step.size < need:  # room for an interval's recorded spikes (every rank decides alone)
            self.spk_buf_step = np.zeros(need, np.int64)
            self.spk_buf_id = np.zeros(need, np.int64)
        return self._chunk(self._run_mpi, s, end)

    def _exchange(self, out, m, cnt, J, stop):
        """Every rank's spikers of ``J`` steps (``out``: this rank's exchanged values, see
        :mod:`eventsim.engines.clock_mpi`), one list per step in ascending network ids; and whether some rank
        asked to stop.  Returns ``(ids, multiplicities, ptr, stop)``."""
        ranks = self._ranks
        R = ranks.size
        H = 2 + max(int(self.work.interval[0]), 1)
        t0 = time.perf_counter()
        while True:
            W = H + self._x_cap
            send = np.zeros(W, np.int64)
            send[0] = m
            send[1] = stop
            send[2:2 + J] = cnt[:J]
            k = min(m, self._x_cap)
            send[H:H + k] = out[:k]
            recv = np.empty(R * W, np.int64)
            ranks.comm.Allgather(send, recv)
            self.comm_bytes += recv.nbytes
            self.comm_rounds += 1
            most = int(recv[0::W].max())
            if most <= self._x_cap:
                break
            self._x_cap = max(2 * self._x_cap, most)  # (every rank sees the same counts and grows alike)
        total = int(recv[0::W].sum())
        ids = np.empty(total, np.int64)
        mul = np.empty(total, np.int32)
        ptr = np.empty(J + 1, np.int64)
        km.merge_steps(recv, W, H, R, J, ids, mul, ptr)
        self.comm_seconds += time.perf_counter() - t0
        return ids, mul, ptr, bool(recv[1::W].any())

    def _run_mpi(self, s0, s1, L, C, pr, st, conn, ring, src, rec, work, n_flag, flags):
        """Steps ``s0 .. s1-1`` of this rank, in lockstep with the others; returns the step reached (``s1``, or
        an interval's start when some rank's spike recording could overflow in the next interval)."""
        fams, f_pois, f_one = flags[:3]
        f_pl = flags[3] if len(flags) > 3 else None
        T = work.nsp.shape[0]
        I = int(work.interval[0])
        if T == 1 and s1 > s0:
            return self._run_mpi_one(s0, s1, L, C, pr, st, conn, ring, src, rec, work, n_flag, fams, f_pois, f_one,
                                     f_pl)
        Jmax = max(I, 1)
        M = Jmax + 1
        cap = rec.spk_step.shape[0]
        pend = self.pend[: int(self.pend_n[0])].copy()
        pmul = self.pmul[: pend.size].copy()
        out = np.empty(max(Jmax * work.flag.shape[0], 1), np.int64)
        cnt = np.zeros(Jmax, np.int64)
        upd = (s0, M, pr, st, ring, work, rec, C, L, fams)
        s = s0
        while s < s1:
            J = min(Jmax, s1 - s)
            e = s + J
            if I == 0:  # a delay of one step: the step's events, then its update
                _each(km.deliver_part, T, s, e, pend, pmul, np.array([0, pend.size], np.int64), self._g2l[pend], L, C,
                      conn, ring, src, work, f_pois, f_one, f_pl)
                _each(km.update_part, T, s, e, *upd)
            else:
                _each(km.update_part, T, s, e, *upd)
            m = km.collect(s, e, M, work, self._gid, rec, out, cnt)
            nxt = min(Jmax, s1 - e)
            stop = e < s1 and rec.spk_n[0] + (1 + nxt) * n_flag > cap
            ids, mul, ptr, stop = self._exchange(out, m, cnt, J, stop)
            km.count_events(ids, mul, conn.outdeg, rec.counters)
            if I > 0:  # the events stamped s .. e-1: the spikers of steps s-1 .. e-2
                d_ids = np.concatenate([pend, ids[: ptr[J - 1]]])
                d_mul = np.concatenate([pmul, mul[: ptr[J - 1]]])
                d_ptr = np.concatenate([[0], pend.size + ptr[:J]]).astype(np.int64)
                _each(km.deliver_part, T, s, e, d_ids, d_mul, d_ptr, self._g2l[d_ids], L, C, conn, ring, src, work,
                      f_pois, f_one, f_pl)
            km.skip_sources(e - 1, src)
            pend = ids[ptr[J - 1]: ptr[J]]
            pmul = mul[ptr[J - 1]: ptr[J]]
            s = e
            if stop:
                break
        self.pend[: pend.size] = pend
        self.pmul[: pend.size] = pmul
        self.pend_n[0] = pend.size
        for r in range(rec.rec_var.shape[0]):
            k = rec.rec_k[r]
            rec.rec_cnt[r] = s // k - s0 // k
        return s

    def _buffers(self, H, grow=0):
        """The exchange's buffers for headers of ``H`` words (kept across intervals and calls; made again only
        when ``H`` changes or some rank's spikers outgrow them: ``grow`` of them)."""
        if grow:
            self._x_cap = max(2 * self._x_cap, grow)  # (every rank sees the same counts and grows alike)
        b = getattr(self, "_xbuf", None)
        if b is not None and len(b) == 7 and b[0] == H and b[1] == self._x_cap:
            return b
        R = self._ranks.size
        W = H + self._x_cap
        NG = self.pend.size
        b = (H, self._x_cap, np.zeros(W, np.int64), np.zeros(R * W, np.int64), np.zeros(NG + R * self._x_cap, np.int64),
             np.zeros(NG + R * self._x_cap, np.int64), np.ones(NG + R * self._x_cap, np.int32))
        self._xbuf = b
        return b

    def _run_mpi_one(self, s0, s1, L, C, pr, st, conn, ring, src, rec, work, n_flag, fams, f_pois, f_one, f_pl):
        """:meth:`_run_mpi` on a rank of one partition: :func:`eventsim.engines.clock_mpi.interval_loop` does an
        interval's work (deliver the exchanged spikers, update the next interval, pack its spikers) between
        exchanges of buffers kept across intervals; with an MPI of the MPICH ABI the whole chunk is one
        compiled call (:func:`eventsim.engines.clock_mpi.chunk_loop`, the exchanges made from compiled code),
        elsewhere one mpi4py ``Allgather`` per interval."""
        from mpi4py import MPI

        from . import mpi_native

        comm = self._ranks.comm
        R = self._ranks.size
        Jmax = int(work.interval[0])  # (0: a shortest delay of one step, an exchange after every step)
        H = 2 + max(Jmax, 1)
        _, _, send, recv, dbuf, loc, dmul = self._buffers(H)
        W = send.size
        out = np.empty(max(Jmax, 1) * work.flag.shape[0], np.int64)
        dptr = np.zeros(max(Jmax, 1) + 1, np.int64)
        ptr = np.zeros(max(Jmax, 1) + 1, np.int64)
        ctl = np.zeros(8, np.int64)
        npend = int(self.pend_n[0])
        dbuf[:npend] = self.pend[:npend]
        dmul[:npend] = self.pmul[:npend]
        ctl[0], ctl[2] = s0, npend
        gid, g2l = self._gid, self._g2l
        native = mpi_native.available()
        if native:
            mpi_native.bind()
            handles = (MPI._handleof(comm), MPI._handleof(MPI.INT64_T))
            clock = np.zeros(1)
        first = True
        wait = 0.0
        rounds = 0
        while True:
            args = (first, s0, s1, Jmax, ctl, recv, send, W, H, R, out, dbuf, dmul, dptr, ptr, loc, gid, g2l, n_flag,
                    pr, st, ring, work, rec, L, C, conn, src, fams, f_pois, f_one, f_pl)
            if native:
                r0 = int(ctl[6])
                code = km.chunk_loop(*args, *handles, clock)
                self.comm_bytes += (int(ctl[6]) - r0) * recv.nbytes
            else:
                code = km.interval_loop(*args)
            first = False
            if code == km.DONE:
                break
            if code == km.ERROR:
                raise RuntimeError(f"MPI_Allgather returned error code {int(ctl[5])}")
            if code == km.GROW:
                npend = int(ctl[2])
                pend, pmul, head = dbuf[:npend].copy(), dmul[:npend].copy(), send[:H].copy()
                _, _, send, recv, dbuf, loc, dmul = self._buffers(H, int(ctl[4]))
                W = send.size
                dbuf[:npend], dmul[:npend], send[:H] = pend, pmul, head
                m = int(ctl[3])
                send[H:H + m] = out[:m]
            t0 = time.perf_counter()
            comm.Allgather([send, MPI.INT64_T], [recv, MPI.INT64_T])
            wait += time.perf_counter() - t0
            rounds += 1
            self.comm_bytes += recv.nbytes
        if native:
            wait += float(clock[0])
            rounds += int(ctl[6])
        self.comm_seconds += wait
        self.comm_rounds += rounds
        s = int(ctl[0])
        npend = int(ctl[2])
        self.pend[:npend] = dbuf[:npend]
        self.pmul[:npend] = dmul[:npend]
        self.pend_n[0] = npend
        for r in range(rec.rec_var.shape[0]):
            k = rec.rec_k[r]
            rec.rec_cnt[r] = s // k - s0 // k
        return s

