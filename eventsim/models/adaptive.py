r"""Adaptive-threshold integrate-and-fire neurons (ALIF / GLIF2 family).

The membrane obeys :class:`eventsim.models.LIF` (delta or exponential
synapses).  The threshold is :math:`v_{th} + \sum_k \theta_k` with components

.. math::

    \frac{d\theta_k}{dt} = -\frac{\theta_k}{\tau_{\theta,k}},\qquad
    \theta_k \leftarrow \theta_k + d_k \text{ at each spike},

integrated exactly (:math:`\theta_k(t+h) = e^{-h/\tau_{\theta,k}}\theta_k(t)`).
This covers inferno's ALIF (several components), pysnn's AdaptiveLIFNeuron
(one component) and, with ``reset="affine"``, the GLIF2 reset rule
:math:`v \leftarrow v_{rest} + m (v - v_{rest}) - b`.

Order of one step: the LIF step (:func:`eventsim.models.dynamics.neuron_update`),
then decay of every :math:`\theta_k`, then the threshold test
:math:`v \ge v_{th} + \sum_k \theta_k`, then on a spike: reset of ``v``,
refractory period, :math:`\theta_k \mathrel{+}= d_k`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dynamics
from ._params import as_param, broadcast, check
from .lif import LIF


@dataclass(frozen=True, repr=False)
class ALIF(LIF):
    r"""LIF neuron with one or more adaptive threshold components.

    Parameters
    ----------
    tau_theta : float or sequence of float
        Time constant of each threshold component (ms), > 0.  Each entry may
        be an array with one value per neuron.
    d_theta : float or sequence of float
        Threshold increment of each component at a spike (mV); same length
        as ``tau_theta``.  Negative values lower the threshold.
    reset : {"value", "subtract", "affine"}
        ``"subtract"`` subtracts the crossed effective threshold
        (``v <- v - (v_th + sum theta - v_rest)``); ``"affine"`` is GLIF2's
        ``v <- v_rest + reset_mult (v - v_rest) - reset_offset``.
    reset_mult : float
        ``m`` of the affine reset (dimensionless).
    reset_offset : float
        ``b`` of the affine reset (mV).
    **LIF parameters
        ``tau_m, c_m, v_rest, v_reset, v_th, t_ref, i_e, tau_syn_ex,
        tau_syn_in, v_min`` as in :class:`LIF`.
    """

    tau_theta: tuple = (100.0,)
    d_theta: tuple = (1.0,)
    reset_mult: float = 0.0
    reset_offset: float = 0.0

    _resets = {"value": dynamics.RESET_VALUE, "subtract": dynamics.RESET_SUBTRACT,
               "affine": dynamics.RESET_AFFINE}
    _extra_state = ("theta", "v_th")

    def __post_init__(self):
        tau = self.tau_theta if isinstance(self.tau_theta, (tuple, list)) else (self.tau_theta,)
        d = self.d_theta if isinstance(self.d_theta, (tuple, list)) else (self.d_theta,)
        if len(tau) != len(d):
            raise ValueError(f"tau_theta has {len(tau)} components but d_theta has {len(d)}; "
                             "expected one increment per time constant")
        if len(tau) == 0:
            raise ValueError("tau_theta must have at least one component (use LIF otherwise)")
        tau = tuple(as_param(f"tau_theta[{k}]", t) for k, t in enumerate(tau))
        d = tuple(as_param(f"d_theta[{k}]", x) for k, x in enumerate(d))
        for k, t in enumerate(tau):
            check(f"tau_theta[{k}]", t, np.asarray(t) > 0, "tau_theta > 0 (ms)")
        object.__setattr__(self, "tau_theta", tau)
        object.__setattr__(self, "d_theta", d)
        super().__post_init__()

    @property
    def n_values(self):
        n = super().n_values
        for x in self.tau_theta + self.d_theta:
            if isinstance(x, np.ndarray):
                if n is not None and x.size != n:
                    raise ValueError("ALIF parameter arrays have mismatched lengths")
                n = x.size
        return n

    def _reset_coefficients(self, n):
        return broadcast("reset_mult", self.reset_mult, n), broadcast("reset_offset", self.reset_offset, n)

    def _theta(self, n, dt):
        K = len(self.tau_theta)
        p = np.empty((n, K))
        d = np.empty((n, K))
        for k in range(K):
            p[:, k] = np.exp(-dt / broadcast("tau_theta", self.tau_theta[k], n))
            d[:, k] = broadcast("d_theta", self.d_theta[k], n)
        return p, d
