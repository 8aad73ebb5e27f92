r"""Alpha-shaped current synapses: the exact propagator (NEST's ``iaf_psc_alpha``).

A spike of weight :math:`w` (pA) through an alpha synapse of time constant
:math:`\tau_s` adds the current

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
"""

import math

from numba import njit

from .dynamics import phi

_jit = njit(inline="always", cache=True)

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
