r"""Import and export of NIR graphs (the Neuromorphic Intermediate Representation).

:func:`to_nir` turns an :mod:`eventsim.torch` stack or an
:class:`eventsim.Network` into a ``nir.NIRGraph``; :func:`from_nir` turns a
graph (written by eventsim, snnTorch, norse, sinabs, ...) into an
``nn.Sequential`` of :mod:`eventsim.torch` layers or into a Network.  The
``nir`` package (>= 1.0.5) is imported only here (``pip install 'eventsim[nir]'``).

Node types
----------
``Input``, ``Output``, ``Affine``, ``Linear``, ``Scale``, ``Conv1d``,
``Conv2d``, ``Flatten``, ``SumPool2d``, ``AvgPool2d``, ``Delay`` and the
neurons ``LIF``, ``CubaLIF``, ``IF``, ``LI``, ``CubaLI``; nested
``NIRGraph`` nodes are inlined.  Any other node (``I``, ``Threshold``, ...)
is refused by :func:`from_nir` before anything is built, with a
``ValueError`` naming the node, its type and the supported types.

NIR's equations (continuous time, no ``dt``)
--------------------------------------------
.. math::

    \text{LIF:}\quad \tau \dot v = (v_{leak} - v) + R\,I, \qquad
    \text{IF:}\quad \dot v = R\,I, \qquad
    \text{CubaLIF:}\quad \tau_{syn} \dot I = -I + w_{in} S,\ \
    \tau_{mem} \dot v = (v_{leak} - v) + R\,I,

a spike when :math:`v > v_{threshold}`, then :math:`v \leftarrow v_{reset}`;
``LI`` / ``CubaLI`` are the same without threshold (their output is
:math:`v`).  Edges are instantaneous and a node with several incoming
edges sums them; ``Delay`` shifts its input by ``delay``.

How eventsim discretises them (step ``dt``)
-------------------------------------------
The input of a neuron node is taken as one value per step: the spike
count (0 or 1) of the presynaptic neurons in that step, passed through the
affine nodes, i.e. a spike is a pulse of height 1 lasting one step (NIR's
practice: snnTorch, norse and sinabs all feed one value per step).  The
membrane is then integrated *exactly*, as everywhere in eventsim:

* ``LIF`` / ``LI``: the input is held constant over the step (zero-order
  hold), :math:`v_t = v_{leak} + e^{-dt/\tau}(v_{t-1} - v_{leak}) +
  (1 - e^{-dt/\tau}) R\,I_t`: an ``eventsim.torch.LIF`` with ``tau_m = tau``,
  ``v_rest = v_leak`` and input ``x = R I``; in the simulator a delta
  synapse of weight :math:`(1 - e^{-dt/\tau}) R\,W` (mV).
* ``IF``: :math:`v_t = v_{t-1} + R\,dt\,I_t`.
* ``CubaLIF`` / ``CubaLI``: the step's input enters the synaptic current as
  one jump at the end of the step (NEST's ``iaf_psc_exp``),
  :math:`I \mathrel{+}= g\,w_{in} S_t`, and the membrane follows the current
  exactly; :math:`g = P_{vi}(1 - e^{-dt/\tau_{syn}})/P_{vs}` is the factor
  (about :math:`dt/\tau_{syn}`) for which a constant input ``S`` settles at
  exactly the continuous steady state :math:`v = v_{leak} + R\,w_{in} S`
  (:mod:`eventsim.torch.functional`).
* Threshold ``v >= v_threshold`` (NIR: ``>``; they differ only when ``v``
  lands exactly on the threshold), reset to ``v_reset``, no refractory
  period; every neuron starts at ``v_leak`` with no synaptic current.

Libraries that integrate with forward Euler (snnTorch: ``v = beta v + x``
written as ``tau = dt / (1 - beta)``, ``R = tau / dt``; norse: ``v +=
dt/tau (v_leak - v + x)``) define their graphs through that step:
imported here, the same parameters give the exact solution of the same
equations instead, which differs from the exporting library by
:math:`O(dt/\tau)` per step.  For snnTorch's ``beta = 0.9`` (``tau = 10
dt``) a step decays the membrane by :math:`e^{-0.1} = 0.905` instead of
0.9 and adds 0.952 instead of 1 times the input: spikes drift by a step
here and there, rates stay close.  (Euler with many sub-steps per step
converges to what eventsim computes; ``tests/test_nir.py`` checks it.)
Graphs from libraries that integrate exactly (sinabs ``LIF`` with
``norm_input=True``, ``IAF``) give the exporting library's spikes.

Time: eventsim works in ms.  ``dt`` is in ms; the graph's time constants
and delays are multiplied by ``time_unit`` (ms per unit of the graph):
1 for graphs written by :func:`to_nir` (ms), 1000 for graphs in seconds
(snnTorch, norse), the step length in ms for graphs in steps (sinabs).

In the simulator (``to="network"``) every edge needs at least one step of
delay: an instantaneous NIR edge becomes a delay of one step, a path
through ``Delay`` nodes of total delay ``D`` a delay of ``1 + D/dt`` steps
(``D`` a multiple of ``dt``).  Population ``p`` therefore computes the
graph's step ``t`` in the engine update that ends at step ``t + o_p``,
``o_p`` being the number of edges on the longest path from the input;
:meth:`NIRNetwork.spikes` removes that offset, so that a feed-forward
graph (and recurrence of a node onto itself) gives the torch model's
spikes step for step.  Recurrent edges act one step later (``z[t-1]``), as
in :class:`eventsim.torch.LIFRecurrent`.

Conversely :func:`to_nir` writes an eventsim torch layer as the NIR neuron
with ``R = 1``, ``w_in = 1``, ``v_leak = v_rest`` (``IF``: ``R = 1/dt``)
and the weights as they are; and a Network's neurons with ``R`` and
``w_in`` chosen so that NIR weights equal the simulator's weights (mV or
pA): ``R = 1/(1 - e^{-dt/\tau_m})`` for delta synapses, ``R = \tau_m/C_m``
and ``w_in = 1/g`` for current synapses, ``R = 1/dt`` for ``IF``; a
projection of delay ``d`` gets a ``Delay`` node of ``d - dt``.  Gains that
come within 4 ulp of 1 on import are taken as exactly 1, so round trips
reproduce the weights bit for bit.  The graph's metadata holds ``dt`` (ms)
and ``time_unit = "ms"``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import models
from .connectivity import FromArrays
from .models.dynamics import exp_propagators

#: NIR node types :func:`from_nir` understands.
SUPPORTED = ("Input", "Output", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "Flatten", "SumPool2d",
             "AvgPool2d", "Delay", "LIF", "CubaLIF", "IF", "LI", "CubaLI", "NIRGraph")
_NEURONS = ("LIF", "CubaLIF", "IF", "LI", "CubaLI")
_WIRES = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d", "Delay",
          "_Identity")
#: Threshold (mV) of the never-spiking neurons that stand for NIR's LI and CubaLI nodes.
LI_THRESHOLD = 1e30
#: Unit inputs propagated at once when reading the linear maps between neuron nodes.
PROBE_CHUNK = 256


def _nir():
    try:
        import nir
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("eventsim.nir needs the nir package: pip install 'eventsim[nir]'") from None
    return nir


# =============================================================================================
# gains shared by import and export
# =============================================================================================
def _props(dt, tau_m, tau_syn=None):
    """``(p_vv, p_vi, p_ve, p_ee)`` per neuron (float64) with ``c_m = tau_m`` (unit resistance)."""
    tau_m = np.asarray(tau_m, dtype=np.float64)
    inv_m = 1.0 / tau_m
    inv_s = np.zeros_like(inv_m) if tau_syn is None else 1.0 / np.asarray(tau_syn, dtype=np.float64)
    f = np.vectorize(exp_propagators.py_func, otypes=[np.float64] * 6)
    p_vv, p_vi, p_ve, _, p_ee, _ = f(float(dt), inv_m, tau_m, inv_s, inv_s)
    return p_vv, p_vi, p_ve, p_ee


def _syn_gain(dt, tau_m, tau_syn):
    """:math:`g = P_{vi}(1 - P_{ss})/P_{vs}`: jump of the current per unit step input (as the torch bridge)."""
    _, p_vi, p_ve, p_ee = _props(dt, tau_m, tau_syn)
    return p_vi * (1.0 - p_ee) / p_ve


def _snap(g):
    """``g`` with values within 4 ulp of 1 replaced by exactly 1."""
    g = np.asarray(g, dtype=np.float64).copy()
    g[np.abs(g - 1.0) <= 4 * np.finfo(np.float64).eps] = 1.0
    return g


def _uniform(a):
    """A scalar if all values of ``a`` are equal, else the flattened float64 array."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    return float(a[0]) if a.size and np.all(a == a[0]) else a


