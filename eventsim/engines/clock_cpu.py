"""Clock-driven CPU engine (Numba).

The network is a flat plan of structure-of-arrays:

* neuron parameters and state, one contiguous array per variable;
* CSR connectivity over all senders (neurons ``0..N-1``, then source
  channels ``N..N+S-1``): ``row_ptr``; per synapse the ring column of its
  target and receptor (int32), the weight and the delay in steps (int16);
* ring buffers ``ring[L, C]`` with ``L = max_delay_steps + 1`` and one column
  per (target neuron, receptor).

Time convention (NEST's): the update of step ``s`` advances the state from
``s*dt`` to ``(s+1)*dt``; a spike emitted in it is stamped ``s+1``.  A spike
stamped ``t`` with delay ``d`` steps is added to slot ``(t+d) mod L`` and read
by the update that ends at ``t+d``.  Spike-source and Poisson events for
stamp ``s`` are injected at the start of the update of step ``s``.

Within a step the order of additions into a ring slot is fixed (sources in
channel order, then spiking neurons in index order, each in CSR order), so
results are reproducible bit for bit.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ..models.dynamics import neuron_update, reset_voltage
from ..rng import poisson_count

VAR_CODES = {"v": 0, "i_ex": 1, "i_in": 2, "theta": 3, "v_th": 4}


class Params(NamedTuple):
    is_exp: np.ndarray
    p_vv: np.ndarray
    p_vi: np.ndarray
    p_ve: np.ndarray
    p_vn: np.ndarray
    p_ee: np.ndarray
    p_nn: np.ndarray
    v_rest: np.ndarray
    v_th: np.ndarray
    v_reset: np.ndarray
    v_min: np.ndarray
    i_e: np.ndarray
    ref_steps: np.ndarray
    reset_mode: np.ndarray
    reset_m: np.ndarray
    reset_b: np.ndarray
    p_theta: np.ndarray
    d_theta: np.ndarray
    col: np.ndarray


class State(NamedTuple):
    v: np.ndarray
    i_ex: np.ndarray
    i_in: np.ndarray
    refr: np.ndarray
    theta: np.ndarray
    i_dc: np.ndarray


class Conn(NamedTuple):
    row_ptr: np.ndarray
    syn_col: np.ndarray
    syn_w: np.ndarray
    syn_d: np.ndarray


class Sources(NamedTuple):
    pois_sender: np.ndarray   # int64 global sender id of each Poisson channel
    pois_channel: np.ndarray  # int64 channel id (RNG stream) of each Poisson channel
    pois_lam: np.ndarray      # float64 expected count per step
    key: np.ndarray           # uint64[2] Philox key
    ss_step: np.ndarray       # int64 stamps of explicit spikes, sorted
    ss_sender: np.ndarray     # int64 global sender ids
    ss_ptr: np.ndarray        # int64[1] next explicit spike


class Recording(NamedTuple):
    spk_flag: np.ndarray      # int8 per neuron
    spk_step: np.ndarray      # int64 buffer
    spk_id: np.ndarray        # int64 buffer
    spk_n: np.ndarray         # int64[1] fill level
    rec_var: np.ndarray       # int64 per state recorder
    rec_k: np.ndarray         # int64 interval in steps
    rec_ptr: np.ndarray       # int64 CSR into rec_idx
    rec_idx: np.ndarray       # int64 neuron ids
    rec_off: np.ndarray       # int64 offset in rec_buf
    rec_cnt: np.ndarray       # int64 samples written
    rec_buf: np.ndarray       # float64
    counters: np.ndarray      # int64[2]: synaptic events from neurons, from sources


@njit(inline="always", cache=True)
def _deliver(sender, mult, base_slot, conn, ring, L):
    """Add ``mult * w`` of every outgoing synapse of ``sender`` into its delay slot."""
    for j in range(conn.row_ptr[sender], conn.row_ptr[sender + 1]):
        slot = base_slot + conn.syn_d[j]
        if slot >= L:
            slot -= L
        ring[slot, conn.syn_col[j]] += mult * conn.syn_w[j]


@njit(inline="always", cache=True)
def _state_value(code, n, st, pr):
    if code == 0:
        return st.v[n]
    if code == 1:
        return st.i_ex[n]
    if code == 2:
        return st.i_in[n]
    th = 0.0
    for k in range(st.theta.shape[1]):
        th += st.theta[n, k]
    if code == 3:
        return th
    return pr.v_th[n] + th


@njit(cache=True)
def run_clock(s0, s1, pr, st, conn, ring, src, rec, spikers):
    """Advance from step ``s0`` to at most ``s1``; return the step reached.

    Returns early (before a step) when the spike-recording buffer could
    overflow during that step; the caller empties it and calls again.
    """
    N = pr.v_th.shape[0]
    L = ring.shape[0]
    K = pr.p_theta.shape[1]
    n_flag = 0
    for n in range(N):
        n_flag += rec.spk_flag[n]
    cap = rec.spk_step.shape[0]
    k0 = src.key[0]
    k1 = src.key[1]
    n_pois = src.pois_lam.shape[0]
    n_ss = src.ss_step.shape[0]
    for s in range(s0, s1):
        if rec.spk_n[0] + n_flag > cap:
            return s
        base_src = s % L
        # ---- 1. external sources stamped s
        p = src.ss_ptr[0]
        while p < n_ss and src.ss_step[p] <= s:
            if src.ss_step[p] == s:
                snd = src.ss_sender[p]
                _deliver(snd, 1.0, base_src, conn, ring, L)
                rec.counters[1] += conn.row_ptr[snd + 1] - conn.row_ptr[snd]
            p += 1
        src.ss_ptr[0] = p
        for j in range(n_pois):
            c = poisson_count(src.pois_lam[j], k0, k1, s, src.pois_channel[j])
            if c > 0:
                snd = src.pois_sender[j]
                _deliver(snd, float(c), base_src, conn, ring, L)
                rec.counters[1] += c * (conn.row_ptr[snd + 1] - conn.row_ptr[snd])
        # ---- 2. neuron update, threshold, reset
        slot = (s + 1) % L
        nsp = 0
        for n in range(N):
            c = pr.col[n]
            in_ex = ring[slot, c]
            ring[slot, c] = 0.0
            in_in = 0.0
            if pr.is_exp[n]:
                in_in = ring[slot, c + 1]
                ring[slot, c + 1] = 0.0
            v, i_ex, i_in, refr = neuron_update(
                st.v[n], st.i_ex[n], st.i_in[n], st.refr[n], in_ex, in_in, pr.is_exp[n],
                pr.v_rest[n], pr.p_vv[n], pr.p_vi[n], pr.p_ve[n], pr.p_vn[n], pr.p_ee[n],
                pr.p_nn[n], pr.i_e[n] + st.i_dc[n], pr.v_min[n])
            thr = pr.v_th[n]
            for k in range(K):
                st.theta[n, k] *= pr.p_theta[n, k]
                thr += st.theta[n, k]
            if v >= thr:
                v = reset_voltage(v, pr.reset_mode[n], pr.v_reset[n], pr.v_rest[n], thr,
                                  pr.reset_m[n], pr.reset_b[n])
                refr = pr.ref_steps[n]
                for k in range(K):
                    st.theta[n, k] += pr.d_theta[n, k]
                spikers[nsp] = n
                nsp += 1
                if rec.spk_flag[n]:
                    m = rec.spk_n[0]
                    rec.spk_step[m] = s + 1
                    rec.spk_id[m] = n
                    rec.spk_n[0] = m + 1
            st.v[n] = v
            st.i_ex[n] = i_ex
            st.i_in[n] = i_in
            st.refr[n] = refr
        # ---- 3. delivery of the spikes stamped s+1
        for q in range(nsp):
            snd = spikers[q]
            _deliver(snd, 1.0, slot, conn, ring, L)
            rec.counters[0] += conn.row_ptr[snd + 1] - conn.row_ptr[snd]
        # ---- 4. state recording at stamp s+1
        for r in range(rec.rec_var.shape[0]):
            if (s + 1) % rec.rec_k[r] == 0:
                a = rec.rec_ptr[r]
                b = rec.rec_ptr[r + 1]
                base = rec.rec_off[r] + rec.rec_cnt[r] * (b - a)
                for i in range(a, b):
                    rec.rec_buf[base + i - a] = _state_value(rec.rec_var[r], rec.rec_idx[i], st, pr)
                rec.rec_cnt[r] += 1
    return s1
