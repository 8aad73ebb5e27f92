"""A small network run on the CUDA backend over MPI ranks (one device per rank; the CUDA simulator in tests).

``mpiexec -n R python tests/mpi_cuda_case.py out.npz`` builds :func:`build` with ``backend="cuda"``, runs it
in two parts with a change between them, and rank 0 writes the recordings to ``out.npz``;
tests/test_mpi.py compares them with one CPU process, bit for bit.
"""

import sys

import numpy as np

import eventsim as es


def build(comm="auto", backend="cuda"):
    """The network and its recorders ``(net, recorders)``."""
    net = es.Network(dt=0.1, seed=5, comm=comm, backend=backend)
    exc = net.population(120, es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0), v_init=es.Uniform(0.0, 19.0))
    inh = net.population(30, es.LIF(tau_m=10.0, v_th=15.0, v_reset=5.0, t_ref=1.0, tau_syn_ex=0.5, tau_syn_in=2.0),
                         v_init=es.Normal(5.0, 3.0))
    ports = net.population(6, es.LIF(tau_syn=(1.0, 8.0), v_th=12.0), v_init=0.0)
    net.connect(exc, exc | inh, rule=es.FixedInDegree(20), weight=0.6, delay=es.Uniform(0.5, 2.0))
    net.connect(inh, exc | inh, rule=es.FixedProbability(0.2), weight=es.Normal(-2.0, 0.5, high=-0.1), delay=0.8)
    net.connect(exc[:40], inh, rule=es.FixedInDegree(8), weight=es.Uniform(20.0, 60.0), delay=1.2)
    net.connect(exc[:60], ports, rule=es.FixedInDegree(10), weight=40.0, delay=1.0, receptor=0)
    net.connect(inh, ports, rule=es.FixedInDegree(5), weight=-30.0, delay=0.6, receptor=1)
    noise = net.poisson(150, rate=np.r_[np.full(120, 16000.0), np.full(30, 30000.0)])
    net.connect(noise, exc | inh, rule=es.OneToOne(), weight=0.3, delay=0.1)
    stim = net.spike_source(senders=[0, 1, 0], times=[2.0, 3.0, 12.5])
    net.connect(stim, exc[::10], rule=es.AllToAll(), weight=15.0, delay=0.4)
    # plastic synapses: onto neurons of both ranks, and onto receptor ports
    net.connect(exc, exc, rule=es.FixedInDegree(6), weight=es.Uniform(0.2, 1.0), delay=es.Uniform(0.5, 2.0),
                synapse=es.STDP(lam=0.05, alpha=1.05, mu_plus=0.0, mu_minus=0.0, w_max=2.0))
    net.connect(exc[60:], ports, rule=es.FixedInDegree(4), weight=es.Uniform(10.0, 50.0), delay=0.9, receptor=1,
                synapse=es.STDPPowerLaw(lam=0.3, alpha=0.5, mu=0.4))
    dc = net.dc(30.0, start=5.0, stop=20.0)
    net.connect(dc, inh[::3], rule=es.AllToAll(), weight=1.0)
    recs = [net.record_spikes(exc | inh | ports), net.record_state(inh[::4] | exc[::17], "v"),
            net.record_state(ports, "i_syn_1", interval=0.5)]
    return net, recs


def run(net, recs):
    """Run with a change between runs; the recordings as a dict of arrays (collective under MPI)."""
    net.run(15.0)
    net.populations[0][10:50].set(v=5.0)
    exc, inh = net.populations[0], net.populations[1]  # plastic synapses made between runs
    net.connect(exc[:60], exc[30:90] | inh, rule=es.FixedInDegree(3), weight=es.Uniform(0.2, 1.0), delay=1.3,
                synapse=es.STDP(lam=0.05, alpha=1.05, mu_plus=0.0, mu_minus=0.0, w_max=2.0))
    net.run(15.0)
    out = dict(steps=recs[0].steps, ids=recs[0].senders, v=recs[1].values, i_syn=recs[2].values,
               events=np.array([net.synaptic_events], np.int64), n_ranks=np.array(net.n_ranks))
    for j, proj in enumerate(p for p in net.projections if p.synapse is not None):
        parts = [np.asarray(proj.weight, np.float64), proj.source.ids[proj.pre], proj.target.ids[proj.post]]
        if net.n_ranks > 1:  # (each rank holds the synapses onto its own neurons)
            parts = [net._dist.allgatherv(a, a.dtype)[0] for a in parts]
        out[f"w{j}"] = parts[0][np.lexsort(parts[::-1])]
    return out


if __name__ == "__main__":
    net, recs = build()
    out = run(net, recs)
    if net.rank == 0:
        np.savez(sys.argv[1], **out)
