r"""Alpha-shaped current synapses (NEST's ``iaf_psc_alpha``): the exact propagator and the neuron family.

``es.LIF(..., tau_syn_ex=..., tau_syn_in=..., psc="alpha")`` (also ``es.IF``
and ``es.ALIF``).  A spike of weight :math:`w` (pA) through an alpha synapse
of time constant :math:`\tau_s` adds the current

.. math::

    I(t) = w \, \frac{t}{\tau_s} \, e^{1 - t/\tau_s}, \qquad t \ge 0,

which peaks at :math:`w` pA at :math:`t = \tau_s` and carries the charge
:math:`e \, \tau_s w` (fC for pA and ms).  It is the solution of the linear
system :math:`\dot y_1 = -y_1/\tau_s`, :math:`\dot y_2 = y_1 - y_2/\tau_s`
(:math:`y_2 = I`, :math:`y_1` in pA/ms) with :math:`y_1(0) = w e/\tau_s`,
:math:`y_2(0) = 0`; with the membrane equation
:math:`\tau_m \dot v = -(v - v_{rest}) + \tau_m (y_2 + I_e)/C_m` the whole
subthreshold system is linear, and one step of length :math:`h` is exactly

.. math::

    y_1 \leftarrow P_{11} y_1, \quad
    y_2 \leftarrow P_{21} y_1 + P_{22} y_2, \quad
    v \leftarrow v_{rest} + P_{vv}(v - v_{rest}) + P_{vi} I_e + P_{v1} y_1 + P_{v2} y_2

(all on the values at the start of the step) with :math:`P_{11} = P_{22} =
e^{-h/\tau_s}`, :math:`P_{21} = h e^{-h/\tau_s}`, :math:`P_{v2} =
e^{-h/\tau_m} \frac{h}{C_m} \varphi(h a)` (as for an exponential synapse)
and :math:`P_{v1} = e^{-h/\tau_m} \frac{h^2}{C_m} \psi(h a)`, where
:math:`a = 1/\tau_m - 1/\tau_s`, :math:`\varphi(z) = \int_0^1 e^{zu} du`
and :math:`\psi(z) = \int_0^1 u \, e^{zu} du`.  Both integrals are finite
and smooth at :math:`z = 0` (:math:`\tau_m = \tau_s`: :math:`\varphi = 1`,
:math:`\psi = 1/2`) and are evaluated here within a few units of rounding
for every :math:`z`,
so the equal-time-constant case needs no special branch and never divides
by zero.  A non-leaky IF neuron is :math:`1/\tau_m = 0`.

The neuron has one such pair per receptor: :math:`(y_1, y_2)` =
(``di_ex``, ``i_ex``) with :math:`\tau_{syn,ex}` for weights :math:`w \ge 0`
and (``di_in``, ``i_in``) with :math:`\tau_{syn,in}` for :math:`w < 0` (the
sign of the weight selects the receptor, as in NEST).  ``di_ex`` (pA/ms,
NEST's ``dI_ex``) is the drive of the current, :math:`\dot I_{ex} =
\mathrm{di}_{ex} - I_{ex}/\tau_{syn,ex}`, not its derivative.

Order of one step of length ``dt`` (NEST ``iaf_psc_alpha::update``):

1. if not refractory: the exact update of ``v`` above from the state at the
   start of the step, then ``v = max(v, v_min)``; else: the refractory
   counter is decremented and ``v`` stays clamped;
2. the synaptic states advance, :math:`y_2 \leftarrow P_{21} y_1 + P_{22}
   y_2` then :math:`y_1 \leftarrow P_{11} y_1`, and the weights arriving at
   the end of the step are added: :math:`y_1 \mathrel{+}= (e/\tau_s) \sum w`
   (they reach ``v`` from the next step on; refractory neurons take them up
   too);
3. ``ALIF`` only: every threshold component decays,
   :math:`\theta_k \leftarrow e^{-h/\tau_{\theta,k}} \theta_k`;
4. threshold test :math:`v \ge v_{th} + \sum_k \theta_k`; on a spike: reset
   of ``v`` (``reset``), refractory counter set to ``t_ref / dt``,
   :math:`\theta_k \mathrel{+}= d_k`.

Torch layer (``eventsim.torch.LIF(..., psc="alpha")``): the input ``x[t]``
(mV, a current times the membrane resistance, ``C_m = \tau_m``) enters the
drive, :math:`y_1 \mathrel{+}= g\,x_t`, with :math:`g = (1 - P_{vv})(1 -
P_{11})^2 / (P_{v1}(1 - P_{11}) + P_{v2} P_{21})` so that a constant ``x``
settles at :math:`v = v_{rest} + x` (as the bridge's other synapses);
the step is :func:`alpha_step` (steps 1 and 2 above), then the threshold
:math:`v \ge v_{th}`, the reset (``v_reset``, or subtraction of
:math:`v_{th} - v_{rest}`) and ``t_ref / dt`` refractory steps; the
output is the spike.  The reverse step uses the bridge's surrogate
derivative for the spike (:func:`eventsim.models.family.spike_grad`) and is
exact elsewhere.

Event engine (continuous time, as NEST's ``iaf_psc_alpha_ps``): the state
row holds ``v``, ``i_ex``, ``i_in``, ``di_ex``, ``di_in`` (:data:`EV_V`
...); between events it evolves freely by :func:`alpha_free`, which is
:func:`alpha_step` with the same propagators (:func:`alpha_propagators`,
:func:`eventsim.models.dynamics.exp_propagators`) taken for a step of the
time since the neuron's last event instead of ``dt``: one definition of the
dynamics for both engines.  ``v`` is held until the end of the refractory
period ``t_spike + t_ref`` while the synaptic states evolve, then evolves
from there.  An input of weight ``w`` at ``t`` jumps the drive,
:math:`y_1 \mathrel{+}= (e/\tau_s) w` (refractory or not); ``v`` and the
current are continuous, so an input never makes the neuron spike at once
(``fires`` is False); a spike is the first time the free trajectory
reaches :math:`v_{th} + \sum_k \theta_k`; then ``v`` is reset (by the
model's rule), :math:`\theta_k \mathrel{+}= d_k` and the refractory period
starts.  Recorded drives: the engine takes a state sample before an event
only if the sample's time is strictly earlier, so a sample whose time
equals an arrival's in exact arithmetic shows the drives ``di_ex`` /
``di_in`` with or without that input's jump depending on how the two float
times round (``v`` and the currents are continuous there, so only the
drives can differ); the clock engine's sample at the end of a step always
includes the inputs of that step.

Threshold crossings.  NEST's ``iaf_psc_alpha_ps`` (its source,
models/iaf_psc_alpha_ps.cpp) splits each time step at the offsets of the
incoming spikes (and at the end of the refractory period), propagates the
state over each such sub-interval and tests ``V_m >= V_th`` only at its
end; when the test holds it locates the crossing inside the sub-interval
by the Illinois variant of regula falsi on the distance to threshold (the
exact state at any offset from the sub-interval's start), stopping when
the distance is below 1e-14 mV.  A trajectory that rises above the
threshold and falls back inside one sub-interval (at most one step of
``dt``) is therefore missed there, and the spike time found within a
sub-interval may not be the first crossing of the interval.  This engine
does not test at interval ends: after every event it predicts the first
time at which the free trajectory reaches the threshold with
:func:`eventsim.models.crossing.leftmost_crossing`, a branch-and-bound
search that cannot miss a crossing, because it discards an interval only
on a rigorous upper bound of ``v`` there (:func:`_v_bound`: each
synaptic current :math:`(y_2 + y_1 u) e^{-u/\tau_s}` has its exact
extremes on the interval, at the ends or at :math:`u = \tau_s -
y_2/y_1`; the comparison theorem bounds ``v`` by the largest current, and
by :math:`\max(v, v_\infty)` plus the positive charge still to come),
and locates it to 1e-13 ms by safeguarded Newton iteration once the
distance is provably increasing.  The two agree whenever NEST's test does
not miss a crossing (tests/test_event_alpha.py compares the spike times to
a stored NEST run); the choice keeps the event engine's promise of the
first crossing, independent of where the input spikes cut the time axis.

This module is the whole family: the propagator, the packing of a model's
parameters (:func:`pack_alpha`, :func:`event_pack`), the block update, the
event-engine functions (:data:`ALPHA_EVENT`) and its declaration
(:data:`IAF_ALPHA`, family code 4) through which the clock engines (CPU and
CUDA) and the event engine run it.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from . import iaf_event
from .adaptive import ALIF
from .crossing import next_crossing_bounded
from .iaf_event import theta_at, theta_bounds, theta_decay, theta_jump, theta_slope, theta_sum
from .dynamics import exp_propagators, phi, reset_voltage
from .family import IB, TL, TR, EventFunctions, Family, TorchSteps, block_kernel, register, spike_grad
from .lif import IF, LIF

_jit = njit(inline="always", cache=True)
#: The crossing search's functions are called, not inlined (as :mod:`eventsim.models.iaf_event`'s).
_call = njit(cache=True, _nrt=False)

#: :func:`psi` sums its Taylor series for ``PSI_SERIES[0] < z < PSI_SERIES[1]``, where the closed
#: form loses digits to cancellation (the series' terms are all positive for z > 0; for z < 0 they
#: alternate, so the series stops short there).
PSI_SERIES = (-0.5, 2.0)


@_jit
def psi(z):
    r""":math:`\int_0^1 u e^{zu} du = (z e^z - (e^z - 1)) / z^2`, with :math:`\psi(0) = 1/2`, within a few
    units of rounding for every z."""
    if PSI_SERIES[0] < z < PSI_SERIES[1]:
        # sum_k z^k / (k! (k + 2)): 32 terms leave < 1e-25 at z = 2
        term = 1.0  # z^k / k!
        total = 0.5
        for k in range(1, 32):
            term *= z / k
            total += term / (k + 2)
        return total
    return (z * math.exp(z) - math.expm1(z)) / (z * z)


@_jit
def alpha_propagators(h, inv_tau_m, c_m, inv_tau_s):
    """Exact propagator of an alpha synapse for a step of ``h`` ms: ``(p11, p21, p_v1, p_v2)``.

    ``inv_tau_m``, ``inv_tau_s``: 1/tau in 1/ms (``inv_tau_m = 0``: no leak);
    ``c_m`` in pF.  ``p11`` (= P22) and ``p21`` (ms) advance the synaptic
    state ``(y1, y2)``; ``p_v1`` (mV per pA/ms) and ``p_v2`` (mV per pA) its
    effect on the membrane potential over the step (see the module docstring).
    """
    e_s = math.exp(-h * inv_tau_s)
    e_m = math.exp(-h * inv_tau_m)
    z = h * (inv_tau_m - inv_tau_s)
    return e_s, h * e_s, e_m * h * h / c_m * psi(z), e_m * h / c_m * phi(z)


@_jit
def alpha_initial(inv_tau_s):
    """The jump of ``y1`` (pA/ms) per pA of weight: e / tau_s, so that the current peaks at the weight."""
    return math.e * inv_tau_s


# ---------------------------------------------------------------- packing
#: Columns of ``Params.coef`` (one row per parameter set), in this order: per receptor ``P21`` (ms),
#: ``P_v1`` (mV per pA/ms) and the jump of ``y1`` per pA of weight (1/ms).  ``P11 = P22`` is ``p_ee`` / ``p_nn``
#: and ``P_v2`` is ``p_ve`` / ``p_vn`` of the exponential-synapse propagator (the same numbers).
COEF = ("p21_ex", "p_v1_ex", "jump_ex", "p21_in", "p_v1_in", "jump_in")
#: Columns of ``State.x``: ``y1`` of each receptor (pA/ms).
X_COLUMNS = ("di_ex", "di_in")

_vec_alpha = np.vectorize(alpha_propagators.py_func, otypes=[np.float64] * 4)
_vec_jump = np.vectorize(alpha_initial.py_func, otypes=[np.float64])


def alpha_coefficients(model, n, dt):
    """``[n, 6]`` float64: the :data:`COEF` columns of ``model`` (LIF, IF or ALIF with ``psc="alpha"``) for
    a step of ``dt`` ms, computed on the host in float64."""
    inv_m = 0.0 if isinstance(model, IF) else 1.0 / np.asarray(model.tau_m, np.float64)
    cols = []
    for tau_s in (model.tau_syn_ex, model.tau_syn_in):
        inv_s = 1.0 / np.asarray(tau_s, np.float64)
        _, p21, p_v1, _ = _vec_alpha(float(dt), inv_m, model.c_m, inv_s)
        cols += [p21, p_v1, _vec_jump(inv_s)]
    return np.column_stack([np.broadcast_to(c, (n,)) for c in cols]).astype(np.float64)


def pack_alpha(model, n, dt, base):
    """A model's ``pack`` with alpha synapses: ``base`` (the exponential-synapse packing of the same
    parameters, whose ``p_vv, p_vi, p_ve, p_vn, p_ee, p_nn`` are the alpha step's ``P_vv, P_vi, P_v2`` and
    ``P22``) with the family code, ``coef`` (:data:`COEF`) and ``x_init`` (``di_ex = di_in = 0``)."""
    out = dict(base)
    out["family"] = np.full(n, IAF_ALPHA.code, np.int64)
    out["is_exp"] = np.ones(n, np.int64)  # two ports: one ring block per sign of the weight
    out["coef"] = alpha_coefficients(model, n, dt)
    out["x_init"] = np.zeros((n, len(X_COLUMNS)))
    return out


# ---------------------------------------------------------------- the family's block update
@_jit
def alpha_step(v, y1e, y2e, y1i, y2i, refr, in_ex, in_in, v_rest, p_vv, p_vi, i_const, v_min, p_v1e, p_v2e,
               p11e, p21e, jump_e, p_v1i, p_v2i, p11i, p21i, jump_i):
    """Steps 1 and 2 of the module docstring for one neuron: returns ``(v, y1e, y2e, y1i, y2i, refr)``.

    ``in_ex``, ``in_in``: the summed weights (pA) arriving at the end of the step per receptor.
    """
    v_new = (v_rest + p_vv * (v - v_rest) + p_vi * i_const + p_v1e * y1e + p_v2e * y2e
             + p_v1i * y1i + p_v2i * y2i)
    v_new = max(v_new, v_min)
    v = v_new if refr == 0 else v   # a select, not a branch (as dynamics.neuron_update)
    refr = max(refr - 1, 0)
    y2e = p21e * y1e + p11e * y2e
    y1e = p11e * y1e + jump_e * in_ex
    y2i = p21i * y1i + p11i * y2i
    y1i = p11i * y1i + jump_i * in_in
    return v, y1e, y2e, y1i, y2i, refr


@_jit
def _alpha_one(n, i_const, re, ri, xv, xe, xi, xx, xr, xf, v_rest, p_vv, p_vi, v_min, p_v1e, p_v2e, p11e, p21e,
               jump_e, p_v1i, p_v2i, p11i, p21i, jump_i, v_th, mode, v_reset, reset_m, reset_b, ref_steps):
    """One step of neuron ``n`` of a :func:`_run_alpha` range without threshold adaptation."""
    in_ex = re[n]
    in_in = ri[n]
    re[n] = 0.0
    ri[n] = 0.0
    v, y1e, y2e, y1i, y2i, refr = alpha_step(
        xv[n], xx[n, 0], xe[n], xx[n, 1], xi[n], xr[n], in_ex, in_in, v_rest, p_vv, p_vi, i_const, v_min,
        p_v1e, p_v2e, p11e, p21e, jump_e, p_v1i, p_v2i, p11i, p21i, jump_i)
    spiked = v >= v_th
    xv[n] = reset_voltage(v, mode, v_reset, v_rest, v_th, reset_m, reset_b) if spiked else v
    xx[n, 0] = y1e
    xe[n] = y2e
    xx[n, 1] = y1i
    xi[n] = y2i
    xr[n] = ref_steps if spiked else refr
    xf[n] = spiked


@block_kernel
def _run_alpha(a, b, q, c0, ring, i_c, per_neuron, pr, sv, sie, sii, sx, srefr, sdc, theta, flag):
    """Neurons ``a..b-1`` (parameter set ``q``) with alpha synapses: read and clear their input, step,
    threshold (with the adaptive components of ALIF), reset.

    The excitatory input of neuron n is in ring column ``c0 + n``, the inhibitory one ``N`` columns
    further; ``y1`` of both receptors in ``sx[n, 0]`` and ``sx[n, 1]``.  Without threshold components
    (``theta`` has no column: no ALIF in the network) one loop per case of constant input and reset mode
    over slices, as :func:`eventsim.models.lif._run_exp`; else one general loop.
    """
    N = sv.size
    K = theta.shape[1]
    v_rest = pr.v_rest[q]
    p_vv = pr.p_vv[q]
    p_vi = pr.p_vi[q]
    v_min = pr.v_min[q]
    v_th = pr.v_th[q]
    p_v2e = pr.p_ve[q]
    p_v2i = pr.p_vn[q]
    p11e = pr.p_ee[q]
    p11i = pr.p_nn[q]
    p21e = pr.coef[q, 0]
    p_v1e = pr.coef[q, 1]
    jump_e = pr.coef[q, 2]
    p21i = pr.coef[q, 3]
    p_v1i = pr.coef[q, 4]
    jump_i = pr.coef[q, 5]
    mode = pr.reset_mode[q]
    v_reset = pr.v_reset[q]
    reset_m = pr.reset_m[q]
    reset_b = pr.reset_b[q]
    ref_steps = pr.ref_steps[q]
    if K == 0:
        re = ring[c0 + a: c0 + b]
        ri = ring[c0 + N + a: c0 + N + b]
        xv = sv[a:b]
        xe = sie[a:b]
        xi = sii[a:b]
        xx = sx[a:b]
        xr = srefr[a:b]
        xd = sdc[a:b]
        xf = flag[a:b]
        if per_neuron and mode == 0:
            for n in range(xv.size):
                _alpha_one(n, i_c + xd[n], re, ri, xv, xe, xi, xx, xr, xf, v_rest, p_vv, p_vi, v_min, p_v1e, p_v2e,
                           p11e, p21e, jump_e, p_v1i, p_v2i, p11i, p21i, jump_i, v_th, 0, v_reset, reset_m, reset_b,
                           ref_steps)
        elif per_neuron:
            for n in range(xv.size):
                _alpha_one(n, i_c + xd[n], re, ri, xv, xe, xi, xx, xr, xf, v_rest, p_vv, p_vi, v_min, p_v1e, p_v2e,
                           p11e, p21e, jump_e, p_v1i, p_v2i, p11i, p21i, jump_i, v_th, mode, v_reset, reset_m,
                           reset_b, ref_steps)
        elif mode == 0:
            for n in range(xv.size):
                _alpha_one(n, i_c, re, ri, xv, xe, xi, xx, xr, xf, v_rest, p_vv, p_vi, v_min, p_v1e, p_v2e, p11e,
                           p21e, jump_e, p_v1i, p_v2i, p11i, p21i, jump_i, v_th, 0, v_reset, reset_m, reset_b,
                           ref_steps)
        else:
            for n in range(xv.size):
                _alpha_one(n, i_c, re, ri, xv, xe, xi, xx, xr, xf, v_rest, p_vv, p_vi, v_min, p_v1e, p_v2e, p11e,
                           p21e, jump_e, p_v1i, p_v2i, p11i, p21i, jump_i, v_th, mode, v_reset, reset_m, reset_b,
                           ref_steps)
        return
    for n in range(a, b):
        in_ex = ring[c0 + n]
        in_in = ring[c0 + N + n]
        ring[c0 + n] = 0.0
        ring[c0 + N + n] = 0.0
        i_const = i_c + sdc[n] if per_neuron else i_c
        v, y1e, y2e, y1i, y2i, refr = alpha_step(
            sv[n], sx[n, 0], sie[n], sx[n, 1], sii[n], srefr[n], in_ex, in_in, v_rest, p_vv, p_vi, i_const,
            v_min, p_v1e, p_v2e, p11e, p21e, jump_e, p_v1i, p_v2i, p11i, p21i, jump_i)
        thr = v_th
        for k in range(K):  # (LIF / IF beside ALIF neurons: p_theta = d_theta = 0, theta stays 0)
            theta[n, k] *= pr.p_theta[q, k]
            thr += theta[n, k]
        spiked = v >= thr
        if spiked:
            v = reset_voltage(v, mode, v_reset, v_rest, thr, reset_m, reset_b)
            refr = ref_steps
            for k in range(K):
                theta[n, k] += pr.d_theta[q, k]
        sv[n] = v
        sx[n, 0] = y1e
        sie[n] = y2e
        sx[n, 1] = y1i
        sii[n] = y2i
        srefr[n] = refr
        flag[n] = spiked


@_jit
def _alpha_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of ``iaf_psc_alpha``."""
    _run_alpha(a, b, q, c0, ring, i_c, per_neuron, pr, st.v, st.i_ex, st.i_in, st.x, st.refr, st.i_dc,
               st.theta, flag)


