"""Brette et al. (2007) benchmark 2 (CUBA): 4,000 LIF neurons with exponential current synapses.

3,200 excitatory and 800 inhibitory neurons, connection probability 0.02,
tau_m = 20 ms, E_L = -49 mV, V_th = -50 mV, V_reset = -60 mV, refractory
period 5 ms, tau_syn_ex = 5 ms, tau_syn_in = 10 ms.  The benchmark's
synaptic jumps (+1.62 mV and -9 mV on the voltage-scaled currents) become
currents ``w = jump * C_m / tau_m`` in pA.  The activity is self-sustained:
E_L lies above threshold and the initial voltages are uniform in
[V_reset, V_th].  Delay 0.1 ms (one step), dt = 0.1 ms, 10 s.

Prints the mean rate and the synaptic events per second of simulation time,
and saves a raster of the first excitatory and inhibitory neurons over the
last second with the population rate of the whole run (``cuba.png``) when
matplotlib is installed.

Usage::

    python examples/cuba.py           # 10 s
    python examples/cuba.py --quick   # 1 s
"""

import argparse
import time

import numpy as np

import eventsim as es

TAU_M, C_M = 20.0, 250.0


def build(seed=1, dt=0.1):
    """Build the CUBA network; returns (net, exc, inh, spikes)."""
    model = es.LIF(tau_m=TAU_M, c_m=C_M, v_rest=-49.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0,
                   tau_syn_ex=5.0, tau_syn_in=10.0)
    net = es.Network(dt=dt, seed=seed)
    exc = net.population(3200, model, v_init=es.Uniform(-60.0, -50.0), label="exc")
    inh = net.population(800, model, v_init=es.Uniform(-60.0, -50.0), label="inh")
    everyone = exc | inh
    w_e = 1.62 * C_M / TAU_M     # pA
    w_i = -9.0 * C_M / TAU_M     # pA
    net.connect(exc, everyone, es.FixedProbability(0.02), weight=w_e, delay=dt)
    net.connect(inh, everyone, es.FixedProbability(0.02), weight=w_i, delay=dt)
    spikes = net.record_spikes(everyone)
    return net, exc, inh, spikes


def plot(spikes, exc, t_sim, path, n_exc=200, n_inh=50):
    """Save a raster (last second, ``n_exc`` + ``n_inh`` neurons) and the population rate (Hz) as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'eventsim[plot]')")
        return
    times, ids = spikes.times, spikes.senders        # positions in exc | inh: exc first
    t0 = max(0.0, t_sim - 1000.0)
    is_exc = ids < len(exc)
    sel_e = is_exc & (ids < n_exc) & (times >= t0)
    sel_i = ~is_exc & (ids < len(exc) + n_inh) & (times >= t0)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5), height_ratios=[3, 1])
    ax1.plot(times[sel_e], ids[sel_e], ".", ms=1.5, color="k", label="excitatory")
    ax1.plot(times[sel_i], ids[sel_i] - len(exc) + n_exc, ".", ms=1.5, color="tab:red", label="inhibitory")
    ax1.set_xlim(t0, t_sim)
    ax1.set_ylabel("neuron")
    ax1.set_title(f"CUBA (Brette et al. 2007): {n_exc} excitatory and {n_inh} inhibitory neurons")
    ax1.legend(loc="upper right", markerscale=6, fontsize=8)
    bins = np.arange(0.0, t_sim + 10.0, 10.0)
    counts, _ = np.histogram(times, bins)
    ax2.plot(bins[:-1], counts / len(spikes.group) / 10e-3, color="k", lw=0.8)
    ax2.set_xlim(0.0, t_sim)
    ax2.set_xlabel("time (ms)")
    ax2.set_ylabel("rate (Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"saved {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="simulate 1 s instead of 10 s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plot", default="cuba.png", help="output PNG ('' for none)")
    args = ap.parse_args(argv)
    t_sim = 1000.0 if args.quick else 10000.0
    t0 = time.perf_counter()
    net, exc, inh, spikes = build(args.seed)
    net.run(0.1)
    t1 = time.perf_counter()
    net.run(t_sim - 0.1)
    t2 = time.perf_counter()
    rate = len(spikes) / net.n_neurons / (t_sim * 1e-3)
    events, _ = net.synaptic_events
    print(f"neurons: {net.n_neurons}, synapses: {net.n_synapses}")
    print(f"build + compile: {t1 - t0:.2f} s, simulate {t_sim / 1000:.0f} s: {t2 - t1:.2f} s")
    print(f"mean rate: {rate:.2f} Hz; synaptic events: {events:,d} ({events / (t2 - t1):.3e} per second)")
    if args.plot:
        plot(spikes, exc, t_sim, args.plot)
    return rate


if __name__ == "__main__":
    main()
