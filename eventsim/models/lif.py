r"""Leaky and non-leaky integrate-and-fire neurons, integrated exactly.

Models
------
:class:`LIF`
    Leaky integrate-and-fire with delta synapses (voltage jumps, mV; NEST
    ``iaf_psc_delta``) or exponential current synapses (pA; NEST
    ``iaf_psc_exp``) with separate excitatory and inhibitory time constants.
:class:`IF`
    The same without leak (:math:`1/\tau_m = 0`).

Equations (exponential synapses; delta synapses drop :math:`I_{ex}, I_{in}`
and add each weight :math:`w` in mV to :math:`v` at the spike's arrival):

.. math::

    \frac{dv}{dt} = -\frac{v - v_{rest}}{\tau_m} + \frac{I_{ex} + I_{in} + I_e}{C_m},\qquad
    \frac{dI_{ex}}{dt} = -\frac{I_{ex}}{\tau_{syn,ex}},\qquad
    \frac{dI_{in}}{dt} = -\frac{I_{in}}{\tau_{syn,in}}

A spike arriving through a synapse of weight :math:`w` adds :math:`w` to
:math:`I_{ex}` if :math:`w \ge 0`, else to :math:`I_{in}` (the sign of the
weight selects the receptor, as in NEST).  When :math:`v \ge v_{th}` the neuron
spikes, :math:`v` is reset and clamped for ``t_ref`` ms.

Order of one step of length ``dt`` (as NEST; see
:func:`eventsim.models.dynamics.neuron_update`): exact subthreshold update
(skipped while refractory), ``v_min`` bound, synaptic current decay and
input, threshold test ``v >= v_th``, reset and start of the refractory
period.

With ``psc="alpha"`` each spike's current has the shape
:math:`w \frac{t}{\tau_{syn}} e^{1 - t/\tau_{syn}}` instead (NEST
``iaf_psc_alpha``); see :mod:`eventsim.models.psc_alpha`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import numpy as np
from numba import njit

from . import dynamics, iaf_event, lif_torch
from .dynamics import neuron_update, reset_voltage
from .family import Family, TorchSteps, block_kernel, register
from ._params import model_repr, as_param, broadcast, check, check_keywords, param_length, steps_of
from .lif_torch import TORCH_EULER, TORCH_EXACT, TORCH_SINABS, TORCH_SNNTORCH, TORCH_SPIKINGJELLY

_RESETS = {"value": dynamics.RESET_VALUE, "subtract": dynamics.RESET_SUBTRACT}


class Propagator(NamedTuple):
    """Exact one-step coefficients (float64; scalars or one per neuron).

    ``v(t+h) = v_rest + p_vv (v - v_rest) + p_vi I_e + p_ve I_ex + p_vn I_in``;
    ``I_ex(t+h) = p_ee I_ex``; ``I_in(t+h) = p_nn I_in``.
    Units: p_vv, p_ee, p_nn dimensionless; p_vi, p_ve, p_vn in mV/pA.
    """

    p_vv: np.ndarray
    p_vi: np.ndarray
    p_ve: np.ndarray
    p_vn: np.ndarray
    p_ee: np.ndarray
    p_nn: np.ndarray


def _inv(tau):
    """1/tau elementwise, 0 for None or infinity."""
    if tau is None:
        return 0.0
    return 1.0 / np.asarray(tau, dtype=np.float64)


_vec_prop = np.vectorize(getattr(dynamics.exp_propagators, "py_func", dynamics.exp_propagators), otypes=[np.float64] * 6)


def _ports(name, value):
    """``tau_syn`` as a tuple of floats (ms, each > 0), or None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise ValueError(f"{name}={value!r} must be a sequence of time constants (ms), one per receptor port "
                         "(NEST's iaf_psc_exp_multisynapse); for one time constant per sign of the weight "
                         "(NEST's tau_syn of iaf_psc_exp) give tau_syn_ex=..., tau_syn_in=...")
    taus = []
    for k, x in enumerate(value):
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name}[{k}]={x!r} must be a number (ms)")
        if not (math.isfinite(float(x)) and float(x) > 0):
            raise ValueError(f"{name}[{k}]={x!r} must be a finite number > 0 (ms)")
        taus.append(float(x))
    if not taus:
        raise ValueError(f"{name}=() must name at least one receptor port")
    return tuple(taus)


