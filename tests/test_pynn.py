"""The PyNN backend (eventsim.pynn): units, names, connectors, plasticity, recording, refusals,
and PyNN's own system-test scenarios (from PyNN's source distribution, fetched at test time)."""

import importlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyNN")
neo = pytest.importorskip("neo")

import eventsim as es  # noqa: E402
import eventsim.pynn as sim  # noqa: E402
from eventsim.pynn import UnsupportedError  # noqa: E402
from pyNN.errors import RecordingError  # noqa: E402

CELL = dict(cm=0.25, tau_m=10.0, v_rest=-65.0, v_thresh=-50.0, v_reset=-70.0, tau_refrac=2.0,
            tau_syn_E=5.0, tau_syn_I=3.0, i_offset=0.0)


@pytest.fixture(autouse=True)
def _fresh():
    sim.setup(timestep=0.1, min_delay=0.1, rng_seed=3)
    yield
    sim.end()


def test_registered_as_pyNN_eventsim():
    assert importlib.import_module("pyNN.eventsim") is sim
    import pyNN
    assert pyNN.eventsim is sim


def test_if_curr_exp_parameters_converted_to_eventsim_units_and_names():
    pop = sim.Population(3, sim.IF_curr_exp(**dict(CELL, i_offset=[0.0, 0.1, 0.2])))
    sim.run(0.1)
    model = pop._es.model
    assert model.c_m == pytest.approx(250.0)           # nF -> pF
    assert np.allclose(model.i_e, [0.0, 100.0, 200.0])  # nA -> pA
    assert (model.v_th, model.v_reset, model.v_rest, model.t_ref) == (-50.0, -70.0, -65.0, 2.0)
    assert (model.tau_syn_ex, model.tau_syn_in, model.tau_m) == (5.0, 3.0, 10.0)
    # read back in PyNN's units and names
    assert pop.get("cm") == pytest.approx(0.25)
    assert np.allclose(pop.get("i_offset"), [0.0, 0.1, 0.2])
    pop[1:].set(i_offset=0.5, tau_m=12.0)
    assert np.allclose(pop._es.get("i_e"), [0.0, 500.0, 500.0])
    assert np.allclose(pop._es.get("tau_m"), [10.0, 12.0, 12.0])


def test_constant_current_gives_the_closed_form_interspike_interval():
    # v_rest = v_reset = 0: from rest, the threshold is reached at T = tau ln(I R / (I R - v_th))
    cm, tau, vth, i = 1.0, 20.0, 10.0, 1.0          # nF, ms, mV, nA -> R = tau / cm = 20 MOhm
    pop = sim.Population(1, sim.IF_curr_exp(cm=cm, tau_m=tau, v_rest=0.0, v_reset=0.0, v_thresh=vth,
                                            tau_refrac=0.0, i_offset=i))
    pop.initialize(v=0.0)
    pop.record("spikes")
    sim.run(100.0)
    times = np.asarray(pop.get_data().segments[0].spiketrains[0].magnitude)
    isi = tau * math.log(i * tau / cm / (i * tau / cm - vth))
    assert times.size == int(100.0 // (math.ceil(isi / 0.1 - 1e-9) * 0.1))
    assert abs(times[0] - isi) <= 0.1 + 1e-9        # spikes are stamped on the grid, after the crossing


def _by_hand(weight_pa, delta, psc="exp"):
    """The same one-input network written directly in eventsim (reference)."""
    net = es.Network(dt=0.1, seed=1)
    kw = dict(c_m=250.0, tau_m=10.0, v_rest=-65.0, v_th=-50.0, v_reset=-70.0, t_ref=2.0, i_e=0.0)
    if not delta:
        kw.update(tau_syn_ex=5.0, tau_syn_in=3.0, psc=psc)
    pop = net.population(1, es.LIF(**kw), v_init=-65.0)
    stim = net.spike_source([0, 0], [5.0, 12.0])
    net.connect(stim, pop, es.AllToAll(), weight=weight_pa, delay=1.5)
    v = net.record_state(pop, "v")
    net.run(30.0)
    return np.concatenate([[-65.0], v.values[:, 0]])


@pytest.mark.parametrize("celltype, weight, receptor, factor", [
    ("IF_curr_exp", 0.6, "excitatory", 1000.0),
    ("IF_curr_exp", -0.6, "inhibitory", 1000.0),
    ("IF_curr_delta", 2.5, "excitatory", 1.0),
    ("IF_curr_delta", -2.5, "inhibitory", 1.0),
    ("IF_curr_alpha", 0.6, "excitatory", 1000.0),
    ("IF_curr_alpha", -0.6, "inhibitory", 1000.0),
])
def test_weights_in_pynn_units_give_the_eventsim_network_written_by_hand(celltype, weight, receptor, factor):
    params = dict(CELL) if celltype != "IF_curr_delta" else {k: v for k, v in CELL.items() if "syn" not in k}
    pop = sim.Population(1, getattr(sim, celltype)(**params))
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[5.0, 12.0]))
    prj = sim.Projection(src, pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=weight, delay=1.5),
                         receptor_type=receptor)
    pop.record("v")
    sim.run(30.0)
    v = pop.get_data().segments[0].filter(name="v")[0]
    assert v.shape == (301, 1) and float(v.sampling_period) == pytest.approx(0.1)
    expected = _by_hand(weight * factor, celltype == "IF_curr_delta", "alpha" if "alpha" in celltype else "exp")
    assert np.array_equal(np.asarray(v.magnitude)[:, 0], expected)
    assert expected.min() < -65.0 - 0.1 or expected.max() > -65.0 + 0.1  # the input moved v
    assert prj.get("weight", format="list") == [(0, 0, weight)]


