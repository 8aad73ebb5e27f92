r"""Scalar dynamics shared by every engine: the single definition of the maths.

These are small scalar functions without allocation, compiled with
``numba.njit(inline="always")``.  CPU engines inline them; CUDA kernels call
the same dispatchers as device functions; the torch bridge reuses them in its
fused kernels.  ``f.py_func`` is the plain-Python original.

All neuron families in :mod:`eventsim.models` reduce to one linear
subthreshold system integrated exactly over a step of length :math:`h`
(Rotter & Diesmann 1999):

.. math::

    \tau_m \dot v = -(v - v_{rest}) + \frac{\tau_m}{C_m}(I_{ex} + I_{in} + I_e),\qquad
    \tau_{ex}\dot I_{ex} = -I_{ex},\qquad \tau_{in}\dot I_{in} = -I_{in},

so that

.. math::

    v(t+h) = v_{rest} + P_{vv}(v - v_{rest}) + P_{vi} I_e + P_{ve} I_{ex} + P_{vn} I_{in},
    \quad I_x(t+h) = P_{xx} I_x(t),

with :math:`P_{vv}=e^{-h/\tau_m}`, :math:`P_{vi}=\frac{h}{C_m}\varphi(-h/\tau_m)`,
:math:`P_{vx}=e^{-h/\tau_m}\frac{h}{C_m}\varphi(-h(1/\tau_x-1/\tau_m))` and
:math:`\varphi(z)=(e^z-1)/z`, :math:`\varphi(0)=1`.  The :math:`\varphi` form
is exact, finite and accurate to rounding at and near :math:`\tau_m=\tau_x`.
A non-leaky IF neuron is the case :math:`1/\tau_m = 0`.
"""

import math

from numba import njit

_jit = njit(inline="always", cache=True)

RESET_VALUE = 0
RESET_SUBTRACT = 1
RESET_AFFINE = 2


@_jit
def phi(z):
    """(exp(z) - 1) / z, continuous at z = 0 (value 1), accurate near 0."""
    if z == 0.0:
        return 1.0
    return math.expm1(z) / z


@_jit
def exp_propagators(h, inv_tau_m, c_m, inv_tau_ex, inv_tau_in):
    """Exact propagator coefficients for one step of length ``h`` (ms).

    Returns ``(p_vv, p_vi, p_ve, p_vn, p_ee, p_nn)``; see the module docstring.
    ``inv_tau_*`` are 1/tau in 1/ms (0 for an infinite time constant).
    """
    p_vv = math.exp(-h * inv_tau_m)
    p_vi = h / c_m * phi(-h * inv_tau_m)
    p_ve = p_vv * h / c_m * phi(-h * (inv_tau_ex - inv_tau_m))
    p_vn = p_vv * h / c_m * phi(-h * (inv_tau_in - inv_tau_m))
    p_ee = math.exp(-h * inv_tau_ex)
    p_nn = math.exp(-h * inv_tau_in)
    return p_vv, p_vi, p_ve, p_vn, p_ee, p_nn


@_jit
def subthreshold_exp(v, i_ex, i_in, v_rest, p_vv, p_vi, p_ve, p_vn, i_const):
    """Membrane potential after one exact step with exponential current synapses."""
    return v_rest + p_vv * (v - v_rest) + p_vi * i_const + p_ve * i_ex + p_vn * i_in


@_jit
def subthreshold_delta(v, v_rest, p_vv, p_vi, i_const, jump):
    """Membrane potential after one exact step plus the delta-synapse jump (mV)."""
    return v_rest + p_vv * (v - v_rest) + p_vi * i_const + jump


@_jit
def neuron_update(v, i_ex, i_in, refr, in_ex, in_in, is_exp, v_rest, p_vv, p_vi, p_ve,
                  p_vn, p_ee, p_nn, i_const, v_min):
    """Advance one neuron by one step, before the threshold test.

    Order of one step (the same as NEST's ``iaf_psc_exp`` / ``iaf_psc_delta``):

    exponential synapses
        1. if not refractory: exact update of ``v`` from the currents at the
           start of the step; else: decrement the refractory counter;
        2. ``v = max(v, v_min)``;
        3. decay ``i_ex``, ``i_in``, then add the input arriving at the end
           of the step (it reaches ``v`` from the next step on).
    delta synapses
        1. if not refractory: exact update of ``v`` plus the arriving jumps
           (mV); else: the arriving input is discarded and the refractory
           counter decremented;
        2. ``v = max(v, v_min)``.

    Returns ``(v, i_ex, i_in, refr)``.
    """
    # written as selects rather than branches: whether a neuron is refractory
    # is unpredictable across neurons, and a mispredicted branch costs more
    # than the few flops of an update whose result is discarded
    if is_exp:
        v_new = subthreshold_exp(v, i_ex, i_in, v_rest, p_vv, p_vi, p_ve, p_vn, i_const)
        i_ex = p_ee * i_ex + in_ex
        i_in = p_nn * i_in + in_in
    else:
        v_new = subthreshold_delta(v, v_rest, p_vv, p_vi, i_const, in_ex + in_in)
    v_new = max(v_new, v_min)
    v = v_new if refr == 0 else v
    refr = max(refr - 1, 0)
    return v, i_ex, i_in, refr


@_jit
def free_membrane(v, i_ex, i_in, h, inv_tau_m, c_m, v_rest, i_const, inv_tau_ex, inv_tau_in, is_exp):
    """Membrane potential after ``h`` ms (any length) of free evolution, exactly: the step of
    :func:`subthreshold_exp` with the propagator of :func:`exp_propagators` for ``h`` (``is_exp``), else the
    delta-synapse step without input (the current term only when ``i_const`` is not 0)."""
    if is_exp:
        p_vv, p_vi, p_ve, p_vn, _, _ = exp_propagators(h, inv_tau_m, c_m, inv_tau_ex, inv_tau_in)
        return subthreshold_exp(v, i_ex, i_in, v_rest, p_vv, p_vi, p_ve, p_vn, i_const)
    p_vv = math.exp(-h * inv_tau_m)
    if i_const == 0.0:
        return v_rest + p_vv * (v - v_rest)
    return v_rest + p_vv * (v - v_rest) + h / c_m * phi(-h * inv_tau_m) * i_const


@_jit
def reset_voltage(v, mode, v_reset, v_rest, threshold, m, b):
    """Membrane potential right after a spike.

    mode 0 (value):    ``v_reset``
    mode 1 (subtract): ``v - (threshold - v_rest)``, threshold being the
                       effective threshold that was crossed
    mode 2 (affine, GLIF2): ``v_rest + m (v - v_rest) - b``
    """
    if mode == 0:
        return v_reset
    if mode == 1:
        return v - (threshold - v_rest)
    return v_rest + m * (v - v_rest) - b
