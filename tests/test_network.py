"""Public API behaviour: views, rules, sources, recorders, determinism."""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsim as es


def random_net(seed=5, kind="delta"):
    net = es.Network(dt=0.1, seed=seed)
    if kind == "delta":
        model = es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
        w_e, w_i = 0.5, -2.5
    else:
        model = es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, v_reset=0.0, t_ref=2.0, tau_syn_ex=2.0, tau_syn_in=5.0)
        w_e, w_i = 60.0, -300.0
    e = net.population(80, model, v_init=es.Uniform(0.0, 15.0))
    i = net.population(20, model, v_init=es.Uniform(0.0, 15.0))
    net.connect(e, e | i, es.FixedInDegree(20), weight=es.Normal(w_e, 0.1 * abs(w_e)),
                delay=es.Uniform(0.5, 3.0))
    net.connect(i, e | i, es.FixedProbability(0.2), weight=w_i, delay=1.0)
    noise = net.poisson(100, rate=np.linspace(5000.0, 20000.0, 100) if kind == "delta" else 8000.0)
    net.connect(noise, e | i, es.OneToOne(), weight=w_e, delay=0.1)
    return net, e, i


def run_collect(net, e, i, chunks):
    sp = net.record_spikes(e | i)
    vm = net.record_state(e[::7], "v", interval=0.3)
    for c in chunks:
        net.run(c)
    return sp.steps, sp.senders, vm.values, vm.steps


@settings(max_examples=8, deadline=None)
@given(split=st.integers(1, 999), kind=st.sampled_from(["delta", "exp"]))
def test_run_split_equals_one_run(split, kind):
    a = run_collect(*random_net(kind=kind), [100.0])
    b = run_collect(*random_net(kind=kind), [split * 0.1, 100.0 - split * 0.1])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_many_small_runs_equal_one_run():
    a = run_collect(*random_net(), [50.0])
    b = run_collect(*random_net(), [0.1] * 500)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_same_seed_same_spikes_different_seed_different():
    a = run_collect(*random_net(seed=1), [100.0])
    b = run_collect(*random_net(seed=1), [100.0])
    c = run_collect(*random_net(seed=2), [100.0])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[2], b[2])
    assert len(a[0]) > 100
    assert not (len(a[0]) == len(c[0]) and np.array_equal(a[1], c[1]))


def test_views_slices_and_unions():
    net = es.Network()
    a = net.population(10, es.LIF())
    b = net.population(5, es.LIF())
    assert len(a[2:5]) == 3 and a[2:5].ids.tolist() == [2, 3, 4]
    assert a[np.array([9, 0])].ids.tolist() == [9, 0]
    assert a[-1].ids.tolist() == [9]
    u = a[:3] | b | a[1:4]
    assert u.ids.tolist() == [0, 1, 2, 10, 11, 12, 13, 14, 3]
    assert b[np.arange(5) % 2 == 0].ids.tolist() == [10, 12, 14]
    assert u[3:5].ids.tolist() == [10, 11]


def test_recorder_senders_are_positions_in_the_group():
    net = es.Network(dt=0.1)
    a = net.population(4, es.LIF(i_e=np.array([0.0, 400.0, 0.0, 500.0])))
    b = net.population(2, es.LIF(i_e=600.0))
    grp = b | a[::-1]
    sp = net.record_spikes(grp)
    net.run(30.0)
    assert set(sp.senders.tolist()) == {0, 1, 2, 4}  # b0, b1, a3 (pos 2), a1 (pos 4)
    assert set(sp.neuron_ids.tolist()) == {4, 5, 3, 1}
    assert np.all(np.diff(sp.steps) >= 0)
    np.testing.assert_allclose(sp.times, sp.steps * 0.1)


def test_recorders_in_creation_order_and_interval():
    net = es.Network(dt=0.1)
    a = net.population(3, es.LIF(i_e=500.0))
    r1 = net.record_state(a, "v", interval=1.0)
    r2 = net.record_spikes(a)
    r3 = net.record_state(a[:1], "v")
    assert net.recorders == [r1, r2, r3]
    net.run(5.05 - 0.05)
    net.run(2.0)
    np.testing.assert_array_equal(r1.steps, np.arange(10, 71, 10))
    np.testing.assert_allclose(r1.times, np.arange(1.0, 7.01, 1.0))
    np.testing.assert_array_equal(r1.values[:, 0], r3.values[9::10, 0])


