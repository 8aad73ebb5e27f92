"""The clock engine over MPI ranks: speed-up, communication and memory per rank at 1, 2, ... ranks.

``python benchmarks/mpi_scaling.py`` runs each network under ``mpiexec -n R`` for every ``R`` of
``--ranks`` (one Numba thread per rank unless ``--threads``), and prints one line per run:

* ``wall``: seconds of the timed ``run()`` (the slowest rank), after a warm-up run that compiles or
  loads the kernels and builds the engine;
* ``speed-up``: the 1-rank wall time over this one (1 rank is the single process, no MPI code);
* ``comm``: the share of the wall time spent in the spike exchange (its collectives, waiting
  for the other ranks included; on ranks of several threads also the sorting of the exchanged
  lists), the largest rank's;
* ``busy``: the largest rank's wall time outside the exchange, and ``busy speed-up`` the 1-rank
  wall time over it: the speed-up to expect where every rank has a core of its own (on a
  loaded machine the ranks wait for each other's CPU time inside the exchange);
* ``bytes/interval``: bytes one rank receives per exchange (one per interval of the shortest delay);
* ``conn MB``: connectivity held by a rank (the projections' arrays and the engine's CSR arrays),
  the largest rank's, and its ratio to one process's;
* ``peak MB``: peak resident memory of a rank (the largest).

``--network brunel`` is ``examples/brunel2000.py`` (scale 1: 12,500 neurons, 15.6 M synapses);
``--network microcircuit`` is ``examples/microcircuit.py`` (Potjans & Diesmann 2014, at ``--scale``).
Needs the ``mpi`` extra (mpi4py and an MPI such as the ``mpich`` wheel).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _example(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"ex_{name}", ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _build(network, scale):
    if network == "brunel":
        net, *_ = _example("brunel2000").build(scale=scale, seed=1)
    else:
        net, *_ = _example("microcircuit").build(scale=scale, seed=1)
    return net


def _connectivity_bytes(net):
    """Bytes of connectivity this process holds: projections plus the engine's CSR arrays."""
    total = 0
    for p in net.projections:
        for a in (p.pre, p.post, p._weight, p.delay_steps):
            total += 0 if a is None else a.nbytes
    plan = net._plan
    for a in (plan._syn_off, plan._syn_w, plan._row_ptr, plan.conn.row_split, *plan._row_delays):
        total += a.nbytes
    return total


def worker(args):
    """One rank's part of one run (started by mpiexec); rank 0 prints a JSON line."""
    t0 = time.perf_counter()
    net = _build(args.network, args.scale)
    net.run(args.warmup)  # compiles or loads the kernels, builds the engine
    build = time.perf_counter() - t0
    plan = net._plan
    c0 = getattr(plan, "comm_seconds", 0.0)
    b0, r0 = getattr(plan, "comm_bytes", 0), getattr(plan, "comm_rounds", 0)
    if net.comm is not None:
        net.comm.Barrier()
    t0 = time.perf_counter()
    net.run(args.t_sim)
    wall = time.perf_counter() - t0
    plan = net._plan
    comm = getattr(plan, "comm_seconds", 0.0) - c0
    rounds = getattr(plan, "comm_rounds", 0) - r0
    per_interval = (getattr(plan, "comm_bytes", 0) - b0) / max(rounds, 1)
    row = dict(wall=wall, comm=comm, busy=wall - comm, bytes_interval=per_interval, conn=_connectivity_bytes(net),
               peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, build=build)
    rows = [row] if net.comm is None else net.comm.gather(row, root=0)
    events = net.synaptic_events
    if net.rank == 0:
        out = {k: max(r[k] for r in rows) for k in row}
        out.update(ranks=net.n_ranks, network=args.network, scale=args.scale, t_sim=args.t_sim,
                   events=events, neurons=net.n_neurons, steps=int(round(args.t_sim / net.dt)),
                   intervals=rounds)
        print(json.dumps(out), flush=True)


#: Latency and inverse bandwidth of the Allgather model (s, s/byte): an InfiniBand-class network,
#: ``alpha * ceil(log2 R) + beta * bytes received`` per exchange (recursive doubling).
ALPHA = 5e-6
BETA = 1.0 / 10e9
#: Neuron update with its Poisson drive, per neuron and step (s): 0.8 ns update + 2.8 ns Poisson draw,
#: measured on one core (README, "Threads, determinism, long runs").
C_NEURON = 3.6e-9

#: Networks of the scaling model: neurons, synapses, mean rate (Hz), shortest delay (ms).
MODEL_NETWORKS = {"microcircuit (Potjans & Diesmann 2014)": (77_169, 3.0e8, 3.4, 0.1),
                  "1e8 neurons, 1e4 synapses each": (1e8, 1e12, 5.0, 1.5)}


