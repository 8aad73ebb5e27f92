r"""``nn.Module`` shells over :mod:`eventsim.torch.functional`.

Every layer takes a time-first input ``x[T, B, ...]`` (``batch_first=True``:
``[B, T, ...]``, as sinabs) and is called as ``spikes, state = layer(x)``
or ``layer(x, state)`` for truncated BPTT; ``layer(x, state, return_v=True)``
also returns the membrane after every step.  The modules only hold
parameters and defaults; the arithmetic is in the fused kernels.

Units: time in ms, potentials in mV.  With the default ``integrator="exact"``
the input ``x`` is a current in mV (current times membrane resistance): a
constant ``x`` settles at :math:`v = v_{rest} + x`.  The other integrators
reproduce a peer library's own discretisation (see
:mod:`eventsim.torch.functional`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..models._params import check
from . import _validate as V
from . import functional as F

_TRAINABLE = ("tau_m", "tau_syn", "v_th")


def _trainable_set(trainable):
    """The set of trainable parameter names from ``trainable`` (bool, a name or an iterable of names)."""
    if trainable is None or isinstance(trainable, (bool, np.bool_)):
        return set(_TRAINABLE) if trainable else set()
    if isinstance(trainable, str):
        names = [trainable]
    else:
        try:
            names = list(trainable)
        except TypeError:
            raise TypeError(f"trainable={trainable!r} must be a bool, a parameter name or an iterable of "
                            f"names among {list(_TRAINABLE)}") from None
    unknown = [t for t in names if not (isinstance(t, str) and t in _TRAINABLE)]
    if unknown:
        raise ValueError(f"trainable={sorted(map(str, unknown))} must be among {list(_TRAINABLE)}")
    return set(names)


class _Layer(nn.Module):
    """Common parameter handling of the neuron layers."""

    _leaky = True
    _adaptive = False

    def __init__(self, tau_m=10.0, v_th=1.0, v_reset=0.0, v_rest=0.0, dt=1.0, tau_syn=None, t_ref=0.0,
                 reset="value", surrogate="superspike", alpha=None, integrator="exact", trainable=False,
                 batch_first=False, detach_reset=None, v_init=None, norm_input=True, spike_fn=None,
                 tau_theta=None, d_theta=None):
        super().__init__()
        # every argument is checked before anything is stored (see eventsim.torch._validate)
        dt = V.scalar("dt", dt, "a finite number > 0 (ms)", lambda v: v > 0)
        checked = {}
        if self._leaky:
            checked["tau_m"] = V.positive("tau_m", tau_m)
        checked["tau_syn"] = V.positive("tau_syn", tau_syn, allow_none=True)
        for name, value in (("v_th", v_th), ("v_reset", v_reset), ("v_rest", v_rest)):
            checked[name] = V.param(name, value)
        if self._adaptive:
            checked["tau_theta"] = V.positive("tau_theta", tau_theta)
            checked["d_theta"] = V.param("d_theta", d_theta)
        else:
            for name, value in (("tau_theta", tau_theta), ("d_theta", d_theta)):
                if value is not None:
                    raise ValueError(f"{name}={value!r}: {type(self).__name__} has no threshold adaptation "
                                     "(use ALIF)")
        checked["v_init"] = V.param("v_init", v_init, allow_none=True)
        V.same_length(checked)
        t_ref, ref_steps = V.ref_steps(t_ref, dt)
        V.choice("integrator", integrator, F.INTEGRATORS)
        V.choice("reset", reset, F.RESETS)
        if spike_fn is None:
            spike_fn = "multi" if integrator == "sinabs" and reset == "subtract" else "single"
        if integrator != "exact" and not self._leaky:
            raise ValueError(f"integrator={integrator!r}: the non-leaky IF is integrated exactly only")
        detach_reset = V.flag("detach_reset", detach_reset, allow_none=True)
        norm_input = V.flag("norm_input", norm_input)
        batch_first = V.flag("batch_first", batch_first)
        self.spec = F.make_spec(integrator, synapse=tau_syn is not None, reset=reset, adaptive=self._adaptive,
                                detach_reset=detach_reset, surrogate=surrogate, alpha=alpha,
                                ref_steps=ref_steps, spike_fn=spike_fn)
        trainable = _trainable_set(trainable)
        if not self._leaky:
            trainable.discard("tau_m")
        if tau_syn is None:
            trainable.discard("tau_syn")
        if reset == "value" and integrator not in ("snntorch",):
            vr, vt = checked["v_reset"], checked["v_th"]
            shown = repr(float(vt)) if np.ndim(vt) == 0 else "the per-neuron v_th"
            check("v_reset", vr, np.asarray(vr) < np.asarray(vt), f"v_reset < v_th={shown} (mV) for reset='value'")
        if integrator == "snntorch" and reset == "value" and not np.all(np.asarray(checked["v_reset"]) == 0):
            raise ValueError("integrator='snntorch' with reset='value' is snnTorch's 'zero' reset: v_reset must be 0")
        #: number of values of each per-neuron parameter (checked against the features at every call)
        self._lengths = {k: v.size for k, v in checked.items() if isinstance(v, np.ndarray)}
        self.dt = dt
        self.t_ref = t_ref
        self.reset = reset
        self.integrator = integrator
        self.surrogate = surrogate
        self.norm_input = norm_input
        self.batch_first = batch_first
        self.trainable = frozenset(trainable)
        values = dict(tau_m=tau_m if self._leaky else math.inf, v_th=v_th, v_reset=v_reset, v_rest=v_rest,
                      tau_syn=tau_syn, tau_theta=tau_theta, d_theta=d_theta)
        for name, value in values.items():
            if value is None:
                setattr(self, name, None)
                continue
            t = torch.as_tensor(value, dtype=torch.get_default_dtype()).clone().detach()
            if name in checked and not bool(torch.isfinite(t).all()):  # (IF's internal tau_m is inf)
                raise ValueError(f"{name}={value!r} overflows the default dtype {t.dtype} (largest magnitude "
                                 f"{torch.finfo(t.dtype).max:.4g}); use a smaller value or "
                                 "torch.set_default_dtype(torch.float64)")
            if name in self.trainable:
                setattr(self, name, nn.Parameter(t))
            else:
                self.register_buffer(name, t)
        if reset == "value" and integrator != "snntorch" and not bool((self.v_reset < self.v_th).all()):
            raise ValueError(f"v_reset={v_reset!r} must be < v_th={v_th!r} (mV) for reset='value'; they are equal "
                             f"in the default dtype {self.v_th.dtype}")
        self.v_init = None if v_init is None else torch.as_tensor(v_init)
        self._cache = None

    # ------------------------------------------------------------------ coefficients
    def _coefficients(self, n, dtype, device):
        params = [p for p in (self.tau_m, self.tau_syn, self.v_th, self.v_reset, self.v_rest,
                              getattr(self, "tau_theta", None), getattr(self, "d_theta", None))
                  if isinstance(p, torch.Tensor)]
        grad = torch.is_grad_enabled() and any(p.requires_grad for p in params)
        key = (n, dtype, str(device), tuple(p._version for p in params), tuple(p.data_ptr() for p in params))
        if not grad and self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        nat, aff = F._coefficients(
            self.spec, n, self.dt, self.tau_m if self._leaky else None, self.v_th, self.v_reset, self.v_rest,
            tau_syn=self.tau_syn, tau_theta=getattr(self, "tau_theta", None),
            d_theta=getattr(self, "d_theta", None), norm_input=self.norm_input, leaky=self._leaky,
            dtype=dtype, device=device)
        if not grad:
            self._cache = (key, (nat, aff.detach()))
        return nat, aff

    def _layout(self):
        return "[B, T, ...] (batch_first=True)" if self.batch_first else "[T, B, ...]"

    def _features(self, x):
        if x.dim() < 2:
            raise ValueError(f"x must have shape {self._layout()}, got {tuple(x.shape)}")
        return int(np.prod(x.shape[2:])) if x.dim() > 2 else 1

    def forward(self, x, state=None, return_v=False):
        """Run the layer over a sequence.

        Parameters
        ----------
        x : Tensor [T, B, ...] (``batch_first``: [B, T, ...])
            Input (exact integrator: mV, see the module docstring), float32
            or float64, on the CPU or a CUDA device; a list or ndarray is
            refused (convert it with ``torch.as_tensor``).
        state : NeuronState, optional
            State returned by a previous call (truncated BPTT); None starts
            at rest.
        return_v : bool
            Also return the membrane potential after every step.

        Returns
        -------
        spikes : Tensor, same shape as ``x``
        state : NeuronState (``state.v`` is [B, ...])
        v : Tensor, same shape as ``x`` (only with ``return_v``)
        """
        x = V.tensor_input("x", x, layout=self._layout())
        return_v = V.flag("return_v", return_v)
        F.check_state(state)
        if self.batch_first:
            x = x.transpose(0, 1)
        n = self._features(x)
        V.per_neuron(self._lengths, n)
        nat, aff = self._coefficients(n, x.dtype, x.device)
        spikes, st, vtr = self._run(x, state, nat, aff, return_v)
        if self.batch_first:
            spikes = spikes.transpose(0, 1)
            vtr = vtr.transpose(0, 1) if vtr is not None else None
        return (spikes, st, vtr) if return_v else (spikes, st)

    def _run(self, x, state, nat, aff, return_v):
        return F.neuron_layer(x, state, nat, aff, self.spec, v_init=self._v0(), record_v=return_v)

    def _v0(self):
        """Initial membrane potential (mV) when no state is given: ``v_init`` or ``v_rest``."""
        return self.v_rest.detach() if self.v_init is None else self.v_init

    def extra_repr(self):
        s = f"dt={self.dt}, integrator={self.integrator!r}, reset={self.reset!r}, surrogate={self.surrogate!r}"
        if self.t_ref:
            s += f", t_ref={self.t_ref}"
        if self.trainable:
            s += f", trainable={sorted(self.trainable)}"
        return s


class LIF(_Layer):
    r"""Leaky integrate-and-fire layer (delta or exponential current synapses).

    Parameters
    ----------
    tau_m : float, array_like or Tensor
        Membrane time constant (ms), finite and > 0; a 1-D list, ndarray or
        tensor gives one value per neuron (its length must be 1 or the
        number of features of the input).
    v_th, v_reset, v_rest : float, array_like or Tensor
        Threshold, reset and resting potentials (mV), finite, one value or
        one per neuron; ``reset="value"`` needs ``v_reset < v_th``.
    dt : float
        Time step (ms), finite and > 0.
    tau_syn : float, array_like, Tensor or None
        Synaptic time constant (ms), finite and > 0; None for delta synapses.
    t_ref : float
        Refractory period (ms), finite, >= 0 and a multiple of ``dt``; the
        membrane is held at its reset value and delta input is discarded (as NEST).
    reset : {"value", "subtract"}
        ``v <- v_reset`` or ``v <- v - (v_th - v_rest)`` (exact integrator;
        the peer integrators subtract ``v_th`` as their libraries do).
    surrogate : str
        Surrogate derivative, see :mod:`eventsim.torch.surrogate`.
    alpha : float, optional
        Its parameter, finite and > 0 (default per surrogate).
    integrator : {"exact", "euler", "snntorch", "spikingjelly", "sinabs"}
        ``"exact"``: the simulator's exact integration.  The others
        reproduce norse (``LIFBoxCell`` / ``LIFCell``), snnTorch ``Leaky``,
        SpikingJelly ``LIFNode`` and sinabs ``LIF`` bit for bit in the
        forward pass.
    trainable : bool, str or iterable of {"tau_m", "tau_syn", "v_th"}
        Which parameters are ``nn.Parameter`` s (validated as the others
        at construction).
    batch_first : bool
        Input and output are ``[B, T, ...]``.
    detach_reset : bool, optional
        Cut the gradient through the reset (always so for snnTorch).
    v_init : float, array_like or Tensor, optional
        Membrane potential (mV) at the start when no state is given
        (default ``v_rest``), finite, one value or one per neuron.
    norm_input : bool
        sinabs only: scale the input by ``1 - exp(-dt/tau_m)``.
    spike_fn : {"single", "multi"}, optional
        sinabs only: ``"multi"`` (sinabs' default ``MultiSpike``, the default
        here with a subtractive reset) emits ``trunc(v / v_th)`` spikes.

    Raises
    ------
    ValueError, TypeError
        At construction for a parameter that is not a number or 1-D array
        of numbers, NaN or infinite, out of range, or of another length
        than the other per-neuron parameters; when called, for an input
        that is not a float32/float64 tensor of at least two axes, or
        whose number of features differs from a per-neuron parameter's
        length.  Every message names the argument.

    Notes
    -----
    Order of one step (exact integrator, as the clock engine): if not
    refractory, exact membrane update; synaptic current decay plus input;
    threshold ``v >= v_th``; reset and refractory counter.
    """


class IF(_Layer):
    r"""Non-leaky integrate-and-fire layer: ``v += x`` per step (delta synapses).

    Same parameters as :class:`LIF` without ``tau_m`` (``v_rest`` is only the
    reference of the subtractive reset); exact integrator only.  With
    ``tau_syn`` the input passes through an exponential current whose
    long-run effect is again ``x`` per step.
    """

    _leaky = False

    def __init__(self, v_th=1.0, v_reset=0.0, v_rest=0.0, dt=1.0, tau_syn=None, t_ref=0.0, reset="value",
                 surrogate="superspike", alpha=None, integrator="exact", trainable=False, batch_first=False,
                 detach_reset=None, v_init=None):
        super().__init__(math.inf, v_th, v_reset, v_rest, dt, tau_syn, t_ref, reset, surrogate, alpha,
                         integrator, trainable, batch_first, detach_reset, v_init)


class ALIF(_Layer):
    r"""LIF layer with an adaptive threshold (as :class:`eventsim.ALIF` with one component).

    :math:`\vartheta_t = v_{th} + \theta_t`, :math:`\theta_t = e^{-h/\tau_\theta}\theta_{t-1}`
    (every step, after the membrane update), :math:`\theta \mathrel{+}= d_\theta` at each spike.

    Parameters
    ----------
    tau_theta : float, array_like or Tensor
        Adaptation time constant (ms), finite and > 0.
    d_theta : float, array_like or Tensor
        Threshold jump per spike (mV), finite.
    **kwargs
        As :class:`LIF`.
    """

    _adaptive = True

    def __init__(self, tau_m=10.0, v_th=1.0, v_reset=0.0, v_rest=0.0, dt=1.0, tau_syn=None, t_ref=0.0,
                 reset="value", surrogate="superspike", alpha=None, integrator="exact", trainable=False,
                 batch_first=False, detach_reset=None, v_init=None, tau_theta=100.0, d_theta=0.1, **kw):
        super().__init__(tau_m, v_th, v_reset, v_rest, dt, tau_syn, t_ref, reset, surrogate, alpha,
                         integrator, trainable, batch_first, detach_reset, v_init, tau_theta=tau_theta,
                         d_theta=d_theta, **kw)


class LIFRecurrent(_Layer):
    r"""Recurrent LIF layer (as norse's ``LIFRecurrent``).

    The input of step ``t`` is ``W_in x[t] + W_rec z[t-1]``: the recurrent
    spikes act one step later.  ``input_weights`` is ``[hidden, input]`` and
    ``recurrent_weights`` ``[hidden, hidden]`` (row: target); the diagonal
    is masked unless ``autapses=True``.  Both are initialised as
    ``nn.Linear`` weights (uniform in :math:`\pm 1/\sqrt{\text{fan-in}}`).
    Other parameters as :class:`LIF`.  The state carries the last spikes ``z``.

    Parameters
    ----------
    input_size : int
        Number of input features, >= 1.
    hidden_size : int
        Number of neurons, >= 1; per-neuron parameters have 1 or
        ``hidden_size`` values.
    autapses : bool
        Keep the diagonal of ``recurrent_weights``.
    **kwargs
        As :class:`LIF`.
    """

    def __init__(self, input_size, hidden_size, tau_m=10.0, v_th=1.0, v_reset=0.0, v_rest=0.0, dt=1.0,
                 tau_syn=None, t_ref=0.0, reset="value", surrogate="superspike", alpha=None, integrator="exact",
                 trainable=False, batch_first=False, detach_reset=None, v_init=None, autapses=False, **kw):
        input_size = V.size("input_size", input_size)
        hidden_size = V.size("hidden_size", hidden_size)
        autapses = V.flag("autapses", autapses)
        super().__init__(tau_m, v_th, v_reset, v_rest, dt, tau_syn, t_ref, reset, surrogate, alpha, integrator,
                         trainable, batch_first, detach_reset, v_init, **kw)
        V.per_neuron(self._lengths, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.autapses = autapses
        self.input_weights = nn.Parameter(torch.empty(self.hidden_size, self.input_size))
        self.recurrent_weights = nn.Parameter(torch.empty(self.hidden_size, self.hidden_size))
        bound_in = 1.0 / math.sqrt(max(1, self.input_size))
        bound_rec = 1.0 / math.sqrt(max(1, self.hidden_size))
        with torch.no_grad():
            self.input_weights.uniform_(-bound_in, bound_in)
            self.recurrent_weights.uniform_(-bound_rec, bound_rec)
        self.register_buffer("autapse_mask", torch.ones(self.hidden_size, self.hidden_size)
                             - (0.0 if autapses else torch.eye(self.hidden_size)))

    def _layout(self):
        return f"[B, T, {self.input_size}] (batch_first=True)" if self.batch_first else f"[T, B, {self.input_size}]"

    def _features(self, x):
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            shape = tuple(x.transpose(0, 1).shape) if self.batch_first else tuple(x.shape)
            raise ValueError(f"x must have shape {self._layout()}, got {shape}")
        return self.hidden_size

    def _run(self, x, state, nat, aff, return_v):
        xin = torch.matmul(x, self.input_weights.t().to(x.dtype))
        w = self.recurrent_weights.to(x.dtype) * self.autapse_mask.to(x.dtype)
        return F.recurrent_layer(xin, w, state, nat, aff, self.spec, v_init=self._v0(), record_v=return_v)

    def extra_repr(self):
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, autapses={self.autapses}, " \
               + super().extra_repr()