def propagator(model, dt):
    """Exact-integration coefficients of ``model`` for a step of ``dt`` ms.

    Computed once on the host in float64 with ``expm1`` forms; the
    ``tau_m == tau_syn`` limit is exact (no division by zero).

    Parameters
    ----------
    model : LIF, IF or ALIF
        The neuron model.
    dt : float
        Step length in ms (> 0).

    Returns
    -------
    Propagator
    """
    dt = float(dt)
    if not (dt > 0.0 and math.isfinite(dt)):
        raise ValueError(f"dt={dt!r} must be a finite number > 0 (ms)")
    inv_m = 0.0 if isinstance(model, IF) else _inv(model.tau_m)
    if model.tau_syn_ex is None:
        inv_ex = inv_in = 0.0
    else:
        inv_ex, inv_in = _inv(model.tau_syn_ex), _inv(model.tau_syn_in)
    out = _vec_prop(dt, inv_m, model.c_m, inv_ex, inv_in)
    out = [o if np.ndim(o) else float(o) for o in out]
    if model.tau_syn_ex is None:  # delta synapses: no synaptic currents
        out[2:] = [0.0, 0.0, 0.0, 0.0]
    return Propagator(*out)


@dataclass(frozen=True, repr=False)
class _IntegrateAndFire:
    """Common parameters and validation of the LIF / IF / ALIF families."""

    c_m: float = 250.0
    v_rest: float = 0.0
    v_reset: float = 0.0
    v_th: float = 15.0
    t_ref: float = 2.0
    i_e: float = 0.0
    tau_syn_ex: float | None = None
    tau_syn_in: float | None = None
    v_min: float | None = None
    reset: str = "value"
    # keyword-only: the positions of the other parameters stay as they were
    psc: str = field(default="exp", kw_only=True)
    tau_syn: tuple | None = field(default=None, kw_only=True)

    _resets = _RESETS
    #: Shapes of the postsynaptic current of a synapse with a time constant (``psc=``), see :attr:`synapse`.
    _PSCS = ("exp", "alpha")
    _keyword_hints = {}

    # ------------------------------------------------------------------ validation
    def __new__(cls, *args, **kwargs):
        # unknown keyword names (NEST's V_th, C_m, ...) get a TypeError listing the valid ones
        check_keywords(cls, kwargs, [f.name for f in fields(cls) if f.init], cls._keyword_hints)
        return super().__new__(cls)

    def __post_init__(self):
        for f in fields(self):
            if f.name in ("reset", "psc"):
                continue
            if f.name == "tau_syn":
                object.__setattr__(self, "tau_syn", _ports("tau_syn", self.tau_syn))
                continue
            value = getattr(self, f.name)
            if f.name in ("tau_syn_ex", "tau_syn_in", "v_min"):
                value = as_param(f.name, value, allow_none=True)
            elif f.name in ("tau_theta", "d_theta"):
                continue
            else:
                value = as_param(f.name, value)
            object.__setattr__(self, f.name, value)
        self._validate()
        param_length({f.name: getattr(self, f.name) for f in fields(self)
                      if isinstance(getattr(self, f.name), np.ndarray)})

    def _validate(self):
        if not isinstance(self.reset, str) or self.reset not in self._resets:
            raise ValueError(f"reset={self.reset!r} must be one of {sorted(self._resets)}")
        if not isinstance(self.psc, str) or self.psc not in self._PSCS:
            raise ValueError(f"psc={self.psc!r} must be one of {list(self._PSCS)} (the shape of the postsynaptic "
                             "current: 'exp' exponential, NEST iaf_psc_exp; 'alpha' alpha function, NEST "
                             "iaf_psc_alpha)")
        check("c_m", self.c_m, np.asarray(self.c_m) > 0, "c_m > 0 (pF)")
        check("t_ref", self.t_ref, np.asarray(self.t_ref) >= 0, "t_ref >= 0 (ms)")
        if self.reset == "value":
            check("v_reset", self.v_reset, np.asarray(self.v_reset) < np.asarray(self.v_th),
                  "v_reset < v_th (mV)")
        if (self.tau_syn_ex is None) != (self.tau_syn_in is None):
            raise ValueError(
                "tau_syn_ex and tau_syn_in must both be None (delta synapses) or both be "
                f"numbers (exponential synapses); got tau_syn_ex={self.tau_syn_ex!r}, "
                f"tau_syn_in={self.tau_syn_in!r}")
        if self.psc == "alpha" and self.tau_syn is not None:
            raise ValueError(f"psc='alpha' with tau_syn={self.tau_syn!r}: receptor ports have exponential currents "
                             "(psc='exp') only")
        if self.psc == "alpha" and self.tau_syn_ex is None:
            raise ValueError("psc='alpha' needs the synaptic time constants tau_syn_ex and tau_syn_in (ms); "
                             "got tau_syn_ex=None, tau_syn_in=None (delta synapses)")
        for name in ("tau_syn_ex", "tau_syn_in"):
            v = getattr(self, name)
            if v is not None:
                check(name, v, np.asarray(v) > 0, f"{name} > 0 (ms)")
        if self.v_min is not None:
            check("v_min", self.v_min, np.asarray(self.v_min) < np.asarray(self.v_th), "v_min < v_th (mV)")
        if self.tau_syn is not None and self.tau_syn_ex is not None:
            raise ValueError(f"tau_syn={self.tau_syn!r} (receptor ports) excludes tau_syn_ex / tau_syn_in "
                             f"(ports chosen by the weight's sign); got tau_syn_ex={self.tau_syn_ex!r}, "
                             f"tau_syn_in={self.tau_syn_in!r}: give one or the other")

    def __repr__(self):
        return model_repr(self)

    # ------------------------------------------------------------------ layout
    @property
    def synapse(self):
        """``"delta"`` (weights in mV), ``"exp"`` or ``"alpha"`` (current synapses, weights in pA, the sign
        selects the port) or ``"ports"`` (``tau_syn``: weights in pA into the port each connection names)."""
        if self.tau_syn is not None:
            return "ports"
        return "delta" if self.tau_syn_ex is None else self.psc

    @property
    def receptor_ports(self):
        """How many ports a connection chooses from with ``receptor=k`` (0: the weight's sign chooses)."""
        return 0 if self.tau_syn is None else len(self.tau_syn)

    @property
    def state_names(self):
        """Names of the recordable state variables."""
        if self.synapse == "ports":
            return ("v",) + tuple(self.state_columns) + self._extra_state
        names = {"delta": ("v",), "exp": ("v", "i_ex", "i_in"),
                 "alpha": ("v", "i_ex", "i_in", "di_ex", "di_in")}[self.synapse]
        return names + self._extra_state

    @property
    def state_columns(self):
        """The family's own state variables: ``{name: column of the engines' State.x}`` (alpha synapses: the
        currents' derivatives; receptor ports: the current of port ``k`` in column ``k``)."""
        if self.synapse == "ports":
            return {f"i_syn_{k}": k for k in range(self.receptor_ports)}
        return {"di_ex": 0, "di_in": 1} if self.synapse == "alpha" else {}

    @property
    def state_units(self):
        """Units of the family's own state variables (:attr:`state_columns`)."""
        if self.synapse == "ports":
            return {f"i_syn_{k}": "pA" for k in range(self.receptor_ports)}
        return {"di_ex": "pA/ms", "di_in": "pA/ms"} if self.synapse == "alpha" else {}

    _extra_state = ()

    @property
    def n_values(self):
        """Number of neurons implied by array parameters (None if all scalar)."""
        return param_length({f.name: getattr(self, f.name) for f in fields(self)})

    def _reset_coefficients(self, n):
        return np.zeros(n), np.zeros(n)

    def _theta(self, n, dt):
        return np.zeros((n, 0)), np.zeros((n, 0))

    @property
    def family(self):
        """The :class:`eventsim.models.family.Family` that updates this model."""
        return family_of(self.synapse)

    def pack(self, n, dt):
        """Per-neuron arrays consumed by the engines (float64 / int64, length ``n``; ``coef`` and ``x_init``
        ``[n, columns]`` with alpha synapses, see :func:`eventsim.models.psc_alpha.pack_alpha`)."""
        if self.synapse == "alpha":
            from .psc_alpha import pack_alpha

            return pack_alpha(self, n, dt, self._pack(n, dt))
        return self._pack(n, dt)

    def _pack(self, n, dt):
        prop = propagator(self, dt)
        b = lambda name, v: broadcast(name, v, n)  # noqa: E731
        ref = steps_of("t_ref", self.t_ref, dt)
        m, bb = self._reset_coefficients(n)
        p_theta, d_theta = self._theta(n, dt)
        out = dict(
            family=np.full(n, self.family.code, dtype=np.int64),
            is_exp=np.full(n, self.synapse == "exp", dtype=np.int64),
            p_vv=b("p_vv", prop.p_vv), p_vi=b("p_vi", prop.p_vi), p_ve=b("p_ve", prop.p_ve),
            p_vn=b("p_vn", prop.p_vn), p_ee=b("p_ee", prop.p_ee), p_nn=b("p_nn", prop.p_nn),
            v_rest=b("v_rest", self.v_rest), v_th=b("v_th", self.v_th),
            v_reset=b("v_reset", self.v_reset),
            v_min=b("v_min", -np.inf if self.v_min is None else self.v_min),
            i_e=b("i_e", self.i_e),
            ref_steps=broadcast("t_ref", ref, n, np.int64),
            reset_mode=np.full(n, self._resets[self.reset], dtype=np.int64),
            reset_m=m, reset_b=bb, p_theta=p_theta, d_theta=d_theta,
        )
        if self.synapse == "ports":
            from .multisynapse import pack_ports

            out = pack_ports(self, n, dt, out)
        return out