# ---------------------------------------------------------------- the event engine (see eventsim.models.family)
#: The family's columns of the event engine's parameter rows: those of :mod:`eventsim.models.iaf_event`
#: (``INV_TE``, ``INV_TI`` the inverse synaptic time constants, ``TAU_MAX`` the longest time constant), and
#: the number of threshold components of the row's model (0: none, the threshold is ``v_th``).
N_TH = iaf_event.TAU_MAX + 1
#: Columns of the event engine's state rows: ``v`` (mV), ``i_ex``, ``i_in`` (pA: :math:`y_2`), ``di_ex``,
#: ``di_in`` (pA/ms: :math:`y_1`).
EV_V, EV_IE, EV_II, EV_DIE, EV_DII = range(5)
_INV_TM, _C_M, _V_REST, _V_TH = iaf_event.INV_TM, iaf_event.C_M, iaf_event.V_REST, iaf_event.V_TH
_INV_TE, _INV_TI, _TAU_MAX = iaf_event.INV_TE, iaf_event.INV_TI, iaf_event.TAU_MAX


def event_pack(model, n):
    """Parameter rows of ``n`` neurons of ``model`` (LIF, IF or ALIF with ``psc="alpha"``) and their threshold
    components: the integrate-and-fire rows (:func:`eventsim.models.iaf_event.pack`) with the synaptic time
    constants and the number of threshold components."""
    P, ith, dth = iaf_event.pack(model, n)
    tau_e = np.broadcast_to(np.asarray(model.tau_syn_ex, np.float64), (n,))
    tau_i = np.broadcast_to(np.asarray(model.tau_syn_in, np.float64), (n,))
    P[:, _INV_TE] = 1.0 / tau_e
    P[:, _INV_TI] = 1.0 / tau_i
    P[:, _TAU_MAX] = np.maximum.reduce([P[:, _TAU_MAX], tau_e, tau_i])
    P[:, N_TH] = ith.shape[1]
    return P, ith, dth


