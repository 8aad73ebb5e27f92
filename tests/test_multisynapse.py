"""Receptor ports (``es.LIF(..., tau_syn=[...])`` with ``connect(..., receptor=k)``, NEST's
``iaf_psc_exp_multisynapse``): against a stored NEST 3.10 run, closed forms, threads, the CUDA simulator,
checkpoints, live changes and bad input."""

import os
import subprocess
import sys

import numpy as np
import pytest

import eventsim as es

REF = os.path.join(os.path.dirname(__file__), "nest_multisynapse_reference", "multisynapse.npz")


def build(d, backend="cpu", engine="clock", recurrent=True):
    """The reference network in eventsim: ``(net, pop)`` (``recurrent=False``: the inputs only)."""
    net = es.Network(dt=0.1, seed=0, backend=backend, engine=engine)
    model = es.LIF(tau_m=float(d["tau_m"]), c_m=float(d["c_m"]), v_rest=float(d["e_l"]), v_reset=float(d["v_reset"]),
                   v_th=float(d["v_th"]), t_ref=float(d["t_ref"]), i_e=d["i_e"], tau_syn=list(d["tau_syn"]))
    pop = net.population(d["i_e"].size, model, v_init=d["v_init"])
    ptr = d["in_ptr"]
    senders = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
    gen = net.spike_source(senders, d["in_times"], n=ptr.size - 1)
    for k in range(d["tau_syn"].size):
        m = d["port"] == k
        if recurrent:
            net.connect(pop, pop, es.FromArrays(d["pre"][m], d["post"][m]), weight=d["weight"][m],
                        delay=d["delay"][m], receptor=k)
        m = d["in_port"] == k
        net.connect(gen, pop, es.FromArrays(d["in_ch"][m], d["in_post"][m]), weight=d["in_weight"][m],
                    delay=d["in_delay"][m], receptor=k)
    return net, pop


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(REF))


def test_same_spikes_and_voltages_as_nest(ref):
    net, pop = build(ref)
    spikes = net.record_spikes(pop)
    vm = net.record_state(pop, "v")
    net.run(300.0)
    want = sorted(zip(np.rint(ref["spike_times"] / 0.1).astype(int).tolist(), ref["spike_senders"].tolist()))
    got = sorted(zip(spikes.steps.tolist(), spikes.senders.tolist()))
    assert len(want) > 200
    assert got == want
    steps = np.rint(ref["v_times"] / 0.1).astype(np.int64)
    np.testing.assert_array_equal(vm.steps[steps - 1], steps)
    np.testing.assert_allclose(vm.values[steps - 1], ref["v_m"], rtol=0, atol=1e-9)


def test_each_port_is_its_own_exponential_current():
    """One input spike of w pA into port k: i_syn_k = w e^{-t/tau_k}, v follows the closed form
    (tau_syn == tau_m included), the other ports stay 0."""
    tau_m, c_m, taus = 10.0, 250.0, (2.0, 10.0, 40.0)
    for k, tau in enumerate(taus):
        net = es.Network(dt=0.1)
        pop = net.population(1, es.LIF(tau_m=tau_m, c_m=c_m, v_th=1e9, t_ref=0.0, tau_syn=taus))
        src = net.spike_source([0], [1.0])
        net.connect(src, pop, es.OneToOne(), weight=-300.0, delay=0.1, receptor=k)
        rec = {f"i_syn_{j}": net.record_state(pop, f"i_syn_{j}") for j in range(3)}
        rv = net.record_state(pop, "v")
        net.run(60.0)
        t = rv.steps * 0.1 - 1.1  # (the spike arrives at 1.1 ms and acts from the next step on)
        on = t > 1e-9
        i = np.where(t >= -1e-9, -300.0 * np.exp(-np.maximum(t, 0) / tau), 0.0)
        np.testing.assert_allclose(rec[f"i_syn_{k}"].values[:, 0], i, rtol=1e-12, atol=1e-12)
        for j in range(3):
            if j != k:
                assert not rec[f"i_syn_{j}"].values.any()
        if tau == tau_m:
            v = -300.0 / c_m * t * np.exp(-t / tau_m)
        else:
            v = -300.0 * tau * tau_m / (c_m * (tau - tau_m)) * (np.exp(-t / tau) - np.exp(-t / tau_m))
        np.testing.assert_allclose(rv.values[on, 0], v[on], rtol=1e-10, atol=1e-12)
        assert rv.unit == "mV" and rec["i_syn_0"].unit == "pA"


