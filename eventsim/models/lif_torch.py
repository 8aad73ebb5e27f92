r"""The torch layers' point step of the LIF / IF / ALIF families (``kernel="point"``), forward and reverse.

The families ``iaf_psc_delta``, ``iaf_psc_exp`` (:mod:`eventsim.models.lif`)
and ``alif`` (:mod:`eventsim.models.adaptive`) run in the torch bridge's
point kernels (:mod:`eventsim.torch._core`, ``_cpu``, ``_cuda``: SIMD
blocks on the CPU, a recurrent form, CUDA).  Those kernels loop over time,
elements and threshold components; the arithmetic of one step is declared
here, in :attr:`~eventsim.models.family.TorchSteps.point_forward` and
:attr:`~eventsim.models.family.TorchSteps.point_backward`, and bound to
the kernels through the family's tag
(:func:`eventsim.models.family.torch_point_forward`).  The exact
integrator calls the clock engine's own
:func:`~eventsim.models.dynamics.neuron_update` and
:func:`~eventsim.models.dynamics.reset_voltage`, so the trained layer and
the simulator share one definition of the dynamics; the other integrators
are the forward passes of the peer libraries (norse, snnTorch,
SpikingJelly, sinabs), options of these families' torch layers.

Flags
-----
The kernels pass the layer's flag vector (``eventsim.torch.functional.LayerSpec``)
through: ``mode`` (the integrator, :data:`INTEGRATORS`), ``syn`` (current
synapses), ``reset`` (:data:`~eventsim.models.dynamics.RESET_VALUE` or
:data:`~eventsim.models.dynamics.RESET_SUBTRACT`), ``rule`` (the spike rule,
:func:`eventsim.models.family.spike_of`), ``adapt`` (threshold components),
``detach`` (cut the gradient through the reset), ``code`` and ``alpha``
(the surrogate), ``ref_steps`` (refractory period in steps).

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

Both rows are built by :func:`eventsim.models.lif.torch_coefficients`.
"""

from __future__ import annotations

from numba import njit

from .dynamics import RESET_SUBTRACT, RESET_VALUE, neuron_update, reset_voltage
from .family import SPIKE_GE, SPIKE_GT, SPIKE_MULTI, like, spike_grad, spike_of

# called by the kernels through the tag (eventsim.models.family.torch_point_forward): compiled once per argument
# types, with the flags the CPU kernels pass as literals as constants, and inlined into each kernel by LLVM
_jit = njit(cache=True, error_model="numpy")

#: Integrators of the torch layers, by code (the kernels' flag ``mode``): the simulator's exact step, and the
#: forward passes of norse (``LIFBoxCell`` / ``LIFCell``, forward Euler), snnTorch (``Leaky``: delayed,
#: detached reset), SpikingJelly (``LIFNode``, ``decay_input=True``) and sinabs (``LIF``).
TORCH_EXACT, TORCH_EULER, TORCH_SNNTORCH, TORCH_SPIKINGJELLY, TORCH_SINABS = range(5)

#: The integrators by name (the layers' ``integrator`` option).
INTEGRATORS = {"exact": TORCH_EXACT, "euler": TORCH_EULER, "snntorch": TORCH_SNNTORCH,
               "spikingjelly": TORCH_SPIKINGJELLY, "sinabs": TORCH_SINABS}

#: The reset rules by name (the layers' ``reset`` option).
RESETS = {"value": RESET_VALUE, "subtract": RESET_SUBTRACT}

#: The spike rule of each integrator (its library's threshold test).
_RULES = {TORCH_EXACT: SPIKE_GE, TORCH_EULER: SPIKE_GT, TORCH_SNNTORCH: SPIKE_GT, TORCH_SPIKINGJELLY: SPIKE_GE,
          TORCH_SINABS: SPIKE_GE}


def torch_options(integrator, synapse, reset, spike_fn, detach_reset):
    """The flags ``(mode, rule, detach_reset)`` of a layer's options, checked against each other.

    ``integrator`` (a key of :data:`INTEGRATORS`), ``reset`` (of
    :data:`RESETS`) and ``spike_fn`` (``"single"`` or ``"multi"``) are
    already valid names, ``synapse`` and ``detach_reset`` (or None) flags.

    Raises
    ------
    ValueError
        For a combination the integrator does not have: ``spike_fn="multi"``
        (sinabs' MultiSpike) without ``integrator="sinabs"`` and
        ``reset="subtract"``; a synaptic current with snnTorch or
        SpikingJelly; ``detach_reset=False`` with snnTorch (whose delayed
        reset is always detached).
    """
    mode = INTEGRATORS[integrator]
    if spike_fn == "multi" and mode != TORCH_SINABS:
        raise ValueError("spike_fn='multi' (sinabs' MultiSpike) needs integrator='sinabs'")
    if spike_fn == "multi" and reset != "subtract":
        raise ValueError("spike_fn='multi' needs reset='subtract'")
    if synapse and mode in (TORCH_SNNTORCH, TORCH_SPIKINGJELLY):
        raise ValueError(f"integrator={integrator!r} has no synaptic current; use tau_syn=None")
    if mode == TORCH_SNNTORCH:
        if detach_reset is False:
            raise ValueError("integrator='snntorch' always detaches the (delayed) reset")
        detach_reset = True
    rule = SPIKE_MULTI if spike_fn == "multi" else _RULES[mode]
    return mode, rule, detach_reset


