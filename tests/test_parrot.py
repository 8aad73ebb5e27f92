"""Parrot neurons (eventsim.models.parrot) against NEST 3.10's parrot_neuron (tests/nest_izhikevich_reference/
parrot.npz) and the checks of NEST's own test_parrot_neuron: spikes relayed after the connection delay,
weights ignored, several inputs in one step, chains of parrots; and the documented differences (one spike
per step, weight 0 relays nothing).  Clock and event engines; off the grid in the event engine."""

from pathlib import Path

import numpy as np
import pytest

import eventsim as es

REF = Path(__file__).parent / "nest_izhikevich_reference" / "parrot.npz"


ENGINES = ("clock", "event")


def _nest_case(engine="clock"):
    d = np.load(REF)
    dt = float(d["dt"])
    net = es.Network(dt=dt, seed=3, engine=engine)
    par = net.population(int(d["n"]), es.Parrot())
    ptr, times = d["gen_ptr"], d["gen_times"]
    gens = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
    src = net.spike_source(senders=gens, times=times, n=ptr.size - 1)
    for g, post, delay, w in d["conn"]:
        net.connect(src, par[int(post)], es.FromArrays(pre=[int(g)], post=[0]), weight=w, delay=delay)
    for pre, post, delay, w in d["chain"]:
        net.connect(par[int(pre)], par[int(post)], es.OneToOne(), weight=w, delay=delay)
    rec = net.record_spikes(par)
    net.run(float(d["t_sim"]))
    return d, rec


@pytest.mark.parametrize("engine", ENGINES)
def test_relays_as_nest_one_spike_per_step(engine):
    """Every (parrot, step) of NEST's spikes, and no other; NEST emits k spikes where k inputs arrive in
    one step, eventsim one (the documented difference)."""
    d, rec = _nest_case(engine)
    dt = float(d["dt"])
    nest = {(int(s), int(round(t / dt))) for s, t in zip(d["spike_senders"], d["spike_times"])}
    ours = list(zip(rec.senders.tolist(), np.rint(rec.times / dt).astype(int).tolist()))
    assert len(ours) == len(set(ours)) and set(ours) == nest
    np.testing.assert_allclose(rec.times, np.rint(rec.times / dt) * dt, rtol=0, atol=1e-9)  # on the grid
    # the reference does hold several spikes in one step (parrot 2: two connections from one generator;
    # parrot 1: two generators; parrot 4: both relayed again)
    assert len(d["spike_times"]) - len(nest) >= 4
    # the first check of NEST's test: the spike at 1.0 ms through a delay of 0.2 ms leaves at 1.2 ms
    assert 1.2 in rec.times[rec.senders == 0].round(10).tolist()


@pytest.mark.parametrize("engine", ENGINES)
def test_weights_are_ignored_and_zero_relays_nothing(engine):
    net = es.Network(dt=0.1, engine=engine)
    par = net.population(5, es.Parrot())
    src = net.spike_source(senders=[0, 1, 1, 2], times=[2.0, 4.0, 4.0, 6.0])
    # parrot 0: weight 1e-9; 1: -50; 2: +3 and -3 in the same step (separate ports, no cancellation);
    # 3: weight 0 (relays nothing, unlike NEST); 4: through parrot 0 with delay 2.5 ms
    net.connect(src, par[:3], es.FromArrays(pre=[0, 0, 1, 1], post=[0, 1, 2, 2]), weight=[1e-9, -50.0, 3.0, -3.0],
                delay=1.0)
    net.connect(src, par[3], es.FromArrays(pre=[2], post=[0]), weight=0.0, delay=1.0)
    net.connect(par[0], par[4], es.OneToOne(), weight=-7.0, delay=2.5)
    rec = net.record_spikes(par)
    net.run(12.0)
    got = sorted(zip(rec.senders.tolist(), rec.times.round(10).tolist()))
    assert got == [(0, 3.0), (1, 3.0), (2, 5.0), (4, 5.5)]


def test_never_spikes_alone_and_relays_poisson_trains():
    """A parrot behind a Poisson source repeats its train one delay later (as a LIF neuron that spikes at
    every input does); without input it stays silent."""
    net = es.Network(dt=0.1, seed=11)
    par = net.population(6, es.Parrot())
    lif = net.population(6, es.LIF(tau_m=10.0, v_th=15.0, t_ref=0.0))
    src = net.poisson(4, rate=80.0)
    net.connect(src, par[:4], es.OneToOne(), weight=1.0, delay=0.7)
    net.connect(src, lif[:4], es.OneToOne(), weight=20.0, delay=0.7)
    rp, rl = net.record_spikes(par), net.record_spikes(lif)
    net.run(500.0)
    assert rp.senders.size > 50 and not np.isin(rp.senders, [4, 5]).any()
    assert np.array_equal(rp.senders, rl.senders) and np.array_equal(rp.steps, rl.steps)


