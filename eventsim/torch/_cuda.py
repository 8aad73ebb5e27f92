"""CUDA kernels of the torch bridge (Numba CUDA).

The same scalar steps as the CPU kernels (the family's declared step,
bound through its tag: :func:`eventsim.models.family.torch_point_forward`,
:func:`~eventsim.models.family.torch_point_backward`) compiled as device
functions; torch tensors
are passed zero-copy through ``numba.cuda.as_cuda_array`` and every launch
goes to torch's current CUDA stream.

Feed-forward layers run one thread per (batch, neuron).  The backward
kernel recomputes each element's forward trajectory into scratch arrays in
global memory (the CPU kernels keep it in thread-local buffers) and then
runs the reverse-time recurrence.  Recurrent layers (``LIFRecurrent``) run
one block per batch row: its threads share the neurons of the row and meet
at a barrier after every step, since step ``t`` reads the spikes of every
neuron at ``t - 1`` (``W_rec z[t-1]``, coalesced through ``W_rec.T``; the
reverse pass reads ``W_rec`` itself for ``W_rec.T g``).  The ``K`` threshold
components of adaptive layers live in global memory (``thT[K, B, N]``
forward, ``gth0`` backward), each owned by one thread.

Loaded lazily: importing :mod:`eventsim.torch` never initialises CUDA.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import cuda

from .. import config
from numba import config as _nbconfig

from ._core import (N_FIXED, family_run_backward, family_run_forward, spike_of, torch_point_backward,
                    torch_point_forward)

if _nbconfig.ENABLE_CUDASIM:  # the simulator runs kernels as Python: call the plain-Python steps
    family_run_forward = family_run_forward.py_func
    family_run_backward = family_run_backward.py_func


def _cuda_np_trunc():
    """Give numba-cuda a loop for ``np.trunc`` (libdevice ``trunc`` / ``truncf``), used by ``spike_of``.

    numba-cuda types ``np.trunc`` on scalars but has no entry for it in its ufunc table,
    so the real compiler refused the kernels (``KeyError: <ufunc 'trunc'>``; the simulator
    never compiles).  The loop added here is the one numba-cuda uses for ``math.trunc``;
    it returns the argument's float type, as ``np.trunc`` does on the CPU.
    """
    try:
        import math

        from numba.cuda import ufuncs
        from numba.cuda.mathimpl import get_unary_impl_for_fn_and_ty
    except ImportError:  # another numba-cuda layout: tests/test_cuda_ptx.py says whether it compiles
        return
    db = ufuncs.ufunc_db()
    if np.trunc not in db:
        def trunc(context, builder, sig, args):
            return get_unary_impl_for_fn_and_ty(math.trunc, sig.args[0])(context, builder, sig, args)

        db[np.trunc] = {"f->f": trunc, "d->d": trunc}


if not _nbconfig.ENABLE_CUDASIM:
    _cuda_np_trunc()


@functools.lru_cache(maxsize=None)
def kernels():
    """Return the CUDA kernels as a dict (compiled at their first launch)."""
    return dict(ff_forward=ff_forward_k, ff_backward=ff_backward_k, rec_forward=rec_forward_k,
                rec_backward=rec_backward_k, family_forward=family_forward_k, family_backward=family_backward_k)


@cuda.jit
def family_forward_k(fam, x, s, c, N, y):
    """Forward pass of a family layer: one thread per element (see :func:`._core.family_run_forward`)."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for j in range(start, x.shape[1], stride):
        family_run_forward(fam, j, N, x, s, c, y)


