"""Flatten a Network into structure-of-arrays and drive the clock engine."""

from __future__ import annotations

import os
import time
import warnings

import numba
import numpy as np

from .. import config
from .progress import progress_bar as _progress
from ..rng import POISSON, key_words, poisson_cdf_table, poisson_count_table
from . import clock_cpu as cc
from . import csr
from . import plastic as pl

_PARAM_FIELDS = cc.Params._fields

#: Store the synapses in the column form when a network allows it (see
#: :func:`eventsim.engines.clock_cpu.column_form`); False keeps the offsets
#: (the same results, for comparison).
COLUMN_FORM = True

#: Cost of a plastic synapse in static synapses, for balancing the threads' partitions (measured: about
#: 50 ns per plastic event against 1.5 ns per static one in NEST's hpc_benchmark network).
PLASTIC_COST = 30



def idle_cores(loadavg="/proc/loadavg"):
    """Cores this process may run on that no other runnable thread of the machine wants right now.

    Linux: the number of runnable threads in ``/proc/loadavg`` (this one
    included), the least of a few readings; when the process may use fewer
    cores than the system has (a container), the idle share of the system's
    cores bounds it.  Elsewhere, or if it cannot be read: every core the
    process may use.
    """
    try:
        mine = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        mine = os.cpu_count() or 1
    try:
        readings = []
        for _ in range(3):
            with open(loadavg) as f:
                readings.append(int(f.read().split()[3].split("/")[0]))
    except (OSError, ValueError, IndexError):
        return mine
    others = max(0, min(readings) - 1)
    return max(1, min(mine, (os.cpu_count() or mine) - others))


class TeamTuner:
    """How many CPU threads (and partitions of the neurons) run the next chunk of steps: 1 to ``T``.

    The threads meet once per interval of the shortest delay (once per step
    for a delay of one step).  A network whose intervals hold little work
    (the CUBA network: 4,000 neurons, delays of one step) runs faster on one
    thread than on two, whose meetings cost more than they share; and a
    thread on a busy core makes the others wait.  The team sizes are ``T``,
    ``T // 2``, ..., 1.  The tuner starts from ``start`` (the plan's guess
    from the idle cores and the work between two meetings,
    :meth:`ClockPlan._team_prior`),
    measures its wall time per step over
    :data:`eventsim.config.TEAM_PROBE_STEPS` steps, and every
    :data:`eventsim.config.TEAM_REPROBE_STEPS` steps (or more, see below)
    measures a neighbour of the fastest size so far, the larger and the
    smaller in turn, and moves to it if it is faster (the load of a machine
    changes).  Results
    do not depend on the number of threads, so the choice changes the speed
    only, never a result; a change of team size re-partitions the neurons
    (:meth:`ClockPlan._partition`, milliseconds: Brunel's 12,500 neurons and
    15.6 million synapses take about 50 ms).
    ``eventsim.config.TEAM_TUNING = False`` runs every chunk on ``T`` threads.
    """

    def __init__(self, T, start=None, probe_steps=None, reprobe_steps=None):
        self.T = int(T)
        self.sizes = sorted({self.T >> k for k in range(self.T.bit_length())} | {1}, reverse=True)
        start = self.T if start is None else int(start)
        if start not in self.sizes:
            raise ValueError(f"start must be one of the team sizes {self.sizes}, got {start}")
        self.probe_steps = int(config.TEAM_PROBE_STEPS if probe_steps is None else probe_steps)
        self.reprobe_steps = int(config.TEAM_REPROBE_STEPS if reprobe_steps is None else reprobe_steps)
        self.cost = {}  # team size -> seconds per step, as last measured
        self._acc = {m: [0, 0.0] for m in self.sizes}  # steps and seconds of the measurement under way
        self.best = self.current = start
        self.probing = True
        self._budget = 0  # steps left on ``best`` before the next probe
        self._up = False  # which neighbour of ``best`` the next probe measures
        self.switch_seconds = 0.0  # longest change of team size seen (set by the plan)

    def probe_left(self):
        """Steps left in the measurement under way (the next chunk should stop there), or None."""
        if not self.probing:
            return None
        return max(1, self.probe_steps - self._acc[self.current][0])

    def observe(self, members, steps, seconds):
        """A chunk of ``steps`` steps took ``seconds`` on ``members`` threads (chunks under 100 steps are
        not counted)."""
        if steps < min(self.probe_steps, 100) or members not in self._acc:
            return  # (too short to judge: a call's fixed costs would weigh on its steps)
        acc = self._acc[members]
        acc[0] += steps
        acc[1] += seconds
        if acc[0] >= self.probe_steps:
            self.cost[members] = acc[1] / acc[0]  # (on ``best`` too: fresh for the next comparison)
            acc[0], acc[1] = 0, 0.0
            if self.probing:
                # a probe ended: run on the fastest, long enough before the next probe that the changes
                # of team size cost at most 0.5 % of it
                self.probing = False
                self.best = self.current = min(self.cost, key=self.cost.get)
                self._budget = max(self.reprobe_steps, int(200 * self.switch_seconds / self.cost[self.best]))
                return
        if not self.probing:
            self._budget -= steps
            if self._budget <= 0 and len(self.sizes) > 1:
                i = self.sizes.index(self.best)
                near = [self.sizes[j] for j in (i - 1, i + 1) if 0 <= j < len(self.sizes)]
                self._up = not self._up
                self.current = near[0] if (self._up or len(near) == 1) else near[1]
                self._acc[self.current] = [0, 0.0]
                self.probing = True


