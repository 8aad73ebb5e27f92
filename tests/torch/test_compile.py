"""torch.compile(fullgraph=True) and torch.export of feed-forward SNNs through the torch.library
operators, with the eager model's spikes and gradients."""

import pytest
import torch
from torch import nn

import eventsim.torch as est
from eventsim.torch import _ops

pytestmark = pytest.mark.skipif(not _ops.AVAILABLE, reason="torch.library.custom_op needs torch >= 2.4")
f64 = torch.float64


def _model():
    torch.manual_seed(0)
    model = nn.Sequential(
        est.TimeDistributed(nn.Flatten()), nn.Linear(8, 16),
        est.LIF(tau_m=5.0, tau_syn=2.0, t_ref=1.0, trainable=True, return_state=False), nn.Linear(16, 12),
        est.ALIF(tau_m=6.0, reset="subtract", tau_theta=20.0, d_theta=0.1, return_state=False),
        nn.Linear(12, 4), est.IF(v_th=1.5, return_state=False)).double()
    x = (torch.rand(30, 3, 2, 4, generator=torch.Generator().manual_seed(1), dtype=f64) < 0.5).to(f64)
    est.init_for_spikes(model, x, fraction=0.7)
    return model, x


def test_whole_model_is_one_graph():
    torch._dynamo.reset()
    model, x = _model()
    explained = torch._dynamo.explain(model)(x)
    assert explained.graph_count == 1 and explained.graph_break_count == 0, explained.break_reasons


def test_compiled_fullgraph_matches_eager():
    torch._dynamo.reset()
    model, x = _model()
    w = torch.linspace(-1, 1, 30 * 3 * 4, dtype=f64).reshape(30, 3, 4)
    compiled = torch.compile(model, fullgraph=True)
    out_c = compiled(x)
    (out_c * w).sum().backward()
    grads_c = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    out = model(x)
    (out * w).sum().backward()
    assert out.sum() >= 3 and torch.equal(out_c, out)
    for n, p in model.named_parameters():
        assert p.grad.abs().sum() > 0, n
        torch.testing.assert_close(grads_c[n], p.grad, rtol=1e-9, atol=1e-12, msg=n)


def test_export():
    model, x = _model()
    exported = torch.export.export(model, (x,))
    assert torch.equal(exported.module()(x), model(x))


@pytest.mark.parametrize("kind", ["lif", "alif2"])
def test_operators_pass_opcheck(kind):
    from eventsim.torch import functional as F

    if kind == "lif":
        layer = est.LIF(tau_m=5.0, tau_syn=2.0, t_ref=1.0).double()
    else:
        layer = est.ALIF(tau_m=5.0, tau_theta=(4.0, 30.0), d_theta=(0.3, 0.1), reset="subtract").double()
    K = max(1, layer.theta_components)
    nat, aff = layer._coefficients(3, f64, "cpu")
    ints, alpha = _ops.spec_args(layer.spec)
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(12, 2, 3, generator=g, dtype=f64) + 1.0).requires_grad_()
    z = torch.zeros(2, 3, dtype=f64)
    th = torch.zeros(K, 2, 3, dtype=f64)
    r0 = torch.zeros(2, 3, dtype=torch.int32)
    args = (x, z.clone().requires_grad_(), z.clone(), th.clone().requires_grad_(),
            aff.detach().clone().requires_grad_(), r0, nat, ints, alpha, True)
    torch.library.opcheck(torch.ops.eventsim.ff_forward.default, args)
    assert F._ff_forward(x.detach(), z, z, th, r0, nat, layer.spec, True)[0].sum() > 0
    w = (torch.randn(3, 3, generator=g, dtype=f64) * 0.3).requires_grad_()
    rec = (x, w, z.clone(), z.clone(), z.clone(), th.clone(), aff.detach().clone().requires_grad_(), r0, nat,
           ints, alpha, True, True, True)
    torch.library.opcheck(torch.ops.eventsim.rec_forward.default, rec)
    tt, dd = layer._theta_args()
    comps = (lambda c: torch.stack([F._as_t(v, 3, f64, "cpu") for v in F.components(c)]) if c is not None
             else None)  # noqa: E731
    rows = (torch.full((3,), 5.0, dtype=f64), F._as_t(layer.tau_syn, 3, f64, "cpu") if layer.tau_syn is not None
            else None, *(F._as_t(getattr(layer, k), 3, f64, "cpu") for k in ("v_th", "v_reset", "v_rest")),
            comps(tt), comps(dd), ints, alpha, 3, 1.0, True, True, f64)
    torch.library.opcheck(torch.ops.eventsim.native_rows.default, rows)
    assert torch.equal(torch.ops.eventsim.native_rows(*rows), nat)


