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
from typing import NamedTuple

import numpy as np
from numba import njit

from . import dynamics, iaf_event
from .dynamics import neuron_update, reset_voltage
from .family import Family, block_kernel, register
from ._params import as_param, broadcast, check
from .lif import LIF, family_of, torch_steps


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
        tau_syn_in, v_min, psc`` as in :class:`LIF` (``psc="alpha"``:
        alpha-shaped current synapses, :mod:`eventsim.models.psc_alpha`).
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
        if self.tau_syn is not None:
            raise ValueError(f"tau_syn={self.tau_syn!r}: receptor ports are not available for ALIF; use "
                             "tau_syn_ex / tau_syn_in (ports chosen by the weight's sign), or LIF / IF with tau_syn")

    @property
    def n_values(self):
        n = super().n_values
        for x in self.tau_theta + self.d_theta:
            if isinstance(x, np.ndarray):
                if n is not None and x.size != n:
                    raise ValueError("ALIF parameter arrays have mismatched lengths")
                n = x.size
        return n

    @property
    def family(self):
        """The :class:`eventsim.models.family.Family` that updates this model (alpha synapses:
        :data:`eventsim.models.psc_alpha.IAF_ALPHA`, which adapts the threshold too)."""
        return family_of(self.synapse, adaptive=True)

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


# ---------------------------------------------------------------- the family's block update
@block_kernel
def _run_adaptive(a, b, q, rbase, ring, col, is_exp_q, v_rest, v_th, p_vv, p_vi, p_ve, p_vn, p_ee, p_nn, i_e,
                  v_min, reset_mode, v_reset, reset_m, reset_b, ref_steps, p_theta, d_theta, sv, sie, sii,
                  srefr, sdc, theta, flag):
    """Neurons ``a..b-1`` (parameter set ``q``) with threshold adaptation: the general update."""
    K = p_theta.shape[1]
    is_exp = is_exp_q[q]
    for n in range(a, b):
        c = rbase + col[n]
        in_ex = ring[c]
        ring[c] = 0.0
        in_in = 0.0
        i_ex = 0.0
        i_in = 0.0
        if is_exp:
            in_in = ring[c + sv.size]
            ring[c + sv.size] = 0.0
            i_ex = sie[n]
            i_in = sii[n]
        v, i_ex, i_in, refr = neuron_update(
            sv[n], i_ex, i_in, srefr[n], in_ex, in_in, is_exp,
            v_rest[q], p_vv[q], p_vi[q], p_ve[q], p_vn[q], p_ee[q],
            p_nn[q], i_e[q] + sdc[n], v_min[q])
        thr = v_th[q]
        for k in range(K):
            theta[n, k] *= p_theta[q, k]
            thr += theta[n, k]
        spiked = v >= thr
        if spiked:
            v = reset_voltage(v, reset_mode[q], v_reset[q], v_rest[q], thr, reset_m[q], reset_b[q])
            refr = ref_steps[q]
            for k in range(K):
                theta[n, k] += d_theta[q, k]
        sv[n] = v
        if is_exp:
            sie[n] = i_ex
            sii[n] = i_in
        srefr[n] = refr
        flag[n] = spiked


@njit(inline="always", cache=True)
def _adaptive_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of the adaptive-threshold family (reads ``st.i_dc``
    per neuron whatever ``per_neuron``: the same sum)."""
    _run_adaptive(a, b, q, rbase, ring, pr.col, pr.is_exp, pr.v_rest, pr.v_th, pr.p_vv, pr.p_vi, pr.p_ve, pr.p_vn,
                  pr.p_ee, pr.p_nn, pr.i_e, pr.v_min, pr.reset_mode, pr.v_reset, pr.reset_m, pr.reset_b,
                  pr.ref_steps, pr.p_theta, pr.d_theta, st.v, st.i_ex, st.i_in, st.refr, st.i_dc, st.theta, flag)


class AlifTag(NamedTuple):
    """Compile-time key of the adaptive-threshold family (see :mod:`eventsim.models.family`)."""

    code: int


#: ALIF / GLIF2 with delta or exponential synapses: state ``v`` (``i_ex``, ``i_in`` with exponential
#: synapses), the threshold components ``theta`` and the refractory counter.
ALIF_FAMILY = register(Family(
    name="alif", code=2, tag=AlifTag(2), state=(("v", "mV"), ("i_ex", "pA"), ("i_in", "pA"), ("theta", "mV")),
    ports=("ex", "in"), propagator=dynamics.exp_propagators, update_block=_adaptive_block, models=(ALIF,),
    event=iaf_event.functions(AlifTag, currents="row", adaptive=True),
    torch=torch_steps((("v", "mV"), ("i", "mV"), ("refr", "steps"), ("theta", "mV")))))
