"""Trained stacks exported to the clock engine give the same spikes as the torch forward pass."""

import numpy as np
import pytest
import torch

import eventsim.torch as est


def _stack(kind):
    if kind == "if":
        l1 = est.IF(v_th=1.0, v_reset=0.0, dt=0.5, t_ref=1.0)
        l2 = est.IF(v_th=1.0, dt=0.5, reset="subtract")
    elif kind == "alif":
        l1 = est.ALIF(tau_m=torch.linspace(5, 20, 30), v_th=1.0, dt=0.5, t_ref=1.0, tau_theta=30.0,
                      d_theta=0.2, reset="subtract")
        l2 = est.LIF(tau_m=10.0, v_th=0.5, dt=0.5)
    else:
        ts = 3.0 if kind == "exp" else None
        l1 = est.LIF(tau_m=torch.linspace(5, 20, 30), v_th=1.0, v_reset=-0.5, v_rest=0.1, dt=0.5, t_ref=1.0,
                     tau_syn=ts)
        l2 = est.LIF(tau_m=8.0, v_th=0.5, dt=0.5, tau_syn=ts, reset="subtract")
    return torch.nn.Sequential(torch.nn.Linear(20, 30), l1, torch.nn.Linear(30, 10), l2).double()


@pytest.mark.parametrize("kind", ["delta", "exp", "if", "alif"])
def test_export_identical_spikes(kind):
    torch.manual_seed(1)
    model = _stack(kind)
    with torch.no_grad():
        for m in model:
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(12.0 if kind != "if" else 3.0)
                m.bias.add_(0.5)
    inp = (torch.rand(120, 3, 20, dtype=torch.float64) < 0.2).double()
    with torch.no_grad():
        s1, _ = model[1](model[0](inp))
        s2, _ = model[3](model[2](s1))
    net = est.to_network(model, inputs=inp)
    ex = net.torch_export
    net.run(ex.run_steps * net.dt)
    assert s1.sum() > 20 and s2.sum() > 5
    np.testing.assert_array_equal(ex.spikes(0), s1.numpy())
    np.testing.assert_array_equal(ex.spikes(1), s2.numpy())
    np.testing.assert_array_equal(est.simulate(model, inp).numpy(), s2.numpy())


def test_export_rejects_other_integrators():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), est.LIF(integrator="euler"))
    with pytest.raises(ValueError, match="exact"):
        est.to_network(model, steps=5)
