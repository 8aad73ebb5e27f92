"""Adaptive thresholds with K components (as the simulator's ALIF) and trainable v_reset, tau_theta, d_theta.

* ``ALIF`` / ``LIFRecurrent`` with a tuple of threshold components: state
  ``[K, B, ...]``, continuation across calls, and the simulator's spikes via
  ``to_network`` (also after training the adaptation parameters);
* trainable ``tau_theta`` stays valid under any update (``tau_min + softplus(p)``),
  invalid initial values and parameters a layer does not use are refused.
(The gradients themselves are checked against autograd of the equations in
``test_gradients.py``.)
"""

import numpy as np
import pytest
import torch
from torch import nn

import eventsim.torch as est

f64 = torch.float64


def _x(T=40, B=2, n=5, seed=0, offset=1.3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, n, generator=g, dtype=f64) + offset


def test_components_state_and_continuation():
    layer = est.ALIF(tau_m=5.0, tau_theta=(4.0, torch.linspace(20, 60, 5), 300.0), d_theta=(0.4, 0.2, 0.05)).double()
    assert layer.theta_components == 3 and layer.tau_theta.shape == (3, 5) and layer.d_theta.shape == (3,)
    x = _x()
    s, st = layer(x)
    assert st.theta.shape == (3, 2, 5) and (st.theta > 0).all() and s.sum() > 10
    a, st1 = layer(x[:13])
    b, _ = layer(x[13:], st1)
    assert torch.equal(torch.cat([a, b]), s)
    with pytest.raises(ValueError, match="theta"):
        layer(x, est.NeuronState(v=st.v, theta=st.theta[0]))
    # one component given as a 1-tuple is the scalar form
    one = est.ALIF(tau_m=5.0, tau_theta=(30.0,), d_theta=(0.3,)).double()
    ref = est.ALIF(tau_m=5.0, tau_theta=30.0, d_theta=0.3).double()
    s1, st1 = one(x)
    s2, st2 = ref(x)
    assert one.theta_components == 1 and torch.equal(s1, s2) and st1.theta.shape == (2, 5)


def test_components_act_in_sum():
    """Two components with the same time constant act as one with the summed jump (up to rounding)."""
    x = _x(T=60)
    two = est.ALIF(tau_m=5.0, tau_theta=(30.0, 30.0), d_theta=(0.25, 0.25)).double()
    one = est.ALIF(tau_m=5.0, tau_theta=30.0, d_theta=0.5).double()
    s2, st2 = two(x)
    s1, st1 = one(x)
    assert torch.equal(s1, s2)
    torch.testing.assert_close(st2.theta.sum(0), st1.theta, rtol=1e-12, atol=1e-12)


def test_recurrent_components_and_defaults():
    torch.manual_seed(0)
    layer = est.LIFRecurrent(4, 6, tau_theta=(10.0, 100.0)).double()
    assert layer.theta_components == 2 and torch.equal(layer.d_theta, torch.tensor([0.1, 0.1]).double())
    with torch.no_grad():
        layer.input_weights.mul_(4.0)
    s, st = layer(_x(n=4))
    assert st.theta.shape == (2, 2, 6) and s.sum() > 0


@pytest.mark.parametrize("kw, match", [
    (dict(tau_theta=(10.0, 20.0), d_theta=(0.1,)), "components"),
    (dict(tau_theta=(), d_theta=()), "at least one"),
    (dict(tau_theta=(10.0, float("nan")), d_theta=(0.1, 0.1)), r"tau_theta\[1\]"),
    (dict(tau_theta=(10.0, -1.0), d_theta=(0.1, 0.1)), r"tau_theta\[1\]"),
    (dict(tau_theta=(10.0, 20.0), d_theta=(0.1, "a")), r"d_theta\[1\]"),
    (dict(tau_theta=(10.0, [1.0, 2.0]), d_theta=(0.1, [1.0, 2.0, 3.0])), "length|values"),
])
def test_invalid_components_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        est.ALIF(**kw)


def test_per_neuron_component_length_is_checked_at_call():
    layer = est.ALIF(tau_theta=(10.0, torch.ones(3) * 5), d_theta=(0.1, 0.2))
    with pytest.raises(ValueError, match="tau_theta"):
        layer(torch.rand(5, 2, 4))


# ---------------------------------------------------------------------------------------------
# trainable adaptation and reset
# ---------------------------------------------------------------------------------------------
def test_trainable_adaptation_is_parametrised_and_stays_valid():
    layer = est.ALIF(tau_m=5.0, tau_theta=(10.0, 50.0), d_theta=(0.3, 0.1), trainable=["tau_theta", "d_theta",
                                                                                        "v_reset"])
    names = sorted(n for n, _ in layer.named_parameters())
    assert names == ["d_theta", "parametrizations.tau_theta.original", "v_reset"]
    torch.testing.assert_close(layer.tau_theta.detach(), torch.tensor([10.0, 50.0]), rtol=1e-6, atol=0)
    opt = torch.optim.SGD([layer.parametrizations.tau_theta.original], lr=1e4)  # (d_theta, v_reset: unbounded)
    x = torch.rand(30, 3, 4) * 4
    for _ in range(3):
        s, st = layer(x)
        loss = -(s.sum() + st.v.sum() + st.theta.sum()) * 100
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        layer.parametrizations.tau_theta.original.fill_(-1e4)
    torch.testing.assert_close(layer.tau_theta.detach(), torch.full((2,), est.TAU_MIN_STEPS * layer.dt))
    s, st = layer(x)
    assert torch.isfinite(st.v).all() and torch.isfinite(st.theta).all()


