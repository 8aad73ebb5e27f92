"""Where the clock engine's time goes on the Brunel (2000) network: a profile by phase.

Runs ``examples/brunel2000.py`` three times, each in this process after a
compiling first step: the whole network, without the Poisson drive (the
neuron update alone: without input nobody fires), and without the recurrent
projections (neuron update + Poisson drive).  The differences give the time
of the neuron update, of the Poisson drive (draws and their additions) and
of recurrent delivery (plus the spike gathering it causes), per biological
second and per unit of work.

Usage::

    python benchmarks/clock_phases.py                   # 1 thread, 300 ms per variant
    python benchmarks/clock_phases.py --threads 2 --t-sim 1000

This is a script, not an asv suite (nothing runs on import).
"""

from __future__ import annotations

import argparse
import os
import runpy
import time

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def build(variant, scale, seed=1):
    """The Brunel network of the example with ``variant`` in {"full", "no_poisson", "no_recurrent"}."""
    import eventsim as es

    mod = runpy.run_path(os.path.join(EXAMPLES, "brunel2000.py"), run_name="brunel2000")
    real_connect = es.Network.connect

    def connect(self, pre, post, rule, weight, delay=None, round_delays=False):
        poisson = getattr(pre, "kind", None) == "source"
        if (variant == "no_poisson" and poisson) or (variant == "no_recurrent" and not poisson):
            return None
        return real_connect(self, pre, post, rule, weight, delay, round_delays)

    es.Network.connect = connect
    try:
        return mod["build"](scale, seed=seed)[0]
    finally:
        es.Network.connect = real_connect


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--t-sim", type=float, default=300.0, help="simulated time per variant (ms)")
    args = ap.parse_args(argv)
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(args.threads)
    wall, events = {}, {}
    try:
        for variant in ("full", "no_poisson", "no_recurrent"):
            net = build(variant, args.scale)
            net.run(net.dt)
            t0 = time.perf_counter()
            net.run(args.t_sim)
            wall[variant] = (time.perf_counter() - t0) / (args.t_sim * 1e-3)
            events[variant] = net.synaptic_events
            n, steps_per_s = net.n_neurons, 1000.0 / net.dt
    finally:
        numba.set_num_threads(before)
    rec_events = events["full"][0] / (args.t_sim * 1e-3)
    draws = n * steps_per_s  # one Poisson channel per neuron
    neuron = wall["no_poisson"]
    poisson = wall["no_recurrent"] - neuron
    delivery = wall["full"] - wall["no_recurrent"]
    print(f"Brunel scale {args.scale}: {n:,d} neurons, {args.threads} thread(s), seconds per biological second")
    print(f"  total              {wall['full']:7.3f} s")
    print(f"  neuron update      {neuron:7.3f} s   {neuron / (n * steps_per_s) * 1e9:6.2f} ns per neuron-step")
    print(f"  Poisson drive      {poisson:7.3f} s   {poisson / draws * 1e9:6.2f} ns per draw")
    print(f"  recurrent delivery {delivery:7.3f} s   {delivery / max(rec_events, 1) * 1e9:6.2f} ns per event "
          f"({rec_events:.3e} events)")
    return wall


if __name__ == "__main__":
    main()
