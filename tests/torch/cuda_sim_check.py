"""Run under NUMBA_ENABLE_CUDASIM=1 (by test_cuda_sim.py): the CUDA kernels against the CPU kernels.

Every layer kind runs forward and backward through the real CUDA launchers
of :mod:`eventsim.torch._cuda` on a tensor that claims to be on a CUDA device
(the simulator executes the kernels on NumPy views of the torch tensors):
feed-forward layers of every integrator, adaptive layers with several
threshold components, and ``LIFRecurrent`` (one block per batch row, a
barrier per step), with trainable parameters.  Spikes must equal the CPU
kernels'; membranes, final states and every gradient (input, parameters,
recurrent weights) must agree to rounding (the simulator evaluates float32
scalars in NumPy, which can differ from the compiled code in the last bit).
"""

import numpy as np
import torch

from eventsim import config

config.CUDA_THREADS_PER_BLOCK = 32  # small blocks: the simulator runs each thread as a Python thread

import eventsim.torch as est  # noqa: E402
from eventsim.torch import _cuda  # noqa: E402
from eventsim.torch import functional as F  # noqa: E402

F.SPECIALIZE = False


class OnDevice(torch.Tensor):
    """A CPU tensor that the layer code takes for a CUDA tensor (``x.is_cuda``)."""

    @property
    def is_cuda(self):
        return True


def _views(tensors):  # as _cuda._dev, with NumPy views of the tensors' storage instead of CUDA views
    return [t.detach().as_subclass(torch.Tensor).numpy() if isinstance(t, torch.Tensor) else t for t in tensors], 0


_cuda._dev = _views
launches = {"ff_forward": 0, "ff_backward": 0, "rec_forward": 0, "rec_backward": 0, "family_forward": 0,
            "family_backward": 0}
_kernels = _cuda.kernels()


class _Count(dict):
    def __getitem__(self, name):
        launches[name] += 1
        return _kernels[name]


_cuda.kernels = lambda: _Count()

LAYERS = [
    ("LIF", dict(tau_m=4.0, t_ref=2.0, v_reset=-0.2, trainable=True)),
    ("LIF", dict(tau_m=4.0, tau_syn=3.0, reset="subtract", trainable=True)),
    ("ALIF", dict(tau_m=4.0, tau_syn=3.0, t_ref=1.0, reset="subtract", tau_theta=(3.0, 20.0),
                  d_theta=(0.3, 0.1), trainable=True)),
    ("LIF", dict(tau_m=4.0, tau_syn=3.0, integrator="euler", trainable=True)),
    ("LIF", dict(tau_m=4.0, integrator="snntorch", reset="subtract")),
    ("LIF", dict(tau_m=4.0, integrator="spikingjelly")),
    ("LIF", dict(tau_m=4.0, integrator="sinabs", reset="subtract")),
    ("IF", dict(t_ref=1.0)),
    ("LIFRecurrent", dict(input_size=3, hidden_size=5, tau_m=4.0, t_ref=1.0, v_reset=-0.1, trainable=True)),
    ("LIFRecurrent", dict(input_size=3, hidden_size=5, tau_m=4.0, tau_syn=2.0, reset="subtract",
                          tau_theta=(3.0, 15.0), d_theta=(0.2, 0.1), trainable=True)),
]
T, B = 7, 2
rng = np.random.default_rng(0)
for kind, kw in LAYERS:
    for dtype in (torch.float64, torch.float32):
        torch.manual_seed(0)
        layer = getattr(est, kind)(**kw).to(dtype)
        recurrent = kind == "LIFRecurrent"
        if recurrent:
            with torch.no_grad():
                layer.input_weights.mul_(3.0)
                layer.recurrent_weights.mul_(2.0)
        n_in = 3 if recurrent else 5
        x = torch.tensor(rng.standard_normal((T, B, n_in)) * 1.5 + 2.5, dtype=dtype)
        w = torch.tensor(rng.standard_normal((T, B, 5)), dtype=dtype)
        params = list(layer.parameters())
        out = {}
        for where, xin in (("cpu", x.clone()), ("cuda", x.clone().as_subclass(OnDevice))):
            xin.requires_grad_()
            s, st, v = layer(xin, return_v=True)
            loss = (s * w).sum() + v.sum() + st.v.sum()
            if st.theta is not None:
                loss = loss + st.theta.sum()
            grads = torch.autograd.grad(loss, [xin] + params)
            plain = lambda t: t.detach().as_subclass(torch.Tensor)  # noqa: E731
            out[where] = [plain(s), plain(v), plain(st.v)] + [plain(g) for g in grads]
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
        a, b = out["cpu"], out["cuda"]
        assert a[0].sum() > 0, (kind, kw)
        assert torch.equal(a[0], b[0]), (kind, kw, dtype, "spikes")
        for name, p, q in zip(["v", "vT", "grad x"] + [f"grad {n}" for n, _ in layer.named_parameters()], a[1:],
                              b[1:]):
            torch.testing.assert_close(q, p, **tol, msg=f"{kind} {kw} {dtype}: {name}")