# =============================================================================================
# reading a graph
# =============================================================================================
class _Identity:
    """The Input/Output nodes of an inlined subgraph: they pass their input on."""


def _type(node):
    return "_Identity" if isinstance(node, _Identity) else type(node).__name__


def _check_types(graph, prefix=""):
    """ValueError for the first node of an unsupported type (nested graphs included)."""
    for name, node in graph.nodes.items():
        t = type(node).__name__
        if t not in SUPPORTED:
            raise ValueError(f"NIR node {prefix + name!r} of type {t} is not supported by eventsim; supported "
                             f"node types: {', '.join(SUPPORTED)}")
        if t == "NIRGraph":
            _check_types(node, prefix + name + ".")


def _flatten(graph, prefix=""):
    """``(nodes, edges)`` with nested graphs inlined (their Input/Output nodes become identities)."""
    nodes, edges, entries, exits = {}, [], {}, {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if type(node).__name__ == "NIRGraph":
            sub_nodes, sub_edges = _flatten(node, full + ".")
            ins = [full + "." + k for k, v in node.nodes.items() if type(v).__name__ == "Input"]
            outs = [full + "." + k for k, v in node.nodes.items() if type(v).__name__ == "Output"]
            if len(ins) != 1 or len(outs) != 1:
                raise ValueError(f"nested NIR graph {full!r} must have one Input and one Output node, got "
                                 f"{len(ins)} and {len(outs)}")
            for k in (ins[0], outs[0]):
                sub_nodes[k] = _Identity()
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
            entries[full], exits[full] = ins[0], outs[0]
        else:
            nodes[full] = node
    for a, b in graph.edges:
        a, b = prefix + a, prefix + b
        edges.append((exits.get(a, a), entries.get(b, b)))
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise ValueError(f"NIR edge ({a!r}, {b!r}) names node {end!r}, which the graph does not have")
    return nodes, edges


class _Parsed(NamedTuple):
    nodes: dict
    edges: list
    preds: dict
    succs: dict
    inputs: list
    outputs: list


def _parse(graph):
    nir = _nir()
    if not isinstance(graph, nir.NIRGraph):
        if isinstance(graph, nir.NIRNode):
            graph = nir.NIRGraph.from_list(graph)
        else:
            raise TypeError(f"graph must be a nir.NIRGraph (nir.read(path) reads one), got {type(graph).__name__}")
    _check_types(graph)
    nodes, edges = _flatten(graph)
    preds = {k: [] for k in nodes}
    succs = {k: [] for k in nodes}
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    inputs = [k for k, v in nodes.items() if _type(v) == "Input"]
    outputs = [k for k, v in nodes.items() if _type(v) == "Output"]
    if len(inputs) != 1:
        raise ValueError(f"the NIR graph must have exactly one Input node, got {len(inputs)}: {inputs}")
    if not outputs:
        raise ValueError("the NIR graph has no Output node")
    for k in inputs:
        if preds[k]:
            raise ValueError(f"Input node {k!r} has incoming edges from {preds[k]}")
    return _Parsed(nodes, edges, preds, succs, inputs, outputs)


def _arr(x):
    """A NIR parameter as a float64 array (NIR stores arrays or tensors)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _pair(x, name, node_name):
    a = np.asarray(_arr(x), dtype=np.int64).reshape(-1)
    if a.size == 1:
        return (int(a[0]), int(a[0]))
    if a.size != 2:
        raise ValueError(f"NIR node {node_name!r}: {name}={x!r} must be one or two integers")
    return (int(a[0]), int(a[1]))


def _input_shape(node):
    shape = node.input_type["input"] if isinstance(node.input_type, dict) else node.input_type
    return tuple(int(s) for s in np.asarray(shape).reshape(-1))


# ---------------------------------------------------------------- the affine nodes as functions
def _conv_args(node, name, dims):
    pad = node.padding
    if isinstance(pad, (bytes, np.bytes_)):
        pad = pad.decode()
    if isinstance(pad, np.ndarray) and pad.dtype.kind in "SU":
        pad = str(pad.reshape(-1)[0])
    if not isinstance(pad, str):
        pad = _pair(pad, "padding", name) if dims == 2 else int(np.asarray(_arr(pad)).reshape(-1)[0])
    stride = _pair(node.stride, "stride", name) if dims == 2 else int(np.asarray(_arr(node.stride)).reshape(-1)[0])
    dil = _pair(node.dilation, "dilation", name) if dims == 2 else int(np.asarray(_arr(node.dilation)).reshape(-1)[0])
    return dict(stride=stride, padding=pad, dilation=dil, groups=int(np.asarray(node.groups).reshape(-1)[0]))


def _pool_args(node, name):
    return dict(kernel_size=_pair(node.kernel_size, "kernel_size", name), stride=_pair(node.stride, "stride", name),
                padding=_pair(node.padding, "padding", name))


def _flatten_dims(node, ndim):
    """NIR Flatten's (start, end) as non-negative axes of a sample of ``ndim`` axes."""
    s, e = int(np.asarray(node.start_dim).reshape(-1)[0]), int(np.asarray(node.end_dim).reshape(-1)[0])
    return s % ndim if ndim else 0, e % ndim if ndim else 0


def _apply(name, node, x, bias):
    """Node ``name`` applied to a float64 batch ``x [K, *shape]`` (``bias=False``: biases left out)."""
    t = _type(node)
    if t in ("_Identity", "Delay"):
        return x
    if t in ("Affine", "Linear"):
        w = _arr(node.weight)
        if w.ndim != 2:
            raise ValueError(f"NIR node {name!r} ({t}): only 2-D weights are supported, got shape {w.shape}")
        if x.shape[1:] != (w.shape[1],):
            raise ValueError(f"NIR node {name!r} ({t}) expects {w.shape[1]} input features, gets shape "
                             f"{x.shape[1:]}")
        y = x @ w.T
        if t == "Affine" and bias:
            y = y + _arr(node.bias).reshape(-1)
        return y
    if t == "Scale":
        return x * _arr(node.scale)
    if t == "Flatten":
        nd = x.ndim - 1
        s, e = _flatten_dims(node, nd)
        return x.reshape(x.shape[:1 + s] + (-1,) + x.shape[2 + e:])
    import torch
    import torch.nn.functional as tf
    xt = torch.as_tensor(x, dtype=torch.float64)
    if t in ("Conv1d", "Conv2d"):
        dims = 1 if t == "Conv1d" else 2
        w = torch.as_tensor(_arr(node.weight))
        b = torch.as_tensor(_arr(node.bias)).reshape(-1) if bias else None
        conv = tf.conv1d if dims == 1 else tf.conv2d
        try:
            return conv(xt, w, b, **_conv_args(node, name, dims)).numpy()
        except RuntimeError as e:
            raise ValueError(f"NIR node {name!r} ({t}) does not accept inputs of shape {x.shape[1:]}: {e}") from None
    if t in ("SumPool2d", "AvgPool2d"):
        a = _pool_args(node, name)
        try:
            return tf.avg_pool2d(xt, divisor_override=1 if t == "SumPool2d" else None, **a).numpy()
        except RuntimeError as e:
            raise ValueError(f"NIR node {name!r} ({t}) does not accept inputs of shape {x.shape[1:]}: {e}") from None
    raise AssertionError(t)  # pragma: no cover


def _delay_of(name, node, shape, dt, time_unit):
    """Per-element delay of a Delay node in steps (int64 array of ``shape``)."""
    d = _arr(node.delay) * time_unit
    try:
        d = np.broadcast_to(d, shape)
    except ValueError:
        raise ValueError(f"NIR node {name!r} (Delay): delay of shape {d.shape} does not fit its input "
                         f"{shape}") from None
    k = np.rint(d / dt)
    if np.any(d < 0) or not np.allclose(k * dt, d, rtol=1e-9, atol=1e-9 * dt):
        raise ValueError(f"NIR node {name!r} (Delay): delays {np.unique(d)[:5]} ms must be >= 0 and multiples of "
                         f"dt={dt} ms (time_unit={time_unit} ms per unit of the graph)")
    return k.astype(np.int64)


# ---------------------------------------------------------------- shapes and the linear maps
def _order(p):
    """Nodes in an order in which every non-neuron node follows its predecessors.

    Edges into neuron nodes may close cycles (recurrence); a cycle through
    affine nodes only has no solution and is refused.
    """
    indeg = {k: 0 for k in p.nodes}
    for a, b in p.edges:
        if _type(p.nodes[b]) not in _NEURONS:
            indeg[b] += 1
    ready = [k for k in p.nodes if indeg[k] == 0]
    seen, order = set(), []
    while ready:
        k = ready.pop(0)
        if k in seen:
            continue
        seen.add(k)
        order.append(k)
        for b in p.succs[k]:
            if _type(p.nodes[b]) not in _NEURONS:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    left = [k for k in p.nodes if k not in seen]
    if left:
        raise ValueError(f"the NIR graph has a cycle through non-neuron nodes {left}; every cycle must pass "
                         "through a neuron node")
    return order


def _shapes(p, order):
    """Output shape (per sample) of every node."""
    shapes = {}
    pending = list(order)
    for _ in range(len(order) + 1):
        left = []
        for k in pending:
            node, t = p.nodes[k], _type(p.nodes[k])
            if t == "Input":
                shapes[k] = _fit_input(p, k, _input_shape(node))
                continue
            known = [shapes[a] for a in p.preds[k] if a in shapes]
            if not known:
                left.append(k)
                continue
            if len(set(known)) != 1:
                raise ValueError(f"NIR node {k!r} ({t}) sums inputs of different shapes {sorted(set(known))}")
            if t in _NEURONS or t == "Output":
                shapes[k] = known[0]
            else:
                shapes[k] = _apply(k, node, np.zeros((1,) + known[0]), True).shape[1:]
        if not left:
            break
        pending = left
    missing = [k for k in order if k not in shapes]
    if missing:
        raise ValueError(f"NIR nodes {missing} are not reached from the Input node")
    for k in order:
        if _type(p.nodes[k]) in _NEURONS:
            want = [a for a in p.preds[k] if shapes[a] != shapes[k]]
            if want:
                raise ValueError(f"NIR node {k!r} sums inputs of different shapes "
                                 f"{sorted({shapes[a] for a in p.preds[k]})}")
    return shapes


def _fit_input(p, k, shape):
    """The Input node's shape, without leading axes that exporters sometimes keep from their sample (batch)."""
    for cut in range(len(shape)):
        cand = tuple(shape[cut:])
        try:
            for b in p.succs[k]:
                if _type(p.nodes[b]) in _WIRES:
                    _apply(b, p.nodes[b], np.zeros((1,) + cand), True)
        except (ValueError, RuntimeError):
            continue
        return cand
    return tuple(shape)


def _emitter(p, k):
    return _type(p.nodes[k]) in _NEURONS + ("Input",)


def _upstream(p, target):
    """Wire nodes between ``target`` and the emitters (Input and neuron nodes) that feed it."""
    wires, emitters, stack = set(), set(), list(p.preds[target])
    while stack:
        k = stack.pop()
        if _emitter(p, k):
            emitters.add(k)
        elif k not in wires:
            wires.add(k)
            stack.extend(p.preds[k])
    return wires, emitters


def _propagate(p, order, shapes, target, wires, inject, bias, delays):
    """Signals reaching ``target``: ``{delay_steps: array [K, *shape]}``.

    ``inject``: ``{emitter: array [K, *shape]}`` (the other emitters send 0);
    ``delays``: per-element steps of every Delay node.
    """
    K = next(iter(inject.values())).shape[0] if inject else 1
    out = {}
    for k in [k for k in order if k in wires] + [target]:
        acc = {}
        for a in p.preds[k]:
            if a in wires:
                sig = out.get(a, {})
            elif a in inject:
                sig = {0: inject[a]}
            else:
                continue
            for d, y in sig.items():
                acc[d] = acc[d] + y if d in acc else y
        if k == target:
            return acc
        node = p.nodes[k]
        if not acc:
            acc = {0: np.zeros((K,) + shapes[p.preds[k][0]])} if bias else {}
        res = {}
        t = _type(node)
        if t == "Delay":
            steps = delays[k]
            for d, y in acc.items():
                for u in np.unique(steps):
                    m = (steps == u)
                    res[d + int(u)] = res.get(d + int(u), 0) + y * m
        elif acc:
            first = True
            for d, y in acc.items():
                res[d] = _apply(k, node, y, bias and first)
                first = False
        out[k] = res
    return {}  # pragma: no cover


class _Synapses(NamedTuple):
    """Connections of one emitter onto one neuron node (flat C-order indices), per delay in steps."""

    pre: str
    delay: int
    pre_idx: np.ndarray
    post_idx: np.ndarray
    w: np.ndarray


def _maps(p, order, shapes, target, delays):
    """``(synapses, bias)`` of the input of ``target``: the affine map from every emitter, read by probing."""
    wires, emitters = _upstream(p, target)
    n_post = int(np.prod(shapes[target]))
    syn = []
    for e in sorted(emitters):
        n_in = int(np.prod(shapes[e]))
        parts = {}
        for i0 in range(0, n_in, PROBE_CHUNK):
            k = min(PROBE_CHUNK, n_in - i0)
            x = np.zeros((k, n_in))
            x[np.arange(k), np.arange(i0, i0 + k)] = 1.0
            sig = _propagate(p, order, shapes, target, wires, {e: x.reshape((k,) + shapes[e])}, False, delays)
            for d, y in sig.items():
                y = np.asarray(y).reshape(k, n_post)
                pre, post = np.nonzero(y)
                parts.setdefault(d, []).append((pre + i0, post, y[pre, post]))
        for d, ps in sorted(parts.items()):
            pre = np.concatenate([q[0] for q in ps])
            post = np.concatenate([q[1] for q in ps])
            w = np.concatenate([q[2] for q in ps])
            if pre.size:
                syn.append(_Synapses(e, int(d), pre, post, w))
    sig = _propagate(p, order, shapes, target, wires, {}, True, delays)
    b = np.zeros(n_post)
    for y in sig.values():
        b = b + np.asarray(y).reshape(-1)
    return syn, b


# ---------------------------------------------------------------- neuron parameters
class _Neuron(NamedTuple):
    """A NIR neuron node in eventsim's terms (times in ms; ``r`` and ``w_in`` flat arrays of the node's size)."""

    kind: str          # LIF, CubaLIF, IF, LI, CubaLI
    tau_m: object      # ms (None for IF), scalar or flat array
    tau_syn: object    # ms or None
    v_leak: object
    v_th: object       # LI_THRESHOLD for LI / CubaLI
    v_reset: object
    r: np.ndarray
    w_in: np.ndarray


def _neuron(name, node, n, time_unit):
    t = type(node).__name__

    def get(attr, default=None):
        v = getattr(node, attr, None)
        if v is None:
            if default is None:
                raise ValueError(f"NIR node {name!r} ({t}) has no {attr}")
            v = default
        a = _arr(v)
        try:
            out = np.broadcast_to(a.reshape(-1) if a.size == n else a, (n,)).astype(np.float64).copy()
        except ValueError:
            raise ValueError(f"NIR node {name!r} ({t}): {attr} has {a.size} values for {n} neurons") from None
        if not np.all(np.isfinite(out)):
            raise ValueError(f"NIR node {name!r} ({t}): {attr} must be finite")
        return out

    def positive(attr, v):
        if np.any(v <= 0):
            raise ValueError(f"NIR node {name!r} ({t}): {attr} must be > 0, got {np.unique(v)[:5]}")
        return v

    r = get("r")
    if t == "IF":
        return _Neuron(t, None, None, 0.0, _uniform(get("v_threshold")), _uniform(get("v_reset", 0.0)), r,
                       np.ones(n))
    tau_m = positive("tau", get("tau" if t in ("LIF", "LI") else "tau_mem") * time_unit)
    tau_syn, w_in = None, np.ones(n)
    if t in ("CubaLIF", "CubaLI"):
        tau_syn = _uniform(positive("tau_syn", get("tau_syn") * time_unit))
        w_in = get("w_in", 1.0)
        positive("r (with a synaptic current)", r)
    if t in ("LI", "CubaLI"):
        v_th, v_reset = LI_THRESHOLD, 0.0
    else:
        v_th, v_reset = _uniform(get("v_threshold")), _uniform(get("v_reset", 0.0))
    return _Neuron(t, _uniform(tau_m), tau_syn, _uniform(get("v_leak")), v_th, v_reset, r, w_in)


def _flat(v, n):
    return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,))


