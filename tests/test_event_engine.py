"""The event-driven engine: closed forms, brentq, the clock engine, ties, runs, checkpoints, errors."""

import math
import os
import runpy

import numpy as np
import pytest
from scipy.optimize import brentq

import eventsim as es
from eventsim.engines import event_cpu as ev

EX = os.path.join(os.path.dirname(__file__), "..", "examples")


def single(model, inputs=(), weights=(), t_sim=100.0, v_init=None):
    """One neuron driven by explicit input times; returns its spike times."""
    net = es.Network(dt=0.1, engine="event")
    pop = net.population(1, model, v_init=v_init)
    if len(inputs):
        src = net.spike_source(senders=np.arange(len(inputs)), times=inputs)
        net.connect(src, pop, es.FromArrays(pre=np.arange(len(inputs)), post=np.zeros(len(inputs), int)),
                    weight=np.asarray(weights, float), delay=1.0)
    rec = net.record_spikes(pop)
    net.run(t_sim)
    return rec.times


# ---------------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("tau_syn", [None, 2.0])
def test_constant_current_isi(tau_syn):
    tau_m, c_m, i_e, v_th, t_ref = 10.0, 250.0, 500.0, 15.0, 2.0
    m = es.LIF(tau_m=tau_m, c_m=c_m, v_th=v_th, v_reset=0.0, t_ref=t_ref, i_e=i_e,
               tau_syn_ex=tau_syn, tau_syn_in=tau_syn)
    t = single(m, t_sim=200.0)
    v_inf = i_e * tau_m / c_m
    first = tau_m * math.log(v_inf / (v_inf - v_th))
    expect = first + np.arange(t.size) * (first + t_ref)
    assert t.size == 12
    np.testing.assert_allclose(t, expect, rtol=0, atol=1e-10)


def test_non_leaky_constant_current():
    t = single(es.IF(c_m=100.0, v_th=10.0, v_reset=0.0, t_ref=1.0, i_e=50.0), t_sim=50.0)
    np.testing.assert_allclose(t, 20.0 + np.arange(t.size) * 21.0, rtol=0, atol=1e-10)
    assert t.size == 2


def psp(t, w, tau_m, tau_s, c_m):
    """Membrane response (mV) at t ms to a current jump w pA at 0 decaying with tau_s."""
    if tau_m == tau_s:
        return w / c_m * t * np.exp(-t / tau_m)
    return w / c_m * tau_m * tau_s / (tau_m - tau_s) * (np.exp(-t / tau_m) - np.exp(-t / tau_s))


@pytest.mark.parametrize("tau_s", [2.0, 10.0])
def test_one_input_spike_crossing_matches_brentq(tau_s):
    tau_m, c_m, v_th = 10.0, 250.0, 15.0
    w = 3000.0
    m = es.LIF(tau_m=tau_m, c_m=c_m, v_th=v_th, v_reset=0.0, t_ref=2.0, tau_syn_ex=tau_s, tau_syn_in=tau_s)
    t = single(m, inputs=[5.0], weights=[w], t_sim=50.0)
    arrival = 6.0
    t_peak = (tau_m * tau_s / (tau_m - tau_s) * math.log(tau_m / tau_s)) if tau_m != tau_s else tau_m
    root = brentq(lambda s: psp(s, w, tau_m, tau_s, c_m) - v_th, 0.0, t_peak, xtol=1e-14, rtol=1e-15)
    assert t.size >= 1
    assert abs(t[0] - (arrival + root)) < 1e-10


def test_two_input_spikes_crossing_matches_brentq():
    tau_m, tau_s, c_m, v_th = 10.0, 3.0, 250.0, 15.0
    w1, w2 = 1500.0, 1200.0
    m = es.LIF(tau_m=tau_m, c_m=c_m, v_th=v_th, v_reset=0.0, t_ref=2.0, tau_syn_ex=tau_s, tau_syn_in=tau_s)
    t = single(m, inputs=[2.0, 4.5], weights=[w1, w2], t_sim=40.0)

    def v(x):  # arrivals at 3.0 and 5.5 ms
        return psp(x - 3.0, w1, tau_m, tau_s, c_m) + psp(x - 5.5, w2, tau_m, tau_s, c_m) - v_th

    assert v(5.5) < 0 < v(9.0)
    root = brentq(v, 5.5, 9.0, xtol=1e-14, rtol=1e-15)
    assert t.size == 1
    assert abs(t[0] - root) < 1e-10


