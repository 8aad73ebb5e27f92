"""A network changed between runs: get/set of state and parameters, source changes, additions after a run.

The rule under test: a network changed at time t continues exactly as the same
network built with the change from the start (where such a construction exists),
bit for bit.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import eventsim as es

DELTA = es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, c_m=1.0)
EXP = es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=2.0, tau_syn_ex=2.0, tau_syn_in=5.0, c_m=250.0)


def _same(a, b):
    return a.shape == b.shape and np.array_equal(a, b)


def _interleaved(live, threads=None):
    """The same construction calls, with run() calls between them (live) or all before one run.

    Everything added at 100 ms or 200 ms is silent until then (its drive starts
    at that time), so both orders describe the same network: the live one must
    give the same spikes, states and ring contents.  The added connection with
    a 7 ms delay makes the ring longer while spikes are on their way."""
    net = es.Network(dt=0.1, seed=3)
    a = net.population(50, DELTA, v_init=es.Uniform(0.0, 20.0))
    noise = net.poisson(50, rate=15000.0)
    net.connect(noise, a, es.OneToOne(), weight=0.2, delay=0.1)
    net.connect(a, a, es.FixedInDegree(10), weight=0.3, delay=1.5)
    rec = [net.record_spikes(a)]
    if live:
        net.run(100.0)
    b = net.population(20, EXP)
    drive = net.dc(500.0, start=100.0)
    net.connect(drive, b, es.AllToAll(), weight=1.0)
    net.connect(b, a, es.FromArrays(pre=np.arange(20), post=np.arange(20)), weight=0.5, delay=3.0)
    net.connect(noise[:5], b[:5], es.OneToOne(), weight=0.0, delay=7.0)
    stim = net.spike_source(senders=[0, 1, 0], times=[150.0, 160.5, 230.0])
    net.connect(stim, a[:10] | b[:3], es.AllToAll(), weight=30.0, delay=2.0)
    rec.append(net.record_spikes(b))
    if live:
        net.run(100.0)
    late = net.poisson(10, rate=np.where(np.arange(10) < 5, 0.0, 0.0))  # silent channels (rate 0)
    net.connect(late, b[:10], es.OneToOne(), weight=100.0, delay=0.5)
    rec.append(net.record_state(a[:5] | b[:5], "v", interval=0.5))
    if live:
        net.run(100.0)
    else:
        net.run(300.0)
    return net, rec


def test_additions_after_a_run_equal_the_same_network_built_up_front():
    live, rl = _interleaved(True)
    ref, rr = _interleaved(False)
    for x, y in zip(rl[:2], rr[:2]):
        assert len(x.steps) > 50
        assert _same(x.steps, y.steps) and _same(x.senders, y.senders)
    # the state recorder added at 200 ms records from then on, the same samples as the reference's last ones
    n = len(rl[2].steps)
    assert n == 200 and _same(rl[2].steps, rr[2].steps[-n:]) and _same(rl[2].values, rr[2].values[-n:])
    for name in ("v", "i_ex", "i_in", "refr"):
        assert _same(getattr(live._plan.state, name), getattr(ref._plan.state, name))
    assert _same(live._plan.ring, ref._plan.ring)
    # events from neurons agree; source events differ by those of the weight-0 connection that the
    # reference had from the start
    assert live.synaptic_events[0] == ref.synaptic_events[0]


def test_poisson_rate_set_between_runs_draws_the_new_rate_from_then_on():
    """A relay neuron (one spike per step with input) shows the Poisson counts: after set(rate=r2)
    at 50 ms, the steps are those of a network at rate r2 from the start."""
    relay = es.LIF(tau_m=10.0, v_th=1.0, v_reset=0.0, t_ref=0.0, c_m=1.0)

    def net_at(rate):
        net = es.Network(dt=0.1, seed=11)
        pop = net.population(20, relay)
        src = net.poisson(20, rate=rate)
        net.connect(src, pop, es.OneToOne(), weight=50.0, delay=0.1)
        return net, src, net.record_spikes(pop)

    net, src, rec = net_at(800.0)
    net.run(50.0)
    src.set(rate=3000.0)
    assert np.array_equal(src.rate, np.full(20, 3000.0)) and np.array_equal(src.get("rate"), src.rate)
    net.run(50.0)
    slow, _, r1 = net_at(800.0)
    slow.run(100.0)
    fast, _, r2 = net_at(3000.0)
    fast.run(100.0)
    cut = 500  # spikes stamped up to 50 ms come from counts drawn at the old rate (step 500's at the new)
    early = rec.steps <= cut
    assert _same(rec.steps[early], r1.steps[r1.steps <= cut]) and _same(rec.senders[early], r1.senders[r1.steps <= cut])
    assert _same(rec.steps[~early], r2.steps[r2.steps > cut]) and _same(rec.senders[~early], r2.senders[r2.steps > cut])
    assert (~early).sum() > 2 * early.sum()  # the rate really changed
    # a view of the channels: only those change
    src[:5].set(rate=0.0)
    assert np.array_equal(src.rate, np.r_[np.zeros(5), np.full(15, 3000.0)])
    net.run(20.0)
    assert not np.isin(rec.senders[rec.steps > 1002], np.arange(5)).any()


def test_dc_set_between_runs_equals_the_window_given_up_front():
    def build(live):
        net = es.Network(dt=0.1, seed=2)
        pop = net.population(3, EXP)
        dc = net.dc(0.0 if live else 450.0, start=0.0 if live else 40.0, stop=None if live else 90.0)
        net.connect(dc, pop, es.AllToAll(), weight=1.0)
        v = net.record_state(pop, "v")
        s = net.record_spikes(pop)
        if live:
            net.run(40.0)
            dc.set(amplitude=450.0)
            net.run(20.0)
            dc.set(stop=90.0)
            net.run(80.0)
        else:
            net.run(140.0)
        return v, s, dc

    (v1, s1, dc), (v2, s2, _) = build(True), build(False)
    assert len(s1.steps) > 2 and _same(s1.steps, s2.steps)
    assert _same(v1.values, v2.values)
    assert np.array_equal(dc.get("amplitude"), [450.0])
    with pytest.raises(ValueError, match="stop"):
        dc.set(start=50.0, stop=20.0)
    assert dc.stop_step == 900  # unchanged by the refused call


def test_spikes_added_to_a_source_equal_the_same_spikes_given_up_front():
    def build(live):
        net = es.Network(dt=0.1, seed=2)
        pop = net.population(4, DELTA)
        times = [5.0, 30.0, 30.0, 42.5, 60.0]
        senders = [0, 1, 0, 1, 1]
        stim = net.spike_source(senders[:1], times[:1], n=2) if live else net.spike_source(senders, times)
        net.connect(stim, pop, es.AllToAll(), weight=12.0, delay=1.0)
        rec = net.record_state(pop, "v")
        if live:
            net.run(30.0)
            stim.add(senders[1:], times[1:])  # two of them at the current time: not yet delivered
            net.run(40.0)
        else:
            net.run(70.0)
        return rec, stim, net

    (r1, stim, net), (r2, _, _) = build(True), build(False)
    assert _same(r1.values, r2.values)
    assert np.any(r1.values == 10.0)  # the added spikes arrived (two coinciding ones: a spike and its reset)
    with pytest.raises(ValueError, match=r"times must be >= the current time t = 70"):
        stim.add([0], [69.9])
    with pytest.raises(ValueError, match="senders must lie in"):
        stim.add([2], [80.0])
    assert stim.spike_times.size == 5


def test_parameters_set_between_runs_follow_the_exact_propagator():
    """After tau_m, v_rest and i_e change at t1, v relaxes exactly to the new fixed point with the new
    time constant; neurons outside the view are untouched (bit for bit against an unchanged network)."""
    model = es.LIF(tau_m=10.0, v_th=200.0, v_reset=0.0, t_ref=0.0, c_m=100.0, i_e=200.0)

    def build():
        net = es.Network(dt=0.1, seed=1)
        pop = net.population(4, model, v_init=0.0)
        return net, pop, net.record_state(pop, "v")

    net, pop, rec = build()
    ref, _, rec_ref = build()
    net.run(30.0)
    ref.run(30.0)
    v1 = pop.get("v")
    assert np.array_equal(v1, rec.values[-1])
    pop[:2].set(tau_m=25.0, v_rest=-5.0, i_e=400.0)
    assert np.array_equal(pop.get("tau_m"), [25.0, 25.0, 10.0, 10.0])
    assert np.array_equal(pop.get("i_e"), [400.0, 400.0, 200.0, 200.0])
    net.run(50.0)
    ref.run(50.0)
    t = rec.times[rec.times > 30.0] - 30.0
    v_inf = -5.0 + 400.0 * 25.0 / 100.0
    exact = v_inf + (v1[0] - v_inf) * np.exp(-t / 25.0)
    np.testing.assert_allclose(rec.values[rec.times > 30.0][:, 0], exact, rtol=1e-12, atol=1e-11)
    assert _same(rec.values[:, 2:], rec_ref.values[:, 2:])
    # the population became heterogeneous; setting it uniform again makes it one parameter set
    pop.set(tau_m=10.0, v_rest=0.0, i_e=200.0)
    assert pop.model.tau_m == 10.0 and not isinstance(pop.model.tau_m, np.ndarray)


def test_state_set_between_runs_is_where_the_next_step_starts():
    net = es.Network(dt=0.1, seed=1)
    pop = net.population(3, EXP, v_init=[1.0, 2.0, 3.0])
    assert np.array_equal(pop.get("v"), [1.0, 2.0, 3.0])  # before the first run: the initial values
    pop[1:].set(v=[5.0, 6.0])
    assert np.array_equal(pop.get("v"), [1.0, 5.0, 6.0]) and np.array_equal(pop.get("i_ex"), np.zeros(3))
    rec = net.record_state(pop, "i_ex")
    net.run(1.0)
    pop.set(i_ex=100.0, v=0.0)
    assert np.array_equal(pop.get("i_ex"), np.full(3, 100.0))
    net.run(0.1)
    np.testing.assert_allclose(rec.values[-1], 100.0 * math.exp(-0.1 / 2.0), rtol=1e-15)
    assert (pop.get("v") > 0).all()


def test_refused_changes_name_the_argument_and_change_nothing():
    net = es.Network(dt=0.1, seed=1)
    pop = net.population(5, DELTA)
    noise = net.poisson(5, rate=100.0)
    net.connect(noise, pop, es.OneToOne(), weight=1.0)
    net.run(1.0)
    model, rate = pop.model, noise.rate.copy()
    with pytest.raises(ValueError, match="v_reset"):
        pop.set(tau_m=5.0, v_reset=30.0)  # v_reset >= v_th: refused, tau_m unchanged too
    with pytest.raises(ValueError, match="tau_m"):
        pop[:2].set(tau_m=-1.0)
    with pytest.raises(ValueError, match="tau_m"):
        pop.set(tau_m=[1.0, 2.0])
    with pytest.raises(ValueError, match="v"):
        pop.set(v=np.nan)
    with pytest.raises(TypeError, match="V_th"):
        pop.set(V_th=1.0)
    with pytest.raises(TypeError, match="unknown name 'theta'"):
        pop.set(theta=1.0)  # not a state variable of LIF
    with pytest.raises(ValueError, match="tau_syn_ex"):
        pop.set(tau_syn_ex=2.0, tau_syn_in=2.0)  # delta -> exp after running: the layout is fixed
    with pytest.raises(ValueError, match="rate"):
        noise.set(rate=-1.0)
    with pytest.raises(TypeError, match="amplitude"):
        noise.set(amplitude=1.0)
    assert pop.model is model and np.array_equal(noise.rate, rate) and not net._changes


@pytest.mark.parametrize("attr,hint", [("model", "pop.set"), ("v_init", "pop.set"), ("n", "cannot be assigned")])
def test_assigning_attributes_raises_with_what_to_call(attr, hint):
    net = es.Network()
    pop = net.population(2, DELTA)
    with pytest.raises(AttributeError, match=hint):
        setattr(pop, attr, None)
    with pytest.raises(AttributeError, match=r"source.set\(rate"):
        net.poisson(2, rate=1.0).rate = 0.0
    with pytest.raises(AttributeError, match=r"dc.set\(amplitude"):
        net.dc(1.0).amplitude = 2.0
    proj = net.connect(pop, pop, es.AllToAll(), weight=1.0)
    with pytest.raises(AttributeError, match="connections are fixed"):
        proj.pre = proj.pre
    with pytest.raises(ValueError, match="read-only"):
        proj.weight[0] = 5.0  # in place: refused (it would be a silent no-op after a run)
    pop.label = "fine"  # labels stay assignable


def test_weights_assigned_between_runs():
    """New weights carry the spikes that arrive after the change (a delta synapse's jump in v)."""
    net = es.Network(dt=0.1, seed=4)
    pop = net.population(10, DELTA, v_init=0.0)
    stim = net.spike_source([0, 0], [5.0, 25.0])
    proj = net.connect(stim, pop, es.AllToAll(), weight=1.0, delay=1.0)
    rec = net.record_state(pop, "v")
    net.run(20.0)
    proj.weight = np.linspace(0.0, 9.0, 10)
    assert np.array_equal(proj.weight, np.linspace(0.0, 9.0, 10))
    net.run(20.0)
    v = rec.values
    decay = math.exp(-0.1 / 20.0)
    k5, k25 = np.flatnonzero(np.isclose(rec.times, 6.0))[0], np.flatnonzero(np.isclose(rec.times, 26.0))[0]
    np.testing.assert_allclose(v[k5] - decay * v[k5 - 1], 1.0, rtol=1e-12)
    np.testing.assert_allclose(v[k25] - decay * v[k25 - 1], np.linspace(0.0, 9.0, 10), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="weight"):
        proj.weight = np.ones(3)
    with pytest.raises(ValueError, match="weight"):
        proj.weight = np.full(10, np.nan)
    assert np.array_equal(proj.weight, np.linspace(0.0, 9.0, 10))


def test_checkpoint_after_changes_resumes_exactly(tmp_path):
    def build():
        net = es.Network(dt=0.1, seed=5)
        pop = net.population(30, DELTA, v_init=es.Uniform(0.0, 20.0))
        noise = net.poisson(30, rate=15000.0)
        net.connect(noise, pop, es.OneToOne(), weight=0.2, delay=0.1)
        net.connect(pop, pop, es.FixedInDegree(5), weight=0.5, delay=1.0)
        rec = net.record_spikes(pop)
        net.run(50.0)
        extra = net.population(5, EXP)
        net.connect(extra, pop, es.AllToAll(), weight=1.0, delay=4.0)
        net.connect(pop[:5], extra, es.OneToOne(), weight=5000.0, delay=2.0)
        noise.set(rate=20000.0)
        pop[:10].set(v_th=18.0)
        net.record_spikes(extra)
        return net, rec

    net, rec = build()
    net.save(tmp_path / "c.ckpt")  # the changes are applied first: they are part of the saved state
    net.run(60.0)
    net.close()
    back = es.Network.load(tmp_path / "c.ckpt")
    back.run(60.0)
    assert _same(back.recorders[0].steps, rec.steps) and _same(back.recorders[0].senders, rec.senders)
    assert _same(back.recorders[1].steps, net.recorders[1].steps)
    assert len(net.recorders[1].steps) > 0


def test_threads_give_the_same_live_results():
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 Numba threads")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        _, r1 = _interleaved(True)
        numba.set_num_threads(2)
        _, r2 = _interleaved(True)
    finally:
        numba.set_num_threads(before)
    for x, y in zip(r1[:2], r2[:2]):
        assert _same(x.steps, y.steps) and _same(x.senders, y.senders)
    assert _same(r1[2].values, r2[2].values)


def test_event_engine_takes_state_and_parameters():
    """(Additions and source changes in the event engine: tests/test_live_event.py.)"""
    net = es.Network(dt=0.1, seed=1, engine="event")
    pop = net.population(10, es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=2.0, tau_syn_ex=2.0,
                                    tau_syn_in=5.0, i_e=500.0, c_m=250.0))
    rec = net.record_spikes(pop)
    net.run(35.0)
    v = pop.get("v")
    assert np.allclose(v, v[0]) and 0.0 < v[0] < 15.0
    pop[:5].set(i_e=0.0)
    pop[5:].set(v=14.999)
    net.run(30.0)
    late = rec.senders[rec.times > 35.0]
    assert late.size and late.min() >= 5
    assert rec.times[rec.times > 35.0].min() < 35.01  # the neurons set just below threshold fire at once