@pytest.mark.parametrize("adaptive", [False, True], ids=["lif", "alif"])
def test_recurrent_layer_compiles_fullgraph(adaptive):
    torch._dynamo.reset()
    torch.manual_seed(0)
    kw = dict(tau_theta=20.0, d_theta=0.2, t_ref=1.0) if adaptive else dict(tau_syn=2.0)
    model = nn.Sequential(nn.Linear(5, 6), est.LIFRecurrent(6, 8, return_state=False, trainable=["v_th"], **kw),
                          nn.Linear(8, 3), est.LIF(return_state=False)).double()
    x = (torch.rand(25, 2, 5, generator=torch.Generator().manual_seed(2), dtype=f64) < 0.5).to(f64)
    with torch.no_grad():  # excitatory input, weak recurrence: an active recurrent layer
        model[0].weight.abs_()
        model[1].input_weights.abs_()
        model[1].recurrent_weights.mul_(0.3)
    est.init_for_spikes(model, x, fraction=0.5, margin=3.0)
    out_c = torch.compile(model, fullgraph=True)(x)
    out_c.sum().backward()
    grads_c = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    out = model(x)
    out.sum().backward()
    with torch.no_grad():
        assert model[:2](x).sum() > 20 and out.sum() >= 3 and torch.equal(out_c, out)
    for n, p in model.named_parameters():
        assert p.grad.abs().sum() > 0, n
        torch.testing.assert_close(grads_c[n], p.grad, rtol=1e-9, atol=1e-12, msg=n)


def _peer_model(dtype):
    """One layer of every peer-parity integrator (and sinabs' multi-spike), with trainable parameters."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 8), est.LIF(tau_m=5.0, tau_syn=2.0, integrator="euler", trainable=True, return_state=False),
        nn.Linear(8, 8), est.LIF(tau_m=4.0, integrator="snntorch", reset="subtract", trainable=True,
                                 return_state=False),
        nn.Linear(8, 8), est.ALIF(tau_m=4.0, integrator="spikingjelly", tau_theta=(5.0, 30.0), d_theta=(0.2, 0.1),
                                  trainable=True, return_state=False),
        nn.Linear(8, 8), est.LIF(tau_m=3.0, tau_syn=2.0, integrator="sinabs", reset="subtract",
                                 trainable=True, return_state=False),
        nn.Linear(8, 4), est.LIF(tau_m=3.0, integrator="sinabs", norm_input=False, spike_fn="single",
                                 trainable=True, return_state=False)).to(dtype)
    x = (torch.rand(30, 3, 6, generator=torch.Generator().manual_seed(1), dtype=dtype) < 0.5).to(dtype)
    est.init_for_spikes(model, x, fraction=0.6)
    return model, x


def test_peer_integrators_are_one_graph():
    torch._dynamo.reset()
    model, x = _peer_model(torch.float32)
    explained = torch._dynamo.explain(model)(x)
    assert explained.graph_count == 1 and explained.graph_break_count == 0, explained.break_reasons
    exported = torch.export.export(model, (x,))
    assert torch.equal(exported.module()(x), model(x))


def test_peer_integrators_compiled_fullgraph_match_eager():
    """The compiled model computes with the eager model's coefficients (the eventsim::native_rows operator),
    so the peer-parity layers give the eager spikes bit for bit in float32, the dtype they are parity-checked in."""
    torch._dynamo.reset()
    dtype = torch.float32
    model, x = _peer_model(dtype)
    w = torch.linspace(-1, 1, 30 * 3 * 4, dtype=dtype).reshape(30, 3, 4)
    compiled = torch.compile(model, fullgraph=True)
    out_c = compiled(x)
    (out_c * w).sum().backward()
    grads_c = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    out = model(x)
    (out * w).sum().backward()
    assert out.sum() >= 3 and torch.equal(out_c, out)
    for n, p in model.named_parameters():
        assert torch.isfinite(p.grad).all(), n
        torch.testing.assert_close(grads_c[n], p.grad, rtol=1e-4, atol=1e-5, msg=n)
    # the forward coefficients themselves: compiled (eventsim::native_rows) against eager, bit for bit
    layers = [(m, model[i - 1].out_features) for i, m in enumerate(model) if isinstance(m, (est.LIF, est.ALIF))]
    assert len(layers) == 5
    rows = torch.compile(lambda: [m._coefficients(n, dtype, "cpu")[0] for m, n in layers], fullgraph=True)()
    for (m, n), nat in zip(layers, rows):
        assert torch.equal(nat, m._coefficients(n, dtype, "cpu")[0]), m