def test_grazing_crossing_is_not_missed():
    """A PSP whose peak lies 1e-9 mV above threshold spikes; 1e-9 mV below does not."""
    tau_m, tau_s, c_m, v_th = 10.0, 2.0, 250.0, 15.0
    t_peak = tau_m * tau_s / (tau_m - tau_s) * math.log(tau_m / tau_s)
    w_exact = v_th / psp(t_peak, 1.0, tau_m, tau_s, c_m)
    m = es.LIF(tau_m=tau_m, c_m=c_m, v_th=v_th, v_reset=0.0, t_ref=2.0, tau_syn_ex=tau_s, tau_syn_in=tau_s)
    above = single(m, inputs=[0.0], weights=[w_exact * (1 + 1e-10)], t_sim=30.0)
    below = single(m, inputs=[0.0], weights=[w_exact * (1 - 1e-10)], t_sim=30.0)
    assert above.size == 1 and abs(above[0] - (1.0 + t_peak)) < 1e-3
    assert below.size == 0


def test_adaptive_threshold_crossings_match_brentq():
    tau_m, c_m, i_e, tau_th, d_th = 10.0, 250.0, 600.0, 50.0, 3.0
    m = es.ALIF(tau_m=tau_m, c_m=c_m, v_th=15.0, v_reset=0.0, t_ref=2.0, i_e=i_e, tau_theta=(tau_th,),
                d_theta=(d_th,))
    t = single(m, t_sim=100.0)
    assert t.size >= 4
    v_inf = i_e * tau_m / c_m
    theta, prev = 0.0, None
    for k, tk in enumerate(t):
        start = 0.0 if prev is None else prev + 2.0
        v0 = 0.0
        th0 = theta * math.exp(-(start - (prev if prev is not None else 0.0)) / tau_th)

        def f(x, v0=v0, th0=th0, start=start):
            s = x - start
            return v_inf + (v0 - v_inf) * math.exp(-s / tau_m) - 15.0 - th0 * math.exp(-s / tau_th)

        root = brentq(f, start, start + 200.0, xtol=1e-14, rtol=1e-15)
        assert abs(tk - root) < 1e-9, k
        theta = (th0 * math.exp(-(tk - start) / tau_th)) + d_th
        prev = tk


def test_dc_source_switches_bias_exactly():
    net = es.Network(dt=0.1, engine="event")
    pop = net.population(2, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, v_reset=0.0, t_ref=2.0))
    dc = net.dc(250.0, start=10.05, stop=40.0)
    net.connect(dc, pop, es.AllToAll(), weight=np.array([2.0, 0.5]))  # 500 pA and 125 pA
    rec = net.record_spikes(pop)
    net.run(100.0)
    first = 10.0 * math.log(20.0 / 5.0)  # v_inf = 20 mV for 500 pA
    expect = 10.05 + first + np.arange(2) * (first + 2.0)
    np.testing.assert_allclose(rec.times, expect, rtol=0, atol=1e-10)  # stops before the third
    assert np.all(rec.senders == 0)  # 125 pA never reaches threshold (v_inf = 5 mV)


# ---------------------------------------------------------------------------------- clock engine
def _grid_network(engine, seed=3):
    # Refractoriness: the clock engine discards input stamped (t, t + t_ref], the event engine input in
    # [t, t + t_ref) (NEST's precise models).  Inputs lie on the grid, so an event-engine t_ref of
    # 2.05 ms discards exactly the inputs of the clock engine's 2.0 ms; with v_reset == v_rest and no
    # bias the clamped membrane does not move either way.
    rng = np.random.default_rng(seed)
    net = es.Network(dt=0.1, seed=seed, engine=engine)
    t_ref = 2.0 if engine == "clock" else 2.05
    pop = net.population(40, es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=t_ref), v_init=rng.uniform(0, 14, 40))
    n_in = 200
    senders = rng.integers(0, n_in, 4000)
    times = np.round(rng.uniform(0, 200, senders.size), 1)
    src = net.spike_source(senders=senders, times=times, n=n_in)
    net.connect(src, pop, es.FixedInDegree(10), weight=es.Uniform(1.0, 4.0), delay=1.0)
    net.connect(pop, pop, es.FixedInDegree(5), weight=np.round(rng.uniform(-3, 3, 200), 2), delay=1.5)
    return net, net.record_spikes(pop)


