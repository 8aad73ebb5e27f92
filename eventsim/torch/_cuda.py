"""CUDA kernels of the torch bridge (Numba CUDA), one thread per (batch, neuron).

The same scalar steps as the CPU kernels (:func:`._core.forward_step`,
:func:`._core.backward_step`) compiled as device functions; torch tensors
are passed zero-copy through ``numba.cuda.as_cuda_array`` and every launch
goes to torch's current CUDA stream.  The backward kernel recomputes each
element's forward trajectory into scratch arrays in global memory (the
CPU kernels keep it in thread-local buffers) and then runs the reverse-time
recurrence.  Loaded lazily: importing :mod:`eventsim.torch` never
initialises CUDA.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import cuda

from .. import config
from numba import config as _nbconfig

from ._core import SNNTORCH, backward_step, forward_step, spike_of

if _nbconfig.ENABLE_CUDASIM:  # the simulator runs kernels as Python: call the plain-Python steps
    forward_step = forward_step.py_func
    backward_step = backward_step.py_func


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
    return dict(ff_forward=ff_forward_k, ff_backward=ff_backward_k)


@cuda.jit
def ff_forward_k(x, v0, i0, r0, th0, nat, cfg, spikes, vtrace, vT, iT, rT, thT, zero, one, ninf):
    T = x.shape[0]
    B = x.shape[1]
    N = x.shape[2]
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
        th = th0[b, n]
        for t in range(T):
            vp, vpo, ci, rr, tt, z, thr, refr = forward_step(
                mode, syn, reset, rule, adapt, ref, v, cur, r, th, x[t, b, n], nat, n, zero, one, ninf)
            v = vpo
            cur = ci
            r = rr
            th = tt
            spikes[t, b, n] = z
            if record:
                vtrace[t, b, n] = v
        vT[b, n] = v
        iT[b, n] = cur
        rT[b, n] = r
        thT[b, n] = th

@cuda.jit
def ff_backward_k(x, v0, i0, r0, th0, nat, aff, cfg, alpha, gout, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0,
                  dpar, s_vp, s_vpo, s_thr, s_rf, s_i, zero, one, ninf):
    T = x.shape[0]
    B = x.shape[1]
    N = x.shape[2]
    mode, syn, reset, rule, adapt, detach, code, ref = (cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[5],
                                                         cfg[6], cfg[7])
    track = cfg[8] != 0
    want_par = dpar.shape[1] > 0
    has_gvtr = gvtr.shape[0] > 0
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for e in range(start, B * N, stride):
        b = e // N
        n = e - b * N
        v = v0[b, n]
        cur = i0[b, n]
        r = r0[b, n]
        th = th0[b, n]
        for t in range(T):
            vp, vpo, ci, rr, tt, z, thr, refr = forward_step(
                mode, syn, reset, rule, adapt, ref, v, cur, r, th, x[t, b, n], nat, n, zero, one, ninf)
            v = vpo
            cur = ci
            r = rr
            th = tt
            s_vp[t, b, n] = vp
            s_vpo[t, b, n] = vpo
            if adapt:
                s_thr[t, b, n] = thr
            if track:
                s_rf[t, b, n] = 1 if refr else 0
            if syn and want_par:
                s_i[t, b, n] = ci
        gv = gvT[b, n]
        gi = giT[b, n]
        gth = gthT[b, n]
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = zero
        for tt in range(T):
            t = T - 1 - tt
            vprev = v0[b, n]
            iprev = i0[b, n]
            if t > 0:
                vprev = s_vp[t - 1, b, n] if mode == SNNTORCH else s_vpo[t - 1, b, n]
                iprev = s_i[t - 1, b, n] if (syn and want_par) else zero
            thr = s_thr[t, b, n] if adapt else nat[5, n]
            refr = s_rf[t, b, n] != 0 if track else False
            vp = s_vp[t, b, n]
            g = gv
            if has_gvtr:
                g = g + gvtr[t, b, n]
            gv, gi, gth, gxn, d0, d1, d2, d3, d4, d5, d6 = backward_step(
                mode, syn, reset, rule, adapt, detach, code, alpha,
                vp, spike_of(rule, vp, thr, zero, one), thr, refr, vprev, x[t, b, n], iprev,
                gout[t, b, n], g, gi, gth, aff, nat, n)
            gx[t, b, n] = gxn
            a0 += d0
            a1 += d1
            a2 += d2
            a3 += d3
            a4 += d4
            a5 += d5
            a6 += d6
        gv0[b, n] = gv
        gi0[b, n] = gi
        gth0[b, n] = gth
        if want_par:
            dpar[0, b, n] = a0
            dpar[1, b, n] = a1
            dpar[2, b, n] = a2
            dpar[3, b, n] = a3
            dpar[4, b, n] = a4
            dpar[5, b, n] = a5
            dpar[6, b, n] = a6


def _grid(n):
    tpb = config.CUDA_THREADS_PER_BLOCK
    return max(1, min((n + tpb - 1) // tpb, 65535)), tpb


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


def ff_forward(x, v0, i0, r0, th0, nat, cfg, spikes, vtr, vT, iT, rT, thT):
    """Launch the forward kernel on torch CUDA tensors."""
    T, B, N = x.shape
    args, stream = _dev([x, v0, i0, r0, th0, nat])
    cfg_d = cuda.to_device(np.asarray(cfg), stream=stream)
    outs, _ = _dev([spikes, vtr, vT, iT, rT, thT])
    blocks, tpb = _grid(B * N)
    kernels()["ff_forward"][blocks, tpb, stream](*args, cfg_d, *outs, *_consts(_np_dtype(x)))


def ff_backward(x, v0, i0, r0, th0, nat, aff, cfg, alpha, gs, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0, dpar):
    """Launch the backward kernel on torch CUDA tensors (scratch arrays are allocated by torch)."""
    import torch

    T, B, N = x.shape
    syn, adapt, track = bool(cfg[1]), bool(cfg[4]), bool(cfg[8])
    want_par = dpar.shape[1] > 0
    full = (T, B, N)
    e3 = (0, 0, 0)
    s_vp = torch.empty(full, dtype=x.dtype, device=x.device)
    s_vpo = torch.empty(full, dtype=x.dtype, device=x.device)
    s_thr = torch.empty(full if adapt else e3, dtype=x.dtype, device=x.device)
    s_rf = torch.empty(full if track else e3, dtype=torch.int8, device=x.device)
    s_i = torch.empty(full if (syn and want_par) else e3, dtype=x.dtype, device=x.device)
    args, stream = _dev([x, v0, i0, r0, th0, nat, aff.detach().contiguous()])
    cfg_d = cuda.to_device(np.asarray(cfg), stream=stream)
    rest, _ = _dev([gs, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0, dpar, s_vp, s_vpo, s_thr, s_rf, s_i])
    blocks, tpb = _grid(B * N)
    kernels()["ff_backward"][blocks, tpb, stream](*args, cfg_d, float(alpha), *rest, *_consts(_np_dtype(x)))


def rec_forward(*args):  # pragma: no cover - needs a GPU
    raise NotImplementedError("LIFRecurrent runs on CPU tensors only in this version; move the layer to CPU")


def rec_backward(*args):  # pragma: no cover - needs a GPU
    raise NotImplementedError("LIFRecurrent runs on CPU tensors only in this version")