def _sim_gain(nr, n, dt):
    """Weight factor in the simulator: a unit NIR input (one step) becomes a jump of this many mV (pA)."""
    if nr.kind == "IF":
        return _snap(nr.r * dt)
    if nr.tau_syn is None:
        _, p_vi, _, _ = _props(dt, _flat(nr.tau_m, n))
        return _snap(nr.r * p_vi)
    return _snap(nr.w_in * _syn_gain(dt, _flat(nr.tau_m, n), _flat(nr.tau_syn, n)))


def _torch_gain(nr, dt):
    """Factor on the input of the torch layer: ``x = factor * I`` (see the module docstring)."""
    if nr.kind == "IF":
        return _snap(nr.r * dt)
    if nr.tau_syn is None:
        return _snap(nr.r)
    return _snap(nr.r * nr.w_in)


def _sim_model(nr, n, copies, dt):
    def tile(v):
        return v if np.ndim(v) == 0 else np.tile(v, copies)
    common = dict(v_th=tile(nr.v_th), v_reset=tile(nr.v_reset), v_rest=tile(nr.v_leak), t_ref=0.0, i_e=0.0)
    if nr.tau_syn is not None:
        common.update(tau_syn_ex=tile(nr.tau_syn), tau_syn_in=tile(nr.tau_syn))
    if nr.kind == "IF":
        return models.IF(c_m=float(dt), **common)
    c_m = nr.tau_m
    if nr.tau_syn is not None:  # the membrane sees R I: C_m = tau_m / R
        r = _uniform(nr.r)
        c_m = nr.tau_m if np.ndim(r) == 0 and r == 1.0 else _uniform(_flat(nr.tau_m, n) / nr.r)
    return models.LIF(tau_m=tile(nr.tau_m), c_m=tile(c_m), **common)