@cuda.jit
def family_backward_k(fam, x, s, c, N, gy, gs, gx, dc, traj):
    """Reverse pass of a family layer: one thread per element (see :func:`._core.family_run_backward`)."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for j in range(start, x.shape[1], stride):
        family_run_backward(fam, j, N, x, s, c, gy, gs, gx, dc, traj)


@cuda.jit
def ff_forward_k(fam, x, v0, i0, r0, th0, nat, cfg, spikes, vtrace, vT, iT, rT, thT, zero, one, ninf):
    T = x.shape[0]
    B = x.shape[1]
    N = x.shape[2]
    K = th0.shape[0]
    mode, syn, reset, rule, adapt, ref = cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[7]
    record = vtrace.shape[0] > 0
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for e in range(start, B * N, stride):
        b = e // N
        n = e - b * N
        v = v0[b, n]
        cur = i0[b, n]
        r = r0[b, n]
        if adapt:
            for k in range(K):
                thT[k, b, n] = th0[k, b, n]
        for t in range(T):
            thr_a = zero
            if adapt:
                thr_a = nat[5, n]
                for k in range(K):
                    q = nat[N_FIXED + k, n] * thT[k, b, n]
                    thT[k, b, n] = q
                    thr_a += q
            vp, vpo, ci, rr, z, thr, refr = torch_point_forward(
                fam, mode, syn, reset, rule, adapt, ref, v, cur, r, thr_a, x[t, b, n], nat, n, zero, one, ninf)
            v = vpo
            cur = ci
            r = rr
            if adapt and z > zero:
                for k in range(K):
                    thT[k, b, n] = thT[k, b, n] + nat[N_FIXED + K + k, n] * z
            spikes[t, b, n] = z
            if record:
                vtrace[t, b, n] = v
        vT[b, n] = v
        iT[b, n] = cur
        rT[b, n] = r
        if not adapt:
            for k in range(K):
                thT[k, b, n] = th0[k, b, n]


@cuda.jit
def ff_backward_k(fam, x, v0, i0, r0, th0, nat, aff, cfg, alpha, gout, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0,
                  dpar, s_vp, s_vpo, s_thr, s_rf, s_i, s_th, zero, one, ninf):
    T = x.shape[0]
    B = x.shape[1]
    N = x.shape[2]
    K = th0.shape[0]
    mode, syn, reset, rule, adapt, detach, code, ref = (cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[5],
                                                         cfg[6], cfg[7])
    track = cfg[8] != 0
    want_par = dpar.shape[1] > 0
    keep_th = s_th.shape[0] > 0
    has_gvtr = gvtr.shape[0] > 0
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for e in range(start, B * N, stride):
        b = e // N
        n = e - b * N
        v = v0[b, n]
        cur = i0[b, n]
        r = r0[b, n]
        # the components' forward trajectory runs in gth0 (free until the reverse pass), kept in s_th
        for k in range(K):
            gth0[k, b, n] = th0[k, b, n]
        for t in range(T):
            thr_a = zero
            if adapt:
                thr_a = nat[5, n]
                for k in range(K):
                    q = nat[N_FIXED + k, n] * gth0[k, b, n]
                    gth0[k, b, n] = q
                    thr_a += q
            vp, vpo, ci, rr, z, thr, refr = torch_point_forward(
                fam, mode, syn, reset, rule, adapt, ref, v, cur, r, thr_a, x[t, b, n], nat, n, zero, one, ninf)
            v = vpo
            cur = ci
            r = rr
            s_vp[t, b, n] = vp
            s_vpo[t, b, n] = vpo
            if adapt:
                if z > zero:
                    for k in range(K):
                        gth0[k, b, n] = gth0[k, b, n] + nat[N_FIXED + K + k, n] * z
                s_thr[t, b, n] = thr
                if keep_th:
                    for k in range(K):
                        s_th[t, k, b, n] = gth0[k, b, n]
            if track:
                s_rf[t, b, n] = 1 if refr else 0
            if syn and want_par:
                s_i[t, b, n] = ci
        gv = gvT[b, n]
        gi = giT[b, n]
        for k in range(K):
            gth0[k, b, n] = gthT[k, b, n]
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
        for tt in range(T):
            t = T - 1 - tt
            vpprev = v0[b, n]
            vprev = v0[b, n]
            iprev = i0[b, n]
            if t > 0:
                vpprev = s_vp[t - 1, b, n]
                vprev = s_vpo[t - 1, b, n]
                iprev = s_i[t - 1, b, n] if (syn and want_par) else zero
            thr = s_thr[t, b, n] if adapt else nat[5, n]
            refr = s_rf[t, b, n] != 0 if track else False
            vp = s_vp[t, b, n]
            z = spike_of(rule, vp, thr, zero, one)
            g = gv
            if has_gvtr:
                g = g + gvtr[t, b, n]
            gza = zero
            if adapt:
                for k in range(K):
                    gza += nat[N_FIXED + K + k, n] * gth0[k, b, n]
            gv, gi, gxn, d0, d1, d2, d3, d4, d5, d6, d7, gthr = torch_point_backward(
                fam, mode, syn, reset, rule, adapt, detach, code, alpha,
                vp, z, thr, refr, vpprev, vprev, x[t, b, n], iprev, gout[t, b, n], g, gi, gza, aff, nat, n)
            gx[t, b, n] = gxn
            a0 += d0
            a1 += d1
            a2 += d2
            a3 += d3
            a4 += d4
            a5 += d5
            a6 += d6
            a7 += d7
            if adapt:
                for k in range(K):
                    gk = gth0[k, b, n]
                    gq = gk + gthr
                    if want_par:
                        thp = s_th[t - 1, k, b, n] if t > 0 else th0[k, b, n]
                        dpar[N_FIXED + k, b, n] += gq * thp
                        dpar[N_FIXED + K + k, b, n] += gk * z
                    gth0[k, b, n] = nat[N_FIXED + k, n] * gq
        gv0[b, n] = gv
        gi0[b, n] = gi
        if want_par:
            dpar[0, b, n] = a0
            dpar[1, b, n] = a1
            dpar[2, b, n] = a2
            dpar[3, b, n] = a3
            dpar[4, b, n] = a4
            dpar[5, b, n] = a5
            dpar[6, b, n] = a6
            dpar[7, b, n] = a7


@cuda.jit
def rec_forward_k(fam, x, wt, z0, v0, i0, r0, th0, nat, cfg, spikes, vtrace, vT, iT, rT, thT,
                  s_vp, s_vpo, s_i, s_thr, s_rf, s_xt, s_th, zero, one, ninf):
    """Block ``b`` runs batch row ``b``; thread ``j`` its neurons ``j, j + blockDim, ...``.

    The carried state lives in ``vT, iT, rT, thT`` (written through every step).
    """
    T = x.shape[0]
    N = x.shape[2]
    K = th0.shape[0]
    mode, syn, reset, rule, adapt, ref = cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[7]
    track = cfg[8] != 0
    record = vtrace.shape[0] > 0
    save = s_vp.shape[0] > 0
    save_i = s_i.shape[0] > 0
    save_x = s_xt.shape[0] > 0
    save_th = s_th.shape[0] > 0
    b = cuda.blockIdx.x
    j0 = cuda.threadIdx.x
    nt = cuda.blockDim.x
    for n in range(j0, N, nt):
        vT[b, n] = v0[b, n]
        iT[b, n] = i0[b, n]
        rT[b, n] = r0[b, n]
        for k in range(K):
            thT[k, b, n] = th0[k, b, n]
    for t in range(T):
        for n in range(j0, N, nt):
            xt = x[t, b, n]
            for q in range(N):
                zq = z0[b, q] if t == 0 else spikes[t - 1, b, q]
                if zq != zero:
                    xt += zq * wt[q, n]
            thr_a = zero
            if adapt:
                thr_a = nat[5, n]
                for k in range(K):
                    p = nat[N_FIXED + k, n] * thT[k, b, n]
                    thT[k, b, n] = p
                    thr_a += p
            vp, vpo, ci, rr, z, thr, refr = torch_point_forward(
                fam, mode, syn, reset, rule, adapt, ref, vT[b, n], iT[b, n], rT[b, n], thr_a, xt, nat, n, zero, one,
                ninf)
            vT[b, n] = vpo
            iT[b, n] = ci
            rT[b, n] = rr
            if adapt and z > zero:
                for k in range(K):
                    thT[k, b, n] = thT[k, b, n] + nat[N_FIXED + K + k, n] * z
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
                    for k in range(K):
                        s_th[t, k, b, n] = thT[k, b, n]
        cuda.syncthreads()  # the spikes of step t are read by every thread at t + 1


@cuda.jit
def rec_backward_k(fam, xt, w, v0, i0, th0, nat, aff, cfg, alpha, s_vp, s_vpo, s_i, s_thr, s_rf, s_th, spikes,
                   gout, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0, gz0, dpar, zero):
    """Block ``b`` runs batch row ``b`` backwards in time.

    The running gradients live in ``gv0, gi0, gth0`` and the one reaching
    ``z[t-1]`` through the recurrent weights in ``gz0``; ``dpar`` must be zeros.
    """
    T = spikes.shape[0]
    N = spikes.shape[2]
    K = th0.shape[0]
    mode, syn, reset, rule, adapt, detach, code, ref = (cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[5],
                                                         cfg[6], cfg[7])
    track = cfg[8] != 0
    want_par = dpar.shape[1] > 0
    has_gvtr = gvtr.shape[0] > 0
    b = cuda.blockIdx.x
    j0 = cuda.threadIdx.x
    nt = cuda.blockDim.x
    for n in range(j0, N, nt):
        gv0[b, n] = gvT[b, n]
        gi0[b, n] = giT[b, n]
        gz0[b, n] = zero
        for k in range(K):
            gth0[k, b, n] = gthT[k, b, n]
    cuda.syncthreads()
    for tt in range(T):
        t = T - 1 - tt
        for n in range(j0, N, nt):
            if t > 0:
                vpprev = s_vp[t - 1, b, n]
                vprev = s_vpo[t - 1, b, n]
                iprev = s_i[t - 1, b, n] if (syn and want_par) else zero
            else:
                vpprev = v0[b, n]
                vprev = v0[b, n]
                iprev = i0[b, n]
            thr = s_thr[t, b, n] if adapt else nat[5, n]
            refr = s_rf[t, b, n] != 0 if track else False
            xv = xt[t, b, n] if want_par else zero
            z = spikes[t, b, n]
            g = gv0[b, n]
            if has_gvtr:
                g = g + gvtr[t, b, n]
            gza = zero
            if adapt:
                for k in range(K):
                    gza += nat[N_FIXED + K + k, n] * gth0[k, b, n]
            gvp, gip, gxn, d0, d1, d2, d3, d4, d5, d6, d7, gthr = torch_point_backward(
                fam, mode, syn, reset, rule, adapt, detach, code, alpha,
                s_vp[t, b, n], z, thr, refr, vpprev, vprev, xv, iprev, gout[t, b, n] + gz0[b, n], g, gi0[b, n], gza,
                aff, nat, n)
            gv0[b, n] = gvp
            if syn:
                gi0[b, n] = gip
            gx[t, b, n] = gxn
            if want_par:
                dpar[0, b, n] += d0
                dpar[1, b, n] += d1
                dpar[2, b, n] += d2
                dpar[3, b, n] += d3
                dpar[4, b, n] += d4
                dpar[5, b, n] += d5
                dpar[6, b, n] += d6
                dpar[7, b, n] += d7
            if adapt:
                for k in range(K):
                    gk = gth0[k, b, n]
                    gq = gk + gthr
                    if want_par:
                        thp = s_th[t - 1, k, b, n] if t > 0 else th0[k, b, n]
                        dpar[N_FIXED + k, b, n] += gq * thp
                        dpar[N_FIXED + K + k, b, n] += gk * z
                    gth0[k, b, n] = nat[N_FIXED + k, n] * gq
        cuda.syncthreads()  # every gx[t] is written before W_rec.T gx[t] is formed
        for q in range(j0, N, nt):
            s = zero
            for n in range(N):
                s += w[n, q] * gx[t, b, n]
            gz0[b, q] = s
        cuda.syncthreads()  # gz0 is complete before step t - 1 reads it


def _grid(n):
    tpb = config.CUDA_THREADS_PER_BLOCK
    return max(1, min((n + tpb - 1) // tpb, 65535)), tpb


def _row_threads(n):
    """Threads of the block that runs one batch row of a recurrent layer (a multiple of 32, at most the config)."""
    tpb = int(config.CUDA_THREADS_PER_BLOCK)
    return max(32, min(tpb, (n + 31) // 32 * 32))


def _consts(dtype):
    t = np.float32 if dtype == np.float32 else np.float64
    return t(0.0), t(1.0), t(-np.inf)


def _dev(tensors):
    """numba CUDA views of torch tensors (zero copy) and torch's current stream."""
    import torch

    stream = cuda.external_stream(torch.cuda.current_stream().cuda_stream)
    return [cuda.as_cuda_array(t.detach()) if isinstance(t, torch.Tensor) else t for t in tensors], stream


