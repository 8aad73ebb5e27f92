"""The fused kernels as ``torch.library`` custom operators (for ``torch.compile``).

``eventsim::ff_forward`` and ``eventsim::ff_backward`` run the same fused
kernels as :class:`eventsim.torch.functional._FeedForward`,
``eventsim::rec_forward`` and ``eventsim::rec_backward`` those of
:class:`~eventsim.torch.functional._Recurrent`; they carry fake
(meta) implementations, so ``torch.compile`` and ``torch.export`` trace
them as single graph nodes, and ``register_autograd`` connects the reverse
kernel.  ``eventsim::native_rows`` computes a layer's forward coefficient
rows with the eager code (NumPy and the peer libraries' own arithmetic), so
compiled layers use the eager layers' coefficients bit for bit.  :func:`eventsim.torch.functional.neuron_layer` and
:func:`~eventsim.torch.functional.recurrent_layer` call them while
``torch.compile`` traces (eager code keeps the autograd Functions, which
also serve ``torch.func``).

The layer's static configuration travels as a list of ints (the fields of
:class:`~eventsim.torch.functional.LayerSpec` without ``alpha``) and a float
(``alpha``).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import _core

AVAILABLE = hasattr(torch, "library") and hasattr(torch.library, "custom_op")


def spec_args(spec):
    """``(ints, alpha)`` of a LayerSpec, as the operators take it."""
    return ([int(spec.integrator), int(spec.synapse), int(spec.reset), int(spec.rule), int(spec.adaptive),
             int(spec.detach_reset), int(spec.surrogate), int(spec.ref_steps)], float(spec.alpha))


def _spec(ints, alpha):
    from .functional import LayerSpec

    m, syn, reset, rule, adapt, detach, code, ref = ints
    return LayerSpec(m, bool(syn), reset, rule, bool(adapt), bool(detach), code, alpha, ref)


if AVAILABLE:
    @torch.library.custom_op("eventsim::ff_forward", mutates_args=())
    def ff_forward(x: Tensor, v0: Tensor, i0: Tensor, th0: Tensor, aff: Tensor, r0: Tensor, nat: Tensor,
                   spec: List[int], alpha: float, record_v: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor,
                                                                          Tensor]:
        """Forward kernel: ``(spikes, vT, iT, thT, rT, vtr)`` (``aff`` is read by the reverse pass only)."""
        from .functional import _ff_forward

        return _ff_forward(x, v0, i0, th0, r0, nat, _spec(spec, alpha), record_v)

    @ff_forward.register_fake
    def _(x, v0, i0, th0, aff, r0, nat, spec, alpha, record_v):
        T, B, N = x.shape
        return (x.new_empty((T, B, N)), x.new_empty((B, N)), x.new_empty((B, N)), x.new_empty(th0.shape),
                x.new_empty((B, N), dtype=torch.int32), x.new_empty((T, B, N) if record_v else (0, 0, 0)))

    @torch.library.custom_op("eventsim::ff_backward", mutates_args=())
    def ff_backward(x: Tensor, v0: Tensor, i0: Tensor, r0: Tensor, th0: Tensor, nat: Tensor, aff: Tensor,
                    spec: List[int], alpha: float, want_par: bool, gs: Optional[Tensor], gvT: Optional[Tensor],
                    giT: Optional[Tensor], gthT: Optional[Tensor], gvtr: Optional[Tensor]
                    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Reverse kernel: ``(gx, gv0, gi0, gth0, dpar)``."""
        from .functional import _FeedForwardReverse

        return _FeedForwardReverse.forward(x, v0, i0, r0, th0, nat, aff, _spec(spec, alpha), want_par, gs, gvT,
                                           giT, gthT, gvtr)

    @ff_backward.register_fake
    def _(x, v0, i0, r0, th0, nat, aff, spec, alpha, want_par, gs, gvT, giT, gthT, gvtr):
        T, B, N = x.shape
        return (x.new_empty((T, B, N)), x.new_empty((B, N)), x.new_empty((B, N)), x.new_empty(th0.shape),
                x.new_empty((aff.shape[0], B, N) if want_par else (0, 0, 0)))

    def _setup(ctx, inputs, output):
        x, v0, i0, th0, aff, r0, nat, spec, alpha, record_v = inputs
        ctx.save_for_backward(x, v0, i0, r0, th0, nat, aff)
        ctx.spec = (list(spec), float(alpha))

    def _backward(ctx, gs, gvT, giT, gthT, grT, gvtr):
        x, v0, i0, r0, th0, nat, aff = ctx.saved_tensors
        want_par = bool(ctx.needs_input_grad[4])
        gx, gv0, gi0, gth0, dpar = ff_backward(x, v0, i0, r0, th0, nat, aff, ctx.spec[0], ctx.spec[1], want_par,
                                               gs, gvT, giT, gthT, gvtr)
        return gx, gv0, gi0, gth0, (dpar.sum(1) if want_par else None), None, None, None, None, None

    ff_forward.register_autograd(_backward, setup_context=_setup)

    # ------------------------------------------------------------------ recurrent layer
    @torch.library.custom_op("eventsim::rec_forward", mutates_args=())
    def rec_forward(x: Tensor, w_rec: Tensor, z0: Tensor, v0: Tensor, i0: Tensor, th0: Tensor, aff: Tensor, r0: Tensor,
                    nat: Tensor, spec: List[int], alpha: float, record_v: bool, need: bool, want_par: bool
                    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
                               Tensor, Tensor, Tensor]:
        """Recurrent forward kernel: ``(spikes, vT, iT, thT, rT, vtr)`` and the seven arrays the reverse pass reads."""
        from .functional import _rec_forward

        return _rec_forward(x, w_rec, z0, v0, i0, th0, r0, nat, _spec(spec, alpha), record_v, need, want_par)

    @rec_forward.register_fake
    def _(x, w_rec, z0, v0, i0, th0, aff, r0, nat, spec, alpha, record_v, need, want_par):
        T, B, N = x.shape
        K = th0.shape[0]
        sp = _spec(spec, alpha)
        full, e3 = (T, B, N), (0, 0, 0)
        return (x.new_empty(full), x.new_empty((B, N)), x.new_empty((B, N)), x.new_empty(th0.shape),
                x.new_empty((B, N), dtype=torch.int32), x.new_empty(full if record_v else e3),
                x.new_empty(full if need else e3), x.new_empty(full if need else e3),
                x.new_empty(full if (need and sp.synapse and want_par) else e3),
                x.new_empty(full if (need and sp.adaptive) else e3),
                x.new_empty(full if need else e3, dtype=torch.int8),
                x.new_empty(full if (need and want_par) else e3),
                x.new_empty((T, K, B, N) if (need and want_par and sp.adaptive) else (0, 0, 0, 0)))

    @torch.library.custom_op("eventsim::rec_backward", mutates_args=())
    def rec_backward(x: Tensor, w_rec: Tensor, v0: Tensor, i0: Tensor, th0: Tensor, r0: Tensor, nat: Tensor,
                     aff: Tensor, spec: List[int], alpha: float, want_par: bool, spikes: Tensor, s_vp: Tensor,
                     s_vpo: Tensor, s_i: Tensor, s_thr: Tensor, s_rf: Tensor, s_xt: Tensor, s_th: Tensor,
                     gs: Optional[Tensor],
                     gvT: Optional[Tensor], giT: Optional[Tensor], gthT: Optional[Tensor], gvtr: Optional[Tensor]
                     ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Recurrent reverse kernel: ``(gx, gv0, gi0, gth0, gz0, dpar)``."""
        from .functional import _RecurrentReverse

        if gvtr is not None and gvtr.numel() == 0:
            gvtr = None
        return _RecurrentReverse.forward(x, w_rec, v0, i0, th0, r0, nat, aff, _spec(spec, alpha), want_par, spikes,
                                         s_vp, s_vpo, s_i, s_thr, s_rf, s_xt, s_th, gs, gvT, giT, gthT, gvtr)

    @rec_backward.register_fake
    def _(x, w_rec, v0, i0, th0, r0, nat, aff, spec, alpha, want_par, spikes, s_vp, s_vpo, s_i, s_thr, s_rf, s_xt,
          s_th, gs, gvT, giT, gthT, gvtr):
        T, B, N = x.shape
        return (x.new_empty((T, B, N)), x.new_empty((B, N)), x.new_empty((B, N)), x.new_empty(th0.shape),
                x.new_empty((B, N)), x.new_empty((aff.shape[0], B, N) if want_par else (0, 0, 0)))

    def _rec_setup(ctx, inputs, output):
        x, w_rec, z0, v0, i0, th0, aff, r0, nat, spec, alpha, record_v, need, want_par = inputs
        ctx.save_for_backward(x, w_rec, z0, v0, i0, th0, r0, nat, aff, output[0], *output[6:])
        ctx.spec = (list(spec), float(alpha), bool(want_par))

    def _rec_backward(ctx, gs, gvT, giT, gthT, grT, gvtr, *gsaved):
        x, w_rec, z0, v0, i0, th0, r0, nat, aff, spikes, *saved = ctx.saved_tensors
        ints, alpha, saved_par = ctx.spec
        want_par = bool(ctx.needs_input_grad[6]) and saved_par
        gx, gv0, gi0, gth0, gz0, dpar = rec_backward(x, w_rec, v0, i0, th0, r0, nat, aff, ints, alpha, want_par,
                                                     spikes, *saved, gs, gvT, giT, gthT, gvtr)
        gw = None
        if ctx.needs_input_grad[1]:
            T, B, N = x.shape
            zprev = torch.cat([z0.unsqueeze(0), spikes[:-1]], 0).reshape(T * B, N)
            gw = gx.reshape(T * B, N).t() @ zprev
        return (gx, gw, gz0, gv0, gi0, gth0, (dpar.sum(1) if want_par else None)) + (None,) * 7

    rec_forward.register_autograd(_rec_backward, setup_context=_rec_setup)

    # ------------------------------------------------------------------ forward coefficients
    @torch.library.custom_op("eventsim::native_rows", mutates_args=())
    def native_rows(tau_m: Optional[Tensor], tau_syn: Optional[Tensor], v_th: Tensor, v_reset: Tensor, v_rest: Tensor,
                    tau_theta: Optional[Tensor], d_theta: Optional[Tensor], spec: List[int], alpha: float, n: int,
                    dt: float, norm_input: bool, leaky: bool, dtype: torch.dtype) -> Tensor:
        """Forward rows ``nat [8 + 2K, n]`` (CPU) from float64 parameters ``[n]`` (``tau_theta``, ``d_theta``: ``[K, n]``)."""
        from .functional import _native_rows

        tt = tuple(tau_theta.unbind(0)) if tau_theta is not None else ()
        dd = tuple(d_theta.unbind(0)) if d_theta is not None else ()
        return _native_rows(_spec(spec, alpha), n, dt, tau_m, v_th, v_reset, v_rest, tau_syn, tt, dd, norm_input,
                            leaky, dtype).contiguous()

    @native_rows.register_fake
    def _(tau_m, tau_syn, v_th, v_reset, v_rest, tau_theta, d_theta, spec, alpha, n, dt, norm_input, leaky, dtype):
        K = tau_theta.shape[0] if tau_theta is not None else 1
        return torch.empty((_core.n_rows(K), n), dtype=dtype, device="cpu")