# =============================================================================================
# from_nir
# =============================================================================================
class NIRNetwork(NamedTuple):
    """What :func:`from_nir` built with ``to="network"`` (``net.nir_import``).

    Attributes
    ----------
    source : SpikeSource
        Input channels ``b * n_in + i`` (copy ``b``, input feature ``i`` in
        C order) followed by one bias channel per population.
    populations : dict of str to Population
        One per NIR neuron node (``LI`` / ``CubaLI`` nodes are neurons that
        never spike), neuron ``b * n + j`` is element ``j`` of copy ``b``.
    offsets : dict of str to int
        ``o_p``: the population computes the graph's step ``t`` in the
        engine update that ends at step ``t + o_p``.
    shapes : dict of str to tuple
        Shape of every neuron node (per sample).
    outputs : dict of str to str
        Output node -> the neuron node that feeds it.
    recorders : dict of str to recorder
        Spike recorder (state recorder of ``v`` for LI/CubaLI) per Output node.
    n_copies : int
        Number of independent copies (the batch size ``B``).
    steps : int
        Number of graph steps ``T`` the source covers.
    """

    source: object
    populations: dict
    offsets: dict
    shapes: dict
    outputs: dict
    recorders: dict
    n_copies: int
    steps: int

    @property
    def run_steps(self):
        """Engine steps to run so that every output covers all ``steps`` steps."""
        return self.steps + max(self.offsets.values(), default=0)

    def spikes(self, output=None):
        """Spikes (or, for an LI/CubaLI output, the membrane) of an Output node, aligned with the graph's steps.

        Parameters
        ----------
        output : str, optional
            Name of an Output node; default the only one.

        Returns
        -------
        ndarray [T, B, *shape] of float64
            Spike counts per step, or the membrane potential (mV) after
            each step for an LI/CubaLI node (NaN for steps not simulated
            yet), with the population's offset ``o_p`` removed, so that
            step ``t`` matches step ``t`` of the torch model.
        """
        if not self.recorders:
            raise RuntimeError("from_nir(..., record=False) made no recorders")
        if output is None:
            if len(self.outputs) != 1:
                raise ValueError(f"the graph has several Output nodes {sorted(self.outputs)}; name one")
            output = next(iter(self.outputs))
        if output not in self.outputs:
            raise ValueError(f"output={output!r} is not an Output node of the graph; got {sorted(self.outputs)}")
        pop_name = self.outputs[output]
        rec = self.recorders[output]
        o, shape = self.offsets[pop_name], self.shapes[pop_name]
        n = int(np.prod(shape))
        T, B = self.steps, self.n_copies
        if hasattr(rec, "values"):
            out = np.full((T, B * n), np.nan)
            t = rec.steps - o
            keep = (t >= 0) & (t < T)
            out[t[keep]] = rec.values[keep]
            return out.reshape((T, B) + tuple(shape))
        out = np.zeros((T, B, n))
        t = rec.steps - o
        b, j = np.divmod(rec.senders, n)
        keep = (t >= 0) & (t < T)
        np.add.at(out, (t[keep], b[keep], j[keep]), 1.0)
        return out.reshape((T, B) + tuple(shape))


def from_nir(graph, dt, to="torch", *, time_unit=1.0, inputs=None, steps=None, seed=0, record=True):
    r"""Build eventsim objects from a NIR graph.

    Parameters
    ----------
    graph : nir.NIRGraph or str or path
        The graph, or a ``.nir`` file (``nir.read``).
    dt : float
        Time step (ms), > 0.  The graph's continuous-time equations are
        integrated exactly over steps of ``dt`` (module docstring).
    to : {"torch", "network"}
        ``"torch"``: an ``nn.Sequential`` of :mod:`eventsim.torch` layers
        and torch modules (input ``[T, B, *input_shape]``); the graph must
        be a chain from Input to Output, where a neuron node may also feed
        itself back through an Affine/Linear node
        (:class:`~eventsim.torch.LIFRecurrent`).  ``"network"``: an
        :class:`eventsim.Network` (any graph whose Output nodes are fed by
        neuron nodes); ``net.nir_import`` is a :class:`NIRNetwork`.
    time_unit : float
        Milliseconds per unit of time of the graph (1 for graphs from
        :func:`to_nir`; 1000 for graphs in seconds, as snnTorch and norse
        write them), > 0.
    inputs : array_like [T, B, *input_shape], optional
        ``to="network"``: input spike counts per step (non-negative
        integers); channel ``b * n_in + i`` replays feature ``i`` of copy
        ``b``.  Without inputs, ``steps`` sets the length and the source
        emits no spikes (add some with ``source.add``).
    steps : int, optional
        ``to="network"``: number of steps ``T`` (default ``inputs.shape[0]``).
    seed : int
        Seed of the Network.
    record : bool
        ``to="network"``: record every Output node.

    Returns
    -------
    nn.Sequential or Network

    Raises
    ------
    ValueError
        Before anything is built, for a node of an unsupported type (naming
        the node, its type and the supported types), parameters eventsim
        cannot express (``v_reset >= v_threshold``, time constants <= 0,
        delays that are not multiples of ``dt``), a graph that does not fit
        the target (``to="torch"`` needs a chain), or bad arguments.
    """
    if isinstance(graph, (str, bytes)) or hasattr(graph, "__fspath__"):
        graph = _nir().read(graph)
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.floating, np.integer)) or not math.isfinite(dt) \
            or dt <= 0:
        raise ValueError(f"dt={dt!r} must be a finite number > 0 (ms)")
    if isinstance(time_unit, bool) or not isinstance(time_unit, (int, float, np.floating, np.integer)) \
            or not math.isfinite(time_unit) or time_unit <= 0:
        raise ValueError(f"time_unit={time_unit!r} must be a finite number > 0 (ms per unit of the graph)")
    if to not in ("torch", "network"):
        raise ValueError(f"to={to!r} must be 'torch' or 'network'")
    dt, time_unit = float(dt), float(time_unit)
    if to == "torch" and (inputs is not None or steps is not None):
        raise ValueError("inputs and steps are arguments of to='network'; call the torch model on the inputs")
    p = _parse(graph)
    order = _order(p)
    shapes = _shapes(p, order)
    delays = {k: _delay_of(k, p.nodes[k], shapes[p.preds[k][0]], dt, time_unit)
              for k in order if _type(p.nodes[k]) == "Delay" and p.preds[k]}
    neurons = {k: _neuron(k, p.nodes[k], int(np.prod(shapes[k])), time_unit)
               for k in order if _type(p.nodes[k]) in _NEURONS}
    for k, nr in neurons.items():  # the simulator's and the torch layer's own checks, before building
        if nr.kind not in ("LI", "CubaLI") and np.any(np.asarray(nr.v_reset) >= np.asarray(nr.v_th)):
            raise ValueError(f"NIR node {k!r} ({nr.kind}): v_reset={nr.v_reset!r} must be < v_threshold="
                             f"{nr.v_th!r}")
    if to == "torch":
        return _to_torch(p, order, shapes, neurons, dt, delays)
    return _to_network(p, order, shapes, neurons, dt, delays, inputs, steps, seed, record)