def test_connectors_draw_what_pynn_documents():
    pre = sim.Population(20, sim.SpikeSourcePoisson(rate=10.0))
    post = sim.Population(10, sim.IF_curr_exp())
    fnp = sim.Projection(pre, post, sim.FixedNumberPreConnector(4, with_replacement=False),
                         sim.StaticSynapse(weight=0.1, delay=1.0))
    _, cols = np.array([c[:2] for c in fnp.get("weight", format="list")]).T
    assert np.array_equal(np.bincount(cols.astype(int), minlength=10), np.full(10, 4))
    fnpost = sim.Projection(pre, post, sim.FixedNumberPostConnector(3), sim.StaticSynapse(weight=0.1))
    rows = np.array([c[0] for c in fnpost.get("weight", format="list")], dtype=int)
    assert np.array_equal(np.bincount(rows, minlength=20), np.full(20, 3))
    conns = [(0, 1, 0.2, 1.5), (3, 2, 0.4, 2.0), (5, 9, 0.1, 0.3)]
    fl = sim.Projection(pre, post, sim.FromListConnector(conns, column_names=["weight", "delay"]))
    assert np.allclose(sorted(fl.get(["weight", "delay"], format="list")), sorted(conns), rtol=0, atol=1e-12)
    mask = np.zeros((20, 10), dtype=bool)
    mask[[1, 2, 2], [0, 0, 5]] = True
    arr = sim.Projection(pre, post, sim.ArrayConnector(mask), sim.StaticSynapse(weight=0.3))
    w = arr.get("weight", format="array")
    assert np.array_equal(~np.isnan(w), mask) and np.all(w[mask] == 0.3)
    o2o = sim.Projection(pre[:10], post, sim.OneToOneConnector(), sim.StaticSynapse(weight=0.2))
    assert [c[:2] for c in o2o.get("weight", format="list")] == [(i, i) for i in range(10)]
    sim.run(10.0)
    # after the run the weights come back from eventsim, in nA
    assert np.allclose(sorted(fl.get(["weight", "delay"], format="list")), sorted(conns), rtol=0, atol=1e-12)
    assert len(o2o._es) == 1 and np.allclose(o2o._es[0][0].weight, 200.0)


def test_weights_set_between_runs_reach_the_network():
    pre = sim.Population(2, sim.SpikeSourceArray(spike_times=[[1.0], [2.0]]))
    post = sim.Population(1, sim.IF_curr_exp())
    prj = sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1))
    sim.run(5.0)
    prj.set(weight=np.array([[0.3], [0.4]]))
    assert np.allclose(prj._es[0][0].weight, [300.0, 400.0])
    assert np.allclose(prj.get("weight", format="array")[:, 0], [0.3, 0.4])