def test_event_and_clock_engines_agree_on_the_grid():
    """Delta synapses without bias: crossings happen only at input times, which lie on the grid."""
    out = {}
    for engine in ("clock", "event"):
        net, rec = _grid_network(engine)
        net.run(250.0)
        out[engine] = (rec.senders, rec.times)
    assert out["clock"][0].size > 50
    order = [np.lexsort((s, np.round(t, 6))) for s, t in out.values()]
    (cs, ct), (es_, et) = [(s[o], t[o]) for (s, t), o in zip(out.values(), order)]
    np.testing.assert_array_equal(cs, es_)
    np.testing.assert_allclose(et, ct, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------- ties and order
def test_simultaneous_delta_inputs_are_summed_before_the_threshold_test():
    m = es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=2.0)
    # v starts at 14: +2 then -2 at the same time sums to 0 -> no spike
    # v(4 ms) = 14 exp(-0.4) = 9.4 mV: +7 then -7 at the same time sums to 0 -> no spike
    assert single(m, inputs=[3.0, 3.0], weights=[7.0, -7.0], v_init=14.0, t_sim=20.0).size == 0
    assert single(m, inputs=[3.0, 3.0], weights=[-7.0, 7.0], v_init=14.0, t_sim=20.0).size == 0
    assert single(m, inputs=[3.0, 3.05], weights=[7.0, -7.0], v_init=14.0, t_sim=20.0).size == 1


def _tie_network(perm):
    net = es.Network(dt=0.1, seed=1, engine="event")
    pop = net.population(30, es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=5.0,
                                    i_e=300.0))
    rng = np.random.default_rng(0)
    pre = rng.integers(0, 20, 300)
    post = rng.integers(0, 30, 300)
    w = rng.choice([-900.0, 700.0, 400.0], 300)
    src = net.spike_source(senders=np.repeat(np.arange(20), 5), times=np.tile([5.0, 10.0, 15.0, 20.0, 25.0], 20))
    p = perm(300)
    net.connect(src, pop, es.FromArrays(pre=pre[p], post=post[p]), weight=w[p], delay=1.0)
    rpre, rpost = rng.integers(0, 30, 200), rng.integers(0, 30, 200)
    rw = rng.choice([-500.0, 300.0], 200)
    q = perm(200)
    net.connect(pop, pop, es.FromArrays(pre=rpre[q], post=rpost[q]), weight=rw[q], delay=2.0)
    rec = net.record_spikes(pop)
    net.run(100.0)
    return rec.senders, rec.times


def test_result_does_not_depend_on_connection_order():
    """Many events at identical times (inputs, delays): the order of creation does not matter."""
    s0, t0 = _tie_network(np.arange)
    rng = np.random.default_rng(5)
    s1, t1 = _tie_network(rng.permutation)
    assert s0.size > 20
    np.testing.assert_array_equal(s0, s1)
    np.testing.assert_array_equal(t0, t1)


# ---------------------------------------------------------------------------------- runs, seeds, checkpoints
def _poisson_network(seed=2):
    net = es.Network(dt=0.1, seed=seed, engine="event")
    exc = net.population(80, es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, tau_syn_ex=1.0, tau_syn_in=2.0))
    ada = net.population(20, es.ALIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, tau_theta=(30.0,),
                                     d_theta=(2.0,)))
    noise = net.poisson(100, rate=np.linspace(2000.0, 4000.0, 100))
    net.connect(noise, exc | ada, es.OneToOne(), weight=np.r_[np.full(80, 120.0), np.full(20, 1.2)], delay=0.5)
    net.connect(exc, exc | ada, es.FixedProbability(0.1), weight=es.Normal(20.0, 5.0), delay=es.Uniform(1.0, 3.0))
    return net, net.record_spikes(exc | ada), net.record_state(exc[:3], "v", interval=0.5)


def test_run_split_and_seed():
    a, ra, va = _poisson_network()
    a.run(150.0)
    b, rb, vb = _poisson_network()
    for d in (20.0, 0.0, 33.3, 96.7):
        b.run(d)
    assert abs(b.t - 150.0) < 1e-12
    assert ra.times.size > 200
    np.testing.assert_array_equal(ra.times, rb.times)
    np.testing.assert_array_equal(ra.senders, rb.senders)
    np.testing.assert_array_equal(va.values, vb.values)
    assert va.values.shape == (300, 3)
    c, rc, _ = _poisson_network(seed=3)
    c.run(150.0)
    assert not np.array_equal(ra.times[:50], rc.times[:50])


