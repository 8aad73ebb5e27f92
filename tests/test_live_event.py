"""The event engine changed between runs: sources, recorders and structure (engine='event').

The rule under test (:mod:`eventsim.live`): a network changed at time t
continues exactly as the same network built with the change from the start
would continue from the same state at t.  Each test compares, bit for bit, a
network changed between runs with an up-front construction that describes
the same network: elements added at t are silent until t, a DC window against
``dc.set`` at t, spikes added against the same spikes given at construction,
a Poisson rate set at t against a spike source emitting the times that the
Poisson stream's definition gives (a slow reference in this file).
"""

import math

import numpy as np
import pytest

import eventsim as es
from eventsim.engines import event_cpu as ev
from eventsim.rng import key_words

DELTA = es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, c_m=1.0)
EXP = es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=2.0, tau_syn_ex=2.0, tau_syn_in=5.0, c_m=250.0)


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(a, b)


def _interleaved(live):
    """The same construction calls, with run() calls between them (live) or all before one run.

    Everything added at 100 ms or 200 ms is silent until then (a DC drive from
    100 ms, spikes from 150 ms, Poisson channels of rate 0), so both orders
    describe the same network."""
    net = es.Network(dt=0.1, seed=3, engine="event")
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
    stim = net.spike_source(senders=[0, 1, 0], times=[150.0, 160.5, 230.0])
    net.connect(stim, a[:10] | b[:3], es.AllToAll(), weight=30.0, delay=2.0)
    rec.append(net.record_spikes(b))
    if live:
        net.run(100.0)
    late = net.poisson(10, rate=0.0)
    net.connect(late, b[:10], es.OneToOne(), weight=100.0, delay=0.5)
    rec.append(net.record_state(a[:5] | b[:5], "v", interval=0.5))
    if live:
        net.run(100.0)
    else:
        net.run(300.0)
    return net, rec


def test_additions_after_runs_equal_the_network_built_up_front():
    live, rl = _interleaved(True)
    ref, rr = _interleaved(False)
    for x, y in zip(rl[:2], rr[:2]):
        assert len(x.times) > 100
        assert _same(x.times, y.times) and _same(x.senders, y.senders)
    # the state recorder added at 200 ms records from then on: the reference's last samples
    n = len(rl[2].steps)
    assert n == 200 and _same(rl[2].steps, rr[2].steps[-n:]) and _same(rl[2].values, rr[2].values[-n:])
    assert _same(live.populations[1].get("v"), ref.populations[1].get("v"))
    assert live.synaptic_events == ref.synaptic_events


def _in_flight(live, change=True):
    """A spike source's spikes at 48 ms (on its way at 50 ms), at exactly 50 ms and at 60 ms; at 50 ms
    its weight onto x changes from 2 to 3 mV and it gets a new connection onto y (4 mV).  Up front:
    the spike at 48 ms from one channel (2 mV onto x), the others from a second (3 mV onto x, 4 mV
    onto y)."""
    net = es.Network(dt=0.1, seed=2, engine="event")
    x = net.population(2, DELTA)
    y = net.population(2, DELTA)
    if live:
        stim = net.spike_source(senders=[0, 0, 0], times=[48.0, 50.0, 60.0])
        proj = net.connect(stim, x, es.AllToAll(), weight=2.0, delay=5.0)
    else:
        early = net.spike_source(senders=[0], times=[48.0])
        later = net.spike_source(senders=[0, 0], times=[50.0, 60.0])
        net.connect(early, x, es.AllToAll(), weight=2.0, delay=5.0)
        net.connect(later, x, es.AllToAll(), weight=3.0, delay=5.0)
        net.connect(later, y, es.AllToAll(), weight=4.0, delay=5.0)
    rec = net.record_state(x | y, "v")
    if live:
        net.run(50.0)
        if change:
            proj.weight = 3.0
            net.connect(stim, y, es.AllToAll(), weight=4.0, delay=5.0)
    return net, rec


