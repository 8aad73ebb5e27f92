r"""Perfect integrator without leak and without threshold (NIR's ``I`` / ``CubaI``), e.g. a counter or readout.

.. math::

    C_m \dot v = I_{ex} + I_{in} + I_e,\qquad
    \tau_{ex}\dot I_{ex} = -I_{ex},\qquad \tau_{in}\dot I_{in} = -I_{in}

with exponential current synapses (weights in pA), or without synaptic
currents (``tau_syn_ex = tau_syn_in = None``: each weight, in mV, jumps
``v`` at the spike's arrival).  The neuron never spikes: no threshold, no
reset, no refractory period, and no leak (``v`` keeps what it received).

Exact propagator for a step of any length ``h`` (ms), :func:`propagator`:

.. math::

    v(h) = v + \frac{h}{C_m} I_e + P_{ve} I_{ex} + P_{vn} I_{in},\qquad
    P_{ve} = \frac{\tau_{ex}}{C_m}\left(1 - e^{-h/\tau_{ex}}\right),\quad
    P_{vn} = \frac{\tau_{in}}{C_m}\left(1 - e^{-h/\tau_{in}}\right),\qquad
    I_x(h) = e^{-h/\tau_x} I_x .

The clock engine takes it with ``h = dt`` (computed once by :meth:`Integrator.pack`),
the event engine with ``h`` the time since a neuron's last event: one definition.

Order of one clock step: ``v`` from the state at the start of the step
(plus the arriving jumps with delta synapses), decay of the synaptic
currents, then the input arriving at the end of the step added to them (it
reaches ``v`` from the next step on), as the leaky integrator
(:mod:`eventsim.models.li`).  In the event engine an input of weight ``w``
at ``t`` adds ``w`` to ``i_ex`` (``w >= 0``) or ``i_in`` (pA), or with delta
synapses to ``v`` (mV).

Torch layer (:data:`INTEGRATOR_TORCH`, run by
:func:`eventsim.torch.functional.family_coefficients` and
:func:`eventsim.torch.functional.family_layer` with
:data:`INTEGRATOR_FAMILY`): the input ``x[t]`` (mV) jumps ``v`` directly
(``tau_syn=None``: :math:`v_t = v_{t-1} + x_t`) or drives an exponential
current, :math:`i_t = P_{ee} i_{t-1} + g x_t`, :math:`v_t = v_{t-1} +
P_{ve} i_{t-1}` with :math:`C_m = 1` and :math:`g = (1 - P_{ee})/P_{ve}`, so
that a constant ``x`` adds ``x`` to ``v`` every step in both forms.  The
output is :math:`v_t`; the step is affine, so the gradient is exact.

This module is the whole family: parameters, validation, packing, its exact
step, its clock block update, its event-engine functions and its torch
steps, declared once in :data:`INTEGRATOR_FAMILY`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
from numba import njit

from ._params import check_syn_pair, model_repr, as_param, broadcast, check, check_keywords, param_length
from .family import (FIRST, IB, N_PARAMS, EventFunctions, Family, TorchSteps, block_kernel, never_crosses,
                     never_fires, no_crossing, no_reset, pack_fields, register)

#: The family's code in the engines' parameter tables.
CODE = 13

#: Columns of the family's clock coefficients (``Params.coef``): h/C_m, P_ve, P_vn, P_ee, P_nn.
G, P_VE, P_VN, P_EE, P_NN = range(5)


@njit(cache=True)
def propagator(h, c_m, tau_ex, tau_in):
    """``(h / C_m, P_ve, P_vn, P_ee, P_nn)`` for a step of ``h`` ms (``tau_ex`` / ``tau_in`` in ms; 0: no
    synaptic current, the current terms are 0); see the module docstring."""
    p_ve = p_vn = p_ee = p_nn = 0.0
    if tau_ex > 0.0:
        p_ee = math.exp(-h / tau_ex)
        p_ve = -math.expm1(-h / tau_ex) * tau_ex / c_m
    if tau_in > 0.0:
        p_nn = math.exp(-h / tau_in)
        p_vn = -math.expm1(-h / tau_in) * tau_in / c_m
    return h / c_m, p_ve, p_vn, p_ee, p_nn


@njit(inline="always", cache=True)
def integrator_step(v, i_ex, i_in, in_ex, in_in, is_exp, g, p_ve, p_vn, p_ee, p_nn, i_const):
    """One exact step; returns ``(v, i_ex, i_in)`` (the order of the module docstring).  With delta
    synapses (``not is_exp``) ``in_ex`` is the jump of ``v`` (mV)."""
    if is_exp:
        v = v + g * i_const + p_ve * i_ex + p_vn * i_in
        return v, p_ee * i_ex + in_ex, p_nn * i_in + in_in
    return v + g * i_const + in_ex, 0.0, 0.0


@dataclass(frozen=True, repr=False)
class Integrator:
    r"""Perfect integrator without leak and without threshold (never spikes; NIR's ``I``).

    Parameters (each a scalar or an array with one value per neuron)
    ----------
    c_m : float
        Capacitance (pF), > 0.
    i_e : float
        Constant bias current (pA): ``v`` grows by ``i_e / c_m`` mV per ms.
    tau_syn_ex, tau_syn_in : float or None
        Synaptic time constants (ms), > 0; both None (the default): no
        synaptic current, each weight (mV) jumps ``v``.

    The potential starts at ``v_init`` of :meth:`eventsim.Network.population` (default 0 mV).
    """

    c_m: float = 1.0
    i_e: float = 0.0
    tau_syn_ex: float | None = None
    tau_syn_in: float | None = None

    def __new__(cls, *args, **kwargs):
        check_keywords(cls, kwargs, [f.name for f in fields(cls)],
                       {k: "Integrator has no leak, threshold, reset or refractory period" for k in
                        ("tau_m", "v_rest", "v_th", "v_reset", "t_ref", "V_th", "V_reset", "E_L", "t_refrac")})
        return super().__new__(cls)

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, as_param(f.name, getattr(self, f.name),
                                                      allow_none=f.name.startswith("tau_syn")))
        check("c_m", self.c_m, np.asarray(self.c_m) > 0, "c_m > 0 (pF)")
        check_syn_pair(self.tau_syn_ex, self.tau_syn_in)
        param_length({f.name: getattr(self, f.name) for f in fields(self)})

    def __repr__(self):
        return model_repr(self)

    # the parts of the model interface a threshold-free model fills with fixed values
    v_rest = 0.0          #: the potential before the first run when the population gives no v_init (mV)
    v_min = None          #: no lower bound of ``v``
    v_th = math.inf       #: never reached (event engine: no crossing to predict)
    v_reset = 0.0
    t_ref = 0.0
    reset = "value"
    _resets = {"value": 0}

    def _reset_coefficients(self, n):
        return np.zeros(n), np.zeros(n)

    @property
    def family(self):
        """:data:`INTEGRATOR_FAMILY`."""
        return INTEGRATOR_FAMILY

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

    def _taus(self, n):
        if self.synapse == "delta":
            return np.zeros(n), np.zeros(n)
        return broadcast("tau_syn_ex", self.tau_syn_ex, n), broadcast("tau_syn_in", self.tau_syn_in, n)

    def pack(self, n, dt):
        """Per-neuron arrays consumed by the clock engines (float64 / int64, length ``n``): the
        propagator of a step ``dt`` (ms) in the family's coefficients."""
        c_m = broadcast("c_m", self.c_m, n)
        te, ti = self._taus(n)
        coef = np.array([propagator(dt, c_m[k], te[k], ti[k]) for k in range(n)], np.float64).reshape(n, 5)
        return pack_fields(INTEGRATOR_FAMILY, n, 2 if self.synapse == "exp" else 1,
                           i_e=broadcast("i_e", self.i_e, n), coef=coef)


# ---------------------------------------------------------------- the clock engine
@block_kernel
def _run(a, b, c0, ring, is_exp, g, p_ve, p_vn, p_ee, p_nn, i_c, per_neuron, sv, sie, sii, sdc, flag):
    """Neurons ``a..b-1`` of one parameter set: read and clear their input, step, never spike."""
    N = sv.size
    for n in range(a, b):
        in_ex = ring[c0 + n]
        ring[c0 + n] = 0.0
        in_in = 0.0
        if is_exp:
            in_in = ring[c0 + N + n]
            ring[c0 + N + n] = 0.0
        i_const = i_c + sdc[n] if per_neuron else i_c
        v, i_ex, i_in = integrator_step(sv[n], sie[n], sii[n], in_ex, in_in, is_exp, g, p_ve, p_vn, p_ee, p_nn,
                                        i_const)
        sv[n] = v
        if is_exp:
            sie[n] = i_ex
            sii[n] = i_in
        flag[n] = 0


@njit(inline="always", cache=True)
def _block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of the integrator."""
    k = pr.coef
    _run(a, b, c0, ring, pr.is_exp[q] != 0, k[q, G], k[q, P_VE], k[q, P_VN], k[q, P_EE], k[q, P_NN], i_c,
         per_neuron, st.v, st.i_ex, st.i_in, st.i_dc, flag)


# ---------------------------------------------------------------- the event engine (see eventsim.models.family)
#: The family's columns of the event engine's parameter rows, and of its state rows.
_C_M, _TAU_E, _TAU_I, _IS_EXP = range(FIRST, FIRST + 4)
_V, _IE, _II = 0, 1, 2


def _event_pack(model, n):
    """Parameter rows of ``n`` integrators (no refractory period, no threshold component)."""
    P = np.zeros((n, N_PARAMS))
    P[:, _C_M] = broadcast("c_m", model.c_m, n)
    P[:, _TAU_E], P[:, _TAU_I] = model._taus(n)
    P[:, _IS_EXP] = float(model.synapse == "exp")
    return P, np.zeros((n, 0)), np.zeros((n, 0))


@njit(inline="always", cache=True)
def _event_state(i, p, s, PP, SS):
    """``(v, i_ex, i_in)`` ``s`` ms after the last event: :func:`integrator_step` with the propagator of a
    step of ``s`` ms and no input."""
    g, p_ve, p_vn, p_ee, p_nn = propagator(s, PP[p, _C_M], PP[p, _TAU_E], PP[p, _TAU_I])
    return integrator_step(SS[i, _V], SS[i, _IE], SS[i, _II], 0.0, 0.0, PP[p, _IS_EXP] != 0.0, g, p_ve, p_vn,
                           p_ee, p_nn, SS[i, IB])


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
    if PP[p, _IS_EXP] != 0.0:
        if w >= 0.0:
            SS[i, _IE] += w
        else:
            SS[i, _II] += w
    else:
        SS[i, _V] += w


# ---------------------------------------------------------------- the torch steps
#: Coefficient rows of the torch layer, per neuron (see the module docstring).
TORCH_ROWS = ("p_ve", "p_ee", "g_delta", "g")


def torch_coefficients(xp, dt, r, tau_syn=None):
    """The rows :data:`TORCH_ROWS` of a torch integrator layer: ``xp`` is ``numpy`` or ``torch``; ``r``
    (the input's gain, NIR's resistance) and ``tau_syn`` (ms, > 0; None: the input jumps ``v``) float64
    arrays with one value per neuron; ``dt`` in ms."""
    zero = xp.zeros_like(r)
    if tau_syn is None:
        return [zero, zero, r + zero, zero]
    p_ee = xp.exp(-dt / tau_syn)
    p_ve = -xp.expm1(-dt / tau_syn) * tau_syn  # C_m = 1
    return [p_ve, p_ee, zero, r * (1.0 - p_ee) / p_ve]


def torch_model(dt, r, tau_syn=None):
    """``(model, gain)``: the simulator's :class:`Integrator` of a torch layer (``c_m = 1`` pF) and the
    factor per neuron that turns a weight of the layer's input into a synaptic weight (mV with delta
    synapses, pA with current synapses)."""
    rows = torch_coefficients(np, dt, np.asarray(r, np.float64), tau_syn)
    model = Integrator(c_m=1.0, tau_syn_ex=tau_syn, tau_syn_in=tau_syn)
    return model, rows[2] + rows[3]


@njit(inline="always", cache=True, error_model="numpy")
def torch_forward(s, j, c, n, x):
    """One step of element ``j`` (state ``s[0] = v``, ``s[1] = i``): :func:`integrator_step` with the
    input ``x`` as the delta jump or the current's input; returns ``v``."""
    is_exp = c[2, n] == 0.0
    inp = c[3, n] * x if is_exp else c[2, n] * x
    v, i, _ = integrator_step(s[0, j], s[1, j], 0.0, inp, 0.0, is_exp, 0.0, c[0, n], 0.0, c[1, n], 0.0, 0.0)
    s[0, j] = v
    s[1, j] = i
    return v


