"""The perfect integrator (es.Integrator): a family added in one module (eventsim/models/integrator.py) and run,
with no change to their files, by the clock engine, the event engine, the CUDA simulator, checkpoints and the
torch bridge."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import eventsim as es
from eventsim.models.integrator import INTEGRATOR_FAMILY, propagator

EXP = dict(c_m=200.0, tau_syn_ex=2.0, tau_syn_in=5.0)


def test_parameters_are_validated():
    assert es.Integrator().synapse == "delta" and es.Integrator(**EXP).synapse == "exp"
    assert es.Integrator(**EXP).state_names == ("v", "i_ex", "i_in")
    with pytest.raises(ValueError, match="c_m"):
        es.Integrator(c_m=0.0)
    with pytest.raises(ValueError, match="tau_syn_in"):
        es.Integrator(tau_syn_ex=1.0, tau_syn_in=-1.0)
    with pytest.raises(ValueError, match="both be None"):
        es.Integrator(tau_syn_ex=2.0)
    with pytest.raises(TypeError, match="no leak"):
        es.Integrator(tau_m=10.0)


def test_propagator_is_the_closed_form_for_any_step():
    for h in (0.01, 0.1, 3.7, 250.0):
        g, p_ve, p_vn, p_ee, p_nn = propagator(h, 200.0, 2.0, 5.0)
        assert g == h / 200.0
        assert np.isclose(p_ve, 2.0 * (1 - np.exp(-h / 2.0)) / 200.0, rtol=1e-15)
        assert np.isclose(p_vn, 5.0 * (1 - np.exp(-h / 5.0)) / 200.0, rtol=1e-15)
        assert p_ee == np.exp(-h / 2.0) and p_nn == np.exp(-h / 5.0)
    # composition: two steps of h equal one of 2h (no leak: exact up to rounding)
    a = propagator(0.3, 200.0, 2.0, 5.0)
    b = propagator(0.6, 200.0, 2.0, 5.0)
    assert np.isclose(a[1] + a[3] * a[1], b[1], rtol=1e-14) and np.isclose(a[3] * a[3], b[3], rtol=1e-14)


def _clock_and_event(model, weights, delays, i_e=(0.0, 40.0), t=30.0):
    out = []
    for engine in ("clock", "event"):
        net = es.Network(dt=0.1, engine=engine)
        pop = net.population(2, es.Integrator(**{**model, "i_e": list(i_e)}), v_init=[0.0, -5.0])
        stim = net.spike_source(senders=[0, 1, 0, 1, 0], times=[1.0, 2.5, 3.0, 7.2, 12.0])
        net.connect(stim, pop, es.FromArrays(pre=[0, 1, 0, 1], post=[0, 0, 1, 1]), weight=weights, delay=delays)
        v = net.record_state(pop, "v")
        sp = net.record_spikes(pop)
        net.run(t)
        out.append((v.times.copy(), v.values.copy(), len(sp)))
    return out


def test_exp_synapses_integrate_every_charge_exactly():
    """Each input of w pA adds its whole charge w tau_syn / C_m (mV) to v, and i_e / C_m per ms: after the
    currents have decayed v is the closed form, in both engines; they agree at every sample; no spike."""
    weights, delays = [400.0, -250.0, 300.0, 90.0], [1.0, 0.5, 2.0, 1.0]
    (tc, vc, nc), (te, ve, ne) = _clock_and_event(EXP, weights, delays, t=200.0)
    assert nc == ne == 0 and np.array_equal(tc, te)
    assert np.allclose(vc, ve, rtol=0, atol=1e-9)
    # sender 0 fires 3 times, sender 1 twice
    charge0 = (3 * 400.0 * 2.0 - 2 * 250.0 * 5.0) / 200.0
    charge1 = (3 * 300.0 * 2.0 + 2 * 90.0 * 2.0) / 200.0
    end = tc[-1]
    assert np.isclose(vc[-1, 0], charge0, rtol=0, atol=1e-9)
    assert np.isclose(vc[-1, 1], -5.0 + charge1 + 40.0 / 200.0 * end, rtol=0, atol=1e-9)


def test_delta_synapses_jump_v():
    weights, delays = [1.5, -0.25, 3.0, 0.5], [1.0, 0.5, 2.0, 1.0]
    (tc, vc, nc), (te, ve, ne) = _clock_and_event(dict(c_m=100.0), weights, delays, i_e=(0.0, 0.0))
    assert nc == ne == 0
    assert np.allclose(vc, ve, rtol=0, atol=1e-12)
    assert vc[-1, 0] == 3 * 1.5 - 2 * 0.25 and vc[-1, 1] == -5.0 + 3 * 3.0 + 2 * 0.5
    # nothing before the first arrival (t = 2.0 ms), the first jump from the sample at 2.0 on
    assert np.all(vc[tc < 2.0 - 1e-9, 0] == 0.0) and vc[np.argmin(np.abs(tc - 2.1)), 0] == 1.5


SCRIPT = r"""
import numpy as np, eventsim as es
res = []
for backend in ("cpu", "cuda"):
    net = es.Network(dt=0.1, seed=2, backend=backend)
    drive = net.population(3, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=2.0, i_e=600.0))
    acc = net.population(4, es.Integrator(c_m=200.0, i_e=10.0, tau_syn_ex=2.0, tau_syn_in=3.0))
    net.connect(drive, acc, es.AllToAll(), weight=es.Normal(50.0, 20.0), delay=1.5)
    net.connect(net.poisson(4, rate=2000.0), acc, es.OneToOne(), weight=-30.0, delay=0.1)
    v = net.record_state(acc, "v"); sp = net.record_spikes(acc); dsp = net.record_spikes(drive)
    net.run(20.0)
    res.append((v.values.copy(), len(sp), dsp.senders.copy()))