# every forward and backward went through the CUDA launchers
n_rec = 2 * sum(k == "LIFRecurrent" for k, _ in LAYERS)
n_ff = 2 * len(LAYERS) - n_rec
assert launches == dict(ff_forward=n_ff, ff_backward=n_ff, rec_forward=n_rec, rec_backward=n_rec, family_forward=0,
                       family_backward=0), launches

# the leaky-integrator readout (a family run through its own torch declaration): the generic family kernels
# against the CPU ones, and exact gradients (gradcheck in float64, tiny input) through the CUDA kernels
for tau_syn in (None, 3.0):
    for dtype in (torch.float64, torch.float32):
        layer = est.LI(tau_m=[4.0, 6.0, 9.0], v_rest=0.3, tau_syn=tau_syn, trainable=True).to(dtype)
        x = torch.tensor(rng.standard_normal((T, B, 3)), dtype=dtype)
        out = {}
        for where, xin in (("cpu", x.clone()), ("cuda", x.clone().as_subclass(OnDevice))):
            xin.requires_grad_()
            v, st = layer(xin)
            grads = torch.autograd.grad((v * v).sum() + st.v.sum() + st.i.sum(), [xin] + list(layer.parameters()))
            out[where] = [t.detach().as_subclass(torch.Tensor) for t in (v, st.v, st.i) + grads]
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
        for p, q in zip(out["cpu"], out["cuda"]):
            torch.testing.assert_close(q, p, **tol, msg=f"LI tau_syn={tau_syn} {dtype}")
    xg = torch.randn(4, 1, 2, dtype=torch.float64).as_subclass(OnDevice).requires_grad_()
    tm = torch.tensor([3.0, 7.0], dtype=torch.float64, requires_grad=True)
    vr = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    ts = None if tau_syn is None else torch.tensor([2.0, 7.0], dtype=torch.float64, requires_grad=True)

    def li_cuda(x, tm, vr, *rest):
        v, st = est.functional.li(x, tau_m=tm, v_rest=vr, tau_syn=rest[0] if rest else None, dt=0.5)
        return v, st.v, st.i

    assert torch.autograd.gradcheck(li_cuda, (xg, tm, vr) + (() if ts is None else (ts,)))

# LIF with alpha-shaped currents (the iaf_psc_alpha family's torch declaration): spikes equal, gradients to rounding
for dtype in (torch.float64, torch.float32):
    for reset in ("value", "subtract"):
        layer = est.LIF(tau_m=[4.0, 6.0, 9.0], tau_syn=2.0, t_ref=1.0, reset=reset, psc="alpha",
                        trainable=True).to(dtype)
        x = torch.tensor(rng.standard_normal((T, B, 3)) * 2.0 + 3.0, dtype=dtype)
        out = {}
        for where, xin in (("cpu", x.clone()), ("cuda", x.clone().as_subclass(OnDevice))):
            xin.requires_grad_()
            s, st = layer(xin)
            grads = torch.autograd.grad(s.sum() + st.v.sum() + st.i.sum(), [xin] + list(layer.parameters()))
            out[where] = [t.detach().as_subclass(torch.Tensor) for t in (s, st.v, st.di, st.i) + grads]
        assert out["cpu"][0].sum() > 0 and torch.equal(out["cpu"][0], out["cuda"][0]), (reset, dtype)
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
        for p, q in zip(out["cpu"][1:], out["cuda"][1:]):
            torch.testing.assert_close(q, p, **tol, msg=f"LIF psc='alpha' reset={reset} {dtype}")
assert launches["family_forward"] > 8 and launches["family_backward"] > 8, launches
print("CUDASIM OK")