def _np_dtype(t):
    import torch

    return np.float32 if t.dtype == torch.float32 else np.float64


def ff_forward(fam, x, v0, i0, r0, th0, nat, cfg, spikes, vtr, vT, iT, rT, thT):
    """Launch the forward kernel on torch CUDA tensors."""
    T, B, N = x.shape
    args, stream = _dev([x, v0, i0, r0, th0, nat])
    cfg_d = cuda.to_device(np.asarray(cfg), stream=stream)
    outs, _ = _dev([spikes, vtr, vT, iT, rT, thT])
    blocks, tpb = _grid(B * N)
    kernels()["ff_forward"][blocks, tpb, stream](fam, *args, cfg_d, *outs, *_consts(_np_dtype(x)))


def ff_backward(fam, x, v0, i0, r0, th0, nat, aff, cfg, alpha, gs, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0, dpar):
    """Launch the backward kernel on torch CUDA tensors (scratch arrays are allocated by torch)."""
    import torch

    T, B, N = x.shape
    K = th0.shape[0]
    syn, adapt, track = bool(cfg[1]), bool(cfg[4]), bool(cfg[8])
    want_par = dpar.shape[1] > 0
    full = (T, B, N)
    e3 = (0, 0, 0)
    s_vp = torch.empty(full, dtype=x.dtype, device=x.device)
    s_vpo = torch.empty(full, dtype=x.dtype, device=x.device)
    s_thr = torch.empty(full if adapt else e3, dtype=x.dtype, device=x.device)
    s_rf = torch.empty(full if track else e3, dtype=torch.int8, device=x.device)
    s_i = torch.empty(full if (syn and want_par) else e3, dtype=x.dtype, device=x.device)
    s_th = torch.empty((T, K, B, N) if (adapt and want_par) else (0, 0, 0, 0), dtype=x.dtype, device=x.device)
    args, stream = _dev([x, v0, i0, r0, th0, nat, aff.detach().contiguous()])
    cfg_d = cuda.to_device(np.asarray(cfg), stream=stream)
    rest, _ = _dev([gs, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0, dpar, s_vp, s_vpo, s_thr, s_rf, s_i, s_th])
    blocks, tpb = _grid(B * N)
    kernels()["ff_backward"][blocks, tpb, stream](fam, *args, cfg_d, float(alpha), *rest, *_consts(_np_dtype(x)))


