"""A network with every connection rule, source and synapse kind, run in one process or under mpiexec.

``python tests/mpi_case.py out.npz`` (or ``mpiexec -n R python tests/mpi_case.py out.npz``) builds
:func:`build`, runs it in two parts with a change between them, and rank 0 writes the recordings
to ``out.npz``; tests/test_mpi.py compares the files of 1, 2 and 3 ranks bit for bit.
``python tests/mpi_case.py --failures`` (under mpiexec -n 2) exercises the failure paths.
"""

import os
import sys

import numpy as np

import eventsim as es


def build(comm="auto", stream=None, shortest=None):
    """The network and its recorders ``(net, recorders)``; ``stream``: also stream the excitatory
    spikes to this file (and samples of v to ``v.h5`` beside it); ``shortest`` (ms): no delay below it
    (intervals of several steps between the ranks' exchanges) and a volley that makes every
    excitatory neuron spike in one step at 0.7 ms (more spikers per rank than the exchange's first
    buffer holds)."""
    def d(x):
        return x if shortest is None else np.maximum(x, shortest)

    net = es.Network(dt=0.1, seed=11, comm=comm)
    delta = es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
    exc = net.population(700, delta, v_init=es.Uniform(0.0, 19.0))  # (several blocks of targets)
    inh = net.population(131, es.LIF(tau_m=10.0, v_th=15.0, v_reset=5.0, t_ref=1.0, tau_syn_ex=0.5,
                                     tau_syn_in=2.0), v_init=es.Normal(5.0, 3.0))
    small = net.population(9, es.IF(v_th=1.0, v_reset=0.0, t_ref=0.5), v_init=0.0)
    relay = net.population(5, es.Parrot())  # spikes of several in one step (multiplicities in the exchange)
    net.connect(exc, exc | inh, rule=es.FixedInDegree(40), weight=0.4, delay=1.5)
    net.connect(exc, inh, rule=es.FixedInDegree(20, allow_multapses=False), weight=es.Uniform(10.0, 30.0),
                delay=es.Uniform(0.5, 3.0))
    net.connect(inh, exc | inh, rule=es.FixedProbability(0.1), weight=es.Normal(-2.0, 0.5, high=-0.1),
                delay=es.Normal(1.2, 0.3, low=0.5, high=2.0))
    net.connect(inh[:20], small, rule=es.AllToAll(), weight=-0.05, delay=0.7)
    net.connect(exc[:400], inh, rule=es.FixedInDegree(12), weight=es.Uniform(20.0, 60.0), delay=1.2,
                synapse=es.STDP(tau_plus=15.0, lam=0.05, w_max=100.0))
    net.connect(exc[690:], small[:5], rule=es.FixedInDegree(3), weight=np.linspace(0.1, 0.5, 15),
                delay=np.full(15, 1.1))
    noise = net.poisson(831, rate=np.r_[np.full(700, 16000.0), np.full(131, 30000.0)])
    net.connect(noise, exc | inh, rule=es.OneToOne(), weight=0.3, delay=d(0.1))
    shared = net.poisson(3, rate=[200.0, 500.0, 120000.0])  # channels with many targets, one of them above lam 12
    net.connect(shared, exc[::7] | inh, rule=es.FixedInDegree(2), weight=es.Uniform(0.1, 1.0), delay=d(0.3))
    stim = net.spike_source(senders=[0, 1, 2, 0, 2], times=[2.0, 3.0, 3.0, 12.5, 30.0])
    net.connect(stim, small | exc[::50], rule=es.FromArrays(pre=[0, 1, 2, 2, 0, 1], post=[0, 3, 8, 12, 20, 9]),
                weight=[2.0, 1.5, 3.0, 25.0, 25.0, 25.0], delay=d(np.array([0.4, 1.0, 0.2, 2.5, 0.8, 1.3])))
    if shortest is not None:
        volley = net.spike_source(senders=[0], times=[0.2])
        net.connect(volley, exc, rule=es.AllToAll(), weight=5000.0, delay=shortest)
    dc = net.dc(30.0, start=10.0, stop=60.0, delay=0.5)
    net.connect(dc, inh[::3], rule=es.AllToAll(), weight=es.Uniform(0.5, 1.5))
    net.connect(net.poisson(5, rate=20000.0), relay, rule=es.OneToOne(), weight=0.0, delay=d(0.2))
    net.connect(relay, inh[::10] | small[5:], rule=es.FixedInDegree(2), weight=0.05, delay=d(0.6))
    net.connect(relay, exc[300:340], rule=es.FixedInDegree(1), weight=0.2, delay=d(0.9),
                synapse=es.STDP(tau_plus=15.0, lam=0.05, w_max=100.0))
    # plastic synapses onto the relays: each spike counts 1 there, whatever its weight
    net.connect(inh[:30], relay, rule=es.FixedInDegree(2), weight=-3.0, delay=d(0.4),
                synapse=es.STDP(tau_plus=15.0, lam=0.05, w_max=-100.0))
    stdp, arrays = net.projections[4], net.projections[8]
    w_index = np.r_[1571, 0:1572:37, 5, 5]  # (positions in the whole projection: unordered, one twice)
    recs = [net.record_spikes(exc | inh | small | relay), net.record_state(inh[::9] | exc[::97], "v"),
            net.record_state(inh[5:40:4], "i_in", interval=0.5),
            net.record_weights(stdp, index=w_index, interval=5.0), net.record_weights(arrays, interval=20.0)]
    if stream is not None:
        recs.append(net.record_spikes(exc, to=stream))
        recs.append(net.record_state(inh[::9] | exc[::97], "v", to=os.path.join(os.path.dirname(stream), "v.h5")))
        recs.append(net.record_weights(stdp, index=w_index, interval=5.0,
                                       to=os.path.join(os.path.dirname(stream), "w.h5")))
        # recorders whose columns all live on rank 0 (the other ranks write files of no column)
        recs.append(net.record_weights(stdp, index=[0, 5], interval=5.0,
                                       to=os.path.join(os.path.dirname(stream), "w0.h5")))
        recs.append(net.record_state(inh[0:10:9], "v", to=os.path.join(os.path.dirname(stream), "v0.h5")))
    return net, recs


