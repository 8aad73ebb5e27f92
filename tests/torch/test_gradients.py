r"""Fused Functions against the pure-torch reference of the same recurrence (float64).

* spikes, membrane traces and every gradient (input, initial state, affine
  coefficients, ``v_th``, ``v_reset``, each threshold component's decay and
  jump, recurrent weights) agree with torch autograd through
  ``torch_reference.reference_layer`` in the spiking regime;
* the same for the trainable parameters of the modules (``tau_m``,
  ``tau_syn``, ``v_th``, ``v_reset``, ``tau_theta``, ``d_theta``, through
  the :math:`\tau_{min} + \operatorname{softplus}(p)` parametrisation),
  against autograd of the plain equations on the same parameters;
* ``torch.autograd.gradcheck`` of each fused Function in the subthreshold
  regime (no spike near the threshold, so the Jacobian is the true one).
"""

import pytest
import torch
from torch_reference import reference_layer

from eventsim.torch import functional as F

f64 = torch.float64

CASES = [
    # integrator, synapse, reset, ref_steps, threshold components (0: none), detach, surrogate, spike_fn
    ("exact", False, "value", 0, 0, None, "superspike", "single"),
    ("exact", True, "subtract", 0, 0, None, "sigmoid", "single"),
    ("exact", False, "value", 2, 0, None, "atan", "single"),
    ("exact", True, "subtract", 3, 2, None, "superspike", "single"),
    ("exact", False, "value", 0, 0, True, "triangle", "single"),
    ("euler", False, "subtract", 0, 0, None, "superspike", "single"),
    ("euler", True, "value", 1, 1, None, "straight_through", "single"),
    ("snntorch", False, "subtract", 0, 0, None, "atan", "single"),
    ("snntorch", False, "value", 0, 0, None, "superspike", "single"),
    ("spikingjelly", False, "value", 0, 0, None, "sigmoid", "single"),
    ("spikingjelly", False, "subtract", 0, 0, True, "single_exponential", "single"),
    ("sinabs", True, "subtract", 0, 0, None, "single_exponential", "multi"),
    ("sinabs", False, "subtract", 0, 0, None, "superspike", "single"),
    ("exact", False, "value", 1, 3, None, "sigmoid", "single"),
    ("exact", False, "value", 0, 1, True, "atan", "single"),
    ("sinabs", False, "subtract", 0, 2, None, "superspike", "multi"),
    ("snntorch", False, "subtract", 0, 2, None, "atan", "single"),
]
# threshold components: (tau_theta, d_theta) of component k
THETA = [(20.0, 0.3), (4.0, 0.5), (60.0, -0.1)]


def _setup(case, N=6, B=3, T=30, seed=0, scale=1.5, offset=0.8, recurrent=False, v_th=1.0):
    integ, syn, reset, ref, K, detach, sur, sfn = case
    adapt = K > 0
    g = torch.Generator().manual_seed(seed)
    spec = F.make_spec(integ, synapse=syn, reset=reset, adaptive=adapt, detach_reset=detach, surrogate=sur,
                       ref_steps=ref, spike_fn=sfn)
    tt = tuple(t for t, _ in THETA[:K]) if adapt else None
    dd = tuple(d for _, d in THETA[:K]) if adapt else None
    v_reset = -0.2 if reset == "value" and integ != "snntorch" else 0.0
    nat, aff = F.coefficients(spec, N, 1.0, torch.linspace(3, 12, N, dtype=f64), v_th, v_reset, 0.0,
                              tau_syn=4.0 if syn else None, tau_theta=tt, d_theta=dd, dtype=f64)
    x = (torch.randn(T, B, N, generator=g, dtype=f64) * scale + offset).requires_grad_()
    v0 = (torch.rand(B, N, generator=g, dtype=f64) * 0.5).requires_grad_()
    i0 = (torch.rand(B, N, generator=g, dtype=f64) * 0.5 * syn).requires_grad_()
    th0 = (torch.rand(max(K, 1), B, N, generator=g, dtype=f64) * 0.2 * adapt).requires_grad_()
    r0 = torch.zeros(B, N, dtype=torch.int32)
    r0[0, :2] = 1
    affp = aff.clone().requires_grad_()
    extra = ()
    if recurrent:
        w = (torch.randn(N, N, generator=g, dtype=f64) * 0.3).requires_grad_()
        z0 = torch.zeros(B, N, dtype=f64).requires_grad_()
        extra = (w, z0)
    return spec, nat, x, v0, i0, th0, r0, affp, extra