def test_threads_run_the_ports_alike(ref):
    code = f"""
import numba, numpy as np, sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
from test_multisynapse import build
d = dict(np.load({REF!r}))
out = []
for T in (1, 2, 3):
    numba.set_num_threads(T)
    net, pop = build(d)
    sp = net.record_spikes(pop); vm = net.record_state(pop, "i_syn_1")
    net.run(300.0)
    out.append((sp.steps.tolist(), sp.senders.tolist(), vm.values.tobytes()))
assert out[0] == out[1] == out[2], "thread counts differ"
print("ok", len(out[0][0]))
"""
    env = dict(os.environ, NUMBA_NUM_THREADS="3")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("ok")


def test_checkpoint_and_split_runs_are_exact(ref, tmp_path):
    net, pop = build(ref)
    sp = net.record_spikes(pop)
    net.run(300.0)
    whole = (sp.steps.copy(), sp.senders.copy(), pop.get("i_syn_1"))
    net, pop = build(ref)
    sp = net.record_spikes(pop)
    net.run(120.0)
    net.save(tmp_path / "c.ckpt")
    net2 = es.Network.load(tmp_path / "c.ckpt")
    assert net2.projections[0].receptor == 0 and net2.projections[2].receptor == 1
    net.run(180.0)
    net2.run(180.0)
    np.testing.assert_array_equal(sp.steps, whole[0])
    np.testing.assert_array_equal(sp.senders, whole[1])
    np.testing.assert_array_equal(pop.get("i_syn_1"), whole[2])
    sp2 = net2.recorders[0]
    np.testing.assert_array_equal(sp2.steps, whole[0])
    np.testing.assert_array_equal(net2.populations[0].get("i_syn_1"), whole[2])


def test_state_and_parameters_live():
    net = es.Network(dt=0.1)
    pop = net.population(3, es.LIF(tau_syn=(2.0, 20.0), v_th=1e9))
    assert pop.get("i_syn_1").tolist() == [0.0, 0.0, 0.0]
    pop.set(i_syn_1=[10.0, 20.0, 30.0])
    net.run(1.0)
    np.testing.assert_allclose(pop.get("i_syn_1"), np.array([10.0, 20.0, 30.0]) * np.exp(-1.0 / 20.0), rtol=1e-13)
    pop.set(tau_syn=(2.0, 5.0))  # same number of ports: propagators recomputed
    before = pop.get("i_syn_1")
    net.run(1.0)
    np.testing.assert_allclose(pop.get("i_syn_1"), before * np.exp(-1.0 / 5.0), rtol=1e-13)
    with pytest.raises(ValueError, match="2 components"):
        pop.set(tau_syn=(2.0, 5.0, 7.0))  # the number of ports is the population's
    with pytest.raises(ValueError, match=r"tau_syn\[1\]"):
        pop.set(tau_syn=(2.0, -5.0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(tau_syn=[]), "at least one"),
    (dict(tau_syn=[2.0, -1.0]), r"tau_syn\[1\]"),
    (dict(tau_syn=[2.0, float("nan")]), r"tau_syn\[1\]"),
    (dict(tau_syn="2.0"), "sequence"),
    (dict(tau_syn=[2.0], tau_syn_ex=2.0, tau_syn_in=2.0), "excludes"),
])
def test_bad_ports(kwargs, match):
    with pytest.raises(ValueError, match=match):
        es.LIF(**kwargs)


def test_alif_refuses_ports():
    with pytest.raises(ValueError, match="ALIF"):
        es.ALIF(tau_syn=[2.0])


