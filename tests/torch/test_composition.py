"""Layers as PyTorch building blocks: spikes-only layers in nn.Sequential, kept state for truncated
BPTT, TimeDistributed per-sample modules, and the export of such models to the clock engine."""

import numpy as np
import pytest
import torch
from torch import nn

import eventsim.torch as est

f64 = torch.float64


def _spikes(shape, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=f64) < p).to(f64)


def test_sequential_spikes_only_equals_explicit_calls():
    torch.manual_seed(0)
    kw = dict(tau_m=5.0, tau_syn=2.0, t_ref=1.0)
    seq = nn.Sequential(nn.Linear(6, 8), est.LIF(return_state=False, **kw), nn.Linear(8, 3),
                        est.ALIF(return_state=False, tau_theta=20.0, d_theta=0.2)).double()
    _scale(seq, w=6.0, b=0.5)
    x = _spikes((30, 4, 6))
    out = seq(x)
    h, st1 = est.LIF(**kw).double()(seq[0](x))
    ref, st2 = est.ALIF(tau_theta=20.0, d_theta=0.2).double()(seq[2](h))
    assert out.sum() > 0 and torch.equal(out, ref)
    assert seq[1].state is None  # nothing is kept without keep_state
    out, v = seq[1](seq[0](x), return_v=True)  # spikes-only form with the membrane trace
    assert torch.equal(out, h) and v.shape == h.shape


def test_keep_state_continues_detaches_and_resets():
    layer = est.LIF(tau_m=8.0, tau_syn=3.0, return_state=False, keep_state=True).double()
    x = (torch.randn(40, 2, 5, dtype=f64) + 1.5).requires_grad_()
    full, _ = est.LIF(tau_m=8.0, tau_syn=3.0).double()(x)
    a = layer(x[:17])
    b = layer(x[17:])
    assert torch.equal(torch.cat([a, b]), full) and full.sum() > 0
    # the kept state carries the graph into the next chunk ...
    (g,) = torch.autograd.grad(b.sum() + layer.state.v.sum(), x)
    assert g[:17].abs().sum() > 0
    # ... until detach_state() cuts it (a truncated-BPTT boundary) without changing values
    layer.reset_state()
    layer(x[:17])
    layer.detach_state()
    b2 = layer(x[17:])
    assert torch.equal(b2, b)
    (g,) = torch.autograd.grad(b2.sum() + layer.state.v.sum(), x)
    assert g[:17].abs().sum() == 0 and g[17:].abs().sum() > 0
    # reset_state(): the next call starts at rest; another batch size needs it
    with pytest.raises(ValueError, match="reset_state"):
        layer(x[:5, :1])
    est.reset_states(nn.Sequential(layer))
    assert torch.equal(layer(x[:17]), a)


def test_detach_states_reaches_nested_layers():
    model = nn.Sequential(nn.Sequential(nn.Linear(3, 4), est.LIF(return_state=False, keep_state=True)))
    model(torch.rand(5, 2, 3, requires_grad=True))
    assert model[0][1].state.v.requires_grad
    est.detach_states(model)
    assert not model[0][1].state.v.requires_grad


def test_time_distributed_matches_a_loop_over_steps():
    torch.manual_seed(0)
    mods = [nn.Conv2d(2, 3, 3, padding=1), nn.AvgPool2d(2), nn.Flatten(), nn.BatchNorm2d(2).eval()]
    x = torch.randn(5, 4, 2, 6, 6)
    for m in mods:
        td = est.TimeDistributed(m)
        y = td(x)
        ref = torch.stack([m(x[t]) for t in range(x.shape[0])])
        torch.testing.assert_close(y, ref, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="x"):
        est.TimeDistributed(nn.Flatten())(torch.zeros(3))
    with pytest.raises(TypeError, match="module"):
        est.TimeDistributed(torch.relu)


def _scale(model, w=4.0, b=0.2):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(w)
                if m.bias is not None:
                    m.bias.add_(b)
    return model