@_jit
def point_forward(mode, syn, reset, rule, adapt, ref_steps, v, i, r, thr_a, x, nat, n, zero, one, ninf):
    """Advance one neuron by one step, up to the threshold components.

    Parameters are the flags (see the module docstring), the carried state
    ``v, i, r`` (membrane, synaptic current, refractory counter), the
    effective threshold ``thr_a`` of an adaptive layer (``v_th`` plus the
    decayed components, from :func:`eventsim.torch._core.decay_thresholds`;
    ignored otherwise),
    the input ``x`` of the step, the native coefficients ``nat[k][n]``
    (rows 0-7 of a 2-D array or a tuple of rows) and constants ``zero``,
    ``one``, ``ninf`` (-inf) of the data's dtype.

    Returns ``(v_pre, v_post, i, r, z, thr, refr)``: the membrane before
    and after the reset, the new current and counter, the spike (0/1, or a
    count with ``SPIKE_MULTI``), the effective threshold and whether the
    step was refractory.  The caller adds the components' jumps
    (:func:`eventsim.torch._core.jump_thresholds`).

    Order of a step (exact integrator, as NEST's ``iaf_psc_delta`` /
    ``iaf_psc_exp``): exact membrane update (held while refractory, the
    counter counts down), then the current's decay and input; threshold
    test against ``v_th`` (plus the components); reset (by value, or by
    subtraction of the threshold) and start of the refractory period.
    The peer integrators update the membrane with their library's
    expressions and share the threshold test and reset (snnTorch: its
    reset is the previous step's, applied before the input).
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
    if mode == TORCH_EXACT:
        # NEST order: exact v update (held while refractory), then the current
        if syn:
            vp, i, _, r = neuron_update(v, i, zero, r, cg * x, zero, 1, vr, a, zero, cb, zero, cc, zero,
                                        zero, ninf)
        else:
            vp, _, _, r = neuron_update(v, zero, zero, r, zero, zero, 0, vr, a, cb,
                                        zero, zero, zero, zero, x, ninf)
    else:
        if mode == TORCH_EULER:
            if syn:
                j = i + x
                vp = v + a * ((vr - v) + j)
                i = j + cb * j
            else:
                vp = v + a * ((x + vr) - v)
        elif mode == TORCH_SNNTORCH:
            vp = a * v + x
            if v > vth:
                if reset == RESET_SUBTRACT:
                    vp = vp - vth
                else:
                    vp = x
        elif mode == TORCH_SPIKINGJELLY:
            vp = v + (x - (v - vr)) / a
        else:  # TORCH_SINABS
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
        if mode != TORCH_SNNTORCH:
            if rule == SPIKE_MULTI:
                vpost = vp - z * thr
            else:
                vpost = reset_voltage(vp, reset, vrs, sref, thr, zero, zero)
        if ref_steps > 0:
            r = ref_steps
    return vp, vpost, i, r, z, thr, refr


@_jit
def point_backward(mode, syn, reset, rule, adapt, detach, code, alpha,
                   vp, z, thr, refr, vpprev, vprev, x, iprev, go, gv, gi, gza, aff, nat, n):
    r"""Reverse one step of :func:`point_forward` (vector-Jacobian product).

    ``vp, z, thr, refr`` are the step's pre-reset membrane, spike, effective
    threshold and refractory flag; ``vpprev`` the pre-reset membrane of the
    previous step (the initial membrane at the first step); ``vprev, iprev``
    the carried membrane and current before the step and ``x`` its input,
    read only for the coefficients' gradients (with snnTorch, ``vprev`` is
    not read: its carried membrane is ``vpprev``).  ``go`` is the gradient on the
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
    if mode != TORCH_SNNTORCH:
        if reset == RESET_VALUE:
            dr_dvp = one - z
            dr_dz = vrs - vp
            d_vrs = z * gv
        elif rule == SPIKE_MULTI:
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
    gu = gz * spike_grad(code, alpha, vp - thr)
    gvp = gu + dr_dvp * gv
    gthr = dr_dthr * gv - gu
    gthr_theta = gthr
    # ---- pre-threshold linear part
    veff = vprev
    if mode == TORCH_SNNTORCH:
        # the reset of step t-1 acts at step t: on snnTorch's carried (pre-reset) membrane
        veff = vpprev
        if vpprev > vth:
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