def model(c_event, overhead, dt=0.1, ranks=(1, 2, 4, 16, 64, 256, 1024)):
    """Predicted wall seconds per biological second: ``compute / R + intervals * exchange``.

    ``c_event`` (s per synaptic event) and ``overhead`` (s per interval and rank outside the
    collective) come from the measured runs; the exchange costs ``overhead + ALPHA * ceil(log2 R) +
    BETA * 8 * (spikes per interval + R * (2 + steps per interval))`` (every rank receives every
    spike as one int64, plus each rank's header)."""
    import math

    out = {}
    for name, (n, syn, rate, dmin) in MODEL_NETWORKS.items():
        steps = 1000.0 / dt
        compute = n * steps * C_NEURON + syn * rate * c_event
        per_interval = max(int(round(dmin / dt)) - 1, 1)
        intervals = steps / per_interval
        spikes = n * rate * per_interval * dt * 1e-3
        row = []
        for R in ranks:
            x = overhead + (ALPHA * math.ceil(math.log2(R)) + BETA * 8 * (spikes + R * (2 + per_interval)) if R > 1
                            else 0.0)
            row.append((R, compute / R + (intervals * x if R > 1 else 0.0)))
        out[name] = row
    return out


def _mpiexec():
    path = os.pathsep.join([sysconfig.get_path("scripts"), str(Path(sys.executable).parent),
                            os.environ.get("PATH", "")])
    return shutil.which("mpiexec", path=path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--network", choices=["brunel", "microcircuit"], nargs="+", default=["brunel", "microcircuit"])
    ap.add_argument("--scale", type=float, default=None, help="default: brunel 1.0, microcircuit 0.1")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--threads", type=int, default=1, help="Numba threads per rank")
    ap.add_argument("--t-sim", type=float, default=1000.0, help="timed biological time (ms)")
    ap.add_argument("--warmup", type=float, default=20.0, help="untimed first run (ms)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        args.network = args.network[0]
        worker(args)
        return
    exe = _mpiexec()
    if exe is None:
        sys.exit("mpiexec not found: pip install 'eventsim[mpi]'")
    env = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    print(f"{'network':>12} {'scale':>5} {'ranks':>5} {'wall s':>7} {'speed-up':>8} {'comm':>6} {'busy s':>6} "
          f"{'busy speed-up':>13} "
          f"{'bytes/interval':>14} {'conn MB':>8} {'conn ratio':>10} {'peak MB':>8}")
    overheads = {}
    for network in args.network:
        scale = args.scale if args.scale is not None else (1.0 if network == "brunel" else 0.1)
        base = None
        for R in args.ranks:
            cmd = [exe, "-n", str(R), sys.executable, str(Path(__file__).resolve()), "--worker", "--network",
                   network, "--scale", str(scale), "--t-sim", str(args.t_sim), "--warmup", str(args.warmup)]
            res = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if res.returncode != 0:
                sys.exit(res.stderr[-3000:])
            row = json.loads(res.stdout.strip().splitlines()[-1])
            if base is None:
                base = row
            if network == "brunel" and R == 1:
                ns = row["neurons"] * row["steps"]
                c_event = max(row["wall"] - ns * C_NEURON, 0.0) / max(row["events"][0], 1)
            if R > 1:  # each rank's time outside the collective beyond its share of the 1-rank time
                overheads[network] = max(row["busy"] - base["wall"] / R, 0.0) / max(row["intervals"], 1)
            print(f"{network:>12} {scale:>5g} {R:>5d} {row['wall']:>7.2f} {base['wall'] / row['wall']:>8.2f} "
                  f"{row['comm'] / row['wall']:>6.1%} {row['busy']:>6.2f} {base['wall'] / row['busy']:>13.2f} "
                  f"{row['bytes_interval']:>14.0f} {row['conn'] / 2**20:>8.1f} "
                  f"{row['conn'] / base['conn']:>10.2f} {row['peak'] / 2**20:>8.0f}", flush=True)
    if "brunel" in args.network and overheads:
        # the microcircuit exchanges at every step: the cleanest measure of the cost per interval
        overhead = overheads.get("microcircuit", max(overheads.values()))
        print(f"\nscaling model: {c_event * 1e9:.2f} ns per recurrent event (Brunel, 1 rank, after "
              f"{C_NEURON * 1e9:.1f} ns per neuron-step), "
              + ", ".join(f"{k} {v * 1e6:.0f} us" for k, v in overheads.items())
              + f" per interval outside the collective (the microcircuit's taken); Allgather {ALPHA * 1e6:.0f} us x "
              f"log2 R + {BETA * 1e9:.1f} ns/byte")
        for name, row in model(c_event, overhead).items():
            print(f"  {name}: " + ", ".join(f"{R} ranks {t:.3g} s" for R, t in row) + " (per biological second)")
            fast = model(c_event, 5e-6)[name]
            print(f"    with 5 us per interval: "
                  + ", ".join(f"{R}: {t:.3g} s" for R, t in fast))


if __name__ == "__main__":
    main()