def rec_forward(fam, x, wt, z0, v0, i0, r0, th0, nat, cfg, spikes, vtr, vT, iT, rT, thT, s_vp, s_vpo, s_i, s_thr,
                s_rf, s_xt, s_th):
    """Launch the recurrent forward kernel on torch CUDA tensors (``wt = W_rec.T``, contiguous)."""
    T, B, N = x.shape
    args, stream = _dev([x, wt, z0, v0, i0, r0, th0, nat])
    cfg_d = cuda.to_device(np.asarray(cfg), stream=stream)
    outs, _ = _dev([spikes, vtr, vT, iT, rT, thT, s_vp, s_vpo, s_i, s_thr, s_rf, s_xt, s_th])
    if B:
        kernels()["rec_forward"][B, _row_threads(N), stream](fam, *args, cfg_d, *outs, *_consts(_np_dtype(x)))


def rec_backward(fam, xt, w, v0, i0, th0, nat, aff, cfg, alpha, s_vp, s_vpo, s_i, s_thr, s_rf, s_th, spikes, gs, gvtr,
                 gvT, giT, gthT, gx, gv0, gi0, gth0, gz0, dpar):
    """Launch the recurrent backward kernel on torch CUDA tensors (``w = W_rec``, contiguous; ``dpar`` zeros)."""
    T, B, N = spikes.shape
    args, stream = _dev([xt, w, v0, i0, th0, nat, aff])
    cfg_d = cuda.to_device(np.asarray(cfg), stream=stream)
    rest, _ = _dev([s_vp, s_vpo, s_i, s_thr, s_rf, s_th, spikes, gs, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0, gz0,
                    dpar])
    if B:
        kernels()["rec_backward"][B, _row_threads(N), stream](fam, *args, cfg_d, float(alpha), *rest,
                                                              _consts(_np_dtype(spikes))[0])


def family_forward(fam, x, s, c, N, y):
    """Launch the forward kernel of a family layer on torch CUDA tensors (``x, y [T, M]``, ``s [S, M]``)."""
    args, stream = _dev([x, s, c, y])
    blocks, tpb = _grid(x.shape[1])
    if x.shape[1]:
        kernels()["family_forward"][blocks, tpb, stream](fam, args[0], args[1], args[2], N, args[3])


def family_backward(fam, x, s, c, N, gy, gs, gx, dc, traj):
    """Launch the reverse kernel of a family layer on torch CUDA tensors (``traj [T, S, M]`` scratch)."""
    args, stream = _dev([x, s, c, gy, gs, gx, dc, traj])
    blocks, tpb = _grid(x.shape[1])
    if x.shape[1]:
        kernels()["family_backward"][blocks, tpb, stream](fam, args[0], args[1], args[2], N, *args[3:])