def _compare(spec, nat, x, v0, i0, th0, r0, affp, extra):
    if extra:
        w, z0 = extra
        out = F._Recurrent.apply(x, w, z0, v0, i0, th0, affp, r0, nat, spec, True)[:6]
        ref = reference_layer(x, v0, i0, th0, affp, r0, nat, spec, w_rec=w, z0=z0)
    else:
        out = F._FeedForward.apply(x, v0, i0, th0, affp, r0, nat, spec, True)
        ref = reference_layer(x, v0, i0, th0, affp, r0, nat, spec)
    s, vT, iT, thT, _, vtr = out
    rs, rtr, rv, ri, rth = ref
    assert torch.equal(s, rs)
    assert s.sum() > 0
    torch.testing.assert_close(vtr, rtr, rtol=0, atol=1e-10)
    torch.testing.assert_close(vT, rv, rtol=0, atol=1e-10)
    g = torch.Generator().manual_seed(1)
    ws = [torch.randn(t.shape, generator=g, dtype=f64) for t in (s, vtr, vT, iT, thT)]
    inputs = [x, v0, i0, th0, affp, *extra]
    loss1 = sum((a * w).sum() for a, w in zip((s, vtr, vT, iT, thT), ws))
    loss2 = sum((a * w).sum() for a, w in zip((rs, rtr, rv, ri, rth), ws))
    g1 = torch.autograd.grad(loss1, inputs, allow_unused=True)
    g2 = torch.autograd.grad(loss2, inputs, allow_unused=True)
    for name, a, b in zip(["x", "v0", "i0", "theta0", "aff", "w_rec", "z0"], g1, g2):
        a = torch.zeros_like(b) if a is None else a
        b = torch.zeros_like(a) if b is None else b
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9 * (1 + float(b.abs().max())), msg=name)
    return dict(zip(["x", "v0", "i0", "theta0", "aff", "w_rec", "z0"], g1))


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c))
def test_feedforward_matches_reference(case):
    grads = _compare(*_setup(case))
    K, reset, integ = case[4], case[2], case[0]
    gaff = grads["aff"]
    if reset == "value" and integ != "snntorch":
        assert gaff[7].abs().sum() > 0  # v_reset
    if K:
        assert gaff[8:8 + K].abs().sum(1).min() > 0 and gaff[8 + K:8 + 2 * K].abs().sum(1).min() > 0  # p, d


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[6], CASES[13]],
                         ids=["exact", "exact-exp-ref-alif2", "euler-alif", "exact-alif3"])
def test_recurrent_matches_reference(case):
    _compare(*_setup(case, recurrent=True))


def _full_aff(rows, aff, synapse):
    """Affine rows with A_vx held fixed for current synapses (the exact step has no direct x term there)."""
    if not synapse:
        return rows
    return torch.cat([rows[:2], aff[2:3].detach(), rows[2:]])


def _free_rows(aff, synapse):
    rows = torch.cat([aff[:2], aff[3:]]) if synapse else aff
    return rows.detach().clone().requires_grad_()


def _nat_from_aff(aff, nat, synapse):
    """Exact-integrator forward coefficients as functions of the affine rows (for gradcheck in aff)."""
    nat = nat.clone()
    nat[0] = aff[0]
    nat[1] = aff[1] if synapse else aff[2]
    nat[2] = aff[4]
    nat[3] = aff[5]
    nat[4] = aff[3] / (1 - aff[0])
    nat[7] = nat[4]
    nat[5] = aff[6]
    nat[6] = aff[7]  # v_reset
    nat[8:] = aff[8:]  # p_theta[k], d_theta[k]
    return nat.detach()


# Subthreshold regime with the triangle surrogate and a far threshold: the surrogate derivative is 0
# everywhere, so the backward pass is the exact Jacobian of the (then smooth) forward pass.
GRADCHECK = [CASES[0][:6] + ("triangle", "single"), CASES[3][:6] + ("triangle", "single"),
             CASES[6][:6] + ("triangle", "single"), CASES[7][:6] + ("triangle", "single"),
             CASES[9][:6] + ("triangle", "single"), CASES[12][:6] + ("triangle", "single")]