@dataclass(frozen=True, repr=False)
class LIF(_IntegrateAndFire):
    r"""Leaky integrate-and-fire neuron with exact integration.

    Parameters (each a scalar or an array with one value per neuron)
    ----------
    tau_m : float
        Membrane time constant (ms), > 0.
    c_m : float
        Membrane capacitance (pF), > 0.
    v_rest : float
        Resting potential (mV).
    v_reset : float
        Reset potential (mV); must be < ``v_th`` when ``reset="value"``.
    v_th : float
        Spike threshold (mV); a spike when ``v >= v_th``.
    t_ref : float
        Absolute refractory period (ms), a multiple of dt; ``v`` is clamped.
    i_e : float
        Constant bias current (pA).
    tau_syn_ex, tau_syn_in : float or None
        Synaptic time constants (ms).  Both None: delta synapses, weights are
        voltage jumps in mV (NEST ``iaf_psc_delta``; input arriving while
        refractory is discarded).  Both numbers: exponential current
        synapses, weights in pA (NEST ``iaf_psc_exp``).
    v_min : float or None
        Lower bound of ``v`` (mV); None for no bound.
    reset : {"value", "subtract"}
        ``"value"``: ``v <- v_reset``.  ``"subtract"``: ``v <- v - (v_th - v_rest)``.
    psc : {"exp", "alpha"}, keyword only
        Shape of the postsynaptic current when ``tau_syn_ex``/``tau_syn_in``
        are given: ``"exp"`` (default) a jump of ``w`` pA decaying with
        ``tau_syn``; ``"alpha"`` the alpha function
        :math:`w \frac{t}{\tau_{syn}} e^{1 - t/\tau_{syn}}` that peaks at ``w``
        pA at :math:`t = \tau_{syn}` (NEST ``iaf_psc_alpha``; equations and
        order of a step in :mod:`eventsim.models.psc_alpha`; state adds
        ``di_ex``, ``di_in`` in pA/ms; clock engine only).
    tau_syn : sequence of float, optional
        Receptor ports (NEST ``iaf_psc_exp_multisynapse``): one exponential
        current synapse per entry, time constant in ms (> 0, one value per
        port for the whole population); connections name their port with
        ``net.connect(..., receptor=k)`` and weights (pA) of either sign go
        to that port.  Excludes ``tau_syn_ex`` / ``tau_syn_in``.  Clock
        engine only.  See :mod:`eventsim.models.multisynapse`.

    Notes
    -----
    Equations and the order of one step are in :mod:`eventsim.models.lif`.
    Defaults are NEST's ``iaf_psc_delta`` defaults expressed relative to rest
    (``v_rest = 0``).
    """

    tau_m: float = 10.0

    def _validate(self):
        check("tau_m", self.tau_m, np.asarray(self.tau_m) > 0, "tau_m > 0 (ms)")
        super()._validate()


