"""Alpha-shaped current synapses in the clock engine (es.LIF / es.IF / es.ALIF with psc="alpha", the
iaf_psc_alpha family of eventsim/models/psc_alpha.py): PSP and PSC against their closed forms (the checks of
NEST's test_iaf_psp, test_iaf_psp_peak and test_iaf_psp_normalized), validation, live changes, run splits,
checkpoints, threads, float32 and the CUDA simulator.  NEST's own networks: tests/test_nest_differential.py;
every reset rule and v_min: tests/test_naive_reference.py."""

import importlib.util
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import lambertw

import eventsim as es
from eventsim.models.psc_alpha import alpha_initial, alpha_propagators

TAU_M, C_M, V_REST = 10.0, 250.0, -70.0


def _psp(t, w, tau_m, tau_s, c_m):
    """Closed-form PSP (mV) of one alpha current of peak w pA, t ms after its start (array)."""
    t = np.asarray(t, np.float64)
    if tau_m == tau_s:
        return w * math.e * t * t * np.exp(-t / tau_s) / (2.0 * tau_s * c_m)
    a = 1.0 / tau_m - 1.0 / tau_s
    return w * math.e / (tau_s * c_m) * np.exp(-t / tau_m) * (t * np.exp(a * t) / a - np.expm1(a * t) / a ** 2)


def _t_max(tau_m, tau_s):
    """Time (ms) of the PSP's peak: the root u != 0 of (tau_m / tau_s) u = 1 - e^{-u}, u = a t, by Lambert's W."""
    if tau_m == tau_s:
        return 2.0 * tau_s
    r = tau_m / tau_s
    a = 1.0 / tau_m - 1.0 / tau_s
    for k in (0, -1):
        x = -lambertw(-math.exp(-1.0 / r) / r, k).real
        if abs(x - 1.0 / r) > 1e-9:
            return (1.0 / r - x) / a
    raise AssertionError("no peak")


def _single(w, tau_s, dt=0.1, t_sim=60.0, arrival=1.0, model=None, **kw):
    """One neuron that never spikes, one input of weight w pA reaching it at ``arrival`` ms."""
    net = es.Network(dt=dt, **kw)
    model = model or es.LIF(tau_m=TAU_M, c_m=C_M, v_rest=V_REST, v_th=1e9, v_reset=V_REST, t_ref=0.0,
                            tau_syn_ex=tau_s, tau_syn_in=tau_s, psc="alpha")
    pop = net.population(1, model, v_init=V_REST)
    net.connect(net.spike_source(senders=[0], times=[arrival - dt]), pop, es.AllToAll(), weight=w, delay=dt)
    recs = {name: net.record_state(pop, name) for name in ("v", "i_ex", "i_in", "di_ex", "di_in")}
    net.run(t_sim)
    return net, {name: r.values[:, 0].copy() for name, r in recs.items()}, recs["v"].times.copy()


# ---------------------------------------------------------------- closed forms
@pytest.mark.parametrize("tau_s", [2.0, 0.5, 8.0, TAU_M], ids=["2", "0.5", "8", "equal"])
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["ex", "in"])
def test_psp_and_psc_are_the_closed_forms(tau_s, sign):
    """NEST's test_iaf_psp: the current of one input of weight w is w (t/tau) e^{1 - t/tau} from its arrival,
    the PSP the closed form from the next step on (tau_m == tau_syn: w e t^2 e^{-t/tau} / (2 tau C)), the
    other receptor untouched; the sign of the weight picks the receptor."""
    w = 800.0 * sign
    _, rec, t = _single(w, tau_s)
    s = t - 1.0
    i = w * np.where(s >= 0, s / tau_s * np.exp(1.0 - s / tau_s), 0.0)
    port, other = ("i_ex", "i_in") if sign > 0 else ("i_in", "i_ex")
    np.testing.assert_allclose(rec[port], i, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rec["d" + port], np.where(s >= 0, w * math.e / tau_s * np.exp(-s / tau_s), 0.0),
                               rtol=1e-12, atol=1e-12)
    assert not rec[other].any() and not rec["d" + other].any()
    np.testing.assert_allclose(rec["v"] - V_REST, np.where(s >= 0, _psp(np.maximum(s, 0), w, TAU_M, tau_s, C_M), 0),
                               rtol=1e-11, atol=1e-12)
    assert abs(rec["v"] - V_REST).max() > 0.1
    if tau_s * 10 == round(tau_s * 10):  # the current's peak, on the grid: w at t = tau_s
        assert rec[port][int(round((1.0 + tau_s) / 0.1)) - 1] == pytest.approx(w, rel=1e-13)
        assert np.argmax(abs(rec[port])) == int(round((1.0 + tau_s) / 0.1)) - 1