def test_spikes_on_their_way_keep_the_connections_they_were_emitted_through():
    net, rec = _in_flight(True)
    assert net._sync().retired()[0].size == 1  # the spike of 48 ms travels through the old group
    net.run(30.0)
    ref, rr = _in_flight(False)
    ref.run(80.0)
    assert _same(rec.steps, rr.steps) and _same(rec.values, rr.values)
    v = rec.values
    at = lambda ms: int(round(ms / 0.1)) - 1  # noqa: E731  (row of the sample at ms)
    # x: 2 mV at 53 ms (the old weight), 3 mV more at 55 ms; y: nothing from the spike of 48 ms, 4 mV at 55 ms
    assert v[at(52.9), 0] == 0.0 and v[at(54.9), 0] == pytest.approx(2.0, rel=0.1)
    assert v[at(55.5), 0] - v[at(54.9), 0] == pytest.approx(3.0, rel=0.1)
    assert v[at(54.9), 2] == 0.0 and v[at(55.5), 2] == pytest.approx(4.0, rel=0.1)


def test_a_spike_at_exactly_t_takes_the_connections_made_at_t():
    """x spikes at exactly 50 ms (an input arriving then), the end of the first run; its first
    connection, made at 50 ms, carries that spike, as one made up front does.  A spike source's
    spike at 50 ms does too, through a second connection of the source."""
    def build(live):
        net = es.Network(dt=0.1, seed=2, engine="event")
        x = net.population(1, DELTA)
        y = net.population(2, DELTA)
        stim = net.spike_source([0, 1], [45.0, 50.0])
        net.connect(stim[:1], x, es.AllToAll(), weight=25.0, delay=5.0)
        net.connect(stim[1:], y[1:], es.AllToAll(), weight=1.0, delay=1.0)
        s = net.record_spikes(x)
        v = net.record_state(y, "v")
        if live:
            net.run(50.0)
        net.connect(x, y[:1], es.AllToAll(), weight=4.0, delay=2.0)
        net.connect(stim[1:], y[1:], es.AllToAll(), weight=3.0, delay=1.5)
        net.run(30.0 if live else 80.0)
        return s, v

    (s1, v1), (s2, v2) = build(True), build(False)
    assert _same(s1.times, [50.0]) and _same(s2.times, [50.0])
    assert _same(v1.values, v2.values)
    assert v1.values[-1, 0] > 0.0 and v1.values[-1, 1] > 0.0


def _poisson_reference(seed, channel, rates, t_change, t_end):
    """Emission times (ms) of a Poisson channel of the event engine whose rate is ``rates[0]`` Hz
    up to ``t_change`` ms (None: a channel created at ``t_change``) and ``rates[1]`` Hz after it.

    The definition: the k-th interval of a channel at rate r is ``poisson_interval(key, channel, k,
    r)``; emissions are running sums from 0 ms; a change at t drops the emissions after t and
    draws again from t with the counter of the first dropped one (a rate set to its value is no
    change)."""
    k0, k1 = key_words(seed, ev.POISSON_EVENT)
    out, k = [], 0
    if rates[0] is not None and rates[0] > 0:
        x = ev.poisson_interval(k0, k1, channel, 0, rates[0])
        while x <= (t_end if rates[1] == rates[0] else t_change):
            out.append(x)
            k += 1
            x = x + ev.poisson_interval(k0, k1, channel, k, rates[0])
    if rates[1] > 0 and rates[1] != rates[0]:
        x = t_change + ev.poisson_interval(k0, k1, channel, k, rates[1])
        while x <= t_end:
            out.append(x)
            k += 1
            x = x + ev.poisson_interval(k0, k1, channel, k, rates[1])
    return np.array(out)


