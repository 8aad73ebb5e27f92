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
    8 ... 8+K-1      p_theta[k] (decay per step of threshold component k)
    8+K ... 8+2K-1   d_theta[k] (jump of component k per spike)

``aff`` (affine form of the same step and the other differentiable
coefficients, used by the reverse pass)::

    v_pre = A_vv v + A_vi i + A_vx x + b_v,   i' = A_ii i + A_ix x
    rows 0 A_vv, 1 A_vi, 2 A_vx, 3 b_v, 4 A_ii, 5 A_ix, 6 v_th, 7 v_reset,
         8 ... 8+K-1 p_theta[k], 8+K ... 8+2K-1 d_theta[k]

Families declared with torch steps
----------------------------------
A family of :mod:`eventsim.models` that declares a
:class:`~eventsim.models.family.TorchSteps` (its ``torch`` field, e.g. the
leaky integrator of :mod:`eventsim.models.li`) runs through
:func:`family_run_forward` and :func:`family_run_backward`: the time loop
of one element, generic over the family's tag (a compile-time argument:
:func:`eventsim.models.family.torch_forward` binds the family's own step),
shared by the CPU kernels (a ``prange`` over the elements) and the CUDA
kernels (a grid-stride loop).  Their arrays: the input ``x[T, M]`` and
output ``y[T, M]`` (``M = B N`` elements, element ``j`` is neuron ``j mod
N``), the state ``s[S, M]`` and the coefficient rows ``c[R, N]``.

Both have :func:`n_rows` ``(K) = 8 + 2K`` rows; a layer without adaptation
has ``K = 1`` rows of zeros.  Threshold adaptation (``K`` components, as
:class:`eventsim.models.ALIF`) is carried out by the kernels around
:func:`forward_step` and :func:`backward_step` (:func:`decay_thresholds`,
:func:`jump_thresholds`): after the membrane update every component decays,
:math:`\theta_k \leftarrow p_k \theta_k`, the effective threshold is
``v_th + theta_0 + theta_1 + ...`` (summed in that order, as the clock
engine), and on a spike :math:`\theta_k \mathrel{+}= d_k z`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..models.dynamics import RESET_SUBTRACT, RESET_VALUE, neuron_update, reset_voltage
from ..models.family import torch_backward, torch_forward
from ..models.lif import (TORCH_EULER, TORCH_EXACT, TORCH_ROWS, TORCH_SINABS, TORCH_SNNTORCH,
                          TORCH_SPIKINGJELLY)
from .surrogate import like, surrogate_grad

_jit = njit(cache=True, error_model="numpy")

# integrators (declared with the LIF / IF families' torch rows, eventsim.models.lif)
EXACT = TORCH_EXACT
EULER = TORCH_EULER                 # norse LIFBoxCell / LIFCell (forward Euler)
SNNTORCH = TORCH_SNNTORCH           # snnTorch Leaky (delayed, detached reset)
SPIKINGJELLY = TORCH_SPIKINGJELLY   # SpikingJelly LIFNode (decay_input=True)
SINABS = TORCH_SINABS               # sinabs LIF

# spike rules
GE = 0             # z = v >= thr
GT = 1             # z = v > thr
MULTI = 2          # sinabs MultiSpike: z = trunc(v / thr) for v > 0

# flag vector layout (cfg, int64)
CFG_MODE, CFG_SYN, CFG_RESET, CFG_RULE, CFG_ADAPT, CFG_DETACH, CFG_SURR, CFG_REF, CFG_TRACK = range(9)
N_CFG = 9
#: rows of the coefficient arrays before the threshold components
N_FIXED = len(TORCH_ROWS)
#: rows of ``nat`` and ``aff`` with one threshold component (a layer without adaptation)
N_NAT = N_AFF = 10
#: rows of ``aff`` and of the reverse pass's parameter gradient (``dpar``)
ROW_VTH, ROW_VRESET, ROW_THETA = 6, 7, 8

__all__ = ["forward_step", "backward_step", "decay_thresholds", "jump_thresholds", "n_rows", "n_components",
           "RESET_VALUE", "RESET_SUBTRACT"]


def n_rows(K):
    """Rows of ``nat`` / ``aff`` for ``K`` threshold components."""
    return N_FIXED + 2 * K


def n_components(rows):
    """``K`` of coefficient arrays with ``rows`` rows (ValueError unless ``rows = 8 + 2K``, ``K >= 1``)."""
    K, odd = divmod(int(rows) - N_FIXED, 2)
    if odd or K < 1:
        raise ValueError(f"coefficient arrays have {rows} rows; expected 8 + 2K (K >= 1 threshold components)")
    return K


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


@njit(inline="always", cache=True, error_model="numpy")
def decay_thresholds(th, j, p, q, K, vth):
    """Decay the ``K`` components ``th[k, j]`` by ``p[k, q]``; return ``vth + th[0, j] + th[1, j] + ...``.

    The sum runs in the clock engine's order, so the effective threshold is
    the simulator's bit for bit.
    """
    thr = vth
    for k in range(K):
        t = p[k, q] * th[k, j]
        th[k, j] = t
        thr += t
    return thr


@njit(inline="always", cache=True, error_model="numpy")
def jump_thresholds(th, j, d, q, K, z):
    """``th[k, j] += d[k, q] * z`` for every component (after a spike ``z > 0``)."""
    for k in range(K):
        th[k, j] = th[k, j] + d[k, q] * z


