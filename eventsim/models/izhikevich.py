r"""Izhikevich (2003) neurons, stepped as NEST's ``izhikevich`` model does.

State ``v`` (mV), ``u`` (mV/ms, as in the paper's dimensionless form);
parameters ``a``, ``b``, ``c``, ``d``, ``V_th`` (30 mV), ``V_min``, ``I_e``:

.. math::

    \dot v = 0.04 v^2 + 5 v + 140 - u + I, \qquad \dot u = a (b v - u),

with a spike at :math:`v \ge V_{th}` (then :math:`v \leftarrow c`,
:math:`u \leftarrow u + d`).  The model is defined by its update rule, not
by an exact solution: with ``consistent_integration`` (NEST's default) one
forward-Euler step of ``dt`` from the values at the step's start, the
step's input spikes added to ``v`` (mV); without it the published scheme
(two half steps for ``v`` with the input inside, then ``u`` from the new
``v``).  Then ``v = max(v, V_min)`` and the threshold test.  The input
current ``I`` (pA, read as mV/ms as in NEST) is ``I_e`` plus the current
received in the previous step.
"""

from numba import njit

_jit = njit(inline="always", cache=True)


@_jit
def step_izhikevich(v, u, a, b, c, d, v_th, v_min, i_e, dt, jump, i_stim, consistent):
    """One step: returns ``(v, u, spiked)``; ``jump``: the step's input spikes (mV)."""
    if consistent:
        v_new = v + dt * (0.04 * v * v + 5.0 * v + 140.0 - u + i_stim + i_e) + jump
        u = u + dt * a * (b * v - u)
        v = v_new
    else:
        v = v + dt * 0.5 * (0.04 * v * v + 5.0 * v + 140.0 - u + i_stim + i_e + jump)
        v = v + dt * 0.5 * (0.04 * v * v + 5.0 * v + 140.0 - u + i_stim + i_e + jump)
        u = u + dt * a * (b * v - u)
    v = max(v, v_min)
    if v >= v_th:
        return c, u + d, True
    return v, u, False