@pytest.mark.parametrize("tau_s", [2.0, 0.5, 8.0, TAU_M], ids=["2", "0.5", "8", "equal"])
def test_psp_peak_time_and_value(tau_s):
    """NEST's test_iaf_psp_peak: the PSP peaks at t_max (Lambert's W; 2 tau when tau_m == tau_syn) with the
    closed form's value; the samples' maximum is at a grid point next to t_max, and with tau_m == tau_syn
    (t_max on the grid) it is the closed-form peak 2 w tau / (e C_m)."""
    w = 500.0
    t_max = _t_max(TAU_M, tau_s)
    # t_max is a stationary point of the closed form
    h = 1e-5
    assert abs(_psp(t_max + h, w, TAU_M, tau_s, C_M) - _psp(t_max - h, w, TAU_M, tau_s, C_M)) < 1e-12
    assert _psp(t_max, w, TAU_M, tau_s, C_M) > _psp(t_max + 0.3, w, TAU_M, tau_s, C_M)
    _, rec, t = _single(w, tau_s)
    k = int(np.argmax(rec["v"]))
    assert abs((t[k] - 1.0) - t_max) <= 0.1 + 1e-12
    peak = _psp(t_max, w, TAU_M, tau_s, C_M)
    assert rec["v"][k] - V_REST <= peak + 1e-12
    if tau_s == TAU_M:
        assert t[k] - 1.0 == pytest.approx(2.0 * TAU_M, abs=1e-9)
        assert rec["v"][k] - V_REST == pytest.approx(2.0 * w * TAU_M / (math.e * C_M), rel=1e-12)
        assert peak == pytest.approx(2.0 * w * TAU_M / (math.e * C_M), rel=1e-14)


@pytest.mark.parametrize("tau_s", [2.0, 0.5, TAU_M], ids=["2", "0.5", "equal"])
def test_psp_normalized_to_one_millivolt(tau_s):
    """NEST's test_iaf_psp_normalized: the weight w = 1 mV / (PSP peak per pA) gives a PSP peaking at 1 mV
    (sampled at dt = 0.01 ms: the samples' maximum is within the curvature over half a step of 1 mV)."""
    per_pa = _psp(_t_max(TAU_M, tau_s), 1.0, TAU_M, tau_s, C_M)
    _, rec, _ = _single(1.0 / per_pa, tau_s, dt=0.01, t_sim=40.0)
    assert rec["v"].max() - V_REST == pytest.approx(1.0, abs=5e-6)
    assert rec["v"].max() - V_REST <= 1.0 + 1e-12


