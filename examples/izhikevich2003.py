"""Izhikevich (2003): 1,000 randomly coupled Izhikevich neurons, the network of the paper's Fig. 3.

800 excitatory neurons (regular spiking to chattering: a = 0.02, b = 0.2,
c = -65 + 15 r^2 mV, d = 8 - 6 r^2) and 200 inhibitory ones (fast spiking
to low-threshold spiking: a = 0.02 + 0.08 r, b = 0.25 - 0.05 r, c = -65 mV,
d = 2), r uniform in [0, 1) per neuron; all to all, weights 0.5 r
(excitatory) and -r (inhibitory) for each connection; dt = 1 ms and the
paper's integration scheme (``consistent_integration=False``, two half
steps of v, the synaptic input entering each as a current), as NEST's
``izhikevich`` model runs it.  Two differences from the paper: the random
"thalamic" input currents (Gaussian, standard deviation 5 for excitatory
and 2 for inhibitory neurons, redrawn every ms) are replaced by
independent Poisson spike trains of the same mean (0) and variance per ms
(excitatory and inhibitory inputs at 1 kHz each, weights +-5/sqrt(2) and
+-2/sqrt(2)), and spikes reach their targets one step (1 ms) after they are
emitted (the paper: in the same step).  The raster shows synchronous
population bursts on irregular background activity (about 8 Hz on
average); the paper's rhythm is more regular, with its same-step delivery
and Gaussian input.

Prints the mean rate and saves a raster with the population rate
(``izhikevich2003.png``) when matplotlib is installed.

Usage::

    python examples/izhikevich2003.py           # 1 s, as the paper
    python examples/izhikevich2003.py --quick   # 300 ms
"""

import argparse
import time

import numpy as np

import eventsim as es

N_EXC, N_INH = 800, 200


def build(seed=1):
    """The network; returns ``(net, neurons, spikes)`` (excitatory neurons first)."""
    rng = np.random.default_rng(seed)
    re, ri = rng.random(N_EXC), rng.random(N_INH)
    model = es.Izhikevich(a=np.r_[np.full(N_EXC, 0.02), 0.02 + 0.08 * ri], b=np.r_[np.full(N_EXC, 0.2), 0.25 - 0.05 * ri],
                          c=np.r_[-65.0 + 15.0 * re ** 2, np.full(N_INH, -65.0)],
                          d=np.r_[8.0 - 6.0 * re ** 2, np.full(N_INH, 2.0)], consistent_integration=False,
                          u_init=np.r_[np.full(N_EXC, 0.2), 0.25 - 0.05 * ri] * -65.0)
    net = es.Network(dt=1.0, seed=seed)
    neurons = net.population(N_EXC + N_INH, model, v_init=-65.0)
    exc, inh = neurons[:N_EXC], neurons[N_EXC:]
    net.connect(exc, neurons, es.AllToAll(), weight=es.Uniform(0.0, 0.5), delay=1.0)
    net.connect(inh, neurons, es.AllToAll(), weight=es.Uniform(-1.0, 0.0), delay=1.0)
    for group, sd in ((exc, 5.0), (inh, 2.0)):
        for sign in (1.0, -1.0):  # mean 0 and variance sd**2 per ms, as the paper's Gaussian currents
            net.connect(net.poisson(len(group), rate=1000.0), group, es.OneToOne(), weight=sign * sd / np.sqrt(2.0),
                        delay=1.0)
    return net, neurons, net.record_spikes(neurons)


def plot(spikes, t_sim, path):
    """Save the raster (every neuron) and the population rate (Hz, 1 ms bins) as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'eventsim[plot]')")
        return
    times, ids = spikes.times, spikes.senders
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5), height_ratios=[3, 1], sharex=True)
    exc = ids < N_EXC
    ax1.plot(times[exc], ids[exc], ".", ms=1.0, color="k", label="excitatory")
    ax1.plot(times[~exc], ids[~exc], ".", ms=1.0, color="tab:red", label="inhibitory")
    ax1.set_ylabel("neuron")
    ax1.set_title("Izhikevich (2003): 800 excitatory and 200 inhibitory neurons")
    ax1.legend(loc="upper right", markerscale=6, fontsize=8)
    bins = np.arange(0.0, t_sim + 1.0, 1.0)
    counts, _ = np.histogram(times, bins)
    ax2.plot(bins[:-1], counts / (N_EXC + N_INH) / 1e-3, color="k", lw=0.8)
    ax2.set_xlim(0.0, t_sim)
    ax2.set_xlabel("time (ms)")
    ax2.set_ylabel("rate (Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"saved {path}")


def main(argv=None):
    """Run; returns the mean rate (Hz)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="300 ms instead of 1 s")
    p.add_argument("--t-sim", type=float, default=None, help="simulated time (ms)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--plot", default="izhikevich2003.png", help="PNG file ('' for none)")
    args = p.parse_args(argv)
    t_sim = args.t_sim or (300.0 if args.quick else 1000.0)
    net, neurons, spikes = build(args.seed)
    t0 = time.perf_counter()
    net.run(t_sim)
    wall = time.perf_counter() - t0
    rate = len(spikes) / len(neurons) / (t_sim * 1e-3)
    exc = spikes.senders < N_EXC
    print(f"{len(spikes):,d} spikes in {t_sim:g} ms: {rate:.1f} Hz (excitatory "
          f"{exc.sum() / N_EXC / (t_sim * 1e-3):.1f} Hz, inhibitory {(~exc).sum() / N_INH / (t_sim * 1e-3):.1f} Hz); "
          f"run {wall:.2f} s")
    if args.plot:
        plot(spikes, t_sim, args.plot)
    return rate


if __name__ == "__main__":
    main()