def run(net, recs, checkpoint=None):
    """Run with changes between runs (and, with a ``checkpoint`` path, a save and a load in the middle);
    returns the recordings as a dict of arrays (collective under MPI)."""
    net.run(40.0)
    net.populations[0][10:200].set(v=5.0)
    net.sources[0].set(rate=np.full(831, 14000.0))
    if checkpoint is not None:
        net.run(12.3)
        net.save(checkpoint)
        net.close()  # (its streaming file is continued by the loaded network)
        net = es.Network.load(checkpoint)
        recs = net.recorders
        net.run(12.7)
    else:
        net.run(25.0)
    late = net.spike_source(senders=[0], times=[70.0])  # a structural change between runs
    net.connect(late, net.populations[2], rule=es.AllToAll(), weight=3.0, delay=0.5)
    # plastic synapses made between runs (a rule row of their own), onto neurons with and without plastic input
    exc, inh = net.populations[0], net.populations[1]
    late_stdp = net.connect(exc[:300], exc[100:250] | inh[:40], rule=es.FixedInDegree(3), weight=es.Uniform(0.1, 0.5),
                            delay=1.3, synapse=es.STDP(tau_plus=15.0, lam=0.05, w_max=1.0))
    late_w0 = np.asarray(late_stdp.weight, np.float64)
    if net.n_ranks > 1:
        late_w0 = net._dist.allgatherv(late_w0, late_w0.dtype)[0]
    net.run(35.0)
    spikes, v, i_in, w_stdp, w_arrays = recs[:5]
    plastic = []
    for stdp in [p for p in net.projections if getattr(p, "synapse", None) is not None]:
        parts = [np.asarray(stdp.weight, np.float64), stdp.source.ids[stdp.pre], stdp.target.ids[stdp.post]]
        if net.n_ranks > 1:  # (each rank holds the synapses onto its own neurons)
            parts = [net._dist.allgatherv(a, a.dtype)[0] for a in parts]
        order = np.lexsort(parts[::-1])
        plastic.append((parts[0][order], parts[1][order]))
    parts = plastic[0]
    return dict(stdp_w=parts[0], stdp_pre=parts[1], relay_w=plastic[1][0], late_w=plastic[-1][0],
                late_w0=np.sort(late_w0), steps=spikes.steps, ids=spikes.neuron_ids, senders=spikes.senders,
                v=v.values, v_steps=v.steps,
                i_in=i_in.values, rates=spikes.rates(), events=np.array(net.synaptic_events),
                inh_v=net.populations[1].get("v"), n_ranks=np.array(net.n_ranks), w_stdp=w_stdp.values,
                w_stdp_steps=w_stdp.steps, w_stdp_post=w_stdp.group.ids, w_arrays=w_arrays.values)


