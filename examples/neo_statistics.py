"""Spike-train statistics of a balanced network through neo (and elephant when installed).

A sparsely connected network of 4,000 excitatory and 1,000 inhibitory LIF
neurons with delta synapses (Brunel 2000, model A with J = 0.2 mV, g = 5,
C_E = 400 excitatory and C_I = 100 inhibitory inputs per neuron, delay
1.5 ms) driven by independent Poisson input at twice the threshold rate
(the asynchronous irregular state).  The spikes of 200 excitatory neurons
and the membrane potentials of 3 of them are recorded, converted with
``rec.to_neo()`` into neo ``SpikeTrain`` objects (one per neuron, in ms)
and an ``AnalogSignal`` (mV), and analysed:

* firing rate of every neuron (Hz);
* coefficient of variation of its interspike intervals (CV; 1 for Poisson);
* pairwise correlation coefficients of the spike counts in 5 ms bins.

With elephant installed the statistics come from
``elephant.statistics.mean_firing_rate``, ``elephant.statistics.cv`` of
``isi`` and ``elephant.spike_train_correlation.correlation_coefficient``
of a ``BinnedSpikeTrain``; without it, from the neo objects with NumPy
(the same definitions).  The script prints which.  It saves histograms of
the three statistics, a raster and a membrane trace (``neo_statistics.png``).

Usage::

    python examples/neo_statistics.py           # 5,000 neurons, 2 s
    python examples/neo_statistics.py --quick   # 1,250 neurons, 0.5 s
"""

import argparse

import numpy as np

import eventsim as es

J, G, DELAY = 0.2, 5.0, 1.5          # mV, relative inhibition, ms
TAU_M, V_TH, V_RESET, T_REF = 20.0, 20.0, 10.0, 2.0
BIN = 5.0                             # ms, for the correlations


def build(n_exc, seed=1):
    """The network; returns (net, spike recorder, membrane recorder)."""
    n_inh = n_exc // 4
    c_e, c_i = 400, 100
    model = es.LIF(tau_m=TAU_M, c_m=250.0, v_th=V_TH, v_reset=V_RESET, t_ref=T_REF)
    net = es.Network(dt=0.1, seed=seed)
    exc = net.population(n_exc, model, v_init=es.Uniform(0.0, V_TH), label="exc")
    inh = net.population(n_inh, model, v_init=es.Uniform(0.0, V_TH), label="inh")
    everyone = exc | inh
    net.connect(exc, everyone, rule=es.FixedInDegree(c_e), weight=J, delay=DELAY)
    net.connect(inh, everyone, rule=es.FixedInDegree(c_i), weight=-G * J, delay=DELAY)
    nu_th = V_TH / (J * c_e * TAU_M) * 1000.0  # Hz per input at which the mean input reaches threshold
    noise = net.poisson(n_exc + n_inh, rate=2.0 * nu_th * c_e)
    net.connect(noise, everyone, rule=es.OneToOne(), weight=J, delay=0.1)
    return net, net.record_spikes(exc[:200]), net.record_state(exc[:3], "v", interval=0.5)


def statistics(trains, t_stop):
    """``(rates Hz, CVs, correlation coefficients, source)`` of a list of neo SpikeTrains."""
    try:
        import quantities as pq
        from elephant.conversion import BinnedSpikeTrain
        from elephant.spike_train_correlation import correlation_coefficient
        from elephant.statistics import cv, isi, mean_firing_rate
    except ImportError:
        source = "neo + NumPy (elephant not installed)"
        rates = np.array([len(t) / float(t.duration.rescale("s")) for t in trains])
        cvs = []
        for t in trains:
            d = np.diff(t.magnitude)
            if d.size >= 2:
                cvs.append(d.std() / d.mean())
        edges = np.arange(0.0, t_stop + BIN, BIN)
        counts = np.array([np.histogram(t.magnitude, edges)[0] for t in trains], dtype=float)
        active = counts.std(axis=1) > 0
        cc = np.corrcoef(counts[active])
    else:
        source = "elephant"
        rates = np.array([float(mean_firing_rate(t).rescale("Hz")) for t in trains])
        cvs = [cv(isi(t)) for t in trains if len(t) >= 3]
        binned = BinnedSpikeTrain(trains, bin_size=BIN * pq.ms)
        active = np.asarray(binned.to_array()).std(axis=1) > 0
        cc = correlation_coefficient(binned[np.flatnonzero(active)]) if active.sum() > 1 else np.eye(1)
    pairs = cc[np.triu_indices_from(cc, k=1)]
    return rates, np.array(cvs), pairs[np.isfinite(pairs)], source


def plot(trains, signal, rates, cvs, cc, source, path):
    """Raster, membrane trace and histograms of rate, CV and correlation, written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(11, 6))
    for j, t in enumerate(trains[:100]):
        ax[0, 0].plot(t.magnitude, np.full(len(t), j), "|", ms=2, color="k")
    ax[0, 0].set(xlabel="time (ms)", ylabel="neuron", title="raster (100 neurons)")
    ax[0, 1].plot(signal.times.rescale("ms").magnitude, signal.magnitude[:, 0], lw=0.6)
    ax[0, 1].set(xlabel="time (ms)", ylabel=f"v ({signal.units.dimensionality})", title="membrane, neuron 0")
    ax[0, 2].axis("off")
    ax[0, 2].text(0.0, 0.5, f"{len(trains)} neurons\nrate {rates.mean():.1f} Hz\nCV {cvs.mean():.2f}\n"
                  f"correlation {cc.mean():.3f}\n\nfrom {source}", va="center")
    ax[1, 0].hist(rates, bins=30, color="C0")
    ax[1, 0].set(xlabel="rate (Hz)", ylabel="neurons")
    ax[1, 1].hist(cvs, bins=30, color="C1")
    ax[1, 1].set(xlabel="CV of ISI", ylabel="neurons")
    ax[1, 2].hist(cc, bins=50, color="C2")
    ax[1, 2].set(xlabel=f"correlation ({BIN:g} ms bins)", ylabel="pairs")
    fig.suptitle("statistics from rec.to_neo()")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,250 neurons for 0.5 s instead of 5,000 for 2 s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plot", default="neo_statistics.png", help="output PNG ('' for none)")
    args = ap.parse_args(argv)
    n_exc, t_sim = (1000, 500.0) if args.quick else (4000, 2000.0)
    net, spikes, volts = build(n_exc, args.seed)
    net.run(t_sim)
    trains = spikes.to_neo()                 # list of neo.SpikeTrain, one per recorded neuron
    signal = volts.to_neo()                  # neo.AnalogSignal [samples, 3], mV
    rates, cvs, cc, source = statistics(trains, net.t)
    print(f"statistics from {source}")
    print(f"{len(trains)} spike trains, {sum(len(t) for t in trains)} spikes in {net.t:g} ms; "
          f"membrane: {signal.shape[0]} samples x {signal.shape[1]} neurons in {signal.units.dimensionality}")
    print(f"rate: mean {rates.mean():.2f} Hz (sd {rates.std():.2f})")
    print(f"CV of ISI: mean {cvs.mean():.3f} over {cvs.size} neurons")
    print(f"correlation ({BIN:g} ms bins): mean {cc.mean():.4f} over {cc.size} pairs")
    if args.plot:
        plot(trains, signal, rates, cvs, cc, source, args.plot)
    return dict(rate=float(rates.mean()), cv=float(cvs.mean()), correlation=float(cc.mean()), source=source)


if __name__ == "__main__":
    main()
