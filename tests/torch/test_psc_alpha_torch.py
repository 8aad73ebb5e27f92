"""``eventsim.torch.LIF(..., psc="alpha")``: the ``iaf_psc_alpha`` family run by the torch bridge through its
own declaration (``eventsim.models.psc_alpha.ALPHA_TORCH``): the clock engine's propagator and step, exact
gradients below threshold, surrogate gradients as a plain-torch reference, and the clock engine's spikes."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import eventsim.torch as est
from eventsim.models import psc_alpha
from eventsim.models.psc_alpha import ALPHA_TORCH, IAF_ALPHA
from eventsim.torch import functional as F


def _rows(tau_m, tau_syn, dt=0.5, v_th=1.0, v_reset=0.0, v_rest=0.0, ref_steps=0, reset=0, alpha=1.0, detach=0,
          xp=torch):
    f = (lambda v: torch.as_tensor(v, dtype=torch.float64)) if xp is torch else (lambda v: np.asarray(v, float))
    return ALPHA_TORCH.coefficients(xp, dt, f(tau_m), f(tau_syn), f(v_th), f(v_reset), f(v_rest), f(ref_steps),
                                    f(reset), f(0.0), f(alpha), f(detach))


@pytest.mark.parametrize("tau_m, tau_syn", [(10.0, 2.0), (5.0, 5.0), (5.0, 5.0 * (1 + 1e-9)), (3.0, 40.0)])
def test_rows_are_the_clock_engines_propagator(tau_m, tau_syn):
    dt = 0.5
    p11, p21, p_v1, p_v2 = psc_alpha.alpha_propagators.py_func(dt, 1.0 / tau_m, tau_m, 1.0 / tau_syn)
    for xp in (np, torch):
        r = [float(np.asarray(v)) for v in _rows(tau_m, tau_syn, dt, xp=xp)]
        for got, want in ((r[4], p11), (r[5], p21), (r[2], p_v1), (r[3], p_v2), (r[1], math.exp(-dt / tau_m))):
            assert math.isclose(got, want, rel_tol=1e-14), (xp.__name__, got, want)
        # a constant input x settles at v_rest + x: gain * x / (1 - p11) drives y2 = p21 y1 / (1 - p11)
        y1 = r[6] / (1 - r[4])
        y2 = r[5] * y1 / (1 - r[4])
        assert math.isclose((r[2] * y1 + r[3] * y2) / (1 - r[1]), 1.0, rel_tol=1e-12)


def reference(x, rows, v0, di0, i0, r0, subtract=False):
    """The layer's recurrence in plain torch with SuperSpike (alpha = 1) at the threshold."""
    vr, p_vv, p_v1, p_v2, p11, p21, g, v_th, v_reset, ref_steps = rows[:10]

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u >= 0).to(u.dtype)

        @staticmethod
        def backward(ctx, grad):
            (u,) = ctx.saved_tensors
            return grad / (u.abs() + 1.0) ** 2

    v, y1, y2, r, out = v0, di0, i0, r0, []
    for t in range(x.shape[0]):
        refr = r > 0
        vp = torch.where(refr, v, vr + p_vv * (v - vr) + p_v1 * y1 + p_v2 * y2)
        r = torch.clamp(r - 1, min=0)
        y1, y2 = p11 * y1 + g * x[t], p21 * y1 + p11 * y2
        z = Spike.apply(vp - v_th)
        v = vp - z * (v_th - vr) if subtract else vp * (1 - z) + v_reset * z
        r = torch.where(z > 0, ref_steps.expand_as(r), r)
        out.append(z)
    return torch.stack(out), v, y1, y2


def _layer(x, rows, v0, di0, i0):
    state = F.NeuronState(v=v0, di=di0, i=i0)
    s, st = F.family_layer(x, state, torch.stack(torch.broadcast_tensors(*rows)), IAF_ALPHA)
    return s, st.v, st.di, st.i


def test_gradcheck_below_threshold():
    torch.manual_seed(0)
    x = torch.randn(8, 2, 3, dtype=torch.float64, requires_grad=True)
    tm = torch.tensor([5.0, 8.0, 12.0], dtype=torch.float64, requires_grad=True)
    ts = torch.tensor([2.0, 8.0, 30.0], dtype=torch.float64, requires_grad=True)  # (tau_m == tau_syn in the middle)
    vr = torch.tensor([0.2], dtype=torch.float64, requires_grad=True)
    v0, di0, i0 = (torch.randn(2, 3, dtype=torch.float64, requires_grad=True) for _ in range(3))

    def f(x, tm, ts, vr, v0, di0, i0):
        rows = _rows(tm.expand(3), ts, v_th=torch.full((3,), 1e3, dtype=torch.float64), v_rest=vr.expand(3))
        return _layer(x, rows, v0, di0, i0)

    assert torch.autograd.gradcheck(f, (x, tm, ts, vr, v0, di0, i0))


