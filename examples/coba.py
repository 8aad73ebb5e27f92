"""Brette et al. (2007) benchmark 1 (COBA): 4,000 LIF neurons with conductance-based synapses.

3,200 excitatory and 800 inhibitory neurons (NEST's ``iaf_cond_exp``:
``es.CondLIF``), connection probability 0.02 (no autapses), C_m = 200 pF,
tau_m = 20 ms (g_L = 10 nS), E_L = V_reset = -60 mV, V_th = -50 mV,
refractory period 5 ms, E_ex = 0 mV, E_in = -80 mV, tau_syn_ex = 5 ms,
tau_syn_in = 10 ms, conductance jumps of 6 nS (excitatory) and 67 nS
(inhibitory; weight -67 nS).  As in Brian's version of the benchmark, a
constant current of 200 pA (20 mV over g_L) keeps the activity going, and
the initial voltages are uniform in [V_reset, V_th].  Delay 0.1 ms (one
step), dt = 0.1 ms, 10 s.  The membrane equation is integrated by the
adaptive Runge-Kutta-Fehlberg 4(5) method with NEST's error control (see
``eventsim.models.cond_lif``).

Prints the mean rate and the synaptic events per second of simulation time,
and saves a raster of the first excitatory and inhibitory neurons over the
last second with the population rate of the whole run (``coba.png``) when
matplotlib is installed.

Usage::

    python examples/coba.py                 # 10 s
    python examples/coba.py --quick         # 1 s
    python examples/coba.py --t-sim 200     # 200 ms
    python examples/coba.py --adex          # the same network of AdEx neurons (es.AdEx)
    python examples/coba.py --alpha         # alpha-shaped conductances (iaf_cond_alpha)
"""

import argparse
import time

import numpy as np

import eventsim as es

#: The network's parameters (ms, pF, mV, nS, pA).
COBA = dict(ne=3200, ni=800, p=0.02, tau_m=20.0, c_m=200.0, v_rest=-60.0, v_reset=-60.0, v_th=-50.0, t_ref=5.0,
            e_ex=0.0, e_in=-80.0, tau_syn_ex=5.0, tau_syn_in=10.0, w_ex=6.0, w_in=-67.0, i_e=200.0, delay=0.1)
#: ``--adex``: the same network of adaptive exponential neurons (NEST's aeif_cond_exp; mV, nS, ms, pA); spikes
#: at v_peak, the exponential's threshold at v_th
ADEX = dict(delta_t=2.0, v_peak=0.0, a=2.0, b=40.0, tau_w=100.0, i_e=250.0)
#: ``--alpha``: alpha-shaped conductances (NEST's iaf_cond_alpha) whose peak is the weight divided by e, so
#: that a spike carries the charge of the exponential one (the integral of an alpha conductance of peak g is
#: g e tau, of an exponential one of jump g, g tau)
ALPHA_SCALE = 1.0 / np.e


def build(seed=1, dt=0.1, adex=False, alpha=False):
    """Build the COBA network (``adex``: of AdEx neurons; ``alpha``: with alpha-shaped conductances of peak
    weight / e); returns (net, exc, inh, spikes)."""
    c = COBA
    if adex and alpha:
        raise ValueError("adex and alpha exclude each other (es.AdEx has exponential conductances)")
    common = dict(c_m=c["c_m"], v_rest=c["v_rest"], v_reset=c["v_reset"], v_th=c["v_th"], t_ref=c["t_ref"],
                  e_ex=c["e_ex"], e_in=c["e_in"], tau_syn_ex=c["tau_syn_ex"], tau_syn_in=c["tau_syn_in"])
    scale = ALPHA_SCALE if alpha else 1.0
    if adex:
        model = es.AdEx(g_l=c["c_m"] / c["tau_m"], **common, **ADEX)
    else:
        model = es.CondLIF(tau_m=c["tau_m"], i_e=c["i_e"], psc="alpha" if alpha else "exp", **common)
    net = es.Network(dt=dt, seed=seed)
    v0 = es.Uniform(c["v_reset"], c["v_th"])
    exc = net.population(c["ne"], model, v_init=v0, label="exc")
    inh = net.population(c["ni"], model, v_init=v0, label="inh")
    everyone = exc | inh
    net.connect(exc, everyone, es.FixedProbability(c["p"]), weight=c["w_ex"] * scale, delay=c["delay"])
    net.connect(inh, everyone, es.FixedProbability(c["p"]), weight=c["w_in"] * scale, delay=c["delay"])
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
    ax1.set_title(f"COBA (Brette et al. 2007): {n_exc} excitatory and {n_inh} inhibitory neurons")
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
    ap.add_argument("--t-sim", type=float, default=None, help="simulated time (ms; overrides --quick)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--adex", action="store_true", help="AdEx neurons (es.AdEx) instead of CondLIF")
    ap.add_argument("--alpha", action="store_true", help="alpha-shaped conductances (CondLIF psc='alpha') of "
                    "peak weight / e")
    ap.add_argument("--plot", default="coba.png", help="output PNG ('' for none)")
    args = ap.parse_args(argv)
    if args.adex and args.alpha:
        ap.error("--adex and --alpha exclude each other (es.AdEx has exponential conductances)")
    t_sim = args.t_sim if args.t_sim is not None else (1000.0 if args.quick else 10000.0)
    t0 = time.perf_counter()
    net, exc, inh, spikes = build(args.seed, adex=args.adex, alpha=args.alpha)
    net.run(0.1)
    t1 = time.perf_counter()
    net.run(t_sim - 0.1)
    t2 = time.perf_counter()
    rate = len(spikes) / net.n_neurons / (t_sim * 1e-3)
    events, _ = net.synaptic_events
    print(f"neurons: {net.n_neurons}, synapses: {net.n_synapses}")
    print(f"build + compile: {t1 - t0:.2f} s, simulate {t_sim / 1000:g} s: {t2 - t1:.2f} s")
    print(f"mean rate: {rate:.2f} Hz; synaptic events: {events:,d} ({events / (t2 - t1):.3e} per second)")
    if args.plot:
        plot(spikes, exc, t_sim, args.plot)
    return rate


if __name__ == "__main__":
    main()
