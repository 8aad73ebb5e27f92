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

All steps go through :func:`._core.forward_step` / :func:`._core.backward_step`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from numba import types
from numba.extending import overload

from ._core import SNNTORCH, backward_step, forward_step, spike_of


def const(x):
    """``x``, as a compile-time constant when the kernel was compiled with ``x`` as a literal."""
    return x


@overload(const, inline="always", prefer_literal=True)
def _const(x):
    if isinstance(x, types.IntegerLiteral):
        value = x.literal_value
        return lambda x: value
    return lambda x: x


@njit(inline="always", cache=True)
def _rows(a):
    """The 10 coefficient rows as a tuple of contiguous 1-D arrays (unit-stride loads in the inner loops)."""
    return (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9])


@njit(inline="always", cache=True)
def _rows7(a):
    return (a[0], a[1], a[2], a[3], a[4], a[5], a[6])


@njit(inline="always", cache=True)
def _block(r, a, b):
    """Each row of the tuple ``r`` sliced to ``[a, b)``: indices from 0 let the inner loops vectorise."""
    return (r[0][a:b], r[1][a:b], r[2][a:b], r[3][a:b], r[4][a:b], r[5][a:b], r[6][a:b], r[7][a:b],
            r[8][a:b], r[9][a:b])


@njit(inline="always", cache=True)
def _block7(r, a, b):
    return (r[0][a:b], r[1][a:b], r[2][a:b], r[3][a:b], r[4][a:b], r[5][a:b], r[6][a:b])


@njit(inline="always", cache=True)
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


@njit(parallel=True, cache=True)
def ff_forward(x, v0, i0, r0, th0, nat, mode, syn, reset, rule, adapt, track, ref, blk,
               spikes, vtrace, vT, iT, rT, thT):
    """All T steps of a feed-forward layer; writes ``spikes``, ``vtrace`` (if sized) and the final state.

    The flags (``mode`` ... ``track``) may be compiled as literals, which
    removes every branch on them from the inner loop.
    """
    T, B, N = x.shape
    mode, syn, reset, rule, adapt, track = const(mode), const(syn), const(reset), const(rule), const(adapt), const(track)
    record = vtrace.shape[0] > 0
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    ninf = x.dtype.type(-np.inf)
    nbr = (N + blk - 1) // blk
    nat = _rows(nat)
    for k in prange(B * nbr):
        b = k // nbr
        j0 = (k - b * nbr) * blk
        jn = min(blk, N - j0)
        v = v0[b, j0:j0 + jn].copy()
        cur = i0[b, j0:j0 + jn].copy()
        r = r0[b, j0:j0 + jn].copy()
        th = th0[b, j0:j0 + jn].copy()
        nb = _block(nat, j0, j0 + jn)
        for t in range(T):
            xr = x[t, b, j0:j0 + jn]
            sr = spikes[t, b, j0:j0 + jn]
            for jj in range(jn):
                vp, vpo, ci, rr, tt, z, thr, refr = forward_step(
                    mode, syn, reset, rule, adapt, ref, v[jj], cur[jj] if syn else zero,
                    r[jj] if track else 0, th[jj] if adapt else zero, xr[jj], nb, jj, zero, one, ninf)
                v[jj] = vpo
                if syn:
                    cur[jj] = ci
                if track:
                    r[jj] = rr
                if adapt:
                    th[jj] = tt
                sr[jj] = z
            if record:
                vtrace[t, b, j0:j0 + jn] = v
        vT[b, j0:j0 + jn] = v
        iT[b, j0:j0 + jn] = cur
        rT[b, j0:j0 + jn] = r
        thT[b, j0:j0 + jn] = th