@dataclass(frozen=True, repr=False)
class IF(_IntegrateAndFire):
    r"""Non-leaky integrate-and-fire neuron, :math:`C_m \dot v = I_{ex} + I_{in} + I_e`.

    Same parameters as :class:`LIF` without ``tau_m`` (``v_rest`` only serves
    as the reference of the subtractive reset).  Integrated exactly; with
    exponential synapses the current integral is
    :math:`\tau_x (1 - e^{-h/\tau_x}) / C_m`.
    """

    tau_m = math.inf
    _keyword_hints = {"tau_m": "IF has no leak (tau_m = infinity); use LIF for a finite tau_m"}



# ---------------------------------------------------------------- the families' block updates
@njit(inline="always", cache=True)
def _delta_one(n, i_const, rg, xv, xr, xf, v_rest, v_th, p_vv, p_vi, v_min, mode, v_reset, reset_m, reset_b,
               ref_steps):
    """One step of neuron ``n`` of a :func:`_run_delta` range, with constant input ``i_const`` (pA)."""
    jump = rg[n]
    rg[n] = 0.0
    v, _, _, refr = neuron_update(xv[n], 0.0, 0.0, xr[n], jump, 0.0, False, v_rest, p_vv, p_vi, 0.0,
                                  0.0, 1.0, 1.0, i_const, v_min)
    spiked = v >= v_th
    xv[n] = reset_voltage(v, mode, v_reset, v_rest, v_th, reset_m, reset_b) if spiked else v
    xr[n] = ref_steps if spiked else refr
    xf[n] = spiked