def test_bad_receptor_and_engines():
    net = es.Network(dt=0.1)
    ports = net.population(2, es.LIF(tau_syn=(2.0, 5.0)))
    plain = net.population(2, es.LIF(tau_syn_ex=2.0, tau_syn_in=2.0))
    with pytest.raises(ValueError, match="receptor=None"):
        net.connect(plain, ports, es.AllToAll(), weight=1.0)
    with pytest.raises(ValueError, match="0 <= receptor < 2"):
        net.connect(plain, ports, es.AllToAll(), weight=1.0, receptor=2)
    with pytest.raises(TypeError, match="receptor"):
        net.connect(plain, ports, es.AllToAll(), weight=1.0, receptor=1.0)
    with pytest.raises(ValueError, match="no receptor ports"):
        net.connect(ports, plain, es.AllToAll(), weight=1.0, receptor=0)
    with pytest.raises(ValueError, match="0 <= receptor < 2"):  # (plastic ones too)
        net.connect(ports, ports, es.AllToAll(), weight=1.0, receptor=3, synapse=es.STDP(w_max=10.0))
    dc = net.dc(10.0)
    with pytest.raises(ValueError, match="DC sources"):
        net.connect(dc, ports, es.AllToAll(), weight=1.0, receptor=0)
    assert len(net.projections) == 0
    net.connect(dc, ports, es.AllToAll(), weight=1.0)  # (a current: no port)
    ev = es.Network(dt=0.1, engine="event")
    with pytest.raises(NotImplementedError, match="at most 8 receptor ports"):
        ev.population(2, es.LIF(tau_syn=[1.0] * 9))
    assert len(ev.populations) == 0
    ev.population(2, es.LIF(tau_syn=[1.0] * 8))


# ---------------------------------------------------------------- the event engine
def _two_ways(ports, engine="event", t=200.0):
    """A recurrent network of exponential current synapses, with two receptor ports (excitatory input to port
    0, inhibitory to port 1) or as ``iaf_psc_exp`` (the weight's sign choosing): its spike recorder."""
    net = es.Network(dt=0.1, seed=3, engine=engine)
    common = dict(tau_m=10.0, c_m=250.0, v_th=15.0, v_reset=0.0, t_ref=2.0)
    m = es.LIF(**common, tau_syn=[0.5, 2.0]) if ports else es.LIF(**common, tau_syn_ex=0.5, tau_syn_in=2.0)
    pop = net.population(200, m, v_init=es.Uniform(0.0, 14.0))
    noise = net.poisson(200, rate=9000.0)
    kw = (lambda k: dict(receptor=k)) if ports else (lambda k: {})
    net.connect(noise, pop, es.OneToOne(), weight=90.0, delay=0.1, **kw(0))
    net.connect(pop[:160], pop, es.FixedInDegree(20), weight=60.0, delay=1.5, **kw(0))
    net.connect(pop[160:], pop, es.FixedInDegree(5), weight=-250.0, delay=0.8, **kw(1))
    rec = net.record_spikes(pop)
    net.run(t)
    return rec


def test_event_engine_two_ports_are_iaf_psc_exp_to_the_bit():
    """Ports [tau_ex, tau_in] with the excitatory input on port 0 and the inhibitory on port 1 are the
    ``iaf_psc_exp`` neuron: the same exact (off-grid) spike times, bit for bit."""
    plain, ports = _two_ways(False), _two_ways(True)
    assert len(plain.times) > 500
    np.testing.assert_array_equal(ports.times, plain.times)
    np.testing.assert_array_equal(ports.senders, plain.senders)
    assert np.any(np.abs(ports.times / 0.1 - np.rint(ports.times / 0.1)) > 1e-6)  # (off the grid)


def test_event_engine_ports_against_the_clock_engine(ref):
    """The NEST reference's neurons and inputs (three ports, on-grid inputs), no recurrent connections: the
    event engine's v equals the clock engine's (both exact) at every sample before a neuron's first spike,
    and its first spike time lies in the step in which the clock engine spikes."""
    out = {}
    for engine in ("clock", "event"):
        net, pop = build(ref, engine=engine, recurrent=False)
        sp, vm = net.record_spikes(pop), net.record_state(pop, "v")
        net.run(300.0)
        out[engine] = (sp.senders.copy(), sp.times.copy(), vm.times.copy(), vm.values.copy())
    (cs, ct, vt, cv), (es_, et, _, ev) = out["clock"], out["event"]
    n = cv.shape[1]
    first_c = np.array([ct[cs == i].min() if (cs == i).any() else np.inf for i in range(n)])
    first_e = np.array([et[es_ == i].min() if (es_ == i).any() else np.inf for i in range(n)])
    spiking = np.isfinite(first_c)
    assert spiking.sum() >= 5 and np.array_equal(spiking, np.isfinite(first_e))
    assert np.all(first_e[spiking] <= first_c[spiking] + 1e-9)
    assert np.all(first_e[spiking] > first_c[spiking] - 0.1 - 1e-9)
    before = vt[:, None] < np.minimum(first_c, first_e)[None, :] - 1e-9
    assert before.sum() > 1000
    np.testing.assert_allclose(ev[before], cv[before], rtol=0, atol=1e-9)