def test_poisson_rate_set_at_t_equals_the_times_of_the_stream_definition():
    """Channels 0-2 change rate at 40 ms (one from 0 Hz, one to 0 Hz), channel 3 is set to its rate,
    channels 4-5 are a source created at 40 ms; up front: a spike source with the reference's times."""
    r1, r2, t1, t_end = [2000.0, 0.0, 700.0, 900.0], [500.0, 3000.0, 0.0, 900.0], 40.0, 100.0
    r_new = [1500.0, 0.0]
    relay = es.LIF(tau_m=5.0, v_th=1.0, v_reset=0.0, t_ref=0.0, c_m=1.0)

    def build(live):
        net = es.Network(dt=0.1, seed=7, engine="event")
        pop = net.population(6, es.LIF(tau_m=10.0, v_th=1e9, v_reset=0.0, c_m=1.0))
        relays = net.population(6, relay)
        if live:
            src = net.poisson(4, rate=r1)
        else:
            times = [_poisson_reference(7, c, (r1[c], r2[c]), t1, t_end) for c in range(4)]
            times += [_poisson_reference(7, 4 + c, (None, r_new[c]), t1, t_end) for c in range(2)]
            src = net.spike_source(senders=np.concatenate([np.full(x.size, c) for c, x in enumerate(times)]),
                                   times=np.concatenate(times), n=6)
        net.connect(src[:4], pop[:4], es.OneToOne(), weight=0.5, delay=0.3)
        net.connect(src[:4], relays[:4], es.OneToOne(), weight=5.0, delay=0.3)
        v = net.record_state(pop, "v")
        s = net.record_spikes(relays)
        if live:
            net.run(t1)
            src.set(rate=r2)
            new = net.poisson(2, rate=r_new)
            net.connect(new, pop[4:], es.OneToOne(), weight=0.5, delay=0.3)
            net.connect(new, relays[4:], es.OneToOne(), weight=5.0, delay=0.3)
            net.run(t_end - t1)
        else:
            net.connect(src[4:], pop[4:], es.OneToOne(), weight=0.5, delay=0.3)
            net.connect(src[4:], relays[4:], es.OneToOne(), weight=5.0, delay=0.3)
            net.run(t_end)
        return v, s

    (v1, s1), (v2, s2) = build(True), build(False)
    assert _same(s1.times, s2.times) and _same(s1.senders, s2.senders)
    assert _same(v1.values, v2.values)
    late = s1.times > t1 + 0.3
    counts = np.bincount(s1.senders[late], minlength=6)
    assert counts[1] > 100 and counts[2] == 0 and counts[4] > 40 and counts[5] == 0  # the new rates


def test_dc_set_at_t_equals_windows_given_up_front():
    """Live: one DC channel of 400 pA from 20 ms, stopped at 60 ms (set at 40 ms), restarted at 80 ms with 700 pA (set at
    70 ms), 450 pA from 90 ms (set then) and connected to a third population at 100 ms.  Up front:
    one DC channel per window."""
    def build(live):
        net = es.Network(dt=0.1, seed=2, engine="event")
        pops = [net.population(3, EXP), net.population(2, EXP), net.population(2, EXP)]
        if live:
            d = net.dc(400.0, start=20.0)
            net.connect(d, pops[0], es.AllToAll(), weight=1.0)
            net.connect(d, pops[1], es.AllToAll(), weight=0.5)
        else:
            for amp, start, stop in ((400.0, 20.0, 60.0), (700.0, 80.0, 90.0), (450.0, 90.0, None)):
                d = net.dc(amp, start=start, stop=stop)
                net.connect(d, pops[0], es.AllToAll(), weight=1.0)
                net.connect(d, pops[1], es.AllToAll(), weight=0.5)
            net.connect(net.dc(450.0, start=100.0), pops[2], es.AllToAll(), weight=1.0)
        v = net.record_state(pops[0] | pops[1] | pops[2], "v")
        s = net.record_spikes(pops[0] | pops[1] | pops[2])
        if live:
            net.run(40.0)
            d.set(stop=60.0)
            net.run(30.0)
            d.set(amplitude=700.0, start=80.0, stop=None)
            net.run(20.0)
            d.set(amplitude=450.0)
            net.run(10.0)
            net.connect(d, pops[2], es.AllToAll(), weight=1.0)
            net.run(30.0)
        else:
            net.run(130.0)
        return v, s

    (v1, s1), (v2, s2) = build(True), build(False)
    assert len(s1.times) > 10 and _same(s1.times, s2.times) and _same(s1.senders, s2.senders)
    assert _same(v1.values, v2.values)
    assert np.all(v1.values[: int(round(100.0 / 0.1)), 5:] == 0.0)  # the third population: nothing before 100 ms


