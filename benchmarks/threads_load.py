"""Threads under load: the clock engine on 1 and 2 threads, with and without a competing CPU-bound process.

The engine's thread team meets at a barrier once per step (CUBA: every
delay is one step) or once per interval of steps (Brunel).  A thread that
waits spins briefly, then yields, then sleeps until it is woken, and the
engine's team tuner (eventsim.engines.plan.TeamTuner) picks how many of the
threads to use from the idle cores and measured wall times, so that a busy
machine costs at most the CPU share it takes away.  This script runs
the network for ``--ms`` ms of biological time, after a warm-up run that
compiles (or loads) the kernels, in four configurations: 1 thread and 2
threads, each alone and beside ``--competitors`` busy processes (a Python
``while True`` loop each); it prints the wall times, and the ratios against
1 thread.  The target on a 2-core machine: 2 threads beside one competing
process no slower than 1 thread beside it.

    python benchmarks/threads_load.py                    # CUBA, 1000 ms
    python benchmarks/threads_load.py --network brunel --scale 0.2 --ms 500

Needs ``NUMBA_NUM_THREADS >= 2`` (the default on a machine with 2 or more
cores).  Timings depend on what else the machine runs: repeat them.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numba

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import build_network  # noqa: E402


@contextlib.contextmanager
def competitors(n):
    """``n`` CPU-bound processes running for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.2)  # let them start spinning
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def timed_run(network, scale, threads, ms):
    """Wall time (s) of ``ms`` ms of the network on ``threads`` threads (built and warmed up first)."""
    numba.set_num_threads(threads)
    net, _ = build_network(network, scale=scale)
    net.run(1.0)  # plan, compilation (or cache load), thread partition
    t0 = time.perf_counter()
    net.run(ms)
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", choices=["cuba", "brunel"], default="cuba")
    ap.add_argument("--scale", type=float, default=0.2, help="Brunel network scale (1.0 = 12,500 neurons)")
    ap.add_argument("--ms", type=float, default=1000.0, help="biological time per measurement (ms)")
    ap.add_argument("--repeat", type=int, default=3, help="measurements per configuration (median)")
    ap.add_argument("--competitors", type=int, default=1, help="competing CPU-bound processes")
    args = ap.parse_args(argv)
    if numba.config.NUMBA_NUM_THREADS < 2:
        sys.exit("needs NUMBA_NUM_THREADS >= 2")
    timed_run(args.network, args.scale, 1, 1.0)  # compile outside the measurements
    results = {}
    for load in (0, args.competitors):
        for threads in (1, 2):
            ts = []
            for _ in range(args.repeat):
                with competitors(load):
                    ts.append(timed_run(args.network, args.scale, threads, args.ms))
            results[threads, load] = statistics.median(ts)
            print(f"{threads} thread(s), {load} competing process(es): {results[threads, load]:.3f} s "
                  f"(runs: {', '.join(f'{t:.3f}' for t in ts)})", flush=True)
    base = results[1, 0]
    print(f"\n{args.network}, {args.ms:g} ms; wall time relative to 1 thread alone ({base:.3f} s):")
    for (threads, load), t in results.items():
        print(f"  {threads} thread(s), {load} competitor(s): {t / base:5.2f}")
    ratio = results[2, args.competitors] / results[1, args.competitors]
    print(f"2 threads / 1 thread beside {args.competitors} competing process(es): {ratio:.2f} "
          f"(target <= 1.00)")


if __name__ == "__main__":
    main()
