"""Brette et al. (2007) benchmark 4: 4,000 LIF neurons with voltage jumps, event-driven.

The event-driven benchmark of the simulator review (Brette et al. 2007, J
Comput Neurosci 23:349-398), the voltage-jump variant of the CUBA
network of Vogels & Abbott (2005): 3,200 excitatory and 800 inhibitory
leaky integrate-and-fire neurons, connection probability 0.02, tau_m = 20 ms,
C_m = 200 pF, E_L = -49 mV, V_th = -50 mV, V_reset = -60 mV, refractory
period 5 ms.  A spike makes the membrane potential of its targets jump by
+0.25 mV (excitatory) or -2.25 mV (inhibitory) after 0.125 ms.  Spike
times are continuous (``engine="event"``): thresholds are crossed at exact
times, not on a grid.

E_L lies above the threshold, so every neuron would fire on its own; the
recurrent inhibition keeps the rate down and the activity sustains itself.
As in NEST's version of the benchmark, the first 50 excitatory neurons
receive an initial kick: independent Poisson trains of 300 Hz from 1 ms to
51 ms through +0.25 mV synapses.  NEST's script starts every neuron at
V_m = E_L = -49 mV, i.e. above threshold, so that all 4,000 neurons fire
together at t = 0; here, as in Brian's CUBA benchmark, the initial
potentials are uniform in [V_reset, V_th).  NEST 3.10's
``iaf_psc_delta_ps`` gives a mean rate of about 9.5 Hz for this network.

Prints the mean rates, the number of spikes and the wall times of building,
compiling and simulating, and saves a raster of the first excitatory and
inhibitory neurons (exact spike times) with the population rate
(``brette2007_bench4.png``) when matplotlib is installed.

Usage::

    python examples/brette2007_bench4.py            # 10 s (the benchmark's duration)
    python examples/brette2007_bench4.py --quick    # 200 ms
"""

import argparse
import time

import numpy as np

import eventsim as es

DT = 0.125  # ms; the synaptic delay is one step
N_EXC, N_INH = 3200, 800
N_KICK, KICK_RATE, KICK_START, KICK_STOP = 50, 300.0, 1.0, 51.0  # -, Hz, ms, ms


def kick_spikes(rng, n=N_KICK, rate=KICK_RATE, start=KICK_START, stop=KICK_STOP):
    """Independent Poisson trains (off-grid times, ms) in [start, stop): (senders, times)."""
    senders, times = [], []
    for ch in range(n):
        k = rng.poisson(rate * (stop - start) * 1e-3)
        t = np.sort(rng.uniform(start, stop, size=k))
        senders.append(np.full(k, ch, dtype=np.int64))
        times.append(t)
    return np.concatenate(senders), np.concatenate(times)


def build(seed=1):
    """Build the benchmark network; returns (net, exc, inh, spikes_e, spikes_i)."""
    model = es.LIF(tau_m=20.0, c_m=200.0, v_rest=-49.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0)
    net = es.Network(dt=DT, seed=seed, engine="event")
    exc = net.population(N_EXC, model, v_init=es.Uniform(-60.0, -50.0), label="exc")
    inh = net.population(N_INH, model, v_init=es.Uniform(-60.0, -50.0), label="inh")
    everyone = exc | inh
    net.connect(exc, everyone, rule=es.FixedProbability(0.02), weight=0.25, delay=DT)
    net.connect(inh, everyone, rule=es.FixedProbability(0.02), weight=-2.25, delay=DT)
    senders, times = kick_spikes(np.random.default_rng(seed))
    kick = net.spike_source(senders=senders, times=times, n=N_KICK)
    net.connect(kick, exc[:N_KICK], rule=es.OneToOne(), weight=0.25, delay=DT)
    spikes_e = net.record_spikes(exc)
    spikes_i = net.record_spikes(inh)
    return net, exc, inh, spikes_e, spikes_i


def plot(spikes_e, spikes_i, t_sim, path, n_exc=200, n_inh=50):
    """Save a raster (``n_exc`` + ``n_inh`` neurons, at most the last second) and the rate (Hz) as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'eventsim[plot]')")
        return
    t0 = max(0.0, t_sim - 1000.0)
    te, se = spikes_e.times, spikes_e.senders
    ti, si = spikes_i.times, spikes_i.senders
    ke = (se < n_exc) & (te >= t0)
    ki = (si < n_inh) & (ti >= t0)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5), height_ratios=[3, 1])
    ax1.plot(te[ke], se[ke], ".", ms=1.5, color="k", label="excitatory")
    ax1.plot(ti[ki], si[ki] + n_exc, ".", ms=1.5, color="tab:red", label="inhibitory")
    if t0 < KICK_STOP:
        ax1.fill_betweenx([-0.5, N_KICK - 0.5], KICK_START, min(KICK_STOP, t_sim), color="tab:blue", alpha=0.15,
                          lw=0, label=f"initial kick ({N_KICK} neurons)")
    ax1.set_xlim(t0, t_sim)
    ax1.set_ylabel("neuron")
    ax1.set_title(f"Brette et al. (2007) benchmark 4, event-driven: {n_exc} excitatory, {n_inh} inhibitory")
    ax1.legend(loc="upper right", markerscale=6, fontsize=8)
    width = 5.0 if t_sim <= 1000.0 else 20.0                       # ms
    bins = np.arange(0.0, t_sim + width, width)
    counts, _ = np.histogram(np.concatenate([te, ti]), bins)
    ax2.plot(bins[:-1], counts / (N_EXC + N_INH) / (width * 1e-3), color="k", lw=0.8)
    ax2.set_xlim(0.0, t_sim)
    ax2.set_xlabel("time (ms)")
    ax2.set_ylabel("rate (Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"saved {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="simulate 200 ms instead of 10 s")
    ap.add_argument("--t-sim", type=float, default=None, help="simulated time (ms, a multiple of 0.125)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plot", default="brette2007_bench4.png", help="output PNG ('' for none)")
    args = ap.parse_args(argv)
    t_sim = args.t_sim or (200.0 if args.quick else 10000.0)

    t0 = time.perf_counter()
    net, exc, inh, spikes_e, spikes_i = build(args.seed)
    t1 = time.perf_counter()
    net.run(DT)  # first step: compiles the engine (cached on disk afterwards)
    t2 = time.perf_counter()
    net.run(t_sim - DT)
    t3 = time.perf_counter()
    rate_e = len(spikes_e) / len(exc) / (t_sim * 1e-3)
    rate_i = len(spikes_i) / len(inh) / (t_sim * 1e-3)
    rate = (len(spikes_e) + len(spikes_i)) / net.n_neurons / (t_sim * 1e-3)
    n_spikes = len(spikes_e) + len(spikes_i)
    print(f"neurons: {net.n_neurons}, synapses: {net.n_synapses}")
    print(f"build: {t1 - t0:.2f} s, first step (compile): {t2 - t1:.2f} s, "
          f"simulate {t_sim:g} ms: {t3 - t2:.2f} s")
    print(f"mean rate: {rate:.2f} Hz (excitatory {rate_e:.2f} Hz, inhibitory {rate_i:.2f} Hz), "
          f"{n_spikes:,d} spikes")
    if args.plot:
        plot(spikes_e, spikes_i, t_sim, args.plot)
    return rate


if __name__ == "__main__":
    main()
