"""Parrot neurons (eventsim.models.parrot) against NEST 3.10's parrot_neuron (tests/nest_izhikevich_reference/
parrot.npz) and the checks of NEST's own test_parrot_neuron: spikes relayed after the connection delay,
weights ignored (0 and negative ones too), several inputs in one step leaving as one spike of that
multiplicity (delivered as weight x multiplicity, recorded that many times, one plasticity update), chains
of parrots.  Clock and event engines; off the grid in the event engine."""

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
def test_relays_as_nest(engine):
    """NEST's spikes exactly, each as many times as NEST records it (k inputs arriving in one step leave
    as one spike of multiplicity k), in both engines."""
    d, rec = _nest_case(engine)
    dt = float(d["dt"])
    nest = sorted((int(s), int(round(t / dt))) for s, t in zip(d["spike_senders"], d["spike_times"]))
    ours = list(zip(rec.senders.tolist(), np.rint(rec.times / dt).astype(int).tolist()))
    assert sorted(ours) == nest
    np.testing.assert_allclose(rec.times, np.rint(rec.times / dt) * dt, rtol=0, atol=1e-9)  # on the grid
    # the reference does hold several spikes in one step (parrot 2: two connections from one generator;
    # parrot 1: two generators; parrot 4: both relayed again)
    assert len(nest) - len(set(nest)) >= 4
    # the first check of NEST's test: the spike at 1.0 ms through a delay of 0.2 ms leaves at 1.2 ms
    assert 1.2 in rec.times[rec.senders == 0].round(10).tolist()


@pytest.mark.parametrize("engine", ENGINES)
def test_weights_are_ignored(engine):
    net = es.Network(dt=0.1, engine=engine)
    par = net.population(5, es.Parrot())
    src = net.spike_source(senders=[0, 1, 1, 2], times=[2.0, 4.0, 4.0, 6.0])
    # parrot 0: weight 1e-9; 1: -50; 2: +3 and -3, each carrying the two spikes of 4.0 ms (four inputs in
    # one step, no cancellation); 3: weight 0 (relays, as in NEST); 4: through parrot 0 with delay 2.5 ms
    net.connect(src, par[:3], es.FromArrays(pre=[0, 0, 1, 1], post=[0, 1, 2, 2]), weight=[1e-9, -50.0, 3.0, -3.0],
                delay=1.0)
    net.connect(src, par[3], es.FromArrays(pre=[2], post=[0]), weight=0.0, delay=1.0)
    net.connect(par[0], par[4], es.OneToOne(), weight=-7.0, delay=2.5)
    rec = net.record_spikes(par)
    net.run(12.0)
    got = sorted(zip(rec.senders.tolist(), rec.times.round(10).tolist()))
    assert got == [(0, 3.0), (1, 3.0)] + [(2, 5.0)] * 4 + [(3, 7.0), (4, 5.5)]


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
    through a chain of parrots too; inputs arriving at one time leave as one spike of that multiplicity
    (recorded that many times, counted again by the next parrot), inputs at different times within one step
    as two spikes; a LIF neuron behind the chain gets the same input as one fed by the source with the
    summed delay (the same spike times but for float rounding)."""
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
    assert np.array_equal(got0, np.sort(times) + 0.25)  # 4.5678 twice: one spike of multiplicity 2
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
    through parrots: each segment's spike count agrees with its rate (within 5 standard deviations; the
    steps with two spikes leave a parrot as a spike of multiplicity two, recorded twice)."""
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
            assert abs(got - lam) <= 5 * np.sqrt(lam) + 1, (lo, got, lam)