CUDA_SCRIPT = r"""
import numpy as np, eventsim as es
from eventsim import config
config.CUDA_THREADS_PER_BLOCK = 32

def run(backend):
    net = es.Network(dt=0.1, seed=3, backend=backend)
    a = net.population(20, es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, c_m=1.0), v_init=es.Uniform(0, 20))
    noise = net.poisson(20, rate=15000.0)
    net.connect(noise, a, es.OneToOne(), weight=0.2, delay=0.1)
    net.connect(a, a, es.FixedInDegree(4), weight=0.5, delay=1.0)
    rec = net.record_spikes(a)
    net.run(20.0)
    b = net.population(5, es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=2.0, c_m=250.0, tau_syn_ex=2.0, tau_syn_in=4.0))
    net.connect(a[:5], b, es.OneToOne(), weight=400.0, delay=3.0)
    net.connect(b, a, es.AllToAll(), weight=1.0, delay=2.0)
    noise.set(rate=20000.0)
    a[:5].set(v_th=18.0, v=0.0)
    rb = net.record_spikes(b)
    net.run(20.0)
    return np.r_[rec.steps, rec.senders, rb.steps, rb.senders]

c, g = run("cpu"), run("cuda")
print("SAME" if np.array_equal(c, g) and c.size > 20 else "DIFF", c.size)
"""