@_jit
def alpha_free(v, y1e, y2e, y1i, y2i, h, held, inv_tau_m, c_m, v_rest, i_const, inv_tau_ex, inv_tau_in):
    """The state ``(v, y1e, y2e, y1i, y2i)`` after ``h`` ms (any length) without input: :func:`alpha_step` with
    the propagators of a step of ``h`` (:func:`eventsim.models.dynamics.exp_propagators` for ``P_vv``,
    ``P_vi`` and :func:`alpha_propagators`, as the clock engine's coefficients for ``h = dt``); ``held``
    (0 or 1): ``v`` clamped (refractory), only the synaptic states advance."""
    p_vv, p_vi, _, _, _, _ = exp_propagators(h, inv_tau_m, c_m, inv_tau_ex, inv_tau_in)
    p11e, p21e, p_v1e, p_v2e = alpha_propagators(h, inv_tau_m, c_m, inv_tau_ex)
    p11i, p21i, p_v1i, p_v2i = alpha_propagators(h, inv_tau_m, c_m, inv_tau_in)
    v, y1e, y2e, y1i, y2i, _ = alpha_step(v, y1e, y2e, y1i, y2i, held, 0.0, 0.0, v_rest, p_vv, p_vi, i_const,
                                          -math.inf, p_v1e, p_v2e, p11e, p21e, 0.0, p_v1i, p_v2i, p11i, p21i, 0.0)
    return v, y1e, y2e, y1i, y2i