@block_kernel
def _run_delta(a, b, c0, ring, v_rest, v_th, p_vv, p_vi, i_c, per_neuron, v_min, mode, v_reset, reset_m, reset_b,
               ref_steps, sv, srefr, sdc, flag):
    """Neurons ``a..b-1`` with delta synapses, one parameter set, ring column of neuron n at ``c0 + n``.

    Constant input (pA): ``i_c + sdc[n]`` if ``per_neuron``, else ``i_c``
    (then no per-neuron input is read).  One loop per case, and per reset
    mode "value" or other: in the "value" loops the reset is a constant,
    which saves the selects between the reset modes (a third of the loop's
    instructions).  The loops run over slices (indices provably in range,
    no wrap-around test), which lets LLVM vectorise them.
    """
    rg = ring[c0 + a: c0 + b]
    xv = sv[a:b]
    xr = srefr[a:b]
    xd = sdc[a:b]
    xf = flag[a:b]
    if per_neuron and mode == 0:
        for n in range(xv.size):
            _delta_one(n, i_c + xd[n], rg, xv, xr, xf, v_rest, v_th, p_vv, p_vi, v_min, 0, v_reset, reset_m,
                       reset_b, ref_steps)
    elif per_neuron:
        for n in range(xv.size):
            _delta_one(n, i_c + xd[n], rg, xv, xr, xf, v_rest, v_th, p_vv, p_vi, v_min, mode, v_reset, reset_m,
                       reset_b, ref_steps)
    elif mode == 0:  # the common case gets a loop with the reset mode folded in
        for n in range(xv.size):
            _delta_one(n, i_c, rg, xv, xr, xf, v_rest, v_th, p_vv, p_vi, v_min, 0, v_reset, reset_m, reset_b,
                       ref_steps)
    else:
        for n in range(xv.size):
            _delta_one(n, i_c, rg, xv, xr, xf, v_rest, v_th, p_vv, p_vi, v_min, mode, v_reset, reset_m, reset_b,
                       ref_steps)


@njit(inline="always", cache=True)
def _exp_one(n, i_const, re, ri, xv, xe, xi, xr, xf, v_rest, v_th, p_vv, p_vi, p_ve, p_vn, p_ee, p_nn, v_min,
             mode, v_reset, reset_m, reset_b, ref_steps):
    """One step of neuron ``n`` of a :func:`_run_exp` range, with constant input ``i_const`` (pA)."""
    in_ex = re[n]
    in_in = ri[n]
    re[n] = 0.0
    ri[n] = 0.0
    v, i_ex, i_in, refr = neuron_update(xv[n], xe[n], xi[n], xr[n], in_ex, in_in, True, v_rest, p_vv,
                                        p_vi, p_ve, p_vn, p_ee, p_nn, i_const, v_min)
    spiked = v >= v_th
    xv[n] = reset_voltage(v, mode, v_reset, v_rest, v_th, reset_m, reset_b) if spiked else v
    xe[n] = i_ex
    xi[n] = i_in
    xr[n] = ref_steps if spiked else refr
    xf[n] = spiked