@pytest.mark.parametrize("kw, name", [
    (dict(tau_theta=0.01, d_theta=0.1), "tau_theta"),
    (dict(tau_theta=(20.0, 0.015), d_theta=(0.1, 0.1)), r"tau_theta\[1\]"),
    (dict(tau_theta=torch.tensor([5.0, 0.0])), "tau_theta"),
])
def test_invalid_initial_adaptation_time_constants_are_refused(kw, name):
    with pytest.raises(ValueError, match=name):
        est.ALIF(trainable=["tau_theta"], **kw)


@pytest.mark.parametrize("cls, kw, name", [
    (est.LIF, dict(), "tau_theta"), (est.LIF, dict(), "d_theta"), (est.LIF, dict(reset="subtract"), "v_reset"),
    (est.LIF, dict(integrator="snntorch"), "v_reset"), (est.IF, dict(), "tau_m"), (est.LIF, dict(), "tau_syn"),
])
def test_trainable_parameters_the_layer_does_not_use_are_refused(cls, kw, name):
    with pytest.raises(ValueError, match=name):
        cls(trainable=[name], **kw)
    # trainable=True takes only what the layer uses
    layer = cls(trainable=True, **kw)
    assert not any(name in n for n, _ in layer.named_parameters())


def test_trainable_v_reset_changes_the_reset_value():
    layer = est.LIF(tau_m=5.0, v_reset=-0.5, trainable="v_reset").double()
    x = _x()
    _, _, v = layer(x, return_v=True)
    s, _ = layer(x)
    assert torch.all(v[s > 0] == -0.5)
    (g,) = torch.autograd.grad(v.sum(), layer.v_reset)
    assert g > 0


# ---------------------------------------------------------------------------------------------
# the simulator's spikes
# ---------------------------------------------------------------------------------------------
def _simulate_and_compare(model, x):
    with torch.no_grad():
        hidden, h = [], x
        for m in model:
            h = m(h)
            h = h[0] if isinstance(h, tuple) else h
            if isinstance(m, (est.LIF, est.IF, est.ALIF, est.LIFRecurrent)):
                hidden.append(h)
    net = est.to_network(model, inputs=x)
    ex = net.torch_export
    net.run(ex.run_steps * net.dt)
    for li, s in enumerate(hidden):
        assert s.sum() >= 5, (li, float(s.sum()))
        np.testing.assert_array_equal(ex.spikes(li), s.numpy())


def test_export_components_give_the_simulators_spikes():
    torch.manual_seed(5)
    alif = est.ALIF(tau_m=torch.linspace(4.0, 12.0, 12), tau_theta=(5.0, torch.linspace(20, 80, 12), 400.0),
                    d_theta=(0.3, torch.linspace(0.05, 0.3, 12), 0.02), t_ref=1.0, reset="subtract",
                    return_state=False)
    rec = est.LIFRecurrent(12, 8, tau_m=6.0, tau_theta=(8.0, 60.0), d_theta=(0.2, 0.1), v_reset=-0.2,
                           return_state=False)
    model = nn.Sequential(nn.Linear(10, 12), alif, rec, nn.Linear(8, 4),
                          est.ALIF(tau_m=5.0, tau_syn=2.0, tau_theta=(10.0, 30.0), d_theta=(0.2, -0.05),
                                   return_state=False)).double()
    x = (torch.rand(60, 2, 10, generator=torch.Generator().manual_seed(1), dtype=f64) < 0.3).to(f64)
    est.init_for_spikes(model, x, fraction=0.5, margin=2.0)
    _simulate_and_compare(model, x)


def test_export_after_training_the_adaptation():
    """Trained v_reset, tau_theta and d_theta (several components) are exported as trained."""
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(10, 12),
                          est.ALIF(tau_m=5.0, v_reset=-0.1, tau_theta=(6.0, 40.0), d_theta=(0.2, 0.1),
                                   trainable=True, return_state=False),
                          nn.Linear(12, 4), est.LIF(tau_m=5.0, trainable=True, return_state=False)).double()
    x = (torch.rand(50, 4, 10, generator=torch.Generator().manual_seed(2), dtype=f64) < 0.3).to(f64)
    est.init_for_spikes(model, x, fraction=0.5)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    y = torch.tensor([0, 1, 2, 3])
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(x).sum(0), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for n, p in model.named_parameters():
        assert not torch.equal(p.detach(), before[n]), n
    _simulate_and_compare(model, x)