@_jit
def _event_state(i, p, s, PP, SS):
    """``(v, y1e, y2e, y1i, y2i)`` of neuron ``i`` ``s`` ms after its last event (no side effect): held
    until the end of the refractory period, free after it."""
    v = SS[i, EV_V]
    y1e = SS[i, EV_DIE]
    y2e = SS[i, EV_IE]
    y1i = SS[i, EV_DII]
    y2i = SS[i, EV_II]
    inv_tm = PP[p, _INV_TM]
    c_m = PP[p, _C_M]
    v_rest = PP[p, _V_REST]
    i_e = SS[i, IB]
    inv_te = PP[p, _INV_TE]
    inv_ti = PP[p, _INV_TI]
    hr = SS[i, TR] - SS[i, TL]
    if hr >= s:
        return alpha_free(v, y1e, y2e, y1i, y2i, s, 1, inv_tm, c_m, v_rest, i_e, inv_te, inv_ti)
    if hr > 0.0:
        v, y1e, y2e, y1i, y2i = alpha_free(v, y1e, y2e, y1i, y2i, hr, 1, inv_tm, c_m, v_rest, i_e, inv_te, inv_ti)
        s = s - hr
    return alpha_free(v, y1e, y2e, y1i, y2i, s, 0, inv_tm, c_m, v_rest, i_e, inv_te, inv_ti)


