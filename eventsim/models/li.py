r"""Leaky integrator without threshold (NIR's ``LI`` / ``CubaLI``), e.g. a readout layer.

.. math::

    \tau_m \dot v = -(v - v_{rest}) + \frac{\tau_m}{C_m}(I_{ex} + I_{in} + I_e),\qquad
    \tau_{ex}\dot I_{ex} = -I_{ex},\qquad \tau_{in}\dot I_{in} = -I_{in}

with exponential current synapses (weights in pA), or without synaptic
currents (``tau_syn_ex = tau_syn_in = None``: each weight, in mV, jumps
``v`` at the spike's arrival).  The neuron never spikes: no threshold, no
reset, no refractory period.  Integrated exactly with the propagator of
:func:`eventsim.models.dynamics.exp_propagators`.

Order of one step of length ``dt``: exact update of ``v`` from the state at
the start of the step (plus the arriving jumps with delta synapses), decay
of the synaptic currents, then the input arriving at the end of the step
added to them (it reaches ``v`` from the next step on), as
:func:`eventsim.models.dynamics.neuron_update` without refractoriness.

In the event engine (continuous time) the state after ``s`` ms without
input is the same exact propagator for a step of length ``s``
(:func:`eventsim.models.dynamics.free_membrane`,
:math:`I_x(s) = e^{-s/\tau_x} I_x`); an input of weight ``w`` at ``t``
adds ``w`` to ``i_ex`` (``w >= 0``) or ``i_in`` (pA), or with delta
synapses to ``v`` (mV); there is no crossing to predict.

This module is the whole family: the parameters, their validation and
packing, and its declaration (:data:`LI_FAMILY`) through which the engines
(clock and event) and the torch bridge run it (:data:`LI_TORCH`: the layer
``eventsim.torch.LI``, whose step is :func:`li_step`, the clock engine's).

Torch layer
-----------
The input ``x[t]`` of a layer (mV: a current times the membrane resistance,
as the bridge's ``LIF``) enters as the clock engine's delta synapses do
(``tau_syn=None``: held over the step, so a constant ``x`` settles at
:math:`v = v_{rest} + x`) or through the exponential current (``tau_syn``
given):

.. math::

    v_t = v_{rest} + P_{vv}(v_{t-1} - v_{rest}) + P_{vi} x_t + P_{ve} i_{t-1},\qquad
    i_t = P_{ee} i_{t-1} + g\,x_t

with :math:`P_{vv} = e^{-h/\tau_m}`; delta synapses: :math:`P_{vi} = 1 -
P_{vv}`, :math:`P_{ve} = P_{ee} = g = 0`; current synapses: :math:`P_{vi}
= 0`, :math:`P_{ee} = e^{-h/\tau_{syn}}`, :math:`P_{ve}` the exact
propagator with :math:`C_m = \tau_m` and :math:`g = (1 - P_{vv})(1 -
P_{ee})/P_{ve}` (a constant ``x`` again settles at :math:`v_{rest} + x`).
The output is :math:`v_t`.  There is no spike, so the gradient is exact
(no surrogate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
from numba import njit

from . import dynamics
from ._params import check_syn_pair, model_repr, as_param, broadcast, check, check_keywords, param_length
from .family import (FIRST, IB, N_PARAMS, EventFunctions, Family, TorchSteps, block_kernel, never_crosses,
                     never_fires, no_crossing, no_reset, pack_fields, register)
from .lif import propagator


@dataclass(frozen=True, repr=False)
class LI:
    r"""Leaky integrator without threshold (never spikes).

    Parameters (each a scalar or an array with one value per neuron)
    ----------
    tau_m : float
        Membrane time constant (ms), > 0.
    c_m : float
        Membrane capacitance (pF), > 0.
    v_rest : float
        Resting potential (mV).
    i_e : float
        Constant bias current (pA).
    tau_syn_ex, tau_syn_in : float or None
        Synaptic time constants (ms), > 0; both None: no synaptic current,
        each weight (mV) jumps ``v``.
    """

    tau_m: float = 10.0
    c_m: float = 250.0
    v_rest: float = 0.0
    i_e: float = 0.0
    tau_syn_ex: float | None = 5.0
    tau_syn_in: float | None = 5.0

    def __new__(cls, *args, **kwargs):
        check_keywords(cls, kwargs, [f.name for f in fields(cls)],
                       {k: "LI has no threshold, reset or refractory period" for k in
                        ("v_th", "v_reset", "t_ref", "V_th", "V_reset", "t_refrac")})
        return super().__new__(cls)

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, as_param(f.name, getattr(self, f.name),
                                                      allow_none=f.name.startswith("tau_syn")))
        check("tau_m", self.tau_m, np.asarray(self.tau_m) > 0, "tau_m > 0 (ms)")
        check("c_m", self.c_m, np.asarray(self.c_m) > 0, "c_m > 0 (pF)")
        check_syn_pair(self.tau_syn_ex, self.tau_syn_in)
        param_length({f.name: getattr(self, f.name) for f in fields(self)})

    def __repr__(self):
        return model_repr(self)

    # the parts of the model interface a threshold-free model fills with fixed values
    v_min = None          #: no lower bound of ``v``
    v_th = math.inf       #: never reached (event engine: no crossing to predict)
    v_reset = 0.0
    t_ref = 0.0
    reset = "value"
    _resets = {"value": dynamics.RESET_VALUE}

    def _reset_coefficients(self, n):
        return np.zeros(n), np.zeros(n)

    @property
    def family(self):
        """:data:`LI_FAMILY`."""
        return LI_FAMILY

    @property
    def synapse(self):
        """``"exp"`` (weights in pA) or ``"delta"`` (weights in mV)."""
        return "delta" if self.tau_syn_ex is None else "exp"

    @property
    def state_names(self):
        """Names of the recordable state variables."""
        return ("v",) if self.synapse == "delta" else ("v", "i_ex", "i_in")

    @property
    def n_values(self):
        """Number of neurons implied by array parameters (None if all scalar)."""
        return param_length({f.name: getattr(self, f.name) for f in fields(self)})

    def pack(self, n, dt):
        """Per-neuron arrays consumed by the clock engines (float64 / int64, length ``n``)."""
        prop = propagator(self, dt)
        b = lambda name, v: broadcast(name, v, n)  # noqa: E731
        return pack_fields(LI_FAMILY, n, 2 if self.synapse == "exp" else 1,
                           p_vv=b("p_vv", prop.p_vv), p_vi=b("p_vi", prop.p_vi), p_ve=b("p_ve", prop.p_ve),
                           p_vn=b("p_vn", prop.p_vn), p_ee=b("p_ee", prop.p_ee), p_nn=b("p_nn", prop.p_nn),
                           v_rest=b("v_rest", self.v_rest), i_e=b("i_e", self.i_e))


@njit(inline="always", cache=True)
def li_step(v, i_ex, i_in, in_ex, in_in, is_exp, v_rest, p_vv, p_vi, p_ve, p_vn, p_ee, p_nn, i_const):
    """One exact step of a leaky integrator; returns ``(v, i_ex, i_in)`` (the order of the module docstring)."""
    v, i_ex, i_in, _ = dynamics.neuron_update(v, i_ex, i_in, 0, in_ex, in_in, is_exp, v_rest, p_vv, p_vi, p_ve,
                                              p_vn, p_ee, p_nn, i_const, -math.inf)
    return v, i_ex, i_in


@block_kernel
def _run_li(a, b, c0, ring, is_exp, v_rest, p_vv, p_vi, p_ve, p_vn, p_ee, p_nn, i_c, per_neuron, sv, sie, sii,
            sdc, flag):
    """Neurons ``a..b-1`` of one parameter set: read and clear their input, step, never spike."""
    N = sv.size
    for n in range(a, b):
        in_ex = ring[c0 + n]
        ring[c0 + n] = 0.0
        in_in = 0.0
        i_ex = 0.0
        i_in = 0.0
        if is_exp:
            in_in = ring[c0 + N + n]
            ring[c0 + N + n] = 0.0
            i_ex = sie[n]
            i_in = sii[n]
        i_const = i_c + sdc[n] if per_neuron else i_c
        v, i_ex, i_in = li_step(sv[n], i_ex, i_in, in_ex, in_in, is_exp, v_rest, p_vv, p_vi, p_ve, p_vn, p_ee,
                                p_nn, i_const)
        sv[n] = v
        if is_exp:
            sie[n] = i_ex
            sii[n] = i_in
        flag[n] = 0


@njit(inline="always", cache=True)
def _li_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of the leaky integrator."""
    _run_li(a, b, c0, ring, pr.is_exp[q] != 0, pr.v_rest[q], pr.p_vv[q], pr.p_vi[q], pr.p_ve[q], pr.p_vn[q],
            pr.p_ee[q], pr.p_nn[q], i_c, per_neuron, st.v, st.i_ex, st.i_in, st.i_dc, flag)


