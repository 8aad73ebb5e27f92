"""Brunel (2000) sparsely connected network of LIF neurons with delta synapses.

The parameters are those of NEST's ``brunel_delta_nest`` example (regime of
asynchronous irregular firing): NE = 10,000 excitatory and NI = 2,500
inhibitory ``iaf_psc_delta`` neurons, CE = 1,000 and CI = 250 random inputs
per neuron, J = 0.1 mV, g = 5, eta = 2 (external Poisson input at twice the
threshold rate, 20 kHz per neuron), delay 1.5 ms, dt = 0.1 ms, 1 s.

Prints the mean excitatory rate, the number of recurrent synaptic events
and the events per second of simulation time, and saves a raster + rate plot
(``brunel2000.png``) when matplotlib is installed.

Usage::

    python examples/brunel2000.py            # full network, 1 s
    python examples/brunel2000.py --quick    # 1/5 of the network, 200 ms
    mpiexec -n 4 python examples/brunel2000.py   # the same spikes on 4 MPI ranks (pip install 'eventsim[mpi]')
"""

import argparse
import time

import numpy as np

import eventsim as es


def build(scale=1.0, seed=1, dt=0.1, backend="cpu", dtype="float64"):
    """Build the network (``backend``, ``dtype`` as :class:`eventsim.Network`); returns (net, exc, inh, recorders)."""
    order = int(round(2500 * scale))
    NE, NI = 4 * order, order
    CE, CI = int(0.1 * NE), int(0.1 * NI)
    J, g, eta, theta, tau_m, delay = 0.1, 5.0, 2.0, 20.0, 20.0, 1.5
    nu_th = theta / (J * CE * tau_m)          # 1/ms
    p_rate = 1000.0 * eta * nu_th * CE        # Hz
    model = es.LIF(tau_m=tau_m, c_m=1.0, v_rest=0.0, v_reset=0.0, v_th=theta, t_ref=2.0)
    net = es.Network(dt=dt, seed=seed, backend=backend, dtype=dtype)
    exc = net.population(NE, model, v_init=0.0, label="exc")
    inh = net.population(NI, model, v_init=0.0, label="inh")
    everyone = exc | inh
    net.connect(exc, everyone, rule=es.FixedInDegree(CE), weight=J, delay=delay)
    net.connect(inh, everyone, rule=es.FixedInDegree(CI), weight=-g * J, delay=delay)
    noise = net.poisson(NE + NI, rate=p_rate)
    net.connect(noise, everyone, rule=es.OneToOne(), weight=J, delay=delay)
    spikes_e = net.record_spikes(exc)
    spikes_i = net.record_spikes(inh)
    return net, exc, inh, spikes_e, spikes_i


def plot(spikes_e, t_sim, path, n_show=200):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'eventsim[plot]')")
        return
    senders, times = spikes_e.senders, spikes_e.times  # (under MPI every rank reads: a collective)
    if spikes_e.group.net.rank != 0:
        return
    sel = senders < n_show
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(8, 5), height_ratios=[3, 1])
    ax1.plot(times[sel], senders[sel], ".", ms=1, color="k")
    ax1.set_ylabel("neuron")
    ax1.set_title(f"Brunel (2000): first {n_show} excitatory neurons")
    bins = np.arange(0.0, t_sim + 1.0, 1.0)
    counts, _ = np.histogram(times, bins)
    ax2.plot(bins[:-1], counts / len(spikes_e.group) * 1000.0, color="k", lw=0.8)
    ax2.set_xlabel("time (ms)")
    ax2.set_ylabel("rate (Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"saved {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1/5 of the network for 200 ms")
    ap.add_argument("--t-sim", type=float, default=None, help="simulated time (ms)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plot", default="brunel2000.png", help="output PNG ('' for none)")
    args = ap.parse_args(argv)
    scale = 0.2 if args.quick else 1.0
    t_sim = args.t_sim or (200.0 if args.quick else 1000.0)

    t0 = time.perf_counter()
    net, exc, inh, spikes_e, spikes_i = build(scale, args.seed)
    net.run(0.1)  # first step: compiles the engine (cached on disk afterwards)
    t1 = time.perf_counter()
    net.run(t_sim - 0.1)
    t2 = time.perf_counter()
    rate_e = len(spikes_e) / len(exc) / (t_sim * 1e-3)
    rate_i = len(spikes_i) / len(inh) / (t_sim * 1e-3)
    events, ext = net.synaptic_events
    if net.rank > 0:  # (under MPI, rank 0 reports; the reads above are collective)
        plot(spikes_e, t_sim, None) if args.plot else None
        return rate_e
    print(f"neurons: {net.n_neurons}, synapses: {net.n_synapses}"
          + (f" (on rank 0 of {net.n_ranks})" if net.n_ranks > 1 else ""))
    print(f"build + compile: {t1 - t0:.2f} s, simulate {t_sim:.0f} ms: {t2 - t1:.2f} s")
    print(f"mean rate: excitatory {rate_e:.2f} Hz, inhibitory {rate_i:.2f} Hz")
    print(f"recurrent synaptic events: {events:,d} ({events / (t2 - t1):.3e} per second of wall time); "
          f"external Poisson events: {ext:,d}")
    if args.plot:
        plot(spikes_e, t_sim, args.plot)
    return rate_e


if __name__ == "__main__":
    main()
