"""Run under NUMBA_ENABLE_CUDASIM=1 (by test_cuda_sim.py): CUDA kernels vs the CPU kernels."""

import numpy as np
import torch

from eventsim.torch import _core, _cuda
from eventsim.torch import functional as F

F.SPECIALIZE = False
K = _cuda.kernels()
rng = np.random.default_rng(0)
T, B, N = 7, 2, 3
for integ, syn, reset, ref, adapt in [("exact", False, "value", 2, False), ("exact", True, "subtract", 0, True),
                                      ("euler", True, "value", 0, False), ("sinabs", False, "subtract", 0, False)]:
    for dtype in (np.float32, np.float64):
        tdt = torch.float32 if dtype == np.float32 else torch.float64
        spec = F.make_spec(integ, synapse=syn, reset=reset, adaptive=adapt, ref_steps=ref,
                           spike_fn="multi" if integ == "sinabs" else "single")
        nat, aff = F.coefficients(spec, N, 1.0, 4.0, 1.0, 0.0, 0.0, tau_syn=3.0 if syn else None,
                                  tau_theta=10.0, d_theta=0.3, dtype=tdt)
        x = torch.tensor(rng.standard_normal((T, B, N)) * 1.5 + 1.0, dtype=tdt, requires_grad=True)
        z = torch.zeros(B, N, dtype=tdt)
        r0 = torch.zeros(B, N, dtype=torch.int32)
        affp = aff.clone().requires_grad_()
        s, vT, iT, thT, rT, vtr = F._FeedForward.apply(x, z, z, z, affp, r0, nat, spec, True)
        gs = torch.tensor(rng.standard_normal((T, B, N)), dtype=tdt)
        gx_cpu, gaff_cpu = torch.autograd.grad((s * gs).sum() + vtr.sum(), (x, affp))
        cfg = spec.cfg(spec.ref_steps > 0)
        a = lambda t: t.detach().numpy().copy()  # noqa: E731
        sp, vt, o1, o2, o3 = (np.zeros((T, B, N), dtype), np.zeros((T, B, N), dtype), np.zeros((B, N), dtype),
                              np.zeros((B, N), dtype), np.zeros((B, N), dtype))
        orr = np.zeros((B, N), np.int32)
        zero, one, ninf = _cuda._consts(dtype)
        K["ff_forward"][1, 32](a(x), a(z), a(z), a(r0), a(z), a(nat), cfg, sp, vt, o1, o2, orr, o3, zero, one, ninf)
        assert np.array_equal(sp, a(s)), (integ, dtype, sp, a(s))
        # the simulator evaluates scalars in Python/NumPy: float32 may differ in the last bit
        np.testing.assert_allclose(vt, a(vtr), rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-7)
        gx = np.zeros((T, B, N), dtype)
        dpar = np.zeros((_core.N_AFF, B, N), dtype)
        e3 = np.zeros((0, 0, 0), dtype)
        scratch = [np.zeros((T, B, N), dtype), np.zeros((T, B, N), dtype),
                   np.zeros((T, B, N) if adapt else (0, 0, 0), dtype),
                   np.zeros((T, B, N) if ref else (0, 0, 0), np.int8),
                   np.zeros((T, B, N) if syn else (0, 0, 0), dtype)]
        g0 = [np.zeros((B, N), dtype) for _ in range(3)]
        K["ff_backward"][1, 32](a(x), a(z), a(z), a(r0), a(z), a(nat), a(aff), cfg, spec.alpha, a(gs),
                                np.ones((T, B, N), dtype), np.zeros((B, N), dtype), np.zeros((B, N), dtype),
                                np.zeros((B, N), dtype), gx, *g0, dpar, *scratch, zero, one, ninf)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(gx, a(gx_cpu), rtol=tol, atol=tol)
        np.testing.assert_allclose(dpar.sum(1), a(gaff_cpu), rtol=tol, atol=tol * 10)
print("CUDASIM OK")
