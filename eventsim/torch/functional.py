r"""Functional core of the torch bridge: fused autograd Functions over whole sequences.

:func:`neuron_layer` runs all ``T`` steps of a layer of point neurons in one
fused Numba kernel (CPU: zero-copy NumPy views; CUDA: ``numba.cuda``
arrays on torch's current stream) and differentiates them with a second
fused kernel running the reverse-time recurrence.  :func:`recurrent_layer`
does the same for a layer whose input at step ``t`` also contains
``W_rec z[t-1]``.  :func:`coefficients` turns physical parameters into the
per-neuron coefficient rows both kernels read.

Every layer is set up the same way: :func:`layer_rows` builds its rows
from the declaration of its family (``family.torch`` of
:mod:`eventsim.models`; the rows of these point-neuron layers are
:func:`eventsim.models.lif.torch_coefficients`) and :func:`run_layer` runs
them on the kernels that declaration names (:func:`neuron_layer` /
:func:`recurrent_layer`, or :func:`family_layer` for a family with its own
scalar steps), each launched through :func:`run_kernel`.

Integrators
-----------
``"exact"`` (default; the simulator's dynamics, NEST order)
    With delta synapses (``tau_syn=None``) the input ``x[t]`` is a current
    held constant over step ``t`` (scaled so that a constant ``x`` settles
    at :math:`v = v_{rest} + x`), integrated exactly:

    .. math:: v^-_t = v_{rest} + P_{vv}(v_{t-1} - v_{rest}) + P_{vi} x_t,\quad
              P_{vv} = e^{-h/\tau_m},\ P_{vi} = 1 - P_{vv}

    (``IF``: :math:`P_{vv} = P_{vi} = 1`, i.e. ``v += x``).  With current
    synapses the step is that of NEST's ``iaf_psc_exp``:

    .. math:: v^-_t = v_{rest} + P_{vv}(v_{t-1} - v_{rest}) + P_{vs} I_{t-1},\quad
              I_t = P_{ss} I_{t-1} + g\,x_t

    with :math:`g = P_{vi}(1 - P_{ss})/P_{vs}` so that again a constant
    ``x`` settles at :math:`v = v_{rest} + x`; the input of step ``t``
    reaches the membrane from step ``t+1`` on.  Then the threshold
    :math:`v^-_t \ge \vartheta`, the reset (``v_reset``, or subtraction of
    :math:`\vartheta - v_{rest}`) and ``t_ref`` refractory steps during
    which ``v`` is held (and delta input is discarded), as in the clock
    engine.
``"euler"`` — norse ``LIFBoxCell`` (delta) and ``LIFCell`` (``tau_syn``)
    ``v += dt/tau_m * ((x + v_leak) - v)``; with a current
    ``j = i + x; v += dt/tau_m ((v_leak - v) + j); i = j - dt/tau_syn j``;
    spike ``v > v_th``; norse's float32 arithmetic, bit for bit, with
    ``tau_m = 1000 / tau_mem_inv`` and ``dt`` in ms.
``"snntorch"`` — snnTorch ``Leaky``
    ``mem = beta mem + x - thr H(mem_prev - thr)`` (detached, delayed reset;
    ``"value"`` reset is snnTorch's ``"zero"``), ``beta = exp(-dt/tau_m)``,
    spike ``mem > thr``; the state is the pre-reset ``mem``.
``"spikingjelly"`` — SpikingJelly ``LIFNode`` (``decay_input=True``)
    ``h = v + (x - (v - v_rest)) / tau`` with ``tau = tau_m / dt`` steps,
    spike ``h >= thr``, hard (``"value"``) or soft (``"subtract"``) reset.
``"sinabs"`` — sinabs ``LIF``
    ``i = a_syn (i + x)`` (or ``i = x`` without ``tau_syn``),
    ``v = a_mem v + (1 - a_mem) i`` (``norm_input``) or ``+ i``, with
    ``a = exp(-1 / (tau / dt))``; ``MultiSpike`` counts ``trunc(v/thr)`` for
    ``v > 0`` (or single spikes ``v >= thr``) and subtracts ``count * thr``.

Gradients: see :func:`eventsim.models.lif_torch.point_backward` for the terms
kept through the reset and the refractory period.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numba
import numpy as np
import torch

from . import _core, _ops
from . import _validate as V
from ..models import lif_torch as _lif_torch
from ..models.lif_torch import torch_options
from .surrogate import resolve

#: Neurons per thread block of the CPU feed-forward kernels (a tuning knob; results never depend on it).
CPU_BLOCK = 2048

#: Compile the CPU feed-forward kernels once per combination of layer flags, with the flags as
#: compile-time constants (fast inner loops, one compilation per kind of layer; cached on disk).
#: False: one generic compilation per dtype with the flags as run-time values (same results, bit
#: for bit; slower loops, faster start-up: the test suite uses it).
SPECIALIZE = True

_ENTRY = {}


def _launch(kernel, args, flags):
    """Call a Numba kernel through a cached entry point; ``flags``: positions of the literal-able flags.

    Calling the compiled entry point directly skips the dispatcher's type
    resolution, which for literal signatures costs a slow retry per call.
    The cache key is the kernel, the data's dtype (the first array of
    ``args``), the types of the family tags among ``args`` and the flag
    values: at each launch site every argument's type follows from these.
    """
    spec = SPECIALIZE
    # every argument's type follows from the kernel, the data's dtype and the family tag (the launch sites build
    # them so)
    tags = tuple(type(a) for a in args if isinstance(a, tuple))
    data = next(a for a in args if isinstance(a, np.ndarray))
    key = (kernel.__name__, spec, data.dtype.str, tags, tuple(args[i] for i in flags) if spec else ())
    entry = _ENTRY.get(key)
    if entry is None:
        sig = tuple(numba.types.literal(a) if (spec and i in flags) else numba.typeof(a)
                    for i, a in enumerate(args))
        try:
            entry = kernel.compile(sig)
        except Exception:  # pragma: no cover - e.g. NUMBA_DISABLE_JIT
            entry = kernel
        _ENTRY[key] = entry
    return entry(*args)


def run_kernel(name, on_cuda, args, literal=None):
    """Launch kernel ``name`` of the bridge: the one place that picks the CPU or the CUDA kernel.

    On CUDA tensors (``on_cuda``) :mod:`eventsim.torch._cuda`'s launcher
    ``name`` runs on the torch tensors of ``args`` (on torch's current
    stream); otherwise :mod:`eventsim.torch._cpu`'s kernel ``name`` runs on
    zero-copy NumPy views of them, with Numba's threads set from torch's.
    ``literal``: positions of the arguments compiled as constants (one
    compilation per dtype, family tag and value of those flags, see
    :func:`_launch`; the kernel's argument types must follow from these); None
    calls the kernel through its dispatcher.
    """
    if on_cuda:
        return getattr(_cuda(), name)(*args)
    _threads()
    from . import _cpu

    a = tuple(_np(t) if isinstance(t, torch.Tensor) else t for t in args)
    kernel = getattr(_cpu, name)
    if literal is None:
        return kernel(*a)
    return _launch(kernel, a, literal)

# the options of the point layers, declared with their step (eventsim.models.lif_torch)
INTEGRATORS = _lif_torch.INTEGRATORS
RESETS = _lif_torch.RESETS


class NeuronState(NamedTuple):
    r"""State of a layer between calls (truncated BPTT).

    Attributes
    ----------
    v : Tensor [B, ...]
        Membrane potential after the last step (mV; snnTorch mode: the pre-reset ``mem``).
    i : Tensor [B, ...] or None
        Synaptic current (same unit as the input ``x``), current synapses only.
    refr : Tensor [B, ...] of int32 or None
        Remaining refractory steps (``t_ref > 0`` only).
    theta : Tensor [B, ...], [K, B, ...] or None
        Threshold adaptation (mV) of adaptive layers: ``[B, ...]`` with one
        threshold component, ``[K, B, ...]`` (component first) with ``K > 1``.
    z : Tensor [B, ...] or None
        Spikes of the last step, ``LIFRecurrent`` only.
    di : Tensor [B, ...] or None
        Drive of the alpha-shaped current (``psc="alpha"`` only; the input's
        unit per ms): :math:`\dot i = di - i/\tau_{syn}`.
    """

    v: torch.Tensor
    i: Optional[torch.Tensor] = None
    refr: Optional[torch.Tensor] = None
    theta: Optional[torch.Tensor] = None
    z: Optional[torch.Tensor] = None
    di: Optional[torch.Tensor] = None


class LayerSpec(NamedTuple):
    """Static configuration of a layer (what the kernels branch on)."""

    integrator: int
    synapse: bool
    reset: int
    rule: int
    adaptive: bool
    detach_reset: bool
    surrogate: int
    alpha: float
    ref_steps: int

    def cfg(self, track=None):
        """Flag vector of the kernels; ``track``: whether refractory steps can occur."""
        if track is None:
            track = self.ref_steps > 0
        return np.array([self.integrator, int(self.synapse), self.reset, self.rule, int(self.adaptive),
                         int(self.detach_reset), self.surrogate, self.ref_steps, int(bool(track))],
                        dtype=np.int64)


def make_spec(integrator="exact", synapse=False, reset="value", adaptive=False, detach_reset=None,
              surrogate="superspike", alpha=None, ref_steps=0, spike_fn="single"):
    """Validate the static options of a layer and return a :class:`LayerSpec`.

    Parameters
    ----------
    integrator : {"exact", "euler", "snntorch", "spikingjelly", "sinabs"}
    synapse : bool
        Exponential current synapses (``tau_syn`` given) or delta synapses.
    reset : {"value", "subtract"}
    adaptive : bool
        Adaptive threshold (``ALIF``).
    detach_reset : bool or None
        Cut the gradient through the reset.
    surrogate : str
        Surrogate name, see :mod:`eventsim.torch.surrogate`.
    alpha : float, optional
        Surrogate parameter, finite and > 0 (default per surrogate).
    ref_steps : int
        Refractory period in steps, >= 0.
    spike_fn : {"single", "multi"}

    Raises
    ------
    ValueError, TypeError
        Naming the offending argument.
    """
    V.choice("integrator", integrator, INTEGRATORS)
    V.choice("reset", reset, RESETS)
    V.choice("spike_fn", spike_fn, ("single", "multi"))
    synapse = V.flag("synapse", synapse)
    adaptive = V.flag("adaptive", adaptive)
    detach_reset = V.flag("detach_reset", detach_reset, allow_none=True)
    ref_steps = V.size("ref_steps", ref_steps, minimum=0)
    mode, rule, detach_reset = torch_options(integrator, synapse, reset, spike_fn, detach_reset)
    code, alpha = resolve(surrogate, alpha)
    return LayerSpec(mode, bool(synapse), RESETS[reset], rule, bool(adaptive), bool(detach_reset),
                     code, alpha, int(ref_steps))


# ---------------------------------------------------------------------------------------------
# coefficients
# ---------------------------------------------------------------------------------------------
def _numpy64(t):
    """The values of tensor ``t`` as a float64 NumPy array, also inside torch.func transforms.

    Inside ``torch.func.grad`` (or ``functional_call`` under it) a parameter is
    a wrapper without storage: it is unwrapped to the tensor holding its
    values.  A parameter vmapped over (one value set per item) is refused.
    """
    t = t.detach()
    try:
        from torch._C import _DisableFuncTorch
        from torch._C._functorch import get_unwrapped, is_batchedtensor, is_functorch_wrapped_tensor
    except ImportError:  # pragma: no cover - older torch
        return t.to("cpu", torch.float64).numpy()
    if not is_functorch_wrapped_tensor(t):
        return t.to("cpu", torch.float64).numpy()
    while is_functorch_wrapped_tensor(t):
        if is_batchedtensor(t):
            raise NotImplementedError("torch.func.vmap over the neuron parameters of an eventsim.torch layer is not "
                                      "supported; vmap over the inputs (or the weights of nn.Linear) instead")
        t = get_unwrapped(t)
    with _DisableFuncTorch():
        return t.to("cpu", torch.float64).numpy()


def _as_f64(value, n):
    """Detached float64 NumPy array of length n from a scalar or tensor."""
    if isinstance(value, torch.Tensor):
        value = _numpy64(value)
    return np.broadcast_to(np.asarray(value, dtype=np.float64).reshape(-1) if np.ndim(value) else
                           np.asarray(value, dtype=np.float64), (n,)).copy()


def _as_t(value, n, dtype, device):
    """Differentiable tensor of length n (float64) from a scalar, array or tensor."""
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=torch.float64).reshape(-1).expand(n)
    if np.ndim(value):
        return torch.as_tensor(np.asarray(value, dtype=np.float64).reshape(-1), device=device).expand(n)
    return torch.full((n,), float(value), dtype=torch.float64, device=device)


def components(value):
    """The threshold components of ``tau_theta`` / ``d_theta``: a tuple gives one per entry, anything else one.

    As :class:`eventsim.models.ALIF`, ``(20.0, 200.0)`` is two components; a
    list, ndarray or tensor is one component with one value per neuron.
    """
    if value is None:
        return ()
    return tuple(value) if isinstance(value, tuple) else (value,)


def check_components(tau_theta, d_theta, positive=True):
    """Validate the threshold components; ``{name: values}`` of each (named ``tau_theta[k]`` for K > 1).

    Raises ValueError for an empty tuple, tuples of different lengths, or a
    component that is not a finite number or 1-D array (``tau_theta > 0``).
    """
    tt, dd = components(tau_theta), components(d_theta)
    if not tt or not dd:
        raise ValueError(f"tau_theta={tau_theta!r}, d_theta={d_theta!r}: an adaptive layer needs at least one "
                         "threshold component (a number, one value per neuron, or a tuple of them)")
    if len(tt) != len(dd):
        raise ValueError(f"tau_theta has {len(tt)} components but d_theta has {len(dd)}; expected one increment "
                         "per time constant")
    K = len(tt)
    out = {}
    for k in range(K):
        sfx = f"[{k}]" if K > 1 else ""
        out["tau_theta" + sfx] = (V.positive if positive else V.param)("tau_theta" + sfx, tt[k])
        out["d_theta" + sfx] = V.param("d_theta" + sfx, dd[k])
    return out


def coefficients(spec, n, dt, tau_m, v_th, v_reset, v_rest, tau_syn=None, tau_theta=None,
                 d_theta=None, norm_input=True, leaky=True, dtype=torch.float32, device="cpu"):
    """Per-neuron coefficient rows ``(nat, aff)`` of a layer (see :mod:`eventsim.torch._core`).

    Parameters
    ----------
    spec : LayerSpec
    n : int
        Number of neurons (features) of the layer, >= 1.
    dt : float
        Step (ms), finite and > 0.
    tau_m, tau_syn : float, array_like or Tensor
        Membrane / synaptic time constants (ms), > 0, a number or one value
        per neuron (1-D); tensors may require grad
        (then ``aff`` carries the graph).  ``tau_m`` is ignored if not ``leaky``.
    v_th, v_reset, v_rest : float or Tensor
        Threshold, reset and resting potentials (mV); ``v_th`` and ``v_reset`` may require grad.
    tau_theta, d_theta : float, array_like, Tensor or tuple of them
        Adaptation time constant (ms, > 0) and jump (mV) (``spec.adaptive``);
        a tuple gives ``K`` threshold components (as :class:`eventsim.models.ALIF`),
        each a number or one value per neuron; tensors may require grad.
    norm_input : bool
        sinabs' ``norm_input``.
    leaky : bool
        False for the non-leaky ``IF`` (exact integrator only).

    Raises
    ------
    ValueError, TypeError
        For an argument of the wrong type, NaN or infinite parameters,
        time constants <= 0, per-neuron tensors whose length is not 1
        or ``n``, or ``tau_theta`` and ``d_theta`` with different numbers
        of components.

    Returns
    -------
    nat : Tensor [8 + 2K, n] in ``dtype`` (no grad), forward coefficients (``K = 1`` without adaptation).
    aff : Tensor [8 + 2K, n] in ``dtype``, differentiable coefficients for the reverse pass.
    """
    if not isinstance(spec, LayerSpec):
        raise TypeError(f"spec must be a LayerSpec (from make_spec), got {type(spec).__name__}")
    n = V.size("n", n)
    dt = V.scalar("dt", dt, "a finite number > 0 (ms)", lambda v: v > 0)
    leaky = V.flag("leaky", leaky)
    norm_input = V.flag("norm_input", norm_input)
    checked = {}
    if leaky:
        checked["tau_m"] = V.positive("tau_m", tau_m)
    if spec.synapse:
        checked["tau_syn"] = V.positive("tau_syn", tau_syn)
    for name, value in (("v_th", v_th), ("v_reset", v_reset), ("v_rest", v_rest)):
        checked[name] = V.param(name, value)
    if spec.adaptive:
        checked.update(check_components(tau_theta, d_theta))
    V.per_neuron({k: v.size for k, v in checked.items() if isinstance(v, np.ndarray)}, n)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype={dtype!r} must be torch.float32 or torch.float64")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r} is not a torch device") from None
    return _coefficients(spec, n, dt, tau_m, v_th, v_reset, v_rest, tau_syn, tau_theta, d_theta, norm_input,
                         leaky, dtype, device)


def _coefficients(spec, n, dt, tau_m, v_th, v_reset, v_rest, tau_syn=None, tau_theta=None,
                  d_theta=None, norm_input=True, leaky=True, dtype=torch.float32, device="cpu"):
    """:func:`coefficients` without the argument checks (the layers check them at construction): the
    :func:`layer_rows` of the family the flags ``spec`` run (:func:`point_family`)."""
    return layer_rows(point_family(spec), n, dt, dtype, device, spec=spec, norm_input=norm_input, leaky=leaky,
                      tau_m=tau_m if leaky else None, tau_syn=tau_syn if spec.synapse else None, v_th=v_th,
                      v_reset=v_reset, v_rest=v_rest, tau_theta=tau_theta if spec.adaptive else None,
                      d_theta=d_theta if spec.adaptive else None)


def point_family(spec):
    """The family of :mod:`eventsim.models` a layer with flags ``spec`` runs (``iaf_psc_delta``,
    ``iaf_psc_exp`` or ``alif``): the simulator's own resolution, :func:`eventsim.models.lif.family_of`."""
    from ..models.lif import family_of

    return family_of("exp" if spec.synapse else "delta", adaptive=spec.adaptive)


def _native_rows(spec, n, dt, tau_m, v_th, v_reset, v_rest, tau_syn, tt, dd, norm_input, leaky, dtype):
    """The forward rows ``nat [8 + 2K, n]`` (CPU, ``dtype``) of the family of ``spec``, from its declaration
    (``eventsim::native_rows`` runs this); ``tt, dd``: the threshold components (tuples)."""
    decl = point_family(spec).torch
    f64 = lambda v: None if v is None else _as_f64(v, n)  # noqa: E731
    return decl.coefficients(torch, dt, spec, True, dtype, norm_input, leaky, tau_m=f64(tau_m if leaky else None),
                             tau_syn=f64(tau_syn if spec.synapse else None), v_th=f64(v_th),
                             v_reset=f64(v_reset), v_rest=f64(v_rest), tau_theta=tuple(f64(t) for t in tt),
                             d_theta=tuple(f64(d) for d in dd))


def _affine_rows(spec, n, dt, tau_m, v_th, v_reset, v_rest, tau_syn, tt, dd, norm_input, leaky, dtype, device):
    """The differentiable rows ``aff [8 + 2K, n]`` of the family of ``spec``, from its declaration."""
    decl = point_family(spec).torch
    t64 = lambda v: None if v is None else _as_t(v, n, torch.float64, device)  # noqa: E731
    return decl.coefficients(torch, dt, spec, False, dtype, norm_input, leaky, tau_m=t64(tau_m if leaky else None),
                             tau_syn=t64(tau_syn if spec.synapse else None), v_th=t64(v_th),
                             v_reset=t64(v_reset), v_rest=t64(v_rest), tau_theta=tuple(t64(t) for t in tt),
                             d_theta=tuple(t64(d) for d in dd))


# ---------------------------------------------------------------------------------------------
# the one set-up of every layer: rows from the family's declaration, run by the kernels it names
# ---------------------------------------------------------------------------------------------
def layer_rows(family, n, dt, dtype=torch.float32, device="cpu", spec=None, norm_input=True, leaky=True, **params):
    """The coefficient rows ``(nat, aff)`` of a layer of ``n`` neurons of ``family``, from its declaration.

    The one set-up of every layer of the bridge: ``family.torch.coefficients``
    builds the rows from the parameters ``params`` (the declaration's
    ``params``: numbers, 1-D arrays or tensors with one value per neuron,
    tensors may require grad; None where unused; ``tau_theta`` / ``d_theta``
    may be tuples of threshold components), broadcast to ``n`` values in
    float64.  Families run by the generic family kernels (``kernel="family"``)
    have one set of rows: ``aff`` (differentiable, ``dtype``) and ``nat =
    aff.detach()``.  Families run by the point-neuron kernels
    (``kernel="point"``) also take the layer's flags ``spec``, ``norm_input``
    and ``leaky``, and have forward rows ``nat`` (NumPy and the integrator's
    own arithmetic; while ``torch.compile`` traces, the ``eventsim::native_rows``
    operator running the same code, so compiled layers use the eager rows bit
    for bit) and affine rows ``aff`` (torch operations, carrying the autograd
    graph of the parameters).  The caller validates the values.

    Returns
    -------
    nat : Tensor [R, n] on ``device`` (no grad)
    aff : Tensor [R, n] on ``device``
    """
    decl = torch_family(family).torch
    unknown = sorted(set(params) - set(decl.params))
    if unknown:
        raise TypeError(f"unexpected parameters {unknown} for the {family.name} family; expected {list(decl.params)}")
    f64 = torch.float64
    if decl.kernel == "family":
        vals = {k: (None if params.get(k) is None else _as_t(params[k], n, f64, device)) for k in decl.params}
        rows = torch.stack(decl.coefficients(torch, float(dt), **vals)).to(dtype)
        return rows.detach(), rows
    if torch.compiler.is_compiling() and _ops.AVAILABLE:
        ints, alpha = _ops.spec_args(spec)

        def t64(v):
            return _as_t(v, n, f64, "cpu").detach() if v is not None else None

        stack = (lambda vs: torch.stack([t64(v) for v in vs]) if vs else None)  # noqa: E731
        p = {k: params.get(k) for k in decl.params}
        tt, dd = components(p["tau_theta"]), components(p["d_theta"])
        nat = torch.ops.eventsim.native_rows(t64(p["tau_m"]), t64(p["tau_syn"]), t64(p["v_th"]), t64(p["v_reset"]),
                                             t64(p["v_rest"]), stack(tt), stack(dd), ints, alpha, n, float(dt),
                                             bool(norm_input), bool(leaky), dtype)
    else:
        nat = decl.coefficients(torch, dt, spec, True, dtype, norm_input, leaky,
                                **_converted(decl.params, params, lambda v: _as_f64(v, n)))
    aff = decl.coefficients(torch, dt, spec, False, dtype, norm_input, leaky,
                            **_converted(decl.params, params, lambda v: _as_t(v, n, f64, device)))
    return nat.to(device), aff


def _converted(names, params, conv):
    """``{name: conv(value)}`` of the parameters ``names`` (None stays None; a tuple of threshold
    components, or a value taken as one component for ``tau_theta`` / ``d_theta``, becomes a tuple)."""
    out = {}
    for k in names:
        v = params.get(k)
        if k in ("tau_theta", "d_theta"):
            out[k] = tuple(conv(c) for c in components(v))
        else:
            out[k] = None if v is None else conv(v)
    return out


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _threads():
    """Numba threads follow torch's intra-op thread count (capped at Numba's pool)."""
    want = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != want:
        numba.set_num_threads(want)


def _np(t):
    return t.detach().numpy()


def _empty(shape, like, dtype=None):
    return torch.empty(shape, dtype=dtype or like.dtype, device=like.device)


#: CPU buffers of at least this many bytes are advised to use transparent huge pages (Linux), which
#: cuts the cost of first touching freshly allocated outputs (most visible in virtual machines), and
#: come from :data:`BIG_BUFFERS`.
HUGE_PAGE_BYTES = 8 << 20
_MADVISE = []


def _libc():
    if not _MADVISE:
        try:
            import ctypes
            import ctypes.util
            import sys

            libc = ctypes.CDLL(ctypes.util.find_library("c")) if sys.platform.startswith("linux") else None
            if libc is not None:
                libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            _MADVISE.append(libc)
        except Exception:  # pragma: no cover
            _MADVISE.append(None)
    return _MADVISE[0]


def _madvise_range(ptr, nbytes):
    libc = _libc()
    if libc is not None:
        start = (ptr + 4095) & ~4095
        end = (ptr + nbytes) & ~4095
        if end > start:
            libc.madvise(start, end - start, 14)  # MADV_HUGEPAGE


def _madvise_huge(t):
    """Advise the kernel to back the pages of a large fresh CPU tensor with huge pages (advisory only)."""
    nbytes = t.numel() * t.element_size()
    if t.is_cuda or nbytes < HUGE_PAGE_BYTES:
        return t
    _madvise_range(t.data_ptr(), nbytes)
    return t


class BigBuffers:
    """Reuse of the large CPU buffers of the layers (spikes, membrane traces, input gradients).

    Each buffer is an anonymous memory map (huge-page advised) that backs a
    tensor; when the tensor is freed the map returns here and the next buffer
    of the same size reuses it, already touched.  Maps are kept only while
    the bytes in use plus the bytes kept stay within the most bytes ever in
    use at once (``high_water``), so the layers' peak memory is their largest
    working set, and the rest is unmapped (given back to the system).  This
    replaces ``malloc`` for these buffers: glibc serves a size it has freed
    once from its heap from then on and keeps the freed pages, so the
    resident memory of a training loop grew call after call (by about one
    buffer each time, up to several).
    """

    def __init__(self):
        import threading

        self._lock = threading.Lock()
        self._free = {}          # nbytes -> list of mmap objects (most recently freed last)
        self._order = []         # (nbytes) of the kept maps, oldest first
        self.in_use = 0          # bytes of live buffers
        self.kept = 0            # bytes of kept maps
        self.high_water = 0      # most bytes ever in use at once

    def empty(self, shape, dtype):
        """A C-contiguous CPU tensor ``shape`` of ``dtype`` (float32 or float64) backed by a reused map."""
        import mmap
        import weakref

        npd = np.dtype(np.float32 if dtype == torch.float32 else np.float64)
        count = math.prod(shape)
        nbytes = max(1, count * npd.itemsize)
        with self._lock:
            maps = self._free.get(nbytes)
            if maps:
                m = maps.pop()
                self._order.remove(nbytes)
                self.kept -= nbytes
            else:
                m = None
            self.in_use += nbytes
            self.high_water = max(self.high_water, self.in_use)
            self._trim()
        if m is None:
            m = mmap.mmap(-1, nbytes)
            arr = np.frombuffer(m, dtype=npd, count=count)
            _madvise_range(arr.ctypes.data, nbytes)
        else:
            arr = np.frombuffer(m, dtype=npd, count=count)
        weakref.finalize(arr, self._give, m, nbytes)
        return torch.from_numpy(arr.reshape(shape))

    def _give(self, m, nbytes):
        with self._lock:
            self.in_use -= nbytes
            if self.in_use + self.kept + nbytes <= self.high_water:
                self._free.setdefault(nbytes, []).append(m)
                self._order.append(nbytes)
                self.kept += nbytes

    def _trim(self):
        """Unmap the oldest kept maps while in use + kept exceeds the high-water mark (lock held)."""
        while self._order and self.in_use + self.kept > self.high_water:
            nb = self._order.pop(0)
            self._free[nb].pop(0)
            self.kept -= nb

    def clear(self):
        """Unmap every kept map (the live buffers are not affected)."""
        with self._lock:
            self._free.clear()
            self._order.clear()
            self.kept = 0


#: The pool of large CPU buffers (see :class:`BigBuffers`); ``BIG_BUFFERS.clear()`` gives the kept ones back.
BIG_BUFFERS = BigBuffers()


def _dense(g):
    """A contiguous copy of a gradient only where needed (huge-page backed when large)."""
    if g.is_contiguous():
        return g
    return _empty_big(g).copy_(g)


def _compact(g, like):
    """Gradient ``g`` on ``like`` ([T, B, N]; ``g`` None: zero) with every broadcast axis cut to length 1.

    The CPU reverse kernel reads such a gradient by broadcasting (see
    ``_cpu._grad_row``): the gradient of ``output.sum()`` arrives as an
    expanded scalar and is never written out at full size.
    """
    if g is None:
        return torch.zeros((1, 1, 1), dtype=like.dtype)
    g = g.reshape(like.shape).to(like.dtype)
    idx = tuple(slice(0, 1) if (st == 0 and sz > 1) else slice(None) for st, sz in zip(g.stride(), g.shape))
    return _dense(g[idx])


def _empty_big(like):
    """``torch.empty_like(like)`` (contiguous); on the CPU, large ones from :data:`BIG_BUFFERS` (huge pages)."""
    nbytes = like.numel() * like.element_size()
    if like.is_cuda or nbytes < HUGE_PAGE_BYTES or like.dtype not in (torch.float32, torch.float64):
        return torch.empty(like.shape, dtype=like.dtype, device=like.device)
    return BIG_BUFFERS.empty(tuple(like.shape), like.dtype)


_EMPTY3 = (0, 0, 0)


def _cuda():
    from . import _cuda as mod

    return mod


def _track(spec, r0):
    """Whether refractory steps can occur (a refractory period, or a refractory initial state)."""
    return spec.ref_steps > 0 or bool(r0.any())


def _c(t):
    return t if t is None else t.contiguous()


def _vmap_merged(fn, info, in_dims, args, axes, out_axes):
    """Vmap rule of a fused Function: the vmapped axis joins the batch axis ``B`` of every per-sample tensor.

    ``axes[k]`` is the axis of ``B`` in argument ``k`` (None: not per sample,
    e.g. coefficients); ``out_axes`` likewise for the outputs.  The fused
    kernels then run once on ``V * B`` independent rows.  A vmapped
    coefficient (one set of neuron parameters per vmapped item) falls back to
    a loop over the ``V`` items.
    """
    V = info.batch_size
    in_dims = [d if isinstance(d, int) else None for d in in_dims]  # non-tensor arguments come as pytrees of None
    if any(d is not None and ax is None for d, ax in zip(in_dims, axes)):
        outs = [fn(*[a.select(d, k) if d is not None else a for a, d in zip(args, in_dims)]) for k in range(V)]
        res, dims = [], []
        for j, o in enumerate(outs[0]):
            if o is None:
                res.append(None)
                dims.append(None)
            else:
                res.append(torch.stack([out[j] for out in outs]))
                dims.append(0)
        return tuple(res), tuple(dims)
    merged = []
    for a, d, ax in zip(args, in_dims, axes):
        if ax is None or not isinstance(a, torch.Tensor) or (d is None and a.numel() == 0):
            merged.append(a)
            continue
        if d is None:
            a = a.unsqueeze(ax).expand(a.shape[:ax] + (V,) + a.shape[ax:])
        else:
            a = a.movedim(d, ax)
        merged.append(a.flatten(ax, ax + 1).contiguous())
    outs = fn(*merged)
    res, dims = [], []
    for o, ax in zip(outs, out_axes):
        if o is None or ax is None or o.numel() == 0:
            res.append(o)
            dims.append(None)
        else:
            res.append(o.unflatten(ax, (V, o.shape[ax] // V)))
            dims.append(ax)
    return tuple(res), tuple(dims)


def _ff_forward(x, v0, i0, th0, r0, nat, spec, record_v):
    """Run the fused forward kernel on plain tensors; ``(spikes, vT, iT, thT, rT, vtr)``."""
    x, v0, i0, th0, r0, nat = (_c(t) for t in (x, v0, i0, th0, r0, nat))
    T, B, N = x.shape
    cfg = spec.cfg(_track(spec, r0))
    spikes = _empty_big(x)
    vtr = _empty_big(x) if record_v else _empty(_EMPTY3, x)
    vT, iT, thT = _empty((B, N), x), _empty((B, N), x), _empty(th0.shape, x)
    rT = _empty((B, N), x, torch.int32)
    tag = point_family(spec).tag
    if x.is_cuda:
        run_kernel("ff_forward", True, (tag, x, v0, i0, r0, th0, nat, cfg, spikes, vtr, vT, iT, rT, thT))
    else:
        c = [int(v) for v in cfg]
        run_kernel("ff_forward", False,
                   (tag, x, v0, i0, r0, th0, nat, c[_core.CFG_MODE], c[_core.CFG_SYN], c[_core.CFG_RESET],
                    c[_core.CFG_RULE], c[_core.CFG_ADAPT], c[_core.CFG_TRACK], c[_core.CFG_REF], CPU_BLOCK,
                    int(th0.shape[0]), spikes, vtr, vT, iT, rT, thT),
                   (7, 8, 9, 10, 11, 12, 15))
    return spikes, vT, iT, thT, rT, vtr


class _FeedForward(torch.autograd.Function):
    """Fused feed-forward layer: ``(x, v0, i0, th0, aff, r0, nat, spec, record_v)`` ->
    ``(spikes, vT, iT, thT, rT, vtr)``.

    Written in the ``setup_context`` style with a vmap rule, so that
    ``torch.func.grad``, ``torch.func.vmap`` (also of gradients: the reverse
    pass is a Function with its own vmap rule) and ``functional_call`` work.
    """

    @staticmethod
    def forward(x, v0, i0, th0, aff, r0, nat, spec, record_v):
        return _ff_forward(x, v0, i0, th0, r0, nat, spec, record_v)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, v0, i0, th0, aff, r0, nat, spec, record_v = inputs
        ctx.save_for_backward(x, v0, i0, r0, th0, nat, aff)
        ctx.spec = spec
        ctx.mark_non_differentiable(output[4])
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, gs, gvT, giT, gthT, grT, gvtr):
        x, v0, i0, r0, th0, nat, aff = ctx.saved_tensors
        want_par = bool(ctx.needs_input_grad[4])
        gx, gv0, gi0, gth0, dpar = _FeedForwardReverse.apply(x, v0, i0, r0, th0, nat, aff.detach(), ctx.spec,
                                                             want_par, gs, gvT, giT, gthT, gvtr)
        gaff = dpar.sum(1) if want_par else None
        return gx, gv0, gi0, gth0, gaff, None, None, None, None

    @staticmethod
    def vmap(info, in_dims, x, v0, i0, th0, aff, r0, nat, spec, record_v):
        fn = lambda *a: _FeedForward.apply(*a)  # noqa: E731
        return _vmap_merged(fn, info, in_dims, (x, v0, i0, th0, aff, r0, nat, spec, record_v),
                            (1, 0, 0, 1, None, 0, None, None, None), (1, 0, 0, 1, 0, 1))


class _FeedForwardReverse(torch.autograd.Function):
    """The reverse-time kernel of :class:`_FeedForward` as a Function (vmappable, not differentiable again)."""

    @staticmethod
    def forward(x, v0, i0, r0, th0, nat, aff, spec, want_par, gs, gvT, giT, gthT, gvtr):
        x, v0, i0, r0, th0, nat, aff = (_c(t) for t in (x, v0, i0, r0, th0, nat, aff))
        T, B, N = x.shape
        z2 = lambda g: torch.zeros((B, N), dtype=x.dtype, device=x.device) if g is None else g.contiguous()  # noqa
        if gvtr is not None and gvtr.numel() == 0:  # the empty trace of a layer without return_v
            gvtr = None
        if x.is_cuda:
            gs = torch.zeros_like(x) if gs is None else _dense(gs)
            gvtr = _empty(_EMPTY3, x) if gvtr is None else _dense(gvtr)
        else:
            gs = _compact(gs, x)
            gvtr = _empty(_EMPTY3, x) if gvtr is None else _compact(gvtr, x)
        gvT, giT = z2(gvT), z2(giT)
        gthT = torch.zeros(th0.shape, dtype=x.dtype, device=x.device) if gthT is None else gthT.contiguous()
        gx = _empty_big(x)
        gv0, gi0, gth0 = _empty((B, N), x), _empty((B, N), x), _empty(th0.shape, x)
        dpar = torch.zeros((aff.shape[0], B, N) if want_par else _EMPTY3, dtype=x.dtype, device=x.device)
        cfg = spec.cfg(_track(spec, r0))
        tag = point_family(spec).tag
        if x.is_cuda:
            run_kernel("ff_backward", True, (tag, x, v0, i0, r0, th0, nat, aff, cfg, spec.alpha, gs, gvtr, gvT,
                                             giT, gthT, gx, gv0, gi0, gth0, dpar))
        else:
            c = [int(v) for v in cfg]
            run_kernel("ff_backward", False,
                       (tag, x, v0, i0, r0, th0, nat, aff, c[_core.CFG_MODE], c[_core.CFG_SYN], c[_core.CFG_RESET],
                        c[_core.CFG_RULE], c[_core.CFG_ADAPT], c[_core.CFG_DETACH], c[_core.CFG_SURR],
                        c[_core.CFG_TRACK], int(want_par), int(gvtr.numel() > 0), c[_core.CFG_REF], CPU_BLOCK,
                        int(th0.shape[0]), float(spec.alpha), gs, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0, dpar),
                       (8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20))
        return gx, gv0, gi0, gth0, dpar

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("eventsim.torch layers support first derivatives only (no double backward)")

    @staticmethod
    def vmap(info, in_dims, *args):
        fn = lambda *a: _FeedForwardReverse.apply(*a)  # noqa: E731
        return _vmap_merged(fn, info, in_dims, args,
                            (1, 0, 0, 0, 1, None, None, None, None, 1, 0, 0, 1, 1), (1, 0, 0, 1, 1))


def _rec_forward(x, w_rec, z0, v0, i0, th0, r0, nat, spec, record_v, need, want_par):
    """Run the fused recurrent forward kernel on plain tensors; outputs and the arrays the reverse pass needs."""
    x, z0, v0, i0, th0, r0, nat = (_c(t) for t in (x, z0, v0, i0, th0, r0, nat))
    T, B, N = x.shape
    track = _track(spec, r0)
    cfg = spec.cfg(track)
    wt = w_rec.detach().t().contiguous()
    spikes = torch.empty_like(x)
    vtr = _empty((T, B, N) if record_v else _EMPTY3, x)
    vT, iT, thT = _empty((B, N), x), _empty((B, N), x), _empty(th0.shape, x)
    rT = _empty((B, N), x, torch.int32)
    full = (T, B, N)
    K = th0.shape[0]
    s_vp = _empty(full if need else _EMPTY3, x)
    s_vpo = _empty(full if need else _EMPTY3, x)
    s_thr = _empty(full if (need and spec.adaptive) else _EMPTY3, x)
    # (shape known without reading r0, as torch.library asks; zeros: written only where refractory steps occur)
    s_rf = torch.zeros(full if need else _EMPTY3, dtype=torch.int8, device=x.device)
    s_i = _empty(full if (need and spec.synapse and want_par) else _EMPTY3, x)
    s_xt = _empty(full if (need and want_par) else _EMPTY3, x)
    s_th = _empty((T, K, B, N) if (need and want_par and spec.adaptive) else (0, 0, 0, 0), x)
    args = (point_family(spec).tag, x, wt, z0, v0, i0, r0, th0, nat, cfg, spikes, vtr, vT, iT, rT, thT, s_vp,
            s_vpo, s_i, s_thr, s_rf, s_xt, s_th)
    run_kernel("rec_forward", x.is_cuda, args)
    return spikes, vT, iT, thT, rT, vtr, s_vp, s_vpo, s_i, s_thr, s_rf, s_xt, s_th


class _Recurrent(torch.autograd.Function):
    """Fused recurrent layer: ``(x, w_rec, z0, v0, i0, th0, aff, r0, nat, spec, record_v[, needs])`` ->
    ``(spikes, vT, iT, thT, rT, vtr, *saved)``; ``needs``: ``(any gradient, gradient on aff)``, by
    default read from the inputs' ``requires_grad``.  The seven ``saved`` arrays (what the reverse pass
    reads) are outputs, not differentiable, as the ``setup_context`` style asks (torch.func);
    vmap rule as :class:`_FeedForward`.
    """

    @staticmethod
    def forward(x, w_rec, z0, v0, i0, th0, aff, r0, nat, spec, record_v, needs=None):
        if needs is None:
            needs = (any(t.requires_grad for t in (x, w_rec, z0, v0, i0, th0, aff)), aff.requires_grad)
        return _rec_forward(x, w_rec, z0, v0, i0, th0, r0, nat, spec, record_v, *needs)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, w_rec, z0, v0, i0, th0, aff, r0, nat, spec, record_v = inputs[:11]
        spikes, saved = output[0], output[6:]
        ctx.save_for_backward(x, w_rec, z0, v0, i0, th0, r0, nat, aff, spikes, *saved)
        ctx.spec = spec
        ctx.mark_non_differentiable(output[4], *saved)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, gs, gvT, giT, gthT, grT, gvtr, *gsaved):
        x, w_rec, z0, v0, i0, th0, r0, nat, aff, spikes, *saved = ctx.saved_tensors
        want_par = bool(ctx.needs_input_grad[6])
        gx, gv0, gi0, gth0, gz0, dpar = _RecurrentReverse.apply(
            x, w_rec, v0, i0, th0, r0, nat, aff.detach(), ctx.spec, want_par, spikes, *saved, gs, gvT, giT, gthT,
            gvtr)
        gw = None
        if ctx.needs_input_grad[1]:
            T, B, N = x.shape
            zprev = torch.cat([z0.unsqueeze(0), spikes[:-1]], 0).reshape(T * B, N)
            gw = gx.reshape(T * B, N).t() @ zprev
        gaff = dpar.sum(1) if want_par else None
        return gx, gw, gz0, gv0, gi0, gth0, gaff, None, None, None, None, None

    @staticmethod
    def vmap(info, in_dims, x, w_rec, z0, v0, i0, th0, aff, r0, nat, spec, record_v, needs=None):
        if needs is None:
            needs = (any(t.requires_grad for t in (x, w_rec, z0, v0, i0, th0, aff)), aff.requires_grad)
        fn = lambda *a: _Recurrent.apply(*a)  # noqa: E731
        return _vmap_merged(fn, info, in_dims, (x, w_rec, z0, v0, i0, th0, aff, r0, nat, spec, record_v, needs),
                            (1, None, 0, 0, 0, 1, None, 0, None, None, None, None),
                            (1, 0, 0, 1, 0, 1) + (1,) * 6 + (2,))


class _RecurrentReverse(torch.autograd.Function):
    """The reverse-time kernel of :class:`_Recurrent` as a Function (vmappable, not differentiable again)."""

    @staticmethod
    def forward(x, w_rec, v0, i0, th0, r0, nat, aff, spec, want_par, spikes, s_vp, s_vpo, s_i, s_thr, s_rf, s_xt,
                s_th, gs, gvT, giT, gthT, gvtr):
        T, B, N = x.shape
        z2 = lambda g: torch.zeros((B, N), dtype=x.dtype, device=x.device) if g is None else g.contiguous()  # noqa
        gs = torch.zeros_like(x) if gs is None else gs.contiguous()
        gvtr = _empty(_EMPTY3, x) if gvtr is None else gvtr.contiguous()
        gvT, giT = z2(gvT), z2(giT)
        gthT = torch.zeros(th0.shape, dtype=x.dtype, device=x.device) if gthT is None else gthT.contiguous()
        # the CPU kernel reads W_rec.T row by row, the CUDA kernel W_rec (coalesced over the sources)
        w = w_rec.detach().contiguous() if x.is_cuda else w_rec.detach().t().contiguous()
        gx = torch.empty_like(x)
        gv0, gi0, gz0 = (_empty((B, N), x) for _ in range(3))
        gth0 = _empty(th0.shape, x)
        dpar = torch.zeros((aff.shape[0], B, N) if want_par else _EMPTY3, dtype=x.dtype, device=x.device)
        xt = s_xt if want_par else x
        args = (point_family(spec).tag, xt, w, v0, i0, th0, nat, aff, spec.cfg(_track(spec, r0)), spec.alpha, s_vp,
                s_vpo, s_i, s_thr, s_rf, s_th, spikes, gs, gvtr, gvT, giT, gthT, gx, gv0, gi0, gth0, gz0, dpar)
        args = tuple(_c(a) if isinstance(a, torch.Tensor) else a for a in args)
        run_kernel("rec_backward", x.is_cuda, args)
        return gx, gv0, gi0, gth0, gz0, dpar

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("eventsim.torch layers support first derivatives only (no double backward)")

    @staticmethod
    def vmap(info, in_dims, *args):
        fn = lambda *a: _RecurrentReverse.apply(*a)  # noqa: E731
        return _vmap_merged(fn, info, in_dims, args,
                            (1, None, 0, 0, 1, 0, None, None, None, None, 1, 1, 1, 1, 1, 1, 1, 2, 1, 0, 0, 1, 1),
                            (1, 0, 0, 1, 0, 1))


# ---------------------------------------------------------------------------------------------
# public functional API
# ---------------------------------------------------------------------------------------------
def check_state(state):
    """Check that ``state`` is None or a :class:`NeuronState` whose fields are tensors or None.

    The shapes are checked against the input when the layer runs.
    """
    if state is None:
        return
    if not isinstance(state, NeuronState):
        raise TypeError(f"state must be a NeuronState (returned by a previous call) or None, "
                        f"got {type(state).__name__}")
    for name, t in zip(state._fields, state):
        if t is not None and not isinstance(t, torch.Tensor):
            raise TypeError(f"state.{name} must be a torch.Tensor or None, got {type(t).__name__}")
    if state.refr is not None and (state.refr.is_floating_point() or state.refr.is_complex()
                                   or state.refr.dtype == torch.bool):
        raise TypeError(f"state.refr must hold integer step counts (int32), got {state.refr.dtype}")


def _check_call(spec, nat, aff, N, v_init, record_v):
    """Entry checks of :func:`neuron_layer` / :func:`recurrent_layer` (shapes and types only)."""
    if not isinstance(spec, LayerSpec):
        raise TypeError(f"spec must be a LayerSpec (from make_spec), got {type(spec).__name__}")
    for name, t in (("nat", nat), ("aff", aff)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor from coefficients(), got {type(t).__name__}")
    rows = nat.shape[0] if nat.dim() == 2 else -1
    for name, t in (("nat", nat), ("aff", aff)):
        ok = t.dim() == 2 and t.shape[1] == N and t.shape[0] == rows and rows >= _core.N_NAT and rows % 2 == 0
        if not ok:
            raise ValueError(f"{name} has shape {tuple(t.shape)}; expected {(max(rows, _core.N_NAT), N)} "
                             f"(8 + 2K rows, K threshold components, as the other array) for an input with {N} "
                             "features (see coefficients())")
    if not spec.adaptive and rows != _core.N_NAT:
        raise ValueError(f"nat and aff have {rows} rows: threshold components need spec.adaptive")
    if not isinstance(v_init, torch.Tensor):
        v_init = V.param("v_init", v_init)
        if isinstance(v_init, np.ndarray):
            v_init = torch.as_tensor(v_init)
    elif v_init.dim() > 1:
        raise ValueError(f"v_init must be a scalar or a 1-D tensor (one value per neuron), "
                         f"got shape {tuple(v_init.shape)}")
    if isinstance(v_init, torch.Tensor):
        V.per_neuron({"v_init": v_init.numel()}, N)
    return v_init, V.flag("record_v", record_v)


def _prepare(x, state, spec, recurrent=False):
    V.tensor_input("x", x, min_dim=3 if recurrent else 2, layout="[T, B, N]" if recurrent else "[T, B, ...]")
    check_state(state)
    T, B = x.shape[0], x.shape[1]
    feat = tuple(x.shape[2:])
    N = math.prod(feat)
    xf = x.reshape(T, B, N).contiguous()
    dev, dt = x.device, x.dtype

    def get(name, default, dtype=dt):
        t = getattr(state, name) if state is not None else None
        if t is None:
            return torch.full((B, N), default, dtype=dtype, device=dev)
        if t.dim() == 0 or t.shape[0] != B or t.numel() != B * N:
            raise ValueError(f"state.{name} has shape {tuple(t.shape)}; expected {(B,) + feat}")
        return t.to(device=dev, dtype=dtype).reshape(B, N).contiguous()

    def theta(K):
        """The threshold components ``[K, B, N]`` (state.theta: ``[B, ...]`` for K = 1, else ``[K, B, ...]``)."""
        t = state.theta if state is not None else None
        if t is None:
            return torch.zeros((K, B, N), dtype=dt, device=dev)
        want = (B,) + feat if K == 1 else (K, B) + feat
        if tuple(t.shape) != want:
            raise ValueError(f"state.theta has shape {tuple(t.shape)}; expected {want}"
                             + (f" ({K} threshold components first)" if K > 1 else ""))
        return t.to(device=dev, dtype=dt).reshape(K, B, N).contiguous()

    return xf, (T, B, N, feat), get, theta


def _finish(spikes, vT, iT, thT, rT, vtr, shape, spec, z_last=None):
    T, B, N, feat = shape
    out = spikes.reshape((T, B) + feat)
    K = thT.shape[0]
    st = NeuronState(
        v=vT.reshape((B,) + feat),
        i=iT.reshape((B,) + feat) if spec.synapse else None,
        refr=rT.reshape((B,) + feat) if spec.ref_steps > 0 else None,
        theta=(thT.reshape((B,) + feat) if K == 1 else thT.reshape((K, B) + feat)) if spec.adaptive else None,
        z=z_last)
    vtr = vtr.reshape((T, B) + feat) if vtr.numel() else None
    return out, st, vtr


def neuron_layer(x, state, nat, aff, spec, v_init=0.0, record_v=False):
    """Run a feed-forward layer of point neurons over a whole sequence.

    Parameters
    ----------
    x : Tensor [T, B, ...], float32 or float64
        Input of every step (time first), CPU or CUDA.
    state : NeuronState or None
        Initial state; None starts from ``v = v_init``, zero current,
        not refractory, no adaptation.
    nat, aff : Tensor
        Coefficients from :func:`coefficients` (``aff`` may require grad).
    spec : LayerSpec
    v_init : float or Tensor
        Initial membrane potential when ``state`` is None (mV).
    record_v : bool
        Also return the membrane after every step.

    Returns
    -------
    spikes : Tensor [T, B, ...]
    state : NeuronState
    v : Tensor [T, B, ...] or None

    Raises
    ------
    TypeError
        For an ``x``, ``nat``, ``aff`` or state field that is not a tensor,
        an ``x`` that is not floating point (float16 and bfloat16 run in
        float32 and come back in their dtype), or a ``spec`` that is not a
        :class:`LayerSpec`.
    ValueError
        For an ``x`` with fewer than two axes, coefficients or a state of
        another number of neurons than ``x``, or a non-finite ``v_init``.
    """
    V.tensor_input("x", x)
    out_dtype = x.dtype
    if out_dtype in V.HALF:  # float16 / bfloat16: float32 state and arithmetic inside
        x = x.float()
    xf, shape, get, theta = _prepare(x, state, spec)
    T, B, N, feat = shape
    v_init, record_v = _check_call(spec, nat, aff, N, v_init, record_v)
    v0 = _init_v(state, v_init, B, N, x) if (state is None or state.v is None) else get("v", 0.0)
    i0 = get("i", 0.0)
    r0 = get("refr", 0, torch.int32)
    th0 = theta(_core.n_components(nat.shape[0]))
    nat = nat.to(device=x.device, dtype=x.dtype).contiguous()
    aff = aff.to(device=x.device, dtype=x.dtype)
    if torch.compiler.is_compiling() and _ops.AVAILABLE:  # one graph node per layer (torch.library op)
        ints, alpha = _ops.spec_args(spec)
        spikes, vT, iT, thT, rT, vtr = torch.ops.eventsim.ff_forward(xf, v0, i0, th0, aff, r0, nat, ints, alpha,
                                                                     bool(record_v))
    else:
        spikes, vT, iT, thT, rT, vtr = _FeedForward.apply(xf, v0, i0, th0, aff, r0, nat, spec, bool(record_v))
    return _finish(spikes.to(out_dtype), vT, iT, thT, rT, vtr.to(out_dtype), shape, spec)


def recurrent_layer(x, w_rec, state, nat, aff, spec, v_init=0.0, record_v=False):
    """Run a recurrent layer: the input of step ``t`` is ``x[t] + z[t-1] @ w_rec.T``.

    ``x`` is ``[T, B, N]`` (already projected by the input weights),
    ``w_rec`` is ``[N, N]`` (row: target, column: source).  Otherwise as
    :func:`neuron_layer`; the returned state carries the last spikes ``z``.
    """
    V.tensor_input("x", x, min_dim=3, layout="[T, B, N]")
    out_dtype = x.dtype
    if out_dtype in V.HALF:
        x = x.float()
    xf, shape, get, theta = _prepare(x, state, spec, recurrent=True)
    T, B, N, feat = shape
    if x.dim() != 3:
        raise ValueError(f"x must have shape [T, B, N] for a recurrent layer, got {tuple(x.shape)}")
    v_init, record_v = _check_call(spec, nat, aff, N, v_init, record_v)
    if not isinstance(w_rec, torch.Tensor):
        raise TypeError(f"w_rec must be a torch.Tensor [N, N], got {type(w_rec).__name__}")
    if tuple(w_rec.shape) != (N, N):
        raise ValueError(f"w_rec has shape {tuple(w_rec.shape)}; expected {(N, N)}")
    v0 = _init_v(state, v_init, B, N, x) if (state is None or state.v is None) else get("v", 0.0)
    z0 = get("z", 0.0)
    i0 = get("i", 0.0)
    r0 = get("refr", 0, torch.int32)
    th0 = theta(_core.n_components(nat.shape[0]))
    nat = nat.to(device=x.device, dtype=x.dtype).contiguous()
    aff = aff.to(device=x.device, dtype=x.dtype)
    w = w_rec.to(dtype=x.dtype)
    needs = (torch.is_grad_enabled() and any(t.requires_grad for t in (xf, w, z0, v0, i0, th0, aff)),
             torch.is_grad_enabled() and aff.requires_grad)
    if torch.compiler.is_compiling() and _ops.AVAILABLE:
        ints, alpha = _ops.spec_args(spec)
        out = torch.ops.eventsim.rec_forward(xf, w, z0, v0, i0, th0, aff, r0, nat, ints, alpha, bool(record_v),
                                             bool(needs[0]), bool(needs[1]))
    else:
        out = _Recurrent.apply(xf, w, z0, v0, i0, th0, aff, r0, nat, spec, bool(record_v), needs)
    spikes, vT, iT, thT, rT, vtr = out[:6]
    z_last = spikes[-1] if T > 0 else z0  # (state in float32)
    return _finish(spikes.to(out_dtype), vT, iT, thT, rT, vtr.to(out_dtype), shape, spec, z_last=z_last)


# ---------------------------------------------------------------------------------------------
# layers of the families declared with torch steps (eventsim.models.family.TorchSteps)
# ---------------------------------------------------------------------------------------------
def torch_family(family, kernel=None):
    """``family`` if it declares a torch layer (its ``torch`` field) run by the ``kernel`` kernels
    (``"family"`` or ``"point"``; None: any); ValueError otherwise."""
    from ..models.family import Family

    if not isinstance(family, Family):
        raise TypeError(f"family must be an eventsim.models.family.Family, got {type(family).__name__}")
    if family.torch is None:
        raise ValueError(f"the {family.name} family declares no torch layer (its torch field is None)")
    if kernel is not None and family.torch.kernel != kernel:
        raise ValueError(f"the {family.name} family declares no torch layer for the {kernel} kernels (its "
                         f"torch.kernel is {family.torch.kernel!r}; run_layer runs it)")
    missing = [name for name, _ in family.torch.state if name not in NeuronState._fields]
    if missing:
        raise NotImplementedError(f"the {family.name} family's state {missing} has no field in NeuronState")
    return family


def family_coefficients(family, n, dt, dtype=torch.float32, device="cpu", **params):
    """Coefficient rows ``[R, n]`` of a layer of ``family`` (its ``torch.coefficients``), differentiable:
    the ``aff`` of :func:`layer_rows` (a family run by the generic family kernels).

    ``dt`` (ms) must be a finite number > 0; each parameter a finite number,
    1-D array or tensor with one value per neuron (``n`` of them), > 0 where
    the declaration names it among its ``positive`` parameters (time
    constants), or None; ValueError naming the argument otherwise.
    """
    decl = torch_family(family, "family").torch
    dt = V.scalar("dt", dt, "a finite number > 0 (ms)", lambda v: v > 0)
    n = V.size("n", n)
    checked = {}
    for name in decl.params:
        if name in params:
            check = V.positive if name in decl.positive else V.param
            checked[name] = check(name, params[name], allow_none=True)
    V.per_neuron({k: v.size for k, v in checked.items() if isinstance(v, np.ndarray)}, n)
    return layer_rows(family, n, dt, dtype, device, **params)[1]


class _Family(torch.autograd.Function):
    """Fused layer of a family with torch steps: ``(x [T, B, N], s0 [S, B, N], rows [R, N], tag)`` ->
    ``(y [T, B, N], sT [S, B, N])``; the reverse pass gives the gradients on ``x``, ``s0`` and ``rows``."""

    @staticmethod
    def forward(ctx, x, s0, rows, tag):
        T, B, N = x.shape
        S, M = s0.shape[0], B * N
        c = rows.detach().contiguous()
        y = torch.empty_like(x)
        s = s0.detach().clone().contiguous()
        run_kernel("family_forward", x.is_cuda, (tag, x.detach().reshape(T, M), s.view(S, M), c, N, y.view(T, M)))
        ctx.save_for_backward(x, s0, c)
        ctx.tag = tag
        return y, s

    @staticmethod
    def backward(ctx, gy, gs):
        x, s0, c = ctx.saved_tensors
        T, B, N = x.shape
        S, M = s0.shape[0], B * N
        gy = gy.contiguous()
        gs = gs.clone(memory_format=torch.contiguous_format)
        ws = s0.detach().clone().contiguous()
        gx = torch.empty_like(x)
        dc = torch.zeros((c.shape[0], M), dtype=x.dtype, device=x.device)
        traj = torch.empty((T, S, M), dtype=x.dtype, device=x.device)
        run_kernel("family_backward", x.is_cuda, (ctx.tag, x.detach().reshape(T, M), ws.view(S, M), c, N,
                                                  gy.view(T, M), gs.view(S, M), gx.view(T, M), dc, traj))
        grows = dc.view(-1, B, N).sum(1) if ctx.needs_input_grad[2] else None
        return gx, gs, grows, None


def family_layer(x, state, rows, family, init=None):
    """Run a layer of ``family`` (a family of :mod:`eventsim.models` with torch steps) over a sequence.

    Parameters
    ----------
    x : Tensor [T, B, ...], float32 or float64 (float16 / bfloat16 run in float32)
        Input of every step (time first), CPU or CUDA.
    state : NeuronState or None
        Initial state (the fields named by the family's ``torch.state``);
        None: every state variable starts at ``init`` or 0.
    rows : Tensor [R, N]
        Coefficient rows from :func:`family_coefficients` (may require grad).
    family : eventsim.models.family.Family
    init : dict, optional
        Initial value (a number or one per neuron) of state variables by
        name, when ``state`` is None (a tensor keeps its autograd graph).

    Returns
    -------
    y : Tensor [T, B, ...]
        The family's output of every step (``family.torch.output``).
    state : NeuronState
        The final state (every state variable of the family).
    """
    decl = torch_family(family, "family").torch
    V.tensor_input("x", x)
    out_dtype = x.dtype
    if out_dtype in V.HALF:
        x = x.float()
    check_state(state)
    T, B = x.shape[0], x.shape[1]
    feat = tuple(x.shape[2:])
    N = math.prod(feat)
    if not isinstance(rows, torch.Tensor) or tuple(rows.shape) != (len(decl.rows), N):
        shape = tuple(rows.shape) if isinstance(rows, torch.Tensor) else type(rows).__name__
        raise ValueError(f"rows has shape {shape}; expected {(len(decl.rows), N)} (rows {list(decl.rows)} of "
                         f"{N} neurons, from family_coefficients)")
    init = init or {}
    s0 = []
    for name, _ in decl.state:
        t = getattr(state, name) if state is not None else None
        if t is None:
            v = init.get(name, 0.0)
            v = v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v, np.float64))
            t = v.to(device=x.device, dtype=x.dtype).reshape(-1).expand(N).expand(B, N)
        elif t.dim() == 0 or t.shape[0] != B or t.numel() != B * N:
            raise ValueError(f"state.{name} has shape {tuple(t.shape)}; expected {(B,) + feat}")
        s0.append(t.to(device=x.device, dtype=x.dtype).reshape(B, N))
    s0 = torch.stack(s0)
    y, sT = _Family.apply(x.reshape(T, B, N).contiguous(), s0, rows.to(device=x.device, dtype=x.dtype),
                          family.tag)
    # (a counter in steps, e.g. the refractory one, is an integer outside the kernels)
    st = NeuronState(**{name: (sT[k].detach().to(torch.int32) if unit == "steps" else sT[k]).reshape((B,) + feat)
                        for k, (name, unit) in enumerate(decl.state)})
    return y.reshape((T, B) + feat).to(out_dtype), st


def run_layer(family, x, state, nat, aff, spec=None, v_init=0.0, record_v=False, w_rec=None, init=None):
    """Run a layer of ``family`` with the rows ``(nat, aff)`` of :func:`layer_rows`, by the kernels the
    family's declaration names (``family.torch.kernel``).

    ``"point"``: :func:`neuron_layer` (``w_rec`` None) or :func:`recurrent_layer`
    with the flags ``spec``; ``"family"``: :func:`family_layer` (no recurrent
    form, no membrane trace), starting from ``init`` (default ``{"v": v_init}``)
    without a state.  Returns ``(output, state, v trace or None)``.
    """
    decl = torch_family(family).torch
    if decl.kernel == "point":
        if w_rec is None:
            return neuron_layer(x, state, nat, aff, spec, v_init=v_init, record_v=record_v)
        return recurrent_layer(x, w_rec, state, nat, aff, spec, v_init=v_init, record_v=record_v)
    if record_v:
        raise ValueError(f"return_v=True: a layer of the {family.name} family returns its output and final state "
                         "only")
    if w_rec is not None:
        raise ValueError(f"the {family.name} family's torch layer has no recurrent form")
    y, st = family_layer(x, state, aff, family, init={"v": v_init} if init is None else init)
    return y, st, None


def li(x, state=None, tau_m=10.0, v_rest=0.0, tau_syn=None, dt=1.0, v_init=None):
    r"""Leaky integrator without threshold (NIR's ``LI``, norse's ``LICell``): a readout layer.

    The step of :mod:`eventsim.models.li` (the clock engine's), exact:
    :math:`v_t = v_{rest} + e^{-h/	au_m}(v_{t-1} - v_{rest}) + (1 - e^{-h/	au_m}) x_t`
    (``tau_syn=None``), or through an exponential current (see
    :mod:`eventsim.models.li`); a constant ``x`` settles at
    :math:`v = v_{rest} + x`.  The gradient is exact (no spike).

    Parameters
    ----------
    x : Tensor [T, B, ...]
        Input (mV: current times membrane resistance), time first.
    state : NeuronState, optional
        ``v`` (mV) and ``i`` (mV) from a previous call.
    tau_m : float, array_like or Tensor
        Membrane time constant (ms), > 0; one value or one per neuron.
    v_rest : float, array_like or Tensor
        Resting potential (mV).
    tau_syn : float, array_like, Tensor or None
        Synaptic time constant (ms), > 0; None: the input is held over the step.
    dt : float
        Step (ms), > 0.
    v_init : float, array_like or Tensor, optional
        Initial membrane potential (mV) without ``state`` (default ``v_rest``).

    Returns
    -------
    v : Tensor [T, B, ...]
        Membrane potential after every step (mV).
    state : NeuronState
        ``v`` and ``i`` after the last step.
    """
    from ..models.li import LI_FAMILY

    V.tensor_input("x", x)
    dt = V.scalar("dt", dt, "a finite number > 0 (ms)", lambda v: v > 0)
    checked = {"tau_m": V.positive("tau_m", tau_m), "v_rest": V.param("v_rest", v_rest),
               "tau_syn": V.positive("tau_syn", tau_syn, allow_none=True),
               "v_init": V.param("v_init", v_init, allow_none=True)}
    N = math.prod(x.shape[2:])
    V.per_neuron({k: v.size for k, v in checked.items() if isinstance(v, np.ndarray)}, N)
    dtype = torch.float32 if x.dtype in V.HALF else x.dtype
    nat, aff = layer_rows(LI_FAMILY, N, dt, dtype, x.device, tau_m=tau_m, v_rest=v_rest, tau_syn=tau_syn)
    y, st, _ = run_layer(LI_FAMILY, x, state, nat, aff, v_init=v_rest if v_init is None else v_init)
    return y, st


def _init_v(state, v_init, B, N, x):
    if isinstance(v_init, torch.Tensor):
        return v_init.to(device=x.device, dtype=x.dtype).reshape(-1).expand(N).expand(B, N).contiguous()
    return torch.full((B, N), float(v_init), dtype=x.dtype, device=x.device)


__all__ = ["NeuronState", "LayerSpec", "make_spec", "coefficients", "neuron_layer", "recurrent_layer",
           "check_state", "INTEGRATORS", "RESETS", "family_coefficients", "family_layer", "li", "run_kernel",
           "layer_rows", "run_layer", "point_family"]
