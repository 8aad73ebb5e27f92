r"""Export a trained stack to an :class:`eventsim.Network`.

A model (``nn.Sequential``, nested ones allowed) made of affine blocks each
followed by an :class:`~eventsim.torch.LIF`, :class:`~eventsim.torch.IF`,
:class:`~eventsim.torch.ALIF` or :class:`~eventsim.torch.LIFRecurrent`
layer with the exact integrator becomes a network of populations with the
same neuron parameters, fed by a spike source that replays given input
spike trains.  The layers may be the spikes-only form
(``return_state=False``) or the default form (the export reads only their
parameters).

An affine block is any run (possibly empty) of ``nn.Linear``,
``nn.Flatten``, ``nn.Unflatten``, ``nn.Identity`` and, wrapped in
:class:`~eventsim.torch.TimeDistributed` or not, ``nn.Conv1d/2d/3d``,
``nn.AvgPool1d/2d/3d``, ``nn.Dropout`` and ``nn.BatchNorm1d/2d/3d`` (these
two in ``eval()`` mode), ``nn.ZeroPad2d``.  The block's map ``y = W x + b``
is read by probing it in float64 with unit inputs and checked on a random
input; a convolution's weight sharing is expanded into one synapse per
non-zero entry of ``W``.  ``nn.MaxPool`` (not affine on spike counts) and
other modules are refused with a message naming them.

Mapping (it makes the torch forward pass and the clock engine agree spike
for spike; run the torch model in float64 to compare, as the engine
computes in float64):

* neuron parameters: ``tau_m, v_th, v_reset, v_rest, t_ref, reset`` as they
  are, ``c_m = tau_m`` (``IF``: ``c_m = dt``), ``tau_syn_ex = tau_syn_in =
  tau_syn`` (and ``psc="alpha"``); layers of a family with a torch
  declaration (:class:`~eventsim.torch.LI`, ``LIF(psc="alpha")``) through
  the family's own ``torch.model``, which also gives the weight factor; ``ALIF`` (and adaptive ``LIFRecurrent``): its ``K`` threshold
  components ``tau_theta[k], d_theta[k]`` (trained values included);
* weights: the layer's input current ``x = W s + b`` enters the membrane
  as ``P_vi x`` (delta synapses) or the synaptic current as ``g x``
  (current synapses, see :mod:`eventsim.torch.functional`), so a synapse
  gets ``P_vi W[j, i]`` mV or ``g W[j, i]`` pA, all with delay ``dt``;
* biases: one extra source channel per layer fires at every step and
  reaches every neuron of the layer with weight ``P_vi b[j]`` (or ``g b[j]``);
* ``LIFRecurrent``: its input weights join the affine block in front;
  the recurrent weights become a projection of the population onto itself
  with delay ``dt`` (gain as above; the diagonal only with ``autapses``),
  which delivers ``z[t-1]`` to torch step ``t`` as the layer does;
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

import copy
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
from .modules import ALIF, IF, LIF, FamilyLayer, LIFRecurrent, TimeDistributed, _Layer


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
    shapes : list of tuple
        Feature shape of each neuron layer's output in torch (``(n,)`` after
        ``nn.Linear``, ``(C, H, W)`` after a convolution).
    """

    source: object
    populations: list
    recorders: list
    sizes: list
    n_copies: int
    steps: int
    shapes: list = None
    #: Membrane recorders (:class:`~eventsim.record.StateRecorder` of ``"v"``) of the layers of families with torch
    #: steps (e.g. :class:`~eventsim.torch.LI`), by layer index; see :meth:`v`.
    v_recorders: dict = None

    @property
    def run_steps(self):
        """Engine steps needed to compute all ``steps`` torch steps of the last layer."""
        return self.steps + len(self.populations) - 1

    def spikes(self, layer=-1):
        """Spikes of a layer as a float64 array ``[T, B, *shape]`` aligned with the torch time axis.

        ``shape`` is the layer's feature shape in torch (``shapes[layer]``).
        """
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
        if self.shapes is not None:
            out = out.reshape((self.steps, self.n_copies) + tuple(self.shapes[li]))
        return out


    def v(self, layer=-1):
        """Membrane potential (mV) of a family layer (e.g. :class:`~eventsim.torch.LI`) as ``[T, B, *shape]``,
        aligned with the torch time axis: entry ``t`` is the engine's ``v`` after the update that computes
        torch step ``t`` (what the layer returns at ``t``)."""
        L = len(self.populations)
        li = _layer_index(layer, L)
        if not self.v_recorders or li not in self.v_recorders:
            raise ValueError(f"layer {li} has no membrane recorder (only family layers such as LI have one, "
                             "with record=True)")
        rec = self.v_recorders[li]
        n = self.sizes[li]
        steps = np.asarray(rec.steps, dtype=np.int64)
        vals = np.asarray(rec.values, dtype=np.float64)
        out = np.full((self.steps, self.n_copies * n), np.nan)
        t = steps - (li + 1)
        keep = (t >= 0) & (t < self.steps)
        out[t[keep]] = vals[keep]
        out = out.reshape(self.steps, self.n_copies, n)
        if self.shapes is not None:
            out = out.reshape((self.steps, self.n_copies) + tuple(self.shapes[li]))
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


