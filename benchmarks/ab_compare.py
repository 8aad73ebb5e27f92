"""Interleaved A/B timing: the clock engine of a git ref against the working tree, on the example networks.

Usage (from the repository root)::

    python benchmarks/ab_compare.py                     # main against the working tree
    python benchmarks/ab_compare.py --ref HEAD~1 --rounds 7 --networks brunel cuba microcircuit
    python benchmarks/ab_compare.py --engine event --rounds 7   # the event engine's networks

``--engine event`` times the event engine instead, on the sparse network of
``benchmarks/event_sparse.py`` (LIF, delta synapses) and the same network
with exponential current synapses (every crossing found by the search),
with adaptive thresholds (ALIF), with alpha-shaped current synapses
(``sparse_alpha``: not in refs before they ran in the event engine), and
with half of the neurons on delta and half on exponential synapses (two
families in one network), built with
the working tree's ``benchmarks/event_sparse.py`` or the same code.

The ref's ``eventsim`` package is exported (``git archive``) into a
directory of the system's temporary folder named by its commit, which is
kept, so its Numba cache survives between invocations.  Each measurement is
a fresh process (``A`` imports the ref's package, ``B`` the working tree's)
that builds the network with the working tree's ``examples/<name>.py``,
runs a few steps to load or compile the kernels, then times ``net.run(T)``
on the number of threads asked for.  The processes alternate ``A B A B
...`` so that a change in the machine's load affects both sides alike.  The
script prints, per network, the median and the fastest simulate time of
each side and their ratios ``B / A`` (the fastest run is the one least
disturbed by other processes; the CPU time of the process, which leaves
out the time it waited for a core, is the steadier figure on a shared
machine with one thread) and the events (spikes recorded, synaptic events) of each
side, which must be equal: the two sides must simulate the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: network -> (builder code returning (net, spike recorders), default simulated time in ms)
NETWORKS = {
    "brunel": ("m = load('brunel2000'); net, _, _, a, b = m.build({scale}, 1, 0.1); recs = [a, b]", 2000.0, 0.5),
    "cuba": ("m = load('cuba'); net, _, _, a = m.build(1, 0.1); recs = [a]", 5000.0, 1.0),
    "microcircuit": ("m = load('microcircuit'); net, _, a = m.build({scale}, 1, 0.1); recs = [a]", 1000.0, 0.2),
}

_SPARSE = ("m = load_bench('event_sparse'); net, a = m.build('event', int({scale}), 100, 10.0); recs = [a]")
_SPARSE_MODEL = ("net = eventsim.Network(dt=0.1, seed=1, engine='event', weight_dtype='float32'); "
                 "pop = net.population(int({scale}), {model}, v_init=eventsim.Uniform(0.0, 10.0)); "
                 "net.connect(pop, pop, eventsim.FixedInDegree(100), weight={w}, delay=1.5); "
                 "noise = net.poisson(int({scale}), rate=10.0); "
                 "net.connect(noise, pop, eventsim.OneToOne(), weight={w_in}, delay=0.1); "
                 "recs = [net.record_spikes(pop)]")
#: the event engine's networks (``--engine event``): builder code, simulated time (ms), neurons
EVENT_NETWORKS = {
    "sparse": (_SPARSE, 500.0, 20000),
    "sparse_exp": (_SPARSE_MODEL.replace("{model}", "eventsim.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, "
                                                    "tau_syn_ex=2.0, tau_syn_in=2.0)")
                   .replace("{w}", "10.0").replace("{w_in}", "4000.0"), 500.0, 20000),
    "sparse_alif": (_SPARSE_MODEL.replace("{model}", "eventsim.ALIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, "
                                                     "tau_theta=50.0, d_theta=0.5)")
                    .replace("{w}", "0.1").replace("{w_in}", "25.0"), 500.0, 20000),
    # alpha synapses: the charge of a weight is e times that of the exponential one; weights scaled by 1/e
    "sparse_alpha": (_SPARSE_MODEL.replace("{model}", "eventsim.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, "
                                                      "tau_syn_ex=2.0, tau_syn_in=2.0, psc='alpha')")
                     .replace("{w}", "3.6788").replace("{w_in}", "1471.5"), 500.0, 20000),
    "sparse_mixed": (("net = eventsim.Network(dt=0.1, seed=1, engine='event', weight_dtype='float32'); "
                     "a = net.population(int({scale}) // 2, eventsim.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0), "
                     "v_init=eventsim.Uniform(0.0, 10.0)); "
                     "b = net.population(int({scale}) // 2, eventsim.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, "
                     "t_ref=2.0, tau_syn_ex=2.0, tau_syn_in=2.0), v_init=eventsim.Uniform(0.0, 10.0)); "
                     "net.connect(a | b, a | b, eventsim.FixedInDegree(100), weight=0.1, delay=1.5); "
                     "noise = net.poisson(int({scale}), rate=10.0); "
                     "net.connect(noise, a | b, eventsim.OneToOne(), weight=es_w, delay=0.1); "
                     "recs = [net.record_spikes(a | b)]").replace("es_w", "20.5"), 500.0, 20000),
}

CHILD = """
import importlib.util, json, sys, time
import numba
numba.set_num_threads({threads})
import eventsim
def load(name):
    spec = importlib.util.spec_from_file_location('ex_' + name, {examples!r} + '/' + name + '.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); return mod
def load_bench(name):
    spec = importlib.util.spec_from_file_location('bench_' + name, {benchmarks!r} + '/' + name + '.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); return mod
{build}
net.run(1.0)
t0 = time.perf_counter(); c0 = time.process_time()
net.run({t_sim})
wall = time.perf_counter() - t0; cpu = time.process_time() - c0
print(json.dumps(dict(wall=wall, cpu=cpu, spikes=[len(r.times) for r in recs], events=list(net.synaptic_events),
                      package=eventsim.__file__)))
"""


def export(ref):
    """Directory holding the ``eventsim`` package of ``ref`` (exported once per commit)."""
    sha = subprocess.run(["git", "rev-parse", ref], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip()
    out = Path(tempfile.gettempdir()) / f"eventsim-ab-{sha[:12]}"
    if not (out / "eventsim" / "__init__.py").exists():
        out.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "eventsim"], cwd=REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out, sha[:12]


def measure(path, network, scale, t_sim, threads):
    build, _, _ = NETWORKS[network] if network in NETWORKS else EVENT_NETWORKS[network]
    code = CHILD.format(threads=threads, examples=str(REPO / "examples"), benchmarks=str(REPO / "benchmarks"),
                        build=build.format(scale=scale), t_sim=t_sim)
    env = dict(os.environ, PYTHONPATH=str(path), NUMBA_NUM_THREADS=str(max(threads, 1)))
    env.pop("NUMBA_CACHE_DIR", None)  # each side keeps its in-tree cache
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tempfile.gettempdir())
    if out.returncode != 0:
        raise RuntimeError(f"{network} with {path} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", default="main", help="git ref of side A (default: main)")
    ap.add_argument("--rounds", type=int, default=5, help="A/B pairs per network (default 5)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--engine", default="clock", choices=("clock", "event"),
                    help="the engine timed (default clock; event: the networks of EVENT_NETWORKS)")
    ap.add_argument("--networks", nargs="+", default=None, choices=list(NETWORKS) + list(EVENT_NETWORKS),
                    help="default: every network of the engine")
    ap.add_argument("--scale", type=float, default=None, help="scale of brunel / microcircuit, neurons of the event networks (default: per network)")
    ap.add_argument("--t-sim", type=float, default=None, help="simulated time in ms (default: per network)")
    args = ap.parse_args(argv)
    table = EVENT_NETWORKS if args.engine == "event" else NETWORKS
    if args.networks is None:
        args.networks = list(table)
    wrong = [n for n in args.networks if n not in table]
    if wrong:
        ap.error(f"--networks {' '.join(wrong)}: not networks of the {args.engine} engine ({', '.join(table)})")
    a_path, sha = export(args.ref)
    print(f"A = {args.ref} ({sha}), B = working tree; {args.engine} engine, {args.rounds} interleaved rounds, "
          f"{args.threads} thread(s)")
    for network in args.networks:
        _, t_default, s_default = table[network]
        t_sim = args.t_sim or t_default
        scale = args.scale or s_default
        for side, path in (("A", a_path), ("B", REPO)):  # compile or load the kernels once, untimed
            measure(path, network, scale, 1.0, args.threads)
        a, b = [], []
        for _ in range(args.rounds):
            a.append(measure(a_path, network, scale, t_sim, args.threads))
            b.append(measure(REPO, network, scale, t_sim, args.threads))
        ta = statistics.median(r["wall"] for r in a)
        tb = statistics.median(r["wall"] for r in b)
        same = all((r["spikes"], r["events"]) == (a[0]["spikes"], a[0]["events"]) for r in a + b)
        runs_a = " ".join(f"{r['wall']:.3f}" for r in a)
        runs_b = " ".join(f"{r['wall']:.3f}" for r in b)
        ma = min(r["wall"] for r in a)
        mb = min(r["wall"] for r in b)
        ca = statistics.median(r["cpu"] for r in a)
        cb = statistics.median(r["cpu"] for r in b)
        print(f"{network:13s} scale {scale:g}, {t_sim:g} ms: median A {ta:.3f} s  B {tb:.3f} s  B/A {tb / ta:.3f}; "
              f"fastest A {ma:.3f} s  B {mb:.3f} s  B/A {mb / ma:.3f}; median CPU time A {ca:.3f} s  B {cb:.3f} s  "
              f"B/A {cb / ca:.3f}  "
              f"(A runs {runs_a}; B runs {runs_b})  "
              f"events {'equal' if same else 'DIFFER'}: spikes {a[0]['spikes']} / {b[0]['spikes']}, "
              f"synaptic {a[0]['events']} / {b[0]['events']}")


if __name__ == "__main__":
    main()