def _relay_net(threads_env=None, backend="cpu"):
    """A Poisson source of 20 kHz (two spikes per step on average) into parrots and, with the parrots'
    delay added, straight into IF neurons; the parrots relay to IF neurons through static and STDP
    synapses."""
    net = es.Network(dt=0.1, seed=7, backend=backend)
    src = net.poisson(6, rate=np.r_[np.full(3, 20000.0), np.full(3, 3000.0)])
    par = net.population(6, es.Parrot())
    via = net.population(6, es.IF(c_m=250.0, v_th=1e9, v_reset=0.0, t_ref=0.0), v_init=0.0)
    direct = net.population(6, es.IF(c_m=250.0, v_th=1e9, v_reset=0.0, t_ref=0.0), v_init=0.0)
    net.connect(src, par, es.OneToOne(), weight=-2.0, delay=0.3)   # (the weight is ignored)
    net.connect(par, via, es.OneToOne(), weight=1.5, delay=0.7)
    net.connect(src, direct, es.OneToOne(), weight=1.5, delay=1.0)
    return net, par, via, direct


def test_several_spikes_of_a_step_leave_as_one_spike_of_that_multiplicity():
    """A parrot relays every spike of a step (a 20 kHz source: two per step on average): its targets get
    weight x multiplicity, the same to the last bit as a neuron fed the source's counts directly one delay
    later; the recorder has each spike as often as its multiplicity; the events are counted with it."""
    net, par, via, direct = _relay_net()
    rp = net.record_spikes(par)
    rv, rd = net.record_state(via, "v"), net.record_state(direct, "v")
    net.run(50.0)
    assert np.array_equal(rv.values, rd.values) and np.abs(rv.values[-1]).min() > 0
    per = np.bincount(rp.senders, minlength=6)
    steps = 500 - 3   # (the parrots' first spikes leave at 0.4 ms)
    assert per[:3].min() > 1.6 * steps and per[3:].max() < 0.5 * steps   # ~2 and ~0.3 spikes per step
    _, mult = np.unique(np.c_[rp.senders, rp.steps], axis=0, return_counts=True)
    assert mult.max() >= 5 and (mult == 1).any()   # several spikes in one step, recorded that many times
    # synaptic events from neurons: each parrot has one connection, so one per recorded spike
    assert net.synaptic_events[0] == rp.senders.size


def test_checkpoint_keeps_the_multiplicity_of_spikes_in_flight(tmp_path):
    whole, par, _, _ = _relay_net()
    rw = whole.record_spikes(par)
    whole.run(40.0)
    half, par_h, _, _ = _relay_net()
    half.record_spikes(par_h)
    half.run(20.1)
    assert int(half._plan.pend_n[0]) > 0 and half._plan.pmul[: int(half._plan.pend_n[0])].max() > 1
    half.save(tmp_path / "m.ckpt")
    back = es.Network.load(tmp_path / "m.ckpt")
    back.run(19.9)
    rb = back.recorders[0]
    assert np.array_equal(rb.steps, rw.steps) and np.array_equal(rb.senders, rw.senders)
    assert np.array_equal(back.populations[1].get("v"), whole.populations[1].get("v"))


