"""The leaky-integrator readout (``eventsim.torch.LI``): a family run by the torch bridge through its own
declaration (``eventsim.models.li.LI_TORCH``), with exact gradients and export to the clock engine."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import eventsim.torch as est
from eventsim.models import family as fam
from eventsim.models.li import LI_FAMILY, LI_TORCH
from eventsim.torch import functional as F


def reference(x, tau_m, v_rest, tau_syn, dt, v0, i0):
    """The recurrence of the module docstring of eventsim.models.li in plain torch (float64)."""
    tau_m = torch.as_tensor(tau_m, dtype=torch.float64)
    p_vv = torch.exp(-dt / tau_m)
    if tau_syn is None:
        p_vi, p_ve, p_ee, g = 1.0 - p_vv, 0.0, 0.0, 0.0
    else:
        tau_syn = torch.as_tensor(tau_syn, dtype=torch.float64)
        p_ee = torch.exp(-dt / tau_syn)
        a = 1.0 / tau_syn - 1.0 / tau_m
        # tau_m == tau_syn: the limit dt/tau_m
        z = torch.where(a == 0, torch.ones_like(a), -dt * a)  # (no 0/0 in the gradient either)
        p_ve = p_vv * dt / tau_m * torch.where(a == 0, 1.0 - 0.5 * dt * a, torch.expm1(z) / z)
        p_vi, g = 0.0, (1.0 - p_vv) * (1.0 - p_ee) / p_ve
    v, i, out = v0, i0, []
    for t in range(x.shape[0]):
        v, i = v_rest + p_vv * (v - v_rest) + p_vi * x[t] + p_ve * i, p_ee * i + g * x[t]
        out.append(v)
    return torch.stack(out), v, i


@pytest.mark.parametrize("tau_syn", [None, [3.0, 8.0, 2.0]])
def test_matches_reference_and_gradcheck(tau_syn):
    torch.manual_seed(0)
    x = torch.randn(9, 2, 3, dtype=torch.float64, requires_grad=True)
    tm = torch.tensor([5.0, 8.0, 12.0], dtype=torch.float64, requires_grad=True)
    vr = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    ts = None if tau_syn is None else torch.tensor(tau_syn, dtype=torch.float64, requires_grad=True)
    v0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    i0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True) if tau_syn else torch.zeros(2, 3, dtype=torch.float64)

    def ours(x, tm, vr, v0, *rest):
        state = F.NeuronState(v=v0, i=rest[1] if len(rest) > 1 else i0)
        v, st = F.li(x, state, tau_m=tm, v_rest=vr, tau_syn=rest[0] if rest else None, dt=0.5)
        return v, st.v, st.i

    args = (x, tm, vr, v0) + (() if ts is None else (ts, i0))
    got = ours(*args)
    want = reference(x, tm, vr, ts, 0.5, v0, i0)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-13, atol=1e-13)
    # gradients on the input, the initial state and every parameter: exact (no surrogate)
    assert torch.autograd.gradcheck(ours, args)
    gw = torch.autograd.grad(sum((o * o).sum() for o in want), args)
    gg = torch.autograd.grad(sum((o * o).sum() for o in ours(*args)), args)
    for a, b in zip(gg, gw):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_equal_time_constants_and_steady_state():
    # tau_m == tau_syn (the propagator's limit, no division by zero); a constant x settles at v_rest + x
    x = torch.full((400, 1, 2), 1.5, dtype=torch.float64)
    for tau_syn in (None, 5.0):
        v, st = F.li(x, tau_m=5.0, v_rest=-0.5, tau_syn=tau_syn)
        assert torch.isfinite(v).all()
        torch.testing.assert_close(v[-1], torch.full((1, 2), 1.0, dtype=torch.float64), rtol=0, atol=1e-12)
    want = reference(x[:20], 5.0, -0.5, 5.0, 1.0, torch.full((1, 2), -0.5, dtype=torch.float64),
                     torch.zeros(1, 2, dtype=torch.float64))[0]
    torch.testing.assert_close(F.li(x[:20], tau_m=5.0, v_rest=-0.5, tau_syn=5.0)[0], want, rtol=1e-13, atol=1e-13)


def test_module_float32_chunks_and_sequential():
    torch.manual_seed(1)
    x = torch.randn(30, 4, 3)
    layer = est.LI(tau_m=[4.0, 6.0, 9.0], v_rest=0.2, tau_syn=3.0)
    v, st = layer(x)
    v64, _ = layer.double()(x.double())
    torch.testing.assert_close(v.double(), v64, rtol=1e-5, atol=1e-5)
    layer.float()
    # the state carries a sequence over: run(T) == run(T1) then run(T - T1)
    va, sa = layer(x[:11])
    vb, sb = layer(x[11:], sa)
    torch.testing.assert_close(torch.cat([va, vb]), v, rtol=0, atol=0)
    torch.testing.assert_close(sb.v, st.v, rtol=0, atol=0)
    # batch_first and the spikes-only form inside nn.Sequential, kept state over chunks
    bf = est.LI(tau_m=[4.0, 6.0, 9.0], v_rest=0.2, tau_syn=3.0, batch_first=True)
    torch.testing.assert_close(bf(x.transpose(0, 1))[0].transpose(0, 1), v, rtol=0, atol=0)
    seq = nn.Sequential(est.LI(tau_m=[4.0, 6.0, 9.0], v_rest=0.2, tau_syn=3.0, return_state=False,
                               keep_state=True))
    torch.testing.assert_close(torch.cat([seq(x[:11]), seq(x[11:])]), v, rtol=0, atol=0)
    est.reset_states(seq)
    torch.testing.assert_close(seq(x[:11]), va, rtol=0, atol=0)


def test_trainable_parameters_get_exact_gradients():
    torch.manual_seed(2)
    layer = est.LI(tau_m=[4.0, 6.0], v_rest=0.1, tau_syn=2.0, trainable=True).double()
    assert {n for n, _ in layer.named_parameters()} == {"v_rest", "parametrizations.tau_m.original",
                                                        "parametrizations.tau_syn.original"}
    x = torch.randn(12, 3, 2, dtype=torch.float64)
    target = torch.randn(12, 3, 2, dtype=torch.float64)
    loss = ((layer(x)[0] - target) ** 2).mean()
    grads = torch.autograd.grad(loss, list(layer.parameters()))
    tm, ts, vr = layer.tau_m.detach(), layer.tau_syn.detach(), layer.v_rest.detach()
    tm, ts, vr = tm.requires_grad_(), ts.requires_grad_(), vr.requires_grad_()
    ref = reference(x, tm, vr, ts, 1.0, vr.expand(3, 2), torch.zeros(3, 2, dtype=torch.float64))[0]
    g_tm, g_ts, g_vr = torch.autograd.grad(((ref - target) ** 2).mean(), [tm, ts, vr])
    by_name = dict(zip([n for n, _ in layer.named_parameters()], grads))
    torch.testing.assert_close(by_name["v_rest"], g_vr, rtol=1e-12, atol=1e-14)
    dsp = torch.sigmoid(layer.parametrizations.tau_m.original.detach())  # d tau / d p of the softplus
    torch.testing.assert_close(by_name["parametrizations.tau_m.original"], g_tm * dsp, rtol=1e-10, atol=1e-14)
    dsp = torch.sigmoid(layer.parametrizations.tau_syn.original.detach())
    torch.testing.assert_close(by_name["parametrizations.tau_syn.original"], g_ts * dsp, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("tau_syn", [None, 4.0])
def test_export_matches_clock_engine(tau_syn):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 6), est.LIF(tau_m=8.0, v_th=0.3, tau_syn=tau_syn, return_state=False),
                          nn.Linear(6, 3), est.LI(tau_m=[6.0, 9.0, 12.0], v_rest=0.2, tau_syn=tau_syn,
                                                  trainable=True, return_state=False)).double()
    with torch.no_grad():
        model[3].v_rest.fill_(-0.3)  # a trained value
    x = (torch.rand(40, 2, 5) < 0.3).double()
    v = model(x).detach().numpy()
    net = est.to_network(model, inputs=x)
    ex = net.torch_export
    assert isinstance(ex.populations[1].model, type(LI_FAMILY.models[0]()))
    net.run(ex.run_steps * net.dt)
    assert np.abs(ex.spikes(0) - model[:2](x).detach().numpy()).max() == 0 and ex.spikes(0).sum() > 0
    np.testing.assert_allclose(ex.v(), v, rtol=0, atol=1e-12)
    assert np.ptp(v) > 0.1
    with pytest.raises(ValueError, match="no membrane recorder"):
        ex.v(0)


def test_declaration_lives_in_the_family():
    assert LI_FAMILY.torch is LI_TORCH
    assert LI_FAMILY in fam.torch_families()
    assert len(LI_TORCH.rows) == 6 and [n for n, _ in LI_TORCH.state] == ["v", "i"]
    # the same coefficient expressions in NumPy (export) and torch (training)
    r_np = LI_TORCH.coefficients(np, 0.5, np.array([5.0, 7.0]), np.array([0.1, 0.2]), np.array([5.0, 2.0]))
    r_t = LI_TORCH.coefficients(torch, 0.5, torch.tensor([5.0, 7.0], dtype=torch.float64),
                                torch.tensor([0.1, 0.2], dtype=torch.float64),
                                torch.tensor([5.0, 2.0], dtype=torch.float64))
    for a, b in zip(r_np, r_t):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-15, atol=0)
    assert math.isclose(r_np[3][0], math.exp(-0.1) * 0.1, rel_tol=1e-15)  # tau_m == tau_syn: P_ve = e^(-h/tau) h/tau


def test_bad_arguments():
    with pytest.raises(ValueError, match="tau_m"):
        est.LI(tau_m=0.0)
    with pytest.raises(ValueError, match="tau_syn"):
        est.LI(tau_syn=-1.0)
    with pytest.raises(ValueError, match="trainable='tau_syn'"):
        est.LI(trainable="tau_syn")
    with pytest.raises(ValueError, match="trainable='v_th'"):
        est.LI(trainable=["v_th"])
    with pytest.raises(ValueError, match="tau_m"):
        est.LI(tau_m=[5.0, 6.0])(torch.zeros(3, 1, 4))
    with pytest.raises(ValueError, match="dt"):
        F.li(torch.zeros(3, 1, 2), dt=0.0)
    with pytest.raises(ValueError, match="rows has shape"):
        F.family_layer(torch.zeros(3, 1, 2), None, torch.zeros(5, 2), LI_FAMILY)
    with pytest.raises(TypeError, match="unexpected parameters"):
        F.family_coefficients(LI_FAMILY, 2, 1.0, v_th=1.0)
    with pytest.raises(ValueError, match="declares no torch layer"):
        F.family_layer(torch.zeros(3, 1, 2), None, torch.zeros(6, 2), fam.by_code(0))
    with pytest.raises(ValueError, match="state.v has shape"):
        F.li(torch.zeros(3, 2, 4), F.NeuronState(v=torch.zeros(2, 3)))


def test_torch_compile_runs_the_family_layers():
    """Under torch.compile (not fullgraph: the family layers are autograd Functions, not torch.library
    operators) the result and the gradient are the eager ones."""
    torch.manual_seed(4)
    for neuron in (est.LI(tau_syn=2.0, return_state=False),
                   est.LIF(tau_syn=2.0, v_th=0.3, psc="alpha", return_state=False)):
        model = nn.Sequential(nn.Linear(4, 3), neuron)
        x = torch.rand(20, 2, 4)
        want = model(x)
        (gw,) = torch.autograd.grad(want.sum() + (want * want).sum(), [model[0].weight])
        got = torch.compile(model, backend="aot_eager")(x)
        (gg,) = torch.autograd.grad(got.sum() + (got * got).sum(), [model[0].weight])
        assert torch.equal(got, want) and torch.equal(gg, gw)