# ---------------------------------------------------------------- to="network"
def _to_network(p, order, shapes, neurons, dt, delays, inputs, steps, seed, record):
    from .network import Network

    inp_name = p.inputs[0]
    in_shape = shapes[inp_name]
    n_in = int(np.prod(in_shape))
    # ---- outputs: fed by a neuron node through identities only
    outputs = {}
    for o in p.outputs:
        k = o
        while True:
            pr = p.preds[k]
            if len(pr) != 1:
                raise ValueError(f"Output node {o!r} must be fed by one neuron node, got {pr}")
            k = pr[0]
            if _type(p.nodes[k]) in _NEURONS:
                break
            if _type(p.nodes[k]) != "_Identity":
                raise ValueError(f"Output node {o!r} is fed by {k!r} ({_type(p.nodes[k])}); the simulator records "
                                 "neurons: to='network' needs every Output fed by a neuron node")
        outputs[o] = k
    # ---- input spikes
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1):
        raise ValueError(f"steps={steps!r} must be an integer >= 1")
    if inputs is not None:
        if hasattr(inputs, "detach"):
            inputs = inputs.detach().cpu().numpy()
        inp = np.asarray(inputs, dtype=np.float64)
        if inp.ndim < 2 or inp.shape[2:] != tuple(in_shape) or inp.shape[0] < 1 or inp.shape[1] < 1:
            raise ValueError(f"inputs must have shape [T, B, {', '.join(map(str, in_shape))}] with T, B >= 1, "
                             f"got {inp.shape}")
        inp = inp.reshape(inp.shape[0], inp.shape[1], n_in)
        if not np.all(np.isfinite(inp)) or np.any(inp < 0) or np.any(inp != np.round(inp)):
            raise ValueError("inputs must hold finite, non-negative integer spike counts")
        T, B = inp.shape[:2]
        if steps is not None and steps != T:
            raise ValueError(f"steps={steps} does not match inputs with T={T}")
    else:
        if steps is None:
            raise ValueError("pass inputs or steps")
        T, B = int(steps), 1
        inp = np.zeros((T, 1, n_in))
    # ---- connections (read before anything is built) and offsets
    maps = {k: _maps(p, order, shapes, k, delays) for k in neurons}
    # longest hop count from the input on the graph without cycles
    depth = {inp_name: 0}
    for k in _topo_neurons(p, neurons, maps, inp_name):
        ins = [depth[s.pre] + 1 for s in maps[k][0] if s.pre in depth]
        depth[k] = max(ins, default=1)
    offsets = {k: depth.get(k, 1) for k in neurons}
    sim_models = {k: _sim_model(nr, int(np.prod(shapes[k])), B, dt) for k, nr in neurons.items()}
    gains = {k: _sim_gain(nr, int(np.prod(shapes[k])), dt) for k, nr in neurons.items()}
    # ---- build
    net = Network(dt=dt, seed=seed)
    pops = {}
    for k, nr in neurons.items():
        n = int(np.prod(shapes[k]))
        v0 = nr.v_leak if np.ndim(nr.v_leak) == 0 else np.tile(nr.v_leak, B)
        pops[k] = net.population(n * B, sim_models[k], v_init=v0, label=k)
    bias_keys = [k for k in neurons if np.any(maps[k][1] != 0)]
    t_idx, b_idx, i_idx = np.nonzero(inp)
    counts = inp[t_idx, b_idx, i_idx].astype(np.int64)
    senders = [np.repeat(b_idx * n_in + i_idx, counts)]
    times = [np.repeat(t_idx, counts)]
    for c, k in enumerate(bias_keys):
        senders.append(np.full(T, B * n_in + c))
        times.append(np.arange(T) + offsets[k] - 1)
    senders = np.concatenate(senders).astype(np.int64)
    st = np.concatenate(times).astype(np.int64)
    order_s = np.lexsort((senders, st))
    src = net.spike_source(senders=senders[order_s], times=st[order_s] * dt, n=B * n_in + len(bias_keys))
    copies = np.arange(B)[:, None]
    for k in neurons:
        syn, bias = maps[k]
        n_post = int(np.prod(shapes[k]))
        gain = np.broadcast_to(gains[k], (n_post,))
        for s in syn:
            w = gain[s.post_idx] * s.w
            keep = w != 0
            pre_i, post_i, w = s.pre_idx[keep], s.post_idx[keep], w[keep]
            if not w.size:
                continue
            n_pre = int(np.prod(shapes[s.pre]))
            pre_group = src[:B * n_in] if s.pre == inp_name else pops[s.pre]
            net.connect(pre_group, pops[k], rule=FromArrays(pre=(copies * n_pre + pre_i[None]).reshape(-1),
                                                            post=(copies * n_post + post_i[None]).reshape(-1)),
                        weight=np.tile(w, B), delay=np.full(w.size * B, (1 + s.delay) * dt))
        if k in bias_keys:
            bg = gain * bias
            nz = np.nonzero(bg)[0]
            c = B * n_in + bias_keys.index(k)
            post_b = (copies * n_post + nz[None]).reshape(-1)
            net.connect(src[c:c + 1], pops[k], rule=FromArrays(pre=np.zeros(post_b.size, np.int64), post=post_b),
                        weight=np.tile(bg[nz], B), delay=np.full(post_b.size, dt))
    recs = {}
    if record:
        for o, k in outputs.items():
            recs[o] = net.record_state(pops[k], "v") if neurons[k].kind in ("LI", "CubaLI") \
                else net.record_spikes(pops[k])
    info = NIRNetwork(src, pops, offsets, {k: tuple(shapes[k]) for k in neurons}, outputs, recs, B, T)
    # Network refuses unknown attributes (a misspelt one is an error); this one is the importer's own record
    object.__setattr__(net, "nir_import", info)
    return net


def _topo_neurons(p, neurons, maps, inp_name):
    """Neuron nodes in an order where each follows its non-recurrent emitters (DFS from the input)."""
    succ = {k: [] for k in list(neurons) + [inp_name]}
    for k in neurons:
        for s in maps[k][0]:
            succ[s.pre].append(k)
    seen, out = set(), []

    def visit(k):  # depth first; the reversed finishing order puts every node after its forward predecessors
        seen.add(k)
        for b in succ[k]:
            if b not in seen:
                visit(b)
        out.append(k)
    visit(inp_name)
    for k in neurons:
        if k not in seen:
            visit(k)
    # an edge from a node later in this order closes a cycle (recurrence): the depth pass ignores it
    return [k for k in reversed(out) if k != inp_name]


# ---------------------------------------------------------------- to="torch"
def _chain(p):
    """The graph as node names from Input to Output, plus ``{neuron: wire}`` for a neuron fed back onto itself."""
    def loop_wire(k):
        w = [a for a in p.succs[k] if p.preds[a] == [k] and p.succs[a] == [k] and _type(p.nodes[a]) in _WIRES]
        return w[0] if len(w) == 1 and _type(p.nodes[k]) in _NEURONS else None

    def refuse(k, what):
        raise ValueError(f"to='torch' needs a chain of nodes from Input to Output; node {k!r} "
                         f"({_type(p.nodes[k])}) {what} (use to='network' for other graphs)")

    loops, seq, k = {}, [p.inputs[0]], p.inputs[0]
    while _type(p.nodes[k]) != "Output":
        nxt = list(p.succs[k])
        w = loop_wire(k)
        if w is not None:
            loops[k] = w
            nxt.remove(w)
        if len(nxt) != 1:
            refuse(k, f"feeds {p.succs[k]}")
        b = nxt[0]
        if b in seq:
            refuse(b, "closes a cycle through several nodes")
        w_b = loop_wire(b)
        if sorted(p.preds[b]) != sorted([k] + ([w_b] if w_b is not None else [])):
            refuse(b, f"has inputs {p.preds[b]}")
        seq.append(b)
        k = b
    off = [a for a in p.nodes if a not in seq and a not in loops.values()]
    if off:
        raise ValueError(f"to='torch' needs a chain of nodes from Input to Output; nodes {off} are off the chain "
                         "(use to='network' for other graphs)")
    return seq, loops