@njit(parallel=True, cache=True)
def ff_backward(x, v0, i0, r0, th0, nat, aff, mode, syn, reset, rule, adapt, detach, code, track, want_par,
                has_gvtr, ref, blk, alpha, gout, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0, dpar):
    """Reverse-time recurrence of a feed-forward layer.

    Recomputes the forward trajectory of each block into thread-local
    buffers (only the pre-reset membrane, plus what the flags need), then
    runs :func:`backward_step` backwards in time.  Writes the input
    gradient ``gx``, the initial-state gradients and, if ``dpar`` has shape
    ``[7, B, N]``, per-element sums of the gradients on the affine
    coefficients (rows as ``aff``); ``want_par`` must then be 1.  ``has_gvtr``: whether
    ``gvtr`` holds a gradient on the recorded membrane trace.
    """
    T, B, N = x.shape
    mode, syn, reset, rule, adapt, track = const(mode), const(syn), const(reset), const(rule), const(adapt), const(track)
    detach, code, want_par, has_gvtr = const(detach), const(code), const(want_par), const(has_gvtr)
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    ninf = x.dtype.type(-np.inf)
    dt = x.dtype
    keep_vpo = want_par and mode != SNNTORCH
    nbr = (N + blk - 1) // blk
    nat = _rows(nat)
    aff = _rows7(aff)
    for k in prange(B * nbr):
        b = k // nbr
        j0 = (k - b * nbr) * blk
        jn = min(blk, N - j0)
        vp_b = np.empty((T, jn), dt)
        vpo_b = np.empty((T if keep_vpo else 0, jn), dt)
        thr_b = np.empty((T if adapt else 0, jn), dt)
        rf_b = np.zeros((T if track else 0, jn), np.int8)
        i_b = np.empty((T if (syn and want_par) else 0, jn), dt)
        v = v0[b, j0:j0 + jn].copy()
        cur = i0[b, j0:j0 + jn].copy()
        r = r0[b, j0:j0 + jn].copy()
        th = th0[b, j0:j0 + jn].copy()
        nb = _block(nat, j0, j0 + jn)
        ab = _block7(aff, j0, j0 + jn)
        v0b = v0[b, j0:j0 + jn]
        i0b = i0[b, j0:j0 + jn]
        # ---- recompute the forward trajectory of this block (same code as ff_forward)
        for t in range(T):
            xr = x[t, b, j0:j0 + jn]
            for jj in range(jn):
                vp, vpo, ci, rr, tt, z, thr, refr = forward_step(
                    mode, syn, reset, rule, adapt, ref, v[jj], cur[jj] if syn else zero,
                    r[jj] if track else 0, th[jj] if adapt else zero, xr[jj], nb, jj, zero, one, ninf)
                v[jj] = vpo
                vp_b[t, jj] = vp
                if syn:
                    cur[jj] = ci
                if track:
                    r[jj] = rr
                    rf_b[t, jj] = 1 if refr else 0
                if adapt:
                    th[jj] = tt
                    thr_b[t, jj] = thr
                if keep_vpo:
                    vpo_b[t, jj] = vpo
                if syn and want_par:
                    i_b[t, jj] = ci
        # ---- reverse time
        gbuf = np.empty(jn, dt)
        vbuf = np.empty(jn, dt)
        gv = gvT[b, j0:j0 + jn].copy()
        gi = giT[b, j0:j0 + jn].copy()
        gth = gthT[b, j0:j0 + jn].copy()
        acc = np.zeros((7 if want_par else 0, jn))
        for t in range(T - 1, -1, -1):
            gor = _grad_row(gout, t, b, j0, jn, N, gbuf)
            gxr = gx[t, b, j0:j0 + jn]
            xr = x[t, b, j0:j0 + jn]
            gvr = _grad_row(gvtr, t, b, j0, jn, N, vbuf) if has_gvtr else gbuf
            for jj in range(jn):
                vprev = zero
                iprev = zero
                if want_par or mode == SNNTORCH:
                    if t > 0:
                        if mode == SNNTORCH:
                            vprev = vp_b[t - 1, jj]
                        else:
                            vprev = vpo_b[t - 1, jj]
                        if syn and want_par:
                            iprev = i_b[t - 1, jj]
                    else:
                        vprev = v0b[jj]
                        iprev = i0b[jj]
                thr = thr_b[t, jj] if adapt else nb[5][jj]
                refr = rf_b[t, jj] != 0 if track else False
                vp = vp_b[t, jj]
                g = gv[jj]
                if has_gvtr:
                    g = g + gvr[jj]
                gvp, gip, gtp, gxn, d0, d1, d2, d3, d4, d5, d6 = backward_step(
                    mode, syn, reset, rule, adapt, detach, code, alpha,
                    vp, spike_of(rule, vp, thr, zero, one), thr, refr, vprev,
                    xr[jj] if want_par else zero, iprev, gor[jj], g, gi[jj] if syn else zero,
                    gth[jj] if adapt else zero, ab, nb, jj)
                gv[jj] = gvp
                if syn:
                    gi[jj] = gip
                if adapt:
                    gth[jj] = gtp
                gxr[jj] = gxn
                if want_par:
                    acc[0, jj] += d0
                    acc[1, jj] += d1
                    acc[2, jj] += d2
                    acc[3, jj] += d3
                    acc[4, jj] += d4
                    acc[5, jj] += d5
                    acc[6, jj] += d6
        gv0[b, j0:j0 + jn] = gv
        gi0[b, j0:j0 + jn] = gi
        gth0[b, j0:j0 + jn] = gth
        if want_par:
            for q in range(7):
                for jj in range(jn):
                    dpar[q, b, j0 + jj] = acc[q, jj]


