"""nn.Module shells: shapes, state continuation, trainable parameters, options, errors."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import eventsim.torch as est
from eventsim.torch import functional as F
from eventsim.torch.surrogate import SURROGATES


def _x(T=40, B=3, feat=(5,), scale=1.0, offset=1.2, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn((T, B) + feat, generator=g) * scale + offset).to(dtype)


@pytest.mark.parametrize("layer", [est.LIF(tau_m=10.0), est.LIF(tau_syn=5.0, reset="subtract", t_ref=2.0),
                                   est.IF(v_th=2.0), est.ALIF(tau_theta=50.0, d_theta=0.2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_and_state(layer, dtype):
    x = _x(feat=(2, 3), dtype=dtype)
    s, st = layer(x)
    assert s.shape == x.shape and s.dtype == dtype
    assert st.v.shape == (3, 2, 3)
    assert s.sum() > 0


@pytest.mark.parametrize("layer", [est.LIF(tau_m=10.0, tau_syn=4.0, t_ref=3.0),
                                   est.ALIF(tau_theta=30.0, d_theta=0.3, t_ref=1.0, reset="subtract"),
                                   est.LIF(integrator="snntorch", tau_m=9.0, reset="subtract")])
def test_truncated_bptt_state_continues(layer):
    x = _x(T=50, dtype=torch.float64)
    s_all, st_all = layer(x)
    s1, st1 = layer(x[:23])
    s2, st2 = layer(x[23:], st1)
    assert torch.equal(torch.cat([s1, s2]), s_all)
    assert torch.equal(st2.v, st_all.v)


def test_recurrent_state_continues_and_grads():
    torch.manual_seed(0)
    layer = est.LIFRecurrent(4, 6, tau_m=5.0, v_th=0.5).double()
    x = _x(T=30, B=2, feat=(4,), dtype=torch.float64, offset=0.5)
    s_all, st_all = layer(x)
    s1, st1 = layer(x[:11])
    s2, _ = layer(x[11:], st1)
    assert torch.equal(torch.cat([s1, s2]), s_all) and s_all.sum() > 0
    assert torch.all(layer.autapse_mask.diagonal() == 0)
    s_all.sum().backward()
    assert layer.input_weights.grad.abs().sum() > 0 and layer.recurrent_weights.grad.abs().sum() > 0


def test_batch_first_matches_time_first():
    x = _x()
    a, _ = est.LIF()(x)
    b, _ = est.LIF(batch_first=True)(x.transpose(0, 1))
    assert torch.equal(a, b.transpose(0, 1))


@pytest.mark.parametrize("tau_syn", [None, 3.0])
def test_exact_steady_state_is_v_rest_plus_x(tau_syn):
    layer = est.LIF(tau_m=5.0, v_th=100.0, v_rest=-0.5, dt=0.5, tau_syn=tau_syn).double()
    x = torch.full((400, 1, 2), 2.0, dtype=torch.float64)
    _, st = layer(x)
    torch.testing.assert_close(st.v, torch.full((1, 2), 1.5, dtype=torch.float64))


def test_if_adds_input():
    _, st, v = est.IF(v_th=100.0).double()(torch.full((5, 1, 1), 0.25, dtype=torch.float64), return_v=True)
    assert v[:, 0, 0].tolist() == [0.25, 0.5, 0.75, 1.0, 1.25]


def test_trainable_parameters_get_gradients():
    layer = est.LIF(tau_m=torch.full((5,), 8.0), tau_syn=4.0, trainable=True)
    x = _x(scale=0.5, offset=1.5).requires_grad_()
    s, st = layer(x)
    (s.sum() + st.v.sum()).backward()
    params = dict(layer.named_parameters())
    # time constants are trained through tau = tau_min + softplus(p): the gradient reaches the raw p
    assert sorted(params) == ["parametrizations.tau_m.original", "parametrizations.tau_syn.original", "v_reset",
                              "v_th"]
    for p in params.values():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_surrogates_by_name(name):
    x = _x().requires_grad_()
    s, _ = est.LIF(surrogate=name)(x)
    s.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(tau_m=-1.0), "tau_m"), (dict(dt=0.0), "dt"), (dict(t_ref=0.3, dt=0.2), "t_ref"),
    (dict(reset="zero"), "reset"), (dict(surrogate="nope"), "surrogate"), (dict(alpha=-1.0), "alpha"),
    (dict(integrator="rk4"), "integrator"), (dict(v_reset=2.0, v_th=1.0), "v_reset"),
    (dict(trainable=["beta"]), "trainable"), (dict(integrator="snntorch", tau_syn=3.0), "synaptic"),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        est.LIF(**kwargs)


def test_input_validation():
    with pytest.raises(ValueError, match="shape"):
        est.LIF()(torch.zeros(5))
    with pytest.raises(TypeError, match="float32, float64, float16 or bfloat16"):
        est.LIF()(torch.zeros(5, 2, 3, dtype=torch.int64))


def test_specialized_kernels_match_generic():
    """The per-layer-kind compiled kernels give the generic kernels' results bit for bit."""
    layer = est.LIF(tau_m=10.0, tau_syn=None, reset="subtract")
    x = _x(T=30, B=2, feat=(70,)).requires_grad_()
    out = {}
    for spec in (False, True):
        F.SPECIALIZE = spec
        try:
            s, st, v = layer(x, return_v=True)
            (g,) = torch.autograd.grad((s * torch.linspace(-1, 1, 70)).sum() + v.sum(), x)
        finally:
            F.SPECIALIZE = False
        out[spec] = (s, v, g)
    for a, b in zip(out[False], out[True]):
        assert torch.equal(a, b)


def test_import_eventsim_does_not_import_torch():
    code = "import sys, eventsim; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numpy_state_roundtrip_dtype():
    layer = est.LIF(t_ref=2.0)
    s, st = layer(_x())
    assert st.refr.dtype == torch.int32 and st.i is None and st.theta is None
    assert np.all(st.refr.numpy() >= 0)