def test_event_engine_port_currents_and_checkpoints(tmp_path):
    """One input of w pA into port 2 at 1.0 ms: i_syn_2 = w e^{-(t - 1)/tau_2} after it, the other ports 0;
    a run split by a checkpoint equals the whole run, bit for bit."""
    def make():
        net = es.Network(dt=0.1, engine="event")
        pop = net.population(1, es.LIF(tau_m=10.0, c_m=250.0, v_th=1e3, tau_syn=[2.0, 5.0, 10.0]), v_init=0.0)
        src = net.spike_source([0], [0.7])
        net.connect(src, pop, es.AllToAll(), weight=300.0, delay=0.3, receptor=2)
        return net, pop, net.record_state(pop, "i_syn_2", interval=0.5), net.record_state(pop, "i_syn_0")
    net, pop, i2, i0 = make()
    net.run(20.0)
    t = i2.times
    after = t > 1.0 + 1e-9
    np.testing.assert_allclose(i2.values[after, 0], 300.0 * np.exp(-(t[after] - 1.0) / 10.0), rtol=1e-12)
    assert np.all(i2.values[t < 1.0 - 1e-9] == 0.0) and np.all(i0.values == 0.0)
    whole = (pop.get("v"), pop.get("i_syn_2"), i2.values.copy())
    net, pop, i2, _ = make()
    net.run(7.3)
    net.save(tmp_path / "c.ckpt")
    back = es.Network.load(tmp_path / "c.ckpt")
    back.run(12.7)
    np.testing.assert_array_equal(back.populations[0].get("v"), whole[0])
    np.testing.assert_array_equal(back.populations[0].get("i_syn_2"), whole[1])
    np.testing.assert_array_equal(back.recorders[0].values, whole[2])
    assert whole[1][0] != 0.0


def test_ports_beside_other_families_keep_their_inputs():
    """A network mixing delta, exp and port neurons: each gets exactly its input (ring blocks 0..P-1)."""
    net = es.Network(dt=0.1)
    d = net.population(2, es.LIF(v_th=1e9))
    e = net.population(2, es.LIF(tau_syn_ex=2.0, tau_syn_in=5.0, v_th=1e9))
    p = net.population(2, es.LIF(tau_syn=(2.0, 3.0, 4.0), v_th=1e9))
    src = net.spike_source([0], [1.0])
    net.connect(src, d, es.AllToAll(), weight=1.5)
    net.connect(src, e, es.AllToAll(), weight=-40.0)
    for k in range(3):
        net.connect(src, p, es.AllToAll(), weight=10.0 * (k + 1), receptor=k)
    net.run(1.2)
    np.testing.assert_allclose(d.get("v"), 1.5 * np.exp(-0.1 / 10.0), rtol=1e-13)
    np.testing.assert_allclose(e.get("i_in"), -40.0 * np.exp(-0.1 / 5.0), rtol=1e-13)
    assert not e.get("i_ex").any()
    for k in range(3):
        np.testing.assert_allclose(p.get(f"i_syn_{k}"), 10.0 * (k + 1) * np.exp(-0.1 / (2.0 + k)), rtol=1e-13)


@pytest.mark.skipif(__import__("importlib").util.find_spec("numba_cuda") is None,
                    reason="numba-cuda is not installed")
def test_cuda_simulator_runs_the_ports_as_the_cpu():
    script = f"""
import numpy as np, sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
from eventsim import config
config.CUDA_THREADS_PER_BLOCK = 4
from test_multisynapse import build
d = dict(np.load({REF!r}))
res = []
for backend in ("cpu", "cuda"):
    net, pop = build(d, backend=backend)
    sp = net.record_spikes(pop)
    net.run(40.0)
    res.append((sp.steps.tolist(), sp.senders.tolist(), pop.get("i_syn_0").tobytes(), pop.get("v").tobytes()))
assert len(res[0][0]) > 10, res[0][0]
assert res[0] == res[1], "cuda differs from cpu"
print("OK")
"""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert r.stdout.strip().endswith("OK")
