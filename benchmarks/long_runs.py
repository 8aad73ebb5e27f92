"""Long runs at full scale: build memory, speed, and flat memory over hours of biological time.

Two measurements, each in a fresh process (so one's peak memory does not
hide the other's):

``microcircuit``
    Builds the full-scale Potjans & Diesmann (2014) microcircuit
    (``examples/microcircuit.py``; 77,169 neurons, about 3e8 synapses) with
    float32 weights, runs a start-up transient and ``--t-sim`` ms with
    ``--threads`` Numba threads, and prints the connect and engine-build
    times, the peak resident memory (VmHWM), the real-time factor (wall-clock
    seconds per biological second) and the population rates.  Targets: peak
    memory under 8 GiB; real-time factor 10 or better with 2 threads.

``stream``
    Runs a cheap 10,000-neuron network (8,000 excitatory + 2,000 inhibitory
    LIF neurons with delta synapses, each driven by its own constant
    current drawn from Uniform(0.95, 1.2) x threshold; sparse recurrent
    excitation and stronger inhibition, about 6-7 Hz, irregular) for
    ``--duration`` ms of biological time (default one hour) with every spike
    streamed to an HDF5 file.  Resident memory (VmRSS) is sampled after every
    ``--block`` ms of biological time; the script prints whether it stays flat
    (within 100 MB) after the first minute, the file size per million spikes
    and the real-time factor.

Usage::

    python benchmarks/long_runs.py                               # both, full size (about 8 GB of memory)
    python benchmarks/long_runs.py microcircuit --scale 0.2 --t-sim 500
    python benchmarks/long_runs.py stream --duration 300000      # 5 minutes of biological time
    python benchmarks/long_runs.py stream --out /data/spikes.h5  # keep the spike file

Machine load from other processes changes the timings: the script prints
the load average before it starts.  This is a script, not an asv suite
(nothing runs on import).
"""

from __future__ import annotations

import argparse
import os
import runpy
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")


