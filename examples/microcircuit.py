"""Potjans & Diesmann (2014) cortical microcircuit: 77,169 neurons, about 3e8 synapses.

The model of 1 mm^2 of early sensory cortex (Potjans TC, Diesmann M (2014),
"The cell-type specific cortical microcircuit: relating structure and
activity in a full-scale spiking network model", Cereb Cortex 24:785-806):

* eight populations, an excitatory and an inhibitory one in each of layers
  2/3, 4, 5 and 6 (L23E ... L6I) with the sizes of the paper's Table 5;
* connection probabilities ``C_a`` of Table 5; the number of synapses of a
  projection is the paper's fixed total number
  ``K = log(1 - C_a) / log(1 - 1/(N_pre N_post))``, made here into a fixed
  in-degree ``round(K / N_post)`` per target neuron (multapses allowed,
  autapses not);
* ``iaf_psc_exp`` neurons: C_m = 250 pF, tau_m = 10 ms, tau_syn = 0.5 ms,
  t_ref = 2 ms, E_L = V_reset = -65 mV, V_th = -50 mV; initial potentials
  Normal(-58 mV, 10 mV);
* synaptic weights Normal(w, 0.1 w) with w = 87.8 pA (a 0.15 mV PSP),
  doubled for L4E -> L23E, and g = -4 for inhibitory sources (excitatory
  weights kept >= 0, inhibitory <= 0 by redrawing);
* delays Normal(1.5 ms, 0.75 ms) from excitatory and Normal(0.75 ms,
  0.375 ms) from inhibitory sources, redrawn below dt and rounded to the grid;
* background: K_ext independent 8 Hz Poisson inputs per neuron (K_ext from
  Table 5), here one Poisson train of rate 8 Hz x K_ext per neuron with the
  weight w; or, with ``--background dc``, its mean current
  ``8 Hz * K_ext * w * tau_syn`` as a constant input (no fluctuations; the
  recurrent input must then supply all of them, which it does at full scale
  but not in small scaled networks, which fall silent).

Scaling (``--scale k``): populations get ``k`` times the neurons and every
in-degree (external ones included) is multiplied by ``k``.  To keep the mean
and variance of each neuron's input as at full scale, weights are divided by
``sqrt(k)`` and the lost mean, ``(1 - sqrt(k)) * tau_syn * sum_j w_ij K_ij nu_j``
(full-scale in-degrees K_ij and rates nu_j, plus the same for the background),
is added as a constant current (van Albada, Helias & Diesmann 2015).  The
full-scale rates nu_j used for this are :data:`FULL_SCALE_RATES`.  Rates of a
scaled network approach the full-scale ones but are not identical (the
compensation assumes full-scale rates and ignores correlations).

Reported rates
--------------
The paper's Fig. 6 shows the asynchronous irregular ground state with low
rates in L2/3E and L6E (about 1 Hz), intermediate ones in L4 (about 4-6 Hz)
and the highest in L5 and the inhibitory populations (about 7-9 Hz); NEST's
full-scale runs of the model give 0.9-1.0, 2.9-3.0, 4.4-4.7, 5.4-5.9, 7.6-8.1,
8.6-9.1, 1.0-1.1 and 7.5-7.8 Hz for L23E ... L6I.  :data:`RATE_RANGES` are
bands around those values (roughly +-40 %); the script prints whether each
population's rate lies in its band.  Rates of the first ``--t-presim`` ms
(the start-up transient) are not counted.

Prints the per-population rates, the build time, the simulation time and the
real-time factor (wall-clock time / biological time), and saves a raster of
the last 200 ms (a fixed fraction of each population, as in the paper's
Fig. 6) beside the population rates and their reported bands
(``microcircuit.png``) when matplotlib is installed.

Usage::

    python examples/microcircuit.py --quick                 # scale 0.1, 200 ms
    python examples/microcircuit.py --scale 0.5 --t-sim 1000 --threads 2
    python examples/microcircuit.py --weight-dtype float32  # full scale (about 7 GB of memory)
"""

import argparse
import time

import numba
import numpy as np

import eventsim as es

POPULATIONS = ["L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I"]

#: Neurons per population at full scale (Table 5).
N_FULL = np.array([20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948])