@block_kernel
def _run_exp(a, b, c0, ring, v_rest, v_th, p_vv, p_vi, p_ve, p_vn, p_ee, p_nn, i_c, per_neuron, v_min, mode,
             v_reset, reset_m, reset_b, ref_steps, sv, sie, sii, srefr, sdc, flag):
    """Neurons ``a..b-1`` with exponential current synapses, one parameter set.

    Constant input (pA): ``i_c + sdc[n]`` if ``per_neuron``, else ``i_c``
    (one loop per case and reset mode, as in :func:`_run_delta`).  The excitatory input of neuron
    n is in ring column ``c0 + n``, the inhibitory one ``N`` columns
    further: two unit-stride blocks.
    """
    N = sv.size
    re = ring[c0 + a: c0 + b]
    ri = ring[c0 + N + a: c0 + N + b]
    xv = sv[a:b]
    xe = sie[a:b]
    xi = sii[a:b]
    xr = srefr[a:b]
    xd = sdc[a:b]
    xf = flag[a:b]
    if per_neuron and mode == 0:
        for n in range(xv.size):
            _exp_one(n, i_c + xd[n], re, ri, xv, xe, xi, xr, xf, v_rest, v_th, p_vv, p_vi, p_ve, p_vn, p_ee,
                     p_nn, v_min, 0, v_reset, reset_m, reset_b, ref_steps)
    elif per_neuron:
        for n in range(xv.size):
            _exp_one(n, i_c + xd[n], re, ri, xv, xe, xi, xr, xf, v_rest, v_th, p_vv, p_vi, p_ve, p_vn, p_ee,
                     p_nn, v_min, mode, v_reset, reset_m, reset_b, ref_steps)
    elif mode == 0:  # the common case gets a loop with the reset mode folded in
        for n in range(xv.size):
            _exp_one(n, i_c, re, ri, xv, xe, xi, xr, xf, v_rest, v_th, p_vv, p_vi, p_ve, p_vn, p_ee, p_nn,
                     v_min, 0, v_reset, reset_m, reset_b, ref_steps)
    else:
        for n in range(xv.size):
            _exp_one(n, i_c, re, ri, xv, xe, xi, xr, xf, v_rest, v_th, p_vv, p_vi, p_ve, p_vn, p_ee, p_nn,
                     v_min, mode, v_reset, reset_m, reset_b, ref_steps)


@njit(inline="always", cache=True)
def _delta_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of ``iaf_psc_delta``."""
    _run_delta(a, b, c0, ring, pr.v_rest[q], pr.v_th[q], pr.p_vv[q], pr.p_vi[q], i_c, per_neuron, pr.v_min[q],
               pr.reset_mode[q], pr.v_reset[q], pr.reset_m[q], pr.reset_b[q], pr.ref_steps[q], st.v, st.refr,
               st.i_dc, flag)


@njit(inline="always", cache=True)
def _exp_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of ``iaf_psc_exp``."""
    _run_exp(a, b, c0, ring, pr.v_rest[q], pr.v_th[q], pr.p_vv[q], pr.p_vi[q], pr.p_ve[q], pr.p_vn[q],
             pr.p_ee[q], pr.p_nn[q], i_c, per_neuron, pr.v_min[q], pr.reset_mode[q], pr.v_reset[q], pr.reset_m[q],
             pr.reset_b[q], pr.ref_steps[q], st.v, st.i_ex, st.i_in, st.refr, st.i_dc, flag)


class IafDeltaTag(NamedTuple):
    """Compile-time key of the ``iaf_psc_delta`` family (see :mod:`eventsim.models.family`)."""

    code: int


class IafExpTag(NamedTuple):
    """Compile-time key of the ``iaf_psc_exp`` family (see :mod:`eventsim.models.family`)."""

    code: int


# ---------------------------------------------------------------- the torch layers (LIF, IF, ALIF of the bridge)
# The integrators (by code) and the step of these layers: eventsim.models.lif_torch.

#: The coefficient rows of the point-neuron kernels before the threshold components (``nat``; see
#: :mod:`eventsim.models.lif_torch` for their meaning per integrator and for the rows of ``aff``).
TORCH_ROWS = ("a", "b", "c", "g", "v_rest", "v_th", "v_reset", "v_sub")

#: The layer parameters the rows are built from (None where a layer does not use one).
TORCH_PARAMS = ("tau_m", "tau_syn", "v_th", "v_reset", "v_rest", "tau_theta", "d_theta")

def _phi_t(xp, z):
    """(exp(z) - 1) / z in the array namespace ``xp``, smooth through 0."""
    small = z.abs() < 1e-6
    zs = xp.where(small, xp.ones_like(z), z)
    return xp.where(small, 1.0 + 0.5 * z + z * z / 6.0, xp.expm1(zs) / zs)