def test_stdp_mechanism_maps_onto_es_stdp_as_nest_does():
    # PyNN: dw+ = A_plus w_max K (additive); NEST stdp_synapse: lambda = A_plus, alpha = A_minus / A_plus
    pre = sim.Population(2, sim.SpikeSourceArray(spike_times=[[10.0, 30.0, 50.0], [20.0]]))
    post = sim.Population(2, sim.IF_curr_exp(**CELL))
    drive = sim.Population(2, sim.SpikeSourceArray(spike_times=[[12.0, 33.0], [40.0]]))
    sim.Projection(drive, post, sim.OneToOneConnector(), sim.StaticSynapse(weight=5.0, delay=0.1))
    td = sim.SpikePairRule(tau_plus=15.0, tau_minus=25.0, A_plus=0.02, A_minus=0.03)
    add = sim.Projection(pre, post, sim.OneToOneConnector(),
                         sim.STDPMechanism(timing_dependence=td, weight=0.4, delay=1.0,
                                           weight_dependence=sim.AdditiveWeightDependence(w_min=0.0, w_max=0.8)))
    mul = sim.Projection(pre, post, sim.OneToOneConnector(),
                         sim.STDPMechanism(timing_dependence=td, weight=0.4, delay=1.0,
                                           weight_dependence=sim.MultiplicativeWeightDependence(w_max=0.8)))
    post.record("spikes")
    sim.run(80.0)
    for prj, mu in ((add, 0.0), (mul, 1.0)):
        rule = prj._es[0][0].synapse
        assert isinstance(rule, es.STDP)
        assert (rule.tau_plus, rule.tau_minus, rule.lam) == (15.0, 25.0, 0.02)
        assert rule.alpha == pytest.approx(1.5) and rule.w_max == pytest.approx(800.0)   # nA -> pA
        assert rule.mu_plus == mu and rule.mu_minus == mu
    # cell 0: pre at 10 (arrives 11), post at ~12.x: the pairing potentiates; the weights moved and stay bounded
    spikes = post.get_data().segments[0].spiketrains
    assert len(spikes[0]) >= 2
    w_add, w_mul = (np.array([c[2] for c in p.get("weight", format="list")]) for p in (add, mul))
    assert not np.allclose(w_add, 0.4) and not np.allclose(w_mul, 0.4)
    assert np.all((w_add >= 0) & (w_add <= 0.8)) and np.all((w_mul >= 0) & (w_mul <= 0.8))


def test_stdp_from_a_spike_source_goes_through_a_relay_at_the_sources_times():
    """The relay of parrot neurons keeps the source's spike times (a source without relay is the reference)."""
    times = [5.0, 17.3, 30.0]
    relayed = sim.Population(1, sim.SpikeSourceArray(spike_times=times))
    direct = sim.Population(1, sim.SpikeSourceArray(spike_times=times))
    posts = [sim.Population(1, sim.IF_curr_exp(**dict(CELL, tau_refrac=0.1))) for _ in range(3)]
    syn = sim.STDPMechanism(timing_dependence=sim.SpikePairRule(A_plus=0.0, A_minus=0.0),
                            weight_dependence=sim.AdditiveWeightDependence(w_max=2.0), weight=0.9, delay=2.0)
    sim.Projection(relayed, posts[0], sim.AllToAllConnector(), syn)
    sim.Projection(direct, posts[1], sim.AllToAllConnector(), sim.StaticSynapse(weight=0.9, delay=2.0))
    sim.Projection(relayed, posts[2], sim.AllToAllConnector(), sim.StaticSynapse(weight=0.9, delay=2.0))
    for p in posts:
        p.record("v")
    sim.run(40.0)
    v = [np.asarray(p.get_data().segments[0].filter(name="v")[0].magnitude)[:, 0] for p in posts]
    assert relayed._relay is not None and direct._relay is None
    assert np.array_equal(v[0], v[1]) and np.array_equal(v[2], v[1]) and v[0].max() > -65.0 + 1.0