def test_parrot_refusals():
    net = es.Network(dt=0.1)
    par = net.population(2, es.Parrot())
    with pytest.raises(ValueError, match="Parrot neurons take no current"):
        net.connect(net.dc(100.0), par, es.AllToAll(), weight=1.0)
    assert net.projections == []
    with pytest.raises(TypeError, match="Parrot has no parameters"):
        es.Parrot(weight=1.0)
    with pytest.raises(ValueError, match="state variable"):
        net.record_state(par, "v")
    ev = es.Network(engine="event")
    ev_par = ev.population(2, es.Parrot())
    with pytest.raises(ValueError, match="Parrot neurons take no current"):
        ev.connect(ev.dc(100.0), ev_par, es.AllToAll(), weight=1.0)
    with pytest.raises(ValueError, match="state variable"):
        ev.record_state(ev_par, "v")


def test_event_engine_relays_off_grid_times_exactly():
    """Engine 'event': a spike leaves a parrot at exactly its arrival time (source time + delay, off the grid),
    through a chain of parrots too; inputs arriving at one time leave as one spike, inputs at different times
    within one step as two (the clock engine keeps one per step); a LIF neuron behind the chain gets the same
    input as one fed by the source with the summed delay (the same spike times but for float rounding)."""
    net = es.Network(dt=0.1, engine="event")
    par = net.population(4, es.Parrot())
    lif = net.population(2, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=2.0))
    times = [1.03, 4.5678, 4.5678, 7.301, 7.349, 20.0 + 1 / 3]
    src = net.spike_source(senders=[0, 0, 1, 0, 0, 0], times=times, n=2)
    net.connect(src, par[0], es.FromArrays(pre=[0, 1], post=[0, 0]), weight=[2.0, -1.0], delay=0.25)
    net.connect(par[0], par[1], es.OneToOne(), weight=1.0, delay=1.5)
    net.connect(par[1], lif[0], es.OneToOne(), weight=20.0, delay=0.75)
    direct = net.spike_source(senders=np.zeros(len(set(times)), np.int64), times=np.unique(times))
    net.connect(direct, lif[1], es.OneToOne(), weight=20.0, delay=2.5)
    rp, rl = net.record_spikes(par), net.record_spikes(lif)
    net.run(30.0)
    once = np.unique(times)
    got0 = rp.times[rp.senders == 0]
    assert np.array_equal(got0, once + 0.25)  # 1.03 and 4.5678 (twice: one spike), 7.301 and 7.349 (two)
    assert np.array_equal(rp.times[rp.senders == 1], got0 + 1.5)
    assert not np.isin(rp.senders, [2, 3]).any()
    # lif[0] behind the chain spikes as lif[1] fed directly with the summed delay (a 20 mV jump at each input,
    # the second of 7.301 / 7.349 inside the refractory period): the same times but for float rounding
    t0, t1 = rl.times[rl.senders == 0], rl.times[rl.senders == 1]
    assert t1.size == once.size - 1
    np.testing.assert_allclose(t0, t1, rtol=0, atol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_checkpoint_round_trip(tmp_path, engine):
    def build():
        net = es.Network(dt=0.1, seed=5, engine=engine)
        par = net.population(3, es.Parrot())
        src = net.poisson(3, rate=200.0)
        net.connect(src, par, es.OneToOne(), weight=1.0, delay=3.0)   # spikes in flight at the checkpoint
        return net, net.record_spikes(par)

    whole, rw = build()
    whole.run(40.0)
    half, _ = build()
    half.run(20.0)
    half.save(tmp_path / "p.ckpt")
    back = es.Network.load(tmp_path / "p.ckpt")
    back.run(20.0)
    rb = back.recorders[0]
    assert rw.times.size > 10 and np.array_equal(rb.times, rw.times) and np.array_equal(rb.senders, rw.senders)


def test_relays_an_inhomogeneous_poisson_train_at_its_scheduled_rates():
    """NEST's common set-up: an inhomogeneous Poisson generator (net.poisson(rate_times=, rate_values=)) sent
    through parrots: each segment's spike count agrees with its rate (within 5 standard deviations; at
    rate * dt <= 0.05 the steps with two spikes, which leave a parrot as one, are about 2.5 % of them)."""
    net = es.Network(dt=0.1, seed=21)
    par = net.population(50, es.Parrot())
    rates = np.array([[100.0] * 25 + [300.0] * 25, [0.0] * 50, [500.0] * 50])
    src = net.poisson(50, rate=200.0, rate_times=[1000.0, 1500.0, 2500.0], rate_values=rates)
    net.connect(src, par, es.OneToOne(), weight=1.0, delay=1.0)
    rec = net.record_spikes(par)
    net.run(3500.0)
    t = rec.times - 1.0   # emitted one delay earlier
    for (lo, hi), rate in zip(((0.0, 1000.0), (1000.0, 1500.0), (1500.0, 2500.0), (2500.0, 3499.0)),
                              (np.full(50, 200.0), rates[0], rates[1], rates[2])):
        sel = (t >= lo - 1e-9) & (t < hi - 1e-9)
        for group in (slice(0, 25), slice(25, 50)):
            got = np.isin(rec.senders[sel], np.arange(50)[group]).sum()
            lam = rate[group].sum() * (hi - lo) * 1e-3
            p1 = rate[group][0] * 1e-4   # expected spikes per step; a parrot keeps one of two in a step
            expect = lam * (1 - p1 / 2)
            assert abs(got - expect) <= 5 * np.sqrt(lam) + 1, (lo, got, expect)
