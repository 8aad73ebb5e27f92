r"""``nn.Module`` shells over :mod:`eventsim.torch.functional`.

Every layer takes a time-first input ``x[T, B, ...]`` (``batch_first=True``:
``[B, T, ...]``, as sinabs) and is called as ``spikes, state = layer(x)``
or ``layer(x, state)`` for truncated BPTT; ``layer(x, state, return_v=True)``
also returns the membrane after every step.  The modules only hold
parameters and defaults; the arithmetic is in the fused kernels.

Composition: with ``return_state=False`` a layer returns the spikes only,
so it composes in ``nn.Sequential`` like any activation::

    model = nn.Sequential(nn.Linear(64, 128), LIF(return_state=False),
                          nn.Linear(128, 10), LIF(return_state=False))
    spikes = model(x)                      # x: [T, B, 64] -> [T, B, 10]

Each call then starts from rest, unless ``keep_state=True``: the layer
keeps its final state (``layer.state``) and the next call continues from
it (truncated BPTT over consecutive chunks of one long sequence);
``layer.detach_state()`` cuts the graph at a chunk boundary and
``layer.reset_state()`` starts the next call from rest again
(:func:`detach_states` / :func:`reset_states` do it for every layer of a
model).  :class:`TimeDistributed` runs any per-sample module (``nn.Conv2d``,
pooling, ``nn.Flatten``, ``nn.BatchNorm2d``) over the ``T`` and ``B`` axes.

Trainable parameters (``trainable``): ``tau_m``, ``tau_syn``, ``v_th``,
``v_reset`` (``reset="value"``) and, on adaptive layers, ``tau_theta`` and
``d_theta``; ``trainable=True`` makes every one the layer uses trainable.
Trainable time constants (``tau_m``, ``tau_syn``, ``tau_theta``) are stored
through the parametrisation :math:`\tau = \tau_{min} +
\operatorname{softplus}(p)` with :math:`\tau_{min}` = :data:`TAU_MIN_STEPS`
``* dt`` (``torch.nn.utils.parametrize``; the raw ``p`` is
``layer.parametrizations.tau_m.original``), so no optimiser step can make
them zero or negative; ``layer.tau_m`` reads the time constant in ms.  The
potentials and ``d_theta`` are plain parameters (``d_theta < 0`` lowers the
threshold, as in the simulator; a ``v_reset`` trained up to ``v_th`` makes
the neuron fire at every step, and :func:`~eventsim.torch.to_network` then
refuses the layer, as the simulator's models do).

Input scaling of the exact integrator: a constant input ``x`` settles at
``v = v_rest + x``, and one step moves the membrane by only
:math:`(1 - e^{-dt/\tau_m})\,x` (about ``dt / tau_m``).  A default
``nn.Linear`` (weights about :math:`\pm 1/\sqrt{\text{fan-in}}`) fed with
sparse spikes therefore rarely drives a layer with ``tau_m >> dt`` to
threshold; :func:`eventsim.torch.init_for_spikes` rescales the weights of
the affine layers in front of each neuron layer so that it fires from the
first epoch.

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
from torch.nn.utils import parametrize

from ..models._params import check
from ..models.family import by_code
from ..models.lif import family_of
from . import _validate as V
from . import functional as F

_TRAINABLE = ("tau_m", "tau_syn", "v_th", "v_reset", "tau_theta", "d_theta")
_TIME_CONSTANTS = ("tau_m", "tau_syn", "tau_theta")

#: Smallest trainable time constant, in steps: :math:`\tau_{min}` = ``TAU_MIN_STEPS * dt`` (ms).  Below
#: dt / 50 the exact propagators of current synapses (:math:`e^{-dt/\tau}`) underflow.
TAU_MIN_STEPS = 0.02


class PositiveTime(nn.Module):
    r"""Parametrisation :math:`\tau = \tau_{min} + \operatorname{softplus}(p)` of a trainable time constant.

    Registered with ``torch.nn.utils.parametrize`` on the ``tau_m``,
    ``tau_syn`` and ``tau_theta`` of a layer with those names in ``trainable``; the optimiser
    updates the unconstrained ``p``, and every value of ``p`` gives a valid
    time constant :math:`\tau > \tau_{min}`.

    Parameters
    ----------
    tau_min : float
        Lower bound (ms), > 0.
    """

    def __init__(self, tau_min):
        super().__init__()
        self.tau_min = float(tau_min)

    def forward(self, p):
        return self.tau_min + nn.functional.softplus(p)

    def right_inverse(self, tau):
        """The raw ``p`` of a time constant ``tau > tau_min`` (ms), computed in float64."""
        y = tau.detach().to(torch.float64) - self.tau_min
        return (y + torch.log(-torch.expm1(-y))).to(tau.dtype)

    def extra_repr(self):
        return f"tau_min={self.tau_min:g} ms"


def _trainable_set(trainable, usable):
    """The set of trainable parameter names from ``trainable`` (bool, a name or an iterable of names).

    ``usable``: ``{name: None, or why the layer does not use it}``.  True
    selects every used parameter; a name the layer does not use is refused.
    """
    if trainable is None or isinstance(trainable, (bool, np.bool_)):
        return {k for k, why in usable.items() if why is None} if trainable else set()
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
    for t in names:
        if usable[t] is not None:
            raise ValueError(f"trainable={t!r}: {usable[t]}, so it cannot be trained")
    return set(names)


def _components_tensor(name, comps, checked, dtype):
    """``K`` threshold components as one tensor: ``[K]`` (all scalars) or ``[K, n]`` (per-neuron values)."""
    vals = [checked[f"{name}[{k}]"] for k in range(len(comps))]
    lengths = {v.size for v in vals if isinstance(v, np.ndarray)}
    n = lengths.pop() if lengths else None  # (equal lengths: checked by V.same_length)
    rows = []
    for c, v in zip(comps, vals):
        t = torch.as_tensor(c.detach() if isinstance(c, torch.Tensor) else np.asarray(v), dtype=dtype).reshape(-1)
        rows.append(t.expand(n) if n is not None else t.reshape(()))
    return torch.stack(rows).clone()


class _Layer(nn.Module):
    """Common parameter handling of the neuron layers."""

    _leaky = True
    _adaptive = False

    def __init__(self, tau_m=10.0, v_th=1.0, v_reset=0.0, v_rest=0.0, dt=1.0, tau_syn=None, t_ref=0.0,
                 reset="value", surrogate="superspike", alpha=None, integrator="exact", trainable=False,
                 batch_first=False, detach_reset=None, v_init=None, norm_input=None, spike_fn=None,
                 tau_theta=None, d_theta=None, return_state=True, keep_state=False, psc="exp"):
        super().__init__()
        V.choice("psc", psc, ("exp", "alpha"))
        if psc == "alpha":
            why = ("needs tau_syn (the alpha synapse's time constant, ms)" if tau_syn is None else
                   f"needs integrator='exact' (got {integrator!r})" if integrator != "exact" else
                   "is for LIF layers (not IF, ALIF or LIFRecurrent)" if (not self._leaky or self._adaptive or
                                                                         not isinstance(self, LIF)) else None)
            if why is not None:
                raise ValueError(f"psc='alpha' {why}")
        self.psc = psc
        # every argument is checked before anything is stored (see eventsim.torch._validate)
        dt = V.scalar("dt", dt, "a finite number > 0 (ms)", lambda v: v > 0)
        return_state = V.flag("return_state", return_state)
        keep_state = V.flag("keep_state", keep_state)
        checked = {}
        if self._leaky:
            checked["tau_m"] = V.positive("tau_m", tau_m)
        checked["tau_syn"] = V.positive("tau_syn", tau_syn, allow_none=True)
        for name, value in (("v_th", v_th), ("v_reset", v_reset), ("v_rest", v_rest)):
            checked[name] = V.param(name, value)
        if self._adaptive:
            checked.update(F.check_components(tau_theta, d_theta))
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
        norm_input = V.flag("norm_input", norm_input, allow_none=True)
        if norm_input is not None and integrator != "sinabs":
            raise ValueError(f"norm_input={norm_input!r} is an option of integrator='sinabs' only "
                             f"(got integrator={integrator!r}); leave it out")
        norm_input = True if norm_input is None else norm_input
        if reset == "subtract" and np.any(np.asarray(checked["v_reset"]) != 0):
            raise ValueError(f"v_reset={v_reset!r} has no effect with reset='subtract' (the membrane drops by "
                             "v_th - v_rest); leave it out or use reset='value'")
        batch_first = V.flag("batch_first", batch_first)
        self.spec = F.make_spec(integrator, synapse=tau_syn is not None, reset=reset, adaptive=self._adaptive,
                                detach_reset=detach_reset, surrogate=surrogate, alpha=alpha,
                                ref_steps=ref_steps, spike_fn=spike_fn)
        # the family the layer runs (the simulator's own resolution), kept by its code
        self._family_code = family_of(psc if tau_syn is not None else "delta", adaptive=self._adaptive).code
        no_theta = None if self._adaptive else f"{type(self).__name__} has no threshold adaptation"
        usable = dict(tau_m=None if self._leaky else "the non-leaky IF has no tau_m",
                      tau_syn=None if tau_syn is not None else "tau_syn=None (delta synapses)",
                      v_th=None,
                      v_reset=("reset='subtract' does not use v_reset" if reset == "subtract" else
                               "integrator='snntorch' resets to 0 (snnTorch's 'zero' reset)"
                               if integrator == "snntorch" else None),
                      tau_theta=no_theta, d_theta=no_theta)
        trainable = _trainable_set(trainable, usable)
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
        self.return_state = return_state
        self.keep_state = keep_state
        #: final state of the last call (kept with ``keep_state=True`` only; see :meth:`detach_state`)
        self.state = None
        tau_min = TAU_MIN_STEPS * dt
        for name in sorted(self.trainable & set(_TIME_CONSTANTS)):
            for key in sorted(k for k in checked if k == name or k.startswith(name + "[")):
                if np.any(np.asarray(checked[key]) <= tau_min):
                    raise ValueError(f"{key}={checked[key]!r}: a trainable time constant must be > tau_min = "
                                     f"{tau_min:g} ms (TAU_MIN_STEPS * dt; tau = tau_min + softplus(p))")
        #: number of threshold components (0 without adaptation); ``tau_theta`` and ``d_theta`` are
        #: ``[K]`` or ``[K, n]`` tensors when K > 1
        self.theta_components = len(F.components(tau_theta)) if self._adaptive else 0
        values = dict(tau_m=tau_m if self._leaky else math.inf, v_th=v_th, v_reset=v_reset, v_rest=v_rest,
                      tau_syn=tau_syn, tau_theta=tau_theta, d_theta=d_theta)
        for name, value in values.items():
            if value is None:
                setattr(self, name, None)
                continue
            if name in ("tau_theta", "d_theta") and self.theta_components > 1:
                t = _components_tensor(name, F.components(value), checked, torch.get_default_dtype())
            else:
                if name in ("tau_theta", "d_theta") and isinstance(value, tuple):  # one component as a 1-tuple
                    value = value[0]
                t = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value,
                                    dtype=torch.get_default_dtype()).clone().detach()
            if (name in checked or name in ("tau_theta", "d_theta")) and not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name}={value!r} overflows the default dtype {t.dtype} (largest magnitude "
                                 f"{torch.finfo(t.dtype).max:.4g}); use a smaller value or "
                                 "torch.set_default_dtype(torch.float64)")
            if name in self.trainable:
                setattr(self, name, nn.Parameter(t))
                if name in _TIME_CONSTANTS:
                    parametrize.register_parametrization(self, name, PositiveTime(tau_min))
            else:
                self.register_buffer(name, t)
        if reset == "value" and integrator != "snntorch" and not bool((self.v_reset < self.v_th).all()):
            raise ValueError(f"v_reset={v_reset!r} must be < v_th={v_th!r} (mV) for reset='value'; they are equal "
                             f"in the default dtype {self.v_th.dtype}")
        self.v_init = None if v_init is None else torch.as_tensor(v_init)
        self._cache = None

    # ------------------------------------------------------------------ coefficients
    _PARAMS = ("tau_m", "tau_syn", "v_th", "v_reset", "v_rest", "tau_theta", "d_theta")

    def _stored(self):
        """The stored tensors behind the neuron parameters (raw ``p`` of a parametrised time constant)."""
        out = []
        for name in self._PARAMS:
            if parametrize.is_parametrized(self, name):
                out.append(getattr(self.parametrizations, name).original)
            else:
                t = getattr(self, name, None)
                if isinstance(t, torch.Tensor):
                    out.append(t)
        return out

    def _coefficients(self, n, dtype, device):
        params = self._stored()
        grad = torch.is_grad_enabled() and any(p.requires_grad for p in params)
        key = None
        if not grad and not torch.compiler.is_compiling():  # (no cache while torch.compile traces)
            try:
                key = (n, dtype, str(device), tuple(p._version for p in params), tuple(p.data_ptr() for p in params))
            except RuntimeError:  # tensors without storage (torch.func transforms): no caching
                key = None
        if key is not None and self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        nat, aff = F.layer_rows(self.family, n, self.dt, dtype, device, spec=self.spec, norm_input=self.norm_input,
                                leaky=self._leaky, **self._params())
        if key is not None:
            self._cache = (key, (nat, aff.detach()))
        return nat, aff

    @property
    def family(self):
        """The :class:`eventsim.models.family.Family` this layer runs (its ``torch`` declares the rows and kernels)."""
        return by_code(self._family_code)

    def _params(self):
        """The layer's values of its family's torch parameters (``family.torch.params``), as tensors.

        Besides the neuron parameters, a family may read the layer's flags
        as parameters: ``ref_steps``, ``reset``, ``surrogate``, ``alpha``,
        ``detach`` (codes of :attr:`spec`, float64 scalars).
        """
        tt, dd = self._theta_args()
        sp = self.spec
        code = lambda v: (lambda: torch.tensor(float(v), dtype=torch.float64))  # noqa: E731
        known = dict(tau_m=lambda: self.tau_m, tau_syn=lambda: self.tau_syn, v_th=lambda: self.v_th,
                     v_reset=lambda: self.v_reset, v_rest=lambda: self.v_rest, tau_theta=lambda: tt,
                     d_theta=lambda: dd, ref_steps=code(sp.ref_steps), reset=code(sp.reset),
                     surrogate=code(sp.surrogate), alpha=code(sp.alpha), detach=code(sp.detach_reset))
        return {name: known[name]() for name in self.family.torch.params}

    def _theta_args(self):
        """``(tau_theta, d_theta)`` as :func:`eventsim.torch.functional.coefficients` takes them
        (tuples of components when K > 1; None without adaptation)."""
        K = self.theta_components
        if K == 0:
            return None, None
        if K == 1:
            return self.tau_theta, self.d_theta
        return tuple(self.tau_theta.unbind(0)), tuple(self.d_theta.unbind(0))

    def _layout(self):
        return "[B, T, ...] (batch_first=True)" if self.batch_first else "[T, B, ...]"

    def _features(self, x):
        if x.dim() < 2:
            raise ValueError(f"x must have shape {self._layout()}, got {tuple(x.shape)}")
        return math.prod(x.shape[2:])

    def forward(self, x, state=None, return_v=False):
        """Run the layer over a sequence.

        Parameters
        ----------
        x : Tensor [T, B, ...] (``batch_first``: [B, T, ...])
            Input (exact integrator: mV, see the module docstring), float32,
            float64, float16 or bfloat16, on the CPU or a CUDA device; a
            list or ndarray is refused (convert it with ``torch.as_tensor``).
            float16 and bfloat16 (e.g. under ``torch.autocast``) run in
            float32 inside: the spikes and ``v`` come back in the input's
            dtype (spikes exactly), the state stays float32, and the
            gradient on ``x`` is rounded once to the input's dtype.
        state : NeuronState, optional
            State returned by a previous call (truncated BPTT); None starts
            at rest (or, with ``keep_state=True``, from ``self.state``).
        return_v : bool
            Also return the membrane potential after every step.

        Returns
        -------
        spikes : Tensor, same shape as ``x``
        state : NeuronState (``state.v`` is [B, ...], float32 for half-precision input; not with
            ``return_state=False``)
        v : Tensor, same shape as ``x`` (only with ``return_v``)
        """
        x = V.tensor_input("x", x, layout=self._layout())
        return_v = V.flag("return_v", return_v)
        F.check_state(state)
        if state is None and self.keep_state and self.state is not None:
            state = self.state
            b = x.shape[0] if self.batch_first else x.shape[1]
            if state.v.shape[0] != b:
                raise ValueError(f"x has batch size {b} but the kept state (keep_state=True) has "
                                 f"{state.v.shape[0]}; call reset_state() before a new sequence")
        if self.batch_first:
            x = x.transpose(0, 1)
        out_dtype = x.dtype
        if out_dtype in V.HALF:  # float16 / bfloat16: float32 state and arithmetic inside
            x = x.float()
        n = self._features(x)
        V.per_neuron(self._lengths, n)
        nat, aff = self._coefficients(n, x.dtype, x.device)
        spikes, st, vtr = self._run(x, state, nat, aff, return_v)
        if out_dtype != x.dtype:
            spikes = spikes.to(out_dtype)
            vtr = vtr.to(out_dtype) if vtr is not None else None
        if self.keep_state:
            self.state = st
        if self.batch_first:
            spikes = spikes.transpose(0, 1)
            vtr = vtr.transpose(0, 1) if vtr is not None else None
        if not self.return_state:
            return (spikes, vtr) if return_v else spikes
        return (spikes, st, vtr) if return_v else (spikes, st)

    def reset_state(self):
        """Forget the kept state: the next call starts at rest (``keep_state=True``)."""
        self.state = None

    def detach_state(self):
        """Cut the autograd graph of the kept state (a truncated-BPTT boundary), keeping its values."""
        if self.state is not None:
            self.state = F.NeuronState(*(None if t is None else t.detach() for t in self.state))

    def _run(self, x, state, nat, aff, return_v):
        return F.run_layer(self.family, x, state, nat, aff, self.spec, v_init=self._v0(), record_v=return_v)

    def _v0(self):
        """Initial membrane potential (mV) when no state is given: ``v_init`` or ``v_rest``."""
        return self.v_rest.detach() if self.v_init is None else self.v_init

    def extra_repr(self):
        s = f"dt={self.dt}, integrator={self.integrator!r}, reset={self.reset!r}, surrogate={self.surrogate!r}"
        if not self.return_state:
            s += ", return_state=False"
        if self.keep_state:
            s += ", keep_state=True"
        if self.t_ref:
            s += f", t_ref={self.t_ref}"
        if self.psc != "exp":
            s += f", psc={self.psc!r}"
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
        A ``v_reset`` other than 0 is refused with ``"subtract"``, which
        does not use it.
    surrogate : str
        Surrogate derivative, see :mod:`eventsim.torch.surrogate`.
    alpha : float, optional
        Its parameter, finite and > 0 (default per surrogate).
    integrator : {"exact", "euler", "snntorch", "spikingjelly", "sinabs"}
        ``"exact"``: the simulator's exact integration.  The others
        reproduce norse (``LIFBoxCell`` / ``LIFCell``), snnTorch ``Leaky``,
        SpikingJelly ``LIFNode`` and sinabs ``LIF`` bit for bit in the
        forward pass.
    trainable : bool, str or iterable of {"tau_m", "tau_syn", "v_th", "v_reset", "tau_theta", "d_theta"}
        Which parameters are ``nn.Parameter`` s (validated as the others
        at construction); True: every one the layer uses (``v_reset`` only
        with ``reset="value"`` outside snnTorch mode, ``tau_theta`` and
        ``d_theta`` on adaptive layers); naming one the layer does not use
        is refused.  Time constants are trained through
        :math:`\tau = \tau_{min} + \operatorname{softplus}(p)`
        (:class:`PositiveTime`, :math:`\tau_{min}` = ``TAU_MIN_STEPS * dt``);
        their initial values must exceed :math:`\tau_{min}`.
    batch_first : bool
        Input and output are ``[B, T, ...]``.
    detach_reset : bool, optional
        Cut the gradient through the reset (always so for snnTorch).
    v_init : float, array_like or Tensor, optional
        Membrane potential (mV) at the start when no state is given
        (default ``v_rest``), finite, one value or one per neuron.
    norm_input : bool, optional
        ``integrator="sinabs"`` only (refused otherwise): scale the input by
        ``1 - exp(-dt/tau_m)`` (default True, as sinabs).
    spike_fn : {"single", "multi"}, optional
        sinabs only: ``"multi"`` (sinabs' default ``MultiSpike``, the default
        here with a subtractive reset) emits ``trunc(v / v_th)`` spikes.
    return_state : bool
        True: ``layer(x)`` returns ``(spikes, state)``; False: the spikes
        only, for ``nn.Sequential``.
    keep_state : bool
        Keep the final state in ``layer.state`` and start the next call
        from it (truncated BPTT; see :meth:`detach_state`,
        :meth:`reset_state`).  The batch size must then stay the same
        until :meth:`reset_state`.
    psc : {"exp", "alpha"}
        Shape of the synaptic current with ``tau_syn``: ``"exp"`` (NEST's
        ``iaf_psc_exp``) or ``"alpha"`` (NEST's ``iaf_psc_alpha``: the
        input drives :math:`di` and the current follows
        :math:`\dot i = di - i/\tau_{syn}`, integrated exactly by the
        propagator of :mod:`eventsim.models.psc_alpha`, the clock engine's;
        a constant input ``x`` settles at :math:`v = v_{rest} + x`).
        ``"alpha"``: exact integrator, feed-forward LIF only, no ``return_v``;
        the state carries ``di`` (mV/ms) and ``i`` (mV).

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
                 detach_reset=None, v_init=None, return_state=True, keep_state=False):
        super().__init__(math.inf, v_th, v_reset, v_rest, dt, tau_syn, t_ref, reset, surrogate, alpha,
                         integrator, trainable, batch_first, detach_reset, v_init, return_state=return_state,
                         keep_state=keep_state)


class ALIF(_Layer):
    r"""LIF layer with an adaptive threshold of ``K`` components (as :class:`eventsim.ALIF`).

    :math:`\vartheta_t = v_{th} + \sum_k \theta_{k,t}`, :math:`\theta_{k,t} = e^{-h/\tau_{\theta,k}}
    \theta_{k,t-1}` (every step, after the membrane update), :math:`\theta_k \mathrel{+}= d_{\theta,k}`
    at each spike; with ``reset="subtract"`` the membrane drops by the crossed effective
    threshold minus ``v_rest``.  The state's ``theta`` is ``[B, ...]`` with one component and
    ``[K, B, ...]`` with several.

    Parameters
    ----------
    tau_theta : float, array_like, Tensor or tuple of them
        Adaptation time constant (ms), finite and > 0.  A tuple gives one
        entry per component (as :class:`eventsim.ALIF`: ``(20.0, 200.0)`` is
        two components), each a number or one value per neuron; a list,
        ndarray or tensor is one component with one value per neuron.  With
        ``K > 1`` the layer stores them as one tensor ``[K]`` or ``[K, n]``.
    d_theta : float, array_like, Tensor or tuple of them
        Threshold jump per spike (mV), finite (negative lowers the
        threshold); the same number of components as ``tau_theta``.
    **kwargs
        As :class:`LIF`; ``trainable`` may also name ``"tau_theta"``
        (parametrised as the other time constants) and ``"d_theta"``.
    """

    _adaptive = True

    def __init__(self, tau_m=10.0, v_th=1.0, v_reset=0.0, v_rest=0.0, dt=1.0, tau_syn=None, t_ref=0.0,
                 reset="value", surrogate="superspike", alpha=None, integrator="exact", trainable=False,
                 batch_first=False, detach_reset=None, v_init=None, tau_theta=100.0, d_theta=0.1,
                 return_state=True, keep_state=False, **kw):
        super().__init__(tau_m, v_th, v_reset, v_rest, dt, tau_syn, t_ref, reset, surrogate, alpha,
                         integrator, trainable, batch_first, detach_reset, v_init, tau_theta=tau_theta,
                         d_theta=d_theta, return_state=return_state, keep_state=keep_state, **kw)


class LIFRecurrent(_Layer):
    r"""Recurrent LIF layer (as norse's ``LIFRecurrent``); with ``tau_theta`` / ``d_theta`` a recurrent ALIF.

    The input of step ``t`` is ``W_in x[t] + W_rec z[t-1]``: the recurrent
    spikes act one step later.  Given ``tau_theta`` or ``d_theta`` (or
    both; the other takes :class:`ALIF`'s default), the threshold adapts
    as in :class:`ALIF` (a long short-term memory SNN, as norse's LSNN
    and Bellec et al. 2018).  ``input_weights`` is ``[hidden, input]`` and
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
    tau_theta : float, array_like, Tensor or tuple of them, optional
        Adaptation time constant (ms), finite and > 0 (default 100 when
        only ``d_theta`` is given); a tuple gives several threshold
        components, as :class:`ALIF`.
    d_theta : float, array_like, Tensor or tuple of them, optional
        Threshold jump per spike (mV), finite (default 0.1 for each
        component when only ``tau_theta`` is given).
    **kwargs
        As :class:`LIF`.
    """

    def __init__(self, input_size, hidden_size, tau_m=10.0, v_th=1.0, v_reset=0.0, v_rest=0.0, dt=1.0,
                 tau_syn=None, t_ref=0.0, reset="value", surrogate="superspike", alpha=None, integrator="exact",
                 trainable=False, batch_first=False, detach_reset=None, v_init=None, autapses=False,
                 tau_theta=None, d_theta=None, return_state=True, keep_state=False, **kw):
        input_size = V.size("input_size", input_size)
        hidden_size = V.size("hidden_size", hidden_size)
        autapses = V.flag("autapses", autapses)
        adaptive = tau_theta is not None or d_theta is not None
        if adaptive:  # the one not given: ALIF's default for each component of the other
            if tau_theta is None:
                tau_theta = (100.0,) * len(d_theta) if isinstance(d_theta, tuple) else 100.0
            if d_theta is None:
                d_theta = (0.1,) * len(tau_theta) if isinstance(tau_theta, tuple) else 0.1
        object.__setattr__(self, "_adaptive", adaptive)  # before nn.Module.__init__: a plain attribute
        super().__init__(tau_m, v_th, v_reset, v_rest, dt, tau_syn, t_ref, reset, surrogate, alpha, integrator,
                         trainable, batch_first, detach_reset, v_init, tau_theta=tau_theta, d_theta=d_theta,
                         return_state=return_state, keep_state=keep_state, **kw)
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
        return F.run_layer(self.family, xin, state, nat, aff, self.spec, v_init=self._v0(), record_v=return_v,
                           w_rec=w)

    def extra_repr(self):
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, autapses={self.autapses}, " \
               + super().extra_repr()


class TimeDistributed(nn.Module):
    r"""Apply a per-sample module to every step of a sequence ``[T, B, ...]``.

    The time and batch axes are merged into one batch axis of ``T * B``
    samples, ``module`` runs once on them, and the output is split back
    into ``[T, B, ...]`` (a view where possible, no copy); so ``nn.Conv2d``,
    pooling, ``nn.Flatten``, ``nn.BatchNorm2d`` (statistics over all
    steps and samples), ``nn.Dropout`` run over a spike train::

        nn.Sequential(TimeDistributed(nn.Conv2d(1, 8, 3, padding=1)), LIF(return_state=False),
                      TimeDistributed(nn.AvgPool2d(2)), TimeDistributed(nn.Flatten()),
                      nn.Linear(8 * 4 * 4, 10), LIF(return_state=False))

    Parameters
    ----------
    module : nn.Module
        Any module taking ``[N, ...]`` (N samples).  The two leading axes
        may as well be ``[B, T]`` (``batch_first`` layers): they are kept
        in their order.
    """

    def __init__(self, module):
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
        self.module = module

    def forward(self, x):
        """``module`` over ``x [T, B, ...]``; returns ``[T, B, ...]``."""
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor [T, B, ...] with at least two axes, got {shape}")
        a, b = x.shape[0], x.shape[1]
        y = self.module(x.flatten(0, 1))
        return y.unflatten(0, (a, b))


class FamilyLayer(nn.Module):
    """Shell of a layer of a neuron family declared with torch steps (``family.torch``, see
    :class:`eventsim.models.family.TorchSteps`): holds its parameters (buffers, or trainable
    ``nn.Parameter`` s), computes its coefficient rows and runs :func:`eventsim.torch.functional.family_layer`.

    A subclass sets :attr:`family`, validates its own arguments and passes
    them to ``__init__``; ``time_constants`` names the parameters trained
    through :class:`PositiveTime`.  ``layer(x)`` returns ``(y, state)``
    (``return_state=False``: ``y``); ``keep_state``, :meth:`reset_state` and
    :meth:`detach_state` as for :class:`LIF`.
    """

    #: The family (an :class:`eventsim.models.family.Family` with torch steps); set by the subclass.
    family = None

    def __init__(self, params, dt, trainable=(), time_constants=(), init=None, batch_first=False,
                 return_state=True, keep_state=False):
        super().__init__()
        F.torch_family(self.family, "family")
        self.dt = dt
        self.batch_first = V.flag("batch_first", batch_first)
        self.return_state = V.flag("return_state", return_state)
        self.keep_state = V.flag("keep_state", keep_state)
        self.trainable = frozenset(trainable)
        #: final state of the last call (kept with ``keep_state=True`` only)
        self.state = None
        self._names = tuple(self.family.torch.params)
        self._lengths = {k: np.asarray(v).size for k, v in params.items() if np.ndim(v) > 0}
        tau_min = TAU_MIN_STEPS * dt
        for name in self._names:
            value = params.get(name)
            if value is None:
                setattr(self, name, None)
                continue
            t = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value,
                                dtype=torch.get_default_dtype()).clone().detach()
            if name in self.trainable:
                setattr(self, name, nn.Parameter(t))
                if name in time_constants:
                    if bool((t <= tau_min).any()):
                        raise ValueError(f"{name}={value!r}: a trainable time constant must be > tau_min = "
                                         f"{tau_min:g} ms (TAU_MIN_STEPS * dt; tau = tau_min + softplus(p))")
                    parametrize.register_parametrization(self, name, PositiveTime(tau_min))
            else:
                self.register_buffer(name, t)
        self._init = dict(init or {})

    def _params(self):
        return {name: getattr(self, name) for name in self._names}

    def _layout(self):
        return "[B, T, ...] (batch_first=True)" if self.batch_first else "[T, B, ...]"

    def forward(self, x, state=None):
        """Run the layer over ``x [T, B, ...]`` (``batch_first``: ``[B, T, ...]``); see the class docstring."""
        x = V.tensor_input("x", x, layout=self._layout())
        F.check_state(state)
        if state is None and self.keep_state and self.state is not None:
            state = self.state
        if self.batch_first:
            x = x.transpose(0, 1)
        n = math.prod(x.shape[2:])
        V.per_neuron(self._lengths, n)
        dtype = torch.float32 if x.dtype in V.HALF else x.dtype
        nat, aff = F.layer_rows(self.family, n, self.dt, dtype, x.device, **self._params())
        init = {k: (getattr(self, v) if isinstance(v, str) else v) for k, v in self._init.items()}
        y, st, _ = F.run_layer(self.family, x, state, nat, aff, init=init)
        if self.keep_state:
            self.state = st
        if self.batch_first:
            y = y.transpose(0, 1)
        return (y, st) if self.return_state else y

    def reset_state(self):
        """Forget the kept state: the next call starts at rest (``keep_state=True``)."""
        self.state = None

    def detach_state(self):
        """Cut the autograd graph of the kept state (a truncated-BPTT boundary), keeping its values."""
        if self.state is not None:
            self.state = F.NeuronState(*(None if t is None else t.detach() for t in self.state))

    def _v0(self):
        """Initial membrane potential (mV) without a state (detached): the ``init`` of ``v``, else 0."""
        v = self._init.get("v", 0.0)
        v = getattr(self, v) if isinstance(v, str) else v
        return v.detach() if isinstance(v, torch.Tensor) else torch.as_tensor(v)

    def extra_repr(self):
        s = f"dt={self.dt}"
        if self.trainable:
            s += f", trainable={sorted(self.trainable)}"
        return s


class LI(FamilyLayer):
    r"""Leaky integrator without threshold (NIR's ``LI``, norse's ``LICell``): a readout layer.

    Runs the family of :mod:`eventsim.models.li` (the clock engine's step,
    exact): with ``tau_syn=None``

    .. math:: v_t = v_{rest} + e^{-h/	au_m}(v_{t-1} - v_{rest}) + (1 - e^{-h/	au_m})\, x_t,

    with ``tau_syn`` the input drives an exponential current,
    :math:`i_t = e^{-h/	au_{syn}} i_{t-1} + g\,x_t`, that reaches ``v`` from
    the next step on (:math:`g` such that a constant ``x`` again settles at
    :math:`v = v_{rest} + x`).  ``layer(x)`` returns the membrane potential
    after every step, ``v [T, B, ...]`` (mV), and the final state
    (``v``, ``i``).  No spike, so the gradient is exact (no surrogate),
    also on the trainable parameters.

    Parameters
    ----------
    tau_m : float, array_like or Tensor
        Membrane time constant (ms), finite and > 0, one value or one per neuron.
    v_rest : float, array_like or Tensor
        Resting potential (mV), finite.
    dt : float
        Step (ms), finite and > 0.
    tau_syn : float, array_like, Tensor or None
        Synaptic time constant (ms), finite and > 0; None: the input (mV,
        current times membrane resistance) is held over the step.
    trainable : bool, str or iterable of {"tau_m", "v_rest", "tau_syn"}
        Trainable parameters (time constants through :class:`PositiveTime`).
    v_init : float, array_like or Tensor, optional
        Membrane potential (mV) at the start without a state (default ``v_rest``).
    batch_first, return_state, keep_state : bool
        As :class:`LIF`.

    Raises
    ------
    ValueError, TypeError
        For a parameter that is not a finite number or 1-D array (time
        constants > 0), per-neuron parameters of different lengths, or a
        trainable name the layer does not have; every message names the argument.
    """

    @property
    def family(self):
        from ..models.li import LI_FAMILY

        return LI_FAMILY

    def __init__(self, tau_m=10.0, v_rest=0.0, dt=1.0, tau_syn=None, trainable=False, v_init=None,
                 batch_first=False, return_state=True, keep_state=False):
        dt = V.scalar("dt", dt, "a finite number > 0 (ms)", lambda v: v > 0)
        checked = {"tau_m": V.positive("tau_m", tau_m), "v_rest": V.param("v_rest", v_rest),
                   "tau_syn": V.positive("tau_syn", tau_syn, allow_none=True)}
        v0 = V.param("v_init", v_init, allow_none=True)
        V.same_length({**checked, "v_init": v0})
        usable = {"tau_m": None, "v_rest": None,
                  "tau_syn": None if tau_syn is not None else "tau_syn=None (the input is held over the step)"}
        if trainable is None or isinstance(trainable, (bool, np.bool_)):
            names = {k for k, why in usable.items() if why is None} if trainable else set()
        else:
            names = set([trainable] if isinstance(trainable, str) else list(trainable))
            for t in sorted(map(str, names)):
                if t not in usable:
                    raise ValueError(f"trainable={t!r} must be among {sorted(usable)}")
                if usable[t] is not None:
                    raise ValueError(f"trainable={t!r}: {usable[t]}, so it cannot be trained")
        values = {"tau_m": tau_m, "v_rest": v_rest, "tau_syn": tau_syn}
        super().__init__(values, dt, trainable=names, time_constants=("tau_m", "tau_syn"),
                         init={"v": "v_rest" if v_init is None else torch.as_tensor(v0)}, batch_first=batch_first,
                         return_state=return_state, keep_state=keep_state)
        self.v_init = None if v_init is None else torch.as_tensor(v0)


def _neuron_layers(model):
    return [m for m in model.modules() if isinstance(m, (_Layer, FamilyLayer))]


def reset_states(model):
    """Call :meth:`~LIF.reset_state` on every neuron layer of ``model`` (the next call starts at rest)."""
    for m in _neuron_layers(model):
        m.reset_state()


def detach_states(model):
    """Call :meth:`~LIF.detach_state` on every neuron layer of ``model`` (a truncated-BPTT boundary)."""
    for m in _neuron_layers(model):
        m.detach_state()