def _torch_modules():
    """Torch modules of the importer (defined on first use: importing eventsim.nir does not import torch)."""
    global _MODS
    if _MODS is not None:
        return _MODS
    import torch
    from torch import nn

    class Scale(nn.Module):
        """Multiply the features of ``x [T, B, ...]`` by a fixed factor per feature."""

        def __init__(self, scale):
            super().__init__()
            self.register_buffer("scale", torch.as_tensor(np.array(scale), dtype=torch.get_default_dtype()))

        def forward(self, x):
            return x * self.scale.to(x.dtype)

    class Delay(nn.Module):
        """Shift ``x [T, B, ...]`` by a fixed number of steps per feature (zeros before the start)."""

        def __init__(self, steps):
            super().__init__()
            self.register_buffer("steps", torch.as_tensor(np.array(steps, dtype=np.int64)))

        def forward(self, x):
            out = torch.zeros_like(x)
            shape = x.shape[2:]
            st = self.steps.expand(shape) if self.steps.dim() else self.steps.expand(shape)
            for u in torch.unique(st).tolist():
                m = (st == u).to(x.dtype)
                if u == 0:
                    out = out + x * m
                elif u < x.shape[0]:
                    out = out + torch.cat([torch.zeros_like(x[:u]), x[:-u]]) * m
            return out

    class Membrane(nn.Module):
        """A never-spiking eventsim layer that returns its membrane potential (mV): NIR's LI / CubaLI."""

        def __init__(self, layer):
            super().__init__()
            self.layer = layer

        def forward(self, x):
            _, v = self.layer(x, return_v=True)
            return v

    _MODS = {"Scale": Scale, "Delay": Delay, "Membrane": Membrane}
    return _MODS


_MODS = None


def _scaled(mods, gain, shape):
    """Fold ``gain`` (per neuron) into the last affine module of ``mods`` or append a Scale module."""
    import torch
    from torch import nn

    from .torch import TimeDistributed

    if np.all(gain == 1.0):
        return
    last = mods[-1] if mods else None
    inner = last.module if isinstance(last, TimeDistributed) else last
    with torch.no_grad():
        if isinstance(inner, nn.Linear):
            g = torch.as_tensor(np.array(gain), dtype=inner.weight.dtype)
            inner.weight.mul_(g[:, None])
            if inner.bias is not None:
                inner.bias.mul_(g)
            return
        if isinstance(inner, (nn.Conv1d, nn.Conv2d)):
            gg = np.asarray(gain).reshape(shape)
            per_c = gg.reshape(gg.shape[0], -1)
            if np.all(per_c == per_c[:, :1]):
                g = torch.as_tensor(per_c[:, 0], dtype=inner.weight.dtype)
                inner.weight.mul_(g.reshape((-1,) + (1,) * (inner.weight.dim() - 1)))
                if inner.bias is not None:
                    inner.bias.mul_(g)
                return
    mods.append(_torch_modules()["Scale"](np.asarray(gain).reshape(shape)))


def _to_torch(p, order, shapes, neurons, dt, delays):
    import torch
    from torch import nn

    from . import torch as est

    seq, loops = _chain(p)
    mods = []
    dtype = torch.get_default_dtype()

    def tensor(a):
        return torch.as_tensor(np.asarray(a), dtype=dtype)

    for k in seq:
        node, t = p.nodes[k], _type(p.nodes[k])
        prev_shape = shapes[p.preds[k][0]] if p.preds[k] else None
        if t in ("Input", "Output", "_Identity"):
            continue
        if t in ("Affine", "Linear"):
            w = _arr(node.weight)
            if w.ndim != 2:
                raise ValueError(f"NIR node {k!r} ({t}): only 2-D weights are supported, got shape {w.shape}")
            m = nn.Linear(w.shape[1], w.shape[0], bias=t == "Affine")
            with torch.no_grad():
                m.weight.copy_(tensor(w))
                if t == "Affine":
                    m.bias.copy_(tensor(_arr(node.bias).reshape(-1)))
            mods.append(m)
        elif t == "Scale":
            mods.append(_torch_modules()["Scale"](_arr(node.scale)))
        elif t in ("Conv1d", "Conv2d"):
            w = _arr(node.weight)
            a = _conv_args(node, k, 1 if t == "Conv1d" else 2)
            cls = nn.Conv1d if t == "Conv1d" else nn.Conv2d
            m = cls(w.shape[1] * a["groups"], w.shape[0], tuple(w.shape[2:]), **a)
            with torch.no_grad():
                m.weight.copy_(tensor(w))
                m.bias.copy_(tensor(_arr(node.bias).reshape(-1)))
            mods.append(est.TimeDistributed(m))
        elif t == "Flatten":
            s, e = _flatten_dims(node, len(prev_shape))
            mods.append(est.TimeDistributed(nn.Flatten(s + 1, e + 1)))
        elif t in ("SumPool2d", "AvgPool2d"):
            mods.append(est.TimeDistributed(nn.AvgPool2d(divisor_override=1 if t == "SumPool2d" else None,
                                                         **_pool_args(node, k))))
        elif t == "Delay":
            mods.append(_torch_modules()["Delay"](delays[k]))
        else:
            nr = neurons[k]
            shape = shapes[k]
            n = int(np.prod(shape))
            kw = dict(v_th=nr.v_th, v_reset=nr.v_reset, dt=dt, return_state=False)
            if nr.kind != "IF":
                kw["v_rest"] = nr.v_leak
            if nr.tau_syn is not None:
                kw["tau_syn"] = nr.tau_syn
            gain = np.broadcast_to(_torch_gain(nr, dt), (n,))
            if k in loops:
                wire = p.nodes[loops[k]]
                wt = _type(wire)
                if wt not in ("Affine", "Linear"):
                    raise ValueError(f"to='torch': the recurrent node {loops[k]!r} of {k!r} is {wt}; only Affine "
                                     "or Linear recurrence is supported")
                w_rec = _arr(wire.weight)
                if len(shape) != 1:
                    raise ValueError(f"to='torch': recurrent node {k!r} must be 1-D, got shape {shape}")
                b_rec = _arr(wire.bias).reshape(-1) if wt == "Affine" else np.zeros(n)
                if np.any(b_rec != 0):  # a constant input: it joins the bias of the Linear in front
                    if not mods or not isinstance(mods[-1], nn.Linear):
                        raise ValueError(f"to='torch': the recurrent Affine node {loops[k]!r} has a bias and "
                                         f"{k!r} is not fed by an Affine or Linear node; use to='network'")
                    lin = mods[-1]
                    if lin.bias is None:
                        new = nn.Linear(lin.in_features, lin.out_features)
                        with torch.no_grad():
                            new.weight.copy_(lin.weight)
                            new.bias.zero_()
                        mods[-1] = lin = new
                    with torch.no_grad():
                        lin.bias.add_(tensor(b_rec))
                _scaled(mods, gain, shape)
                layer = est.LIFRecurrent(n, n, tau_m=nr.tau_m, autapses=True, **kw)
                with torch.no_grad():
                    layer.input_weights.copy_(torch.eye(n, dtype=layer.input_weights.dtype))
                    layer.recurrent_weights.copy_(tensor(gain[:, None] * w_rec))
                mods.append(layer)
                continue
            _scaled(mods, gain, shape)
            layer = est.IF(**kw) if nr.kind == "IF" else est.LIF(tau_m=nr.tau_m, **kw)
            if nr.kind in ("LI", "CubaLI"):
                layer = _torch_modules()["Membrane"](layer)
            mods.append(layer)
    return nn.Sequential(*mods)