assert np.array_equal(res[0][0], res[1][0]) and np.array_equal(res[0][2], res[1][2])
assert res[0][1] == res[1][1] == 0 and res[0][2].size > 0 and np.ptp(res[0][0]) > 1.0
print("ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda not installed")
def test_cuda_simulator_equals_the_cpu():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout + out.stderr[-3000:]


def test_checkpoint_resumes_bit_for_bit(tmp_path):
    def build():
        net = es.Network(dt=0.1, seed=4)
        drive = net.population(3, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=2.0, i_e=500.0))
        acc = net.population(2, es.Integrator(**EXP))
        net.connect(drive, acc, es.AllToAll(), weight=es.Normal(50.0, 20.0), delay=1.5)
        return net, net.record_state(acc, "v")

    net, v = build()
    net.run(30.0)
    net.save(str(tmp_path / "acc.ckpt"))
    net.run(30.0)
    other = es.Network.load(str(tmp_path / "acc.ckpt"))
    assert type(other.populations[1].model) is es.Integrator
    other.run(30.0)
    v2 = [r for r in other.recorders if isinstance(r, es.StateRecorder)][0]
    assert np.array_equal(v.values, v2.values) and np.ptp(v.values) > 0.5


@pytest.mark.parametrize("engine", ["clock", "event"])
def test_parameters_set_between_runs_continue_as_built_with_them(engine):
    """``set(c_m=..., i_e=...)`` between runs recomputes the propagator: from then on the network equals one
    built with the new values whose state is set to the same point; a refused value changes nothing."""
    times = np.sort(np.random.default_rng(5).integers(0, 390, 60)) * 0.1  # on the grid (the clock engine)

    def build(**model):
        net = es.Network(dt=0.1, seed=2, engine=engine)
        acc = net.population(2, es.Integrator(**{**EXP, **model}))
        src = net.spike_source(senders=np.arange(times.size) % 3, times=times)
        net.connect(src, acc, es.AllToAll(), weight=es.Normal(0.0, 80.0), delay=1.0)
        return net, acc, net.record_state(acc, "v", interval=0.5)

    net, acc, v = build(i_e=10.0)
    net.run(20.0)
    state = {k: acc.get(k) for k in ("v", "i_ex", "i_in")}
    with pytest.raises(ValueError, match="c_m"):
        acc.set(c_m=-1.0, i_e=0.0)
    assert np.array_equal(acc.get("i_e"), [10.0, 10.0]) and np.array_equal(acc.get("c_m"), [200.0, 200.0])
    acc.set(c_m=[100.0, 400.0], i_e=-30.0)
    net.run(20.0)

    ref, racc, rv = build(c_m=[100.0, 400.0], i_e=-30.0)
    ref.run(20.0)
    racc.set(**state)
    ref.run(20.0)
    after = v.values.shape[0] // 2
    assert v.values.shape == rv.values.shape and after >= 39
    assert np.array_equal(v.values[after:], rv.values[after:])
    same, _, sv = build(i_e=10.0)
    same.run(40.0)
    assert np.array_equal(v.values[:after], sv.values[:after])
    assert np.abs(v.values[after + 1:] - sv.values[after + 1:]).min() > 0.01  # the change took effect


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("tau_syn", [None, 3.0], ids=["delta", "exp"])
def test_torch_layer_gradcheck_and_constant_input(tau_syn):
    """Through the bridge's generic family layer: exact gradients (float64 gradcheck on the input, the initial
    state and the parameters), and a constant input x adds x to v every step once the current has settled."""
    from eventsim.torch import functional as F

    def run(x, r, ts):
        rows = F.family_coefficients(INTEGRATOR_FAMILY, 3, 0.5, dtype=torch.float64, r=r, tau_syn=ts)
        y, _ = F.family_layer(x, None, rows, INTEGRATOR_FAMILY, init={"v": 0.0})
        return y

    x = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    r = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    ts = None if tau_syn is None else torch.tensor([tau_syn, 1.0, 7.0], dtype=torch.float64, requires_grad=True)
    args = (x, r) if ts is None else (x, r, ts)
    assert torch.autograd.gradcheck(lambda *a: run(*a, None) if ts is None else run(*a), args)
    const = torch.ones(400, 1, 3, dtype=torch.float64)
    y = run(const, torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64),
            None if ts is None else ts.detach())
    steps = (y[-1, 0] - y[-2, 0]).numpy()
    assert np.allclose(steps, [1.0, 0.5, 2.0], rtol=1e-9)