@_jit
def event_advance(fam, i, p, s, PP, SS, TH, ITH):
    """State ``s`` ms later, without input (threshold components decayed)."""
    v, y1e, y2e, y1i, y2i = _event_state(i, p, s, PP, SS)
    SS[i, EV_V] = v
    SS[i, EV_DIE] = y1e
    SS[i, EV_IE] = y2e
    SS[i, EV_DII] = y1i
    SS[i, EV_II] = y2i
    theta_decay(i, s, TH, ITH)


@_jit
def event_sample(fam, i, p, s, var, PP, SS, TH, ITH):
    """``v``, ``i_ex``, ``i_in``, ``theta`` (sum of the components), ``v_th`` (with them), ``di_ex`` or
    ``di_in`` (codes 0-4, then ``X_CODE + column of State.x``: 5, 6) at ``s``."""
    if var == 3 or var == 4:
        th = theta_at(i, s, TH, ITH)
        return th + PP[p, _V_TH] if var == 4 else th
    v, y1e, y2e, y1i, y2i = _event_state(i, p, s, PP, SS)
    if var == 0:
        return v
    if var == 1:
        return y2e
    if var == 2:
        return y2i
    return y1e if var == 5 else y1i


@_jit
def event_receive(fam, i, p, t, w, port, PP, SS):
    """Input of weight ``w`` (pA) at ``t``: the drive of the receptor its sign selects jumps by
    :math:`(e/\\tau_s) w` (:func:`alpha_initial`), refractory or not."""
    if w >= 0.0:
        SS[i, EV_DIE] += alpha_initial(PP[p, _INV_TE]) * w
    else:
        SS[i, EV_DII] += alpha_initial(PP[p, _INV_TI]) * w


