"""eventsim against NEST and Brian2 on the Brunel (2000), CUBA and COBA networks, on the same CPU cores.

Every measurement runs in its own process, started under the interpreter
that has the simulator (``--eventsim-python``, ``--peer-python``), pinned to
the same cores (``taskset -c 0`` for one thread, ``0-(N-1)`` for
``--threads N``) with the thread count set everywhere it can be:
``OMP_NUM_THREADS``, ``NUMBA_NUM_THREADS``, NEST ``local_num_threads``,
Brian2 ``openmp_threads`` (0, i.e. no OpenMP, for one thread; Brian2's
runtime target is single-threaded).  Each simulator is optional: one that
cannot be imported is skipped with a message.

Simulators: ``eventsim`` (the examples' own ``build``), ``nest``
(``iaf_psc_delta`` / ``iaf_psc_exp`` / ``iaf_cond_exp``, ``poisson_generator``,
``fixed_indegree`` / ``pairwise_bernoulli``), ``brian2-standalone``
(``cpp_standalone`` device) and ``brian2-runtime`` (the default runtime
device, Cython target).  The peer networks, and how each phase is timed, are
described in ``cpu_workers.py``.

Each (network, simulator) runs ``--repeats`` times; the table gives medians
(simulate also min-max).  The mean rates must agree across simulators
within ``--rate-tolerance`` (relative to eventsim); the script says whether
they do.  (The rate of one network realisation varies between seeds: about
+-4 % for CUBA, less for Brunel; 10 % covers that.)  It also measures the synaptic-scatter ceiling (``bench_scatter.py``)
in the same run, pinned the same way, and reports eventsim's Brunel
events/s as a fraction of it.

Usage::

    python benchmarks/peers/cpu_networks.py --peer-python /path/to/peers-venv/bin/python
    python benchmarks/peers/cpu_networks.py --quick            # small networks, short runs
    python benchmarks/peers/cpu_networks.py --threads 2 --repeats 5 --networks brunel

Full size: Brunel with 12,500 neurons for 1 s, CUBA, COBA, its version with
alpha-shaped conductances (``coba_alpha``) and its AdEx version (``coba_adex``)
for 10 s, dt = 0.1 ms.
``--quick``: Brunel at scale 0.2 for 200 ms, the others for 1 s.  ``--t-sim`` sets
the simulated time of every network.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER = HERE / "cpu_workers.py"

SIMULATORS = ["eventsim", "nest", "brian2-standalone", "brian2-runtime"]
NETWORKS = ["brunel", "cuba", "coba", "coba_alpha", "coba_adex"]
IMPORT = {"eventsim": "eventsim", "nest": "nest", "brian2-standalone": "brian2", "brian2-runtime": "brian2",
          "scatter": "numba"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def child_env(threads, extra=None):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["PYNEST_QUIET"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def pin_prefix(threads):
    """``taskset -c 0-(threads-1)`` if taskset exists (Linux), else nothing."""
    if shutil.which("taskset") is None:
        return []
    cores = "0" if threads == 1 else f"0-{threads - 1}"
    return ["taskset", "-c", cores]


def importable(python, module):
    """(True, "") if ``python -c 'import module'`` works, else (False, reason)."""
    try:
        proc = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True,
                              env=child_env(1), timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if proc.returncode == 0:
        return True, ""
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return False, lines[-1] if lines else f"exit status {proc.returncode}"


def run_worker(python, args, threads, extra_env=None, timeout=3600):
    """Run ``cpu_workers.py`` once; returns its result dict, or None (after printing why)."""
    cmd = pin_prefix(threads) + [python, str(WORKER)] + args
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(threads, extra_env),
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"    timed out after {timeout} s: {' '.join(cmd)}")
        return None
    wall = time.perf_counter() - t0
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            res = json.loads(line[len("RESULT "):])
            res["process_wall_s"] = wall
            return res
    log(f"    failed (exit status {proc.returncode}): {' '.join(cmd)}")
    for line in (proc.stdout + proc.stderr).strip().splitlines()[-15:]:
        log("      " + line)
    return None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs, t_sim_ms):
    """Medians over the repeats of one (network, simulator)."""
    s = {}
    for key in ("build_s", "simulate_s", "spikes", "events", "peak_rss_mib"):
        s[key] = median([r.get(key) for r in runs])
    # compile: the first repeat may fill a cache (eventsim's is cold there); show the later ones
    s["compile_s"] = median([r.get("compile_s") for r in (runs[1:] or runs)])
    sims = [r["simulate_s"] for r in runs]
    s["simulate_min"], s["simulate_max"] = min(sims), max(sims)
    s["compile_first"] = runs[0].get("compile_s")
    n = runs[0]["n_neurons"]
    s["n_neurons"], s["n_synapses"] = n, runs[0]["n_synapses"]
    s["rate_hz"] = s["spikes"] / n / (t_sim_ms * 1e-3)
    s["events_per_s"] = median([r["events"] / r["simulate_s"] for r in runs])
    s["events_exact"] = runs[0]["events_exact"]
    s["threads"] = runs[0].get("threads")
    for key in ("engine_synapse_bytes", "engine_sender_bytes", "projection_bytes"):
        s[key] = runs[0].get(key)
    s["repeats"] = len(runs)
    return s


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def table(rows, header):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(h).ljust(w) if i == 0 else str(h).rjust(w) for i, (h, w) in enumerate(zip(header, widths))),
           line]
    for r in rows:
        out.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def report_network(network, summaries, t_sim_ms, tolerance):
    """Print the table of one network; returns whether all rates agree with eventsim's."""
    ref = summaries.get("eventsim")
    header = ["simulator", "build s", "compile s", "simulate s", "(min-max)", "rate Hz", "spikes",
              "events/s", "peak RSS MiB", "sim ratio", "build ratio"]
    rows = []
    for sim, s in summaries.items():
        ratio = build_ratio = None
        if ref is not None and sim != "eventsim":
            ratio = s["simulate_s"] / ref["simulate_s"]
            build_ratio = s["build_s"] / ref["build_s"]
        events = fmt(s["events_per_s"], ".3e") + ("" if s["events_exact"] else "*")
        rows.append([sim, fmt(s["build_s"], ".2f"), fmt(s["compile_s"], ".2f"), fmt(s["simulate_s"], ".2f"),
                     f"{s['simulate_min']:.2f}-{s['simulate_max']:.2f}", fmt(s["rate_hz"], ".2f"),
                     f"{int(s['spikes']):,d}", events, fmt(s["peak_rss_mib"], ",.0f"),
                     "-" if ratio is None else f"{ratio:.2f}x", "-" if build_ratio is None else f"{build_ratio:.2f}x"])
    first = next(iter(summaries.values()))
    print(f"\n== {network}: {first['n_neurons']:,d} neurons, {first['n_synapses']:,d} recurrent synapses "
          f"(eventsim's count), {t_sim_ms / 1000:g} s biological, dt = 0.1 ms, threads = {first['threads']}, "
          f"median of {first['repeats']} ==")
    print(table(rows, header))
    print("sim ratio / build ratio: the peer's time over eventsim's (> 1: eventsim is faster).")
    if ref is not None and ref.get("engine_synapse_bytes") is not None:
        n_syn = ref["n_synapses"]
        print(f"eventsim connectivity: {ref['engine_synapse_bytes'] / n_syn:.2f} bytes per synapse in the engine's "
              f"synapse arrays + {ref['engine_sender_bytes'] / n_syn:.2f} in its per-sender arrays; the "
              f"network's projections hold {ref['projection_bytes'] / n_syn:.2f} more")
    if any(not s["events_exact"] for s in summaries.values()):
        print("* NEST events = spikes x (recurrent synapses / neurons), the expected count; "
              "NEST's connections are not read back.")
    firsts = ", ".join(f"{sim} {s['compile_first']:.2f} s" for sim, s in summaries.items()
                       if s["compile_first"] is not None)
    if firsts:
        print(f"compile: median of repeats 2..n; in the first repeat (eventsim: cold Numba cache): {firsts}")
    ok = True
    if ref is not None:
        parts = []
        for sim, s in summaries.items():
            if sim == "eventsim":
                continue
            dev = s["rate_hz"] / ref["rate_hz"] - 1.0
            good = abs(dev) <= tolerance
            ok &= good
            parts.append(f"{sim} {dev:+.1%} ({'ok' if good else 'DISAGREES'})")
        if parts:
            verdict = "agree" if ok else "DO NOT agree"
            print(f"rates vs eventsim ({ref['rate_hz']:.2f} Hz), tolerance {tolerance:.0%}: " + ", ".join(parts)
                  + f" -> rates {verdict}")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", default=",".join(NETWORKS), help="comma-separated: " + ",".join(NETWORKS))
    ap.add_argument("--simulators", default=",".join(SIMULATORS), help="comma-separated subset of "
                    + ",".join(SIMULATORS))
    ap.add_argument("--threads", type=int, default=1, help="threads (and cores 0..N-1) for every simulator")
    ap.add_argument("--repeats", type=int, default=3, help="runs per (network, simulator); the median is shown")
    ap.add_argument("--quick", action="store_true", help="Brunel at scale 0.2 for 200 ms, CUBA and COBA for 1 s")
    ap.add_argument("--t-sim", type=float, default=None, help="simulated time of every network (ms)")
    ap.add_argument("--scale", type=float, default=None, help="Brunel scale (default 1, or 0.2 with --quick)")
    ap.add_argument("--peer-python", default=sys.executable,
                    help="interpreter with nest and/or brian2 (default: this one)")
    ap.add_argument("--eventsim-python", default=sys.executable,
                    help="interpreter with eventsim (default: this one)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate-tolerance", type=float, default=0.10,
                    help="largest relative difference of a peer's mean rate from eventsim's (default 0.10)")
    ap.add_argument("--no-scatter", action="store_true", help="skip the scatter-ceiling measurement")
    ap.add_argument("--json", default=None, help="also write every raw result to this file")
    args = ap.parse_args(argv)

    networks = [n for n in args.networks.split(",") if n]
    sims = [s for s in args.simulators.split(",") if s]
    for name in networks:
        if name not in NETWORKS:
            ap.error(f"unknown network {name!r}; choose from {NETWORKS}")
    for name in sims:
        if name not in SIMULATORS:
            ap.error(f"unknown simulator {name!r}; choose from {SIMULATORS}")
    if args.threads < 1 or args.repeats < 1:
        ap.error("--threads and --repeats must be >= 1")
    scale = args.scale if args.scale is not None else (0.2 if args.quick else 1.0)
    t_sim = {"brunel": 200.0 if args.quick else 1000.0, "cuba": 1000.0 if args.quick else 10000.0,
             "coba": 1000.0 if args.quick else 10000.0, "coba_alpha": 1000.0 if args.quick else 10000.0,
             "coba_adex": 1000.0 if args.quick else 10000.0}
    if args.t_sim is not None:
        if not args.t_sim > 2 * 0.1:
            ap.error("--t-sim must be > 0.2 ms")
        t_sim = dict.fromkeys(t_sim, args.t_sim)
    python = {s: (args.eventsim_python if s == "eventsim" else args.peer_python) for s in SIMULATORS}
    python["scatter"] = args.eventsim_python
    if not pin_prefix(args.threads):
        log("taskset not found: processes are not pinned to cores")
    if args.threads > (os.cpu_count() or 1):
        log(f"warning: --threads {args.threads} exceeds the {os.cpu_count()} cores of this machine")

    available = []
    for sim in sims:
        ok, why = importable(python[sim], IMPORT[sim])
        if ok:
            available.append(sim)
        else:
            print(f"skipping {sim}: cannot import {IMPORT[sim]} with {python[sim]} ({why})")

    print(f"cpu_networks: threads={args.threads} (cores {'0' if args.threads == 1 else f'0-{args.threads - 1}'}), "
          f"repeats={args.repeats}, seed={args.seed}, brunel scale={scale:g}"
          + (", quick" if args.quick else ""))
    for sim in available:
        print(f"  {sim}: {python[sim]}")

    # eventsim gets a Numba cache of its own for each network: the first repeat compiles from
    # scratch, the others load the cache
    cache_root = tempfile.mkdtemp(prefix="eventsim-peers-numba-cache-")
    raw = {"args": vars(args), "results": {}, "scatter": None}
    summaries = {}
    all_agree = True
    try:
        for network in networks:
            summaries[network] = {}
            for sim in available:
                runs = []
                for rep in range(args.repeats):
                    log(f"[{network}] {sim} repeat {rep + 1}/{args.repeats} ...")
                    extra = {"NUMBA_CACHE_DIR": os.path.join(cache_root, network)} if sim == "eventsim" else None
                    res = run_worker(python[sim], [sim, network, "--scale", repr(scale), "--t-sim", repr(t_sim[network]),
                                                   "--threads", str(args.threads), "--seed", str(args.seed)],
                                     args.threads, extra)
                    if res is None:
                        break
                    log(f"    build {res['build_s']:.2f} s, simulate {res['simulate_s']:.2f} s, "
                        f"{res['spikes']:,d} spikes, process {res['process_wall_s']:.1f} s")
                    runs.append(res)
                raw["results"].setdefault(network, {})[sim] = runs
                if runs:
                    summaries[network][sim] = summarise(runs, t_sim[network])
        scatter = None
        if not args.no_scatter:
            ok, why = importable(python["scatter"], "numba")
            if ok:
                log("scatter ceiling ...")
                scatter = run_worker(python["scatter"], ["scatter", "--scatter-events",
                                                         str(1 << (22 if args.quick else 24)), "--seed", str(args.seed)],
                                     args.threads)
                raw["scatter"] = scatter
            else:
                print(f"skipping the scatter ceiling: cannot import numba with {python['scatter']} ({why})")
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)

    for network in networks:
        if summaries.get(network):
            all_agree &= report_network(network, summaries[network], t_sim[network], args.rate_tolerance)
        else:
            print(f"\n== {network}: no results ==")

    if scatter is not None:
        cache, dram = scatter["cache"], scatter["dram"]
        cache_w, dram_w = scatter["cache_w"], scatter["dram_w"]
        print(f"\nsynaptic-scatter ceiling (1 core, best of 3), into 12,500 float64 (cache-resident) / "
              f"12.5 M float64 (100 MB):\n"
              f"  acc[idx[k]] += w    (one weight):         {cache:.3e} / {dram:.3e} events/s\n"
              f"  acc[idx[k]] += w[k] (per-synapse weights): {cache_w:.3e} / {dram_w:.3e} events/s")
        es = summaries.get("brunel", {}).get("eventsim")
        if es is not None:
            per_thread = es["events_per_s"] / args.threads
            print(f"eventsim Brunel (recurrent events over the whole simulate time): {es['events_per_s']:.3e} "
                  f"events/s = {es['events_per_s'] / cache_w:.1%} of the cache-resident per-synapse-weight "
                  f"ceiling ({es['events_per_s'] / cache:.1%} of the one-weight one), "
                  f"{es['events_per_s'] / dram_w:.1%} of the 100 MB one"
                  + (f" ({per_thread:.3e} per thread)" if args.threads > 1 else ""))
    if any(len(s) > 1 and "eventsim" in s for s in summaries.values()):
        print(f"\nmean rates {'agree' if all_agree else 'DO NOT agree'} across simulators "
              f"(tolerance {args.rate_tolerance:.0%} of eventsim's rate)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
        print(f"raw results: {args.json}")
    return 0 if all_agree else 1


if __name__ == "__main__":
    sys.exit(main())