def test_poisson_rate():
    net = es.Network(dt=0.1, seed=4, engine="event")
    pop = net.population(50, es.LIF(v_th=1e9, v_reset=0.0))
    noise = net.poisson(50, rate=200.0)
    net.connect(noise, pop, es.OneToOne(), weight=0.0, delay=0.1)
    net.run(1000.0)
    n = net.synaptic_events[1]
    assert abs(n - 10000) < 5 * math.sqrt(10000)


def test_state_recorder_samples_exact_trajectory():
    net = es.Network(dt=0.1, engine="event")
    pop = net.population(1, es.LIF(tau_m=10.0, c_m=250.0, v_th=100.0, v_reset=0.0, i_e=250.0))
    rec = net.record_state(pop, "v", interval=1.0)
    net.run(10.0)
    np.testing.assert_allclose(rec.times, np.arange(1, 11, dtype=float))
    np.testing.assert_allclose(rec.values[:, 0], 10.0 * (1 - np.exp(-rec.times / 10.0)), rtol=0, atol=1e-12)


def test_checkpoint_resume_is_exact(tmp_path):
    a, ra, _ = _poisson_network()
    a.run(120.0)
    b, rb, _ = _poisson_network()
    b.run(50.0)
    b.save(tmp_path / "c.ckpt")
    c = es.Network.load(tmp_path / "c.ckpt")
    c.run(70.0)
    rc = c.recorders[0]
    np.testing.assert_array_equal(ra.times, rc.times)
    np.testing.assert_array_equal(ra.senders, rc.senders)


# ---------------------------------------------------------------------------------- queues, streams, layout
def _run_poisson_network(t=150.0, setup=None):
    net, rec, vrec = _poisson_network()
    net.run(0.0)  # builds the engine
    if setup:
        setup(net._plan)
    net.run(t)
    return net, rec.senders, rec.times, vrec.values


def test_poisson_stream_windows_do_not_change_the_results(monkeypatch):
    """Poisson emissions are generated in time windows; neither the window length nor the halving of
    an oversized window shows in the spikes or the sampled membrane potentials."""
    from eventsim.engines import event_plan
    _, s0, t0, v0 = _run_poisson_network()
    assert s0.size > 200
    monkeypatch.setattr(event_plan, "_STREAM_TARGET", 1)  # windows of about one emission per channel
    net1, s1, t1, v1 = _run_poisson_network()

    def huge_window(plan):
        plan.SRC.win[1] = 1e6  # ms: would hold far too many emissions, so it is halved until it fits

    net2, s2, t2, v2 = _run_poisson_network(setup=huge_window)
    assert net2._plan.SRC.win[1] < 1e6
    for s, t, v in ((s1, t1, v1), (s2, t2, v2)):
        np.testing.assert_array_equal(s, s0)
        np.testing.assert_array_equal(t, t0)
        np.testing.assert_array_equal(v, v0)
    assert net1.synaptic_events == net2.synaptic_events


def test_event_heap_grows_between_calls_without_losing_events(monkeypatch):
    """The kernel never allocates: when the heap may overflow (also in the middle of the threshold
    tests of many simultaneous inputs) it returns, the heap grows and it resumes."""
    from eventsim.engines import event_plan

    def network():
        net = es.Network(dt=0.1, seed=3, engine="event")
        pop = net.population(60, es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=1.0))
        src = net.spike_source(senders=np.zeros(4, np.int64), times=[5.0, 20.0, 35.0, 50.0], n=1)
        net.connect(src, pop, es.AllToAll(), weight=16.0, delay=1.0)  # all 60 spike at the same times
        net.connect(pop, pop, es.FixedInDegree(6), weight=es.Uniform(-3.0, 3.0),
                    delay=np.round(np.random.default_rng(1).uniform(0.5, 4.0, 360), 1))  # many delay groups
        return net, net.record_spikes(pop)

    a, ra = network()
    a.run(80.0)
    monkeypatch.setattr(event_plan, "_QUEUE_START", 1)
    b, rb = network()
    b.run(80.0)
    assert b._plan.Q[0].size > 1 and ra.times.size > 200
    np.testing.assert_array_equal(ra.senders, rb.senders)
    np.testing.assert_array_equal(ra.times, rb.times)