def test_spikes_added_equal_the_same_spikes_given_up_front():
    def build(live):
        net = es.Network(dt=0.1, seed=2, engine="event")
        pop = net.population(4, DELTA)
        spikes = ([0, 1], [5.0, 12.0])
        more = ([2, 0, 1, 0, 0], [20.0, 25.5, 21.0, 40.0, 25.5])
        if live:
            stim = net.spike_source(*spikes, n=3)
        else:
            stim = net.spike_source(spikes[0] + more[0], spikes[1] + more[1], n=3)
        net.connect(stim, pop[:3], es.OneToOne(), weight=12.0, delay=1.5)
        v = net.record_state(pop, "v")
        s = net.record_spikes(pop)
        if live:
            net.run(20.0)
            stim.add(*more)
            late = net.spike_source([0, 0], [10.0, 30.0])  # created at 20 ms: its spike of 10 ms is gone
        else:
            late = net.spike_source([0], [30.0])
        net.connect(late, pop[3:], es.OneToOne(), weight=25.0, delay=1.0)
        net.run(30.0 if live else 50.0)
        return v, s

    (v1, s1), (v2, s2) = build(True), build(False)
    assert _same(v1.values, v2.values) and _same(s1.times, s2.times) and _same(s1.senders, s2.senders)
    assert 3 in s1.senders and 0 in s1.senders  # the spikes added (two at 25.5 ms) and the new source act


def test_recorders_added_after_a_run_record_from_then_on():
    def build(live):
        net = es.Network(dt=0.1, seed=5, engine="event")
        pop = net.population(20, DELTA, v_init=es.Uniform(0.0, 20.0))
        noise = net.poisson(20, rate=12000.0)
        net.connect(noise, pop, es.OneToOne(), weight=0.25, delay=0.2)
        first = net.record_state(pop[:4], "v", interval=0.2)
        if live:
            net.run(25.05)
        spikes = net.record_spikes(pop[5:])
        third = net.record_state(pop[2:6], "v", interval=0.3)
        net.run(25.0 if live else 50.05)
        return first, spikes, third

    (f1, s1, t1), (f2, s2, t2) = build(True), build(False)
    assert len(s1.times) > 20 and _same(s1.times, s2.times[s2.times > 25.05])
    assert _same(s1.senders, s2.senders[s2.times > 25.05])
    keep = t2.steps > 250
    assert t1.steps[0] == 252 and _same(t1.steps, t2.steps[keep]) and _same(t1.values, t2.values[keep])
    # the first recorder goes on without a gap or a repeat; from 25.05 ms on its clock is the reference's
    assert _same(f1.steps, f2.steps)
    after = f1.steps > 250
    assert _same(f1.values[after], f2.values[after]) and np.allclose(f1.values, f2.values, rtol=1e-12, atol=1e-12)