def test_fixed_indegree_exact_and_no_autapses():
    net = es.Network(seed=4)
    a = net.population(50, es.LIF())
    proj = net.connect(a, a, es.FixedInDegree(7), weight=1.0)
    assert np.all(np.bincount(proj.post, minlength=50) == 7)
    assert not np.any(proj.pre == proj.post)
    proj2 = net.connect(a, a, es.FixedInDegree(10, allow_multapses=False), weight=1.0)
    pairs = set(zip(proj2.pre.tolist(), proj2.post.tolist()))
    assert len(pairs) == 500 and not np.any(proj2.pre == proj2.post)


def test_fixed_probability_statistics():
    net = es.Network(seed=4)
    a = net.population(400, es.LIF())
    b = net.population(300, es.LIF())
    proj = net.connect(a, b, es.FixedProbability(0.1), weight=1.0)
    n = len(proj)
    assert abs(n - 12000) < 5 * np.sqrt(12000 * 0.9)
    assert len(set(zip(proj.pre.tolist(), proj.post.tolist()))) == n


def test_all_to_all_and_autapses():
    net = es.Network()
    a = net.population(4, es.LIF())
    assert len(net.connect(a, a, es.AllToAll(), weight=1.0)) == 16
    assert len(net.connect(a, a, es.AllToAll(allow_autapses=False), weight=1.0)) == 12


def test_poisson_rate():
    net = es.Network(dt=0.1, seed=9)
    pop = net.population(200, es.LIF(tau_m=10.0, c_m=1.0, v_th=1e6, v_reset=0.0))
    noise = net.poisson(200, rate=np.full(200, 500.0))
    net.connect(noise, pop, es.OneToOne(), weight=1.0, delay=0.1)
    net.run(1000.0)
    _, ext = net.synaptic_events
    expect = 200 * 500.0
    assert abs(ext - expect) < 5 * np.sqrt(expect)


def _run_with_threads(net, duration, threads):
    """``net.run(duration)`` on ``threads`` Numba threads (at most the pool size), restoring the count."""
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        net.run(duration)
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("span", [1.0, 0.0])
@pytest.mark.parametrize("threads", [1, 2])
def test_poisson_counts_are_the_generator_counts(threads, span, monkeypatch):
    """Every count the engine adds is rng.poisson_count of (seed, step, channel), on every code path.

    ``span`` 1.0: single-synapse channels drawn in one vectorised pass per
    partition; 0.0: group by group.
    """
    from eventsim import config
    from eventsim.rng import POISSON, key_words, poisson_count

    monkeypatch.setattr(config, "POISSON_GROUP_SPAN", span)

    n_steps = 200
    net = es.Network(dt=0.1, seed=5)
    pop = net.population(6, es.IF(c_m=1.0, v_rest=0.0, v_th=1e12), v_init=0.0)
    rates = np.array([500.0, 20_000.0, 300_000.0, 800.0, 20_000.0, 150_000.0])  # 0.05 .. 30 per step
    noise = net.poisson(6, rate=rates)
    # channels 0-2: one synapse each (compact path); 3-5: two synapses each (general path);
    # neurons 0-2 receive from both kinds
    net.connect(noise[:3], pop[:3], es.OneToOne(), weight=1.0, delay=0.1)
    net.connect(noise[3:], pop[:3], es.OneToOne(), weight=1000.0, delay=0.1)
    net.connect(noise[3:], pop[3:], es.OneToOne(), weight=1.0, delay=0.1)
    _run_with_threads(net, n_steps * 0.1, threads)
    k0, k1 = key_words(5, POISSON)
    lam = rates * 0.1e-3
    counts = np.array([[poisson_count(lam[c], k0, k1, s, c) for c in range(6)] for s in range(n_steps)])
    v = net._plan.state.v
    total = counts.sum(axis=0).astype(float)
    np.testing.assert_array_equal(v[3:], total[3:])
    np.testing.assert_array_equal(v[:3], total[:3] + 1000.0 * total[3:])
    src = net._plan.sources
    assert (src.one_u.size > 0) == (span > 0)