class ClockPlan:
    """Flat arrays of a built network plus the loop that feeds the compiled kernel."""

    #: Whether a team tuner may pick the threads per chunk (not under MPI: the ranks' chunks must end alike).
    _TUNED = True

    def __init__(self, net, params, state, conn_parts, ring_shape, sources, spk_flag, dc, i_e, plastic=None):
        self.net = net
        # plastic synapses (eventsim.engines.plastic): (arrays, order of the projections' connections, rules)
        self.plastic, self._pl_order, self._pl_rules = plastic if plastic is not None else (None, None, ())
        self.i_e = i_e  # float64 per neuron: the models' bias currents (pA), see _apply_dc
        self.params = params
        self.state = state
        self.L, self.C = ring_shape
        self.ring = np.zeros(self.L * self.C, state.v.dtype)
        self._syn_off, self._syn_w, self._row_ptr, row_delays = conn_parts
        self._sources_base = sources
        self.dc = dc  # list of (start_step, stop_step, targets, currents)
        self._set_recorders(spk_flag)
        self.spk_buf_step = np.zeros(max(config.SPIKE_BUFFER_INITIAL, 2 * self.n_flag), np.int64)
        self.spk_buf_id = np.zeros_like(self.spk_buf_step)
        self.counters = np.zeros(2, np.int64)
        self._dc_edges = sorted({e for (a, b, _, _) in dc for e in (a, b)})
        N = params.pid.size
        self.pend = np.zeros(N, np.int64)
        self.pmul = np.ones(N, np.int32)  # the pending spikes' multiplicities
        self.pend_n = np.zeros(1, np.int64)
        self.T = None
        self._row_const = None
        self._row_delays = row_delays  # (dmin, dmax) int32 per sender, steps (empty row: L, 0)
        self._partition(self._team_prior(numba.get_num_threads()))

    def _set_recorders(self, spk_flag):
        """The recorders' arrays, from the network's recorders in creation order."""
        net = self.net
        self.spk_flag = spk_flag
        self.n_flag = int(spk_flag.sum())
        self.spike_recorders = [r for r in net.recorders if r.kind == "spikes"]
        self.weight_recorders = [r for r in net.recorders if r.kind == "weights"]
        self.state_recorders = [r for r in net.recorders if r.kind == "state"]
        idx = [r.group.ids for r in self.state_recorders]
        self.rec_var = np.array([var_code(net, r.group.ids, r.variable) for r in self.state_recorders], np.int64)
        self.rec_k = np.array([r.interval_steps for r in self.state_recorders], np.int64)
        self.rec_ptr = np.concatenate([[0], np.cumsum([i.size for i in idx])]).astype(np.int64)
        self.rec_idx = np.concatenate(idx).astype(np.int64) if idx else np.zeros(0, np.int64)

    # ------------------------------------------------------------------ changes between runs
    def refresh(self, changes):
        """Apply the network's changes made since the last run; returns the plan to use from now on.

        ``changes`` is a set of ``"params"`` (model parameters), ``"sources"``
        (Poisson rates, explicit spikes), ``"dc"`` (DC amplitudes and
        windows), ``"recorders"`` (new recorders) and ``"structure"`` (new
        populations, sources, connections or weights).  Structural changes
        build a new plan and carry the engine state over to it (neuron
        state, ring-buffer contents at their arrival times, pending spikes,
        counters); the others update this plan in place.  Either way the
        next run continues as if the network had been built with the
        changes from the start and had reached this step with this state.
        """
        # a device copy (eventsim.engines.clock_cuda) is made again from the host arrays (current between runs)
        self.revision = self.__dict__.get("revision", 0) + 1
        if "structure" in changes:
            self._store_plastic_weights()
            new = build_plan(self.net)
            new._take_state(self)
            new.spk_buf_step = np.zeros(max(new.spk_buf_step.size, self.spk_buf_step.size), np.int64)
            new.spk_buf_id = np.zeros_like(new.spk_buf_step)
            return new
        net = self.net
        if "params" in changes:
            params, i_e, K = _build_params(net)
            layout = (self.state.theta.shape[1], self.state.x.shape[1])
            if state_layout(net) != layout or not np.array_equal(params.is_exp[params.pid],
                                                                 self.params.is_exp[self.params.pid]):
                raise AssertionError("parameter changes may not change the state layout")  # validated in set()
            self.params, self.i_e = params, i_e
        if "sources" in changes:
            self._sources_base = _build_sources(net)
        if "dc" in changes:
            self.dc = _build_dc(net)
            self._dc_edges = sorted({e for (a, b, _, _) in self.dc for e in (a, b)})
        if "recorders" in changes:
            self._set_recorders(_spike_flags(net))
            need = max(config.SPIKE_BUFFER_INITIAL, 2 * self.n_flag)
            if self.spk_buf_step.size < need:
                self.spk_buf_step = np.zeros(need, np.int64)
                self.spk_buf_id = np.zeros_like(self.spk_buf_step)
        self._partition(self.T)
        return self

    def _plastic_projections(self):
        return [p for p in self.net.projections if getattr(p, "synapse", None) is not None]

    def plastic_weights(self, proj):
        """The current weights of plastic projection ``proj``, in its connections' order (read-only)."""
        P = self.plastic
        offset = 0
        for p in self._plastic_projections():
            if p is proj:
                break
            offset += len(p)
        if offset + len(proj) > P.w.size:  # (a projection made after the plan: its initial weights)
            return proj._weight
        w = np.empty(P.w.size, P.w.dtype)
        w[self._pl_order] = P.w
        out = w[offset: offset + len(proj)]
        out.setflags(write=False)
        return out

    def _store_plastic_weights(self):
        """Write the current plastic weights into their projections (before the plan is rebuilt)."""
        if self.plastic is None:
            return
        for p in self._plastic_projections():
            if p.__dict__.pop("_weight_set", False):
                continue  # weights assigned since the last run win
            if len(p):
                p._weight = self.plastic_weights(p)

    def get_state(self, name, ids):
        """float64 values of state variable ``name`` of neurons ``ids`` (network indices).

        ``name``: a field of the state (``"v"``, ``"i_ex"``, ``"i_in"``, ``"theta"``: the sum of the
        threshold components) or an int, a column of a family's own state ``x`` (a model's
        ``state_columns`` maps its names to these).
        """
        st = self.state
        if name == "theta":
            return st.theta[ids].sum(axis=1).astype(np.float64)
        return state_column(st, name)[ids].astype(np.float64)

    def set_state(self, name, ids, values):
        """Set state variable ``name`` (a field name or a column of ``x``, as :meth:`get_state`) of neurons ``ids``."""
        state_column(self.state, name)[ids] = values

    def _take_state(self, old):
        """Carry the engine state of ``old`` (a plan of the same network before structural changes)
        over to this plan: neurons keep their indices, new neurons keep their initial state."""
        n = old.params.pid.size
        for dst, src in zip(self.state, old.state):
            if dst.ndim == 2:
                dst[:n, : src.shape[1]] = src
            else:
                dst[:n] = src
        # ring: the inputs already on their way arrive at steps s+1 .. s+L_old-1 (the slot of step
        # s+L_old is the one the last update read and cleared); columns keep their neuron and receptor
        s = self.net._step
        N, C = self.params.pid.size, self.C
        old_ring = old.ring.reshape(old.L, old.C)
        ring = self.ring.reshape(self.L, C)
        cols = np.arange(old.C)
        new_cols = (cols // n) * N + cols % n if n else cols  # (block k of the ring: columns k N + neuron)
        for a in range(s + 1, s + old.L):
            ring[a % self.L, new_cols] = old_ring[a % old.L]
        self.pend[: old.pend.size] = old.pend
        self.pmul[: old.pmul.size] = old.pmul
        self.pend_n[:] = old.pend_n
        self.counters[:] = old.counters
        if old.plastic is not None:  # traces and spike histories (the weights came with the projections)
            P, Q = self.plastic, pl.grow_history(old.plastic, max(self.plastic.hs.shape[1], old.plastic.hs.shape[1]))
            P = pl.grow_history(P, Q.hs.shape[1])
            R2 = Q.kp.shape[1]  # (two traces per rule; rules are only ever appended)
            npre = Q.kp.shape[2]  # (presynaptic neurons: n, or over MPI ranks the network's)
            P.kp[:, :R2, :npre] = Q.kp[0]
            P.tl[:, :npre] = Q.tl[0]
            P.hs[:n] = Q.hs
            P.hk[:n, :, :R2] = Q.hk
            P.hn[:n] = Q.hn
            P.km[:n, :R2] = Q.km
            P.lp[:n] = Q.lp
            _fill_new_rows(P, old._pl_rules, self._pl_rules, n)
            self.plastic = P

    def _offsets(self, syn, sender):
        """``delay * C + column`` (int64) of synapses ``syn`` of senders ``sender``, whatever the form."""
        off = self._syn_off[syn].astype(np.int64)
        if cc.column_form(self._syn_off):
            off += self._row_delays[0][sender].astype(np.int64) * self.C
        return off

    def __getstate__(self):
        """Pickle without the buffers of the chunks' snapshots (:meth:`_plastic_snapshot`)."""
        state = dict(self.__dict__)
        state.pop("_pl_snap", None)
        return state

    def __setstate__(self, state):
        """Unpickle; a plan saved before the Poisson count tables and channel runs gets them here."""
        self.__dict__.update(state)
        for name, default in (("plastic", None), ("_pl_order", None), ("_pl_rules", ()), ("weight_recorders", [])):
            self.__dict__.setdefault(name, default)  # (plans pickled before plastic synapses)
        if self.params.family is None:  # (plans pickled before neuron families were data)
            from ..models.adaptive import ALIF_FAMILY
            from ..models.lif import IAF_DELTA, IAF_EXP

            fam = np.where(self.params.is_exp != 0, IAF_EXP.code, IAF_DELTA.code).astype(np.int64)
            if self.params.p_theta.shape[1] > 0:
                fam[:] = ALIF_FAMILY.code
            self.params = self.params._replace(family=fam)
        if self.params.counts is None:  # (plans pickled before spike multiplicities)
            self.params = self.params._replace(counts=np.zeros(self.params.v_th.size, np.int64))
        if "pmul" not in self.__dict__:
            self.pmul = np.ones(self.pend.size, np.int32)
        if self.params.coef is None:  # (plans pickled before families had storage of their own)
            self.params = self.params._replace(coef=np.zeros((self.params.v_th.size, 0)))
            self.state = self.state._replace(x=np.zeros((self.state.v.size, 0), self.state.v.dtype))
        if "tab" not in self._sources_base:
            cdf = self._sources_base["cdf"]
            self._sources_base["tab"] = np.stack([poisson_count_table(row, cc.TAB) for row in cdf])
        if (self.sources.tab is None or self.work.seg_dc is None or self.conn.row_cw is None
                or self.conn.row_dmin is None or self.work.interval is None
                or self.sources.one_u.dtype != np.uint32  # (float64 uniforms before the uint32 words)
                or self.sources.one_sptr is None  # (one range of Philox groups per partition before sub-ranges)
                or self.work.imul is None):  # (before spike multiplicities)
            self._partition(self.T)

    # ------------------------------------------------------------------ threads
    def _interval(self):
        """Steps between two meetings of the CPU threads, minus one: below the shortest delay, at most
        ``cc.INTERVAL_MAX`` (:func:`.clock_cpu.run_clock`)."""
        dmin = self._row_delays[0]
        used = np.diff(self._row_ptr) > 0
        d_short = int(dmin[used].min()) if used.any() else self.L
        if self.plastic is not None:
            d_short = min(d_short, int(self.plastic.dly.min()))
        d_short = min(d_short, self.__dict__.get("_d_global", d_short))  # (MPI: the shortest delay of all ranks)
        return max(0, min(d_short - 1, cc.INTERVAL_MAX))

    def _team_prior(self, T):
        """The team size a tuner starts from: the largest of ``T``, ``T // 2``, ..., 1 that is at most the
        number of idle cores (:func:`idle_cores`) and whose threads each get at least
        ``config.TEAM_WORK_PER_THREAD`` neuron updates and Poisson channels between two meetings (the
        tuner then measures its neighbours)."""
        if not config.TEAM_TUNING or T <= 1 or self.__dict__.get("_row_delays") is None:
            return T
        work = (self._interval() + 1) * (self.params.pid.size + self._sources_base["pois_sender"].size)
        idle = idle_cores()
        k = 0
        while (T >> k) > 1 and (work < config.TEAM_WORK_PER_THREAD * (T >> k) or (T >> k) > idle):
            k += 1
        return max(T >> k, 1)

    def _partition(self, T):
        """Split the neurons into ``T`` contiguous ranges of similar work and the rows accordingly."""
        N = self.params.pid.size
        T = max(1, min(int(T), max(N, 1)))
        C = self.C
        row_ptr = self._row_ptr
        n_send = row_ptr.size - 1
        outdeg = np.diff(row_ptr)
        # cost of a neuron: its update plus its incoming synapses (both receptor columns)
        cost = csr.column_counts(self._syn_off, C)
        B = C // max(N, 1)  # receptor blocks of the ring: columns k * N + n
        neuron_cost = cost[:B * N].reshape(B, N).sum(axis=0) + 8
        if self.plastic is not None:  # a plastic synapse costs its weight update too (about 30 static ones)
            neuron_cost = neuron_cost + PLASTIC_COST * np.bincount(self.plastic.tgt, minlength=N)[:N]
        cum = np.concatenate([[0], np.cumsum(neuron_cost)])
        part = np.searchsorted(cum, np.linspace(0, cum[-1], T + 1), side="left").astype(np.int64)
        part[0], part[-1] = 0, N
        part = np.maximum.accumulate(part)
        # partition t owns columns part[t]..part[t+1]-1 and, with B receptor blocks, also
        # k N + part[t]..k N + part[t+1]-1: its sub-row of block k is row_split[s, kT+t : kT+t+2]
        colb = np.concatenate([part] + [k * N + part[1:] for k in range(1, B)])
        row_split = np.empty((n_send, colb.size), np.int64)
        csr.split_rows(row_ptr, self._syn_off, C, colb, row_split)
        if self.__dict__.get("_row_const") is None:  # senders of one weight: independent of T, found once
            row_cw = np.zeros(n_send, np.uint8)
            row_w = np.zeros(n_send, self._syn_w.dtype)
            csr.constant_rows(row_ptr, self._syn_w, row_cw, row_w)
            self._row_const = (row_cw, row_w)
        row_cw, row_w = self._row_const
        if self.__dict__.get("_row_delays") is None:  # a plan saved before the delay ranges (offsets form)
            dmin = np.empty(n_send, np.int32)
            dmax = np.empty(n_send, np.int32)
            csr.delay_ranges(row_ptr, self._syn_off, C, self.L, dmin, dmax)
            self._row_delays = (dmin, dmax)
        dmin, dmax = self._row_delays
        self.conn = cc.Conn(row_split=row_split, outdeg=outdeg.astype(np.int64), syn_off=self._syn_off,
                            syn_w=self._syn_w, row_cw=row_cw, row_w=row_w, row_dmin=dmin, row_dmax=dmax)
        b = self._sources_base
        ps = b["pois_sender"]
        # channels with one synapse in all (and a tabulated rate) go to the compact one_* lists:
        # a property of the channel, not of the partitioning
        # (MPI: by the channel's synapses on all ranks, so that every rank adds in the single process's order)
        one = (self.__dict__.get("_outdeg_global", outdeg)[ps] == 1) & (b["pois_lam"] < 12.0)
        ptr, lst, one_ptr, one_lst = [0], [], [0], []
        for t in range(T):
            inside = row_split[ps, t + 1] > row_split[ps, t]
            for k in range(1, B):
                inside |= row_split[ps, k * T + t + 1] > row_split[ps, k * T + t]
            has = np.flatnonzero(inside & ~one)
            lst.append(has)
            ptr.append(ptr[-1] + has.size)
            has1 = np.flatnonzero(inside & one)
            one_lst.append(has1)
            one_ptr.append(one_ptr[-1] + has1.size)
        cat = lambda xs: np.concatenate(xs).astype(np.int64) if xs else np.zeros(0, np.int64)  # noqa: E731
        j1 = cat(one_lst)
        syn1 = row_ptr[ps[j1]]
        one_ch = b["pois_channel"][j1].astype(np.int64)
        one_cls = b["pois_cls"][j1].astype(np.int64)
        one_off = self._offsets(syn1, ps[j1])
        one_w = self._syn_w[syn1].copy()
        one_run, run_ptr = _channel_runs(one_ch, one_cls, one_off, one_w, np.array(one_ptr, np.int64), C)
        one_sptr, one_rptr, one_gptr, one_g0 = _group_ranges(one_ch, one_run, run_ptr)
        self.sources = cc.Sources(pois_ptr=np.array(ptr, np.int64), pois_list=cat(lst),
                                  one_ptr=np.array(one_ptr, np.int64), one_ch=one_ch, one_cls=one_cls,
                                  one_off=one_off, one_w=one_w, one_gptr=one_gptr, one_g0=one_g0,
                                  one_u=np.zeros(4 * int(one_gptr[-1]), np.uint32), one_run=one_run,
                                  one_rptr=one_rptr, one_sptr=one_sptr, **b)
        if self.plastic is not None:
            # (the CUDA engine keeps one copy of the presynaptic traces, updated after each step)
            self.plastic = pl.partition(self.plastic, part, 1 if self.net.backend == "cuda" else None)
        I = self._interval()
        M = max(I, 1) + 1
        # runs of neurons sharing one parameter set, cut at the partition bounds
        pid = self.params.pid
        seg = np.union1d(np.flatnonzero(np.diff(pid)) + 1, part).astype(np.int64)
        seg_ptr = np.searchsorted(seg, part).astype(np.int64)
        # per run: the constant input shared by all its neurons, if it is shared (set by _apply_dc)
        self.work = cc.Work(part=part, spk=np.zeros(N, np.int64), nsp=np.zeros(T, np.int64), pend=self.pend,
                            pend_n=self.pend_n, ext=np.zeros(T, np.int64), seg=seg, seg_ptr=seg_ptr,
                            flag=np.zeros(N, np.uint8), seg_dc=np.zeros(max(seg.size - 1, 0), self.state.i_dc.dtype),
                            seg_dcu=np.zeros(max(seg.size - 1, 0), np.uint8),
                            isp=np.zeros(M * N, np.int64), insp=np.zeros(M * T, np.int64),
                            interval=np.array([I], np.int64), imul=np.ones(M * N, np.int32),
                            smul=np.ones(N, np.int32), pmul=self.pmul)
        self.T = T

    def _apply_dc(self, step):
        """Constant input current of every neuron at ``step``: its model's ``i_e`` plus the DC sources on."""
        dc = np.zeros(self.i_e.size)
        for a, b, targets, currents in self.dc:
            if a <= step < b:
                np.add.at(dc, targets, currents)
        # summed in float64, then stored in the state's precision
        i_dc = self.state.i_dc
        i_dc[:] = self.i_e + dc
        # runs of neurons whose inputs are all equal take theirs as a loop constant
        w = self.work
        if w.seg_dc.size:
            lo = w.seg[:-1]
            first = i_dc[lo]
            w.seg_dc[:] = first
            w.seg_dcu[:] = np.logical_and.reduceat(i_dc == np.repeat(first, np.diff(w.seg)), lo)

    # ------------------------------------------------------------------ running
    def _snapshot(self):
        st = self.state
        plastic = None if self.plastic is None else self._plastic_snapshot()
        return ([a.copy() for a in st], self.ring.copy(), self.pend.copy(), self.pmul.copy(), self.pend_n.copy(),
                self.sources.ss_ptr.copy(), self.counters.copy(), self.net._step, plastic)

    def _plastic_snapshot(self):
        """Copies of the plastic arrays a chunk changes (``pl.MUTABLE``), in buffers kept from one chunk to
        the next: the weights of a large network take hundreds of MB, and fresh copies at every chunk cost
        their page faults each time (NEST's hpc_benchmark network at scale 0.2: 130 MB of weights, a chunk
        every 38 ms of network time)."""
        arrays = [getattr(self.plastic, nm) for nm in pl.MUTABLE]
        bufs = self.__dict__.get("_pl_snap")
        if bufs is None or any(b.shape != a.shape or b.dtype != a.dtype for b, a in zip(bufs, arrays)):
            bufs = [np.empty_like(a) for a in arrays]
            self._pl_snap = bufs
        for b, a in zip(bufs, arrays):
            np.copyto(b, a)
        return bufs

    def _restore(self, snap):
        arrays, ring, pend, pmul, pend_n, ss_ptr, counters, step, plastic = snap
        if plastic is not None:
            for nm, a in zip(pl.MUTABLE, plastic):
                getattr(self.plastic, nm)[...] = a
        for dst, src in zip(self.state, arrays):
            dst[...] = src
        self.ring[:] = ring
        self.pend[:] = pend
        self.pmul[:] = pmul
        self.pend_n[:] = pend_n
        self.sources.ss_ptr[:] = ss_ptr
        self.counters[:] = counters
        self.work.ext[:] = 0
        self.net._step = step

    def _finite(self):
        st = self.state
        return bool(np.isfinite(st.v).all() and np.isfinite(st.i_ex).all() and np.isfinite(st.i_in).all()
                    and np.isfinite(st.theta).all() and np.isfinite(st.x).all())

    def _raise_non_finite(self, snap):
        """Name the first non-finite neuron, restore ``snap`` and raise."""
        st = self.state
        bad = ~finite_rows(st)
        n = int(np.flatnonzero(bad)[0])
        self._restore(snap)
        pop = next(p for p in self.net.populations if p.offset <= n < p.offset + p.n)
        t = (self.net._step + 1) * self.net.dt
        raise FloatingPointError(
            f"non-finite state in population {pop!r}, neuron {n - pop.offset} (network index {n}) in the "
            f"step ending at t = {t} ms; the network is left at t = {self.net.t} ms, its last finite state")

    def _chunk_end(self, s, target):
        """End of the chunk starting at step ``s``: at most CHUNK_STEPS, never across a DC switch (and, with
        plastic synapses, short enough for the spike histories, which grow here if needed)."""
        end = min(target, s + config.CHUNK_STEPS)
        for r in self.weight_recorders:  # the engine stops at each weight sample
            end = min(end, (s // r.interval_steps + 1) * r.interval_steps)
        if self.plastic is not None:
            min_isi = int(self.params.ref_steps.min()) + 1 if self.params.ref_steps.size else 1
            if self.__dict__.get("_pl_dly") is not self.plastic.dly:  # (the longest plastic delay, once)
                self._pl_dly = self.plastic.dly
                self._pl_dmax = int(self.plastic.dly.max(initial=0))
            H, steps = pl.room(self.plastic, s, end - s, min_isi, self._pl_dmax)
            self.plastic = pl.grow_history(self.plastic, H)
            end = s + max(1, min(end - s, steps))
        for e in self._dc_edges:
            if s < e < end:
                return e
        return end

    def _chunk(self, run, s, end):
        """Run steps s..end once; return (reached, recording)."""
        self._apply_dc(s)
        counts = (end // self.rec_k) - (s // self.rec_k)
        sizes = counts * np.diff(self.rec_ptr)
        off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        rec = cc.Recording(self.spk_flag, self.spk_buf_step, self.spk_buf_id, np.zeros(1, np.int64),
                           self.rec_var, self.rec_k, self.rec_ptr, self.rec_idx, off[:-1].copy(),
                           np.zeros(self.rec_var.size, np.int64), np.zeros(int(off[-1])), self.counters)
        flags = cc.features(self.params, self.sources) + (self.plastic,)
        reached = run(s, end, self.L, self.C, self.params, self.state, self.conn, self.ring, self.sources, rec,
                      self.work, self.n_flag, flags)
        if reached < 0:
            # the threads could not be gathered (nothing was done): this chunk on one thread
            warnings.warn(f"{self.T} threads could not be started together; steps {s}..{end} run on one thread "
                          "(the same results)", RuntimeWarning, stacklevel=6)
            self._partition(1)
            reached = run(s, end, self.L, self.C, self.params, self.state, self.conn, self.ring, self.sources,
                          rec, self.work, self.n_flag, flags)
        return reached, rec

    def _commit(self, s, reached, rec):
        """Commit the chunk of steps ``s..reached``: recorders, counters, then the step counter.

        Two phases, so that an exception (or KeyboardInterrupt) landing on
        any line leaves either the whole chunk or nothing: the recorders
        stage the chunk's rows and write them durably (files marked
        committed), then ``net._step`` moves (the commit point), then the
        recorders settle.  :meth:`_abort` completes or undoes a commit that
        was interrupted, according to ``net._step``.
        """
        self._collect(s, reached, rec)
        for r in self.net.recorders:  # streaming recorders flush here: the chunk is complete
            r._commit(reached)
        self.counters[1] += self.work.ext.sum()
        self.work.ext[:] = 0
        self.net._step = reached  # the commit point
        for r in self.net.recorders:
            r._settle()

    def _abort(self, snap, s):
        """Leave the network at a chunk boundary after an exception in the chunk that started at ``s``.

        Before the commit point the chunk is undone (state, ring, pending
        spikes, source pointers and counters back to ``snap``, every
        recorder back to its last settled rows); after it, the commit is
        completed.  Never raises.
        """
        if self.net._step != s:
            for r in self.net.recorders:
                r._settle()
        else:
            self._restore(snap)
            for r in self.net.recorders:
                r._rollback()

    def _transaction(self, chunk, s, end, single=False):
        """Run steps ``s..end`` with ``chunk(s, end)`` and commit them, or leave everything as it was.

        Returns the step reached, or None when the chunk ended in a
        non-finite state (then undone); with ``single`` (a one-step chunk)
        that raises FloatingPointError instead.  Any exception, including
        KeyboardInterrupt, leaves the network and every recorder at the last
        committed chunk (:meth:`_abort`) and propagates.
        """
        snap = self._snapshot()
        try:
            reached, rec = chunk(s, end)
            if not self._finite():
                if single:
                    self._raise_non_finite(snap)
                self._restore(snap)
                return None
            self._commit(s, reached, rec)
            return reached
        except BaseException:
            self._abort(snap, s)
            raise

    def advance(self, n_steps, progress=None):
        """Simulate ``n_steps`` steps.

        A NaN or infinity in the neuron state stops the run with a
        FloatingPointError naming the population, neuron and time; the
        network is left in its last finite state (recorders included).

        Each chunk of steps is a transaction: any exception inside the run
        (KeyboardInterrupt included, or a recording file that cannot be
        written) leaves ``net.t``, the state, ring buffer, pending spikes,
        source pointers, counters and every recorder (in memory and on disk)
        at the end of the last committed chunk, so a later ``run()``
        continues exactly as an uninterrupted run.
        """
        net = self.net
        if net.backend == "cuda":
            from . import clock_cuda

            clock_cuda.advance(self, n_steps, progress)
            return
        T = max(1, min(numba.get_num_threads(), self.params.pid.size))
        tuner = self.__dict__.get("tuner")
        if not config.TEAM_TUNING or T == 1 or not self._TUNED:
            tuner = None
        elif tuner is None or tuner.T != T:
            tuner = TeamTuner(T, start=self._team_prior(T))
        self.tuner = tuner
        if tuner is None and T != self.T:
            self._partition(T)
        chunk = self._cpu_chunk
        target = net._step + n_steps
        bar = _progress(net, n_steps, progress)
        try:
            while net._step < target:
                s = net._step
                end = self._chunk_end(s, target)
                left = self.tuner.probe_left() if self.tuner is not None else None
                if left is not None:
                    end = min(end, s + left)
                reached = self._transaction(chunk, s, end)
                if reached is None:
                    # replay the chunk step by step to stop at the last finite state
                    while True:
                        self._transaction(chunk, net._step, net._step + 1, single=True)
                if bar is not None:
                    bar.update(reached - s)
                if reached < end:  # the spike buffer could have overflowed: grow it
                    self._grow_spike_buffer()
        finally:
            if bar is not None:
                bar.close()

    def _cpu_chunk(self, s, end):
        """Steps ``s..end`` on the CPU threads (as many as :attr:`tuner` says); returns ``(reached, recording)``."""
        tuner = self.__dict__.get("tuner")
        if tuner is None:
            return self._chunk(cc.run_steps, s, end)
        if tuner.current != self.T:
            t0 = time.perf_counter()
            self._partition(tuner.current)
            tuner.switch_seconds = max(tuner.switch_seconds, time.perf_counter() - t0)
        T = self.T
        took = []

        def run(*args):
            t0 = time.perf_counter()
            reached = cc.run_steps(*args)
            took.append((reached - args[0], time.perf_counter() - t0))
            return reached

        reached, rec = self._chunk(run, s, end)
        if T == self.T:  # (not when the chunk fell back to one thread)
            tuner.observe(T, took[-1][0], took[-1][1])  # (the last call did the steps)
        return reached, rec

    def _grow_spike_buffer(self):
        """Double the recorded-spike buffer (a chunk stopped early because it could have overflowed)."""
        new = 2 * self.spk_buf_step.size
        self.spk_buf_step = np.zeros(new, np.int64)
        self.spk_buf_id = np.zeros(new, np.int64)

    def _collect(self, s, reached, rec):
        for r in self.weight_recorders:
            if reached > s and reached % r.interval_steps == 0:
                r._sample(reached)
        m = int(rec.spk_n[0])
        steps, ids = cc.split_multiplicity(rec.spk_step[:m].copy(), rec.spk_id[:m].copy())
        for r in self.spike_recorders:
            mask = np.isin(ids, r._ids)
            r._append(steps[mask], ids[mask])
        for j, r in enumerate(self.state_recorders):
            c = int(rec.rec_cnt[j])
            n = int(self.rec_ptr[j + 1] - self.rec_ptr[j])
            vals = rec.rec_buf[rec.rec_off[j]: rec.rec_off[j] + c * n].reshape(c, n)
            k = r.interval_steps
            first = (s // k + 1) * k
            r._append(np.arange(first, first + c * k, k, dtype=np.int64), vals.copy())


def _channel_runs(ch, cls, off, w, ptr, C):
    """Cut the single-synapse channels into runs the kernel adds with one loop each.

    A run is a maximal range of entries with consecutive channels, one rate
    row, one weight, and synapses to consecutive ring columns of one delay
    row (column ``off % C`` consecutive), never across a partition bound
    ``ptr``.  Returns ``(run, rptr)``: run ``r`` is entries
    ``run[r] .. run[r+1]-1``, and partition ``t`` has runs
    ``rptr[t] .. rptr[t+1]-1``.
    """
    n = ch.size
    brk = np.ones(n, bool)
    if n > 1:
        col = off % C
        brk[1:] = ((ch[1:] != ch[:-1] + 1) | (cls[1:] != cls[:-1]) | (w[1:] != w[:-1])
                   | (off[1:] != off[:-1] + 1) | (col[1:] != col[:-1] + 1))
    run = np.union1d(np.flatnonzero(brk), ptr).astype(np.int64)
    rptr = np.searchsorted(run, ptr).astype(np.int64)
    return run, rptr


def _group_ranges(one_ch, run, rptr):
    """Cut each partition's runs of single-synapse channels into sub-ranges, and give each sub-range its range
    of Philox groups (4 channels each).

    A partition's channels are ascending; a new sub-range starts where the
    next run's first group lies more than ``config.POISSON_GROUP_GAP``
    groups after the groups drawn so far (e.g. an MPI rank, which owns a
    block of every population: without the cut it would draw the groups of
    the other ranks' blocks in between).  Returns ``(sptr, srptr, gptr,
    g0)``: partition ``t`` has sub-ranges ``sptr[t] .. sptr[t+1]-1``;
    sub-range ``k`` has runs ``srptr[k] .. srptr[k+1]-1`` and draws groups
    ``g0[k] ..`` into ``4 * (gptr[k + 1] - gptr[k])`` uniforms of scratch,
    all in one vectorised pass per step, when its range is dense (at most
    ``config.POISSON_GROUP_SPAN`` groups per channel of the sub-range);
    otherwise its range is empty and its channels are drawn one group at a
    time.  Either way the counts are the same, and the runs are added in the
    same order.
    """
    T = len(rptr) - 1
    gap = int(config.POISSON_GROUP_GAP)
    sptr = [0]
    srptr = []
    bounds = []  # (lo, hi, channels) per sub-range
    for t in range(T):
        for r in range(int(rptr[t]), int(rptr[t + 1])):
            a, b = int(run[r]), int(run[r + 1])
            ga, gb = int(one_ch[a]) >> 2, int(one_ch[b - 1]) >> 2
            if len(srptr) > sptr[-1] and ga <= bounds[-1][1] + gap:
                lo, hi, n = bounds[-1]
                bounds[-1] = (lo, max(hi, gb), n + b - a)
            else:
                srptr.append(r)
                bounds.append((ga, gb, b - a))
        sptr.append(len(srptr))
    srptr.append(int(rptr[T]))
    S = len(bounds)
    gptr = np.zeros(S + 1, np.int64)
    g0 = np.zeros(S, np.int64)
    for k, (lo, hi, n) in enumerate(bounds):
        n_g = 0
        if hi - lo + 1 <= config.POISSON_GROUP_SPAN * n:
            g0[k], n_g = lo, hi - lo + 1
        gptr[k + 1] = gptr[k] + n_g
    return np.array(sptr, np.int64), np.array(srptr, np.int64), gptr, g0


def var_code(net, ids, variable):
    """The clock engine's recorder code of state variable ``variable`` of network neurons ``ids``."""
    from ..models.family import state_key

    keys = {state_key(p.model, variable) for p in net.populations
            if ((ids >= p.offset) & (ids < p.offset + p.n)).any()} or {variable}
    if len(keys) > 1:
        raise ValueError(f"state variable {variable!r} is stored differently in the populations of this group; "
                         "record each population on its own")
    key = keys.pop()
    return cc.X_CODE + int(key) if isinstance(key, (int, np.integer)) else cc.VAR_CODES[key]


def finite_rows(st):
    """bool per neuron: every state variable of the neuron is finite."""
    return (np.isfinite(st.v) & np.isfinite(st.i_ex) & np.isfinite(st.i_in) & np.isfinite(st.theta).all(axis=1)
            & np.isfinite(st.x).all(axis=1))


def state_column(st, key):
    """The per-neuron array of state variable ``key``: a field of ``st`` by name, or column ``key`` of ``st.x``."""
    if isinstance(key, (int, np.integer)):
        return st.x[:, int(key)]
    return getattr(st, key)


def _fill_new_rows(P, old_rules, rules, n):
    """The postsynaptic traces of the rule rows added since ``old_rules`` (rows made by projections after a
    run), for the first ``n`` neurons: each copied from the first old row with a trace of the same time
    constant (rows follow the projections' generations), whose values it takes (every row's traces follow
    every spike of a neuron with plastic input: the same operations); zeros where no old row has that time
    constant.  Both are exact on every neuron the new rows reach (``Network._check_late_plastic``)."""
    for r in range(len(old_rules), len(rules)):
        for m, tau in enumerate(rules[r].post_taus):
            src = [(r0, m0) for r0, rule in enumerate(old_rules) for m0, t0 in enumerate(rule.post_taus) if t0 == tau]
            if src:
                a, b = pl.MAX_TRACES * src[0][0] + src[0][1], pl.MAX_TRACES * r + m
                P.km[:n, b] = P.km[:n, a]
                P.hk[:n, :, b] = P.hk[:n, :, a]


def build_plan(net):
    """Build the engine arrays of ``net``; the network itself is left untouched on error."""
    if getattr(net, "_dist", None) is not None:  # this MPI rank's part (eventsim.engines.plan_mpi)
        from .plan_mpi import build_distributed_plan

        return build_distributed_plan(net)
    N = net.n_neurons
    params, i_e, K = _build_params(net)
    state = initial_state(net)
    conn_parts, ring_shape = _build_connectivity(net, params)
    plastic = pl.build(net, params, N, net.weight_dtype, np.array([0, N], np.int64))
    return ClockPlan(net, params, state, conn_parts, ring_shape, _build_sources(net), _spike_flags(net),
                     _build_dc(net), i_e, plastic)


_MATRIX_FIELDS = ("p_theta", "d_theta", "coef")  # parameter fields with several columns per set


def _pack(model, n, dt):
    """``model.pack(n, dt)`` with the family storage's fields a model may leave out (zero columns)."""
    pk = dict(model.pack(n, dt))
    pk.setdefault("counts", np.full(n, int(model.family.counts), np.int64))
    pk.setdefault("coef", np.zeros((n, 0)))
    pk.setdefault("x_init", np.zeros((n, 0)))
    return pk


def _columns(packs, pops, name, N):
    """``[N, K]`` float64 field ``name`` of every population's pack, zero-padded to the widest."""
    K = max([pk[name].shape[1] for pk in packs] + [0])
    arr = np.zeros((N, K))
    o = 0
    for pk, pop in zip(packs, pops):
        arr[o:o + pop.n, : pk[name].shape[1]] = pk[name]
        o += pop.n
    return arr


def state_layout(net):
    """``(K, KX)``: threshold components and family state columns of ``net``'s neurons (the state's shape)."""
    packs = [_pack(p.model, p.n, net.dt) for p in net.populations]
    return tuple(max([pk[nm].shape[1] for pk in packs] + [0]) for nm in ("p_theta", "x_init"))


def initial_state(net, ids=None):
    """The engine state of ``net``'s neurons before any run (``ids``: of these network neurons only)."""
    fdt = getattr(net, "dtype", np.dtype(np.float64))
    packs = [_pack(p.model, p.n, net.dt) for p in net.populations]
    v0 = np.concatenate([p.v_init for p in net.populations]) if net.populations else np.zeros(0)
    K = max([pk["p_theta"].shape[1] for pk in packs] + [0])
    x0 = _columns(packs, net.populations, "x_init", net.n_neurons)
    if ids is not None:
        v0, x0 = v0[ids], x0[ids]
    N = v0.size
    return cc.State(v=v0.astype(fdt), i_ex=np.zeros(N, fdt), i_in=np.zeros(N, fdt), refr=np.zeros(N, np.int64),
                    theta=np.zeros((N, K), fdt), i_dc=np.zeros(N, fdt), x=np.ascontiguousarray(x0, fdt))


def _build_params(net):
    """``(params, i_e, K)``: the parameter-set tables, the bias currents (pA, float64 per neuron) and
    the number of threshold components."""
    N = net.n_neurons
    dt = net.dt
    packs = [_pack(p.model, p.n, dt) for p in net.populations]
    K = max([pk["p_theta"].shape[1] for pk in packs] + [0])
    fields = {}
    for name in _PARAM_FIELDS:
        if name in ("col", "pid"):
            continue
        if name in _MATRIX_FIELDS:
            fields[name] = _columns(packs, net.populations, name, N)
        else:
            fields[name] = np.concatenate([pk[name] for pk in packs]) if packs else np.zeros(0)
    col = np.arange(N, dtype=np.int64)
    # i_e is applied per neuron (ClockPlan._apply_dc, into state.i_dc) so that populations with
    # heterogeneous bias currents still share one parameter set
    i_e = fields["i_e"].astype(np.float64)
    fields["i_e"] = np.zeros_like(i_e)
    # neurons with identical parameters share one row of the parameter tables, so the
    # tables of homogeneous populations stay in cache and each run of them is updated with
    # its parameters as loop constants
    names = [nm for nm in fields if nm not in _MATRIX_FIELDS]
    mats = [fields[nm] for nm in _MATRIX_FIELDS]
    table = np.column_stack([fields[nm].astype(np.float64) for nm in names] + mats) if N \
        else np.zeros((0, len(names) + sum(m.shape[1] for m in mats)))
    uniq, pid = np.unique(table, axis=0, return_inverse=True)
    sets = {}
    for j, nm in enumerate(names):
        sets[nm] = uniq[:, j].astype(fields[nm].dtype)
    j = len(names)
    for nm, m in zip(_MATRIX_FIELDS, mats):
        sets[nm] = np.ascontiguousarray(uniq[:, j:j + m.shape[1]])
        j += m.shape[1]
    fdt = getattr(net, "dtype", np.dtype(np.float64))
    for nm, arr in sets.items():  # propagators are computed in float64, then stored in the state's precision
        if arr.dtype == np.float64 and nm != "coef":  # (a family's coefficients stay float64)
            sets[nm] = np.ascontiguousarray(arr, fdt)
    params = cc.Params(col=col, pid=pid.reshape(-1).astype(np.int64), **sets)
    return params, i_e, K


def _build_connectivity(net, params, tgt_map=None):
    """``((syn_off, w, row_ptr, (dmin, dmax)), (L, n_cols))``: the CSR synapses of every sender.

    ``tgt_map`` (MPI): the plan's neurons are a part of the network's, ``tgt_map[id]`` the local index of
    network neuron ``id``; the projections hold only synapses onto them, and the rows stay indexed by
    network sender."""
    N = net.n_neurons
    NL = params.pid.size  # the plan's neurons (N, or this rank's)
    is_exp = params.is_exp[params.pid].astype(np.int64) if NL else np.zeros(0, np.int64)
    # ring columns: neuron n's input (excitatory receptor) in column n, and, if any neuron has
    # separate receptors, its inhibitory receptor in column N + n; the update then reads two
    # unit-stride column blocks
    # with receptor ports (eventsim.models.multisynapse), port k of neuron n in column k * N + n
    B = max([2 if is_exp.any() else 1] + [getattr(p.model, "receptor_ports", 0) for p in net.populations])
    n_cols = B * NL
    # ---- connectivity: senders are neurons 0..N-1 then source channels N..N+S-1
    n_send = N + net._n_channels
    synaptic = []
    max_d = 1
    for proj in net.projections:
        if proj.source.kind == "dc":
            continue
        if getattr(proj, "synapse", None) is not None:  # plastic: eventsim.engines.plastic (the ring still holds its delays)
            if len(proj):
                max_d = max(max_d, int(proj.delay_steps.max()))
            continue
        src_ids = proj.source.ids + N if proj.source.kind == "source" else proj.source.ids
        synaptic.append((proj, src_ids))
    n_cols = max(n_cols, 1)
    row_ptr = np.zeros(n_send + 1, np.int64)
    dmin = np.full(n_send, np.iinfo(np.int32).max, np.int32)  # each sender's delay range (steps)
    dmax = np.zeros(n_send, np.int32)
    for proj, src_ids in synaptic:
        if len(proj):
            max_d = max(max_d, int(csr.count_rows(row_ptr[1:], proj.pre, src_ids, proj.delay_steps, dmin, dmax)))
    used = row_ptr[1:] > 0
    np.cumsum(row_ptr, out=row_ptr)
    L = max_d + 1
    dmin[~used] = L  # an empty row: L and 0
    # one delay per sender and few enough columns: two-byte columns (clock_cpu.column_form), else offsets
    columns = COLUMN_FORM and n_cols <= 1 << 16 and np.array_equal(dmin[used], dmax[used])
    off_dtype = np.uint16 if columns else np.int32 if L * n_cols < 2**31 else np.int64
    n_syn = int(row_ptr[-1])
    syn_off = np.empty(n_syn, off_dtype)
    w = np.empty(n_syn, net.weight_dtype)
    fill = row_ptr[:-1].copy()
    split = is_exp.astype(np.int8)
    # a neuron that counts its input spikes (a parrot) receives 1 per spike whatever the weight (NEST's)
    counts = params.counts[params.pid] != 0 if NL else np.zeros(0, bool)
    for proj, src_ids in synaptic:
        if len(proj):
            tgt = proj.target.ids if tgt_map is None else tgt_map[proj.target.ids]
            col, sp = params.col, split
            if proj.receptor is not None:  # the port it names, whatever the weight's sign
                col, sp = params.col + proj.receptor * NL, np.zeros_like(split)
            weight = proj.weight
            if counts.any():
                weight = np.where(counts[tgt[proj.post]], 1.0, weight)
            csr.scatter(fill, syn_off, w, proj.pre, proj.post, weight, proj.delay_steps, src_ids,
                        tgt, col, sp, NL, 0 if columns else n_cols)
    del fill
    if not csr.rows_sorted(row_ptr, syn_off, n_cols):  # (the sort is compiled only when needed)
        csr.sort_rows(row_ptr, syn_off, w, n_cols)
    return (syn_off, w, row_ptr, (dmin, dmax)), (L, n_cols)


def _build_dc(net):
    """The DC inputs: a list of ``(start_step, stop_step, targets, currents)``."""
    dc = []
    for proj in net.projections:
        if proj.source.kind != "dc":
            continue
        post_g = proj.target.ids[proj.post]
        ch = proj.source.ids[proj.pre]
        cur = proj.weight * _dc_amplitude(net, ch)
        for s in net.dc_sources:
            m = (ch >= s.ids[0]) & (ch < s.ids[0] + len(s))
            if m.any():
                dc.append((*s._delivery_window(), post_g[m], cur[m]))
    return dc


def _spike_flags(net):
    """int8 per neuron: 1 where some spike recorder records it."""
    spk_flag = np.zeros(net.n_neurons, np.int8)
    for r in net.recorders:
        if r.kind == "spikes":
            spk_flag[r.group.ids] = 1
    return spk_flag


def _build_sources(net):
    """The Poisson and explicit-spike arrays of the sources (the base of :class:`clock_cpu.Sources`),
    with the explicit-spike pointer at the network's current step."""
    N = net.n_neurons
    dt = net.dt
    pois_sender, pois_channel, pois_lam, ss_step, ss_sender = [], [], [], [], []
    for src in net.sources:
        if hasattr(src, "rate"):
            pois_channel.append(src.ids.copy())
            pois_sender.append(src.ids + N)
            pois_lam.append(src.rate * dt * 1e-3)
        else:
            ss_step.append(src.spike_steps)
            ss_sender.append(src.ids[src.spike_senders] + N)
    cat = lambda xs, dtype: np.concatenate(xs).astype(dtype) if xs else np.zeros(0, dtype)  # noqa: E731
    ss_step, ss_sender = cat(ss_step, np.int64), cat(ss_sender, np.int64)
    order = np.lexsort((ss_sender, ss_step))
    k0, k1 = key_words(net.seed, POISSON)
    lam = cat(pois_lam, np.float64)
    small, cls = np.unique(np.where(lam < 12.0, lam, 0.0), return_inverse=True)
    tables = [poisson_cdf_table(x) for x in small]
    # one padding column of 2.0 (above every uniform) ends every search
    kmax = max([t.size for t in tables] + [0]) + 1
    cdf = np.full((max(small.size, 1), kmax), 2.0)
    guide = np.zeros((max(small.size, 1), cc.GUIDE), np.int64)
    tab = np.zeros((max(small.size, 1), cc.TAB), np.int8)
    for r, t in enumerate(tables):
        cdf[r, : t.size] = t
        guide[r] = np.searchsorted(t, np.arange(cc.GUIDE) / cc.GUIDE, side="left")
        tab[r] = poisson_count_table(t, cc.TAB)
    ss_step = ss_step[order]
    # spikes stamped before the current step have been delivered (those stamped at it have not)
    ss_ptr = np.array([np.searchsorted(ss_step, net._step, side="left")], np.int64)
    return dict(pois_sender=cat(pois_sender, np.int64), pois_channel=cat(pois_channel, np.int64),
                pois_lam=lam, pois_cls=cls.reshape(-1).astype(np.int64), cdf=cdf, guide=guide, tab=tab,
                key=np.array([k0, k1], dtype=np.uint64), ss_step=ss_step, ss_sender=ss_sender[order],
                ss_ptr=ss_ptr)


def _dc_amplitude(net, channels):
    """The amplitudes (pA) the targets of DC ``channels`` receive at the network's current step."""
    amp = np.concatenate([s._delivered() for s in net.dc_sources])
    return amp[channels]