def test_checkpoints_after_changes_resume_exactly(tmp_path):
    def build():
        net, rec = _in_flight(True, change=False)
        noise = net.poisson(2, rate=[3000.0, 500.0])
        net.connect(noise, net.populations[0], es.OneToOne(), weight=0.3, delay=0.7)
        d = net.dc(100.0, start=10.0)
        net.connect(d, net.populations[1], es.AllToAll(), weight=1.0)
        net.run(2.0)  # to 52 ms: the spike of 50 ms is on its way
        return net, rec, noise, d

    def change(net, noise, d):
        net.projections[0].weight = 3.0
        net.connect(net.sources[0], net.populations[1], es.AllToAll(), weight=4.0, delay=5.0)
        noise.set(rate=[800.0, 4000.0])
        net.sources[0].add([0], [61.5])
        d.set(amplitude=150.0, stop=75.0)
        extra = net.population(3, EXP)
        net.connect(net.populations[0], extra, es.AllToAll(), weight=300.0, delay=1.0)

    net, rec, noise, d = build()
    change(net, noise, d)
    path = tmp_path / "live.ckpt"
    net.save(path)
    assert net._plan.retired()[0].size > 0  # spikes on their way through changed connections are saved
    back = es.Network.load(path)
    net.run(40.0)
    back.run(40.0)
    assert _same(back.recorders[0].values, rec.values) and _same(back.recorders[0].steps, rec.steps)
    for pop_a, pop_b in zip(net.populations, back.populations):
        for name in ("v", "i_ex"):
            if name in pop_a.model.state_names:
                assert _same(pop_a.get(name), pop_b.get(name))
    assert net.synaptic_events == back.synaptic_events
    # a second checkpoint of the loaded network goes on alike
    back.save(tmp_path / "again.ckpt")
    again = es.Network.load(tmp_path / "again.ckpt")
    back.run(10.0)
    again.run(10.0)
    assert _same(back.recorders[0].values, again.recorders[0].values)


def test_refused_changes_change_nothing():
    def build(attempt):
        net = es.Network(dt=0.1, seed=4, engine="event")
        pop = net.population(5, EXP, v_init=es.Uniform(0.0, 14.0))
        noise = net.poisson(5, rate=2000.0)
        proj = net.connect(noise, pop, es.OneToOne(), weight=200.0, delay=0.5)
        stim = net.spike_source([0], [3.0])
        net.connect(stim, pop, es.AllToAll(), weight=100.0, delay=1.0)
        d = net.dc(100.0, start=5.0)
        net.connect(d, pop, es.AllToAll(), weight=1.0)
        v = net.record_state(pop, "v")
        net.run(20.0)
        if attempt:
            for call, err in ((lambda: noise.set(rate=-5.0), ValueError),
                              (lambda: noise.set(rate=[1.0, 2.0]), ValueError),
                              (lambda: stim.add([0], [19.5]), ValueError),
                              (lambda: stim.add([3], [25.0]), ValueError),
                              (lambda: d.set(start=30.0, stop=25.0), ValueError),
                              (lambda: d.set(amplitude=math.nan), ValueError),
                              (lambda: net.connect(pop, pop, es.AllToAll(), weight=math.inf), ValueError),
                              (lambda: setattr(proj, "weight", [1.0, 2.0]), ValueError),
                              (lambda: net.record_state(pop, "nope"), ValueError)):
                with pytest.raises(err):
                    call()
            assert not net._changes and len(net.projections) == 3 and len(net.recorders) == 1
        net.run(30.0)
        return v

    assert _same(build(True).values, build(False).values)


def test_parameters_set_with_other_changes_act_as_set_alone():
    """A parameter change taken together with additions (the plan is rebuilt) gives the spikes of the
    same parameter change alone (taken in place): the additions do not touch these neurons."""
    model = es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=2.0, tau_syn_ex=2.0, tau_syn_in=5.0, c_m=250.0,
                   i_e=300.0)

    def build(extra):
        net = es.Network(dt=0.1, seed=1, engine="event")
        pop = net.population(10, model, v_init=es.Uniform(0.0, 14.0))
        noise = net.poisson(10, rate=3000.0)
        net.connect(noise, pop, es.OneToOne(), weight=50.0, delay=0.5)
        rec = net.record_spikes(pop)
        net.run(35.0)
        pop[:5].set(i_e=500.0, tau_m=12.0)
        if extra:
            net.record_state(pop, "v")
            other = net.population(3, model)
            other.set(v=3.0)
            net.connect(net.poisson(3, rate=100.0), other, es.OneToOne(), weight=10.0, delay=1.0)
        net.run(40.0)
        return rec

    a, b = build(False), build(True)
    assert len(a.times) > 20 and _same(a.times, b.times) and _same(a.senders, b.senders)
    assert a.times[a.senders < 5].size > a.times[a.senders >= 5].size  # the new parameters act