@pytest.mark.parametrize("case", GRADCHECK, ids=["exact", "exact-exp-ref-alif", "euler-exp", "snntorch",
                                                  "spikingjelly", "sinabs"])
def test_gradcheck_feedforward_subthreshold(case):
    spec, nat, x, v0, i0, th0, r0, affp, _ = _setup(case, N=3, B=2, T=8, scale=0.3, offset=0.2, v_th=4.0)
    exact = case[0] == "exact"

    def f(x, v0, i0, th0, rows):
        aff = _full_aff(rows, affp, spec.synapse) if exact else affp.detach()
        n = _nat_from_aff(aff, nat, spec.synapse) if exact else nat
        s, vT, iT, thT, _, vtr = F._FeedForward.apply(x, v0, i0, th0, aff, r0, n, spec, True)
        assert s.sum() == 0
        return vtr, vT, iT, thT

    args = (x, v0, i0, th0, _free_rows(affp, spec.synapse) if exact else affp.detach())
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", [GRADCHECK[0], GRADCHECK[1]], ids=["exact", "exact-exp-ref-alif"])
def test_gradcheck_recurrent_subthreshold(case):
    spec, nat, x, v0, i0, th0, r0, affp, (w, z0) = _setup(case, N=3, B=2, T=6, scale=0.3, offset=0.2,
                                                          recurrent=True, v_th=4.0)
    z0 = (torch.rand(z0.shape, dtype=f64) > 0.5).to(f64).requires_grad_()

    def f(x, w, z0, v0, i0, th0, rows):
        aff = _full_aff(rows, affp, spec.synapse)
        n = _nat_from_aff(aff, nat, spec.synapse)
        s, vT, iT, thT, _, vtr = F._Recurrent.apply(x, w, z0, v0, i0, th0, aff, r0, n, spec, True)[:6]
        assert s.sum() == 0
        return vtr, vT, iT, thT

    assert torch.autograd.gradcheck(f, (x, w, z0, v0, i0, th0, _free_rows(affp, spec.synapse)), eps=1e-6, atol=1e-7)


def test_refractory_gradient_terms():
    """While refractory the membrane is held: no input gradient for delta synapses, v passes through."""
    spec = F.make_spec("exact", ref_steps=3)
    nat, aff = F.coefficients(spec, 1, 1.0, 10.0, 1.0, 0.0, 0.0, dtype=f64)
    x = torch.zeros(8, 1, 1, dtype=f64)
    x[0] = 20.0  # spike at step 0, refractory at steps 1..3
    x.requires_grad_()
    s, vT, iT, thT, rT, vtr = F._FeedForward.apply(
        x, torch.zeros(1, 1, dtype=f64), torch.zeros(1, 1, dtype=f64), torch.zeros(1, 1, 1, dtype=f64), aff,
        torch.zeros(1, 1, dtype=torch.int32), nat, spec, True)
    assert s[:, 0, 0].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    (g,) = torch.autograd.grad(vtr.sum(), x)
    assert torch.all(g[1:4] == 0) and torch.all(g[4:] != 0)


@pytest.mark.parametrize("shape", [(1, 1, 1), (30, 1, 1), (1, 3, 1), (1, 1, 6), (30, 1, 6), (1, 3, 6), (30, 3, 6)],
                         ids=lambda s: "x".join(map(str, s)))
def test_broadcast_output_gradients(shape):
    """Gradients that arrive broadcast (``out.sum()``, per-neuron or per-step weights) are read in place
    and give the reference's gradients; written out densely they give the same, bit for bit."""
    case = CASES[3]  # current synapses, refractoriness, adaptation: every reverse term is active
    spec, nat, x, v0, i0, th0, r0, affp, _ = _setup(case)
    T, B, N = x.shape
    g = torch.Generator().manual_seed(2)
    gs = torch.randn(shape, generator=g, dtype=f64)
    gv = torch.randn(shape, generator=g, dtype=f64)
    inputs = (x, v0, affp)
    rs, rtr = reference_layer(x, v0, i0, th0, affp, r0, nat, spec)[:2]
    ref = torch.autograd.grad((rs, rtr), inputs, (gs.expand(T, B, N), gv.expand(T, B, N)))
    grads = []
    for dense in (False, True):
        s, vT, iT, thT, _, vtr = F._FeedForward.apply(x, v0, i0, th0, affp, r0, nat, spec, True)
        a, b = gs.expand(T, B, N), gv.expand(T, B, N)
        if dense:
            a, b = a.contiguous(), b.contiguous()
        grads.append(torch.autograd.grad((s, vtr), inputs, (a, b)))
    assert grads[0][0].abs().sum() > 0
    for name, a, b, r in zip(["x", "v0", "aff"], *grads, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-9 * (1 + float(r.abs().max())), msg=name)