@_jit
def event_fires(fam, i, p, t, PP, SS, TH):
    """Never at an input: the current is continuous, so is ``v`` (its crossings are predicted)."""
    return False


@_jit
def event_reset(fam, i, p, t, PP, SS, TH, DTH):
    """Reset of ``v`` by the model's rule at the effective threshold crossed, then the threshold increments."""
    th = theta_sum(i, TH)
    SS[i, EV_V] = reset_voltage(SS[i, EV_V], PP[p, iaf_event.RESET_MODE], PP[p, iaf_event.V_RESET],
                                PP[p, _V_REST], PP[p, _V_TH] + th, PP[p, iaf_event.RESET_M],
                                PP[p, iaf_event.RESET_B])
    theta_jump(i, TH, DTH)


@_jit
def _current_range(a, b, d, inv):
    """``(min, max)`` of the current :math:`(a + b u) e^{-u/\\tau}` (pA; ``a`` = :math:`y_2`, ``b`` =
    :math:`y_1`, ``inv`` = :math:`1/\\tau`) for ``u`` in ``[0, d]`` (``d`` may be inf): its values at the ends
    and at its one stationary point :math:`u^* = \\tau - a/b`."""
    lo = a
    hi = a
    end = 0.0 if d == math.inf else (a + b * d) * math.exp(-d * inv)
    lo = min(lo, end)
    hi = max(hi, end)
    if b != 0.0:
        u = 1.0 / inv - a / b
        if 0.0 < u < d:
            x = b / inv * math.exp(-u * inv)
            lo = min(lo, x)
            hi = max(hi, x)
    return lo, hi


@_jit
def _charge_bound(a, b, d, inv):
    """An upper bound of the charge (fC) of the positive part of :math:`(a + b u) e^{-u/\\tau}` on ``[0, d]``:
    :math:`a^+ \\tau (1 - e^{-x}) + b^+ \\tau^2 (1 - (1 + x) e^{-x})`, :math:`x = d/\\tau`."""
    tau = 1.0 / inv
    if d == math.inf:
        f1 = 1.0
        f2 = 1.0
    else:
        x = d * inv
        f1 = -math.expm1(-x)
        f2 = max(f1 - x * math.exp(-x), 0.0)
    return max(a, 0.0) * tau * f1 + max(b, 0.0) * tau * tau * f2


@_jit
def _v_bound(v, y1e, y2e, y1i, y2i, d, inv_tm, c_m, v_rest, i_e, inv_te, inv_ti):
    """On ``[0, d]`` from the state given, free: (an upper bound of ``v``, a lower bound of ``dv/ds``)."""
    lo_e, hi_e = _current_range(y2e, y1e, d, inv_te)
    lo_i, hi_i = _current_range(y2i, y1i, d, inv_ti)
    q = _charge_bound(y2e, y1e, d, inv_te) + _charge_bound(y2i, y1i, d, inv_ti)
    if inv_tm > 0.0:
        v_inf = v_rest + i_e / (c_m * inv_tm)
        u1 = max(v, v_inf) + q / c_m
        w = v_inf + (hi_e + hi_i) / (c_m * inv_tm)
        u2 = v + max(w - v, 0.0) * (-math.expm1(-d * inv_tm))
        u = min(u1, u2)
        return u, (v_inf - u) * inv_tm + (lo_e + lo_i) / c_m
    rate = max(i_e + hi_e + hi_i, 0.0)
    u = v + rate * d / c_m if rate > 0.0 else v
    u = min(u, v + q / c_m + (i_e * d / c_m if i_e > 0.0 else 0.0))
    return u, (i_e + lo_e + lo_i) / c_m


@_jit
def event_never_crosses(fam, i, p, PP, SS):
    """No threshold components, and the bound :math:`\\max(v, v_\\infty) + Q^+/C_m` (:math:`Q^+` the charge
    the positive currents can still deliver) below ``v_th`` (a non-leaky neuron: no positive constant input,
    :math:`v + Q^+/C_m`)."""
    if PP[p, N_TH] != 0.0:
        return False
    inv_tm = PP[p, _INV_TM]
    c_m = PP[p, _C_M]
    i_e = SS[i, IB]
    q = (_charge_bound(SS[i, EV_IE], SS[i, EV_DIE], math.inf, PP[p, _INV_TE])
         + _charge_bound(SS[i, EV_II], SS[i, EV_DII], math.inf, PP[p, _INV_TI]))
    v = SS[i, EV_V]
    if inv_tm > 0.0:
        v = max(v, PP[p, _V_REST] + i_e / (c_m * inv_tm))
    elif i_e > 0.0:
        return False
    return v + q / c_m < PP[p, _V_TH]


# ---------------------------------------------------------------- the crossing search
@_call
def event_distance(fam, i, p, s, PP, SS, TH, ITH):
    """Distance to threshold ``v - (v_th + sum theta)`` at ``s`` (mV)."""
    v, _, _, _, _ = _event_state(i, p, s, PP, SS)
    return v - PP[p, _V_TH] - theta_at(i, s, TH, ITH)


@_call
def event_slope(fam, i, p, s, PP, SS, TH, ITH):
    """Distance to threshold and its time derivative at ``s`` (free evolution, after the refractory period)."""
    v, _, y2e, _, y2i = _event_state(i, p, s, PP, SS)
    dv = (PP[p, _V_REST] - v) * PP[p, _INV_TM] + (SS[i, IB] + y2e + y2i) / PP[p, _C_M]
    th, dth = theta_slope(i, s, TH, ITH)
    return v - PP[p, _V_TH] - th, dv - dth