def torch_coefficients(xp, dt, spec, native, dtype, norm_input=True, leaky=True, tau_m=None, tau_syn=None,
                       v_th=None, v_reset=None, v_rest=None, tau_theta=(), d_theta=()):
    r"""The coefficient rows of a torch LIF / IF / ALIF layer (:attr:`TorchSteps.coefficients`, kernel ``"point"``).

    ``native=True``: the forward rows ``nat [8 + 2K, n]`` (a CPU tensor of
    ``dtype``) from float64 NumPy arrays ``[n]``: with the exact integrator
    the simulator's propagators (:func:`eventsim.models.dynamics.exp_propagators`)
    in float64, with a peer integrator that library's own arithmetic in
    ``dtype``.  ``native=False``: the affine rows ``aff [8 + 2K, n]`` of the
    reverse pass from float64 tensors, in ``xp`` (``torch``) operations, so
    that their gradients reach the parameters.

    Parameters
    ----------
    xp : module
        ``torch``.
    dt : float
        Step (ms).
    spec : eventsim.torch.functional.LayerSpec
        The layer's flags (``integrator``, ``synapse``, ``adaptive`` are read).
    native : bool
    dtype : torch.dtype
    norm_input : bool
        sinabs' ``norm_input``.
    leaky : bool
        False: the non-leaky ``IF`` (``tau_m`` unused).
    tau_m, tau_syn : array or None
        Membrane and synaptic time constants (ms); None where unused.
    v_th, v_reset, v_rest : array
        Potentials (mV).
    tau_theta, d_theta : tuple of arrays
        The ``K`` threshold components (ms, mV); empty without adaptation.
    """
    if native:
        return _native_rows(xp, dt, spec, dtype, norm_input, leaky, tau_m, tau_syn, v_th, v_reset, v_rest,
                            tau_theta, d_theta)
    return _affine_rows(xp, dt, spec, dtype, norm_input, leaky, tau_m, tau_syn, v_th, v_reset, v_rest, tau_theta,
                        d_theta)


def _native_rows(torch, dt, spec, dtype, norm_input, leaky, tau_m, tau_syn, v_th, v_reset, v_rest, tt, dd):
    mode = spec.integrator
    n = v_th.shape[0]
    K = max(1, len(tt))
    F = len(TORCH_ROWS)
    nat = np.zeros((F + 2 * K, n), dtype=np.float64)
    nat[4] = v_rest
    nat[5] = v_th
    nat[6] = v_reset
    for k in range(len(tt)):
        nat[F + k] = np.exp(-dt / tt[k])
        nat[F + K + k] = dd[k]
    native_torch = None  # rows computed with torch in the data dtype (peer arithmetic)
    if mode == TORCH_EXACT:
        inv_m = 1.0 / tau_m if leaky else np.zeros(n)
        c_m = tau_m if leaky else np.full(n, float(dt))
        inv_s = 1.0 / tau_syn if spec.synapse else np.zeros(n)
        p_vv, p_vi, p_ve, _, p_ee, _ = _vec_prop(float(dt), inv_m, c_m, inv_s, inv_s)
        nat[0] = p_vv
        nat[7] = nat[4]
        if spec.synapse:
            nat[1] = p_ve
            nat[2] = p_ee
            nat[3] = p_vi * (1.0 - p_ee) / p_ve
        else:
            nat[1] = p_vi
    elif mode == TORCH_EULER:
        native_torch = {0: (dt / 1000.0) * torch.as_tensor(1000.0 / tau_m, dtype=dtype)}
        if spec.synapse:
            native_torch[1] = (-(dt / 1000.0)) * torch.as_tensor(1000.0 / tau_syn, dtype=dtype)
    elif mode == TORCH_SNNTORCH:
        native_torch = {0: torch.as_tensor(np.exp(-dt / tau_m), dtype=dtype).clamp(0, 1)}
    elif mode == TORCH_SPIKINGJELLY:
        nat[0] = tau_m / dt
    else:  # TORCH_SINABS
        a_m_nat = torch.exp(-1.0 / torch.as_tensor(tau_m / dt, dtype=dtype))
        native_torch = {0: a_m_nat, 1: (1 - a_m_nat) if norm_input else torch.ones(n, dtype=dtype)}
        if spec.synapse:
            native_torch[2] = torch.exp(-1.0 / torch.as_tensor(tau_syn / dt, dtype=dtype))
    nat_t = torch.as_tensor(nat).to(dtype)
    if native_torch:
        for row, val in native_torch.items():
            nat_t[row] = val.detach().to("cpu", dtype)
    return nat_t


