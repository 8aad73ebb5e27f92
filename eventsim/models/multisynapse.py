r"""Current-based LIF and IF neurons with several receptor ports (NEST ``iaf_psc_exp_multisynapse``).

``es.LIF(..., tau_syn=[2.0, 100.0, 5.0])`` gives each neuron one
exponentially decaying synaptic current per port :math:`k` (time constant
``tau_syn[k]``, ms); a connection names its port
(``net.connect(..., receptor=k)``, ``0 <= k < len(tau_syn)``; NEST's
``receptor_type`` is ``k + 1``), and the sign of the weight (pA) no longer
chooses the port: any port takes weights of either sign.

.. math::

    \frac{dv}{dt} = -\frac{v - v_{rest}}{\tau_m} + \frac{\sum_k I_k + I_e}{C_m},\qquad
    \frac{dI_k}{dt} = -\frac{I_k}{\tau_{syn,k}}

integrated exactly: one step of length ``h`` is
:math:`v \leftarrow v_{rest} + P_{vv}(v - v_{rest}) + P_{vi} I_e + \sum_k P_{k} I_k`,
:math:`I_k \leftarrow e^{-h/\tau_{syn,k}} I_k`, with :math:`P_k` the
``p_ve`` coefficient of :func:`eventsim.models.dynamics.exp_propagators` for
:math:`\tau_{syn,k}` (its ``tau_m == tau_syn`` limit exact).

Order of one step (NEST's ``iaf_psc_exp_multisynapse``, the same as
``iaf_psc_exp``): if not refractory, exact update of ``v`` from the currents
at the start of the step, else the refractory counter is decremented;
``v = max(v, v_min)``; each port's current decays and the input arriving
at the end of the step is added to it; threshold test ``v >= v_th``, reset
and start of the refractory period.

Storage (:mod:`eventsim.models.family`): the currents are columns
``0..P-1`` of the family's state ``x`` (state names ``i_syn_0`` ...); the
coefficients of a parameter set are ``coef = [P, P_0..P_{P-1},
e^{-h/\tau_{syn,0}}..]``; the input of port ``k`` of neuron ``n`` arrives in
ring column ``k N + n`` (block ``k`` of the ring).  The event engine does
not run this family (NotImplementedError); the time constants are one value
per port for the whole population.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from . import dynamics
from .dynamics import reset_voltage
from .family import Family, block_kernel, register
from .lif import IF, LIF, _inv, _vec_prop


def port_propagators(model, dt):
    """``(p_syn, p_decay)``: per port the current-to-voltage coefficient (mV/pA; one value, or one per neuron
    where ``tau_m`` or ``c_m`` differ between neurons) and the decay factor of a step of ``dt`` ms."""
    inv_m = 0.0 if isinstance(model, IF) else _inv(model.tau_m)
    p_syn, p_dec = [], []
    for tau in model.tau_syn:
        out = _vec_prop(float(dt), inv_m, model.c_m, 1.0 / tau, 1.0 / tau)
        p_syn.append(out[2])
        p_dec.append(float(np.exp(-float(dt) / tau)))
    return p_syn, p_dec


def pack_ports(model, n, dt, common):
    """The engines' arrays of an LIF / IF ``model`` with receptor ports: ``common`` (the fields every LIF packs,
    with its current propagators unused) plus ``coef`` and ``x_init`` (see the module docstring)."""
    P = len(model.tau_syn)
    p_syn, p_dec = port_propagators(model, dt)
    coef = np.empty((n, 1 + 2 * P))
    coef[:, 0] = P
    for k in range(P):
        coef[:, 1 + k] = p_syn[k]
        coef[:, 1 + P + k] = p_dec[k]
    zeros = np.zeros(n)
    common.update(family=np.full(n, MULTISYNAPSE.code, np.int64), is_exp=np.zeros(n, np.int64),
                  p_ve=zeros, p_vn=zeros.copy(), p_ee=zeros.copy(), p_nn=zeros.copy(), coef=coef,
                  x_init=np.zeros((n, P)))
    return common


@block_kernel
def _run_ports(a, b, q, c0, ring, i_c, per_neuron, pr, st, flag):
    """Neurons ``a..b-1`` (parameter set ``q``) with receptor ports: the order of the module docstring."""
    N = st.v.size
    co = pr.coef
    P = np.int64(co[q, 0])
    v_rest = pr.v_rest[q]
    v_th = pr.v_th[q]
    p_vv = pr.p_vv[q]
    p_vi = pr.p_vi[q]
    v_min = pr.v_min[q]
    mode = pr.reset_mode[q]
    v_reset = pr.v_reset[q]
    reset_m = pr.reset_m[q]
    reset_b = pr.reset_b[q]
    ref_steps = pr.ref_steps[q]
    x = st.x
    for n in range(a, b):
        i_const = i_c + st.i_dc[n] if per_neuron else i_c
        v = st.v[n]
        refr = st.refr[n]
        v_new = v_rest + p_vv * (v - v_rest) + p_vi * i_const
        for k in range(P):
            v_new += co[q, 1 + k] * x[n, k]
        v_new = max(v_new, v_min)
        v = v_new if refr == 0 else v
        refr = max(refr - 1, 0)
        for k in range(P):
            c = c0 + k * N + n
            x[n, k] = co[q, 1 + P + k] * x[n, k] + ring[c]
            ring[c] = 0.0
        spiked = v >= v_th
        st.v[n] = reset_voltage(v, mode, v_reset, v_rest, v_th, reset_m, reset_b) if spiked else v
        st.refr[n] = ref_steps if spiked else refr
        flag[n] = spiked


@njit(inline="always", cache=True)
def _ports_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`eventsim.models.family.update_block` of the receptor-port family."""
    _run_ports(a, b, q, c0, ring, i_c, per_neuron, pr, st, flag)


class MultisynapseTag(NamedTuple):
    """Compile-time key of the receptor-port family (see :mod:`eventsim.models.family`)."""

    code: int


#: LIF and IF with receptor ports (NEST's ``iaf_psc_exp_multisynapse``): state ``v``, one current per port
#: (columns of ``x``) and the refractory counter; port ``k`` is block ``k`` of the ring.
MULTISYNAPSE = register(Family(
    name="iaf_psc_exp_multisynapse", code=12, tag=MultisynapseTag(12), state=(("v", "mV"),),
    ports=("receptor",), propagator=dynamics.exp_propagators, update_block=_ports_block, models=(LIF, IF),
    event_engine=False))