def test_unsupported_constructs_fail_when_built_naming_them():
    with pytest.raises(UnsupportedError, match="IF_cond_exp.*supported cell types: IF_curr_exp, IF_curr_delta"):
        sim.Population(2, sim.IF_cond_exp())
    with pytest.raises(UnsupportedError, match="IF_cond_alpha"):
        sim.Population(2, sim.IF_cond_alpha())
    with pytest.raises(UnsupportedError, match="TsodyksMarkramSynapse.*StaticSynapse"):
        sim.TsodyksMarkramSynapse(U=0.5)
    with pytest.raises(UnsupportedError, match="StepCurrentSource.*DCSource"):
        sim.StepCurrentSource(times=[1.0], amplitudes=[0.1])
    pop = sim.Population(2, sim.IF_curr_exp())
    with pytest.raises(RecordingError, match="gsyn_exc"):
        pop.record("gsyn_exc")
    with pytest.raises(UnsupportedError, match="gsyn cannot be recorded"):
        sim.record_gsyn(pop, "gsyn.pkl")
    assert len(sim.simulator.state.objects) == 1  # nothing half-built was registered


def test_reset_starts_a_new_segment_from_the_initial_values():
    pop = sim.Population(2, sim.IF_curr_exp(**dict(CELL, i_offset=[0.5, 0.8])))
    pop.initialize(v=[-60.0, -55.0])
    pop.record(["spikes", "v"])
    sim.run(50.0)
    sim.reset()
    assert sim.get_current_time() == 0.0
    sim.run(50.0)
    block = pop.get_data()
    assert len(block.segments) == 2
    s0, s1 = block.segments
    for a, b in zip(s0.spiketrains, s1.spiketrains):
        assert a.size > 0 and np.array_equal(a.magnitude, b.magnitude)
    v0, v1 = s0.filter(name="v")[0], s1.filter(name="v")[0]
    assert np.allclose(np.asarray(v0.magnitude)[0], [-60.0, -55.0])
    assert np.array_equal(v0.magnitude, v1.magnitude)


def test_get_data_clear_and_write_data(tmp_path):
    pop = sim.Population(1, sim.IF_curr_exp(**dict(CELL, i_offset=0.5)))
    pop.record(["spikes", "v"], sampling_interval=1.0)
    sim.run(40.0)
    first = pop.get_data(clear=True).segments[0]
    sim.run(40.0)
    second = pop.get_data().segments[0]
    v1, v2 = first.filter(name="v")[0], second.filter(name="v")[0]
    assert v1.shape[0] == 41 and v2.shape[0] == 41
    assert float(v2.t_start) == pytest.approx(40.0)
    assert v2.magnitude[0, 0] == v1.magnitude[-1, 0]   # the sample at t = 40 ms starts the next segment
    assert np.all(second.spiketrains[0].magnitude > 40.0)
    path = tmp_path / "run.pkl"
    pop.write_data(str(path))
    back = neo.io.PickleIO(str(path)).read_block()
    assert np.array_equal(back.segments[0].spiketrains[0].magnitude, second.spiketrains[0].magnitude)


def test_poisson_source_rate_and_window():
    src = sim.Population(200, sim.SpikeSourcePoisson(rate=50.0, start=100.0, duration=200.0))
    src.record("spikes")
    sim.run(400.0)
    trains = src.get_data().segments[0].spiketrains
    times = np.concatenate([np.asarray(t.magnitude) for t in trains])
    assert times.min() >= 100.0 and times.max() < 300.0
    # 200 channels x 0.2 s x 50 Hz = 2000 expected; 5 standard deviations
    assert abs(times.size - 2000) < 5 * math.sqrt(2000)


