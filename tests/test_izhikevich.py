"""Izhikevich neurons (eventsim.models.izhikevich) in the clock engines: NEST 3.10's izhikevich to the last
bit (tests/nest_izhikevich_reference/izhikevich.npz: both integration options, input spikes, step currents
with connection delays, bias currents, V_min, set initial V_m and U_m), the same results on any thread
count and in the CUDA simulator, checkpoints, state access and validation."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import eventsim as es

REF = Path(__file__).parent / "nest_izhikevich_reference" / "izhikevich.npz"


def nest_network(backend="cpu"):
    """The reference's neurons and inputs in eventsim: one spike-source channel per input spike (its weight on
    its connection), one step current per neuron with NEST's connection delay as the source's delay."""
    d = np.load(REF)
    dt, n = float(d["dt"]), int(d["n"])
    g = lambda k: d["p_" + k]  # noqa: E731
    net = es.Network(dt=dt, seed=1, backend=backend)
    model = es.Izhikevich(a=g("a"), b=g("b"), c=g("c"), d=g("d"), v_th=g("V_th"), v_min=g("V_min"), i_e=g("I_e"),
                          u_init=d["U_init"], consistent_integration=g("consistent_integration") != 0)
    pop = net.population(n, model, v_init=d["V_init"])
    k = d["in_neuron"].size
    src = net.spike_source(senders=np.arange(k), times=d["in_time"], n=k)
    net.connect(src, pop, es.FromArrays(pre=np.arange(k), post=d["in_neuron"]), weight=d["in_weight"], delay=dt)
    for i in range(n):
        sel = d["dc_neuron"] == i
        if sel.any():
            sc = net.step_current(d["dc_time"][sel], d["dc_amplitude"][sel], delay=float(d["dc_delay"][sel][0]))
            net.connect(sc, pop[i], es.AllToAll(), weight=1.0)
    rec = (net.record_state(pop, "v"), net.record_state(pop, "u"), net.record_spikes(pop))
    return d, net, pop, rec


def test_follows_nest_to_the_last_bit():
    d, net, pop, (rv, ru, rs) = nest_network()
    dt = float(d["dt"])
    # the reference covers both integration options, step currents, input spikes and bias currents
    ci = d["p_consistent_integration"] != 0
    assert ci.any() and (~ci).any() and d["dc_neuron"].size and d["in_neuron"].size and (d["p_I_e"] != 0).any()
    net.run(float(d["t_sim"]))
    m = d["vm_times"].size   # (NEST samples the state after steps 0 .. n-2)
    assert m == rv.times.size - 1 and np.array_equal(np.rint(rv.times[:m] / dt), np.rint(d["vm_times"] / dt))
    assert np.array_equal(rv.values[:m], d["vm"]) and np.array_equal(ru.values[:m], d["um"])
    ours = sorted(zip(rs.senders.tolist(), np.rint(rs.times / dt).astype(int).tolist()))
    ref = sorted(zip(d["spike_senders"].tolist(), np.rint(d["spike_times"] / dt).astype(int).tolist()))
    assert ours == ref and len(ref) > 100
    assert all(np.isin(np.arange(int(d["n"])), d["spike_senders"]))   # every neuron spikes
    assert rv.unit == "mV" and ru.unit == "mV/ms"


def test_step_order_and_options():
    """One step by hand: forward Euler from the step's start (consistent) or two half steps of v and then u
    from the new v (published scheme); v_min bounds v; a spike resets v to c and adds d to u."""
    from eventsim.models.izhikevich import step_izhikevich

    v, u, a, b, h = -60.0, -12.0, 0.02, 0.2, 0.1
    f = lambda v, u, extra: 0.04 * v * v + 5.0 * v + 140.0 - u + extra  # noqa: E731
    vc, uc, s = step_izhikevich(v, u, a, b, -65.0, 8.0, 30.0, -np.inf, 3.0, h, 0.5, 2.0, True)
    assert not s and vc == v + (h * f(v, u, 2.0 + 3.0) + 0.5) and uc == u + h * a * (b * v - u)
    v1 = v + h * 0.5 * f(v, u, 5.5)
    v2 = v1 + h * 0.5 * f(v1, u, 5.5)
    vp, up, _ = step_izhikevich(v, u, a, b, -65.0, 8.0, 30.0, -np.inf, 3.0, h, 0.5, 2.0, False)
    assert vp == v2 and up == u + h * a * (b * v2 - u)
    assert step_izhikevich(v, u, a, b, -65.0, 8.0, 30.0, -59.0, 0.0, h, -20.0, 0.0, True)[0] == -59.0
    vs, us, s = step_izhikevich(29.0, u, a, b, -65.0, 8.0, 30.0, -np.inf, 0.0, h, 5.0, 0.0, True)
    assert s and vs == -65.0 and us == u + h * a * (b * 29.0 - u) + 8.0


def test_dc_delay_zero_acts_one_step_before_nests_shortest_delay():
    """NEST's current generators reach a neuron one connection delay (>= dt) after a change; eventsim's DC
    sources may also have delay 0: the same trace, one step earlier."""
    def trace(delay, start):
        net = es.Network(dt=0.1)
        pop = net.population(1, es.Izhikevich())
        net.connect(net.step_current([start], [10.0], delay=delay), pop, es.AllToAll(), weight=1.0)
        rv = net.record_state(pop, "v")
        net.run(40.0)
        return rv.values[:, 0]

    late, early = trace(0.1, 5.0), trace(0.0, 5.1)
    assert np.array_equal(late, early) and np.ptp(late) > 50.0


def test_state_access_and_initial_values():
    net = es.Network(dt=0.1)
    pop = net.population(3, es.Izhikevich(u_init=[-13.0, -14.0, -15.0]), v_init=[-65.0, -70.0, -60.0])
    assert np.array_equal(pop.get("u"), [-13.0, -14.0, -15.0]) and np.array_equal(pop.get("v"), [-65.0, -70.0, -60.0])
    assert es.Izhikevich().u_init == -13.0 and net.population(1, es.Izhikevich()).get("v")[0] == -65.0
    net.run(1.0)
    u1 = pop.get("u")
    pop.set(u=[0.0, 1.0, 2.0], v=-50.0)
    assert np.array_equal(pop.get("u"), [0.0, 1.0, 2.0]) and np.array_equal(pop.get("v"), [-50.0] * 3)
    assert not np.array_equal(u1, pop.get("u"))
    pop.set(d=4.0, consistent_integration=False)   # parameters between runs keep the state
    assert np.array_equal(pop.get("u"), [0.0, 1.0, 2.0]) and pop.get("d")[0] == 4.0
    net.run(1.0)


def test_checkpoint_round_trip(tmp_path):
    def build():
        net = es.Network(dt=0.1, seed=4)
        pop = net.population(20, es.Izhikevich(a=0.02, b=0.2, c=-50.0, d=2.0, i_e=np.linspace(0.0, 10.0, 20)),
                             v_init=es.Uniform(-70.0, -60.0))
        net.connect(pop, pop, es.FixedInDegree(4), weight=es.Normal(2.0, 1.0), delay=es.Uniform(0.5, 3.0))
        net.connect(net.poisson(20, rate=500.0), pop, es.OneToOne(), weight=3.0, delay=0.1)
        return net, net.record_state(pop, "u"), net.record_spikes(pop)

    whole, ru, rs = build()
    whole.run(100.0)
    half, _, _ = build()
    half.run(50.0)
    half.save(tmp_path / "izh.ckpt")
    back = es.Network.load(tmp_path / "izh.ckpt")
    assert type(back.populations[0].model) is es.Izhikevich
    back.run(50.0)
    bu, bs = back.recorders
    assert rs.steps.size > 50 and np.array_equal(bs.steps, rs.steps) and np.array_equal(bs.senders, rs.senders)
    assert np.array_equal(bu.values, ru.values)


@pytest.mark.parametrize("kw,match", [
    (dict(a=0.0), "a=0.0 violates a > 0"), (dict(c=30.0), "c=30.0 violates c < v_th"),
    (dict(v_min=40.0), "v_min=40.0 violates v_min < v_th"), (dict(v_min=np.inf), "v_min=inf violates v_min < v_th"), (dict(consistent_integration="yes"), "consistent_integration"),
    (dict(consistent_integration=[1, 0]), "consistent_integration"), (dict(b=float("nan")), "b=nan must be finite"),
    (dict(d=[1.0, 2.0], i_e=[1.0, 2.0, 3.0]), "mismatched lengths"), (dict(i_e="5"), "i_e"),
    (dict(u_init=None), "u_init=None"), (dict(c=np.array([-65.0, 31.0])), "c=array with 1 offending value")])
def test_invalid_parameters_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        es.Izhikevich(**kw)


def test_no_lower_bound_is_none_or_minus_infinity():
    traces = []
    for v_min in (None, -np.inf):
        net = es.Network(dt=0.1)
        pop = net.population(1, es.Izhikevich(v_min=v_min), v_init=-80.0)
        net.connect(net.spike_source(senders=[0], times=[1.0]), pop, es.AllToAll(), weight=-60.0, delay=0.1)
        rv = net.record_state(pop, "v")
        net.run(5.0)
        traces.append(rv.values[:, 0])
    assert np.array_equal(traces[0], traces[1]) and traces[0].min() < -130.0


def test_population_and_engine_refusals():
    net = es.Network(dt=0.1)
    with pytest.raises(ValueError, match="n=3"):
        net.population(3, es.Izhikevich(d=[1.0, 2.0]))
    with pytest.raises(NotImplementedError, match="clock engine only"):
        es.Network(engine="event").population(2, es.Izhikevich())
    pop = net.population(2, es.Izhikevich())
    with pytest.raises(ValueError, match="'i_ex'"):
        net.record_state(pop, "i_ex")


SCRIPT = r"""
import hashlib, sys, numba, numpy as np, eventsim as es
from eventsim import config
config.CUDA_THREADS_PER_BLOCK = 4
config.CHUNK_STEPS = 97
backends = sys.argv[1].split(",")
out = []
for backend in backends:
    net = es.Network(dt=0.1, seed=9, backend=backend)
    izh = net.population(30, es.Izhikevich(a=np.r_[np.full(15, 0.02), np.full(15, 0.1)], d=np.r_[np.full(15, 8.0),
                         np.full(15, 2.0)], consistent_integration=np.arange(30) % 3 != 0), v_init=es.Uniform(-70.0, -55.0))
    lif = net.population(10, es.LIF(tau_m=10.0, v_th=15.0, t_ref=2.0))
    par = net.population(8, es.Parrot())
    net.connect(izh, izh | lif, es.FixedInDegree(6), weight=es.Normal(1.5, 1.0), delay=es.Uniform(0.1, 2.0))
    net.connect(lif, izh, es.FixedInDegree(3), weight=-2.0, delay=0.5)
    net.connect(izh[:8], par, es.OneToOne(), weight=1.0, delay=0.3)
    net.connect(par, lif, es.AllToAll(), weight=4.0, delay=0.2)
    rel = net.population(4, es.Parrot())  # relays of a 20 kHz source: spikes of several in one step
    net.connect(net.poisson(4, rate=20000.0), rel, es.OneToOne(), weight=0.0, delay=0.2)
    net.connect(rel, lif, es.FixedInDegree(2), weight=0.3, delay=0.4)
    net.connect(rel, izh[:10], es.FixedInDegree(1), weight=0.1, delay=0.3, synapse=es.STDP(lam=0.01, w_max=10.0))
    net.connect(net.poisson(10, rate=3000.0, rate_times=[30.0, 70.0], rate_values=[[0.0] * 10, [5000.0] * 10]),
                izh | lif, es.FixedInDegree(2), weight=1.0, delay=0.1)
    net.connect(net.step_current([20.0, 60.0], [6.0, 2.0], delay=0.2), izh[::2], es.AllToAll(), weight=1.0)
    sp, rv, ru = net.record_spikes(izh | lif | par | rel), net.record_state(izh[:5], "v"), net.record_state(izh[:5], "u")
    net.run(60.0)
    net.run(40.0)
    h = hashlib.sha256()
    for a in (sp.senders, sp.steps, rv.values, ru.values):
        h.update(np.ascontiguousarray(a).tobytes())
    out.append((len(sp), np.isin(sp.senders, par.ids).sum(), h.hexdigest()))