# ---------------------------------------------------------------- the torch layer (eventsim.torch.LI)
#: Coefficient rows of the torch layer, per neuron (see the module docstring).
TORCH_ROWS = ("v_rest", "p_vv", "p_vi", "p_ve", "p_ee", "g")


def _phi(xp, z):
    """:func:`eventsim.models.dynamics.phi` in the array namespace ``xp`` (smooth through 0 for autograd)."""
    small = xp.abs(z) < 1e-6
    zs = xp.where(small, xp.ones_like(z), z)
    return xp.where(small, 1.0 + 0.5 * z + z * z / 6.0, xp.expm1(zs) / zs)


def torch_coefficients(xp, dt, tau_m, v_rest, tau_syn=None):
    """The rows :data:`TORCH_ROWS` of a torch LI layer: ``xp`` is ``numpy`` or ``torch``.

    ``tau_m`` (ms, > 0), ``v_rest`` (mV) and ``tau_syn`` (ms, > 0; None:
    delta synapses) are float64 arrays with one value per neuron; ``dt`` in ms.
    """
    p_vv = xp.exp(-dt / tau_m)
    one_minus = -xp.expm1(-dt / tau_m)  # 1 - P_vv, the gain of a held input (C_m = tau_m)
    zero = xp.zeros_like(tau_m)
    if tau_syn is None:
        return [v_rest + zero, p_vv, one_minus, zero, zero, zero]
    p_ee = xp.exp(-dt / tau_syn)
    p_ve = p_vv * (dt / tau_m) * _phi(xp, -dt * (1.0 / tau_syn - 1.0 / tau_m))
    return [v_rest + zero, p_vv, zero, p_ve, p_ee, one_minus * (1.0 - p_ee) / p_ve]


