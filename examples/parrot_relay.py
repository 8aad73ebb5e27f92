"""One set of Poisson trains shared by many neurons through parrot neurons (NEST's poisson_generator ->
parrot_neuron pattern), nothing lost at high rates.

Twenty Poisson channels of 8,000 Hz (0.8 spikes per 0.1 ms step on
average: a fifth of the steps carry two or more) are relayed by twenty
parrot neurons to a population of LIF neurons (each neuron gets ten of the
relayed trains).  The ``k`` spikes of one channel in one step leave its
parrot as one spike of multiplicity ``k``, as in NEST: the targets receive
weight x ``k``, the spike recorder lists the spike ``k`` times.  A second
population is fed by the same channels directly, with the parrots' delay
added: it receives the same input and fires the same spikes, to the last
bit.

Prints the relayed spike count against the channels' expected count, the
share of relayed spikes that came with others in their step, and whether
the two populations agree; saves ``parrot_relay.png`` (the multiplicities
and a raster of both populations).

Usage::

    python examples/parrot_relay.py            # 1 s, 200 neurons per population
    python examples/parrot_relay.py --quick    # 200 ms, 50 neurons
"""

import argparse

import numpy as np

import eventsim as es

RATE = 8000.0  # Hz per channel
CHANNELS = 20


def build(n, seed=1):
    """``(net, parrot spikes, relayed-population spikes, direct-population spikes)``."""
    net = es.Network(dt=0.1, seed=seed)
    lif = es.LIF(tau_m=10.0, c_m=250.0, v_rest=-65.0, v_th=-50.0, v_reset=-65.0, t_ref=2.0,
                 tau_syn_ex=0.5, tau_syn_in=0.5)
    channels = net.poisson(CHANNELS, rate=RATE)
    parrots = net.population(CHANNELS, es.Parrot())
    v0 = np.random.default_rng(seed).uniform(-65.0, -55.0, n)
    relayed = net.population(n, lif, v_init=v0)
    direct = net.population(n, lif, v_init=v0)
    net.connect(channels, parrots, es.OneToOne(), weight=1.0, delay=0.5)     # (the weight is ignored)
    proj = net.connect(parrots, relayed, es.FixedInDegree(10), weight=9.0, delay=1.0)
    # the same input without the relay: the same pairs, the parrots' delay added
    net.connect(channels, direct, es.FromArrays(pre=proj.pre, post=proj.post), weight=9.0, delay=1.5)
    return net, net.record_spikes(parrots), net.record_spikes(relayed), net.record_spikes(direct)


def summary(par, rel, dirc, n, t_sim):
    """The printed numbers as a dict."""
    _, mult = np.unique(np.c_[par.senders, par.steps], axis=0, return_counts=True)
    expected = CHANNELS * RATE * (t_sim - 0.5) * 1e-3   # (the first relayed spikes leave at 0.6 ms)
    return {"relayed": int(par.senders.size), "expected": expected,
            "in_a_group": float(mult[mult > 1].sum() / max(mult.sum(), 1)), "max_multiplicity": int(mult.max()),
            "rate_relayed": float(rel.senders.size / (n * t_sim * 1e-3)),
            "same_spikes": bool(np.array_equal(rel.senders, dirc.senders) and np.array_equal(rel.steps, dirc.steps))}


def plot(par, rel, dirc, n, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure")
        return
    _, mult = np.unique(np.c_[par.senders, par.steps], axis=0, return_counts=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    k = np.arange(1, mult.max() + 1)
    a.bar(k, [np.count_nonzero(mult == i) for i in k])
    a.set_xlabel("spikes of one parrot in one step (multiplicity)")
    a.set_ylabel("parrot spikes of that multiplicity")
    b.plot(rel.times, rel.senders, "|", ms=2, label="through parrots")
    b.plot(dirc.times, dirc.senders + n + 5, "|", ms=2, label="direct")
    b.set_xlabel("time (ms)")
    b.set_ylabel("neuron")
    b.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"saved {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 ms, 50 neurons per population")
    ap.add_argument("--plot", default="parrot_relay.png")
    args = ap.parse_args(argv)
    n, t_sim = (50, 200.0) if args.quick else (200, 1000.0)
    net, par, rel, dirc = build(n)
    net.run(t_sim)
    s = summary(par, rel, dirc, n, t_sim)
    print(f"relayed spikes: {s['relayed']} (the channels' expected count: {s['expected']:.0f})")
    print(f"share of relayed spikes sent with others of their step: {100 * s['in_a_group']:.1f} % "
          f"(largest multiplicity {s['max_multiplicity']})")
    print(f"rate of the relayed population: {s['rate_relayed']:.2f} Hz; same spikes as the direct one: "
          f"{s['same_spikes']}")
    plot(par, rel, dirc, n, args.plot)
    return s


if __name__ == "__main__":
    main()