def test_refractory_period_changed_with_a_connection_added_at_the_same_time():
    """t_ref changed at t together with a new connection onto the same neurons (a rebuild that carries
    neurons in their refractory period): the spikes of the same t_ref change with the connection present
    from the start at weight 0 and given its weight at t."""
    model = es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=2.0, tau_syn_ex=2.0, tau_syn_in=5.0, c_m=250.0,
                   i_e=1500.0)

    def build(up_front):
        net = es.Network(dt=0.1, seed=4, engine="event")
        pop = net.population(12, model, v_init=es.Uniform(0.0, 14.0))
        src = net.poisson(12, rate=2000.0)
        net.connect(src, pop, es.OneToOne(), weight=40.0, delay=0.5)
        stim = net.spike_source(senders=np.zeros(40, int), times=30.05 + 1.3 * np.arange(40))
        if up_front:
            proj = net.connect(stim, pop[:6], es.AllToAll(), weight=0.0, delay=0.7)
        rec = net.record_spikes(pop)
        net.run(30.0)
        pop[::2].set(t_ref=4.5)
        if up_front:
            proj.weight = np.full(6, 200.0)
        else:
            net.connect(stim, pop[:6], es.AllToAll(), weight=200.0, delay=0.7)
        net.run(40.0)
        return rec

    a, b = build(True), build(False)
    assert len(a.times) > 100 and _same(a.times, b.times) and _same(a.senders, b.senders)
    assert ((a.times > 28.0) & (a.times <= 30.0)).any()  # some neuron refractory across the change
    late = a.times > 30.0
    assert np.diff(np.sort(a.times[late & (a.senders == 0)])).min() >= 4.5 - 1e-9  # the new t_ref acts
    assert np.diff(np.sort(a.times[late & (a.senders == 1)])).min() < 4.5


def _random_changes(seed):
    """A network of every kind of element run to 20 ms, then changed at random (rates, spikes, DC,
    weights, new populations, sources, connections onto and from existing neurons, recorders)."""
    rng = np.random.default_rng(seed)
    net = es.Network(dt=0.1, seed=seed, engine="event")
    a = net.population(40, DELTA, v_init=es.Uniform(0.0, 20.0))
    b = net.population(10, EXP)
    noise = net.poisson(40, rate=14000.0)
    net.connect(noise, a, es.OneToOne(), weight=0.2, delay=0.1)
    rec = net.connect(a, a | b, es.FixedInDegree(6), weight=es.Uniform(0.1, 0.5), delay=es.Uniform(0.2, 3.0))
    stim = net.spike_source([0, 1], [3.0, 21.5], n=3)
    net.connect(stim, b, es.AllToAll(), weight=200.0, delay=1.0)
    d = net.dc(300.0, start=5.0, stop=40.0)
    net.connect(d, b, es.AllToAll(), weight=1.0)
    net.record_spikes(a | b)
    net.run(20.0)
    changes = [lambda: noise[rng.integers(0, 40, 5)].set(rate=float(rng.uniform(0.0, 30000.0))),
               lambda: stim.add(rng.integers(0, 3, 4), 20.0 + rng.uniform(0.0, 20.0, 4)),
               lambda: d.set(amplitude=float(rng.uniform(100.0, 500.0))),
               lambda: d.set(start=float(rng.uniform(0.0, 30.0)), stop=float(rng.uniform(31.0, 60.0))),
               lambda: setattr(rec, "weight", np.asarray(rec.weight) * rng.uniform(0.5, 1.5)),
               lambda: net.connect(a, b, es.FixedInDegree(3), weight=50.0, delay=float(rng.uniform(0.1, 2.0))),
               lambda: net.connect(net.population(5, EXP), a[:5], es.OneToOne(), weight=3.0, delay=0.5),
               lambda: net.connect(net.poisson(5, rate=2000.0), b[:5], es.OneToOne(), weight=100.0, delay=0.3),
               lambda: net.record_state(a[:3] | b[:2], "v", interval=float(rng.choice([0.1, 0.2, 0.5])))]
    for k in rng.permutation(len(changes))[: rng.integers(3, len(changes) + 1)]:
        changes[k]()
    return net


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_changes_then_checkpoint_or_split_runs_continue_alike(tmp_path, seed):
    """After any set of changes at t: save/load then run, run in two parts, and run at once agree."""
    nets = [_random_changes(seed) for _ in range(3)]
    nets[0].save(tmp_path / "c.ckpt")
    nets[0] = es.Network.load(tmp_path / "c.ckpt")
    nets[0].run(30.0)
    nets[1].run(12.5)
    nets[1].run(17.5)
    nets[2].run(30.0)
    first = nets[2].recorders
    assert len(first[0].times) > 20
    for net in nets[:2]:
        for r, q in zip(net.recorders, first):
            if hasattr(q, "values"):
                assert _same(r.steps, q.steps) and _same(r.values, q.values)
            else:
                assert _same(r.times, q.times) and _same(r.senders, q.senders)
        assert net.synaptic_events == nets[2].synaptic_events