def torch_model(dt, tau_m, v_rest, tau_syn=None):
    """``(model, gain)``: the simulator's :class:`LI` of a torch LI layer and the weight gain per neuron.

    A weight ``W`` of the layer's input becomes a synapse of ``gain W`` (mV
    with delta synapses, pA with current synapses; ``c_m = tau_m``).
    """
    rows = torch_coefficients(np, dt, tau_m, v_rest, tau_syn)
    model = LI(tau_m=tau_m, c_m=tau_m, v_rest=v_rest, tau_syn_ex=tau_syn, tau_syn_in=tau_syn)
    return model, rows[2] + rows[5]


@njit(inline="always", cache=True, error_model="numpy")
def torch_forward(s, j, c, n, x):
    """One step of element ``j`` (state ``s[0] = v``, ``s[1] = i``): :func:`li_step`; returns ``v``."""
    v, i, _ = li_step(s[0, j], s[1, j], 0.0, c[5, n] * x, 0.0, True, c[0, n], c[1, n], c[2, n], c[3, n], 0.0,
                      c[4, n], 0.0, x)
    s[0, j] = v
    s[1, j] = i
    return v


@njit(inline="always", cache=True, error_model="numpy")
def torch_backward(s, j, c, n, x, gy, gs, dc):
    """Reverse of :func:`torch_forward` (the step is affine: exact gradients)."""
    v = s[0, j]
    i = s[1, j]
    p_vv = c[1, n]
    gv = gy + gs[0, j]
    gi = gs[1, j]
    gs[0, j] = p_vv * gv
    gs[1, j] = c[3, n] * gv + c[4, n] * gi
    dc[0, j] += gv - p_vv * gv
    dc[1, j] += gv * (v - c[0, n])
    dc[2, j] += gv * x
    dc[3, j] += gv * i
    dc[4, j] += gi * i
    dc[5, j] += gi * x
    return c[2, n] * gv + c[5, n] * gi