@_jit
def forward_step(mode, syn, reset, rule, adapt, ref_steps, v, i, r, thr_a, x, nat, n, zero, one, ninf):
    """Advance one neuron by one step, up to the threshold components.

    Parameters are the flags (see the module docstring), the carried state
    ``v, i, r`` (membrane, synaptic current, refractory counter), the
    effective threshold ``thr_a`` of an adaptive layer (``v_th`` plus the
    decayed components, from :func:`decay_thresholds`; ignored otherwise),
    the input ``x`` of the step, the native coefficients ``nat[k][n]``
    (rows 0-7 of a 2-D array or a tuple of rows) and constants ``zero``,
    ``one``, ``ninf`` (-inf) of the data's dtype.

    Returns ``(v_pre, v_post, i, r, z, thr, refr)``: the membrane before
    and after the reset, the new current and counter, the spike (0/1, or a
    count with ``MULTI``), the effective threshold and whether the step was
    refractory.  The caller adds the components' jumps (:func:`jump_thresholds`).
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
        thr = thr_a
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
    return vp, vpost, i, r, z, thr, refr


@_jit
def backward_step(mode, syn, reset, rule, adapt, detach, code, alpha,
                  vp, z, thr, refr, vprev, x, iprev, go, gv, gi, gza, aff, nat, n):
    r"""Reverse one step of :func:`forward_step` (vector-Jacobian product).

    ``vp, z, thr, refr`` are the step's pre-reset membrane, spike, effective
    threshold and refractory flag; ``vprev, iprev`` the carried membrane and
    current before the step; ``x`` its input.  ``go`` is the gradient on the
    spike output, ``gv, gi`` those on the carried membrane and current
    after the step, ``gza`` the gradient reaching the spike through the
    threshold jumps (:math:`\sum_k d_k\,\bar\theta_k`, adaptive layers).
    ``aff`` holds rows 0-7 of the affine coefficients.

    Gradient conventions (kept terms):

    * the spike uses the surrogate :math:`\partial z/\partial u`;
    * reset by value: :math:`\partial v^+/\partial v^- = 1 - z` plus, unless
      detached, :math:`(v_{reset} - v^-)\,\partial z/\partial u`;
      :math:`\partial v^+/\partial v_{reset} = z`; reset by
      subtraction: :math:`1 - (\vartheta - v_{ref})\,\partial z/\partial u`
      (the subtracted term is detached with ``detach``);
    * while refractory the membrane is held: the step passes its gradient
      through unchanged and the input of a delta synapse gets none; the
      refractory counter is an integer and carries no gradient;
    * snnTorch mode: the reset of step t-1 acts at step t and is detached.

    Returns ``(gv_prev, gi_prev, gx, dA_vv, dA_vi, dA_vx, db_v, dA_ii,
    dA_ix, dv_th, dv_reset, gthr)``; ``gthr`` is the gradient on the
    effective threshold that the caller passes back to every threshold
    component (``dv_th`` also holds snnTorch's delayed reset, which uses
    ``v_th`` alone).
    """
    zero = like(vp, 0.0)
    one = like(vp, 1.0)
    vrs = nat[6][n]
    sref = nat[7][n]
    vth = nat[5][n]
    a_vv = aff[0][n]
    a_vi = aff[1][n]
    a_vx = aff[2][n]
    a_ii = aff[4][n]
    a_ix = aff[5][n]
    # ---- reset v_post = R(v_pre, z, thr)
    dr_dvp = one
    dr_dz = zero
    dr_dthr = zero
    d_vrs = zero
    if mode != SNNTORCH:
        if reset == RESET_VALUE:
            dr_dvp = one - z
            dr_dz = vrs - vp
            d_vrs = z * gv
        elif rule == MULTI:
            dr_dz = -thr
            dr_dthr = -z
        else:
            dr_dz = -(thr - sref)
            dr_dthr = -z
    gz = go
    if adapt:
        gz = gz + gza
    if not detach:
        gz = gz + dr_dz * gv
    gu = gz * surrogate_grad(code, alpha, vp - thr)
    gvp = gu + dr_dvp * gv
    gthr = dr_dthr * gv - gu
    gthr_theta = gthr
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
    return gv_prev, gi_prev, gx, d_avv, d_avi, d_avx, d_bv, d_aii, d_aix, gthr, d_vrs, gthr_theta


@_jit
def family_run_forward(fam, j, N, x, s, c, y):
    """All ``T`` steps of element ``j`` of a family layer: ``y[t, j]``; ``s[:, j]`` ends in the final state."""
    n = j % N
    for t in range(x.shape[0]):
        y[t, j] = torch_forward(fam, s, j, c, n, x[t, j])


@_jit
def family_run_backward(fam, j, N, x, s, c, gy, gs, gx, dc, traj):
    """Reverse pass of element ``j`` of a family layer.

    Recomputes the forward trajectory from the initial state ``s[:, j]``
    (overwritten) into ``traj[t, :, j]`` (the state before step ``t``), then
    runs the family's reverse step backwards in time: ``gx[t, j]``, the
    gradient on the initial state in ``gs[:, j]`` (on entry: on the final
    state) and the gradients on the coefficient rows added to ``dc[:, j]``.
    """
    n = j % N
    T = x.shape[0]
    S = s.shape[0]
    for t in range(T):
        for k in range(S):
            traj[t, k, j] = s[k, j]
        torch_forward(fam, s, j, c, n, x[t, j])
    for tt in range(T):
        t = T - 1 - tt
        gx[t, j] = torch_backward(fam, traj[t], j, c, n, x[t, j], gy[t, j], gs, dc)