def _make(cls, **kw):
    """``cls(**kw)``, leaving out a zero ``v_reset`` for nir versions without the field (nir < 1.0.5)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    if "v_reset" in kw and "v_reset" not in names:
        if np.any(np.asarray(kw["v_reset"]) != 0):
            raise ValueError(f"the installed nir package's {cls.__name__} has no v_reset (it resets to 0); "
                             "upgrade nir to store v_reset != 0")
        del kw["v_reset"]
    return cls(**kw)


# =============================================================================================
# to_nir
# =============================================================================================
def to_nir(obj, input_shape=None, dt=None):
    r"""Export an eventsim torch stack or a Network as a ``nir.NIRGraph``.

    Parameters
    ----------
    obj : nn.Module or Network
        An ``nn.Sequential`` (nested ones allowed) of ``nn.Linear``,
        ``nn.Conv1d``/``nn.Conv2d``, ``nn.Flatten``, ``nn.AvgPool2d``
        (``divisor_override=1``: SumPool2d), ``nn.Identity``, ``nn.Dropout``
        (eval mode), each bare or in :class:`~eventsim.torch.TimeDistributed`,
        and :class:`~eventsim.torch.LIF`, :class:`~eventsim.torch.IF`,
        :class:`~eventsim.torch.LIFRecurrent` layers (exact integrator,
        ``reset="value"``, ``t_ref=0``; ``LIF`` with or without
        ``tau_syn``); or a Network of :class:`eventsim.LIF` / :class:`eventsim.IF`
        populations (``t_ref=0``, ``reset="value"``, no ``v_min``, equal
        ``tau_syn_ex`` and ``tau_syn_in``), spike sources and projections.
    input_shape : tuple of int, optional
        Torch: feature shape of the input when the model does not start with
        ``nn.Linear`` or ``LIFRecurrent`` (e.g. ``(1, 8, 8)`` for a
        convolution).
    dt : float, optional
        Torch: the step (ms) written in the metadata; default the layers' ``dt``.

    Returns
    -------
    nir.NIRGraph
        Time constants and delays in ms (``metadata["time_unit"] = "ms"``,
        ``metadata["dt"]`` the step in ms).  See the module docstring for
        the parameter mapping.  A Network becomes one neuron node per
        population (named by its label, else ``pop_<i>``), one ``Linear``
        node per (source, target, delay) with the summed weights (mV or pA),
        preceded by a ``Delay`` node for delays above one step, and one
        ``Output`` per population.  NIR has no initial state: ``v_init`` is
        not exported (an imported network starts at ``v_leak``), nor is
        ``i_e`` as such (it shifts ``v_leak`` by ``R i_e``).

    Raises
    ------
    ValueError
        For a module, layer option, neuron model or source that NIR cannot
        express, naming it.
    """
    from .network import Network

    if isinstance(obj, Network):
        return _network_to_nir(obj)
    try:
        import torch  # noqa: F401
    except ImportError:  # pragma: no cover
        raise TypeError(f"obj must be an eventsim.torch model or a Network, got {type(obj).__name__}") from None
    from torch import nn
    if not isinstance(obj, nn.Module):
        raise TypeError(f"obj must be an eventsim.torch model (nn.Sequential) or a Network, got {type(obj).__name__}")
    return _torch_to_nir(obj, input_shape, dt)


def _torch_to_nir(model, input_shape, dt):
    import torch
    from torch import nn

    from .torch import IF, LIF, LIFRecurrent, TimeDistributed
    from .torch.export import _first_shape, _stack

    nir = _nir()
    groups = _stack(model)
    for g in groups:
        neu = g.neuron
        name = type(neu).__name__
        if type(neu) not in (LIF, IF, LIFRecurrent) or neu._adaptive:
            raise ValueError(f"to_nir cannot export {name} (threshold adaptation has no NIR node); supported: "
                             "LIF, IF, LIFRecurrent")
        if neu.reset != "value":
            raise ValueError(f"to_nir cannot export {name} with reset={neu.reset!r}: NIR resets to v_reset "
                             "(use reset='value')")
        if neu.t_ref:
            raise ValueError(f"to_nir cannot export {name} with t_ref={neu.t_ref} ms: NIR neurons have no "
                             "refractory period")
        if isinstance(neu, IF) and neu.tau_syn is not None:
            raise ValueError("to_nir cannot export IF with tau_syn: NIR has no current-based IF node")
    dts = {g.neuron.dt for g in groups}
    if dt is None:
        if len(dts) != 1:
            raise ValueError(f"the layers use different dt {sorted(dts)}; pass dt")
        dt = dts.pop()
    shape = _first_shape(groups[0])
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
    if shape is None:
        raise ValueError("the model's input features are unknown: pass input_shape, e.g. (1, 8, 8)")
    nodes = {"input": nir.Input(input_type=np.array(shape))}
    edges = []
    last = "input"
    count = [0]

    def add(kind, node):
        nonlocal last
        name = f"{kind}_{count[0]}"
        count[0] += 1
        nodes[name] = node
        edges.append((last, name))
        last = name
        return name

    def f64(t):
        return t.detach().to("cpu", torch.float64).numpy()

    for g in groups:
        for m in g.affine:
            inner, wrapped = (m.module, True) if isinstance(m, TimeDistributed) else (m, False)
            subs = list(inner) if isinstance(inner, nn.Sequential) else [inner]
            for s in subs:
                if isinstance(s, (nn.Identity, nn.Dropout)):
                    continue
                if isinstance(s, nn.Linear):
                    w = f64(s.weight)
                    add("affine" if s.bias is not None else "linear",
                        nir.Affine(w, f64(s.bias)) if s.bias is not None else nir.Linear(w))
                    shape = (w.shape[0],)
                elif isinstance(s, (nn.Conv1d, nn.Conv2d)):
                    two = isinstance(s, nn.Conv2d)
                    if s.padding_mode != "zeros":
                        raise ValueError(f"to_nir cannot export {type(s).__name__} with padding_mode="
                                         f"{s.padding_mode!r}; NIR pads with zeros")
                    bias = f64(s.bias) if s.bias is not None else np.zeros(s.out_channels)
                    pad = s.padding if isinstance(s.padding, str) else (tuple(s.padding) if two else s.padding[0])
                    args = dict(weight=f64(s.weight), stride=tuple(s.stride) if two else s.stride[0], padding=pad,
                                dilation=tuple(s.dilation) if two else s.dilation[0], groups=s.groups, bias=bias)
                    node = nir.Conv2d(input_shape=tuple(shape[1:]), **args) if two else \
                        nir.Conv1d(input_shape=int(shape[1]), **args)
                    add("conv", node)
                    with torch.no_grad():
                        y = s.to(torch.float64)(torch.zeros((1,) + tuple(shape), dtype=torch.float64))
                    shape = tuple(y.shape[1:])
                elif isinstance(s, nn.Flatten):
                    off = 1 if wrapped else 2
                    sd, ed = s.start_dim, s.end_dim
                    nd = len(shape)
                    sd = sd - off if sd >= 0 else sd + nd
                    ed = ed - off if ed >= 0 else ed + nd
                    if not (0 <= sd <= nd - 1 and 0 <= ed <= nd - 1):
                        raise ValueError(f"to_nir cannot export {s} on features of shape {shape}: it would flatten "
                                         "the time or batch axis")
                    add("flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=sd, end_dim=ed))
                    shape = shape[:sd] + (int(np.prod(shape[sd:ed + 1])),) + shape[ed + 1:]
                elif isinstance(s, nn.AvgPool2d):
                    if s.ceil_mode:
                        raise ValueError("to_nir cannot export AvgPool2d with ceil_mode=True")
                    pad = tuple(np.broadcast_to(s.padding, (2,)).tolist())
                    if any(pad) and not s.count_include_pad and s.divisor_override is None:
                        raise ValueError("to_nir cannot export AvgPool2d with padding and count_include_pad=False")
                    if s.divisor_override not in (None, 1):
                        raise ValueError(f"to_nir cannot export AvgPool2d with divisor_override="
                                         f"{s.divisor_override} (1: SumPool2d)")
                    k = tuple(np.broadcast_to(s.kernel_size, (2,)).tolist())
                    st = tuple(np.broadcast_to(s.stride if s.stride is not None else s.kernel_size, (2,)).tolist())
                    cls = nir.SumPool2d if s.divisor_override == 1 else nir.AvgPool2d
                    add("sumpool" if s.divisor_override == 1 else "avgpool",
                        cls(kernel_size=np.array(k), stride=np.array(st), padding=np.array(pad)))
                    with torch.no_grad():
                        y = s(torch.zeros((1,) + tuple(shape), dtype=torch.float64))
                    shape = tuple(y.shape[1:])
                else:
                    raise ValueError(f"to_nir cannot export {type(s).__name__}; supported modules: nn.Linear, "
                                     "nn.Conv1d, nn.Conv2d, nn.Flatten, nn.AvgPool2d, nn.Identity, nn.Dropout "
                                     "(bare or in TimeDistributed) and eventsim.torch LIF, IF, LIFRecurrent")
        neu = g.neuron
        if isinstance(neu, LIFRecurrent):
            w_in = f64(neu.input_weights)
            add("linear", nir.Linear(w_in))
            shape = (neu.hidden_size,)
        n = int(np.prod(shape))

        def per(name):
            return np.broadcast_to(f64(getattr(neu, name)).reshape(-1), (n,)).reshape(shape).copy()
        ones = np.ones(shape)
        if isinstance(neu, IF):
            node = _make(nir.IF, r=ones / neu.dt, v_threshold=per("v_th"), v_reset=per("v_reset"))
        elif neu.tau_syn is None:
            node = _make(nir.LIF, tau=per("tau_m"), r=ones, v_leak=per("v_rest"), v_threshold=per("v_th"),
                           v_reset=per("v_reset"))
        else:
            node = _make(nir.CubaLIF, tau_syn=per("tau_syn"), tau_mem=per("tau_m"), r=ones, v_leak=per("v_rest"),
                               v_threshold=per("v_th"), v_reset=per("v_reset"), w_in=ones)
        kind = "if" if isinstance(neu, IF) else ("lif" if neu.tau_syn is None else "cubalif")
        me = add(kind, node)
        if isinstance(neu, LIFRecurrent):
            w = f64(neu.recurrent_weights * neu.autapse_mask)
            rec = f"recurrent_{count[0]}"
            count[0] += 1
            nodes[rec] = nir.Linear(w)
            edges.extend([(me, rec), (rec, me)])
    nodes["output"] = nir.Output(output_type=np.array(shape))
    edges.append((last, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": float(dt), "time_unit": "ms",
                                                            "source": "eventsim"})


def _network_to_nir(net):
    nir = _nir()
    from .network import SpikeSource

    dt = net.dt
    if net.engine != "clock":
        raise ValueError("to_nir exports clock-engine networks (delays on the grid); got engine='event'")
    nodes, edges = {}, []
    names = {}
    for i, pop in enumerate(net.populations):
        m = pop.model
        kind = type(m).__name__
        if kind not in ("LIF", "IF"):
            raise ValueError(f"to_nir cannot export population {i} of {kind}: NIR has LIF, CubaLIF and IF only")
        if m.synapse == "alpha":
            raise ValueError(f"to_nir cannot export population {i} ({kind}, psc='alpha'): NIR has no alpha-shaped "
                             "current synapse")
        if m.reset != "value" or m.v_min is not None or np.any(np.asarray(m.t_ref) != 0):
            raise ValueError(f"to_nir cannot export population {i} ({kind}): NIR neurons have no refractory period "
                             f"(t_ref={m.t_ref!r}), no v_min and reset to v_reset (reset={m.reset!r})")
        n = pop.n

        def b(v):
            return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy()
        tau_m = b(m.tau_m) if kind == "LIF" else None
        c_m = b(m.c_m)
        if m.synapse == "exp":
            if np.any(b(m.tau_syn_ex) != b(m.tau_syn_in)):
                raise ValueError(f"to_nir cannot export population {i}: tau_syn_ex != tau_syn_in (NIR's CubaLIF "
                                 "has one synaptic time constant)")
            if kind == "IF":
                raise ValueError(f"to_nir cannot export population {i}: IF with current synapses has no NIR node")
            r = tau_m / c_m
            node = _make(nir.CubaLIF, tau_syn=b(m.tau_syn_ex), tau_mem=tau_m, r=r, v_leak=b(m.v_rest) + r * b(m.i_e),
                               v_threshold=b(m.v_th), v_reset=b(m.v_reset),
                               w_in=1.0 / _syn_gain(dt, tau_m, b(m.tau_syn_ex)))
        elif kind == "IF":
            if np.any(b(m.i_e) != 0):
                raise ValueError(f"to_nir cannot export population {i}: IF with i_e != 0 (NIR's IF has no bias)")
            node = _make(nir.IF, r=np.full(n, 1.0 / dt), v_threshold=b(m.v_th), v_reset=b(m.v_reset))
        else:
            _, p_vi, _, _ = _props(dt, tau_m)
            node = _make(nir.LIF, tau=tau_m, r=1.0 / p_vi, v_leak=b(m.v_rest) + (tau_m / c_m) * b(m.i_e),
                           v_threshold=b(m.v_th), v_reset=b(m.v_reset))
        name = pop.label if isinstance(pop.label, str) and pop.label and pop.label not in nodes else f"pop_{i}"
        names[i] = name
        nodes[name] = node
    # sources
    src_names = {}
    offsets = []
    for j, s in enumerate(net.sources):
        if not isinstance(s, SpikeSource):
            raise ValueError(f"to_nir cannot export source {j} ({type(s).__name__}): NIR graphs have one Input; "
                             "replace Poisson sources by a spike_source with drawn times")
        offsets.append(s.ids[0])
    if len(net.sources) > 1:
        raise ValueError("to_nir exports networks with at most one spike source (NIR's single Input node)")
    if net.dc_sources:
        raise ValueError("to_nir cannot export DC sources: NIR has no current sources (use i_e or a bias)")
    if net.sources:
        nodes["input"] = nir.Input(input_type=np.array([len(net.sources[0])]))
        src_names[0] = "input"
    pop_of = np.concatenate([np.full(p.n, i) for i, p in enumerate(net.populations)]) if net.populations else \
        np.zeros(0, np.int64)
    starts = np.array([p.offset for p in net.populations], dtype=np.int64)
    mats = {}
    for proj in net.projections:
        if proj.source.kind == "dc":  # pragma: no cover - refused above
            continue
        post_g = proj.target.ids[np.asarray(proj.post, dtype=np.int64)]
        post_p = pop_of[post_g]
        if proj.source.kind == "source":
            pre_l = proj.source.ids[np.asarray(proj.pre, dtype=np.int64)] - net.sources[0].ids[0]
            pre_p = np.full(pre_l.size, -1)
        else:
            pre_g = proj.source.ids[np.asarray(proj.pre, dtype=np.int64)]
            pre_p = pop_of[pre_g]
            pre_l = pre_g - starts[pre_p]
        d = np.asarray(proj.delay_steps, dtype=np.int64)
        w = np.asarray(proj.weight, dtype=np.float64)
        post_l = post_g - starts[post_p]
        for key in set(zip(pre_p.tolist(), post_p.tolist(), d.tolist())):
            a, bb, dd = key
            sel = (pre_p == a) & (post_p == bb) & (d == dd)
            n_pre = len(net.sources[0]) if a == -1 else net.populations[a].n
            W = mats.setdefault(key, np.zeros((net.populations[bb].n, n_pre)))
            np.add.at(W, (post_l[sel], pre_l[sel]), w[sel])
    for (a, bb, dd), W in sorted(mats.items()):
        pre_name = "input" if a == -1 else names[a]
        tag = f"{pre_name}_to_{names[bb]}_d{dd}"
        last = pre_name
        if dd > 1:
            nodes["delay_" + tag] = nir.Delay(delay=np.full(W.shape[1], (dd - 1) * dt))
            edges.append((last, "delay_" + tag))
            last = "delay_" + tag
        nodes["w_" + tag] = nir.Linear(W)
        edges.append((last, "w_" + tag))
        edges.append(("w_" + tag, names[bb]))
    for i, name in names.items():
        o = "output" if len(names) == 1 else f"output_{name}"
        nodes[o] = nir.Output(output_type=np.array([net.populations[i].n]))
        edges.append((name, o))
    if "input" not in nodes:
        raise ValueError("to_nir needs a spike source (the graph's Input node)")
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": float(dt), "time_unit": "ms",
                                                            "source": "eventsim"})