def _affine_rows(torch, dt, spec, dtype, norm_input, leaky, tm, ts, v_th, v_reset, vr, tt, dd):
    mode = spec.integrator
    f64 = torch.float64
    n, device = v_th.shape[0], v_th.device
    z = torch.zeros(n, dtype=f64, device=device)
    if mode == TORCH_EXACT:
        if leaky:
            a_vv = torch.exp(-dt / tm)
            a_vi_in = -torch.expm1(-dt / tm)
            cm = tm
            inv_mt = 1.0 / tm
        else:
            a_vv = torch.ones(n, dtype=f64, device=device)
            a_vi_in = torch.ones(n, dtype=f64, device=device)
            cm = torch.full((n,), float(dt), dtype=f64, device=device)
            inv_mt = z
        if spec.synapse:
            p_ve_t = a_vv * dt / cm * _phi_t(torch, -dt * (1.0 / ts - inv_mt))
            p_ee_t = torch.exp(-dt / ts)
            g_t = a_vi_in * (1.0 - p_ee_t) / p_ve_t
            aff = [a_vv, p_ve_t, z, vr * (1.0 - a_vv), p_ee_t, g_t]
        else:
            aff = [a_vv, z, a_vi_in, vr * (1.0 - a_vv), z, z]
    elif mode == TORCH_EULER:
        c = dt / tm
        if spec.synapse:
            cs = dt / ts
            aff = [1.0 - c, c, c, c * vr, 1.0 - cs, 1.0 - cs]
        else:
            aff = [1.0 - c, z, c, c * vr, z, z]
    elif mode == TORCH_SNNTORCH:
        beta = torch.exp(-dt / tm)
        aff = [beta, z, torch.ones_like(z), z, z, z]
    elif mode == TORCH_SPIKINGJELLY:
        tau = tm / dt
        aff = [1.0 - 1.0 / tau, z, 1.0 / tau, vr / tau, z, z]
    else:  # TORCH_SINABS
        a_m = torch.exp(-1.0 / (tm / dt))
        k = (1.0 - a_m) if norm_input else torch.ones_like(a_m)
        if spec.synapse:
            a_s = torch.exp(-1.0 / (ts / dt))
            aff = [a_m, k * a_s, k * a_s, z, a_s, a_s]
        else:
            aff = [a_m, z, k, z, z, z]
    aff = aff + [v_th, v_reset]
    if tt:
        aff += [torch.exp(-dt / t) for t in tt] + list(dd)
    else:
        aff += [z, z]
    return torch.stack(aff).to(dtype)


def torch_steps(state):
    """The :class:`~eventsim.models.family.TorchSteps` of a point-neuron family with torch state ``state``."""
    return TorchSteps(state=state, rows=TORCH_ROWS, coefficients=torch_coefficients, params=TORCH_PARAMS,
                      forward=None, backward=None, output="spikes (0/1; sinabs' MultiSpike: a count)",
                      kernel="point", point_forward=lif_torch.point_forward,
                      point_backward=lif_torch.point_backward)


def family_of(synapse="delta", adaptive=False):
    """The family of a LIF / IF neuron (``adaptive``: ALIF) with synapses ``synapse`` (``"delta"``, ``"exp"``,
    ``"alpha"``, ``"ports"``): the one resolution of the simulator's models and the torch layers."""
    if synapse == "alpha":
        from .psc_alpha import IAF_ALPHA

        return IAF_ALPHA
    if adaptive:
        from .adaptive import ALIF_FAMILY

        return ALIF_FAMILY
    if synapse == "ports":
        from .multisynapse import MULTISYNAPSE

        return MULTISYNAPSE
    return IAF_EXP if synapse == "exp" else IAF_DELTA


#: LIF and IF with delta synapses (NEST's ``iaf_psc_delta``): state ``v`` and the refractory counter,
#: one port (every weight, mV, jumps ``v``).  Torch layers: ``LIF`` / ``IF`` with ``tau_syn=None``.
IAF_DELTA = register(Family(
    name="iaf_psc_delta", code=0, tag=IafDeltaTag(0), state=(("v", "mV"),), ports=("ex",),
    propagator=dynamics.exp_propagators, update_block=_delta_block, models=(LIF, IF),
    event=iaf_event.functions(IafDeltaTag, currents="delta", adaptive=False),
    torch=torch_steps((("v", "mV"), ("refr", "steps")))))

#: LIF and IF with exponential current synapses (NEST's ``iaf_psc_exp``): state ``v``, ``i_ex``,
#: ``i_in`` and the refractory counter, one port per sign of the weight (pA).  Torch layers: ``LIF`` /
#: ``IF`` with ``tau_syn``, their current ``i`` one port (the input's unit).
IAF_EXP = register(Family(
    name="iaf_psc_exp", code=1, tag=IafExpTag(1), state=(("v", "mV"), ("i_ex", "pA"), ("i_in", "pA")),
    ports=("ex", "in"), propagator=dynamics.exp_propagators, update_block=_exp_block, models=(LIF, IF),
    event=iaf_event.functions(IafExpTag, currents="exp", adaptive=False),
    torch=torch_steps((("v", "mV"), ("i", "mV"), ("refr", "steps")))))