@pytest.mark.skipif(not os.environ.get("NUMBA_ENABLE_CUDASIM") and
                    __import__("importlib").util.find_spec("numba_cuda") is None, reason="needs numba-cuda")
def test_cuda_simulator_takes_the_same_changes():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-c", CUDA_SCRIPT], env=env, capture_output=True, text=True, timeout=900)
    assert "SAME" in out.stdout, out.stdout + out.stderr


def test_network_attributes_are_fixed():
    net = es.Network(dt=0.1)
    for name in ("dt", "seed", "engine", "populations"):
        with pytest.raises(AttributeError, match=f"Network.{name} is fixed"):
            setattr(net, name, getattr(net, name))
    with pytest.raises(AttributeError, match="no attribute 'time_step'"):
        net.time_step = 0.2  # a typo is not a silent no-op
    with pytest.raises(AttributeError):
        net.t = 5.0  # read-only property
    assert net.dt == 0.1


def _relay_net(schedule):
    """20 relay neurons (one spike per step with input) on a Poisson source of 20 channels."""
    net = es.Network(dt=0.1, seed=11)
    pop = net.population(20, es.LIF(tau_m=10.0, v_th=1.0, v_reset=0.0, t_ref=0.0, c_m=1.0))
    rates = np.linspace(500.0, 3000.0, 20)
    src = net.poisson(20, rate=800.0, **schedule)
    net.connect(src, pop, es.OneToOne(), weight=50.0, delay=0.1)
    return net, src, net.record_spikes(pop), rates