@_call
def event_bounds(fam, i, p, a, b, PP, SS, TH, ITH):
    """On ``[a, b]`` (after the refractory period): (upper bound of ``v`` minus a lower bound of the threshold,
    lower bound of the distance's time derivative)."""
    v, y1e, y2e, y1i, y2i = _event_state(i, p, a, PP, SS)
    d = b - a
    u, dv_lo = _v_bound(v, y1e, y2e, y1i, y2i, d, PP[p, _INV_TM], PP[p, _C_M], PP[p, _V_REST], SS[i, IB],
                        PP[p, _INV_TE], PP[p, _INV_TI])
    th_lo, dth_hi = theta_bounds(PP[p, _V_TH], i, a, d, TH, ITH)
    return u - th_lo, dv_lo - dth_hi


@_call
def event_next_crossing(fam, i, p, PP, SS, TH, ITH, stack):
    """Absolute time (ms) at which neuron ``i`` first reaches threshold without further input, not before the
    end of its refractory period (inf: never): :func:`eventsim.models.crossing.next_crossing_bounded`."""
    return next_crossing_bounded(fam, i, p, PP[p, _TAU_MAX], PP, SS, TH, ITH, stack)


#: The family's functions for the event engine.
ALPHA_EVENT = EventFunctions(
    pack=event_pack, slots={"v": EV_V, "i_ex": EV_IE, "i_in": EV_II, 0: EV_DIE, 1: EV_DII},
    advance=event_advance, sample=event_sample, receive=event_receive, fires=event_fires, reset=event_reset,
    never_crosses=event_never_crosses, next_crossing=event_next_crossing, distance=event_distance,
    slope=event_slope, bounds=event_bounds)


# ---------------------------------------------------------------- the torch layer (LIF(psc="alpha") of the bridge)
#: Coefficient rows of the torch layer, per neuron.
TORCH_ROWS = ("v_rest", "p_vv", "p_v1", "p_v2", "p11", "p21", "gain", "v_th", "v_reset", "ref_steps", "reset",
              "surrogate", "alpha", "detach")


def _psi(xp, z):
    """:func:`psi` in the array namespace ``xp``: its series for ``|z| < 0.5``, else the closed form."""
    small = xp.abs(z) < 0.5
    zs = xp.where(small, xp.ones_like(z), z)
    closed = (zs * xp.exp(zs) - xp.expm1(zs)) / (zs * zs)
    term = xp.ones_like(z)
    total = 0.5 + 0.0 * z
    for k in range(1, 24):
        term = term * z / k
        total = total + term / (k + 2)
    return xp.where(small, total, closed)


def _phi(xp, z):
    small = xp.abs(z) < 1e-6
    zs = xp.where(small, xp.ones_like(z), z)
    return xp.where(small, 1.0 + 0.5 * z + z * z / 6.0, xp.expm1(zs) / zs)


def torch_coefficients(xp, dt, tau_m, tau_syn, v_th, v_reset, v_rest, ref_steps, reset, surrogate, alpha, detach):
    """The rows :data:`TORCH_ROWS` of a torch LIF layer with alpha synapses (``xp``: ``numpy`` or ``torch``).

    ``tau_m``, ``tau_syn`` (ms, > 0), ``v_th``, ``v_reset``, ``v_rest`` (mV)
    and the codes ``ref_steps`` (steps), ``reset`` (0: value, 1: subtract),
    ``surrogate``, ``alpha`` (:mod:`eventsim.torch.surrogate`) and ``detach``
    (0/1: cut the gradient through the reset) as float64 arrays per neuron.
    """
    inv_m, inv_s = 1.0 / tau_m, 1.0 / tau_syn
    p_vv = xp.exp(-dt * inv_m)
    p11 = xp.exp(-dt * inv_s)
    z = dt * (inv_m - inv_s)
    p_v1 = p_vv * dt * dt * inv_m * _psi(xp, z)
    p_v2 = p_vv * dt * inv_m * _phi(xp, z)
    p21 = dt * p11
    gain = -xp.expm1(-dt * inv_m) * (1.0 - p11) ** 2 / (p_v1 * (1.0 - p11) + p_v2 * p21)
    return [v_rest, p_vv, p_v1, p_v2, p11, p21, gain, v_th, v_reset, ref_steps, reset, surrogate, alpha, detach]


def torch_model(dt, tau_m, tau_syn, v_th, v_reset, v_rest, ref_steps, reset, surrogate, alpha, detach):
    """``(model, gain)``: the simulator's ``LIF(psc="alpha")`` of a torch layer and the weight factor per
    neuron (pA per unit of the layer's input weight: the drive's jump is ``e / tau_syn`` per pA)."""
    rows = torch_coefficients(np, dt, tau_m, tau_syn, v_th, v_reset, v_rest, ref_steps, reset, surrogate, alpha,
                              detach)
    first = lambda a: float(np.asarray(a).reshape(-1)[0])  # noqa: E731  (layer-wide settings)
    model = LIF(tau_m=tau_m, c_m=tau_m, v_th=v_th, v_reset=v_reset, v_rest=v_rest, t_ref=first(ref_steps) * dt,
                tau_syn_ex=tau_syn, tau_syn_in=tau_syn, psc="alpha",
                reset="subtract" if first(reset) else "value")
    return model, rows[6] * tau_syn / math.e