@pytest.mark.parametrize("subtract", [False, True])
def test_surrogate_gradients_match_plain_torch(subtract):
    torch.manual_seed(1)
    x = (torch.rand(40, 3, 4, dtype=torch.float64) * 4.0).requires_grad_()
    tm = torch.tensor([5.0, 8.0, 12.0, 4.0], dtype=torch.float64, requires_grad=True)
    ts = torch.tensor([2.0, 8.0, 3.0, 4.0], dtype=torch.float64, requires_grad=True)
    vth = torch.tensor([1.0, 1.2, 0.8, 1.0], dtype=torch.float64, requires_grad=True)
    vrs = torch.tensor([0.0 if subtract else -0.3] * 4, dtype=torch.float64, requires_grad=not subtract)
    n = 4
    full = lambda v: torch.full((n,), float(v), dtype=torch.float64)  # noqa: E731
    rows = _rows(tm, ts, v_th=vth, v_reset=vrs, v_rest=full(0.1), ref_steps=full(2), reset=full(int(subtract)))
    z0 = torch.zeros(3, 4, dtype=torch.float64)
    ours = _layer(x, rows, z0 + 0.1, z0, z0)
    want = reference(x, rows, z0 + 0.1, z0, z0, z0, subtract=subtract)
    assert torch.equal(ours[0], want[0]) and ours[0].sum() > 20
    for a, b in zip(ours[1:], (want[1], want[2], want[3])):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13)
    w = torch.randn(40, 3, 4, dtype=torch.float64)
    leaves = [x, tm, ts, vth] + ([] if subtract else [vrs])
    g_ours = torch.autograd.grad((ours[0] * w).sum() + ours[1].sum(), leaves, retain_graph=True)
    g_want = torch.autograd.grad((want[0] * w).sum() + want[1].sum(), leaves)
    for a, b in zip(g_ours, g_want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset", ["value", "subtract"])
def test_export_gives_the_clock_engines_spikes(reset):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 5), est.LIF(tau_m=[6.0, 8.0, 10.0, 5.0, 7.0], tau_syn=2.0, v_th=0.25,
                                                   v_reset=-0.1 if reset == "value" else 0.0, t_ref=1.0,
                                                   reset=reset, psc="alpha", return_state=False)).double()
    with torch.no_grad():
        model[0].weight.abs_().mul_(2.0)
        model[0].bias.fill_(0.0)
    x = (torch.rand(60, 2, 6) < 0.3).double()
    s = model(x).detach().numpy()
    net = est.to_network(model, inputs=x)
    assert net.torch_export.populations[0].model.psc == "alpha"
    got = net.torch_export
    net.run(got.run_steps * net.dt)
    assert s.sum() > 20
    np.testing.assert_array_equal(got.spikes(), s)


def test_module_state_chunks_and_float32():
    torch.manual_seed(3)
    x = torch.rand(50, 2, 3) * 3
    layer = est.LIF(tau_m=5.0, tau_syn=3.0, t_ref=2.0, psc="alpha")
    s, st = layer(x)
    assert st.refr.dtype == torch.int32 and st.di is not None and s.sum() > 0
    sa, sta = layer(x[:17])
    sb, stb = layer(x[17:], sta)
    assert torch.equal(torch.cat([sa, sb]), s) and torch.equal(stb.refr, st.refr)
    s64, _ = layer.double()(x.double())
    assert (s64.float() != s).float().mean() < 0.02  # float32 rounding flips a rare threshold decision
    assert "psc='alpha'" in repr(layer)


def test_bad_arguments():
    with pytest.raises(ValueError, match="psc='alpha' needs tau_syn"):
        est.LIF(psc="alpha")
    with pytest.raises(ValueError, match="integrator='exact'"):
        est.LIF(tau_syn=2.0, psc="alpha", integrator="euler")
    with pytest.raises(ValueError, match="for LIF layers"):
        est.ALIF(tau_syn=2.0, psc="alpha")
    with pytest.raises(ValueError, match="psc="):
        est.LIF(tau_syn=2.0, psc="beta")
    with pytest.raises(ValueError, match="return_v"):
        est.LIF(tau_syn=2.0, psc="alpha")(torch.zeros(3, 1, 2), return_v=True)
