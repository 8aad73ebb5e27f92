"""Slow, obviously-correct pure-torch references of the fused layers (tests only).

Each step is written in plain torch ops on the affine coefficients ``aff``
(see :mod:`eventsim.torch._core`), so torch's own autograd gives the
reference gradients, with the same surrogate and the same kept terms as
the fused kernels.
"""

import math

import torch

from eventsim.models import lif_torch as _lif_torch
from eventsim.torch import _core
from eventsim.torch.surrogate import ATAN, SIGMOID, SINGLE_EXPONENTIAL, STRAIGHT_THROUGH, SUPERSPIKE, TRIANGLE


def surrogate_torch(code, alpha, u):
    if code == SUPERSPIKE:
        return 1.0 / (alpha * u.abs() + 1.0) ** 2
    if code == SIGMOID:
        s = torch.sigmoid(alpha * u)
        return alpha * s * (1 - s)
    if code == SINGLE_EXPONENTIAL:
        return alpha * torch.exp(-alpha * u.abs())
    if code == TRIANGLE:
        return alpha * torch.relu(1 - u.abs())
    if code == ATAN:
        return 0.5 * alpha / (1 + (0.5 * math.pi * alpha * u) ** 2)
    assert code == STRAIGHT_THROUGH
    return torch.ones_like(u)


class Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, thr, rule, code, alpha):
        ctx.save_for_backward(v, thr)
        ctx.code, ctx.alpha = code, alpha
        if rule == _core.GE:
            return (v >= thr).to(v.dtype)
        if rule == _core.GT:
            return (v > thr).to(v.dtype)
        return torch.where(v > 0, torch.trunc(v / thr), torch.zeros_like(v))

    @staticmethod
    def backward(ctx, g):
        v, thr = ctx.saved_tensors
        sg = surrogate_torch(ctx.code, ctx.alpha, v - thr)
        return g * sg, -g * sg, None, None, None


def reference_layer(x, v0, i0, th0, aff, r0, nat, spec, w_rec=None, z0=None):
    """Return (spikes [T,B,N], v_trace [T,B,N], vT, iT, thT) with torch autograd.

    ``th0`` is ``[K, B, N]`` (``K`` threshold components); ``aff`` carries every
    differentiable coefficient (rows of :mod:`eventsim.torch._core`), so the
    gradients on ``v_reset``, ``p_theta[k]`` and ``d_theta[k]`` are autograd's too.
    """
    T = x.shape[0]
    K = _core.n_components(aff.shape[0])
    a_vv, a_vi, a_vx, b_v, a_ii, a_ix, v_th, v_reset = aff[:8]
    p_th, d_th = aff[8:8 + K], aff[8 + K:8 + 2 * K]
    subref = nat[7]
    v, i, th, r = v0, i0, list(th0.unbind(0)), r0.clone()
    z_prev = z0
    spikes, trace = [], []
    mode = spec.integrator
    for t in range(T):
        xt = x[t]
        if w_rec is not None:
            xt = xt + z_prev @ w_rec.t()
        refr = r > 0
        if mode == _lif_torch.TORCH_SNNTORCH:
            zp = (v > v_th).to(v.dtype).detach()
            if spec.reset == _core.RESET_SUBTRACT:
                cand = a_vv * v + a_vi * i + a_vx * xt + b_v - v_th * zp
            else:
                cand = a_vv * ((1 - zp) * v) + a_vi * i + a_vx * xt + b_v
        else:
            cand = a_vv * v + a_vi * i + a_vx * xt + b_v
        vp = torch.where(refr, v, cand)
        if spec.synapse:
            i = a_ii * i + a_ix * xt
        r = torch.where(refr, r - 1, r)
        thr = v_th
        if spec.adaptive:
            th = [p_th[k] * th[k] for k in range(K)]
            for k in range(K):  # the simulator's order: ((v_th + theta_0) + theta_1) + ...
                thr = thr + th[k]
        z = Spike.apply(vp, thr, spec.rule, spec.surrogate, spec.alpha)
        zr = z.detach() if spec.detach_reset else z
        if mode == _lif_torch.TORCH_SNNTORCH:
            vpost = vp
        elif spec.reset == _core.RESET_VALUE:
            vpost = (1 - zr) * vp + zr * v_reset
        elif spec.rule == _core.MULTI:
            vpost = vp - zr * thr
        else:
            vpost = vp - zr * (thr - subref)
        if spec.ref_steps > 0:
            r = torch.where(z.detach() > 0, torch.full_like(r, spec.ref_steps), r)
        if spec.adaptive:
            th = [th[k] + d_th[k] * z for k in range(K)]
        v = vpost
        z_prev = z
        spikes.append(z)
        trace.append(v)
    return torch.stack(spikes), torch.stack(trace), v, i, torch.stack(th)
