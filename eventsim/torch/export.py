r"""Export a trained feed-forward stack to an :class:`eventsim.Network`.

A model made of ``nn.Linear`` layers each followed by an :class:`~eventsim.torch.LIF`,
:class:`~eventsim.torch.IF` or :class:`~eventsim.torch.ALIF` layer with the
exact integrator becomes a network of populations with the same neuron
parameters, fed by a spike source that replays given input spike trains.

Mapping (it makes the torch forward pass and the clock engine agree spike
for spike; run the torch model in float64 to compare, as the engine
computes in float64):

* neuron parameters: ``tau_m, v_th, v_reset, v_rest, t_ref, reset`` as they
  are, ``c_m = tau_m`` (``IF``: ``c_m = dt``), ``tau_syn_ex = tau_syn_in =
  tau_syn``; ``ALIF``: one threshold component ``(tau_theta, d_theta)``;
* weights: the layer's input current ``x = W s + b`` enters the membrane
  as ``P_vi x`` (delta synapses) or the synaptic current as ``g x``
  (current synapses, see :mod:`eventsim.torch.functional`), so a synapse
  gets ``P_vi W[j, i]`` mV or ``g W[j, i]`` pA, all with delay ``dt``;
* biases: one extra source channel per layer fires at every step and
  reaches every neuron of the layer with weight ``P_vi b[j]`` (or ``g b[j]``);
* time: a spike of input channel ``i`` at torch step ``t`` is a source spike
  at ``t * dt``.  Every layer adds one step of synaptic delay, so layer
  ``l`` (1-based) computes torch step ``t`` in the engine update that ends
  at step ``t + l`` and its spikes are stamped ``t + l``;
  :meth:`Export.spikes` removes that offset.  The network must run
  ``T + L - 1`` steps to produce all ``T`` steps of the last layer ``L``.

A batch of ``B`` input sequences becomes ``B`` independent copies of the
network in one :class:`~eventsim.Network`.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .. import models
from ..connectivity import FromArrays
from ..network import Network
from . import _validate as V
from . import functional as F
from .modules import ALIF, IF, LIF


class Export(NamedTuple):
    """What :func:`to_network` built (``net.torch_export``).

    Attributes
    ----------
    source : SpikeSource
        Input channels ``b * n_in + i`` followed by one bias channel per layer.
    populations : list of Population
        One per neuron layer; neuron ``b * n_l + j`` is unit ``j`` of copy ``b``.
    recorders : list of SpikeRecorder or None
    sizes : list of int
        Units per layer (without copies).
    n_copies : int
        Batch size ``B``.
    steps : int
        Number of torch steps ``T`` the source covers.
    """

    source: object
    populations: list
    recorders: list
    sizes: list
    n_copies: int
    steps: int

    @property
    def run_steps(self):
        """Engine steps needed to compute all ``steps`` torch steps of the last layer."""
        return self.steps + len(self.populations) - 1

    def spikes(self, layer=-1):
        """Spikes of a layer as a float64 array ``[T, B, n]`` aligned with the torch time axis."""
        if self.recorders is None:
            raise RuntimeError("to_network(..., record=False) made no spike recorders")
        L = len(self.populations)
        li = _layer_index(layer, L)
        rec = self.recorders[li]
        n = self.sizes[li]
        out = np.zeros((self.steps, self.n_copies, n))
        t = np.asarray(rec.steps, dtype=np.int64) - (li + 1)
        ids = np.asarray(rec.senders, dtype=np.int64)
        keep = (t >= 0) & (t < self.steps)
        b, j = np.divmod(ids[keep], n)
        np.add.at(out, (t[keep], b, j), 1.0)
        return out


def _layer_index(layer, n_layers):
    """Index in ``range(n_layers)`` of ``layer`` (negative counts from the end); ValueError if out of range."""
    if isinstance(layer, (bool, np.bool_)):
        raise TypeError(f"layer={layer!r} must be an integer, not a bool")
    try:
        li = operator.index(layer)
    except TypeError:
        raise TypeError(f"layer={layer!r} must be an integer, got {type(layer).__name__}") from None
    if not -n_layers <= li < n_layers:
        raise ValueError(f"layer={li} must be in [{-n_layers}, {n_layers - 1}]: the stack has {n_layers} "
                         "neuron layer(s)")
    return li % n_layers


def _stack(model):
    """[(weight [out, in], bias [out] or None, neuron layer)] of a Linear + neuron stack."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Sequential of nn.Linear and neuron layers, got {type(model).__name__}")
    mods = list(model.children()) if isinstance(model, nn.Sequential) else list(model.children())
    mods = [m for m in mods if not isinstance(m, (nn.Identity, nn.Flatten, nn.Dropout))]
    if len(mods) == 0 or len(mods) % 2:
        raise ValueError("model must be an alternating sequence of nn.Linear and eventsim.torch neuron layers "
                         f"(LIF, IF, ALIF); got {[type(m).__name__ for m in mods]}")
    layers = []
    prev = None
    for lin, neu in zip(mods[0::2], mods[1::2]):
        if not isinstance(lin, nn.Linear):
            raise ValueError(f"expected nn.Linear, got {type(lin).__name__}")
        if not isinstance(neu, (LIF, IF, ALIF)) or type(neu).__name__ == "LIFRecurrent":
            raise ValueError(f"expected an eventsim.torch LIF, IF or ALIF layer after nn.Linear, got "
                             f"{type(neu).__name__}")
        if neu.integrator != "exact":
            raise ValueError(f"only layers with integrator='exact' can be exported, got {neu.integrator!r}")
        if prev is not None and lin.in_features != prev:
            raise ValueError(f"nn.Linear expects {lin.in_features} inputs but the previous layer has {prev} units")
        prev = lin.out_features
        w = lin.weight.detach().to("cpu", torch.float64).numpy()
        b = None if lin.bias is None else lin.bias.detach().to("cpu", torch.float64).numpy()
        layers.append((w, b, neu))
    return layers


