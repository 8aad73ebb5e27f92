"""CUDA kernels: under the Numba CUDA simulator (CI), and on a real GPU when there is one."""

import os
import subprocess
import sys

import pytest
import torch

import eventsim.torch as est

HERE = os.path.dirname(os.path.abspath(__file__))


def test_cuda_kernels_in_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
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