# ---------------------------------------------------------------------------------------------
# trainable parameters of the modules against autograd of the plain equations
# ---------------------------------------------------------------------------------------------
def _module(kind):
    import eventsim.torch as est

    torch.manual_seed(0)
    if kind == "lif-exp":
        return est.LIF(tau_m=torch.linspace(4, 9, 5), tau_syn=3.0, v_reset=-0.3, t_ref=1.0, trainable=True)
    if kind == "alif2":
        return est.ALIF(tau_m=6.0, v_reset=-0.2, tau_theta=(torch.linspace(10, 30, 5), 5.0),
                        d_theta=(0.3, torch.linspace(0.1, 0.5, 5)), trainable=True)
    if kind == "alif-subtract-euler":
        return est.ALIF(tau_m=6.0, tau_syn=2.0, reset="subtract", integrator="euler", tau_theta=15.0, d_theta=0.4,
                        trainable=True)
    layer = est.LIFRecurrent(4, 5, tau_m=5.0, v_reset=-0.1, tau_theta=(8.0, 40.0), d_theta=(0.4, 0.1),
                             trainable=True)
    with torch.no_grad():
        layer.input_weights.mul_(4.0)
        layer.recurrent_weights.mul_(1.5)
    return layer


@pytest.mark.parametrize("kind", ["lif-exp", "alif2", "alif-subtract-euler", "recurrent-alif2"])
def test_trainable_parameters_match_autograd_of_the_equations(kind):
    """Every trainable parameter (time constants through tau_min + softplus(p), v_th, v_reset, each
    threshold component's tau_theta and d_theta) gets autograd's gradient of the plain equations."""
    layer = _module(kind).double()
    recurrent = hasattr(layer, "recurrent_weights")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 3, 4 if recurrent else 5, generator=g, dtype=f64) + 1.4
    s, st, v = layer(x, return_v=True)
    w = torch.randn(s.shape, generator=g, dtype=f64)
    params = [p for p in layer.parameters()]
    names = [n for n, _ in layer.named_parameters()]
    ours = torch.autograd.grad((s * w).sum() + v.sum() + st.v.sum(), params)
    # the reference: the same parameters through torch operations, then the plain recurrence
    n = 5
    tt, dd = layer._theta_args()
    nat, _ = layer._coefficients(n, f64, "cpu")
    aff = F._affine_rows(layer.spec, n, layer.dt, layer.tau_m, layer.v_th, layer.v_reset, layer.v_rest,
                         layer.tau_syn, F.components(tt), F.components(dd), True, True, f64, "cpu")
    K = max(1, layer.theta_components)
    z = torch.zeros(3, n, dtype=f64)
    v0 = torch.full((3, n), float(layer.v_rest), dtype=f64)
    r0 = torch.zeros(3, n, dtype=torch.int32)
    extra = {}
    xin = x
    if recurrent:
        xin = x @ layer.input_weights.t()
        extra = dict(w_rec=layer.recurrent_weights * layer.autapse_mask, z0=z)
    rs, rtr, rv, _, _ = reference_layer(xin, v0, z, torch.zeros(K, 3, n, dtype=f64), aff, r0, nat, layer.spec,
                                        **extra)
    assert torch.equal(s, rs) and s.sum() > 10
    ref = torch.autograd.grad((rs * w).sum() + rtr.sum() + rv.sum(), params, allow_unused=True)
    expected = {"v_th", "v_reset", "parametrizations.tau_m.original"}
    if layer.theta_components:
        expected |= {"d_theta", "parametrizations.tau_theta.original"}
    if layer.tau_syn is not None:
        expected |= {"parametrizations.tau_syn.original"}
    if layer.reset == "subtract":
        expected.discard("v_reset")
    assert expected <= set(names), names
    for name, a, b in zip(names, ours, ref):
        b = torch.zeros_like(a) if b is None else b
        assert a.abs().sum() > 0, name
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10 * (1 + float(b.abs().max())), msg=name)
