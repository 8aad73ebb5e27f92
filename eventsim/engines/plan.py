"""Flatten a Network into structure-of-arrays and drive the clock engine."""

from __future__ import annotations

import numpy as np

from .. import config
from ..rng import POISSON, key_words
from . import clock_cpu as cc

_PARAM_FIELDS = cc.Params._fields


class ClockPlan:
    """Flat arrays of a built network plus the loop that feeds the compiled kernel."""

    def __init__(self, net, params, state, conn, ring, sources, spk_flag, dc):
        self.net = net
        self.params = params
        self.state = state
        self.conn = conn
        self.ring = ring
        self.sources = sources
        self.spk_flag = spk_flag
        self.dc = dc  # list of (start_step, stop_step, targets, currents)
        self.spk_buf_step = np.zeros(max(config.SPIKE_BUFFER_INITIAL, 2 * int(spk_flag.sum())), np.int64)
        self.spk_buf_id = np.zeros_like(self.spk_buf_step)
        self.spikers = np.zeros(params.v_th.size, np.int64)
        self.spike_recorders = [r for r in net.recorders if hasattr(r, "_chunks_steps")]
        self.state_recorders = [r for r in net.recorders if hasattr(r, "variable")]
        idx = [r.group.ids for r in self.state_recorders]
        self.rec_var = np.array([cc.VAR_CODES[r.variable] for r in self.state_recorders], np.int64)
        self.rec_k = np.array([r.interval_steps for r in self.state_recorders], np.int64)
        self.rec_ptr = np.concatenate([[0], np.cumsum([i.size for i in idx])]).astype(np.int64)
        self.rec_idx = np.concatenate(idx).astype(np.int64) if idx else np.zeros(0, np.int64)
        self.counters = np.zeros(2, np.int64)
        self._dc_edges = sorted({e for (a, b, _, _) in dc for e in (a, b)})

    def _apply_dc(self, step):
        i_dc = self.state.i_dc
        i_dc[:] = 0.0
        for a, b, targets, currents in self.dc:
            if a <= step < b:
                np.add.at(i_dc, targets, currents)

    def advance(self, n_steps):
        net = self.net
        target = net._step + n_steps
        while net._step < target:
            s = net._step
            end = min(target, s + config.CHUNK_STEPS)
            for e in self._dc_edges:
                if s < e < end:
                    end = e
                    break
            self._apply_dc(s)
            # state recorder buffers for stamps s+1 .. end
            counts = (end // self.rec_k) - (s // self.rec_k)
            sizes = counts * np.diff(self.rec_ptr)
            off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            rec_buf = np.zeros(int(off[-1]))
            rec_cnt = np.zeros(self.rec_var.size, np.int64)
            spk_n = np.zeros(1, np.int64)
            rec = cc.Recording(self.spk_flag, self.spk_buf_step, self.spk_buf_id, spk_n, self.rec_var,
                               self.rec_k, self.rec_ptr, self.rec_idx, off[:-1].copy(), rec_cnt, rec_buf,
                               self.counters)
            reached = int(cc.run_clock(s, end, self.params, self.state, self.conn, self.ring,
                                       self.sources, rec, self.spikers))
            self._collect(s, reached, rec)
            net._step = reached
            if reached < end:  # the spike buffer could have overflowed: grow it
                new = 2 * self.spk_buf_step.size
                self.spk_buf_step = np.zeros(new, np.int64)
                self.spk_buf_id = np.zeros(new, np.int64)

    def _collect(self, s, reached, rec):
        m = int(rec.spk_n[0])
        steps = rec.spk_step[:m].copy()
        ids = rec.spk_id[:m].copy()
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


def build_plan(net):
    """Build the engine arrays of ``net``; the network itself is left untouched on error."""
    N = net.n_neurons
    dt = net.dt
    packs = [p.model.pack(p.n, dt) for p in net.populations]
    K = max([pk["p_theta"].shape[1] for pk in packs] + [0])
    fields = {}
    for name in _PARAM_FIELDS:
        if name == "col":
            continue
        if name in ("p_theta", "d_theta"):
            arr = np.zeros((N, K))
            o = 0
            for pk, pop in zip(packs, net.populations):
                arr[o:o + pop.n, : pk[name].shape[1]] = pk[name]
                o += pop.n
            fields[name] = arr
        else:
            fields[name] = np.concatenate([pk[name] for pk in packs]) if packs else np.zeros(0)
    is_exp = fields["is_exp"].astype(np.int64)
    fields["is_exp"] = is_exp
    width = 1 + is_exp
    col = np.concatenate([[0], np.cumsum(width)]).astype(np.int64)
    n_cols = int(col[-1])
    fields["col"] = col[:-1].copy()
    params = cc.Params(**fields)

    v0 = np.concatenate([p.v_init for p in net.populations]) if net.populations else np.zeros(0)
    state = cc.State(v=v0.astype(np.float64), i_ex=np.zeros(N), i_in=np.zeros(N),
                     refr=np.zeros(N, np.int64), theta=np.zeros((N, K)), i_dc=np.zeros(N))

    # ---- connectivity: senders are neurons 0..N-1 then source channels N..N+S-1
    n_send = N + net._n_channels
    pre_l, post_l, w_l, d_l, dc = [], [], [], [], []
    for proj in net.projections:
        post_g = proj.target.ids[proj.post]
        if proj.source.kind == "dc":
            ch = proj.source.ids[proj.pre]
            cur = proj.weight * _dc_amplitude(net, ch)
            for s in net.dc_sources:
                m = (ch >= s.ids[0]) & (ch < s.ids[0] + len(s))
                if m.any():
                    dc.append((s.start_step, s.stop_step, post_g[m], cur[m]))
            continue
        pre_g = proj.source.ids[proj.pre]
        if proj.source.kind == "source":
            pre_g = pre_g + N
        pre_l.append(pre_g)
        post_l.append(post_g)
        w_l.append(proj.weight)
        d_l.append(proj.delay_steps)
    if pre_l:
        pre = np.concatenate(pre_l)
        post = np.concatenate(post_l)
        w = np.concatenate(w_l)
        d = np.concatenate(d_l)
        order = np.argsort(pre, kind="stable")
        pre, post, w, d = pre[order], post[order], w[order], d[order]
        del order
    else:
        pre = post = d = np.zeros(0, np.int64)
        w = np.zeros(0)
    row_ptr = np.zeros(n_send + 1, np.int64)
    np.cumsum(np.bincount(pre, minlength=n_send), out=row_ptr[1:])
    syn_col = (params.col[post] + ((is_exp[post] == 1) & (w < 0))).astype(np.int32)
    conn = cc.Conn(row_ptr=row_ptr, syn_col=syn_col, syn_w=w.astype(net.weight_dtype),
                   syn_d=d.astype(np.int16))
    max_d = int(d.max()) if d.size else 1
    ring = np.zeros((max_d + 1, max(n_cols, 1)))

    # ---- sources
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
    sources = cc.Sources(pois_sender=cat(pois_sender, np.int64), pois_channel=cat(pois_channel, np.int64),
                         pois_lam=cat(pois_lam, np.float64), key=np.array([k0, k1], dtype=np.uint64),
                         ss_step=ss_step[order], ss_sender=ss_sender[order],
                         ss_ptr=np.zeros(1, np.int64))
    spk_flag = np.zeros(N, np.int8)
    for r in net.recorders:
        if hasattr(r, "_chunks_steps"):
            spk_flag[r.group.ids] = 1
    return ClockPlan(net, params, state, conn, ring, sources, spk_flag, dc)


def _dc_amplitude(net, channels):
    amp = np.concatenate([s.amplitude for s in net.dc_sources])
    return amp[channels]
