"""A small network written once in PyNN, run by tests/test_pynn.py with eventsim.pynn and by
tests/generate_pynn_nest_reference.py with pyNN.nest (on the grid) to store NEST's spikes."""

import numpy as np

T_STOP = 300.0  # ms


def build_and_run(sim):
    """Build the network with the PyNN module ``sim``, run it, return ``{population label: (ids, times)}``.

    Excitatory and inhibitory IF_curr_exp cells (Vogels-Abbott parameters),
    IF_curr_delta cells, spike-array input, a DC step and random initial
    values, connectivity from PyNN's own generator.
    """
    from pyNN.random import NumpyRNG, RandomDistribution

    sim.setup(timestep=0.1, min_delay=0.2, max_delay=5.0, spike_precision="on_grid")
    rng = NumpyRNG(seed=2024)
    cell = dict(cm=0.2, tau_m=20.0, tau_refrac=5.0, v_rest=-49.0, v_reset=-60.0, v_thresh=-50.0,
                tau_syn_E=5.0, tau_syn_I=10.0, i_offset=0.0)
    exc = sim.Population(160, sim.IF_curr_exp(**cell), label="exc")
    inh = sim.Population(40, sim.IF_curr_exp(**cell), label="inh")
    delta = sim.Population(20, sim.IF_curr_delta(cm=0.25, tau_m=10.0, tau_refrac=2.0, v_rest=-65.0,
                                                  v_reset=-65.0, v_thresh=-55.0, i_offset=0.1), label="delta")
    times = np.random.default_rng(7)
    # whole milliseconds: pyNN.nest hands NEST each time minus min_delay (for its parrot neurons), and
    # times such as 130.3 - 0.2 land a hair above the grid in floating point, which NEST emits one step
    # late; whole-millisecond times avoid that artifact of the reference
    spikes = [np.unique(np.round(np.sort(times.uniform(1.0, 250.0, 15)))) for _ in range(20)]
    stim = sim.Population(20, sim.SpikeSourceArray(spike_times=spikes), label="stim")
    v0 = RandomDistribution("uniform", low=-60.0, high=-50.0, rng=rng)
    exc.initialize(v=v0)
    inh.initialize(v=v0)
    delta.initialize(v=-70.0)  # pyNN.nest 0.13 ignores initial values of IF_curr_delta (NEST's default: -70 mV)
    conn = sim.FixedProbabilityConnector(0.1, rng=rng)
    w_exc, w_inh = 0.27e-3 * (0.0 + 60.0), 4.5e-3 * (-80.0 + 60.0)  # nA (CUBA's conversion)
    for pre, w, rec in ((exc, w_exc, "excitatory"), (inh, w_inh, "inhibitory")):
        for post in (exc, inh):
            sim.Projection(pre, post, conn, sim.StaticSynapse(weight=w, delay=0.2), receptor_type=rec)
    sim.Projection(stim, exc, sim.FixedProbabilityConnector(0.3, rng=rng),
                   sim.StaticSynapse(weight=0.15, delay=1.0), receptor_type="excitatory")
    sim.Projection(stim, delta, sim.FixedNumberPreConnector(4, rng=rng),
                   sim.StaticSynapse(weight=3.0, delay=0.5), receptor_type="excitatory")
    sim.Projection(exc, delta, sim.FixedProbabilityConnector(0.05, rng=rng),
                   sim.StaticSynapse(weight=RandomDistribution("uniform", low=0.5, high=1.5, rng=rng),
                                     delay=RandomDistribution("uniform", low=0.5, high=3.0, rng=rng)),
                   receptor_type="excitatory")
    sim.Projection(inh, delta, sim.FixedProbabilityConnector(0.1, rng=rng),
                   sim.StaticSynapse(weight=-2.0, delay=1.3), receptor_type="inhibitory")
    dc = sim.DCSource(amplitude=0.5, start=50.0, stop=150.0)
    dc.inject_into(exc[0:10])
    for pop in (exc, inh, delta):
        pop.record("spikes")
    sim.run(T_STOP)
    out = {}
    for pop in (exc, inh, delta):
        trains = pop.get_data().segments[0].spiketrains
        ids = np.concatenate([np.full(len(st), i) for i, st in enumerate(trains)]).astype(np.int64)
        t = np.concatenate([np.asarray(st.magnitude, dtype=float) for st in trains])
        order = np.lexsort((ids, t))
        out[pop.label] = (ids[order], t[order])
    sim.end()
    return out


def build_and_run_stdp(sim):
    """Spike arrays into IF_curr_exp cells through STDPMechanism(SpikePairRule, additive and
    multiplicative weight dependence); returns ``{"add": weights, "mul": weights, "spikes": counts}``
    (weights in nA, sorted by (pre, post)), after 500 ms."""
    sim.setup(timestep=0.1, min_delay=0.5, spike_precision="on_grid")
    g = np.random.default_rng(3)
    pre_times = [np.unique(np.round(np.sort(g.uniform(1, 490, 25)))) for _ in range(20)]
    drive_times = [np.unique(np.round(np.sort(g.uniform(1, 490, 30)))) for _ in range(5)]
    pre = sim.Population(20, sim.SpikeSourceArray(spike_times=pre_times))
    drive = sim.Population(5, sim.SpikeSourceArray(spike_times=drive_times))
    post = sim.Population(5, sim.IF_curr_exp(tau_refrac=2.0))
    sim.Projection(drive, post, sim.OneToOneConnector(), sim.StaticSynapse(weight=3.0, delay=0.5))
    projections = {}
    for name, wd in (("add", sim.AdditiveWeightDependence(w_min=0.0, w_max=0.5)),
                     ("mul", sim.MultiplicativeWeightDependence(w_min=0.0, w_max=0.5))):
        rule = sim.SpikePairRule(tau_plus=16.0, tau_minus=30.0, A_plus=0.05, A_minus=0.03)
        projections[name] = sim.Projection(pre, post, sim.AllToAllConnector(),
                                           sim.STDPMechanism(timing_dependence=rule, weight_dependence=wd,
                                                             weight=0.25, delay=1.0))
    post.record("spikes")
    sim.run(500.0)
    out = {name: np.array(sorted(p.get("weight", format="list")))[:, 2] for name, p in projections.items()}
    out["spikes"] = np.array([len(st) for st in post.get_data().segments[0].spiketrains])
    sim.end()
    return out