_AFFINE = (nn.Linear, nn.Flatten, nn.Unflatten, nn.Identity, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.AvgPool1d,
           nn.AvgPool2d, nn.AvgPool3d, nn.ZeroPad2d, nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_EVAL_ONLY = (nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_NEURONS = "eventsim.torch LIF, IF, ALIF, LIFRecurrent or LI layers"


def _flat_modules(model):
    """The leaf modules of ``model`` in call order (nested ``nn.Sequential`` unrolled)."""
    out = []
    for m in model.children() if isinstance(model, nn.Sequential) else [model]:
        if isinstance(m, nn.Sequential):
            out.extend(_flat_modules(m))
        else:
            out.append(m)
    return out


def _check_affine(m, wrapped=False):
    """Raise ValueError unless ``m`` is one of the affine modules the export can read."""
    if isinstance(m, TimeDistributed):
        inner = m.module
        for sub in (_flat_modules(inner) if isinstance(inner, nn.Sequential) else [inner]):
            _check_affine(sub, wrapped=True)
        return
    if not isinstance(m, _AFFINE):
        what = "nn.MaxPool is not affine on spike counts; use nn.AvgPool" if "MaxPool" in type(m).__name__ \
            else f"expected affine modules ({', '.join(c.__name__ for c in _AFFINE)}) and {_NEURONS}"
        raise ValueError(f"to_network cannot export {type(m).__name__}: {what}")
    if isinstance(m, _EVAL_ONLY) and m.training:
        raise ValueError(f"{type(m).__name__} is in training mode; call model.eval() before to_network")


class _Group(NamedTuple):
    """One neuron layer and the affine modules in front of it."""

    affine: list
    neuron: object


def _stack(model):
    """The model as a list of :class:`_Group` (affine modules, neuron layer)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Sequential of affine modules and {_NEURONS}, "
                        f"got {type(model).__name__}")
    groups, pending = [], []
    for m in _flat_modules(model):
        if isinstance(m, FamilyLayer):
            if m.family.torch.model is None:
                raise ValueError(f"to_network cannot export {type(m).__name__}: the {m.family.name} family "
                                 "declares no simulator model for its torch layer")
            groups.append(_Group(pending, m))
            pending = []
        elif isinstance(m, _Layer):
            if not isinstance(m, (LIF, IF, ALIF, LIFRecurrent)):
                raise ValueError(f"to_network cannot export {type(m).__name__}")
            if m.integrator != "exact":
                raise ValueError(f"only layers with integrator='exact' can be exported, got {m.integrator!r} "
                                 f"in {type(m).__name__}")
            groups.append(_Group(pending, m))
            pending = []
        else:
            _check_affine(m)
            pending.append(m)
    if not groups:
        raise ValueError(f"model must contain {_NEURONS} (exact integrator); got "
                         f"{[type(m).__name__ for m in _flat_modules(model)]}")
    if any(not isinstance(m, (nn.Identity, nn.Dropout)) for m in pending):
        raise ValueError(f"model ends with {[type(m).__name__ for m in pending]} after its last neuron layer; "
                         "the simulator records spikes: end the model with a neuron layer")
    return groups


def _first_shape(group):
    """Input features of the model when they follow from its first module, else None."""
    mods = list(group.affine)
    for m in mods:
        if isinstance(m, (nn.Identity, nn.Dropout)):
            continue
        return (m.in_features,) if isinstance(m, nn.Linear) else None
    if isinstance(group.neuron, LIFRecurrent):
        return (group.neuron.input_size,)
    return None


def _affine_fn(group, bias=True):
    """A float64 CPU copy of the group's affine map, called on ``[1, K, *features]``.

    ``bias=False`` zeroes the biases of the linear and convolution modules
    (their weights are then read without a rounding through ``w + b - b``).
    """
    mods = [copy.deepcopy(m).to("cpu", torch.float64) for m in group.affine]
    if not bias:
        for m in mods:
            for sub in m.modules():
                if isinstance(sub, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and sub.bias is not None:
                    with torch.no_grad():
                        sub.bias.zero_()
    neu = group.neuron
    w_in = neu.input_weights.detach().to("cpu", torch.float64) if isinstance(neu, LIFRecurrent) else None

    def f(x):
        with torch.no_grad():
            for m in mods:
                x = m(x)
            if w_in is not None:
                if x.dim() != 3 or x.shape[-1] != w_in.shape[1]:
                    raise ValueError(f"LIFRecurrent expects {w_in.shape[1]} input features, the modules in front "
                                     f"give {tuple(x.shape[2:])}")
                x = x @ w_in.t()
        return x
    return f


#: Unit inputs probed at once when reading an affine block (memory: CHUNK x outputs float64 values).
PROBE_CHUNK = 256


def _read_affine(group, shape):
    """``(post, pre, w, b, out_shape)``: the non-zero entries of ``W`` and the bias ``b`` of ``y = W x + b``.

    ``shape`` is the feature shape of the input.  The map is read in float64
    by probing unit inputs (``W[:, i] = f(e_i) - f(0)``) and checked on a
    random input; ValueError if it is not affine.
    """
    f = _affine_fn(group)
    f_w = _affine_fn(group, bias=False)
    n_in = int(np.prod(shape))
    try:
        y0 = f(torch.zeros((1, 1) + tuple(shape), dtype=torch.float64))
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"the modules in front of {type(group.neuron).__name__} do not accept the input "
                         f"features {tuple(shape)}: {e}") from None
    if y0.dim() < 2 or y0.shape[:2] != (1, 1):
        raise ValueError(f"the modules in front of {type(group.neuron).__name__} change the [T, B] axes "
                         f"(output {tuple(y0.shape)}); wrap per-sample modules in TimeDistributed or flatten "
                         "with nn.Flatten(start_dim=2)")
    out_shape = tuple(y0.shape[2:])
    b = y0.reshape(-1).numpy().copy()
    b_w = f_w(torch.zeros((1, 1) + tuple(shape), dtype=torch.float64)).reshape(-1).numpy().copy()
    n_out = b.size
    posts, pres, ws = [], [], []
    for i0 in range(0, n_in, PROBE_CHUNK):
        k = min(PROBE_CHUNK, n_in - i0)
        e = torch.zeros((1, k, n_in), dtype=torch.float64)
        e[0, torch.arange(k), torch.arange(i0, i0 + k)] = 1.0
        y = f_w(e.reshape((1, k) + tuple(shape))).reshape(k, n_out).numpy() - b_w[None, :]
        pre, post = np.nonzero(y)
        posts.append(post)
        pres.append(pre + i0)
        ws.append(y[pre, post])
    post, pre, w = np.concatenate(posts), np.concatenate(pres), np.concatenate(ws)
    # the map must be affine: compare with a random input
    g = torch.Generator().manual_seed(0)
    x = torch.rand((1, 1, n_in), generator=g, dtype=torch.float64) * 2.0
    want = f(x.reshape((1, 1) + tuple(shape))).reshape(-1).numpy()
    got = b.copy()
    np.add.at(got, post, w * x.reshape(-1).numpy()[pre])
    if not np.allclose(got, want, rtol=1e-9, atol=1e-9 * (1.0 + np.abs(want).max(initial=0.0))):
        raise ValueError(f"the modules in front of {type(group.neuron).__name__} "
                         f"({[type(m).__name__ for m in group.affine]}) are not an affine map")
    return post, pre, w, b, out_shape


def _arr(t, n):
    a = t.detach().to("cpu", torch.float64).numpy().reshape(-1)
    return float(a[0]) if a.size == 1 else np.broadcast_to(a, (n,)).copy()


def _declared(neu):
    """``(family, params)`` of a layer run by the generic family kernels (its family's ``torch.kernel`` is
    ``"family"``: ``LI``, ``LIF(psc="alpha")``), exported through the family's ``torch.model``; else None."""
    if neu.family.torch.kernel == "family":
        return neu.family, neu._params()
    return None


def _family_model(neu, n, copies, dt):
    """``(model, gain [n])`` of a family layer: the family's ``torch.model`` (per-neuron arrays tiled over copies)."""
    family, params = _declared(neu)
    one, tiled = {}, {}
    for name, t in params.items():
        if t is None:
            one[name] = tiled[name] = None
            continue
        a = np.broadcast_to(np.asarray(_arr(t, n), np.float64), (n,)).copy()
        one[name], tiled[name] = a, np.tile(a, copies)
    model, _ = family.torch.model(dt, **tiled)
    _, gain = family.torch.model(dt, **one)
    return model, np.asarray(gain, np.float64)


def _model(neu, n, copies, dt):
    """The simulator model of one neuron layer (per-neuron arrays tiled over copies)."""
    if _declared(neu) is not None:
        return _family_model(neu, n, copies, dt)[0]
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
    if neu._adaptive:
        def comps(t):
            vals = [_arr(c, n) for c in neu._theta_args()[t]] if neu.theta_components > 1 else \
                [_arr(neu._theta_args()[t], n)]
            return tuple(v if np.ndim(v) == 0 else np.tile(v, copies) for v in vals)

        return models.ALIF(tau_m=tau_m, c_m=tau_m, tau_theta=comps(0), d_theta=comps(1), **common)
    return models.LIF(tau_m=tau_m, c_m=tau_m, **common)


def to_network(model, dt=None, inputs=None, steps=None, seed=0, record=True, input_shape=None):
    """Build an :class:`eventsim.Network` that runs ``model`` on given input spikes.

    Parameters
    ----------
    model : nn.Sequential
        Affine blocks and neuron layers (exact integrator), see the module
        docstring, e.g. ``Linear, LIF, Linear, LIF`` or
        ``TimeDistributed(Conv2d), LIF, TimeDistributed(AvgPool2d),
        TimeDistributed(Flatten), Linear, LIF``.
    dt : float, optional
        Step (ms); default: the layers' ``dt`` (which must all agree).
    inputs : array_like or Tensor [T, B, ...], optional
        Input spike counts per step (0/1, or integers for several spikes),
        finite and non-negative, with ``T, B >= 1``; the trailing axes are
        the model's input features (``[T, B, C, H, W]`` for a convolution;
        channel ``b * n_in + i`` replays feature ``i`` in C order).
        Without inputs the source has no input spikes (biases still act)
        and ``steps`` sets how long the bias channels fire.
    steps : int, optional
        Number of torch steps, >= 1 (default ``inputs.shape[0]``).
    seed : int
        Seed of the Network.
    record : bool
        Record the spikes of every layer.
    input_shape : tuple of int, optional
        Feature shape of the input when ``inputs`` is not given and the
        model does not start with ``nn.Linear`` or ``LIFRecurrent``.

    Returns
    -------
    Network
        With ``net.torch_export`` an :class:`Export`; run it for
        ``net.torch_export.run_steps * dt`` ms, then read
        ``net.torch_export.spikes()``.
    """
    groups = _stack(model)
    dts = {g.neuron.dt for g in groups}
    if dt is None:
        if len(dts) != 1:
            raise ValueError(f"the layers use different dt {sorted(dts)}; pass dt explicitly")
        dt = dts.pop()
    dt = V.scalar("dt", dt, "a finite number > 0 (ms)", lambda v: v > 0)
    record = V.flag("record", record)
    for g in groups:
        if abs(g.neuron.dt - dt) > 1e-12 * dt:
            raise ValueError(f"layer dt={g.neuron.dt} ms differs from dt={dt} ms; the dynamics would change")
    shape = _first_shape(groups[0])
    if input_shape is not None:
        try:
            given = tuple(V.size("input_shape", k) for k in input_shape)
        except TypeError:
            raise TypeError(f"input_shape={input_shape!r} must be a tuple of integers >= 1") from None
        if shape is not None and given != shape:
            raise ValueError(f"input_shape={given} differs from the model's input features {shape}")
        shape = given
    if steps is not None:
        steps = V.size("steps", steps)
    if inputs is not None:
        if isinstance(inputs, torch.Tensor):
            inp = inputs.detach().cpu().numpy()
        else:
            try:
                inp = np.asarray(inputs, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError("inputs must be an array or Tensor [T, B, ...] of spike counts, "
                                f"got {type(inputs).__name__}") from None
        if inp.dtype == np.bool_:
            inp = inp.astype(np.float64)
        if not np.issubdtype(inp.dtype, np.number) or np.iscomplexobj(inp):
            raise TypeError(f"inputs must hold real spike counts, got dtype {inp.dtype}")
        want = "[T, B, ...]" if shape is None else f"[T, B, {', '.join(map(str, shape))}]"
        if inp.ndim < 3 or (shape is not None and inp.shape[2:] != shape) or inp.shape[0] < 1 or inp.shape[1] < 1:
            raise ValueError(f"inputs must have shape {want} with T, B >= 1, got {inp.shape}")
        shape = tuple(inp.shape[2:])
        inp = inp.reshape(inp.shape[0], inp.shape[1], -1)
        if not np.all(np.isfinite(inp)) or np.any(inp < 0) or np.any(inp != np.round(inp)):
            raise ValueError("inputs must hold finite, non-negative integer spike counts")
        T, B = inp.shape[0], inp.shape[1]
        if steps is not None and steps != T:
            raise ValueError(f"steps={steps} does not match inputs with T={T}")
    else:
        if steps is None:
            raise ValueError("pass inputs or steps")
        if shape is None:
            raise ValueError("the model's input features are unknown: pass inputs or input_shape")
        T, B = steps, 1
        inp = np.zeros((T, B, int(np.prod(shape))))
    n_in = inp.shape[2]
    # ---- the affine map in front of every neuron layer, read in float64
    maps, shapes = [], []
    for g in groups:
        post, pre, w, b, shape = _read_affine(g, shape)
        maps.append((post, pre, w, b))
        shapes.append(shape)
        n = int(np.prod(shape))
        try:
            V.per_neuron(g.neuron._lengths, n)
        except ValueError as e:
            raise ValueError(f"{type(g.neuron).__name__} after {shape}-shaped features: {e}") from None
    L = len(groups)
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
    pops, recs, sizes, v_recs = [], [], [], {}
    for li, g in enumerate(groups):
        n_out = maps[li][3].size
        sizes.append(n_out)
        pops.append(net.population(n_out * B, _model(g.neuron, n_out, B, dt), v_init=_v_init(g.neuron, n_out, B)))
    src = net.spike_source(senders=senders[order], times=steps_all[order] * dt, n=bias_ch + L)
    copies = np.arange(B)[:, None]
    for li, g in enumerate(groups):
        neu = g.neuron
        post, pre, wv, b = maps[li]
        n_out = b.size
        n_prev = n_in if li == 0 else sizes[li - 1]
        if _declared(neu) is not None:
            gain = _family_model(neu, n_out, B, dt)[1]
        else:
            spec = neu.spec
            tt, dd = neu._theta_args()
            nat, _ = F.coefficients(spec, n_out, dt, None if isinstance(neu, IF) else neu.tau_m, neu.v_th,
                                    neu.v_reset, neu.v_rest, tau_syn=neu.tau_syn, tau_theta=tt, d_theta=dd,
                                    leaky=not isinstance(neu, IF), dtype=torch.float64)
            gain = nat[3 if spec.synapse else 1].numpy()
        wv = gain[post] * wv
        keep = wv != 0
        post, pre, wv = post[keep], pre[keep], wv[keep]
        pre_all = (copies * n_prev + pre[None, :]).reshape(-1)
        post_all = (copies * n_out + post[None, :]).reshape(-1)
        w_all = np.tile(wv, B)
        pre_group = src[:bias_ch] if li == 0 else pops[li - 1]
        if pre_all.size:
            net.connect(pre_group, pops[li], rule=FromArrays(pre=pre_all, post=post_all), weight=w_all,
                        delay=np.full(w_all.size, dt))
        if isinstance(neu, LIFRecurrent):
            wr = (neu.recurrent_weights * neu.autapse_mask).detach().to("cpu", torch.float64).numpy()
            rp, rq = np.nonzero(gain[:, None] * wr)
            rw = (gain[:, None] * wr)[rp, rq]
            if rp.size:
                net.connect(pops[li], pops[li], rule=FromArrays(pre=(copies * n_out + rq[None, :]).reshape(-1),
                                                                post=(copies * n_out + rp[None, :]).reshape(-1)),
                            weight=np.tile(rw, B), delay=np.full(rw.size * B, dt))
        if np.any(b != 0):
            bg = gain * b
            nz = np.nonzero(bg)[0]
            if nz.size:
                post_b = (copies * n_out + nz[None, :]).reshape(-1)
                net.connect(src[bias_ch + li: bias_ch + li + 1], pops[li],
                            rule=FromArrays(pre=np.zeros(post_b.size, np.int64), post=post_b),
                            weight=np.tile(bg[nz], B), delay=np.full(post_b.size, dt))
        if record:
            recs.append(net.record_spikes(pops[li]))
            if isinstance(neu, FamilyLayer):
                v_recs[li] = net.record_state(pops[li], "v")
    # Network refuses unknown attributes (a misspelt one is an error); this one is the bridge's own record
    object.__setattr__(net, "torch_export", Export(src, pops, recs if record else None, sizes, B, T, shapes,
                                                   v_recs if record else None))
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
    inputs : array or Tensor [T, B, ...]
        Input spike counts per step (non-negative integers).
    dt : float, optional
        Step (ms), > 0; default: the layers' ``dt``.
    layer : int
        Which neuron layer's spikes to return (negative: from the end).
    seed : int
        Seed of the Network.

    Returns
    -------
    Tensor [T, B, ...] (float64), the layer's torch output shape
    """
    if inputs is None:
        raise ValueError("inputs=None: simulate needs input spike counts [T, B, n_in]")
    _layer_index(layer, len(_stack(model)))
    net = to_network(model, dt=dt, inputs=inputs, seed=seed)
    ex = net.torch_export
    net.run(ex.run_steps * net.dt)
    return torch.as_tensor(ex.spikes(layer))