def _check_export(model, x, min_spikes=5):
    model = model.double().eval()
    with torch.no_grad():
        hidden, h = [], x
        for m in model:
            h = m(h)
            if isinstance(h, tuple):  # a layer with return_state=True (the export reads either form)
                h = h[0]
            if isinstance(m, (est.LIF, est.IF, est.ALIF, est.LIFRecurrent)):
                hidden.append(h)
    net = est.to_network(model, inputs=x)
    ex = net.torch_export
    net.run(ex.run_steps * net.dt)
    for li, s in enumerate(hidden):
        assert s.sum() >= min_spikes, (li, float(s.sum()))
        np.testing.assert_array_equal(ex.spikes(li), s.numpy())
    np.testing.assert_array_equal(est.simulate(model, x).numpy(), hidden[-1].numpy())


def test_export_sequential_of_spikes_only_layers():
    torch.manual_seed(2)
    model = nn.Sequential(est.TimeDistributed(nn.Flatten()), nn.Linear(12, 16),
                          est.LIF(tau_m=6.0, dt=0.5, t_ref=1.0, return_state=False), nn.Dropout(0.2),
                          nn.Linear(16, 5), est.IF(v_th=1.5, dt=0.5, reset="subtract", return_state=False))
    _check_export(_scale(model), _spikes((60, 3, 3, 4)))


def test_export_convolutional_stack():
    torch.manual_seed(3)
    model = nn.Sequential(est.TimeDistributed(nn.Conv2d(1, 4, 3, padding=1)),
                          est.LIF(tau_m=torch.linspace(4.0, 12.0, 4 * 8 * 8), tau_syn=2.0, return_state=False),
                          est.TimeDistributed(nn.AvgPool2d(2)),
                          est.TimeDistributed(nn.Sequential(nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6))),
                          est.ALIF(tau_m=5.0, reset="subtract", tau_theta=20.0, d_theta=0.2, return_state=False),
                          nn.Flatten(start_dim=2), nn.Linear(6 * 2 * 2, 7), est.LIF(tau_m=5.0))
    with torch.no_grad():
        model[3].module[1].running_mean.uniform_(-0.2, 0.2)
        model[3].module[1].running_var.uniform_(0.5, 2.0)
    x = _spikes((40, 2, 1, 8, 8))
    model = model.double().eval()
    factors = est.init_for_spikes(model, x, fraction=0.4)
    assert len(factors) == 3 and all(f > 1 for f in factors)
    _check_export(model, x)


def test_export_recurrent_adaptive_layer():
    torch.manual_seed(4)
    rec = est.LIFRecurrent(6, 10, tau_m=5.0, tau_theta=30.0, d_theta=0.3, t_ref=1.0, return_state=False)
    model = nn.Sequential(nn.Linear(8, 6), est.LIF(tau_m=4.0, return_state=False), rec,
                          nn.Linear(10, 4), est.LIF(tau_m=6.0, return_state=False))
    x = _spikes((50, 2, 8), p=0.4)
    model = model.double()
    est.init_for_spikes(model, x, fraction=0.5)
    with torch.no_grad():
        rec.recurrent_weights.mul_(3.0)
    _check_export(model, x)


@pytest.mark.parametrize("mods, match", [
    ([est.TimeDistributed(nn.MaxPool2d(2))], "AvgPool"),
    ([est.TimeDistributed(nn.ReLU())], "ReLU"),
    ([nn.Dropout(0.5).train()], "eval"),
    ([est.LIF(integrator="euler", return_state=False)], "exact"),
])
def test_export_refuses_what_the_simulator_cannot_express(mods, match):
    model = nn.Sequential(*mods, est.TimeDistributed(nn.Flatten()), nn.Linear(4, 2), est.LIF())
    with pytest.raises(ValueError, match=match):
        est.to_network(model, inputs=np.zeros((3, 1, 1, 2, 2)))


def test_export_without_inputs_needs_the_input_shape():
    model = nn.Sequential(est.TimeDistributed(nn.Conv2d(1, 2, 3)), est.LIF())
    with pytest.raises(ValueError, match="input_shape"):
        est.to_network(model, steps=3)
    net = est.to_network(model, steps=3, input_shape=(1, 5, 5))
    assert net.torch_export.shapes == [(2, 3, 3)]
    with pytest.raises(ValueError, match="last neuron layer"):
        est.to_network(nn.Sequential(nn.Linear(2, 2), est.LIF(), nn.Linear(2, 2)), steps=3)