def test_dc_source_switches_on_and_off():
    pop = sim.Population(1, sim.IF_curr_exp(**dict(CELL, v_thresh=100.0)))
    dc = sim.DCSource(amplitude=0.5, start=10.0, stop=20.0)
    pop.inject(dc)
    pop.record("v")
    sim.run(40.0)
    v = np.asarray(pop.get_data().segments[0].filter(name="v")[0].magnitude)[:, 0]
    assert np.all(v[:101] == -65.0)          # nothing before 10 ms
    assert v[200] > -65.0 + 9.0               # 0.5 nA x 40 MOhm = 20 mV asymptote, 1 - e^-1 after 10 ms
    assert np.all(np.diff(v[201:]) < 0)       # decays after 20 ms
    dc.amplitude = 0.0
    sim.run(10.0)
    assert pop._es is not None and sim.get_current_time() == pytest.approx(50.0)


def test_a_network_gives_nests_spikes_on_the_grid():
    """tests/pynn_reference_network.py run by pyNN.nest 3.10 (on the grid, stored by
    tests/generate_pynn_nest_reference.py) and by eventsim.pynn: the same spikes."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from pynn_reference_network import build_and_run
    finally:
        sys.path.pop(0)
    ref = np.load(Path(__file__).parent / "pynn_reference" / "nest_network.npz")
    spikes = build_and_run(sim)
    for label, (ids, times) in spikes.items():
        assert len(ids) > 100, label
        assert np.array_equal(ids, ref[f"{label}_ids"]), label
        assert np.allclose(times, ref[f"{label}_times"], rtol=0, atol=1e-9), label


def test_stdp_gives_nests_weights():
    """STDPMechanism(SpikePairRule, additive / multiplicative) from spike arrays, run by pyNN.nest
    (stdp_synapse behind parrot neurons, stored) and by eventsim.pynn: the same spikes and weights."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from pynn_reference_network import build_and_run_stdp
    finally:
        sys.path.pop(0)
    ref = np.load(Path(__file__).parent / "pynn_reference" / "nest_stdp.npz")
    out = build_and_run_stdp(sim)
    assert np.array_equal(out["spikes"], ref["spikes"])
    for name in ("add", "mul"):
        assert np.ptp(ref[name]) > 0.05, name  # the rule spread the weights
        assert np.allclose(out[name], ref[name], rtol=0, atol=1e-12), name


def test_delays_are_reported_on_the_grid():
    pre = sim.Population(3, sim.SpikeSourceArray(spike_times=[1.0]))
    post = sim.Population(1, sim.IF_curr_exp())
    prj = sim.Projection(pre, post, sim.FromListConnector([(0, 0, 0.1, 1.26), (1, 0, 0.1, 1.34), (2, 0, 0.1, 0.1)],
                                                          column_names=["weight", "delay"]))
    assert np.allclose([c[3] for c in prj.get(["weight", "delay"], format="list")], [1.3, 1.3, 0.1])