@pytest.mark.parametrize("threads", [1, 2])
def test_poisson_channels_with_a_gap_are_drawn_in_sub_ranges(threads):
    """Single-synapse channels of one partition with a long gap of channel ids between them (as on an MPI
    rank, which owns a block of every population): two sub-ranges, each drawing only its own Philox groups,
    and every count still the generator's."""
    from eventsim import config
    from eventsim.rng import POISSON, key_words, poisson_count

    n_steps = 100
    net = es.Network(dt=0.1, seed=9)
    pop = net.population(80, es.IF(c_m=1.0, v_rest=0.0, v_th=1e12), v_init=0.0)
    noise = net.poisson(240, rate=3000.0)
    net.connect(noise[:40], pop[:40], es.OneToOne(), weight=1.0, delay=0.1)      # groups 0-9
    net.connect(noise[200:], pop[40:], es.OneToOne(), weight=1.0, delay=0.1)     # groups 50-59
    _run_with_threads(net, n_steps * 0.1, threads)
    k0, k1 = key_words(9, POISSON)
    ch = np.r_[0:40, 200:240]
    counts = np.array([[poisson_count(0.3, k0, k1, s, c) for c in ch] for s in range(n_steps)])
    np.testing.assert_array_equal(net._plan.state.v, counts.sum(axis=0).astype(float))
    src = net._plan.sources
    assert 50 - 10 > config.POISSON_GROUP_GAP
    assert src.one_sptr[-1] >= 2 and src.one_u.size > 0  # (vectorised passes, at least one per side of the gap)
    for k in range(src.one_sptr[-1]):  # no pass draws a group of the gap (groups 10-49: 160 channels)
        a, n_g = src.one_g0[k], src.one_gptr[k + 1] - src.one_gptr[k]
        assert n_g > 0 and (a + n_g <= 10 or a >= 50), (k, a, n_g)


@pytest.mark.parametrize("threads", [1, 2])
def test_single_synapse_poisson_runs(threads):
    """Runs of single-synapse channels: cut at every change of weight, rate, channel, column or delay.

    Each neuron receives one channel; its voltage must be the sum of the
    generator's counts times its weight, whatever cuts the runs.
    """
    from eventsim.rng import POISSON, key_words, poisson_count

    n, n_steps = 24, 60
    net = es.Network(dt=0.1, seed=11)
    pop = net.population(n, es.IF(c_m=1.0, v_rest=0.0, v_th=1e12), v_init=0.0)
    rates = np.full(n, 20_000.0)
    rates[8:12] = 5_000.0                      # another rate row mid-way
    noise = net.poisson(n + 2, rate=np.concatenate([rates[:20], [1.0, 1.0], rates[20:]]))
    ch = np.concatenate([np.arange(20), np.arange(22, 26)])   # channels 20, 21 unused: a gap
    w = np.full(n, 0.5)
    w[4:6] = 2.0                               # another weight
    d = np.full(n, 0.1)
    d[14:18] = 0.3                             # another delay row
    target = np.arange(n)
    # the last two channels: consecutive ring offsets across a row end (last column, delay 1 ->
    # first column, delay 2)
    target[22], target[23] = n - 1, 0
    d[22], d[23] = 0.1, 0.2
    w[22] = w[23] = 0.25
    for i in range(n):
        net.connect(noise[int(ch[i]):int(ch[i]) + 1], pop[int(target[i]):int(target[i]) + 1], es.OneToOne(),
                    weight=float(w[i]), delay=float(d[i]))
    _run_with_threads(net, n_steps * 0.1, threads)
    k0, k1 = key_words(11, POISSON)
    lam = noise.rate * 0.1e-3
    want = np.zeros(n)
    for i in range(n):
        ds = int(round(d[i] / 0.1))
        c = sum(poisson_count(lam[ch[i]], k0, k1, s, int(ch[i])) for s in range(n_steps - ds + 1))
        want[target[i]] += c * w[i]
    np.testing.assert_array_equal(net._plan.state.v, want)
    src = net._plan.sources
    assert np.diff(src.one_run).min() >= 1 and src.one_rptr[-1] == src.one_run.size - 1