#: Connection probabilities C_a (Table 5), [target, source].
CONN_PROB = np.array([
    [0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
    [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
    [0.0077, 0.0059, 0.0497, 0.1350, 0.0067, 0.0003, 0.0453, 0.0],
    [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
    [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
    [0.0548, 0.0269, 0.0257, 0.0022, 0.0600, 0.3158, 0.0086, 0.0],
    [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
    [0.0364, 0.0010, 0.0034, 0.0005, 0.0277, 0.0080, 0.0658, 0.1443],
])

#: External (background) in-degrees (Table 5).
K_EXT = np.array([1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100])

#: Full-scale mean rates (Hz) used by the scaling compensation (NEST's full-scale reference run).
FULL_SCALE_RATES = np.array([0.903, 2.965, 4.414, 5.876, 7.569, 8.633, 1.105, 7.829])

#: Bands (Hz) around the full-scale rates reported for the model (see the module docstring).
RATE_RANGES = np.array([[0.5, 1.5], [1.8, 4.2], [2.7, 6.5], [3.5, 8.2],
                        [4.6, 11.4], [5.2, 12.7], [0.6, 1.6], [4.5, 11.0]])

W_MEAN = 87.8          # pA, PSC amplitude of a 0.15 mV PSP
W_REL_STD = 0.1
G = -4.0
W_L4E_L23E = 2.0       # factor on L4E -> L23E
BG_RATE = 8.0          # Hz per external input
DELAY_E, DELAY_I, DELAY_REL_STD = 1.5, 0.75, 0.5   # ms
TAU_SYN = 0.5          # ms
NEURON = dict(tau_m=10.0, c_m=250.0, v_rest=-65.0, v_reset=-65.0, v_th=-50.0, t_ref=2.0,
              tau_syn_ex=TAU_SYN, tau_syn_in=TAU_SYN)


def full_indegrees():
    """Full-scale mean in-degrees K / N_post (float), [target, source]."""
    n_pairs = np.outer(N_FULL, N_FULL).astype(np.float64)
    total = np.log1p(-CONN_PROB) / np.log1p(-1.0 / n_pairs)
    return total / N_FULL[:, None]


def mean_weights():
    """Mean weight (pA) of each projection, [target, source]."""
    w = np.where(np.arange(8) % 2 == 0, W_MEAN, G * W_MEAN)[None, :].repeat(8, axis=0)
    w[0, 2] *= W_L4E_L23E
    return w


def build(scale=1.0, seed=1, dt=0.1, background="poisson", weight_dtype=None, spikes_to=None, backend="cpu",
          dtype="float64"):
    """Build the microcircuit; returns ``(net, populations, spike_recorder)``.

    Parameters
    ----------
    scale : float
        Fraction of neurons and in-degrees, in (0, 1].
    seed : int
        Network seed.
    dt : float
        Time step (ms).
    background : {"poisson", "dc"}
        External input: Poisson trains or their mean current.
    weight_dtype : {"float64", "float32"}, optional
        Storage type of the synaptic weights (default: ``dtype``).
    spikes_to : str, optional
        Stream the spikes of all neurons to this HDF5 file instead of memory.
    backend, dtype : str
        As :class:`eventsim.Network`.
    """
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"scale={scale} must be in (0, 1]")
    if background not in ("poisson", "dc"):
        raise ValueError(f"background={background!r} must be 'poisson' or 'dc'")
    k_full = full_indegrees()
    w = mean_weights()
    sq = np.sqrt(scale)
    # constant input (pA): the mean lost by scaling, plus the whole background if it is DC
    lost = (1.0 - sq) * TAU_SYN * 1e-3 * ((w * k_full * FULL_SCALE_RATES[None, :]).sum(axis=1)
                                          + W_MEAN * K_EXT * BG_RATE)
    dc = lost + (TAU_SYN * 1e-3 * W_MEAN * K_EXT * BG_RATE * sq if background == "dc" else 0.0)
    net = es.Network(dt=dt, seed=seed, weight_dtype=weight_dtype, backend=backend, dtype=dtype)
    n = np.maximum(1, np.round(N_FULL * scale)).astype(int)
    pops = [net.population(int(n[i]), es.LIF(i_e=float(dc[i]), **NEURON), v_init=es.Normal(-58.0, 10.0),
                           label=name) for i, name in enumerate(POPULATIONS)]
    for i, post in enumerate(pops):
        for j, pre in enumerate(pops):
            k = int(round(k_full[i, j] * scale))
            if k == 0:
                continue
            wm = w[i, j] / sq
            if wm > 0:
                weight = es.Normal(wm, W_REL_STD * wm, low=0.0)
                delay = es.Normal(DELAY_E, DELAY_REL_STD * DELAY_E, low=dt)
            else:
                weight = es.Normal(wm, -W_REL_STD * wm, high=0.0)
                delay = es.Normal(DELAY_I, DELAY_REL_STD * DELAY_I, low=dt)
            net.connect(pre, post, es.FixedInDegree(k, allow_autapses=False), weight=weight, delay=delay)
    if background == "poisson":
        for i, post in enumerate(pops):
            bg = net.poisson(len(post), rate=BG_RATE * K_EXT[i] * scale)
            net.connect(bg, post, es.OneToOne(), weight=W_MEAN / sq, delay=DELAY_E)
    everyone = pops[0]
    for p in pops[1:]:
        everyone = everyone | p
    spikes = net.record_spikes(everyone, to=spikes_to)
    return net, pops, spikes


def population_rates(net, pops, spikes, t_from):
    """Mean rate (Hz) of each population over spikes stamped after ``t_from`` ms."""
    steps, ids = spikes.steps, spikes.neuron_ids
    keep = steps * net.dt > t_from
    bounds = np.array([p.offset for p in pops] + [pops[-1].offset + pops[-1].n])
    counts = np.bincount(np.searchsorted(bounds, ids[keep], side="right") - 1, minlength=len(pops))
    duration = (net.t - t_from) * 1e-3
    return counts[: len(pops)] / np.array([p.n for p in pops]) / duration


def plot(net, pops, spikes, rates, path, window=200.0, n_show=1000):
    """Save a raster of the last ``window`` ms (about ``n_show`` neurons) and the rates as a PNG.

    Parameters
    ----------
    net, pops, spikes
        As returned by :func:`build`, after the run.
    rates : ndarray
        Population rates (Hz), as :func:`population_rates`.
    path : str
        Output file.
    window : float
        Length of the raster (ms), ending at the network's time.
    n_show : int
        About how many neurons the raster shows: the same fraction of each
        population (at least one neuron of each).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'eventsim[plot]')")
        return
    steps, ids = spikes.steps, spikes.neuron_ids
    t = steps * net.dt
    t0 = max(0.0, net.t - window)
    keep = t >= t0
    fraction = min(1.0, n_show / net.n_neurons)
    t, ids = t[keep], ids[keep]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 6), width_ratios=[3, 1])
    y, ticks = 0, []
    for name, p in zip(POPULATIONS, pops):
        shown = max(1, int(round(p.n * fraction)))
        sel = (ids >= p.offset) & (ids < p.offset + shown)
        color = "tab:blue" if name.endswith("E") else "tab:red"
        ax1.plot(t[sel], y + shown - 1 - (ids[sel] - p.offset), ".", ms=1, color=color)  # L2/3 on top
        ticks.append(y + shown / 2)
        y += shown
    ax1.set_yticks(ticks, POPULATIONS)
    ax1.invert_yaxis()
    ax1.set_xlim(t0, net.t)
    ax1.set_xlabel("time (ms)")
    ax1.set_title(f"Potjans & Diesmann (2014) microcircuit, {net.n_neurons:,d} neurons: "
                  f"{fraction:.1%} of each population")
    pos = np.arange(len(POPULATIONS))
    colors = ["tab:blue" if name.endswith("E") else "tab:red" for name in POPULATIONS]
    ax2.barh(pos, rates, color=colors)
    ax2.errorbar(RATE_RANGES.mean(axis=1), pos, xerr=np.diff(RATE_RANGES, axis=1)[:, 0] / 2, fmt="none",
                 ecolor="k", capsize=3, label="reported band")
    ax2.set_yticks(pos, POPULATIONS)
    ax2.invert_yaxis()
    ax2.set_xlabel("rate (Hz)")
    ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"saved {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of neurons and in-degrees (default 1)")
    ap.add_argument("--t-sim", type=float, default=None, help="simulated time after the transient (ms)")
    ap.add_argument("--t-presim", type=float, default=None, help="start-up transient, not counted (ms)")
    ap.add_argument("--threads", type=int, default=None, help="Numba threads (default: Numba's)")
    ap.add_argument("--weight-dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--background", choices=["poisson", "dc"], default="poisson")
    ap.add_argument("--spikes-to", default=None, help="stream spikes to this HDF5 file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="scale 0.1, 200 ms after a 50 ms transient")
    ap.add_argument("--plot", default="microcircuit.png", help="output PNG ('' for none)")
    args = ap.parse_args(argv)
    scale = 0.1 if args.quick else args.scale
    t_sim = args.t_sim or (200.0 if args.quick else 1000.0)
    t_presim = args.t_presim if args.t_presim is not None else (50.0 if args.quick else 100.0)
    if args.threads:
        numba.set_num_threads(args.threads)

    t0 = time.perf_counter()
    net, pops, spikes = build(scale, args.seed, background=args.background, weight_dtype=args.weight_dtype,
                              spikes_to=args.spikes_to)
    t1 = time.perf_counter()
    net.run(net.dt)  # builds the engine arrays and compiles the engine (cached on disk afterwards)
    t2 = time.perf_counter()
    net.run(t_presim - net.dt)
    t3 = time.perf_counter()
    net.run(t_sim)
    t4 = time.perf_counter()
    rates = population_rates(net, pops, spikes, t_presim)
    print(f"microcircuit at scale {scale}: {net.n_neurons:,d} neurons, {net.n_synapses:,d} synapses, "
          f"{args.background} background, {args.weight_dtype} weights, {numba.get_num_threads()} threads")
    print(f"connect {t1 - t0:.2f} s, engine build + first step {t2 - t1:.2f} s, "
          f"transient {t_presim:.0f} ms {t3 - t2:.2f} s")
    print(f"simulate {t_sim:.0f} ms: {t4 - t3:.2f} s, real-time factor {(t4 - t3) / (t_sim * 1e-3):.2f}")
    print(f"{'population':>10} {'rate (Hz)':>10} {'reported band (Hz)':>19}")
    inside = []
    for name, r, (lo, hi) in zip(POPULATIONS, rates, RATE_RANGES):
        ok = lo <= r <= hi
        inside.append(ok)
        print(f"{name:>10} {r:10.2f} {lo:8.1f} - {hi:4.1f}   {'in band' if ok else 'OUTSIDE'}")
    print(f"{sum(inside)} of {len(inside)} populations in the reported bands")
    if args.plot:
        plot(net, pops, spikes, rates, args.plot)
    return dict(zip(POPULATIONS, rates))


if __name__ == "__main__":
    main()