#: The torch bridge's declaration of the family (``eventsim.torch.LI``).
LI_TORCH = TorchSteps(state=(("v", "mV"), ("i", "mV")), rows=TORCH_ROWS, coefficients=torch_coefficients,
                      params=("tau_m", "v_rest", "tau_syn"), forward=torch_forward, backward=torch_backward,
                      output="v (mV)", model=torch_model, positive=("tau_m", "tau_syn"))


# ---------------------------------------------------------------- the event engine (see eventsim.models.family)
#: The family's columns of the event engine's parameter rows, and of its state rows.
_INV_TM, _C_M, _V_REST, _INV_TE, _INV_TI, _IS_EXP = range(FIRST, FIRST + 6)
_V, _IE, _II = 0, 1, 2


def _event_pack(model, n):
    """Parameter rows of ``n`` leaky integrators (no refractory period, no threshold component)."""
    b = lambda x: np.broadcast_to(np.asarray(x, np.float64), (n,))  # noqa: E731
    P = np.zeros((n, N_PARAMS))
    P[:, _INV_TM] = 1.0 / b(model.tau_m)
    P[:, _C_M] = b(model.c_m)
    P[:, _V_REST] = b(model.v_rest)
    if model.synapse == "exp":
        P[:, _IS_EXP] = 1.0
        P[:, _INV_TE] = 1.0 / b(model.tau_syn_ex)
        P[:, _INV_TI] = 1.0 / b(model.tau_syn_in)
    return P, np.zeros((n, 0)), np.zeros((n, 0))


@njit(inline="always", cache=True)
def _event_state(i, p, s, PP, SS):
    """``(v, i_ex, i_in)`` ``s`` ms after the last event."""
    is_exp = PP[p, _IS_EXP]
    v = dynamics.free_membrane(SS[i, _V], SS[i, _IE], SS[i, _II], s, PP[p, _INV_TM], PP[p, _C_M], PP[p, _V_REST],
                               SS[i, IB], PP[p, _INV_TE], PP[p, _INV_TI], is_exp)
    ie = SS[i, _IE]
    ii = SS[i, _II]
    if is_exp:
        ie = ie * math.exp(-s * PP[p, _INV_TE])
        ii = ii * math.exp(-s * PP[p, _INV_TI])
    return v, ie, ii


@njit(inline="always", cache=True)
def _event_advance(fam, i, p, s, PP, SS, TH, ITH):
    v, ie, ii = _event_state(i, p, s, PP, SS)
    SS[i, _V] = v
    SS[i, _IE] = ie
    SS[i, _II] = ii


@njit(inline="always", cache=True)
def _event_sample(fam, i, p, s, var, PP, SS, TH, ITH):
    v, ie, ii = _event_state(i, p, s, PP, SS)
    if var == 0:
        return v
    if var == 1:
        return ie
    return ii if var == 2 else math.nan


@njit(inline="always", cache=True)
def _event_receive(fam, i, p, t, w, port, PP, SS):
    if PP[p, _IS_EXP]:
        if w >= 0.0:
            SS[i, _IE] += w
        else:
            SS[i, _II] += w
    else:
        SS[i, _V] += w


class LiTag(NamedTuple):
    """Compile-time key of the leaky-integrator family (see :mod:`eventsim.models.family`)."""

    code: int


#: The leaky integrator: state ``v`` (and ``i_ex``, ``i_in`` with synaptic currents), no refractory counter;
#: one port per sign of the weight with synaptic currents, else one.
LI_FAMILY = register(Family(
    name="li", code=3, tag=LiTag(3), state=(("v", "mV"), ("i_ex", "pA"), ("i_in", "pA")), ports=("ex", "in"),
    propagator=dynamics.exp_propagators, update_block=_li_block, models=(LI,), torch=LI_TORCH,
    event=EventFunctions(pack=_event_pack, slots={"v": _V, "i_ex": _IE, "i_in": _II}, advance=_event_advance,
                         sample=_event_sample, receive=_event_receive, fires=never_fires, reset=no_reset,
                         never_crosses=never_crosses, next_crossing=no_crossing)))