def failures():
    """Under mpiexec -n 2: errors met on one rank only stop both ranks together."""
    import os

    from mpi4py import MPI

    rank = MPI.COMM_WORLD.Get_rank()
    # (each rank writes what it saw to its own file: an abort can drop output still on its way to mpiexec)
    log = open(os.path.join(sys.argv[2], f"rank{rank}.txt"), "w")
    # 1. the ranks build different networks: refused at the run, on every rank
    net = es.Network(dt=0.1, seed=1)
    net.population(10 + rank, es.LIF())
    try:
        net.run(1.0)
    except ValueError as e:
        print(f"rank {rank} digest: {e}", file=log, flush=True)
    # 2. a NaN on one rank: FloatingPointError on every rank
    net = es.Network(dt=0.1, seed=1)
    pop = net.population(4, es.LIF(tau_syn_ex=2.0, tau_syn_in=2.0))
    src = net.spike_source(senders=[0, 1], times=[1.0, 1.0])  # two huge currents together: i_ex = inf
    net.connect(src, pop[3], rule=es.AllToAll(), weight=1.0e308, delay=0.1)
    try:
        net.run(5.0)
    except FloatingPointError as e:
        print(f"rank {rank} nan: {e} t={net.t}", file=log, flush=True)
    # 3. a streaming file removed on rank 1 during the run: both raise, both left at the last chunk
    from eventsim.record import rank_path

    net = es.Network(dt=0.1, seed=1)
    pop = net.population(6, es.LIF(i_e=500.0))
    net.record_spikes(pop, to=os.path.join(sys.argv[2], "s.h5"))
    net.run(50.0)
    if rank == 1:
        os.unlink(rank_path(os.path.join(sys.argv[2], "s.h5"), 1, 2))
    try:
        net.run(50.0)
    except Exception as e:  # noqa: BLE001
        print(f"rank {rank} stream: {type(e).__name__}: {e} t={net.t}", file=log, flush=True)
    log.close()
    # 4. bad input on rank 1 only, not caught: every rank stops with a non-zero exit
    net = es.Network(dt=0.1, seed=1)
    net.population(5 if rank == 0 else -5, es.LIF())
    net.run(1.0)
    print(f"rank {rank} not stopped", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--failures":
        failures()
    else:
        shortest = os.environ.get("MPI_CASE_SHORTEST")
        out = run(*build(stream=sys.argv[2] if len(sys.argv) > 2 else None,
                         shortest=None if shortest is None else float(shortest)),
                  checkpoint=sys.argv[3] if len(sys.argv) > 3 else None)
        if int(out["n_ranks"]) == 1 or __import__("mpi4py.MPI").MPI.COMM_WORLD.Get_rank() == 0:
            np.savez(sys.argv[1], **out)