def test_plastic_synapses_from_a_parrot_update_once_per_spike_of_any_multiplicity():
    """NEST's stdp_synapse sees a spike of multiplicity m once: one weight update, one K_+ increment, and
    m times the new weight delivered.  A spike source sending 1 or 3 spikes in one step through a parrot:
    the same weights, the target's jump three times as large."""
    def case(k):
        net = es.Network(dt=0.1, seed=1)
        par = net.population(1, es.Parrot())
        post = net.population(1, es.IF(c_m=250.0, v_th=1e9, v_reset=0.0, t_ref=0.0), v_init=0.0)
        ctrl = net.population(1, es.LIF(tau_m=10.0, v_th=15.0, t_ref=2.0), v_init=0.0)
        times = [5.0] * k + [12.0] * k + [30.0] * k
        src = net.spike_source(senders=np.zeros(len(times), np.int64), times=times)
        net.connect(src, par, es.AllToAll(), weight=1.0, delay=0.1)
        kick = net.spike_source(senders=[0, 0], times=[8.0, 20.0])
        net.connect(kick, ctrl, es.AllToAll(), weight=100.0, delay=0.1)
        proj = net.connect(par, post | ctrl, es.AllToAll(), weight=2.0, delay=1.0,  # (3 x 2 mV: below threshold)
                           synapse=es.STDP(tau_plus=15.0, lam=0.01, w_max=100.0))
        rs, rv = net.record_spikes(ctrl), net.record_state(post, "v")
        net.run(40.0)
        assert np.array_equal(rs.times.round(10), [8.1, 20.1])   # (ctrl spikes at the kicks only)
        return np.asarray(proj.weight, np.float64), rv.values[:, 0]

    w1, v1 = case(1)
    w3, v3 = case(3)
    assert np.array_equal(w1, w3) and w1[0] == 2.0 and w1[1] != 2.0   # one update per spike (ctrl spikes: it changes)
    np.testing.assert_allclose(v3, 3.0 * v1, rtol=1e-12, atol=0)
    assert v1.max() > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_outgoing_multiplicity_as_nest_spike_train_injector(engine):
    """NEST's check of multiplicities (its spike_train_injector test: 3 spikes at 1 ms and 5 at 2 ms into
    parrots, recorded at 2 ms three times and at 3 ms five times), plus the target of a relayed spike of
    multiplicity 5 getting 5 x the weight at once."""
    net = es.Network(dt=0.1, engine=engine)
    par = net.population(4, es.Parrot())
    post = net.population(1, es.LIF(tau_m=10.0, v_th=100.0, t_ref=0.0), v_init=0.0)
    src = net.spike_source(senders=np.zeros(8, np.int64), times=[1.0] * 3 + [2.0] * 5)
    net.connect(src, par, es.AllToAll(), weight=1.0, delay=1.0)
    net.connect(par[0], post, es.OneToOne(), weight=2.0, delay=1.0)
    rec = net.record_spikes(par)
    net.run(3.0)
    v_before = float(post.get("v")[0])
    net.run(1.0)
    for k in range(4):
        np.testing.assert_allclose(rec.times[rec.senders == k], [2.0] * 3 + [3.0] * 5, rtol=0, atol=1e-9)
    # (the 3 spikes of 2 ms arrived at 3 ms: 3 x 2 mV; then 1 ms of decay and the 5 x 2 mV of 4 ms)
    np.testing.assert_allclose(v_before, 6.0, rtol=1e-12)
    np.testing.assert_allclose(float(post.get("v")[0]), 6.0 * np.exp(-1.0 / 10.0) + 10.0, rtol=1e-12)


def test_multiplicity_is_cut_at_its_documented_maximum():
    """More than MAX_MULTIPLICITY (2**20) inputs in one step (a Poisson channel of 3e10 Hz: 3e6 per step)
    leave a parrot as 2**20 spikes, in every engine alike (the MPI exchange carries no more)."""
    from eventsim.models.parrot import MAX_MULTIPLICITY

    net = es.Network(dt=0.1, seed=2)
    par = net.population(1, es.Parrot())
    net.connect(net.poisson(1, rate=3e10), par, es.OneToOne(), weight=1.0, delay=0.1)
    rec = net.record_spikes(par)
    net.run(0.4)
    _, k = np.unique(rec.steps, return_counts=True)
    assert k.size >= 2 and (k == MAX_MULTIPLICITY).all()


def test_plastic_synapses_onto_a_parrot_count_spikes_not_weights():
    """NEST's STDP protocol set-up (parrot -> stdp -> parrot): a spike of multiplicity 2 through a plastic
    synapse of weight 7 reaches the second parrot as 2 spikes, not 14."""
    net = es.Network(dt=0.1, seed=1)
    pre, post = net.population(1, es.Parrot()), net.population(1, es.Parrot())
    src = net.spike_source(senders=[0, 0, 0], times=[1.0, 1.0, 4.0])
    net.connect(src, pre, es.AllToAll(), weight=1.0, delay=0.1)
    net.connect(pre, post, es.AllToAll(), weight=7.0, delay=1.0, synapse=es.STDP(lam=0.01, w_max=100.0))
    rec = net.record_spikes(post)
    net.run(10.0)
    np.testing.assert_allclose(rec.times, [2.1, 2.1, 5.1], rtol=0, atol=1e-9)   # (t + 0.1 + 1.0 ms)