def test_if_neuron_integrates_the_charge():
    """es.IF with alpha synapses: no leak, so the PSP tends to the charge over C_m, e tau_s w / C_m."""
    w, tau_s = 300.0, 2.0
    model = es.IF(c_m=C_M, v_rest=V_REST, v_th=1e9, v_reset=V_REST, t_ref=0.0, tau_syn_ex=tau_s, tau_syn_in=tau_s,
                  psc="alpha")
    _, rec, t = _single(w, tau_s, model=model, t_sim=120.0)
    s = np.maximum(t - 1.0, 0.0)
    charge = w * math.e * tau_s * (1.0 - np.exp(-s / tau_s) * (1.0 + s / tau_s))  # int_0^s of the current (fC)
    np.testing.assert_allclose(rec["v"] - V_REST, charge / C_M, rtol=1e-11, atol=1e-12)
    assert rec["v"][-1] - V_REST == pytest.approx(math.e * tau_s * w / C_M, rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(tau_m=st.floats(1.0, 50.0), ratio=st.sampled_from([1.0, 1.0 + 1e-12, 1.0 - 1e-9, 1.0 + 1e-6, 0.05, 0.3, 2.0]),
       c_m=st.floats(10.0, 1000.0), w=st.floats(-2000.0, 2000.0), dt=st.sampled_from([0.05, 0.1, 0.25]))
def test_psp_is_the_closed_form_for_any_time_constants(tau_m, ratio, c_m, w, dt):
    """Random tau_m, tau_syn (equal, within 1e-12 or 1e-6 of each other, or far apart), C_m, w and dt: the
    engine's PSP equals the closed form evaluated in 40-digit arithmetic (tests/test_psc_alpha_math.py)."""
    from test_psc_alpha_math import _psp as exact_psp

    tau_s = tau_m * ratio
    net = es.Network(dt=dt)
    pop = net.population(1, es.LIF(tau_m=tau_m, c_m=c_m, v_rest=V_REST, v_th=1e9, v_reset=V_REST, t_ref=0.0,
                                   tau_syn_ex=tau_s, tau_syn_in=tau_s, psc="alpha"), v_init=V_REST)
    net.connect(net.spike_source(senders=[0], times=[0.0]), pop, es.AllToAll(), weight=w, delay=dt)
    rec = net.record_state(pop, "v")
    net.run(40 * dt)
    s = rec.times - dt  # the current starts at the end of the first step
    expect = [0.0] + [exact_psp(t, tau_m, tau_s, c_m, w) if tau_s != tau_m else float(_psp(t, w, tau_m, tau_s, c_m))
                      for t in s[1:]]
    np.testing.assert_allclose(rec.values[:, 0] - V_REST, expect, rtol=1e-10, atol=1e-11)


# ---------------------------------------------------------------- validation and refusals
def test_psc_is_validated():
    assert es.LIF(tau_syn_ex=2.0, tau_syn_in=3.0, psc="alpha").synapse == "alpha"
    assert es.LIF(tau_syn_ex=2.0, tau_syn_in=3.0).synapse == "exp" and es.LIF().synapse == "delta"
    assert es.ALIF(tau_syn_ex=2.0, tau_syn_in=3.0, psc="alpha").state_names == (
        "v", "i_ex", "i_in", "di_ex", "di_in", "theta", "v_th")
    assert es.IF(tau_syn_ex=2.0, tau_syn_in=3.0, psc="alpha").family.name == "iaf_psc_alpha"
    for bad in ("beta", "Alpha", 1, None):
        with pytest.raises(ValueError, match="psc="):
            es.LIF(tau_syn_ex=2.0, tau_syn_in=3.0, psc=bad)
    for cls in (es.LIF, es.IF, es.ALIF):
        with pytest.raises(ValueError, match="psc='alpha' needs the synaptic time constants"):
            cls(psc="alpha")
    with pytest.raises(ValueError, match="tau_syn_ex"):
        es.LIF(tau_syn_ex=0.0, tau_syn_in=3.0, psc="alpha")
    # psc is keyword-only: the other parameters keep their positions
    assert es.LIF(100.0).c_m == 100.0


def test_the_event_engine_takes_alpha_and_nir_refuses_it():
    """The event engine runs alpha synapses (tests/test_event_alpha.py); NIR has no alpha-shaped synapse."""
    model = es.LIF(tau_syn_ex=2.0, tau_syn_in=3.0, psc="alpha")
    net = es.Network(engine="event")
    assert net.population(2, model).model.psc == "alpha"
    pop = net.population(2, es.LIF(tau_syn_ex=2.0, tau_syn_in=3.0))
    pop.set(psc="alpha")  # before the first run: the population simply is alpha
    assert pop.model.psc == "alpha"
    clock = es.Network()
    clock.population(2, model)
    pytest.importorskip("nir")
    from eventsim.nir import to_nir

    with pytest.raises(ValueError, match="psc='alpha'"):
        to_nir(clock)


def test_psc_cannot_change_after_a_run():
    net = es.Network()
    pop = net.population(2, es.LIF(tau_syn_ex=2.0, tau_syn_in=3.0))
    pop.set(psc="alpha")  # before the first run: the population simply is alpha
    assert pop.model.synapse == "alpha"
    net.run(1.0)
    with pytest.raises(ValueError, match="psc"):
        pop.set(psc="exp")
    assert pop.model.psc == "alpha"


# ---------------------------------------------------------------- the engine's promises
def _network(seed=3, dtype="float64", backend="cpu"):
    net = es.Network(dt=0.1, seed=seed, dtype=dtype, backend=backend)
    lif = es.LIF(tau_m=10.0, c_m=250.0, v_rest=-65.0, v_th=-50.0, v_reset=-70.0, t_ref=2.0, tau_syn_ex=0.5,
                 tau_syn_in=[2.0, 10.0] * 20, psc="alpha", i_e=100.0)
    alif = es.ALIF(tau_m=15.0, c_m=200.0, v_rest=-65.0, v_th=-52.0, v_reset=-68.0, t_ref=1.0, tau_syn_ex=15.0,
                   tau_syn_in=3.0, psc="alpha", tau_theta=(30.0,), d_theta=(2.0,), reset="subtract", v_min=-75.0)
    exp = es.LIF(tau_m=20.0, c_m=250.0, v_rest=-65.0, v_th=-50.0, v_reset=-65.0, t_ref=2.0, tau_syn_ex=2.0,
                 tau_syn_in=5.0)
    a = net.population(40, lif, v_init=es.Uniform(-70.0, -50.0))
    b = net.population(20, alif, v_init=es.Uniform(-70.0, -52.0))
    c = net.population(20, exp, v_init=es.Uniform(-70.0, -50.0))
    allp = a | b | c
    net.connect(allp, allp, es.FixedProbability(0.15), weight=es.Normal(60.0, 20.0), delay=es.Uniform(0.5, 3.0))
    net.connect(b | c, allp, es.FixedProbability(0.1), weight=-150.0, delay=0.8)
    noise = net.poisson(80, rate=6000.0)
    net.connect(noise, allp, es.OneToOne(), weight=45.0, delay=0.1)
    sp = net.record_spikes(allp)
    vm = net.record_state(a[:5] | b[:5], "v")
    di = net.record_state(a[:5] | b[:5], "di_in")
    return net, sp, vm, di


def _result(net, sp, vm, di):
    st = net._plan.state
    return [sp.steps.copy(), sp.senders.copy(), vm.values.copy(), di.values.copy(), np.asarray(st.v).copy(),
            np.asarray(st.x).copy(), np.asarray(st.i_ex).copy(), np.asarray(st.theta).copy()]


def _same(r1, r2):
    return all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(r1, r2))


