"""A balanced network whose excitatory recurrent synapses learn under STDP.

2,000 excitatory and 500 inhibitory LIF neurons (delta synapses, tau_m =
20 ms, V_th = 20 mV, V_reset = 10 mV, t_ref = 2 ms), in-degrees of 10 %
(200 excitatory, 50 inhibitory inputs), inhibition g = 5, delays 1.5 ms,
each neuron driven by its own Poisson train.  The E -> E synapses follow
NEST's ``stdp_synapse`` (Guetig et al. 2003) with additive weight
dependence (mu = 0), which drives the weights towards the bounds: the
initially uniform weights spread into a bimodal distribution.  Weights of a
sample of synapses are recorded every 100 ms.

Prints the rates and the weight statistics at the start and at the end, and
saves ``stdp_network.png``: the weight distributions at the start and the
end, the population rate over time and the mean of the sampled weights
over time.

With ``--grow T`` the network grows at ``T`` ms: each excitatory neuron
gets 5 % more excitatory inputs, made between two runs with the same rule;
they start as new NEST synapses do (no presynaptic trace yet) and learn from
then on (their weights are printed too).

Usage::

    python examples/stdp_network.py            # 10 s of biological time
    python examples/stdp_network.py --quick    # 1 s
    python examples/stdp_network.py --grow 5000
"""

import argparse
import time

import numpy as np

import eventsim as es


def build(seed=1, scale=1.0):
    """The network; returns (net, exc, ee projection, spike recorder, weight recorder)."""
    ne, ni = int(2000 * scale), int(500 * scale)
    net = es.Network(dt=0.1, seed=seed)
    model = es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
    exc = net.population(ne, model, v_init=es.Uniform(0.0, 20.0), label="exc")
    inh = net.population(ni, model, v_init=es.Uniform(0.0, 20.0), label="inh")
    rule = es.STDP(tau_plus=20.0, tau_minus=20.0, lam=0.05, alpha=1.05, mu_plus=0.0, mu_minus=0.0, w_max=0.4)
    ee = net.connect(exc, exc, es.FixedInDegree(ne // 10), weight=es.Uniform(0.1, 0.3), delay=1.5, synapse=rule)
    net.connect(exc, inh, es.FixedInDegree(ne // 10), weight=0.2, delay=1.5)
    net.connect(inh, exc | inh, es.FixedInDegree(ni // 10), weight=-1.0, delay=1.5)
    noise = net.poisson(ne + ni, rate=11_000.0)
    net.connect(noise, exc | inh, es.OneToOne(), weight=0.1, delay=0.1)
    spikes = net.record_spikes(exc)
    sample = np.random.default_rng(seed).choice(len(ee), size=min(2000, len(ee)), replace=False)
    weights = net.record_weights(ee, index=np.sort(sample), interval=100.0)
    return net, exc, ee, spikes, weights


def plot(w0, w1, spikes, weights, n_exc, t_sim, path):
    """Save the weight histograms, the population rate and the sampled mean weight over time as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'eventsim[plot]')")
        return
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    bins = np.linspace(0.0, max(w1.max(), w0.max()) * 1.02, 50)
    ax[0].hist(w0, bins, alpha=0.6, label="start")
    ax[0].hist(w1, bins, alpha=0.6, label=f"after {t_sim / 1000:g} s")
    ax[0].set(xlabel="E->E weight (mV)", ylabel="synapses", title="weight distribution")
    ax[0].legend()
    edges = np.arange(0.0, t_sim + 1e-9, 50.0)
    counts, _ = np.histogram(spikes.times, edges)
    ax[1].plot(edges[:-1] + 25.0, counts / n_exc / 0.05)
    ax[1].set(xlabel="time (ms)", ylabel="rate (Hz)", title="excitatory rate (50 ms bins)")
    ax[2].plot(weights.times, weights.values.mean(axis=1))
    ax[2].set(xlabel="time (ms)", ylabel="mean weight (mV)", title="sampled E->E weights")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"saved {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 s of biological time at half size")
    ap.add_argument("--t-sim", type=float, default=None, help="biological time (ms); default 10,000 (1,000 quick)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plot", default="stdp_network.png", help="PNG path ('' for no plot)")
    ap.add_argument("--grow", type=float, default=None,
                    help="at this time (ms) add 5 %% more plastic E -> E inputs per neuron, then run on")
    args = ap.parse_args(argv)
    t_sim = args.t_sim or (1000.0 if args.quick else 10_000.0)
    if args.grow is not None and not 0.0 < args.grow < t_sim:
        ap.error(f"--grow {args.grow} must lie inside the simulated time (0, {t_sim:g}) ms")
    net, exc, ee, spikes, weights = build(args.seed, 0.5 if args.quick else 1.0)
    w0 = np.array(ee.weight)
    t0 = time.perf_counter()
    grown = None
    if args.grow is not None:
        net.run(args.grow)
        grown = net.connect(exc, exc, es.FixedInDegree(len(exc) // 20), weight=es.Uniform(0.1, 0.3), delay=1.5,
                            synapse=ee.synapse)
        g0 = np.array(grown.weight)
        net.run(t_sim - args.grow)
    else:
        net.run(t_sim)
    wall = time.perf_counter() - t0
    w1 = np.array(ee.weight)
    rate = len(spikes.times) / len(exc) / (t_sim * 1e-3)
    print(f"{len(ee):,d} plastic synapses, {t_sim / 1000:g} s simulated in {wall:.1f} s; excitatory rate {rate:.2f} Hz")
    for name, w in (("start", w0), ("end", w1)):
        print(f"  weights at the {name:5s}: mean {w.mean():.4f} mV, sd {w.std():.4f}, "
              f"{np.mean(w < 0.02):.1%} below 0.02 mV, {np.mean(w > 0.38):.1%} above 0.38 mV")
    out = dict(rate=rate, w0=w0, w1=w1)
    if grown is not None:
        g1 = np.array(grown.weight)
        print(f"  {len(grown):,d} synapses made at {args.grow:g} ms: mean {g0.mean():.4f} -> {g1.mean():.4f} mV, "
              f"sd {g0.std():.4f} -> {g1.std():.4f}")
        out.update(g0=g0, g1=g1)
    if args.plot:
        plot(w0, w1, spikes, weights, len(exc), t_sim, args.plot)
    return out


if __name__ == "__main__":
    main()