assert len(set(out)) == 1, out
print(numba.get_num_threads(), *out[0])
"""


def _run(script_args, **env_vars):
    env = dict(os.environ, **env_vars)
    out = subprocess.run([sys.executable, "-c", SCRIPT, script_args], env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    return out.stdout.split()


def test_thread_count_does_not_change_results():
    """Izhikevich neurons beside LIF and parrot neurons: the same spikes and states with 1 and 3 threads."""
    one, three = _run("cpu", NUMBA_NUM_THREADS="1"), _run("cpu", NUMBA_NUM_THREADS="3")
    assert one[0] == "1" and three[0] == "3"
    assert one[1:] == three[1:] and int(one[1]) > 200 and int(one[2]) > 10


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda not installed")
def test_cuda_simulator_is_bit_identical_to_the_cpu():
    _run("cpu,cuda", NUMBA_ENABLE_CUDASIM="1")


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda not installed")
@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"), reason="the simulator has no PTX")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_ptx_of_the_step_kernel_with_izhikevich_and_parrot_neurons(dtype, monkeypatch):
    """The clock engine's step kernel with these families compiles for the GPU (sm_90, real NVVM and ptxas,
    no GPU needed; tests/test_cuda_ptx.py's tools), without contraction of a*b + c (the bit-identity with
    the CPU relies on it) and without spilling."""
    import collections
    import re

    import test_cuda_ptx as tp
    from numba.cuda import dispatcher

    from eventsim.engines import clock_cuda

    reason = tp._nvvm_missing()
    if reason is not None:
        pytest.skip(reason)
    seen = collections.defaultdict(set)
    with pytest.MonkeyPatch.context() as mp:  # launches recorded instead of run
        mp.setattr(clock_cuda, "unavailable_reason", lambda: None)
        mp.setattr(clock_cuda, "simulator_enabled", lambda: True)
        mp.setattr(clock_cuda, "_kernels", lambda: (tp._Recorder("update", seen), tp._Recorder("after", seen)))
        net = es.Network(dt=0.1, seed=5, backend="cuda", dtype=dtype)
        izh = net.population(4, es.Izhikevich())
        par = net.population(3, es.Parrot())
        net.connect(net.poisson(4, rate=5000.0), izh, es.OneToOne(), weight=2.0, delay=0.1)
        net.connect(izh[:3], par, es.OneToOne(), weight=1.0, delay=0.5)
        net.connect(net.dc(5.0), izh, es.AllToAll(), weight=1.0)
        net.record_state(izh, "u")
        net.run(0.2)
    cc = (9, 0)
    monkeypatch.setattr(dispatcher, "get_current_device", lambda: type("Device", (), {"compute_capability": cc})())
    (sig,) = seen["update"]
    assert {"IzhikevichTag", "ParrotTag"} <= {t.instance_class.__name__ for t in sig[-1].types}
    ptx = tp._compile(clock_cuda._kernels()[0].py_func, sig, cc, no_fma=True)
    assert ".target sm_90" in ptx
    tp._check_kernel(f"update {dtype}", ptx, cc, True, [])
    body = ptx.split(".entry", 1)[1]
    for op in ("add", "mul", "sub"):
        assert not re.search(rf"\b{op}\.f(32|64)\b", body), op