def test_network_spikes_and_run_splits_are_exact():
    """A mixed network (LIF and ALIF with alpha synapses beside LIF with exponential ones): it spikes, and
    run(T1); run(T2) equals run(T1 + T2) bit for bit."""
    whole = _network()
    whole[0].run(100.0)
    split = _network()
    split[0].run(37.3)
    split[0].run(0.1)
    split[0].run(62.6)
    r1, r2 = _result(*whole), _result(*split)
    assert r1[0].size > 200 and np.ptp(r1[3]) > 10.0
    assert {int(s) // 20 for s in r1[1]} >= {0, 1, 2, 3}  # every population spikes
    assert _same(r1, r2)


def test_checkpoint_resumes_bit_for_bit(tmp_path):
    net, sp, vm, di = _network()
    net.run(40.0)
    net.save(str(tmp_path / "alpha.ckpt"))
    net.run(30.0)
    other = es.Network.load(str(tmp_path / "alpha.ckpt"))
    assert other.populations[0].model.psc == "alpha" and type(other.populations[1].model) is es.ALIF
    other.run(30.0)
    sp2, vm2, di2 = other.recorders[:3]
    assert _same(_result(net, sp, vm, di), _result(other, sp2, vm2, di2))


def test_state_can_be_read_and_set():
    """get / set of i_ex, di_ex ...: a state set between runs is where the next step starts (the closed form
    of a current started from (di, i) = (d0, 0))."""
    net = es.Network(dt=0.1)
    pop = net.population(2, es.LIF(tau_m=TAU_M, c_m=C_M, v_th=1e9, tau_syn_ex=2.0, tau_syn_in=4.0, psc="alpha"))
    assert np.array_equal(pop.get("di_ex"), [0.0, 0.0]) and np.array_equal(pop.get("i_in"), [0.0, 0.0])
    rec = net.record_state(pop, "i_ex")
    net.run(1.0)
    pop.set(di_ex=[10.0, 20.0])
    assert np.array_equal(pop.get("di_ex"), [10.0, 20.0])
    net.run(3.0)
    s = rec.times[rec.times > 1.0] - 1.0
    np.testing.assert_allclose(rec.values[rec.times > 1.0], np.outer(s * np.exp(-s / 2.0), [10.0, 20.0]),
                               rtol=1e-13)


def test_parameters_set_between_runs_recompute_the_propagator():
    """tau_syn_ex set between runs: from then on the state follows the exact propagator of the new time
    constant (stepped here in NumPy from the state read at the change)."""
    net = es.Network(dt=0.1)
    pop = net.population(3, es.LIF(tau_m=TAU_M, c_m=C_M, v_rest=V_REST, v_th=1e9, tau_syn_ex=2.0, tau_syn_in=4.0,
                                   psc="alpha"), v_init=V_REST)
    net.connect(net.spike_source(senders=[0], times=[1.0]), pop, es.AllToAll(), weight=400.0, delay=1.0)
    rec = net.record_state(pop, "v")
    net.run(4.0)
    v, i, d = pop.get("v"), pop.get("i_ex"), pop.get("di_ex")
    assert (d > 0).all() and (i > 0).all()
    pop[1:].set(tau_syn_ex=5.0)
    net.run(10.0)
    late = rec.values[rec.times > 4.0]
    for n, tau_s in ((0, 2.0), (1, 5.0), (2, 5.0)):
        p11, p21, pv1, pv2 = alpha_propagators.py_func(0.1, 1.0 / TAU_M, C_M, 1.0 / tau_s)
        vv, ii, dd = v[n], i[n], d[n]
        for k in range(late.shape[0]):
            vv = V_REST + math.exp(-0.1 / TAU_M) * (vv - V_REST) + pv1 * dd + pv2 * ii
            ii, dd = p21 * dd + p11 * ii, p11 * dd
            assert late[k, n] == pytest.approx(vv, rel=1e-13, abs=1e-12)
    assert not np.array_equal(late[:, 0], late[:, 1])
    assert alpha_initial.py_func(0.5) == pytest.approx(math.e / 2.0)


SCRIPT = r"""
import hashlib, sys, numba, numpy as np, eventsim as es
sys.path.insert(0, sys.argv[1])
from test_psc_alpha import _network, _result
net, sp, vm, di = _network()
net.run(60.0)
h = hashlib.sha256()
for x in _result(net, sp, vm, di):
    h.update(np.ascontiguousarray(x).tobytes())
print(numba.get_num_threads(), len(sp), h.hexdigest())
"""


def test_thread_count_does_not_change_results():
    here = os.path.dirname(__file__)
    out = {}
    for threads in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        r = subprocess.run([sys.executable, "-c", SCRIPT, here], env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        n, count, digest = r.stdout.split()
        assert int(n) == threads
        out[threads] = (int(count), digest)
    assert out[1][0] > 100 and out[1] == out[2], out


CUDA_SCRIPT = r"""
import sys, numpy as np, eventsim as es
from eventsim import config
config.CUDA_THREADS_PER_BLOCK = 8
sys.path.insert(0, sys.argv[1])
from test_psc_alpha import _network, _result, _same
res = []
for backend in ("cpu", "cuda"):
    net, sp, vm, di = _network(backend=backend)
    net.run(15.0)
    net.run(10.0)
    res.append((_result(net, sp, vm, di)))
assert res[0][0].size > 20, res[0][0].size
assert _same(res[0], res[1])
print("ok", res[0][0].size)
"""


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda not installed")
def test_cuda_simulator_is_bit_identical_to_cpu():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-c", CUDA_SCRIPT, os.path.dirname(__file__)], capture_output=True,
                         text=True, env=env, timeout=900)
    assert out.returncode == 0 and "ok" in out.stdout, out.stdout + out.stderr[-3000:]


def test_float32_within_tolerance_of_float64():
    """dtype="float32": the state is single precision (the alpha coefficients stay float64); the PSP of one
    input within float32 rounding of the float64 one, and the network's first spikes the same."""
    r64 = _single(800.0, 2.0)[1]["v"]
    net32, rec32, _ = _single(800.0, 2.0, dtype="float32")
    assert net32._plan.state.x.dtype == np.float32 and net32._plan.state.v.dtype == np.float32
    assert 0.0 < np.abs(rec32["v"] - r64).max() < 1e-5 * 70.0
    a = _network(dtype="float64")
    b = _network(dtype="float32")
    a[0].run(20.0)
    b[0].run(20.0)
    assert a[1].steps.size > 10
    k = min(10, a[1].steps.size)
    assert np.array_equal(a[1].steps[:k], b[1].steps[:k])


def test_warmup_compiles_alpha_networks_on_request():
    """``eventsim.warmup(synapse="alpha")`` (``python -m eventsim warmup --synapse alpha``) runs the clock
    and event engines' alpha networks; the default leaves alpha out."""
    rows = es.warmup(engine=("clock", "event"), synapse="alpha")
    assert [r[0] for r in rows] == ["clock engine, alpha synapses, float64", "event engine, alpha synapses, float64"]
    from eventsim._compile import DEFAULT_SYNAPSES, SYNAPSES

    assert "alpha" in SYNAPSES and "alpha" not in DEFAULT_SYNAPSES
