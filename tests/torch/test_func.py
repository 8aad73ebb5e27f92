"""torch.func on eventsim.torch models: grad through functional_call, vmap over the batch, per-sample
gradients (vmap of grad), each against the ordinary autograd result of the same model."""

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

import eventsim.torch as est

f64 = torch.float64


def _model(recurrent=False):
    torch.manual_seed(0)
    if recurrent:
        mid = est.LIFRecurrent(6, 5, tau_m=4.0, tau_theta=20.0, d_theta=0.2, t_ref=1.0, return_state=False)
    else:
        mid = nn.Sequential(nn.Linear(6, 5), est.LIF(tau_m=5.0, tau_syn=2.0, t_ref=1.0, trainable=True,
                                                     return_state=False))
    model = nn.Sequential(nn.Linear(4, 6), est.LIF(tau_m=3.0, return_state=False), mid, nn.Linear(5, 5),
                          est.ALIF(tau_m=6.0, reset="subtract", trainable=["v_th"], return_state=False)).double()
    x = (torch.rand(25, 3, 4, generator=torch.Generator().manual_seed(1), dtype=f64) < 0.5).to(f64)
    est.init_for_spikes(model, x, fraction=0.5)
    return model, x


def _loss_weights(shape):
    return torch.linspace(-1.0, 1.0, int(torch.tensor(shape).prod()), dtype=f64).reshape(shape)


@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
def test_grad_of_functional_call_equals_backward(recurrent):
    model, x = _model(recurrent)
    params = {k: v.detach() for k, v in model.named_parameters()}
    w = _loss_weights((25, 3, 5))

    def loss(p, x):
        return (functional_call(model, p, (x,)) * w).sum()

    g = grad(loss)(params, x)
    model.zero_grad()
    out = model(x)
    assert out.sum() > 0
    (out * w).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad.abs().sum() > 0, name
        torch.testing.assert_close(g[name], p.grad, rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
def test_vmap_over_the_batch_and_per_sample_gradients(recurrent):
    model, x = _model(recurrent)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def one(p, xb):  # one sample [T, 4]
        return functional_call(model, p, (xb.unsqueeze(1),)).squeeze(1)

    out = vmap(one, in_dims=(None, 1), out_dims=1)(params, x)
    assert torch.equal(out, model(x))
    w = _loss_weights((25, 5))
    per_sample = vmap(grad(lambda p, xb: (one(p, xb) * w).sum()), in_dims=(None, 1))(params, x)
    for b in range(x.shape[1]):
        model.zero_grad()
        (model(x[:, b:b + 1]).squeeze(1) * w).sum().backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(per_sample[name][b], p.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_vmap_over_neuron_parameters_is_refused():
    layer = est.LIF(trainable=["v_th"], return_state=False).double()
    x = torch.rand(10, 2, 3, dtype=f64)
    v_th = torch.tensor([1.0, 1.5], dtype=f64)
    with pytest.raises(NotImplementedError, match="vmap"):
        vmap(lambda v: functional_call(layer, {"v_th": v}, (x,)))(v_th)


def test_double_backward_is_refused_clearly():
    layer = est.LIF(return_state=False).double()
    x = (torch.rand(10, 2, 3, dtype=f64) * 3).requires_grad_()
    (g,) = torch.autograd.grad(layer(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="first derivatives"):
        g.sum().backward()
