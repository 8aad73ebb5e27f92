r"""Initialisation that makes a spiking stack fire from the first epoch.

The exact integrator takes its input ``x`` as a current (in mV): a constant
``x`` settles at :math:`v = v_{rest} + x`, and one step moves the membrane
by :math:`(1 - e^{-dt/\tau_m})\,x`, about ``x dt / tau_m``.  A default
``nn.Linear`` or ``nn.Conv2d`` (weights uniform in
:math:`\pm 1/\sqrt{\text{fan-in}}`) fed with sparse spikes gives currents far
below ``v_th - v_rest`` once they are low-pass filtered by the membrane, so a
default network is silent and its surrogate gradients are tiny: it sits
at chance for epochs.

:func:`init_for_spikes` rescales, layer by layer on a sample batch, the
last weighted module in front of each neuron layer (its ``weight`` and
``bias``) so that a given fraction of the layer's neurons would reach the
threshold on the sample (a data-driven initialisation in the spirit of
LSUV, Mishkin & Matas 2016).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _validate as V
from . import functional as F
from .modules import LIFRecurrent, _Layer

__all__ = ["init_for_spikes"]


def _free_membrane_peak(layer, x):
    """Peak over time of ``v - v_rest`` of ``layer`` driven by ``x`` with its threshold removed, ``[B, N]``."""
    if layer.batch_first:
        x = x.transpose(0, 1)
    if isinstance(layer, LIFRecurrent):
        x = torch.matmul(x, layer.input_weights.t().to(x.dtype))
    T, B = x.shape[0], x.shape[1]
    n = x[0, 0].numel()
    tt, dd = layer._theta_args()
    nat, aff = F._coefficients(layer.spec, n, layer.dt, layer.tau_m if layer._leaky else None, 1e30,
                               layer.v_reset, layer.v_rest, tau_syn=layer.tau_syn, tau_theta=tt, d_theta=dd,
                               norm_input=layer.norm_input, leaky=layer._leaky, dtype=x.dtype, device=x.device)
    _, _, v = F.neuron_layer(x.reshape(T, B, n), None, nat, aff.detach(), layer.spec, v_init=layer._v0(),
                             record_v=True)
    v_rest = layer.v_rest.detach().to(x.dtype).reshape(-1)
    return (v - v_rest).amax(0)


def init_for_spikes(model, x, fraction=0.3, margin=1.0):
    r"""Rescale the weights in front of every neuron layer so that the layer fires on ``x``.

    For each neuron layer, in call order, the model runs on the sample
    ``x`` (no gradient), the layer's input is recorded, and the membrane
    it would follow without a threshold is computed with the layer's own
    dynamics.  The last module with a ``weight`` that ran before the layer
    (``nn.Linear``, ``nn.Conv2d``, ``nn.BatchNorm2d``, ...; for
    :class:`~eventsim.torch.LIFRecurrent` its ``input_weights``) is then
    multiplied, weight and bias, by the factor :math:`k` that brings the
    ``1 - fraction`` quantile (over samples and neurons) of that membrane's
    peak to ``margin * (v_th - v_rest)``: about ``fraction`` of the
    neurons reach the threshold at least once (of the neurons driven above
    rest at all, when fewer than ``fraction`` of them are).  The next layer is then
    scaled on the spikes of the rescaled ones.

    Modules between the weighted module and the neuron layer must be
    linear without offset (pooling, flattening, dropout), so that the
    membrane scales by :math:`k`.

    Parameters
    ----------
    model : nn.Module
        A model whose forward pass calls eventsim.torch neuron layers
        (e.g. an ``nn.Sequential`` with ``return_state=False`` layers).
    x : Tensor
        A representative input batch (e.g. one training batch of spikes).
    fraction : float
        Target fraction of (sample, neuron) pairs that reach the threshold,
        in (0, 1).
    margin : float
        Target peak in units of ``v_th - v_rest``, > 0.

    Returns
    -------
    list of float
        The factor applied in front of each neuron layer (1.0 where the
        layer has no weighted module in front of it).

    Raises
    ------
    ValueError
        For ``fraction`` or ``margin`` out of range, or a layer whose
        input never drives its membrane above rest on ``x``.
    """
    fraction = V.scalar("fraction", fraction, "a number in (0, 1)", lambda v: 0.0 < v < 1.0)
    margin = V.scalar("margin", margin, "a finite number > 0", lambda v: v > 0)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    layers = [m for m in model.modules() if isinstance(m, _Layer)]
    if not layers:
        raise ValueError("model has no eventsim.torch neuron layer")
    weighted = {m for m in model.modules() if isinstance(getattr(m, "weight", None), torch.Tensor)}
    factors = []
    for target in layers:
        order, captured = [], {}

        def hook(mod, args, _out=None):
            order.append(mod)

        def grab(mod, args):
            captured.setdefault("x", args[0])
            raise _Stop

        handles = [m.register_forward_hook(hook) for m in weighted]
        handles += [m.register_forward_pre_hook(hook) for m in layers]
        handles.append(target.register_forward_pre_hook(grab))
        was = [m.keep_state for m in layers]
        try:
            for m in layers:
                m.keep_state = False
            with torch.no_grad():
                model(x)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
            for m, k in zip(layers, was):
                m.keep_state = k
        if "x" not in captured:
            raise ValueError(f"{type(target).__name__} did not run in model(x)")
        if isinstance(target, LIFRecurrent):
            scale_mod, scale_w = target, ("input_weights",)
        else:
            prev = [m for m in order if m is not target]
            # the last weighted module after the previous neuron layer
            scale_mod = None
            for m in reversed(prev):
                if isinstance(m, _Layer):
                    break
                if m in weighted:
                    scale_mod = m
                    break
            scale_w = ("weight", "bias")
        if scale_mod is None:
            factors.append(1.0)
            continue
        with torch.no_grad():
            peak = _free_membrane_peak(target, captured["x"])
            theta = (target.v_th.detach() - target.v_rest.detach()).to(peak.dtype).reshape(-1)
            rel = (peak / theta).reshape(-1).float()
            q = _quantile(rel, 1.0 - fraction)
            if not q > 0:  # most neurons are driven below rest: aim at those that can reach the threshold
                q = _quantile(rel[rel > 0], 1.0 - fraction)
            if not (q > 0 and math.isfinite(q)):
                raise ValueError(f"the input of {type(target).__name__} never drives its membrane above v_rest on "
                                 "the sample x; give a sample with input spikes")
            k = margin / q
            for name in scale_w:
                p = getattr(scale_mod, name, None)
                if isinstance(p, torch.Tensor):
                    p.mul_(k)
        factors.append(k)
    return factors


def _quantile(values, q):
    """The ``q`` quantile of a 1-D tensor (nan when empty; subsampled above torch.quantile's size limit)."""
    if values.numel() == 0:
        return math.nan
    if values.numel() > 1 << 24:
        values = values[torch.linspace(0, values.numel() - 1, 1 << 24).long()]
    return float(torch.quantile(values, q))


class _Stop(Exception):
    """Stops the forward pass once the layer being initialised has its input."""
