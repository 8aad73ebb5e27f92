"""Fused CPU kernels of the torch bridge (Numba, parallel over batch x neurons).

Layout: time-first ``x[T, B, N]`` (C order).  The feed-forward kernels give
each thread a block of ``blk`` neighbouring neurons of one batch row and
run the whole time loop over it, so memory is read contiguously and the
inner neuron loop can use SIMD.  The backward kernel does not read anything
saved by the forward pass except the input: it recomputes the block's
forward trajectory into a thread-local buffer (bit-identical, same code)
and then runs the reverse-time recurrence over it.  The recurrent kernels
loop over time outside (all neurons of a batch row are coupled) and keep
the pre-reset membrane from the forward pass.

The point kernels (``ff_*``, ``rec_*``) take the layer's family tag
``fam`` first and run each step through the family's declared step
(:func:`eventsim.models.family.torch_point_forward` /
:func:`~eventsim.models.family.torch_point_backward`, bound at compile
time); the ``K`` threshold components of an adaptive layer (state
``th[K, ...]``, coefficient rows ``8 ...`` of ``nat`` and ``aff``) are
decayed, summed and jumped around them (:func:`._core.decay_thresholds`,
:func:`._core.jump_thresholds`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from numba import types
from numba.extending import overload

from ._core import (N_FIXED, decay_thresholds, family_run_backward, family_run_forward, jump_thresholds, spike_of,
                    torch_point_backward, torch_point_forward)


def const(x):
    """``x``, as a compile-time constant when the kernel was compiled with ``x`` as a literal."""
    return x


@overload(const, inline="always", prefer_literal=True)
def _const(x):
    if isinstance(x, types.IntegerLiteral):
        value = x.literal_value
        return lambda x: value
    return lambda x: x


@njit(inline="always", cache=True, error_model="numpy")
def _rows(a):
    """Rows 0-7 of the coefficients as a tuple of contiguous 1-D arrays (unit-stride loads in the inner loops)."""
    return (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])


@njit(inline="always", cache=True, error_model="numpy")
def _block(r, a, b):
    """Each row of the tuple ``r`` sliced to ``[a, b)``: indices from 0 let the inner loops vectorise."""
    return (r[0][a:b], r[1][a:b], r[2][a:b], r[3][a:b], r[4][a:b], r[5][a:b], r[6][a:b], r[7][a:b])


@njit(inline="always", cache=True, error_model="numpy")
def _grad_row(g, t, b, j0, jn, n, buf):
    """Row ``[t, b, j0:j0 + jn]`` of a gradient stored compactly: each axis is full or of length 1 (broadcast).

    A broadcast along the neurons is spread into ``buf``; a sum or mean
    loss gives a ``[1, 1, 1]`` gradient and nothing of size ``T x B x N`` is read.
    """
    tg = t if g.shape[0] > 1 else 0
    bg = b if g.shape[1] > 1 else 0
    if g.shape[2] == n:
        return g[tg, bg, j0:j0 + jn]
    buf[:] = g[tg, bg, 0]
    return buf


@njit(parallel=True, cache=True, error_model="numpy")
def ff_forward(fam, x, v0, i0, r0, th0, nat, mode, syn, reset, rule, adapt, track, ref, blk, K,
               spikes, vtrace, vT, iT, rT, thT):
    """All T steps of a feed-forward layer; writes ``spikes``, ``vtrace`` (if sized) and the final state.

    ``th0`` and ``thT`` are ``[K, B, N]`` (``K`` threshold components).  The
    flags (``mode`` ... ``track``) and ``K`` may be compiled as literals,
    which removes every branch on them from the inner loop.
    """
    T, B, N = x.shape
    mode, syn, reset, rule, adapt, track = const(mode), const(syn), const(reset), const(rule), const(adapt), const(track)
    K = const(K)
    record = vtrace.shape[0] > 0
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    ninf = x.dtype.type(-np.inf)
    nbr = (N + blk - 1) // blk
    pth = nat[N_FIXED:N_FIXED + K]
    dth = nat[N_FIXED + K:N_FIXED + 2 * K]
    nat = _rows(nat)
    for k in prange(B * nbr):
        b = k // nbr
        j0 = (k - b * nbr) * blk
        jn = min(blk, N - j0)
        v = v0[b, j0:j0 + jn].copy()
        cur = i0[b, j0:j0 + jn].copy()
        r = r0[b, j0:j0 + jn].copy()
        th = th0[:, b, j0:j0 + jn].copy()
        nb = _block(nat, j0, j0 + jn)
        pb = pth[:, j0:j0 + jn]
        db = dth[:, j0:j0 + jn]
        for t in range(T):
            xr = x[t, b, j0:j0 + jn]
            sr = spikes[t, b, j0:j0 + jn]
            for jj in range(jn):
                thr_a = zero
                if adapt:
                    thr_a = decay_thresholds(th, jj, pb, jj, K, nb[5][jj])
                vp, vpo, ci, rr, z, thr, refr = torch_point_forward(
                    fam, mode, syn, reset, rule, adapt, ref, v[jj], cur[jj] if syn else zero,
                    r[jj] if track else 0, thr_a, xr[jj], nb, jj, zero, one, ninf)
                v[jj] = vpo
                if syn:
                    cur[jj] = ci
                if track:
                    r[jj] = rr
                if adapt:
                    if z > zero:
                        jump_thresholds(th, jj, db, jj, K, z)
                sr[jj] = z
            if record:
                vtrace[t, b, j0:j0 + jn] = v
        vT[b, j0:j0 + jn] = v
        iT[b, j0:j0 + jn] = cur
        rT[b, j0:j0 + jn] = r
        thT[:, b, j0:j0 + jn] = th


@njit(parallel=True, cache=True, error_model="numpy")
def ff_backward(fam, x, v0, i0, r0, th0, nat, aff, mode, syn, reset, rule, adapt, detach, code, track, want_par,
                has_gvtr, ref, blk, K, alpha, gout, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0, dpar):
    """Reverse-time recurrence of a feed-forward layer.

    Recomputes the forward trajectory of each block into thread-local
    buffers (only the pre-reset membrane, plus what the flags need), then
    runs :func:`backward_step` backwards in time.  Writes the input
    gradient ``gx``, the initial-state gradients and, if ``dpar`` has shape
    ``[8 + 2K, B, N]``, per-element sums of the gradients on the
    coefficient rows of ``aff``; ``want_par`` must then be 1.  ``has_gvtr``:
    whether ``gvtr`` holds a gradient on the recorded membrane trace.
    """
    T, B, N = x.shape
    mode, syn, reset, rule, adapt, track = const(mode), const(syn), const(reset), const(rule), const(adapt), const(track)
    detach, code, want_par, has_gvtr = const(detach), const(code), const(want_par), const(has_gvtr)
    K = const(K)
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    ninf = x.dtype.type(-np.inf)
    dt = x.dtype
    keep_th = want_par and adapt
    nbr = (N + blk - 1) // blk
    n_par = N_FIXED + 2 * K
    pth = nat[N_FIXED:N_FIXED + K]
    dth = nat[N_FIXED + K:N_FIXED + 2 * K]
    nat = _rows(nat)
    aff = _rows(aff)
    for k in prange(B * nbr):
        b = k // nbr
        j0 = (k - b * nbr) * blk
        jn = min(blk, N - j0)
        vp_b = np.empty((T, jn), dt)
        vpo_b = np.empty((T if want_par else 0, jn), dt)
        thr_b = np.empty((T if adapt else 0, jn), dt)
        th_b = np.empty((T if keep_th else 0, K, jn), dt)
        rf_b = np.zeros((T if track else 0, jn), np.int8)
        i_b = np.empty((T if (syn and want_par) else 0, jn), dt)
        v = v0[b, j0:j0 + jn].copy()
        cur = i0[b, j0:j0 + jn].copy()
        r = r0[b, j0:j0 + jn].copy()
        th = th0[:, b, j0:j0 + jn].copy()
        nb = _block(nat, j0, j0 + jn)
        ab = _block(aff, j0, j0 + jn)
        pb = pth[:, j0:j0 + jn]
        db = dth[:, j0:j0 + jn]
        v0b = v0[b, j0:j0 + jn]
        i0b = i0[b, j0:j0 + jn]
        th0b = th0[:, b, j0:j0 + jn]
        # ---- recompute the forward trajectory of this block (same code as ff_forward)
        for t in range(T):
            xr = x[t, b, j0:j0 + jn]
            for jj in range(jn):
                thr_a = zero
                if adapt:
                    thr_a = decay_thresholds(th, jj, pb, jj, K, nb[5][jj])
                vp, vpo, ci, rr, z, thr, refr = torch_point_forward(
                    fam, mode, syn, reset, rule, adapt, ref, v[jj], cur[jj] if syn else zero,
                    r[jj] if track else 0, thr_a, xr[jj], nb, jj, zero, one, ninf)
                v[jj] = vpo
                vp_b[t, jj] = vp
                if syn:
                    cur[jj] = ci
                if track:
                    r[jj] = rr
                    rf_b[t, jj] = 1 if refr else 0
                if adapt:
                    if z > zero:
                        jump_thresholds(th, jj, db, jj, K, z)
                    thr_b[t, jj] = thr
                    if keep_th:
                        for q in range(K):
                            th_b[t, q, jj] = th[q, jj]
                if want_par:
                    vpo_b[t, jj] = vpo
                if syn and want_par:
                    i_b[t, jj] = ci
        # ---- reverse time
        gbuf = np.empty(jn, dt)
        vbuf = np.empty(jn, dt)
        gv = gvT[b, j0:j0 + jn].copy()
        gi = giT[b, j0:j0 + jn].copy()
        gth = gthT[:, b, j0:j0 + jn].copy()
        acc = np.zeros((n_par if want_par else 0, jn))
        for t in range(T - 1, -1, -1):
            gor = _grad_row(gout, t, b, j0, jn, N, gbuf)
            gxr = gx[t, b, j0:j0 + jn]
            xr = x[t, b, j0:j0 + jn]
            gvr = _grad_row(gvtr, t, b, j0, jn, N, vbuf) if has_gvtr else gbuf
            for jj in range(jn):
                vprev = zero
                iprev = zero
                if t > 0:
                    vpprev = vp_b[t - 1, jj]
                    if want_par:
                        vprev = vpo_b[t - 1, jj]
                        if syn:
                            iprev = i_b[t - 1, jj]
                else:
                    vpprev = v0b[jj]
                    if want_par:
                        vprev = v0b[jj]
                        iprev = i0b[jj]
                thr = thr_b[t, jj] if adapt else nb[5][jj]
                refr = rf_b[t, jj] != 0 if track else False
                vp = vp_b[t, jj]
                z = spike_of(rule, vp, thr, zero, one)
                g = gv[jj]
                if has_gvtr:
                    g = g + gvr[jj]
                gza = zero
                if adapt:
                    for q in range(K):
                        gza += db[q, jj] * gth[q, jj]
                gvp, gip, gxn, d0, d1, d2, d3, d4, d5, d6, d7, gthr = torch_point_backward(
                    fam, mode, syn, reset, rule, adapt, detach, code, alpha,
                    vp, z, thr, refr, vpprev, vprev, xr[jj] if want_par else zero, iprev, gor[jj], g,
                    gi[jj] if syn else zero, gza, ab, nb, jj)
                gv[jj] = gvp
                if syn:
                    gi[jj] = gip
                gxr[jj] = gxn
                if want_par:
                    acc[0, jj] += d0
                    acc[1, jj] += d1
                    acc[2, jj] += d2
                    acc[3, jj] += d3
                    acc[4, jj] += d4
                    acc[5, jj] += d5
                    acc[6, jj] += d6
                    acc[7, jj] += d7
                if adapt:
                    for q in range(K):
                        gq = gth[q, jj] + gthr
                        if want_par:
                            thp = th_b[t - 1, q, jj] if t > 0 else th0b[q, jj]
                            acc[N_FIXED + q, jj] += gq * thp
                            acc[N_FIXED + K + q, jj] += gth[q, jj] * z
                        gth[q, jj] = pb[q, jj] * gq
        gv0[b, j0:j0 + jn] = gv
        gi0[b, j0:j0 + jn] = gi
        gth0[:, b, j0:j0 + jn] = gth
        if want_par:
            for q in range(n_par):
                for jj in range(jn):
                    dpar[q, b, j0 + jj] = acc[q, jj]


@njit(parallel=True, cache=True, error_model="numpy")
def rec_forward(fam, x, wt, z0, v0, i0, r0, th0, nat, cfg, spikes, vtrace, vT, iT, rT, thT,
                s_vp, s_vpo, s_i, s_thr, s_rf, s_xt, s_th):
    """All T steps of a recurrent layer, input ``x[t] + W_rec z[t-1]`` (``wt = W_rec.T``).

    The ``s_*`` arrays (``[T, B, N]``, ``s_th`` ``[T, K, B, N]``, or empty)
    keep what the reverse pass needs.
    """
    T, B, N = x.shape
    mode, syn, reset, rule, adapt, ref = cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[7]
    K = th0.shape[0]
    record = vtrace.shape[0] > 0
    save = s_vp.shape[0] > 0
    save_i = s_i.shape[0] > 0
    save_x = s_xt.shape[0] > 0
    save_th = s_th.shape[0] > 0
    track = cfg[8] != 0
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    ninf = x.dtype.type(-np.inf)
    pth = nat[N_FIXED:N_FIXED + K]
    dth = nat[N_FIXED + K:N_FIXED + 2 * K]
    for b in prange(B):
        v = v0[b].copy()
        cur = i0[b].copy()
        r = r0[b].copy()
        th = th0[:, b].copy()
        rin = np.zeros(N, x.dtype)
        for q in range(N):
            if z0[b, q] != 0:
                zq = z0[b, q]
                for n in range(N):
                    rin[n] += zq * wt[q, n]
        for t in range(T):
            for n in range(N):
                xt = x[t, b, n] + rin[n]
                thr_a = zero
                if adapt:
                    thr_a = decay_thresholds(th, n, pth, n, K, nat[5, n])
                vp, vpo, ci, rr, z, thr, refr = torch_point_forward(
                    fam, mode, syn, reset, rule, adapt, ref, v[n], cur[n], r[n], thr_a, xt,
                    nat, n, zero, one, ninf)
                v[n] = vpo
                cur[n] = ci
                r[n] = rr
                if adapt and z > zero:
                    jump_thresholds(th, n, dth, n, K, z)
                spikes[t, b, n] = z
                if record:
                    vtrace[t, b, n] = vpo
                if save:
                    s_vp[t, b, n] = vp
                    s_vpo[t, b, n] = vpo
                    if adapt:
                        s_thr[t, b, n] = thr
                    if track:
                        s_rf[t, b, n] = 1 if refr else 0
                    if save_i:
                        s_i[t, b, n] = ci
                    if save_x:
                        s_xt[t, b, n] = xt
                    if save_th:
                        for q in range(K):
                            s_th[t, q, b, n] = th[q, n]
            rin[:] = zero
            for q in range(N):
                zq = spikes[t, b, q]
                if zq != 0:
                    for n in range(N):
                        rin[n] += zq * wt[q, n]
        vT[b] = v
        iT[b] = cur
        rT[b] = r
        thT[:, b] = th


@njit(parallel=True, cache=True, error_model="numpy")
def rec_backward(fam, xt, wt, v0, i0, th0, nat, aff, cfg, alpha, s_vp, s_vpo, s_i, s_thr, s_rf, s_th, spikes,
                 gout, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0, gz0, dpar):
    """Reverse-time recurrence of a recurrent layer; ``gx`` is the gradient on the total input."""
    T, B, N = spikes.shape
    mode, syn, reset, rule, adapt, detach, code, ref = (cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[5],
                                                         cfg[6], cfg[7])
    K = th0.shape[0]
    track = cfg[8] != 0
    want_par = dpar.shape[1] > 0
    has_gvtr = gvtr.shape[0] > 0
    zero = spikes.dtype.type(0.0)
    n_par = N_FIXED + 2 * K
    pth = nat[N_FIXED:N_FIXED + K]
    dth = nat[N_FIXED + K:N_FIXED + 2 * K]
    for b in prange(B):
        gv = gvT[b].copy()
        gi = giT[b].copy()
        gth = gthT[:, b].copy()
        gzr = np.zeros(N, gx.dtype)
        acc = np.zeros((n_par, N))
        for t in range(T - 1, -1, -1):
            for n in range(N):
                if t > 0:
                    vpprev = s_vp[t - 1, b, n]
                    vprev = s_vpo[t - 1, b, n]
                    iprev = s_i[t - 1, b, n] if (syn and want_par) else zero
                else:
                    vpprev = v0[b, n]
                    vprev = v0[b, n]
                    iprev = i0[b, n]
                thr = s_thr[t, b, n] if adapt else nat[5][n]
                refr = s_rf[t, b, n] != 0 if track else False
                xv = xt[t, b, n] if want_par else zero
                z = spikes[t, b, n]
                g = gv[n]
                if has_gvtr:
                    g = g + gvtr[t, b, n]
                gza = zero
                if adapt:
                    for q in range(K):
                        gza += dth[q, n] * gth[q, n]
                gvp, gip, gxn, d0, d1, d2, d3, d4, d5, d6, d7, gthr = torch_point_backward(
                    fam, mode, syn, reset, rule, adapt, detach, code, alpha,
                    s_vp[t, b, n], z, thr, refr, vpprev, vprev, xv, iprev,
                    gout[t, b, n] + gzr[n], g, gi[n], gza, aff, nat, n)
                gv[n] = gvp
                if syn:
                    gi[n] = gip
                gx[t, b, n] = gxn
                if want_par:
                    acc[0, n] += d0
                    acc[1, n] += d1
                    acc[2, n] += d2
                    acc[3, n] += d3
                    acc[4, n] += d4
                    acc[5, n] += d5
                    acc[6, n] += d6
                    acc[7, n] += d7
                if adapt:
                    for q in range(K):
                        gq = gth[q, n] + gthr
                        if want_par:
                            thp = s_th[t - 1, q, b, n] if t > 0 else th0[q, b, n]
                            acc[N_FIXED + q, n] += gq * thp
                            acc[N_FIXED + K + q, n] += gth[q, n] * z
                        gth[q, n] = pth[q, n] * gq
            # gradient reaching z[t-1] through the recurrent weights
            for q in range(N):
                s = zero
                for n in range(N):
                    s += wt[q, n] * gx[t, b, n]
                gzr[q] = s
        gv0[b] = gv
        gi0[b] = gi
        gth0[:, b] = gth
        gz0[b] = gzr
        if want_par:
            for q in range(n_par):
                for n in range(N):
                    dpar[q, b, n] = acc[q, n]


@njit(parallel=True, cache=True, error_model="numpy")
def family_forward(fam, x, s, c, N, y):
    """Forward pass of a layer of the family tagged ``fam`` (see :func:`._core.family_run_forward`)."""
    for j in prange(x.shape[1]):
        family_run_forward(fam, j, N, x, s, c, y)


@njit(parallel=True, cache=True, error_model="numpy")
def family_backward(fam, x, s, c, N, gy, gs, gx, dc, traj):
    """Reverse pass of a layer of the family tagged ``fam`` (see :func:`._core.family_run_backward`)."""
    for j in prange(x.shape[1]):
        family_run_backward(fam, j, N, x, s, c, gy, gs, gx, dc, traj)
