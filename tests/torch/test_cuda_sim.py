"""CUDA kernels: under the Numba CUDA simulator (CI), and on a real GPU when there is one.

The simulator check (``cuda_sim_check.py``) runs every layer kind, ``LIFRecurrent`` included, through
the CUDA launchers and kernels and compares spikes, states and gradients with the CPU kernels.
"""

import os
import subprocess
import sys

import pytest
import torch

import eventsim.torch as est

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.slow
@pytest.mark.after_files  # (the CPU kernels it compares with are compiled by the torch files' tests by then)
def test_cuda_kernels_in_simulator():
    root = os.path.dirname(os.path.dirname(HERE))
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1",
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, os.path.join(HERE, "cuda_sim_check.py")], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "CUDASIM OK" in out.stdout


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype):
    layer = est.LIF(tau_m=10.0, tau_syn=4.0, t_ref=2.0, reset="subtract")
    x = (torch.randn(50, 4, 33, dtype=dtype) + 1.2).requires_grad_()
    s, st, v = layer(x, return_v=True)
    (g,) = torch.autograd.grad(s.sum() + v.sum(), x)
    xc = x.detach().cuda().requires_grad_()
    sc, stc, vc = layer.cuda()(xc, return_v=True)
    (gc,) = torch.autograd.grad(sc.sum() + vc.sum(), xc)
    assert torch.equal(sc.cpu(), s)
    torch.testing.assert_close(vc.cpu(), v)
    torch.testing.assert_close(gc.cpu(), g)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("kind", ["alif2", "recurrent", "recurrent-alif2"])
def test_cuda_adaptive_and_recurrent_match_cpu(kind):
    torch.manual_seed(0)
    if kind == "alif2":
        layer = est.ALIF(tau_m=10.0, tau_theta=(5.0, 50.0), d_theta=(0.3, 0.1), t_ref=1.0, trainable=True)
    else:
        adapt = dict(tau_theta=(5.0, 50.0), d_theta=(0.3, 0.1)) if kind == "recurrent-alif2" else {}
        layer = est.LIFRecurrent(33, 300, tau_m=10.0, tau_syn=4.0, trainable=True, **adapt)
        with torch.no_grad():
            layer.input_weights.mul_(3.0)
    layer = layer.double()
    x = (torch.randn(50, 4, 33, dtype=torch.float64) + 1.2)
    outs = []
    for dev in ("cpu", "cuda"):
        layer = layer.to(dev)
        xd = x.to(dev).requires_grad_()
        s, st, v = layer(xd, return_v=True)
        grads = torch.autograd.grad(s.sum() + v.sum(), [xd] + list(layer.parameters()))
        outs.append([s.cpu(), v.cpu()] + [g.cpu() for g in grads])
    assert outs[0][0].sum() > 0 and torch.equal(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1:], outs[1][1:]):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_family_layers_cuda_match_cpu(dtype):
    """LI and LIF(psc="alpha"): the generic family kernels on the GPU against the CPU ones."""
    for layer in (est.LI(tau_m=[4.0, 6.0, 9.0], tau_syn=3.0, trainable=True),
                  est.LIF(tau_m=[4.0, 6.0, 9.0], tau_syn=2.0, t_ref=1.0, psc="alpha", trainable=True)):
        layer = layer.to(dtype)
        x = (torch.randn(50, 4, 3, dtype=dtype) + 2.0).requires_grad_()
        y, st = layer(x)
        g = torch.autograd.grad(y.sum() + st.v.sum(), [x] + list(layer.parameters()))
        xc = x.detach().cuda().requires_grad_()
        yc, stc = layer.cuda()(xc)
        gc = torch.autograd.grad(yc.sum() + stc.v.sum(), [xc] + list(layer.parameters()))
        layer.cpu()
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
        if isinstance(layer, est.LIF):
            assert torch.equal(yc.cpu(), y) and y.sum() > 0
        else:
            torch.testing.assert_close(yc.cpu(), y, **tol)
        for a, b in zip(gc, g):
            torch.testing.assert_close(a.cpu(), b, **tol)