def test_channel_runs_cuts():
    from eventsim.engines.plan import _channel_runs

    C = 10
    ch = np.array([0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11])
    cls = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    off = np.array([3, 4, 5, 6, 7, 8, 9, 10, 11, 22, 23])
    w = np.array([1.0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    # cuts: 4 (channel gap), 6 (rate), 7 (column 9 -> next row's column 0), 9 (offset jump), 5 (partition)
    run, rptr = _channel_runs(ch, cls, off, w, np.array([0, 5, 11]), C)
    assert run.tolist() == [0, 4, 5, 6, 7, 9, 11]
    assert rptr.tolist() == [0, 2, 6]
    w[2] = 2.0
    run, _ = _channel_runs(ch, cls, off, w, np.array([0, 11]), C)
    assert run.tolist() == [0, 2, 3, 4, 6, 7, 9, 11]
    run, rptr = _channel_runs(ch[:0], cls[:0], off[:0], w[:0], np.array([0, 0, 0]), C)
    assert run.tolist() == [0] and rptr.tolist() == [0, 0, 0]


@pytest.mark.parametrize("reset", ["value", "subtract"])
@pytest.mark.parametrize("synapses", [{}, {"tau_syn_ex": 2.0, "tau_syn_in": 3.0}])
def test_shared_constant_input_is_the_per_neuron_input(synapses, reset):
    """Runs of neurons with equal constant input take it as a loop constant: same numbers as per neuron.

    Network A: four neurons with the same bias current and a DC source
    switched on and off (their run's input is shared).  Network B: the same
    plus a fifth neuron with another DC weight, which makes the run's input
    per neuron.  The four neurons must agree bit for bit, before, during and
    after the DC window.
    """
    model = es.LIF(tau_m=10.0, c_m=100.0, v_th=15.0, v_reset=0.0, t_ref=1.0, i_e=100.0, reset=reset, **synapses)

    def build(extra):
        net = es.Network(dt=0.1, seed=3)
        pop = net.population(5 if extra else 4, model, v_init=np.array([0.0, 3.0, 6.0, 9.0, 1.0][: 5 if extra else 4]))
        dc = net.dc(250.0, start=2.0, stop=7.0)
        w = np.r_[np.ones(4), [0.5]] if extra else np.ones(4)
        net.connect(dc, pop, es.AllToAll(), weight=w)
        vm = net.record_state(pop[:4], "v")
        sp = net.record_spikes(pop[:4])
        return net, vm, sp

    before = numba.get_num_threads()
    numba.set_num_threads(1)  # one run of neurons per network
    try:
        (a, va, sa), (b, vb, sb) = build(False), build(True)
        a.run(5.0)
        b.run(5.0)
        # inside the DC window: A's run shares its input, B's does not
        assert a._plan.work.seg_dcu.tolist() == [1] and b._plan.work.seg_dcu.tolist() == [0]
        a.run(5.0)
        b.run(5.0)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(va.values, vb.values)
    np.testing.assert_array_equal(sa.steps, sb.steps)
    assert len(sa) > 0 and np.ptp(va.values[:, 0]) > 1.0


def test_constant_rows():
    from eventsim.engines.csr import constant_rows

    row_ptr = np.array([0, 0, 1, 4, 7, 9])
    w = np.array([2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.5, -3.0, -3.0])
    flag = np.full(5, 7, np.uint8)
    value = np.full(5, 9.0)
    constant_rows(row_ptr, w, flag, value)
    assert flag.tolist() == [0, 1, 1, 0, 1]
    assert value[[1, 2, 4]].tolist() == [2.0, 1.0, -3.0]


@pytest.mark.parametrize("synapses", [{}, {"tau_syn_ex": 2.0, "tau_syn_in": 3.0}])
def test_rows_of_equal_weights_are_delivered_as_any_row(synapses):
    """Senders whose synapses share one weight are delivered without reading the weights: same numbers.

    Network B adds to every sender one synapse of another weight onto an
    extra neuron, so no row has a single weight; the first 40 neurons must
    agree with network A bit for bit (spikes and voltages).
    """
    def build(extra):
        net = es.Network(dt=0.1, seed=4)
        model = es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, v_reset=0.0, t_ref=2.0, **synapses)
        n = 41 if extra else 40
        pop = net.population(n, model, v_init=es.Uniform(0.0, 15.0))
        core = pop[:40]
        mv = not synapses
        net.connect(core[:30], core, es.FixedInDegree(6), weight=2.0 if mv else 400.0, delay=es.Uniform(0.1, 2.0))
        net.connect(core[30:], core, es.FixedInDegree(3), weight=-3.0 if mv else -500.0, delay=0.5)
        noise = net.poisson(40, rate=3000.0)
        net.connect(noise, core, es.FixedInDegree(2), weight=3.0 if mv else 600.0, delay=0.1)  # multi-synapse channels
        if extra:
            net.connect(core, pop[40:], es.AllToAll(), weight=0.001, delay=0.1)
            net.connect(noise, pop[40:], es.AllToAll(), weight=0.002, delay=0.1)
        sp = net.record_spikes(core)
        vm = net.record_state(core, "v", interval=1.0)
        return net, sp, vm

    (a, sa, va), (b, sb, vb) = build(False), build(True)
    a.run(100.0)
    b.run(100.0)
    ca, cb = a._plan.conn, b._plan.conn
    used = ca.outdeg > 0   # neurons 0..39, then the 40 Poisson channels
    assert ca.row_cw[used].all() and used[40:].sum() > 10
    assert not cb.row_cw[:41][cb.outdeg[:41] > 0].any() and not cb.row_cw[41:][used[40:]].any()
    assert len(sa) > 50
    np.testing.assert_array_equal(sa.steps, sb.steps)
    np.testing.assert_array_equal(sa.senders, sb.senders)
    np.testing.assert_array_equal(va.values, vb.values)


def test_dc_source_window_and_weight():
    net = es.Network(dt=0.1)
    pop = net.population(2, es.LIF(tau_m=10.0, c_m=250.0, v_th=100.0))
    dc = net.dc(250.0, start=1.0, stop=3.0)
    net.connect(dc, pop, es.AllToAll(), weight=np.array([1.0, 2.0]))
    vm = net.record_state(pop, "v")
    net.run(5.0)
    v = vm.values
    assert np.all(v[:10] == 0.0)
    tt = np.arange(1, 21) * 0.1
    np.testing.assert_allclose(v[10:30, 0], 10.0 * (1 - np.exp(-tt / 10.0)), rtol=1e-12)
    np.testing.assert_allclose(v[10:30, 1], 20.0 * (1 - np.exp(-tt / 10.0)), rtol=1e-12)
    assert np.all(np.diff(v[30:, 0]) < 0)


def test_spike_source_multiple_channels():
    net = es.Network(dt=0.1)
    pop = net.population(2, es.LIF(tau_m=1e9, v_th=100.0))
    src = net.spike_source([1, 0, 1], [0.0, 0.5, 0.5], n=3)
    net.connect(src, pop, es.FromArrays([0, 1, 2], [0, 1, 1]), weight=[1.0, 2.0, 4.0], delay=[0.1, 0.2, 0.1])
    vm = net.record_state(pop, "v")
    net.run(1.0)
    # channel 1 (weight 2, delay 0.2) fires at 0.0 and 0.5 -> arrives at 0.2 and 0.7
    np.testing.assert_allclose(vm.values[:, 1], [0, 2, 2, 2, 2, 2, 4, 4, 4, 4], atol=1e-6)
    np.testing.assert_allclose(vm.values[:, 0], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], atol=1e-6)


