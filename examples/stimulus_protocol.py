"""A stimulation protocol: time-varying inputs scheduled up front and changed between runs.

A population of 200 LIF neurons (exponential current synapses) receives

* background Poisson input whose rate steps from 5,000 Hz to 9,000 Hz at
  300 ms and back at 600 ms (``net.poisson(..., rate_times=, rate_values=)``,
  NEST's inhomogeneous_poisson_generator);
* a step current on the first 50 neurons: 0 pA, then 150 pA from 200 ms,
  300 pA from 400 ms, 0 pA from 700 ms (``net.step_current``, NEST's
  step_current_generator), reaching them with a device delay of 2 ms;
* a DC pulse on neurons 50-99 set between runs: the protocol runs to 500
  ms, switches a 200 pA current on (``dc.set(amplitude=...)``), runs on, and
  raises the bias current of neurons 150-199 to 400 pA at 800 ms
  (``pop.set(i_e=...)``).

A change made between runs at t gives exactly what the same change
scheduled at t gives.  Prints the rate of each group in each phase and
saves ``stimulus_protocol.png``: a raster and the groups' rates over time,
with the protocol's times marked.

Usage::

    python examples/stimulus_protocol.py            # 1 s
    python examples/stimulus_protocol.py --quick    # the same protocol, 100 neurons
"""

import argparse

import numpy as np

import eventsim as es

GROUPS = {"step current": slice(0, 50), "DC set at 500 ms": slice(50, 100), "background only": slice(100, 150),
          "bias raised at 800 ms": slice(150, 200)}


def build(n=200, seed=1):
    """The network and its sources; returns (net, pop, dc, spikes)."""
    net = es.Network(dt=0.1, seed=seed)
    model = es.LIF(tau_m=10.0, c_m=250.0, v_rest=-65.0, v_th=-50.0, v_reset=-65.0, t_ref=2.0,
                   tau_syn_ex=0.5, tau_syn_in=0.5)
    pop = net.population(n, model, v_init=es.Uniform(-65.0, -55.0))
    noise = net.poisson(n, rate=5000.0, rate_times=[300.0, 600.0], rate_values=[9000.0, 5000.0])
    net.connect(noise, pop, es.OneToOne(), weight=80.0, delay=0.1)
    q = n // 4
    step = net.step_current([200.0, 400.0, 700.0], [150.0, 300.0, 0.0], delay=2.0)
    net.connect(step, pop[:q], es.AllToAll(), weight=1.0)
    dc = net.dc(0.0)
    net.connect(dc, pop[q:2 * q], es.AllToAll(), weight=1.0)
    spikes = net.record_spikes(pop)
    return net, pop, dc, spikes


def run_protocol(net, pop, dc, t_sim=1000.0):
    """Run with the changes made between runs."""
    q = len(pop) // 4
    net.run(min(500.0, t_sim))
    dc.set(amplitude=200.0)
    if t_sim > 500.0:
        net.run(min(300.0, t_sim - 500.0))
        pop[3 * q:].set(i_e=400.0)
    if t_sim > 800.0:
        net.run(t_sim - 800.0)


def rates(spikes, n, t_sim, edges):
    """Rate (Hz) of each group (``GROUPS`` scaled to ``n`` neurons) in each interval of ``edges`` (ms)."""
    q = n // 4
    out = {}
    for k, name in enumerate(GROUPS):
        sel = (spikes.senders >= k * q) & (spikes.senders < (k + 1) * q)
        counts, _ = np.histogram(spikes.times[sel], edges)
        out[name] = counts / q / (np.diff(edges) * 1e-3)
    return out


def plot(spikes, n, t_sim, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'eventsim[plot]')")
        return
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[3, 2])
    ax1.plot(spikes.times, spikes.senders, ".", ms=1.5, color="k")
    q = n // 4
    for k, name in enumerate(GROUPS):
        ax1.axhline(k * q - 0.5, color="0.8", lw=0.8)
        ax1.text(t_sim * 1.005, (k + 0.5) * q, name, fontsize=8, va="center")
    ax1.set(ylabel="neuron", title="stimulation protocol")
    edges = np.arange(0.0, t_sim + 1e-9, 20.0)
    for name, r in rates(spikes, n, t_sim, edges).items():
        ax2.plot(edges[:-1] + 10.0, r, label=name)
    for t in (200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0):
        if t < t_sim:
            ax2.axvline(t, color="0.7", lw=0.8, ls=":")
    ax2.set(xlabel="time (ms)", ylabel="rate (Hz, 20 ms bins)", xlim=(0, t_sim))
    ax2.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"saved {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 neurons instead of 200")
    ap.add_argument("--t-sim", type=float, default=1000.0, help="biological time (ms)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plot", default="stimulus_protocol.png", help="PNG path ('' for no plot)")
    args = ap.parse_args(argv)
    n = 100 if args.quick else 200
    net, pop, dc, spikes = build(n, args.seed)
    run_protocol(net, pop, dc, args.t_sim)
    edges = np.array([0.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, args.t_sim])
    edges = edges[edges <= args.t_sim]
    table = rates(spikes, n, args.t_sim, edges)
    print("rate (Hz) per phase: " + "  ".join(f"{a:g}-{b:g}" for a, b in zip(edges[:-1], edges[1:])))
    for name, r in table.items():
        print(f"  {name:22s} " + "  ".join(f"{x:7.1f}" for x in r))
    if args.plot:
        plot(spikes, n, args.t_sim, args.plot)
    return table


if __name__ == "__main__":
    main()