def test_scheduled_rates_equal_rates_set_between_runs(tmp_path):
    rates = np.linspace(500.0, 3000.0, 20)
    net, src, sched, _ = _relay_net(dict(rate_times=[30.0, 55.5], rate_values=np.vstack([rates, np.zeros(20)])))
    net.run(40.0)
    assert np.array_equal(src.get("rate"), rates)
    net.save(tmp_path / "mid.ckpt")
    net.run(40.0)
    live, lsrc, lrec, _ = _relay_net({})
    live.run(30.0)
    lsrc.set(rate=rates)
    live.run(25.5)
    lsrc.set(rate=0.0)
    live.run(24.5)
    assert len(sched.steps) > 100 and _same(sched.steps, lrec.steps) and _same(sched.senders, lrec.senders)
    assert not (sched.steps > 556).any()  # silent after 55.5 ms
    net.close()
    back = es.Network.load(tmp_path / "mid.ckpt")
    back.run(40.0)
    assert _same(back.recorders[0].steps, sched.steps)
    # the schedule survives a checkpoint taken between two of its changes, and set() inside a schedule
    # lasts until its next change
    n2, s2, r2, _ = _relay_net(dict(rate_times=[30.0], rate_values=[0.0]))
    n2.run(10.0)
    s2.set(rate=3000.0)
    n2.run(40.0)
    assert r2.steps[(r2.steps > 101) & (r2.steps <= 300)].size > r2.steps[r2.steps <= 100].size
    assert not (r2.steps > 301).any()