@njit(parallel=True, cache=True)
def rec_forward(x, wt, z0, v0, i0, r0, th0, nat, cfg, spikes, vtrace, vT, iT, rT, thT,
                s_vp, s_vpo, s_i, s_thr, s_rf, s_xt):
    """All T steps of a recurrent layer, input ``x[t] + W_rec z[t-1]`` (``wt = W_rec.T``).

    The ``s_*`` arrays (``[T, B, N]`` or empty) keep what the reverse pass needs.
    """
    T, B, N = x.shape
    mode, syn, reset, rule, adapt, ref = cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[7]
    record = vtrace.shape[0] > 0
    save = s_vp.shape[0] > 0
    save_i = s_i.shape[0] > 0
    save_x = s_xt.shape[0] > 0
    track = cfg[8] != 0
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    ninf = x.dtype.type(-np.inf)
    for b in prange(B):
        v = v0[b].copy()
        cur = i0[b].copy()
        r = r0[b].copy()
        th = th0[b].copy()
        rin = np.zeros(N, x.dtype)
        for q in range(N):
            if z0[b, q] != 0:
                zq = z0[b, q]
                for n in range(N):
                    rin[n] += zq * wt[q, n]
        for t in range(T):
            for n in range(N):
                xt = x[t, b, n] + rin[n]
                vp, vpo, ci, rr, tt, z, thr, refr = forward_step(
                    mode, syn, reset, rule, adapt, ref, v[n], cur[n], r[n], th[n], xt,
                    nat, n, zero, one, ninf)
                v[n] = vpo
                cur[n] = ci
                r[n] = rr
                th[n] = tt
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
            rin[:] = zero
            for q in range(N):
                zq = spikes[t, b, q]
                if zq != 0:
                    for n in range(N):
                        rin[n] += zq * wt[q, n]
        vT[b] = v
        iT[b] = cur
        rT[b] = r
        thT[b] = th


@njit(parallel=True, cache=True)
def rec_backward(xt, wt, v0, i0, th0, nat, aff, cfg, alpha, s_vp, s_vpo, s_i, s_thr, s_rf, spikes,
                 gout, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0, gz0, dpar):
    """Reverse-time recurrence of a recurrent layer; ``gx`` is the gradient on the total input."""
    T, B, N = spikes.shape
    mode, syn, reset, rule, adapt, detach, code, ref = (cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[5],
                                                         cfg[6], cfg[7])
    track = cfg[8] != 0
    want_par = dpar.shape[1] > 0
    has_gvtr = gvtr.shape[0] > 0
    zero = spikes.dtype.type(0.0)
    for b in prange(B):
        gv = gvT[b].copy()
        gi = giT[b].copy()
        gth = gthT[b].copy()
        gzr = np.zeros(N, gx.dtype)
        acc = np.zeros((7, N))
        for t in range(T - 1, -1, -1):
            for n in range(N):
                if t > 0:
                    vprev = s_vpo[t - 1, b, n]
                    iprev = s_i[t - 1, b, n] if (syn and want_par) else zero
                else:
                    vprev = v0[b, n]
                    iprev = i0[b, n]
                thr = s_thr[t, b, n] if adapt else nat[5][n]
                refr = s_rf[t, b, n] != 0 if track else False
                xv = xt[t, b, n] if want_par else zero
                g = gv[n]
                if has_gvtr:
                    g = g + gvtr[t, b, n]
                gvp, gip, gtp, gxn, d0, d1, d2, d3, d4, d5, d6 = backward_step(
                    mode, syn, reset, rule, adapt, detach, code, alpha,
                    s_vp[t, b, n], spikes[t, b, n], thr, refr, vprev, xv, iprev,
                    gout[t, b, n] + gzr[n], g, gi[n], gth[n], aff, nat, n)
                gv[n] = gvp
                if syn:
                    gi[n] = gip
                if adapt:
                    gth[n] = gtp
                gx[t, b, n] = gxn
                if want_par:
                    acc[0, n] += d0
                    acc[1, n] += d1
                    acc[2, n] += d2
                    acc[3, n] += d3
                    acc[4, n] += d4
                    acc[5, n] += d5
                    acc[6, n] += d6
            # gradient reaching z[t-1] through the recurrent weights
            for q in range(N):
                s = zero
                for n in range(N):
                    s += wt[q, n] * gx[t, b, n]
                gzr[q] = s
        gv0[b] = gv
        gi0[b] = gi
        gth0[b] = gth
        gz0[b] = gzr
        if want_par:
            for q in range(7):
                for n in range(N):
                    dpar[q, b, n] = acc[q, n]