@pytest.mark.slow
def test_pynn_system_scenarios(tmp_path):
    """PyNN's own scenarios: every one that uses only supported features passes."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import pynn_scenarios
    finally:
        sys.path.pop(0)
    try:
        sdist = pynn_scenarios.fetch_sdist(tmp_path)
    except Exception as exc:  # no network or no index: nothing to run against
        pytest.skip(f"PyNN's source distribution could not be fetched: {exc}")
    root = pynn_scenarios.unpack(sdist, tmp_path)
    results = pynn_scenarios.run_scenarios(root, "eventsim")
    per_file, total = pynn_scenarios.summary(results)
    failed = {f"{name}::{test}": reason for name, tests in results.items()
              for test, (kind, reason) in tests.items() if kind not in ("passed", "unsupported")}
    assert not failed, failed
    assert total.get("passed", 0) >= 16, per_file
    for name, tests in results.items():
        for test, (kind, reason) in tests.items():
            if kind == "unsupported":
                assert "not supported by the eventsim backend" in reason, (test, reason)


def test_assemblies_views_and_initialize_after_a_run():
    exc = sim.Population(4, sim.IF_curr_exp(**CELL), label="exc")
    inh = sim.Population(2, sim.IF_curr_exp(**CELL), label="inh")
    both = exc + inh
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[2.0]))
    prj = sim.Projection(src, both, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.4, delay=1.0),
                         receptor_type="excitatory")
    assert len(prj) == 6
    both.record("v")
    sim.run(10.0)
    assert len(prj._es) == 2  # one eventsim projection per target population
    blocks = both.get_data()
    v = np.hstack([np.asarray(sig.magnitude) for sig in blocks.segments[0].filter(name="v")])
    assert v.shape == (101, 6) and np.all(v[-1] > -65.0)  # every cell got the input
    exc[1:3].initialize(v=-52.0)                        # after a run: the state changes now
    assert np.allclose(exc._es.get("v")[1:3], -52.0) and not np.allclose(exc._es.get("v")[0], -52.0)
    sim.reset()                                         # and is the initial value from then on
    sim.run(0.1)
    assert np.allclose(exc._es.get("v")[1:3], -52.0, atol=0.5) and exc._es.get("v")[0] == pytest.approx(-65.0)


@pytest.mark.parametrize("rule, expected", [("sum", 0.4), ("min", 0.1), ("max", 0.3), ("first", 0.1), ("last", 0.3)])
def test_array_format_combines_repeated_connections(rule, expected):
    pre = sim.Population(3, sim.SpikeSourceArray(spike_times=[1.0]))
    post = sim.Population(2, sim.IF_curr_exp())
    prj = sim.Projection(pre, post, sim.FromListConnector([(0, 0, 0.1, 1.0), (0, 0, 0.3, 1.0), (2, 1, 0.5, 1.0)],
                                                          column_names=["weight", "delay"]))
    w = prj.get("weight", format="array", multiple_synapses=rule)
    assert w[0, 0] == pytest.approx(expected) and w[2, 1] == pytest.approx(0.5)
    assert np.isnan(w[1]).all() and np.isnan(w[0, 1])


def test_off_grid_precision_runs_alpha_cells_in_the_event_engine():
    """IF_curr_alpha with spike_precision="off_grid": iaf_psc_alpha_ps's continuous spike times."""
    sim.setup(timestep=0.1, spike_precision="off_grid")
    pop = sim.Population(1, sim.IF_curr_alpha(cm=0.25, tau_m=10.0, v_rest=-65.0, v_reset=-70.0, v_thresh=-50.0,
                                              tau_refrac=2.0, tau_syn_E=2.0, i_offset=0.0))
    pop.initialize(v=-65.0)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.2345]))
    sim.Projection(src, pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=2.0, delay=1.0))
    pop.record("spikes")
    sim.run(20.0)
    net = sim.simulator.state.net
    assert net.engine == "event" and net.populations[0].model.psc == "alpha"
    times = np.asarray(pop.get_data().segments[0].spiketrains[0].magnitude)
    assert times.size == 1 and 2.2345 < times[0] < 5.0 and abs(times[0] / 0.1 - round(times[0] / 0.1)) > 1e-6


def test_off_grid_precision_runs_the_event_engine_with_exact_times():
    sim.setup(timestep=0.1, spike_precision="off_grid")
    cm, tau, vth, i = 1.0, 20.0, 10.0, 1.0
    pop = sim.Population(1, sim.IF_curr_exp(cm=cm, tau_m=tau, v_rest=0.0, v_reset=0.0, v_thresh=vth,
                                            tau_refrac=0.0, i_offset=i))
    pop.initialize(v=0.0)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[0.123, 7.4567]))
    pop.record("spikes")
    src.record("spikes")
    sim.run(50.0)
    assert sim.simulator.state.net.engine == "event"
    isi = tau * math.log(i * tau / cm / (i * tau / cm - vth))
    times = np.asarray(pop.get_data().segments[0].spiketrains[0].magnitude)
    assert times.size == int(50.0 // isi) and np.allclose(times, isi * np.arange(1, times.size + 1), atol=1e-9)
    assert np.allclose(src.get_data().segments[0].spiketrains[0].magnitude, [0.123, 7.4567])


def test_poisson_rate_changed_between_runs():
    src = sim.Population(50, sim.SpikeSourcePoisson(rate=100.0))
    src.record("spikes")
    sim.run(100.0)
    src.set(rate=0.0)
    sim.run(100.0)
    times = np.concatenate([np.asarray(t.magnitude) for t in src.get_data().segments[0].spiketrains])
    assert times.size > 300 and times.max() < 100.0