def test_float32_weights():
    net = es.Network(dt=0.1, seed=5, weight_dtype="float32")
    a = net.population(2, es.LIF(tau_m=1e9, v_th=100.0))
    src = net.spike_source([0], [0.0])
    net.connect(src, a, es.AllToAll(), weight=0.1, delay=0.1)
    vm = net.record_state(a, "v")
    net.run(0.2)
    assert net._plan.conn.syn_w.dtype == np.float32
    assert vm.values[0, 0] == np.float64(np.float32(0.1))
    with pytest.raises(ValueError, match="weight_dtype"):
        es.Network(weight_dtype="int8")


def test_import_does_not_load_torch_or_cuda():
    code = ("import sys, eventsim; net = eventsim.Network(); "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.') or m.startswith('numba.cuda')];"
            "print(bad); assert not bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _features(*kinds, poisson_synapses=0):
    from eventsim.engines import clock_cpu
    from eventsim.engines.plan import build_plan

    net = es.Network(dt=0.1)
    models = {"delta": es.LIF(), "exp": es.LIF(tau_syn_ex=2.0, tau_syn_in=2.0), "alif": es.ALIF()}
    pops = [net.population(4, models[k]) for k in kinds]
    if poisson_synapses:
        noise = net.poisson(4, rate=100.0)
        net.connect(noise, pops[0], es.FixedInDegree(poisson_synapses) if poisson_synapses > 1 else es.OneToOne(),
                    weight=1.0, delay=1.0)
    plan = build_plan(net)
    return clock_cpu.features(plan.params, plan.sources)


def test_features_name_the_work_present():
    # (the tags of the neuron families present, Poisson channels with several synapses, with one): the
    # Poisson loops are always compiled (one kernel per set of families, which eventsim.warmup covers)
    from eventsim.models.adaptive import ALIF_FAMILY
    from eventsim.models.lif import IAF_DELTA, IAF_EXP

    assert _features("delta") == ((IAF_DELTA.tag,), True, True)
    assert _features("exp", poisson_synapses=1) == ((IAF_EXP.tag,), True, True)
    assert _features("delta", "exp", poisson_synapses=3) == ((IAF_DELTA.tag, IAF_EXP.tag), True, True)
    assert _features("alif", "delta") == ((IAF_DELTA.tag, ALIF_FAMILY.tag), True, True)
    assert _features("exp", "delta", "exp")[0] == (IAF_DELTA.tag, IAF_EXP.tag)


def test_kernels_of_absent_work_are_not_compiled(tmp_path):
    """A delta-synapse network compiles no exponential or adaptive neuron kernel (the cold start); both
    Poisson loops are compiled, once each."""
    code = ("import numba, eventsim as es; from eventsim.engines import clock_cpu as cc\n"
            "from eventsim.models import adaptive, lif\n"
            "numba.set_num_threads(1)\n"
            "net = es.Network(dt=0.1); a = net.population(5, es.LIF()); p = net.poisson(5, rate=1000.0)\n"
            "net.connect(p, a, es.OneToOne(), weight=20.0, delay=1.0); net.run(5.0)\n"
            "print([len(f.signatures) for f in (lif._run_delta, cc._poisson_one, lif._run_exp, adaptive._run_adaptive, "
            "cc._poisson)])")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))  # an empty cache: everything is compiled here
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split("\n")[-2] == "[1, 1, 0, 0, 1]"