def test_neurons_with_equal_parameters_share_one_row():
    net = es.Network(dt=0.1, engine="event")
    a = net.population(50, es.LIF(tau_m=10.0, i_e=np.linspace(0.0, 400.0, 50)))
    b = net.population(30, es.LIF(tau_m=10.0, v_th=np.r_[np.full(15, 20.0), np.full(15, 22.0)]))
    net.record_spikes(b[:5])
    net.run(1.0)
    plan = net._plan
    # the bias current is state (DC sources change it), so population a is one class; b has two
    # thresholds, and its recorded neurons differ in the record flag: 1 + 3 rows
    assert plan.PP.shape[0] == 4
    np.testing.assert_array_equal(plan.SS[:50, ev.IB], np.linspace(0.0, 400.0, 50))
    assert plan.SS.ctypes.data % 64 == 0 and plan.SS.shape[1] * 8 == 64


def test_synapse_order_is_lexsort_by_emitter_delay_target():
    rng = np.random.default_rng(7)
    for trial in range(12):
        n = int(rng.integers(0, 4000))
        n_em = int(rng.integers(1, 30))  # few emitters: runs longer than 64 use the merge-sort path
        pre = rng.integers(0, n_em, n)
        post = rng.integers(0, 40, n)  # multapses: equal triples keep their input order
        d = rng.choice([0.5, 1.0, 1.5, 2.25], n) if trial % 2 else np.full(n, 1.0)
        np.testing.assert_array_equal(ev.synapse_order(pre, d, post, n_em), np.lexsort((post, d, pre)))
    assert ev.synapse_order(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), 3).size == 0


def test_parameter_classes_of_interleaved_rows():
    from eventsim.engines.event_plan import _classes
    PP = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [3.0, 4.0], [3.0, 4.0], [0.0, 9.0]])
    table, cls = _classes(PP)
    np.testing.assert_array_equal(table[cls], PP)
    assert table.shape[0] == 3


def test_time_order_sorts_only_what_is_needed():
    from eventsim.engines.event_plan import _time_order
    t = np.array([1.0, 2.0, 2.0, 2.0, 3.0, 4.0, 4.0])
    i = np.array([5, 9, 1, 4, 0, 8, 2])
    t1, i1 = _time_order(t.copy(), i.copy())
    np.testing.assert_array_equal(t1, t)
    np.testing.assert_array_equal(i1, [5, 1, 4, 9, 0, 2, 8])
    t2, i2 = _time_order(np.array([3.0, 1.0, 1.0]), np.array([0, 7, 2]))  # out of order: full sort
    np.testing.assert_array_equal(t2, [1.0, 1.0, 3.0])
    np.testing.assert_array_equal(i2, [2, 7, 0])
    t3, i3 = _time_order(np.array([1.0]), np.array([4]))
    assert t3.tolist() == [1.0] and i3.tolist() == [4]


def test_prefetch_row_changes_nothing():
    from numba import njit

    from eventsim.engines._intrinsics import prefetch_row

    @njit
    def total(a, rows):
        s = 0.0
        for j in range(rows.size):
            prefetch_row(a, rows[j] + 1000)  # out of range: a prefetch never faults
            prefetch_row(a, rows[j])
            s += a[rows[j], 1]
        return s

    a = np.arange(40.0).reshape(10, 4)
    assert total(a, np.array([0, 3, 9])) == 1.0 + 13.0 + 37.0


# ---------------------------------------------------------------------------------- errors
def test_unsupported_and_invalid_inputs():
    net = es.Network(dt=0.1, engine="event")
    pop = net.population(2, es.LIF())
    with pytest.raises(ValueError, match="stop"):
        net.dc(10.0, start=5.0, stop=5.0)
    with pytest.raises(NotImplementedError, match="v_min"):
        net.population(1, es.LIF(v_min=-5.0))
    src = net.spike_source(senders=[0], times=[0.05])  # off-grid is fine here
    with pytest.raises(ValueError, match="delay"):
        net.connect(src, pop, es.AllToAll(), weight=1.0, delay=0.0)
    with pytest.raises(NotImplementedError, match="CPU"):
        es.Network(engine="event", backend="cuda")
    rec = net.record_spikes(pop)
    net.run(1.0)
    with pytest.raises(AttributeError, match="times"):
        rec.steps


def test_brette_benchmark4_example_quick():
    mod = runpy.run_path(os.path.join(EX, "brette2007_bench4.py"))
    rate = mod["main"](["--t-sim", "100", "--plot", ""])
    assert 2.0 < rate < 40.0
