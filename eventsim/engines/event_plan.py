"""Flatten a Network into the arrays of the event-driven engine and drive its loop."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import config
from ..rng import key_words
from . import event_cpu as ev
from . import event_live as live
from .clock_cpu import split_multiplicity
from .progress import progress_bar as _progress
from ..models.family import ENGINE_COLUMNS, by_code, check_event_engine, state_width, tags
from .clock_cpu import VAR_CODES as _VAR_CODES
from .clock_cpu import X_CODE as _X_CODE
from .plan import var_code as _var_code


class Graph(NamedTuple):
    gptr: np.ndarray  # emitter -> its delay groups
    gdel: np.ndarray  # delay of each group (ms)
    sptr: np.ndarray  # group -> its synapses
    tgt: np.ndarray
    w: np.ndarray
    gport: np.ndarray  # int8 receptor port of each group (-1: none, the weight's sign chooses)


class Sources(NamedTuple):
    rate: np.ndarray  # Hz per channel (0 for explicit spike times)
    count: np.ndarray  # Poisson intervals drawn so far
    ptr: np.ndarray  # next explicit spike of each channel
    sptr: np.ndarray
    times: np.ndarray
    nxt: np.ndarray  # next Poisson emission time of each channel not yet in the stream (ms)
    st: np.ndarray  # the stream: Poisson emissions of the current window in (time, channel) order
    sc: np.ndarray
    spos: np.ndarray  # [next stream entry, stream length]
    win: np.ndarray  # [end of the generated windows (ms), window length (ms; 0: no Poisson channel)]


class Cross(NamedTuple):  # the neurons' positions in it are in their state rows (column XPOS)
    key: np.ndarray
    heap: np.ndarray
    n: np.ndarray


class Pending(NamedTuple):
    lst: np.ndarray
    n: np.ndarray
    tb: np.ndarray


class SpikeBuf(NamedTuple):
    t: np.ndarray
    i: np.ndarray
    n: np.ndarray


class SampleBuf(NamedTuple):
    idx: np.ndarray
    var: np.ndarray
    buf: np.ndarray
    cnt: np.ndarray


def _pack_params(models, record):
    """Per-neuron parameter rows (each family's ``pack``: see :mod:`eventsim.models.family`), bias currents
    (pA), threshold components (inverse time constants, increments) and the tags of the families present, for
    the populations ``models`` (``(model, n)`` pairs in network order)."""
    N = record.size
    PP = np.zeros((N, ev.N_PARAMS))
    i_e = np.zeros(N)
    parts = []
    offset = 0
    for m, n in models:
        check_event_engine(m)
        fam = m.family
        P, ith, dth = fam.event.pack(m, n)
        sl = slice(offset, offset + n)
        offset += n
        PP[sl] = P
        PP[sl, ev.FAMILY] = fam.code
        i_e[sl] = np.broadcast_to(np.asarray(m.i_e, np.float64), (n,))
        parts.append((sl, ith, dth))
    PP[:, ev.RECORD] = record
    K = max([ith.shape[1] for _, ith, _ in parts] + [0])
    ITH = np.zeros((N, K))
    DTH = np.zeros((N, K))
    for sl, ith, dth in parts:
        ITH[sl, :ith.shape[1]] = ith
        DTH[sl, :dth.shape[1]] = dth
    return PP, i_e, ITH, DTH, tags(PP[:, ev.FAMILY].astype(np.int64))


def _slot(name, family_code):
    """The state-row column of state variable ``name`` of the family of ``family_code``."""
    return by_code(int(family_code)).event.slots[name]


def _classes(PP):
    """Table of the distinct rows of ``PP`` and each row's index in it."""
    if PP.shape[0] == 0:
        return np.zeros((1, PP.shape[1])), np.zeros(0, np.int64)
    # runs of equal consecutive rows (a homogeneous population is one run) need one comparison each
    starts = np.flatnonzero(np.r_[True, ~np.all(PP[1:] == PP[:-1], axis=1)])
    table, inverse = np.unique(PP[starts], axis=0, return_inverse=True)
    return np.ascontiguousarray(table), np.repeat(inverse.reshape(-1), np.diff(np.r_[starts, PP.shape[0]]))


def _aligned_rows(n, ncol):
    """Zeroed float64 ``(n, ncol)`` array whose rows start on 64-byte boundaries (``ncol == 8``:
    one cache line per row)."""
    raw = np.zeros(n * ncol + 8)
    skip = (-raw.ctypes.data % 64) // 8
    return raw[skip:skip + n * ncol].reshape(n, ncol)


def _graph(net, N):
    """Outgoing synapses of every emitter (neurons, then source channels), grouped by delay (and receptor
    port: one group per delay and port)."""
    n_em = N + net._n_channels + net._n_dc
    amp = np.zeros(net._n_dc)
    for src in net.dc_sources:
        amp[src.ids] = src.amplitude
    pre, post, w, d, port = [], [], [], [], []
    for proj in net.projections:
        post.append(proj.target.ids[proj.post].astype(np.int64))
        port.append(np.full(len(proj), -1 if proj.receptor is None else proj.receptor, np.int8))
        if proj.source.kind == "dc":  # one group per DC channel; its "weight" is the current (pA)
            ch = proj.source.ids[proj.pre]
            pre.append(ch.astype(np.int64) + N + net._n_channels)
            w.append(np.asarray(proj.weight, np.float64) * amp[ch])
            d.append(np.zeros(ch.size))
            continue
        ids = proj.source.ids if proj.source.kind == "neuron" else proj.source.ids + N
        pre.append(ids[proj.pre].astype(np.int64))
        w.append(np.asarray(proj.weight, np.float64))
        d.append(proj.delay)
    if pre:
        pre, post, w, d, port = (np.concatenate(x) for x in (pre, post, w, d, port))
    else:
        pre = post = np.zeros(0, np.int64)
        w = d = np.zeros(0)
        port = np.zeros(0, np.int8)
    if (port >= 0).any():  # by emitter, delay, port, target (stable)
        order = np.lexsort((post, port, d, pre))
    else:  # by emitter, delay, target (stable)
        order = ev.synapse_order(pre, d.astype(np.float64), post, n_em)
    pre, post, w, d, port = pre[order], post[order], w[order], d[order], port[order]
    new = np.ones(pre.size, bool)
    if pre.size:
        new[1:] = (pre[1:] != pre[:-1]) | (d[1:] != d[:-1]) | (port[1:] != port[:-1])
    starts = np.flatnonzero(new)
    sptr = np.append(starts, pre.size).astype(np.int64)
    gpre = pre[starts]
    gptr = np.searchsorted(gpre, np.arange(n_em + 1)).astype(np.int64)
    wd = net.weight_dtype if net._n_dc == 0 else np.float64
    return Graph(gptr=gptr, gdel=d[starts].copy(), sptr=sptr, tgt=post.astype(np.int32), w=w.astype(wd),
                 gport=port[starts].copy())


def _copy(x):
    """A copy of an array or of a tuple of arrays."""
    return tuple(a.copy() for a in x) if isinstance(x, tuple) else x.copy()


def _time_order(t, ids):
    """Spikes sorted by time, then neuron index.  The engine emits them in time order, so only
    runs of equal times need sorting (a full sort is the fallback)."""
    d = np.diff(t)
    if d.size == 0 or (d > 0).all():
        return t, ids
    if (d < 0).any():
        order = np.lexsort((ids, t))
        return t[order], ids[order]
    tie = np.zeros(t.size, np.bool_)
    tie[1:] = d == 0
    tie[:-1] |= d == 0
    k = np.flatnonzero(tie)
    ids[k] = ids[k][np.lexsort((ids[k], t[k]))]  # stable in t, and t[k] is already sorted
    return t, ids


def _channels(net):
    """Rates (Hz, 0 for explicit spike times) of the source channels and their spike times (ms):
    ``(rate, sptr, times)``, channel ``c``'s times sorted in ``times[sptr[c]:sptr[c + 1]]`` (equal
    times in the order they were given)."""
    nc = net._n_channels
    rate = np.zeros(nc)
    sptr = np.zeros(nc + 1, np.int64)
    per_channel = [np.zeros(0)] * nc
    for src in net.sources:
        base = int(src.ids[0])  # channel index of the source's first channel
        if hasattr(src, "rate"):
            rate[base:base + len(src)] = src.rate
        else:
            order = np.lexsort((src.spike_times, src.spike_senders))
            s, t = src.spike_senders[order], src.spike_times[order]
            for c in range(len(src)):
                per_channel[base + c] = t[np.searchsorted(s, c): np.searchsorted(s, c, side="right")]
    sptr[1:] = np.cumsum([x.size for x in per_channel])
    times = np.concatenate(per_channel) if nc else np.zeros(0)
    return rate, sptr, times.astype(np.float64)


def _dc_windows(net):
    """``[start, stop)`` (ms) of every DC channel, shape ``(n_dc, 2)``."""
    win = np.zeros((net._n_dc, 2))
    for src in net.dc_sources:
        win[src.ids] = (src.start_time + src.delay, src.stop_time + src.delay)
    return win


def _unmatched(ta, wa, tb, wb):
    """Positions of the synapses ``(ta, wa)`` that ``(tb, wb)`` does not have (as multisets of
    ``(target, current)`` pairs), in order."""
    from collections import Counter

    left = Counter(zip(tb.tolist(), wb.tolist()))
    out = []
    for k, pair in enumerate(zip(ta.tolist(), wa.tolist())):
        if left[pair] > 0:
            left[pair] -= 1
        else:
            out.append(k)
    return np.array(out, np.int64)


#: Poisson emissions generated per window of the stream (at least one per channel).
_STREAM_TARGET = 1 << 16
#: Initial capacity of the event heap (it doubles when a call of the kernel asks for room).
_QUEUE_START = 1024


#: The column of the record flag in the parameter rows of plans pickled before the families' event functions.
_OLD_RECORD = 14


class _ModelRef(NamedTuple):
    model: object
    n: int


class EventPlan:
    """State of the event-driven engine for one Network."""

    def __init__(self, net, graph=None, start=True):
        """Build the engine's arrays for ``net`` as it is now.

        ``graph``: the synapse graph to use (the previous plan's, when the
        connections have not changed); ``start=False`` leaves the queues,
        the Poisson draws and the crossing predictions empty (a plan that
        takes the state of another: :meth:`refresh`, checkpoints)."""
        self.net = net
        N = net.n_neurons
        self.spike_recorders = [r for r in net.recorders if r.kind == "spikes"]
        self.state_recorders = [r for r in net.recorders if r.kind == "state"]
        record = np.zeros(N, np.bool_)
        for r in self.spike_recorders:
            record[r._ids] = True
        PP, i_e, self.ITH, self.DTH, self.fams = _pack_params([(p.model, p.n) for p in net.populations], record)
        self._models = [_ModelRef(p.model, p.n) for p in net.populations]  # the bias currents in SS[:, IB]
        self._members = []  # per spike recorder: its neurons as a lookup table (None: every recorded one)
        for r in self.spike_recorders:
            member = np.zeros(N, np.bool_)
            member[r._ids] = True
            self._members.append(None if np.array_equal(member, record) else member)
        self.PP, cls = _classes(PP)
        self.SS = _aligned_rows(N, state_width(self.fams))
        for p in net.populations:
            self.SS[p.offset:p.offset + p.n, p.model.family.event.slots["v"]] = p.v_init
        self.SS[:, ev.IB] = i_e
        self.SS[:, ev.CM] = 2 * cls
        self.SS[:, ev.XPOS] = -1.0
        self.SS[:, ev.TR] = -np.inf
        self.TH = np.zeros_like(self.ITH)
        self.G = _graph(net, N) if graph is None else graph
        self.ng = int(self.G.gptr[-1])  # groups reached from the emitters; those after it are retired
        self._ret_em = np.zeros(0, np.int64)  # emitter of each retired group (see refresh)
        self.qroom = int(np.diff(self.G.gptr).max(initial=0)) + 1  # heap entries one event may push
        self._dc_win = _dc_windows(net)
        # sources
        nc = net._n_channels
        rate, sptr, times = _channels(net)
        total = float(rate.sum()) * 1e-3  # Poisson emissions per ms
        window = max(_STREAM_TARGET, int(np.count_nonzero(rate))) / total if total > 0 else 0.0
        self.SRC = Sources(rate=rate, count=np.zeros(nc, np.int64), ptr=sptr[:-1].copy(), sptr=sptr,
                           times=times.astype(np.float64), nxt=np.full(nc, np.inf), st=np.zeros(0),
                           sc=np.zeros(0, np.int64), spos=np.zeros(2, np.int64), win=np.array([0.0, window]))
        self.key = key_words(net.seed, ev.POISSON_EVENT)
        # queues
        self.Q = (np.zeros(_QUEUE_START), np.zeros(_QUEUE_START, np.int64), np.zeros(_QUEUE_START, np.int64))
        self.qn = 0
        if start:
            ev.poisson_start(self.SRC.rate, self.SRC.count, self.SRC.nxt, self.key[0], self.key[1])
            for c in np.flatnonzero((rate == 0) & (sptr[1:] > sptr[:-1])):
                self._push(times[sptr[c]], N + c)
            for src in net.dc_sources:  # switching events: -2 on, -3 off (ties: off before on)
                for ch in src.ids:
                    e = N + nc + int(ch)
                    self._push(src.start_time + src.delay, e, -2)   # (at the targets: delay later)
                    if math.isfinite(src.stop_time):
                        self._push(src.stop_time + src.delay, e, -3)
        self.X = Cross(key=np.full(N, np.inf), heap=np.zeros(N, np.int64),
                       n=np.zeros(1, np.int64))
        self.M = Pending(lst=np.zeros(N, np.int64), n=np.zeros(1, np.int64),
                         tb=np.zeros(1))
        cap = max(4096, 2 * N + 16)
        self.R = SpikeBuf(t=np.zeros(cap), i=np.zeros(cap, np.int64), n=np.zeros(1, np.int64))
        self.stack = np.zeros((256, 2))
        self.counters = np.zeros(2, np.int64)
        # state sampling on a common clock (the gcd of the recorders' intervals)
        idx = [r.group.ids for r in self.state_recorders]
        self.rec_ptr = np.concatenate([[0], np.cumsum([i.size for i in idx])]).astype(np.int64)
        ks = [r.interval_steps for r in self.state_recorders]
        self.base_k = int(np.gcd.reduce(ks)) if ks else 1
        nrow = int(self.rec_ptr[-1])
        self.RS = SampleBuf(idx=np.concatenate(idx).astype(np.int64) if idx else np.zeros(0, np.int64),
                            var=np.concatenate([np.full(i.size, _var_code(net, i, r.variable), np.int64)
                                                for i, r in zip(idx, self.state_recorders)]) if idx
                            else np.zeros(0, np.int64),
                            buf=np.zeros(max(nrow, 1) * max(1, min(4096, (1 << 22) // max(nrow, 1)))),
                            cnt=np.zeros(1, np.int64))
        base = self.base_k * net.dt
        self.sample_t = np.array([base, 1.0, base])
        if start:
            ev.init_crossings(self.fams, self.X, self.PP, self.SS, self.TH, self.ITH, self.stack)

    def __setstate__(self, state):
        """Unpickling (checkpoints): the state rows get their 64-byte alignment back."""
        self.__dict__.update(state)
        if "_models" not in state:  # (plans pickled before parameters could change between runs)
            self._models = [_ModelRef(p.model, p.n) for p in self.net.populations]
        if "ng" not in state:  # (plans pickled before the network could change after running)
            self.ng = int(self.G.gptr[-1])
            self._ret_em = np.zeros(0, np.int64)
            self._dc_win = _dc_windows(self.net)
        SS = _aligned_rows(*self.SS.shape)
        SS[...] = self.SS
        self.SS = SS
        if "fams" not in state:  # (plans pickled before the families' event functions: rows of the old layout)
            cm = self.SS[:, ev.CM].astype(np.int64)
            record = self.PP[cm >> 1, _OLD_RECORD] != 0.0
            PP, _, _, _, self.fams = _pack_params([(r.model, r.n) for r in self._models], record)
            self.PP, cls = _classes(PP)
            self.SS[:, ev.CM] = 2 * cls + (cm & 1)

    # ------------------------------------------------------------------ changes between runs
    def get_state(self, name, ids):
        """float64 values of state variable ``name`` (``"v"``, ``"i_ex"``, ``"i_in"``, ``"theta"``, or an int:
        a family's own variable, as :func:`eventsim.models.family.state_key` gives it) of neurons ``ids`` at
        the network's current time, without changing the lazily updated state."""
        t = float(self.net._time)
        out = np.empty(len(ids))
        var = _X_CODE + int(name) if isinstance(name, (int, np.integer)) else _VAR_CODES[name]
        for j, i in enumerate(np.asarray(ids, np.int64)):
            s = t - self.SS[i, ev.TL]
            if s > 0:
                out[j] = ev.sample(self.fams, i, s, var, self.PP, self.SS, self.TH, self.ITH)
            elif name == "theta":
                out[j] = self.TH[i].sum()
            else:
                out[j] = self.SS[i, _slot(name, self.PP[int(self.SS[i, ev.CM]) >> 1, ev.FAMILY])]
        return out

    def _touch_neurons(self, ids):
        """Bring neurons ``ids`` to the current time (their state is about to change)."""
        t = float(self.net._time)
        for i in ids:
            ev._advance(self.fams, int(i), t, self.PP, self.SS, self.TH, self.ITH)

    def _predict(self, ids):
        """Predict the next threshold crossing of neurons ``ids`` again (after their state changed)."""
        for i in ids:
            i = int(i)
            ev.cross_set(self.X, self.SS, i, ev.next_crossing(self.fams, i, self.PP, self.SS, self.TH, self.ITH, self.stack))

    def set_state(self, name, ids, values):
        """Set state variable ``name`` (``"v"``, ``"i_ex"``, ``"i_in"``, or a family's own, as for
        :meth:`get_state`) of neurons ``ids`` at the current time."""
        ids = np.asarray(ids, np.int64)
        self._touch_neurons(ids)
        cols = [_slot(name, f) for f in self.PP[self.SS[ids, ev.CM].astype(np.int64) >> 1, ev.FAMILY]]
        self.SS[ids, cols] = values
        self._predict(np.unique(ids))

    def refresh(self, changes):
        """Apply the network's changes made since the last run; returns the plan to use from now on.

        ``changes`` is a set of ``"params"``, ``"sources"``, ``"dc"``,
        ``"recorders"`` and ``"structure"`` (see ``ClockPlan.refresh``).
        Parameter changes alone are applied in place (:meth:`_refresh_params`);
        any other change builds a new plan from the network and carries the
        whole state over to it (:meth:`_carry`).
        """
        if set(changes) <= {"params"}:
            return self._refresh_params()
        rebuild = bool({"structure", "dc"} & set(changes))
        new = EventPlan(self.net, graph=None if rebuild else self.G, start=False)
        new._carry(self, rebuild)
        return new

    def _refresh_params(self):
        """Apply parameter changes: the neurons whose parameters changed are brought to the current
        time with their old parameters, then continue with the new ones (bias currents included);
        returns this plan."""
        net = self.net
        old_cls = (self.SS[:, ev.CM].astype(np.int64) >> 1)
        old_rows = self.PP[old_cls]
        PP, i_e, ITH, DTH, self.fams = _pack_params([(p.model, p.n) for p in net.populations],
                                                     old_rows[:, ev.RECORD])
        old_ie = np.concatenate([np.broadcast_to(np.asarray(p.model.i_e, np.float64), (p.n,))
                                 for p in self._models]) if self._models else np.zeros(0)
        if ITH.shape != self.ITH.shape:
            raise AssertionError("the number of threshold components changed")  # refused in set()
        changed = np.flatnonzero((PP != old_rows).any(axis=1) | (ITH != self.ITH).any(axis=1)
                                 | (DTH != self.DTH).any(axis=1) | (i_e != old_ie))
        self._touch_neurons(changed)
        table, cls = _classes(PP)
        self.PP = table
        self.SS[:, ev.CM] = 2 * cls
        self.ITH, self.DTH = ITH, DTH
        self.SS[changed, ev.IB] += i_e[changed] - old_ie[changed]
        self._models = [_ModelRef(p.model, p.n) for p in net.populations]
        self._predict(changed)
        return self

    def _carry(self, old, rebuild):
        """Take over the state of ``old``, this network's plan before the changes, at the current time t.

        Neurons keep their indices (new populations come after them) and their
        state; new neurons start at t from ``v_init``.  Neurons whose parameters
        changed, and the targets of DC currents switched at t, are first brought
        to t with the old values.  Spikes emitted before t that are still on
        their way arrive as they would have, through the connections and with
        the weights that existed when they were emitted (an emitter whose
        synapses changed keeps its old delay groups, *retired*, for them);
        spikes emitted at exactly t (the last events of the run that ended at t)
        are routed through the connections that exist now, as the clock engine
        delivers the spikes stamped t at the start of the next run.  Sources:
        a Poisson channel whose rate changed, or that is new, draws its next
        emission from t at its new rate, with the interval counter of its first
        emission not yet made (the emissions drawn ahead into the stream are
        dropped, so the result does not depend on the stream's windows); spikes
        added to a spike source are merged in time order (a new spike source
        emits its spikes at or after t); a DC channel whose amplitude, window or
        connections changed gives from t on the current of its new settings (its
        targets' bias currents change at t by the difference of the currents
        that are on).  Recorders record from t on.  Counters carry over.
        """
        net = self.net
        t = float(net._time)
        N_o, N = old.SS.shape[0], self.SS.shape[0]
        nc_o, nc = old.SRC.rate.size, self.SRC.rate.size
        nd = self._dc_win.shape[0]
        if int(old.M.n[0]):
            raise AssertionError("neurons await their threshold test between runs")

        def em(e):  # emitter index in old -> in this plan (neurons, then source channels, then DC channels)
            e = np.asarray(e, np.int64)
            return np.where(e < N_o, e, np.where(e < N_o + nc_o, e - N_o + N, e - N_o - nc_o + N + nc))

        qt, qe, qg = (q[:old.qn].copy() for q in old.Q)
        ents = []  # (times, emitters, groups) of this plan's event heap
        # ---- parameters of the existing neurons
        old_cls = old.SS[:, ev.CM].astype(np.int64) >> 1
        new_cls = self.SS[:N_o, ev.CM].astype(np.int64) >> 1
        cols = np.arange(ev.N_PARAMS) != ev.RECORD
        K_o = old.ITH.shape[1]
        old_ie = (np.concatenate([np.broadcast_to(np.asarray(p.model.i_e, np.float64), (p.n,)) for p in old._models])
                  if old._models else np.zeros(0))
        new_ie = self.SS[:N_o, ev.IB].copy()
        changed = np.flatnonzero((old.PP[old_cls][:, cols] != self.PP[new_cls][:, cols]).any(axis=1)
                                 | (old.ITH != self.ITH[:N_o, :K_o]).any(axis=1)
                                 | (old.DTH != self.DTH[:N_o, :K_o]).any(axis=1) | (old_ie != new_ie))
        # ---- DC channels: the currents that are on now (old) and from now on (new)
        minus, plus = [], []  # (targets, currents) taken off, then put on, at t
        win_changed = np.zeros(nd, np.bool_)
        if rebuild:
            nd_o = old._dc_win.shape[0]
            dc = qg <= -2
            ch = qe[dc] - N_o - nc_o
            on_pend = np.zeros(nd_o, np.bool_)
            off_pend = np.zeros(nd_o, np.bool_)
            on_pend[ch[qg[dc] == -2]] = True
            off_pend[ch[qg[dc] == -3]] = True
            win_changed[:] = True
            win_changed[:nd_o] = (old._dc_win != self._dc_win[:nd_o]).any(axis=1)
            for c in range(nd):
                tn, wn = self._dc_synapses(N + nc + c)
                to, wo = old._dc_synapses(N_o + nc_o + c) if c < nd_o else (tn[:0], wn[:0])
                if not win_changed[c] and np.array_equal(tn, to) and np.array_equal(wn, wo):
                    continue
                on_old = c < nd_o and not on_pend[c] and (off_pend[c] or math.isinf(old._dc_win[c, 1]))
                start, stop = self._dc_win[c]
                on_new = (start <= t < stop) if win_changed[c] else on_old
                if on_old:
                    k = _unmatched(to, wo, tn, wn) if on_new else slice(None)
                    minus.append((to[k], wo[k]))
                if on_new:
                    k = _unmatched(tn, wn, to, wo) if on_old else slice(None)
                    plus.append((tn[k], wn[k]))
                if win_changed[c]:  # its switching events are pushed again
                    for when, g in ((start, -2), (stop, -3)):
                        if t < when < math.inf:
                            ents.append((np.array([when]), np.array([N + nc + c]), np.array([g])))
        touched = np.unique(np.concatenate([changed] + [x for x, _ in minus + plus]).astype(np.int64))
        old._touch_neurons(touched[touched < N_o])
        # ---- neuron state
        k = old.SS.shape[1] - ENGINE_COLUMNS  # the state slots of the old rows (the new may be wider)
        self.SS[:N_o, :k] = old.SS[:, :k]
        for c in (ev.TL, ev.TR, ev.IB):
            self.SS[:N_o, c] = old.SS[:, c]
        self.SS[N_o:, ev.TL] = t
        self.TH[:N_o, :K_o] = old.TH
        self.SS[changed, ev.IB] += new_ie[changed] - old_ie[changed]
        ib = self.SS[:, ev.IB]
        for tg, cur in minus:
            np.add.at(ib, tg, -cur)  # in synapse order, as the kernel switches a channel off
        for tg, cur in plus:
            np.add.at(ib, tg, cur)
        key = np.full(N, np.inf)
        key[:N_o] = old.X.key
        live.crossings_from_keys(self.X, self.SS, key)
        again = np.unique(np.concatenate([touched, np.arange(N_o, N)])).astype(np.int64)
        live.predict_crossings(self.fams, again, self.X, self.PP, self.SS, self.TH, self.ITH, self.stack)
        # ---- sources: explicit spikes
        S, So = self.SRC, old.SRC
        S.count[:nc_o] = So.count
        S.nxt[:nc_o] = So.nxt
        S.ptr[:nc_o] = S.sptr[:nc_o] + (So.ptr - So.sptr[:-1])  # the spikes emitted so far come first
        n_sp = np.diff(S.sptr)
        if nc > nc_o:  # new spike sources: their spikes before t are not emitted
            chan = np.repeat(np.arange(nc - nc_o), n_sp[nc_o:])
            early = np.bincount(chan[S.times[S.sptr[nc_o]:] < t], minlength=nc - nc_o)
            S.ptr[nc_o:] = S.sptr[nc_o:-1] + early
        spikes_changed = np.ones(nc, np.bool_)
        spikes_changed[:nc_o] = n_sp[:nc_o] != np.diff(So.sptr)
        c = np.flatnonzero(spikes_changed & (S.ptr < S.sptr[1:]))
        ents.append((S.times[S.ptr[c]], N + c, np.full(c.size, -1)))
        # ---- sources: Poisson channels whose rate changed, and new ones, start again at t
        restart = np.concatenate([np.flatnonzero(So.rate != S.rate[:nc_o]),
                                  nc_o + np.flatnonzero(S.rate[nc_o:] > 0)]).astype(np.int64)
        st, sc = So.st[So.spos[0]:So.spos[1]], So.sc[So.spos[0]:So.spos[1]]
        # the counter goes back to the first interval whose emission has not happened (those drawn
        # ahead, in the stream and the next emission, are dropped): independent of the windows
        ahead = np.bincount(sc, minlength=nc)[:nc_o] + np.isfinite(So.nxt)
        c = restart[restart < nc_o]
        S.count[c] -= ahead[c]
        live.poisson_restart(restart, S.rate, S.count, S.nxt, self.key[0], self.key[1], t)
        w0 = float(So.win[0]) if So.win[1] > 0 else t
        if restart.size:
            kept = ~np.isin(sc, restart)
            st, sc = st[kept], sc[kept]
            r = np.zeros(nc)
            r[restart] = S.rate[restart]
            none = np.zeros(0)
            m = ev.poisson_window(r, S.count, S.nxt, self.key[0], self.key[1], w0, none, none.astype(np.int64))
            at, ac = np.empty(m), np.empty(m, np.int64)
            ev.poisson_window(r, S.count, S.nxt, self.key[0], self.key[1], w0, at, ac)
            st, sc = np.concatenate([st, at]), np.concatenate([sc, ac])
            order = np.lexsort((sc, st))
            st, sc = st[order], sc[order]
        self.SRC = S._replace(st=st.copy(), sc=sc.copy())
        self.SRC.spos[:] = (0, st.size)
        self.SRC.win[0] = w0
        # ---- the event heap: source emissions and DC switches
        one = qg == -1
        one[one] = ~spikes_changed[qe[one] - N_o]
        two = qg <= -2
        two[two] = ~win_changed[qe[two] - N_o - nc_o]
        kept = one | two
        ents.append((qt[kept], em(qe[kept]), qg[kept]))
        # ---- the event heap: spikes on their way
        d = qg >= 0
        if not rebuild:  # the same graph: the entries stay as they are
            ents.append((qt[d], qe[d], qg[d]))
            self._ret_em = old._ret_em.copy()
        else:
            n_em_o = old.G.gptr.size - 1
            same = np.zeros(n_em_o, np.bool_)
            G, Go = self.G, old.G
            live.same_groups(Go.gptr, Go.gdel, Go.gport, Go.sptr, Go.tgt, Go.w, G.gptr, G.gdel, G.gport, G.sptr,
                             G.tgt, G.w, em(np.arange(n_em_o)), same)
            normal = d & (qg < old.ng)
            ok = normal.copy()
            ok[normal] = same[qe[normal]]
            e_ok = qe[ok]
            ents.append((qt[ok], em(e_ok), G.gptr[em(e_ok)] + qg[ok] - Go.gptr[e_ok]))
            rest = d & ~ok
            # spikes emitted at exactly t by emitters whose synapses changed: through the new ones
            e_t = old._emitted_at(t)
            e_t = e_t[~same[e_t]]
            at_t = rest & (qg < old.ng) & np.isin(qe, e_t)
            at_t[at_t] = qt[at_t] == t + Go.gdel[qg[at_t]]  # (the kernel's sum at the emission)
            if e_t.size:
                e_new = em(e_t)
                cnt = G.gptr[e_new + 1] - G.gptr[e_new]
                gg = np.repeat(G.gptr[e_new] - np.cumsum(cnt) + cnt, cnt) + np.arange(cnt.sum())
                ents.append((t + G.gdel[gg], np.repeat(e_new, cnt), gg))
            retire = rest & ~at_t
            gs, inv = np.unique(qg[retire], return_inverse=True)
            ret_em = np.where(gs < old.ng, np.searchsorted(Go.gptr, gs, side="right") - 1,
                              old._ret_em[np.maximum(gs - old.ng, 0)] if old._ret_em.size else 0)
            ents.append((qt[retire], em(qe[retire]), self.ng + inv.reshape(-1)))
            if gs.size:
                lo, sizes = Go.sptr[gs], Go.sptr[gs + 1] - Go.sptr[gs]
                idx = np.repeat(lo - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())
                self.G = Graph(gptr=G.gptr, gdel=np.concatenate([G.gdel, Go.gdel[gs]]),
                               sptr=np.concatenate([G.sptr, G.sptr[-1] + np.cumsum(sizes)]),
                               tgt=np.concatenate([G.tgt, Go.tgt[idx].astype(G.tgt.dtype)]),
                               w=np.concatenate([G.w, Go.w[idx].astype(G.w.dtype)]),
                               gport=np.concatenate([G.gport, Go.gport[gs]]))
            self._ret_em = em(ret_em).astype(np.int64)
        T, E, Gr = (np.concatenate([np.asarray(x[k]) for x in ents]) for k in range(3))
        size = max(_QUEUE_START, 2 * T.size)
        self.Q = (np.zeros(size), np.zeros(size, np.int64), np.zeros(size, np.int64))
        self.qn = live.heap_fill(self.Q, T.astype(np.float64), E.astype(np.int64), Gr.astype(np.int64))
        # ---- counters and the sampling clock (the next sample after t, and after those already taken)
        self.counters[:] = old.counters
        self.M.tb[0] = old.M.tb[0]
        if self.RS.idx.size:
            base = float(self.sample_t[2])
            k = max(1.0, math.floor(t / base))
            while k * base <= t:
                k += 1.0
            while k > 1.0 and (k - 1.0) * base > t:
                k -= 1.0
            if old.RS.idx.size:
                k = max(k, float((int(old.sample_t[1]) - 1) * old.base_k // self.base_k + 1))
            self.sample_t[:] = (k * base, k, base)

    def _emitted_at(self, t):
        """Emitters (one entry per spike, ascending) that emitted a spike at exactly ``t`` (ms), the end
        of the last run: neurons whose refractory period started then, spike-source channels whose
        last emitted spikes are at ``t``, Poisson channels whose last emissions in the stream are."""
        N = self.SS.shape[0]
        cls = self.SS[:, ev.CM].astype(np.int64) >> 1
        out = [np.flatnonzero(self.SS[:, ev.TR] == t + self.PP[cls, ev.T_REF])]
        S = self.SRC
        last = S.ptr - 1
        emitted = np.flatnonzero(last >= S.sptr[:-1])
        for c in emitted[S.times[last[emitted]] == t]:
            k = int(S.ptr[c] - np.searchsorted(S.times[S.sptr[c]:S.ptr[c]], t, side="left") - S.sptr[c])
            out.append(np.full(k, N + c))
        a = int(np.searchsorted(S.st[:S.spos[0]], t, side="left"))
        out.append(N + S.sc[a:S.spos[0]][S.st[a:S.spos[0]] == t])
        return np.sort(np.concatenate(out).astype(np.int64))

    def _dc_synapses(self, e):
        """Targets and currents (pA, float64) of DC emitter ``e``, in synapse order."""
        G = self.G
        a, b = G.sptr[G.gptr[e]], G.sptr[G.gptr[e + 1]]
        return G.tgt[a:b].astype(np.int64), G.w[a:b].astype(np.float64)

    def retired(self):
        """The retired delay groups (see :meth:`_carry`): ``(emitter, size, delay, targets, weights, port)``."""
        G, ng = self.G, self.ng
        a = G.sptr[ng]
        return (self._ret_em, np.diff(G.sptr[ng:]).astype(np.int64), G.gdel[ng:].copy(), G.tgt[a:].copy(),
                G.w[a:].copy(), G.gport[ng:].copy())

    def _set_retired(self, em, size, delay, tgt, w, port=None):
        """Append retired delay groups to the graph (a plan just built from the network: checkpoints;
        ``port`` None: groups without receptor ports)."""
        G = self.G
        port = np.full(np.size(em), -1, np.int8) if port is None else np.asarray(port, np.int8)
        self.G = Graph(gptr=G.gptr, gdel=np.concatenate([G.gdel[:self.ng], delay]),
                       sptr=np.concatenate([G.sptr[:self.ng + 1], G.sptr[self.ng] + np.cumsum(size)]),
                       tgt=np.concatenate([G.tgt[:G.sptr[self.ng]], tgt.astype(G.tgt.dtype)]),
                       w=np.concatenate([G.w[:G.sptr[self.ng]], w.astype(G.w.dtype)]),
                       gport=np.concatenate([G.gport[:self.ng], port]))
        self._ret_em = np.asarray(em, np.int64).copy()

    def _next_window(self):
        """Generate the Poisson emissions of the next window into the stream, in (time, channel)
        order (the window is halved while it would hold more than 4x the target number)."""
        S = self.SRC
        lo, width = float(S.win[0]), float(S.win[1])
        none = np.zeros(0)
        while True:
            hi = lo + width
            m = ev.poisson_window(S.rate, S.count, S.nxt, self.key[0], self.key[1], hi, none, none.astype(np.int64))
            if m <= 4 * max(_STREAM_TARGET, S.rate.size) or hi == lo or width < 1e-9:
                break
            width *= 0.5
        S.win[1] = width
        t = np.empty(m)
        c = np.empty(m, np.int64)
        ev.poisson_window(S.rate, S.count, S.nxt, self.key[0], self.key[1], hi, t, c)
        order = np.argsort(t, kind="stable")  # channels were generated in increasing order
        self.SRC = S._replace(st=t[order], sc=c[order])
        S = self.SRC
        S.spos[:] = (0, m)
        S.win[0] = hi

    def _push(self, t, e, g=-1):
        self._grow_queue(self.qn + 1)
        self.qn = ev.heap_push(self.Q, self.qn, float(t), int(e), int(g))

    def _grow_queue(self, need):
        """Make room for ``need`` entries in the event heap (amortised doubling)."""
        size = self.Q[0].size
        if need <= size:
            return
        size = max(2 * size, need)
        self.Q = tuple(np.concatenate([q[:self.qn], np.zeros(size - self.qn, q.dtype)]) for q in self.Q)

    # ------------------------------------------------------------------ running
    def advance(self, t_end, progress=None):
        """Process every event up to and including ``t_end`` (ms); ``progress`` as in
        :meth:`eventsim.Network.run` (a bar over the run's ``dt`` steps, moved at each window).

        The run goes in windows of ``config.CHUNK_STEPS * dt`` ms, each a
        transaction: at its end the recorders commit (streaming ones flush
        to their files) and ``net.t`` moves.  Any exception inside the run
        (KeyboardInterrupt included) leaves the network and every recorder
        at the end of the last committed window, so a later ``run()``
        continues exactly as an uninterrupted run.  A NaN or infinity in
        the state stops the run with a FloatingPointError naming the
        population, neuron and time; the network is left in its last
        finite state (at a multiple of ``dt`` after the last committed
        window, recorders included).
        """
        net = self.net
        t0 = float(net._time)
        width = config.CHUNK_STEPS * net.dt
        bar = _progress(net, int(round((t_end - t0) / net.dt)), progress)
        k = 0
        try:
            while True:  # at least one window: a run of 0 ms still processes the events at t0
                k += 1
                t_w = min(t0 + k * width, t_end)
                ta = net._time
                if not self._transaction(t_w):
                    # replay the window dt by dt to stop at the last finite state
                    j = 0
                    while True:
                        j += 1
                        self._transaction(min(ta + j * net.dt, t_w), single=True)
                if bar is not None:
                    bar.update(int(round((net._time - t0) / net.dt)) - bar.n)
                if t_w >= t_end:
                    break
        finally:
            if bar is not None:
                bar.close()

    def _process(self, t_end):
        """Run the kernel up to ``t_end`` (ms), staging the recorded spikes and samples."""
        while True:
            self.qn, status = ev.run_event(self.fams, float(t_end), self.PP, self.SS, self.TH, self.ITH, self.DTH, self.G,
                                           self.SRC, self.X, self.Q, self.qn, self.qroom, self.R, self.M,
                                           self.counters, self.stack, self.sample_t, self.RS)
            if status == 3:  # (at least double: a parrot's spike of multiplicity m needs m times qroom)
                self._grow_queue(max(self.qn + 2 * self.qroom + 2, self.Q[0].size + 1))
                continue
            if status == 4:
                self._next_window()
                continue
            self._collect()
            if status == 0:
                break

    def _non_finite(self):
        """Network index of the first neuron whose state is not finite, or -1."""
        finite = np.isfinite(self.SS[:, :3]).all(axis=1) & np.isfinite(self.TH).all(axis=1)
        return -1 if finite.all() else int(np.flatnonzero(~finite)[0])

    def _transaction(self, t_end, single=False):
        """Process the events up to ``t_end`` and commit them, or leave everything as it was.

        Returns False when the state became non-finite (the window is then
        undone); with ``single`` that raises FloatingPointError instead.  Any
        exception leaves the network and every recorder as before the call.
        """
        net = self.net
        t0 = net._time
        snap = self._snapshot()
        try:
            self._process(t_end)
            bad = self._non_finite()
            if bad >= 0:
                self._restore(snap)
                for r in net.recorders:
                    r._rollback()
                if not single:
                    return False
                pop = next(p for p in net.populations if p.offset <= bad < p.offset + p.n)
                raise FloatingPointError(
                    f"non-finite state in population {pop!r}, neuron {bad - pop.offset} (network index {bad}) "
                    f"after t = {net.t} ms, at or before t = {t_end} ms; the network is left at "
                    f"t = {net.t} ms, its last finite state")
            step = int(round(t_end / net.dt))
            for r in net.recorders:  # streaming recorders flush here: the window is complete
                r._commit(step)
            net._time = float(t_end)  # the commit point
            for r in net.recorders:
                r._settle()
            return True
        except BaseException:
            if net._time != t0:  # committed: complete it
                for r in net.recorders:
                    r._settle()
            else:
                self._restore(snap)
                for r in net.recorders:
                    r._rollback()
            raise

    _MUTABLE = ("SS", "TH", "X", "M", "counters", "sample_t")

    def _snapshot(self):
        """Copies of everything the kernel changes (the Poisson stream's arrays are replaced, not changed)."""
        S = self.SRC
        src = S._replace(count=S.count.copy(), ptr=S.ptr.copy(), nxt=S.nxt.copy(), spos=S.spos.copy(),
                         win=S.win.copy())
        rest = {nm: _copy(getattr(self, nm)) for nm in self._MUTABLE}
        return src, tuple(q[:self.qn].copy() for q in self.Q), self.qn, rest

    def _restore(self, snap):
        src, q, qn, rest = snap
        self.SRC = src._replace(count=src.count.copy(), ptr=src.ptr.copy(), nxt=src.nxt.copy(),
                                spos=src.spos.copy(), win=src.win.copy())
        for dst, part in zip(self.Q, q):
            dst[:qn] = part
        self.qn = qn
        for nm, val in rest.items():
            cur = getattr(self, nm)
            if isinstance(cur, tuple):
                for d, v in zip(cur, val):
                    d[...] = v
            else:
                cur[...] = val
        self.R.n[0] = 0
        self.RS.cnt[0] = 0

    def _collect(self):
        m = int(self.R.n[0])
        if m:
            t, ids = split_multiplicity(self.R.t[:m].copy(), self.R.i[:m].copy())
            t, ids = _time_order(t, ids)
            for r, member in zip(self.spike_recorders, self._members):
                if member is None:
                    r._append_times(t, ids)
                else:
                    mask = member[ids]
                    r._append_times(t[mask], ids[mask])
            self.R.n[0] = 0
        c = int(self.RS.cnt[0])
        if c:
            nrow = int(self.rec_ptr[-1])
            vals = self.RS.buf[:c * nrow].reshape(c, nrow)
            k_last = int(self.sample_t[1]) - 1  # tick of the last sample taken
            ticks = np.arange(k_last - c + 1, k_last + 1, dtype=np.int64)
            for j, r in enumerate(self.state_recorders):
                every = r.interval_steps // self.base_k
                keep = ticks % every == 0
                steps = ticks[keep] * self.base_k
                r._append(steps, vals[keep, self.rec_ptr[j]:self.rec_ptr[j + 1]].copy())
            self.RS.cnt[0] = 0
