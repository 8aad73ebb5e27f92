"""float16 and bfloat16 inputs: float32 state and arithmetic inside, outputs in the input's dtype,
spikes equal to the float32 run on the same values, gradients within the half-precision rounding;
torch.autocast around a whole model."""

import pytest
import torch
from torch import nn

import eventsim.torch as est

# relative tolerance of one rounding to the dtype (unit roundoff 2**-11 and 2**-8), with margin
TOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def _layers():
    torch.manual_seed(0)
    rec = est.LIFRecurrent(4, 4, tau_m=5.0)
    with torch.no_grad():
        rec.input_weights.abs_().mul_(4.0)
    return [est.LIF(tau_m=5.0, tau_syn=2.0, t_ref=1.0, trainable=True),
            est.ALIF(tau_m=6.0, reset="subtract", tau_theta=20.0, d_theta=0.2), rec]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("which", [0, 1, 2], ids=["lif", "alif", "recurrent"])
def test_half_input_runs_in_float32(dtype, which):
    g = torch.Generator().manual_seed(1)
    x_half = (torch.randn(40, 3, 4, generator=g) + 1.5).to(dtype)
    x32 = x_half.float().requires_grad_()
    xh = x_half.clone().requires_grad_()
    layer = _layers()[which]
    s32, st32, v32 = layer(x32, return_v=True)
    s16, st16, v16 = layer(xh, return_v=True)
    assert s16.dtype == dtype and v16.dtype == dtype and st16.v.dtype == torch.float32
    assert s32.sum() > 10 and torch.equal(s16.float(), s32)  # same values in, same float32 arithmetic
    torch.testing.assert_close(st16.v, st32.v, rtol=0, atol=0)
    torch.testing.assert_close(v16.float(), v32, rtol=TOL[dtype], atol=TOL[dtype])
    w = torch.linspace(-1, 1, s32.numel()).reshape(s32.shape)
    (g32,) = torch.autograd.grad((s32 * w).sum() + v32.sum(), x32)
    (g16,) = torch.autograd.grad((s16.float() * w).sum() + v16.float().sum(), xh)
    assert g16.dtype == dtype
    scale = float(g32.abs().max())
    torch.testing.assert_close(g16.float(), g32, rtol=TOL[dtype], atol=TOL[dtype] * scale)


def test_state_continues_across_half_calls():
    layer = est.LIF(tau_m=5.0, tau_syn=2.0)
    x = (torch.randn(30, 2, 3) + 1.5).to(torch.bfloat16)
    s_all, _ = layer(x)
    s1, st = layer(x[:11])
    s2, _ = layer(x[11:], st)
    assert torch.equal(torch.cat([s1, s2]), s_all)


def test_autocast_around_a_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), est.LIF(tau_m=5.0, return_state=False), nn.Linear(16, 4),
                          est.LIF(tau_m=5.0, return_state=False))
    x = (torch.rand(30, 4, 8, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    est.init_for_spikes(model, x, fraction=0.5)
    ref = model(x)
    ref.sum().backward()
    g_ref = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    # bfloat16 Linear layers change the currents slightly: nearly all spikes agree
    assert (out.float() == ref).float().mean() > 0.97 and ref.sum() > 20
    for a, b in zip(model.parameters(), g_ref):
        assert torch.isfinite(a.grad).all()
        assert torch.nn.functional.cosine_similarity(a.grad.flatten(), b.flatten(), dim=0) > 0.9
