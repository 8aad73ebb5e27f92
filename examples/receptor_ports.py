"""Receptor ports: AMPA-, NMDA- and GABA-like current synapses on one neuron (NEST's iaf_psc_exp_multisynapse).

Each neuron of an excitatory/inhibitory network of LIF neurons has three
receptor ports with their own time constants, ``tau_syn=[2, 100, 5]`` ms:

* port 0 (fast excitation, 2 ms): the background Poisson input and the
  excitatory recurrent connections;
* port 1 (slow excitation, 100 ms): a second, weaker copy of the excitatory
  recurrent connections, whose current outlasts a burst by ~100 ms;
* port 2 (inhibition, 5 ms): the inhibitory connections.

Each connection names its port (``net.connect(..., receptor=k)``), whatever
the weight's sign.  A current of 400 pA drives the first quarter of the
excitatory neurons from 200 to 300 ms.  ``--engine event`` runs the same
network in the event engine (exact, off-grid spike times).  The script prints the network's rate
before, during and after the stimulus and the mean current of each port,
and saves ``receptor_ports.png``: a raster and the three currents of one
stimulated neuron.

Usage::

    python examples/receptor_ports.py            # 1,000 neurons, 600 ms
    python examples/receptor_ports.py --quick    # 400 neurons
    python examples/receptor_ports.py --engine event
"""

import argparse

import numpy as np

import eventsim as es

AMPA, NMDA, GABA = 0, 1, 2
PHASES = {"before (0-200 ms)": (0.0, 200.0), "stimulus (200-300 ms)": (200.0, 300.0),
          "after (300-600 ms)": (300.0, 600.0)}


def build(n=1000, seed=1, engine="clock"):
    """The network; returns ``(net, exc, inh, spikes, currents)`` (``currents``: port -> state recorder of
    neuron 0)."""
    net = es.Network(dt=0.1, seed=seed, engine=engine)
    model = es.LIF(tau_m=20.0, c_m=250.0, v_rest=-70.0, v_reset=-60.0, v_th=-50.0, t_ref=2.0,
                   tau_syn=[2.0, 100.0, 5.0])
    n_e = 4 * n // 5
    exc = net.population(n_e, model, v_init=es.Uniform(-70.0, -55.0), label="E")
    inh = net.population(n - n_e, model, v_init=es.Uniform(-70.0, -55.0), label="I")
    both = exc | inh
    noise = net.poisson(n, rate=5000.0)
    net.connect(noise, both, es.OneToOne(), weight=40.0, delay=0.1, receptor=AMPA)
    net.connect(exc, both, es.FixedInDegree(40), weight=30.0, delay=1.5, receptor=AMPA)
    net.connect(exc, both, es.FixedInDegree(40), weight=0.6, delay=1.5, receptor=NMDA)
    net.connect(inh, both, es.FixedInDegree(10), weight=-150.0, delay=0.8, receptor=GABA)
    stim = net.dc(400.0, start=200.0, stop=300.0)
    net.connect(stim, exc[: n_e // 4], es.AllToAll(), weight=1.0)
    spikes = net.record_spikes(both)
    currents = {k: net.record_state(exc[:1], f"i_syn_{k}") for k in (AMPA, NMDA, GABA)}
    return net, exc, inh, spikes, currents


def phase_rates(spikes, n):
    """Rate (Hz) of the whole network in each phase of ``PHASES``."""
    return {name: np.count_nonzero((spikes.times >= a) & (spikes.times < b)) / n / ((b - a) * 1e-3)
            for name, (a, b) in PHASES.items()}


def plot(spikes, currents, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'eventsim[plot]')")
        return
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[3, 2])
    ax1.plot(spikes.times, spikes.senders, ".", ms=1.0, color="k")
    ax1.axvspan(200.0, 300.0, color="tab:orange", alpha=0.15, lw=0)
    ax1.set(ylabel="neuron", title="three receptor ports per neuron (stimulus shaded)")
    for k, label in ((AMPA, "port 0: fast excitation (2 ms)"), (NMDA, "port 1: slow excitation (100 ms)"),
                     (GABA, "port 2: inhibition (5 ms)")):
        r = currents[k]
        ax2.plot(r.times, r.values[:, 0], lw=0.8, label=label)
    ax2.set(xlabel="time (ms)", ylabel="current of neuron 0 (pA)")
    ax2.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"saved {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="400 neurons instead of 1,000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plot", default="receptor_ports.png", help="PNG path ('' for no plot)")
    ap.add_argument("--engine", choices=["clock", "event"], default="clock")
    args = ap.parse_args(argv)
    n = 400 if args.quick else 1000
    net, exc, inh, spikes, currents = build(n, args.seed, args.engine)
    net.run(600.0)
    rates = phase_rates(spikes, n)
    for name, r in rates.items():
        print(f"network rate {name:22s} {r:6.1f} Hz")
    means = {k: float(currents[k].values.mean()) for k in currents}
    print("mean current of neuron 0 per port (pA): " + ", ".join(f"{k}: {v:.1f}" for k, v in means.items()))
    if args.plot:
        plot(spikes, currents, args.plot)
    return rates, means


if __name__ == "__main__":
    main()