def test_torch_family_coefficients_validate_the_parameters():
    """The functional API checks the declaration's rules: finite values, time constants > 0, one value or
    one per neuron, dt > 0; each message names the argument."""
    from eventsim.torch import functional as F

    ok = F.family_coefficients(INTEGRATOR_FAMILY, 2, 0.1, r=1.0, tau_syn=2.0)
    assert ok.shape == (len(INTEGRATOR_FAMILY.torch.rows), 2) and bool(torch.isfinite(ok).all())
    for kw, match in [(dict(r=float("nan")), "r"), (dict(r=[1.0, float("inf")]), "r"),
                      (dict(r=1.0, tau_syn=0.0), "tau_syn"), (dict(r=1.0, tau_syn=torch.tensor([2.0, -1.0])), "tau_syn"),
                      (dict(r=[1.0, 2.0, 3.0]), "r has 3 values")]:
        with pytest.raises(ValueError, match=match):
            F.family_coefficients(INTEGRATOR_FAMILY, 2, 0.1, **kw)
    with pytest.raises(ValueError, match="dt"):
        F.family_coefficients(INTEGRATOR_FAMILY, 2, 0.0, r=1.0)
    with pytest.raises(TypeError, match="unexpected parameters"):
        F.family_coefficients(INTEGRATOR_FAMILY, 2, 0.1, r=1.0, tau_m=3.0)


def test_torch_layer_exports_to_the_clock_engine():
    """The family's torch model: the layer's v equals the clock engine's (delta and current input), for the
    input spikes of a source population fed through the exported gains."""
    from eventsim.torch import functional as F

    decl = INTEGRATOR_FAMILY.torch
    dt, T = 0.1, 80
    rng = np.random.default_rng(3)
    spikes = (rng.random((T, 4)) < 0.2).astype(np.float64)
    W = rng.normal(0.0, 1.0, (2, 4))
    for tau_syn in (None, np.array([2.0, 4.0])):
        r = np.array([1.0, 0.7])
        rows = F.family_coefficients(INTEGRATOR_FAMILY, 2, dt, dtype=torch.float64, r=r, tau_syn=tau_syn)
        x = torch.as_tensor(spikes @ W.T)[:, None, :]
        y, _ = F.family_layer(x, None, rows, INTEGRATOR_FAMILY, init={"v": 0.0})
        model, gain = decl.model(dt, r=r, tau_syn=tau_syn)
        net = es.Network(dt=dt)
        steps, senders = np.nonzero(spikes)
        src = net.spike_source(senders=senders, times=steps * dt)  # stamped at step k: arrives at step k + 1
        pop = net.population(2, model)
        post, pre = np.meshgrid(np.arange(2), np.arange(4), indexing="ij")
        net.connect(src, pop, es.FromArrays(pre=pre.ravel(), post=post.ravel()),
                    weight=(W * gain[:, None]).ravel(), delay=dt)
        v = net.record_state(pop, "v")
        net.run((T + 1) * dt)
        # the simulator's k-th sample is the state after the step that took the input of step k
        sim = v.values[:T]
        assert np.allclose(sim, y[:, 0].numpy(), rtol=0, atol=1e-10), np.abs(sim - y[:, 0].numpy()).max()