def memory_mib():
    """(VmRSS, VmHWM) of this process in MiB, from /proc/self/status (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out["VmRSS"], out["VmHWM"]


def _header(threads):
    import numba

    numba.set_num_threads(threads)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"threads: {numba.get_num_threads()}, cpus: {os.cpu_count()}, "
          f"load average before start: {load[0]:.2f}" if load else "")


def microcircuit(args):
    """Full-scale (or ``--scale``) microcircuit: build time, peak memory, real-time factor."""
    _header(args.threads)
    mod = runpy.run_path(os.path.join(EXAMPLES, "microcircuit.py"))
    t0 = time.perf_counter()
    net, pops, spikes = mod["build"](args.scale, seed=args.seed, weight_dtype="float32",
                                     background=args.background, dtype=args.dtype)
    t1 = time.perf_counter()
    rss_connected = memory_mib()
    net.run(net.dt)  # engine arrays + compilation (cached on disk after the first time)
    t2 = time.perf_counter()
    rss_built = memory_mib()
    net.run(args.t_presim - net.dt)
    t3 = time.perf_counter()
    net.run(args.t_sim)
    t4 = time.perf_counter()
    rss_end = memory_mib()
    rates = mod["population_rates"](net, pops, spikes, args.t_presim)
    rtf = (t4 - t3) / (args.t_sim * 1e-3)
    print(f"microcircuit scale {args.scale}: {net.n_neurons:,d} neurons, {net.n_synapses:,d} synapses, "
          f"float32 weights, {args.dtype} state, {args.background} background")
    print(f"  connect             {t1 - t0:8.1f} s   RSS {rss_connected[0] / 1024:6.2f} GiB "
          f"(peak {rss_connected[1] / 1024:.2f} GiB)")
    print(f"  engine build + 1st  {t2 - t1:8.1f} s   RSS {rss_built[0] / 1024:6.2f} GiB "
          f"(peak {rss_built[1] / 1024:.2f} GiB)")
    print(f"  transient {args.t_presim:6.0f} ms {t3 - t2:8.1f} s")
    print(f"  simulate {args.t_sim:7.0f} ms {t4 - t3:8.1f} s   real-time factor {rtf:.2f} "
          f"({'meets' if rtf <= 10 else 'misses'} the target of 10)")
    print(f"  peak resident memory {rss_end[1] / 1024:.2f} GiB "
          f"({'under' if rss_end[1] < 8 * 1024 else 'OVER'} the 8 GiB target)")
    print("  rates (Hz): " + ", ".join(f"{n} {r:.2f}" for n, r in zip(mod["POPULATIONS"], rates)))


def build_stream_network(path, seed=1):
    """The 10,000-neuron network of the ``stream`` measurement, spikes streamed to ``path``."""
    import numpy as np

    import eventsim as es

    n_e, n_i = 8000, 2000
    drive = np.random.default_rng(seed).uniform(0.95, 1.2, n_e + n_i)  # x threshold (tau_m / c_m = 20)
    net = es.Network(dt=0.1, seed=seed)

    def model(i_e):
        return es.LIF(tau_m=20.0, c_m=1.0, v_rest=0.0, v_reset=0.0, v_th=20.0, t_ref=2.0, i_e=i_e)

    exc = net.population(n_e, model(drive[:n_e]), v_init=es.Uniform(0.0, 20.0), label="exc")
    inh = net.population(n_i, model(drive[n_e:]), v_init=es.Uniform(0.0, 20.0), label="inh")
    everyone = exc | inh
    net.connect(exc, everyone, es.FixedInDegree(80), weight=0.2, delay=1.5)
    net.connect(inh, everyone, es.FixedInDegree(20), weight=-3.0, delay=1.5)
    return net, net.record_spikes(everyone, to=path, overwrite=True)


def stream(args):
    """Long run of a 10k network with spikes streamed to disk; resident memory sampled per block."""
    _header(args.threads)
    tmp = None
    path = args.out
    if path is None:
        tmp = tempfile.mkdtemp(prefix="eventsim-long-run-")
        path = os.path.join(tmp, "spikes.h5")
    try:
        net, rec = build_stream_network(path, args.seed)
        net.run(net.dt)  # compile outside the timing
        samples = []  # (biological ms, RSS MiB)
        t0 = time.perf_counter()
        last = t0
        while net.t < args.duration - 1e-9:
            net.run(min(args.block, args.duration - net.t))
            samples.append((net.t, memory_mib()[0]))
            now = time.perf_counter()
            if now - last > 60:
                print(f"  t = {net.t / 1000:8.0f} s bio, RSS {samples[-1][1]:.0f} MiB, "
                      f"{len(rec):,d} spikes, {now - t0:.0f} s wall", flush=True)
                last = now
        wall = time.perf_counter() - t0
        bio_s = (net.t - net.dt) * 1e-3
        n_spikes = len(rec)
        net.close()
        size = os.path.getsize(path)
        after = [r for t, r in samples if t >= 60_000.0]
        print(f"stream: {net.n_neurons:,d} neurons, {net.n_synapses:,d} synapses, "
              f"{bio_s:,.0f} s of biological time in {wall:,.0f} s (real-time factor {wall / bio_s:.3f})")
        print(f"  spikes: {n_spikes:,d} ({n_spikes / net.n_neurons / bio_s:.2f} Hz); file {size / 2**20:,.1f} MiB, "
              f"{size / max(n_spikes, 1) * 1e6 / 2**20:.2f} MiB per million spikes")
        if after:
            spread = max(after) - min(after)
            print(f"  RSS after the first minute: {min(after):.0f} to {max(after):.0f} MiB (spread "
                  f"{spread:.0f} MiB, {len(after)} samples): {'flat' if spread <= 100 else 'NOT flat'} within "
                  "100 MB")
        else:
            print("  RSS: the run is shorter than one minute of biological time; nothing to compare")
        print(f"  peak resident memory {memory_mib()[1]:.0f} MiB")
    finally:
        if tmp is not None:
            for name in os.listdir(tmp):
                os.unlink(os.path.join(tmp, name))
            os.rmdir(tmp)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", choices=["microcircuit", "stream", "both"], default="both")
    ap.add_argument("--threads", type=int, default=2, help="Numba threads (default 2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=1.0, help="microcircuit scale (default 1)")
    ap.add_argument("--t-sim", type=float, default=1000.0, help="microcircuit simulated time (ms)")
    ap.add_argument("--t-presim", type=float, default=100.0, help="microcircuit transient (ms)")
    ap.add_argument("--background", choices=["poisson", "dc"], default="poisson",
                    help="microcircuit external input (see examples/microcircuit.py)")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                    help="microcircuit: precision of neuron state and ring buffers (weights are float32)")
    ap.add_argument("--duration", type=float, default=3_600_000.0, help="stream run length (ms; 1 h)")
    ap.add_argument("--block", type=float, default=1000.0, help="stream: RSS sampled every this many ms")
    ap.add_argument("--out", default=None, help="stream: keep the spike file here (default: a temp file)")
    args = ap.parse_args(argv)
    if args.what == "both":  # each measurement in its own process
        rc = 0
        for what in ("microcircuit", "stream"):
            rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "both"]
            rc |= subprocess.call([sys.executable, os.path.abspath(__file__), what, *rest])
        return rc
    (microcircuit if args.what == "microcircuit" else stream)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