def test_synaptic_event_count():
    net = es.Network(dt=0.1)
    a = net.population(1, es.LIF(i_e=1000.0, t_ref=0.0))
    b = net.population(3, es.LIF())
    net.connect(a, b, es.AllToAll(), weight=0.1, delay=1.0)
    sp = net.record_spikes(a)
    net.run(20.0)
    assert net.synaptic_events == (3 * len(sp), 0)


def test_non_finite_state_stops_at_last_finite_state():
    net = es.Network(dt=0.1)
    ok = net.population(3, es.LIF(v_th=15.0, i_e=100.0), label="fine")
    bad = net.population(2, es.LIF(tau_syn_ex=2.0, tau_syn_in=2.0), label="exploding")
    src = net.spike_source([0, 1], [3.0, 3.0])    # two huge currents arrive together: I_ex = inf
    net.connect(src, bad[1], es.AllToAll(), weight=1.0e308, delay=0.1)
    vm = net.record_state(ok | bad, "v")
    with pytest.raises(FloatingPointError, match=r"exploding.*neuron 1 .*t = 3.1 ms"):
        net.run(10.0)
    assert net.t == pytest.approx(3.0)
    assert np.isfinite(net._plan.state.v).all()
    assert vm.values.shape == (30, 5)


@pytest.mark.parametrize("engine", ["clock", "event"])
def test_progress_bar_shows_the_run(engine, capsys, monkeypatch):
    """progress=True draws a bar over the run's dt steps that ends full, in both engines; False draws none."""
    pytest.importorskip("tqdm")
    monkeypatch.setattr(es.config, "CHUNK_STEPS", 20)   # several windows: the bar moves
    net = es.Network(dt=0.1, engine=engine)
    net.population(3, es.LIF(i_e=500.0))
    net.run(5.0, progress=True)
    err = capsys.readouterr().err
    assert "100%" in err and "50.0/50.0" in err and "t=0.0 s bio" in err, err
    net.run(5.0, progress=False)
    assert capsys.readouterr().err == ""
    assert net.t == pytest.approx(10.0)