def _crafted(tmp_path, change):
    """A checkpoint with retired delay groups, changed by ``change(doc, put)`` and written with a valid
    checksum (as an attacker would)."""
    import hashlib
    import json
    import pathlib
    import struct

    head = struct.Struct("<8sIIQQ")
    net, _ = _in_flight(True)
    net.save(tmp_path / "n.ckpt")
    assert net._plan.retired()[0].size == 1
    data = pathlib.Path(tmp_path / "n.ckpt").read_bytes()
    _, _, flags, n_doc, _ = head.unpack(data[:head.size])
    doc, arrays = json.loads(data[96:96 + n_doc]), bytearray(data[96 + n_doc:])

    def put(name, values):
        spec = doc["arrays"][name]
        a = np.frombuffer(arrays, np.dtype(spec["dtype"]), int(np.prod(spec["shape"])),
                          spec["offset"]).reshape(spec["shape"]).copy()
        a[...] = values
        arrays[spec["offset"]:spec["offset"] + a.nbytes] = a.tobytes()

    change(doc, put)
    text = json.dumps(doc).encode()
    h = head.pack(b"ESIMCKPT", 4, flags, len(text), len(arrays))
    path = tmp_path / "x.ckpt"
    path.write_bytes(h + hashlib.sha256(h + text + bytes(arrays)).digest() + bytes(32) + text + bytes(arrays))
    return path


@pytest.mark.parametrize("change, match", [
    (lambda d, put: put("plan.ret.em", 0), "plan.Q"),  # the entry's emitter does not own the group
    (lambda d, put: put("plan.ret.size", 5), "plan.ret"),
    (lambda d, put: put("plan.ret.tgt", 10**6), "plan.ret.tgt"),
    (lambda d, put: [d["plan"]["arrays"].pop(k) for k in ("ret.em", "ret.size")], "plan: arrays"),
    (lambda d, put: [d["plan"]["arrays"].pop(k) for k in ("ret.em", "ret.size", "ret.delay", "ret.tgt", "ret.w",
                                                            "ret.port")],
     "plan.Q"),  # a file without retired groups: its entries name groups that do not exist
    (lambda d, put: put("plan.ret.port", 100), "plan.ret.port"),
])
def test_crafted_retired_groups_are_refused(tmp_path, change, match):
    from eventsim.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match=match):
        es.Network.load(_crafted(tmp_path, change))
    assert es.Network.load(_crafted(tmp_path, lambda d, put: None)).t == 50.0
    # a file from before receptor ports in the event engine (retired groups without ports) loads
    assert es.Network.load(_crafted(tmp_path, lambda d, put: d["plan"]["arrays"].pop("ret.port"))).t == 50.0