@pytest.mark.parametrize("kw,match", [(dict(rate_times=[1.0]), "go together"),
                                      (dict(rate_times=[2.0, 1.0], rate_values=[1.0, 2.0]), "increasing"),
                                      (dict(rate_times=[1.05], rate_values=[1.0]), "rate_times"),
                                      (dict(rate_times=[1.0], rate_values=[-1.0]), "rate"),
                                      (dict(rate_times=[1.0, 2.0], rate_values=np.ones((2, 3))), "rate_values")])
def test_bad_rate_schedules_are_refused(kw, match):
    net = es.Network(dt=0.1)
    with pytest.raises(ValueError, match=match):
        net.poisson(2, rate=1.0, **kw)
    assert net.sources == []
    with pytest.raises(NotImplementedError, match="engine='clock'"):
        es.Network(engine="event").poisson(2, rate=1.0, rate_times=[1.0], rate_values=[2.0])


def test_step_current_equals_amplitudes_set_between_runs(tmp_path):
    """NEST's step_current_generator: 0 pA, then each amplitude from its time on; the same as dc.set at
    those times, bit for bit, and across a checkpoint taken between two changes."""
    def build():
        net = es.Network(dt=0.1, seed=2)
        pop = net.population(3, EXP)
        return net, pop, net.record_state(pop, "v"), net.record_spikes(pop)

    net, pop, v1, s1 = build()
    sc = net.step_current([20.0, 45.5, 70.0], np.array([[300.0, 500.0, 0.0], [600.0, 0.0, 450.0],
                                                         [-100.0, 100.0, 0.0]]), n=3)
    net.connect(sc, pop, es.OneToOne(), weight=1.0)
    assert np.array_equal(sc.get("amplitude"), [0.0, 0.0, 0.0])
    net.run(50.0)
    assert np.array_equal(sc.get("amplitude"), [600.0, 0.0, 450.0])
    net.save(tmp_path / "c.ckpt")
    net.run(50.0)
    ref, rpop, v2, s2 = build()
    dc = ref.dc(0.0, n=3)
    ref.connect(dc, rpop, es.OneToOne(), weight=1.0)
    for t, amp in ((20.0, [300.0, 500.0, 0.0]), (25.5, [600.0, 0.0, 450.0]), (24.5, [-100.0, 100.0, 0.0])):
        ref.run(t)
        dc.set(amplitude=amp)
    ref.run(30.0)
    assert _same(v1.values, v2.values) and len(s1.steps) > 3 and _same(s1.steps, s2.steps)
    net.close()
    back = es.Network.load(tmp_path / "c.ckpt")
    back.run(50.0)
    assert _same(back.recorders[0].values, v1.values)
    with pytest.raises(ValueError, match="amplitude_values"):
        net.step_current([1.0, 2.0], [1.0], n=1)
    with pytest.raises(NotImplementedError, match="engine='clock'"):
        es.Network(engine="event").step_current([1.0], [1.0])