def _arr(t, n):
    a = t.detach().to("cpu", torch.float64).numpy().reshape(-1)
    return float(a[0]) if a.size == 1 else np.broadcast_to(a, (n,)).copy()


def _model(neu, n, copies, dt):
    """The simulator model of one neuron layer (per-neuron arrays tiled over copies)."""
    def p(name):
        v = _arr(getattr(neu, name), n)
        return v if np.ndim(v) == 0 else np.tile(v, copies)

    common = dict(v_th=p("v_th"), v_reset=p("v_reset"), v_rest=p("v_rest"), t_ref=neu.t_ref, i_e=0.0,
                  reset=neu.reset)
    if neu.tau_syn is not None:
        common.update(tau_syn_ex=p("tau_syn"), tau_syn_in=p("tau_syn"))
    if isinstance(neu, IF):
        return models.IF(c_m=float(dt), **common)
    tau_m = p("tau_m")
    if isinstance(neu, ALIF):
        return models.ALIF(tau_m=tau_m, c_m=tau_m, tau_theta=(p("tau_theta"),), d_theta=(p("d_theta"),), **common)
    return models.LIF(tau_m=tau_m, c_m=tau_m, **common)


def to_network(model, dt=None, inputs=None, steps=None, seed=0, record=True):
    """Build an :class:`eventsim.Network` that runs ``model`` on given input spikes.

    Parameters
    ----------
    model : nn.Sequential
        ``Linear, LIF/IF/ALIF, Linear, LIF/IF/ALIF, ...`` (exact integrator);
        ``Flatten``, ``Identity`` and ``Dropout`` are skipped.
    dt : float, optional
        Step (ms); default: the layers' ``dt`` (which must all agree).
    inputs : array_like or Tensor [T, B, n_in], optional
        Input spike counts per step (0/1, or integers for several spikes),
        finite and non-negative, with ``T, B >= 1``.
        Without inputs the source has no input spikes (biases still act)
        and ``steps`` sets how long the bias channels fire.
    steps : int, optional
        Number of torch steps, >= 1 (default ``inputs.shape[0]``).
    seed : int
        Seed of the Network.
    record : bool
        Record the spikes of every layer.

    Returns
    -------
    Network
        With ``net.torch_export`` an :class:`Export`; run it for
        ``net.torch_export.run_steps * dt`` ms, then read
        ``net.torch_export.spikes()``.
    """
    layers = _stack(model)
    dts = {neu.dt for _, _, neu in layers}
    if dt is None:
        if len(dts) != 1:
            raise ValueError(f"the layers use different dt {sorted(dts)}; pass dt explicitly")
        dt = dts.pop()
    dt = V.scalar("dt", dt, "a finite number > 0 (ms)", lambda v: v > 0)
    record = V.flag("record", record)
    for _, _, neu in layers:
        if abs(neu.dt - dt) > 1e-12 * dt:
            raise ValueError(f"layer dt={neu.dt} ms differs from dt={dt} ms; the dynamics would change")
    n_in = layers[0][0].shape[1]
    if steps is not None:
        steps = V.size("steps", steps)
    if inputs is not None:
        if isinstance(inputs, torch.Tensor):
            inp = inputs.detach().cpu().numpy()
        else:
            try:
                inp = np.asarray(inputs, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"inputs must be an array or Tensor [T, B, {n_in}] of spike counts, "
                                f"got {type(inputs).__name__}") from None
        if inp.dtype == np.bool_:
            inp = inp.astype(np.float64)
        if not np.issubdtype(inp.dtype, np.number) or np.iscomplexobj(inp):
            raise TypeError(f"inputs must hold real spike counts, got dtype {inp.dtype}")
        if inp.ndim != 3 or inp.shape[2] != n_in or inp.shape[0] < 1 or inp.shape[1] < 1:
            raise ValueError(f"inputs must have shape [T, B, {n_in}] with T, B >= 1, got {inp.shape}")
        if not np.all(np.isfinite(inp)) or np.any(inp < 0) or np.any(inp != np.round(inp)):
            raise ValueError("inputs must hold finite, non-negative integer spike counts")
        T, B = inp.shape[0], inp.shape[1]
        if steps is not None and steps != T:
            raise ValueError(f"steps={steps} does not match inputs with T={T}")
    else:
        if steps is None:
            raise ValueError("pass inputs or steps")
        T, B = steps, 1
        inp = np.zeros((T, B, n_in))
    L = len(layers)
    # ---- input and bias spikes
    t_idx, b_idx, i_idx = np.nonzero(inp)
    counts = inp[t_idx, b_idx, i_idx].astype(np.int64)
    senders = [np.repeat(b_idx * n_in + i_idx, counts)]
    times = [np.repeat(t_idx, counts)]
    bias_ch = B * n_in
    for li in range(L):
        senders.append(np.full(T, bias_ch + li))
        times.append(np.arange(T) + li)
    senders = np.concatenate(senders).astype(np.int64)
    steps_all = np.concatenate(times).astype(np.int64)
    order = np.lexsort((senders, steps_all))
    net = Network(dt=dt, seed=seed)
    pops, recs, sizes = [], [], []
    for li, (w, b, neu) in enumerate(layers):
        n_out = w.shape[0]
        sizes.append(n_out)
        pops.append(net.population(n_out * B, _model(neu, n_out, B, dt), v_init=_v_init(neu, n_out, B)))
    src = net.spike_source(senders=senders[order], times=steps_all[order] * dt, n=bias_ch + L)
    for li, (w, b, neu) in enumerate(layers):
        n_out, n_prev = w.shape
        spec = neu.spec
        nat, _ = F.coefficients(spec, n_out, dt, None if isinstance(neu, IF) else neu.tau_m, neu.v_th,
                                neu.v_reset, neu.v_rest, tau_syn=neu.tau_syn,
                                tau_theta=getattr(neu, "tau_theta", None), d_theta=getattr(neu, "d_theta", None),
                                leaky=not isinstance(neu, IF), dtype=torch.float64)
        gain = nat[3 if spec.synapse else 1].numpy()
        wg = gain[:, None] * w
        post, pre = np.nonzero(wg)
        wv = wg[post, pre]
        copies = np.arange(B)[:, None]
        pre_all = (copies * n_prev + pre[None, :]).reshape(-1)
        post_all = (copies * n_out + post[None, :]).reshape(-1)
        w_all = np.tile(wv, B)
        pre_group = src[:bias_ch] if li == 0 else pops[li - 1]
        if pre_all.size:
            net.connect(pre_group, pops[li], rule=FromArrays(pre=pre_all, post=post_all), weight=w_all,
                        delay=np.full(w_all.size, dt))
        if b is not None:
            bg = gain * b
            nz = np.nonzero(bg)[0]
            if nz.size:
                post_b = (copies * n_out + nz[None, :]).reshape(-1)
                net.connect(src[bias_ch + li: bias_ch + li + 1], pops[li],
                            rule=FromArrays(pre=np.zeros(post_b.size, np.int64), post=post_b),
                            weight=np.tile(bg[nz], B), delay=np.full(post_b.size, dt))
        if record:
            recs.append(net.record_spikes(pops[li]))
    net.torch_export = Export(src, pops, recs if record else None, sizes, B, T)
    return net


def _v_init(neu, n, copies):
    v = neu._v0()
    a = _arr(v, n)
    return a if np.ndim(a) == 0 else np.tile(a, copies)


def simulate(model, inputs, dt=None, layer=-1, seed=0):
    """Run ``model`` on ``inputs [T, B, n_in]`` in the clock engine; spikes ``[T, B, n]`` of ``layer``.

    The result is aligned with the torch time axis (see :func:`to_network`).

    Parameters
    ----------
    model : nn.Sequential
        As :func:`to_network`.
    inputs : array or Tensor [T, B, n_in]
        Input spike counts per step (non-negative integers).
    dt : float, optional
        Step (ms), > 0; default: the layers' ``dt``.
    layer : int
        Which neuron layer's spikes to return (negative: from the end).
    seed : int
        Seed of the Network.

    Returns
    -------
    Tensor [T, B, n] (float64)
    """
    if inputs is None:
        raise ValueError("inputs=None: simulate needs input spike counts [T, B, n_in]")
    _layer_index(layer, len(_stack(model)))
    net = to_network(model, dt=dt, inputs=inputs, seed=seed)
    ex = net.torch_export
    net.run(ex.run_steps * net.dt)
    return torch.as_tensor(ex.spikes(layer))