@_jit
def _torch_step(v, y1, y2, refr, x, v_rest, p_vv, p_v1, p_v2, p11, p21, gain):
    """:func:`alpha_step` with one receptor (the drive ``y1`` jumps by ``gain * x``), no constant current and no
    lower bound: ``(v, y1, y2, _, _, refr)`` before the threshold (scalars only: the CUDA simulator runs the
    callers as Python on its own arrays)."""
    return alpha_step(v, y1, y2, 0.0, 0.0, refr, x, 0.0, v_rest, p_vv, 0.0, 0.0, -math.inf, p_v1, p_v2, p11, p21,
                      gain, 0.0, 0.0, 0.0, 0.0, 0.0)


@_jit
def torch_forward(s, j, c, n, x):
    """One step of element ``j``: :func:`alpha_step`, threshold, reset, refractory counter; returns the spike."""
    v, y1, y2, _, _, refr = _torch_step(s[0, j], s[1, j], s[2, j], s[3, j], x, c[0, n], c[1, n], c[2, n], c[3, n],
                                        c[4, n], c[5, n], c[6, n])
    z = 0.0
    if v >= c[7, n]:
        z = 1.0
        v = reset_voltage(v, c[10, n], c[8, n], c[0, n], c[7, n], 0.0, 0.0)
        refr = c[9, n]
    s[0, j] = v
    s[1, j] = y1
    s[2, j] = y2
    s[3, j] = refr
    return z


@_jit
def torch_backward(s, j, c, n, x, gy, gs, dc):
    r"""Reverse of :func:`torch_forward`: the surrogate derivative for the spike, exact elsewhere.

    Through the reset by value :math:`\partial v^+/\partial v^- = 1 - z` plus, unless detached,
    :math:`(v_{reset} - v^-)\,\partial z/\partial u`; by subtraction :math:`1 - (v_{th} - v_{rest})\,
    \partial z/\partial u`; while refractory the membrane is held (its gradient passes unchanged).
    """
    v = s[0, j]
    y1 = s[1, j]
    y2 = s[2, j]
    refr = s[3, j] > 0
    vr = c[0, n]
    p_vv = c[1, n]
    p11 = c[4, n]
    thr = c[7, n]
    vp = _torch_step(v, y1, y2, s[3, j], x, vr, p_vv, c[2, n], c[3, n], p11, c[5, n], c[6, n])[0]
    z = 1.0 if vp >= thr else 0.0
    gvo = gs[0, j]
    subtract = c[10, n] != 0
    if subtract:
        dr_dvp = 1.0
        dr_dz = -(thr - vr)
    else:
        dr_dvp = 1.0 - z
        dr_dz = c[8, n] - vp
    gz = gy
    if c[13, n] == 0:
        gz = gz + dr_dz * gvo
    gu = gz * spike_grad(c[11, n], c[12, n], vp - thr)
    gvp = gu + dr_dvp * gvo
    dc[7, j] += -gu - (z * gvo if subtract else 0.0)
    if subtract:
        dc[0, j] += z * gvo
    else:
        dc[8, j] += z * gvo
    # the synaptic states: y2' = p21 y1 + p11 y2, y1' = p11 y1 + g x
    g1n = gs[1, j]
    g2n = gs[2, j]
    g1 = c[5, n] * g2n + p11 * g1n
    g2 = p11 * g2n
    dc[4, j] += g2n * y2 + g1n * y1
    dc[5, j] += g2n * y1
    dc[6, j] += g1n * x
    gv = gvp
    if not refr:
        gv = p_vv * gvp
        g1 += c[2, n] * gvp
        g2 += c[3, n] * gvp
        dc[0, j] += gvp - p_vv * gvp
        dc[1, j] += gvp * (v - vr)
        dc[2, j] += gvp * y1
        dc[3, j] += gvp * y2
    gs[0, j] = gv
    gs[1, j] = g1
    gs[2, j] = g2
    gs[3, j] = 0.0
    return c[6, n] * g1n


#: The torch bridge's declaration of LIF with alpha synapses (``eventsim.torch.LIF(..., psc="alpha")``).
ALPHA_TORCH = TorchSteps(state=(("v", "mV"), ("di", "mV/ms"), ("i", "mV"), ("refr", "steps")), rows=TORCH_ROWS,
                         coefficients=torch_coefficients,
                         params=("tau_m", "tau_syn", "v_th", "v_reset", "v_rest", "ref_steps", "reset", "surrogate",
                                 "alpha", "detach"),
                         forward=torch_forward, backward=torch_backward, output="spikes", model=torch_model,
                         positive=("tau_m", "tau_syn"))


class IafAlphaTag(NamedTuple):
    """Compile-time key of the ``iaf_psc_alpha`` family (see :mod:`eventsim.models.family`)."""

    code: int


#: LIF, IF and ALIF with alpha-shaped current synapses (NEST's ``iaf_psc_alpha``): state ``v``, the currents
#: ``i_ex``, ``i_in`` (pA), their drives ``di_ex``, ``di_in`` (pA/ms, NEST's ``dI_ex``, ``dI_in``; columns 0 and 1
#: of ``State.x``), the threshold components ``theta`` (ALIF) and the refractory counter; one port per sign of
#: the weight (pA).
IAF_ALPHA = register(Family(
    name="iaf_psc_alpha", code=4, tag=IafAlphaTag(4),
    state=(("v", "mV"), ("i_ex", "pA"), ("i_in", "pA"), ("di_ex", "pA/ms"), ("di_in", "pA/ms"), ("theta", "mV")),
    ports=("ex", "in"), propagator=alpha_propagators, update_block=_alpha_block, models=(LIF, IF, ALIF),
    torch=ALPHA_TORCH, event=ALPHA_EVENT))