@njit(inline="always", cache=True, error_model="numpy")
def torch_backward(s, j, c, n, x, gy, gs, dc):
    """Reverse of :func:`torch_forward` (the step is affine: exact gradients)."""
    i = s[1, j]
    gv = gy + gs[0, j]
    gi = gs[1, j]
    gs[0, j] = gv
    gs[1, j] = c[0, n] * gv + c[1, n] * gi
    dc[0, j] += gv * i
    dc[1, j] += gi * i
    dc[2, j] += gv * x
    dc[3, j] += gi * x
    return c[2, n] * gv + c[3, n] * gi


#: The torch bridge's declaration of the family.
INTEGRATOR_TORCH = TorchSteps(state=(("v", "mV"), ("i", "mV")), rows=TORCH_ROWS, coefficients=torch_coefficients,
                              params=("r", "tau_syn"), forward=torch_forward, backward=torch_backward,
                              output="v (mV)", model=torch_model, positive=("tau_syn",))


class IntegratorTag(NamedTuple):
    """Compile-time key of the integrator family (see :mod:`eventsim.models.family`)."""

    code: int


#: The integrator: state ``v`` (and ``i_ex``, ``i_in`` with synaptic currents), no refractory counter; one
#: port per sign of the weight with synaptic currents, else one.
INTEGRATOR_FAMILY = register(Family(
    name="integrator", code=CODE, tag=IntegratorTag(CODE), state=(("v", "mV"), ("i_ex", "pA"), ("i_in", "pA")),
    ports=("ex", "in"), propagator=propagator, update_block=_block, models=(Integrator,), torch=INTEGRATOR_TORCH,
    event=EventFunctions(pack=_event_pack, slots={"v": _V, "i_ex": _IE, "i_in": _II}, advance=_event_advance,
                         sample=_event_sample, receive=_event_receive, fires=never_fires, reset=no_reset,
                         never_crosses=never_crosses, next_crossing=no_crossing)))
