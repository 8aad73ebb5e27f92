r"""One step of a neuron layer, forward and reverse, as scalar Numba functions.

These functions are the only place where the torch bridge states the
arithmetic of a step.  The fused CPU kernels (:mod:`._cpu`) and the CUDA
kernels (:mod:`._cuda`) loop over them; the exact integrator calls the
simulator's own :func:`eventsim.models.dynamics.neuron_update` and
:func:`eventsim.models.dynamics.reset_voltage`, so the trained layer and
the clock engine share one definition of the dynamics.

Coefficient rows
----------------
``nat`` (native, forward; meaning per integrator, in the dtype of the data)::

    0 a      exact: p_vv            euler: dt/tau_m      snntorch: beta
             spikingjelly: tau (steps)                    sinabs: alpha_mem
    1 b      exact: p_vi (delta) or p_ve (current)       euler: -dt/tau_syn
             sinabs: 1 - alpha_mem (norm_input) or 1
    2 c      exact: p_ee                                 sinabs: alpha_syn
    3 g      exact: input gain into the current (current synapses)
    4 v_rest (leak potential; spikingjelly's leak target)
    5 v_th   6 v_reset   7 subtract reference (v - (thr - ref) on a subtractive reset)
    8 p_theta (adaptation decay per step)   9 d_theta (adaptation jump per spike)

``aff`` (affine form of the same step, used by the reverse pass)::

    v_pre = A_vv v + A_vi i + A_vx x + b_v,   i' = A_ii i + A_ix x
    rows 0 A_vv, 1 A_vi, 2 A_vx, 3 b_v, 4 A_ii, 5 A_ix, 6 v_th
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..models.dynamics import RESET_SUBTRACT, RESET_VALUE, neuron_update, reset_voltage
from .surrogate import surrogate_grad

_jit = njit(cache=True)

# integrators
EXACT = 0
EULER = 1          # norse LIFBoxCell / LIFCell (forward Euler)
SNNTORCH = 2       # snnTorch Leaky (delayed, detached reset)
SPIKINGJELLY = 3   # SpikingJelly LIFNode (decay_input=True)
SINABS = 4         # sinabs LIF

# spike rules
GE = 0             # z = v >= thr
GT = 1             # z = v > thr
MULTI = 2          # sinabs MultiSpike: z = trunc(v / thr) for v > 0

# flag vector layout (cfg, int64)
CFG_MODE, CFG_SYN, CFG_RESET, CFG_RULE, CFG_ADAPT, CFG_DETACH, CFG_SURR, CFG_REF, CFG_TRACK = range(9)
N_CFG = 9
N_NAT = 10
N_AFF = 7

__all__ = ["forward_step", "backward_step", "RESET_VALUE", "RESET_SUBTRACT"]


@_jit
def spike_of(rule, vp, thr, zero, one):
    """Spike output for the pre-reset membrane ``vp`` and threshold ``thr`` (0/1, or a count)."""
    if rule == GE:
        return one if vp >= thr else zero
    if rule == GT:
        return one if vp > thr else zero
    if vp > zero:
        return np.trunc(vp / thr)
    return zero


@_jit
def forward_step(mode, syn, reset, rule, adapt, ref_steps, v, i, r, th, x, nat, n, zero, one, ninf):
    """Advance one neuron by one step.

    Parameters are the flags (see the module docstring), the carried state
    ``v, i, r, th`` (membrane, synaptic current, refractory counter,
    adaptation), the input ``x`` of the step, the native coefficients
    ``nat[k][n]`` (rows of a 2-D array or a tuple of rows) and constants ``zero``, ``one``, ``ninf`` (-inf) of the data's dtype.

    Returns ``(v_pre, v_post, i, r, th, z, thr, refr)``: the membrane before
    and after the reset, the new current, counter and adaptation, the spike
    (0/1, or a count with ``MULTI``), the effective threshold and whether
    the step was refractory.
    """
    # every coefficient is loaded unconditionally: a load inside a branch cannot be speculated,
    # which would keep the compiler from turning the step into branch-free (SIMD) code
    a = nat[0][n]
    cb = nat[1][n]
    cc = nat[2][n]
    cg = nat[3][n]
    vr = nat[4][n]
    vth = nat[5][n]
    vrs = nat[6][n]
    sref = nat[7][n]
    refr = r > 0
    if mode == EXACT:
        # NEST order: exact v update (held while refractory), then the current
        if syn:
            vp, i, _, r = neuron_update(v, i, zero, r, cg * x, zero, 1, vr, a, zero, cb, zero, cc, zero,
                                        zero, ninf)
        else:
            vp, _, _, r = neuron_update(v, zero, zero, r, zero, zero, 0, vr, a, cb,
                                        zero, zero, zero, zero, x, ninf)
    else:
        if mode == EULER:
            if syn:
                j = i + x
                vp = v + a * ((vr - v) + j)
                i = j + cb * j
            else:
                vp = v + a * ((x + vr) - v)
        elif mode == SNNTORCH:
            vp = a * v + x
            if v > vth:
                if reset == RESET_SUBTRACT:
                    vp = vp - vth
                else:
                    vp = x
        elif mode == SPIKINGJELLY:
            vp = v + (x - (v - vr)) / a
        else:  # SINABS
            if syn:
                i = cc * (i + x)
                vp = a * v + cb * i
            else:
                vp = a * v + cb * x
        if refr:
            vp = v
            r -= 1
    thr = vth
    if adapt:
        th = nat[8][n] * th
        thr = vth + th
    z = spike_of(rule, vp, thr, zero, one)
    vpost = vp
    if z > zero:
        if mode != SNNTORCH:
            if rule == MULTI:
                vpost = vp - z * thr
            else:
                vpost = reset_voltage(vp, reset, vrs, sref, thr, zero, zero)
        if ref_steps > 0:
            r = ref_steps
        if adapt:
            th = th + nat[9][n] * z
    return vp, vpost, i, r, th, z, thr, refr


@_jit
def backward_step(mode, syn, reset, rule, adapt, detach, code, alpha,
                  vp, z, thr, refr, vprev, x, iprev, go, gv, gi, gth, aff, nat, n):
    r"""Reverse one step of :func:`forward_step` (vector-Jacobian product).

    ``vp, z, thr, refr`` are the step's pre-reset membrane, spike, effective
    threshold and refractory flag; ``vprev, iprev`` the carried membrane and
    current before the step; ``x`` its input.  ``go`` is the gradient on the
    spike output, ``gv, gi, gth`` those on the carried membrane, current and
    adaptation after the step.

    Gradient conventions (kept terms):

    * the spike uses the surrogate :math:`\partial z/\partial u`;
    * reset by value: :math:`\partial v^+/\partial v^- = 1 - z` plus, unless
      detached, :math:`(v_{reset} - v^-)\,\partial z/\partial u`; reset by
      subtraction: :math:`1 - (\vartheta - v_{ref})\,\partial z/\partial u`
      (the subtracted term is detached with ``detach``);
    * while refractory the membrane is held: the step passes its gradient
      through unchanged and the input of a delta synapse gets none; the
      refractory counter is an integer and carries no gradient;
    * snnTorch mode: the reset of step t-1 acts at step t and is detached.

    Returns ``(gv_prev, gi_prev, gth_prev, gx, dA_vv, dA_vi, dA_vx, db_v,
    dA_ii, dA_ix, dv_th)``.
    """
    zero = vp - vp
    vrs = nat[6][n]
    sref = nat[7][n]
    vth = nat[5][n]
    p_th = nat[8][n]
    d_th = nat[9][n]
    a_vv = aff[0][n]
    a_vi = aff[1][n]
    a_vx = aff[2][n]
    a_ii = aff[4][n]
    a_ix = aff[5][n]
    # ---- reset v_post = R(v_pre, z, thr)
    dr_dvp = zero + 1
    dr_dz = zero
    dr_dthr = zero
    if mode != SNNTORCH:
        if reset == RESET_VALUE:
            dr_dvp = 1 - z
            dr_dz = vrs - vp
        elif rule == MULTI:
            dr_dz = -thr
            dr_dthr = -z
        else:
            dr_dz = -(thr - sref)
            dr_dthr = -z
    gz = go
    if adapt:
        gz = gz + d_th * gth
    if not detach:
        gz = gz + dr_dz * gv
    gu = gz * surrogate_grad(code, alpha, vp - thr)
    gvp = gu + dr_dvp * gv
    gthr = dr_dthr * gv - gu
    gth_prev = zero
    if adapt:
        gth_prev = p_th * (gth + gthr)
    # ---- pre-threshold linear part
    veff = vprev
    if mode == SNNTORCH:
        if vprev > vth:
            if reset == RESET_SUBTRACT:
                if not refr:
                    gthr = gthr - gvp
            else:
                a_vv = zero
                veff = zero
    gx = zero
    gi_prev = zero
    d_avv = zero
    d_avi = zero
    d_avx = zero
    d_bv = zero
    d_aii = zero
    d_aix = zero
    if refr:
        gv_prev = gvp
    else:
        gv_prev = a_vv * gvp
        gx = a_vx * gvp
        gi_prev = a_vi * gvp
        d_avv = gvp * veff
        d_avi = gvp * iprev
        d_avx = gvp * x
        d_bv = gvp
    if syn:
        gx = gx + a_ix * gi
        gi_prev = gi_prev + a_ii * gi
        d_aii = gi * iprev
        d_aix = gi * x
    return gv_prev, gi_prev, gth_prev, gx, d_avv, d_avi, d_avx, d_bv, d_aii, d_aix, gthr
