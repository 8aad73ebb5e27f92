"""Sparse activity: the event-driven engine against the clock engine, and the crossover rate.

The network: ``--neurons`` LIF neurons with delta synapses (tau_m 20 ms,
v_th 20, v_reset 10 mV, t_ref 2 ms), ``--indegree`` recurrent synapses each
(0.1 mV, delay 1.5 ms), and one private Poisson train per neuron of rate
``r`` whose every spike (20.5 mV) makes the neuron fire, so the mean rate is
close to ``r``.  Both engines simulate the same network; the script prints
the wall time per biological second of each and their ratio, for each rate
of ``--rates``, and the rate at which the clock engine starts to win
(interpolated on a log scale).

    python benchmarks/event_sparse.py                        # 1e6 neurons, 1e8 synapses, 0.5 Hz
    python benchmarks/event_sparse.py --neurons 100000 --rates 0.3 1 3 10 30 100
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import eventsim as es


def build(engine, n, k, rate, seed=1):
    net = es.Network(dt=0.1, seed=seed, engine=engine, weight_dtype="float32")
    pop = net.population(n, es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0), v_init=es.Uniform(0.0, 10.0))
    net.connect(pop, pop, es.FixedInDegree(k), weight=0.1, delay=1.5)
    noise = net.poisson(n, rate=rate)
    net.connect(noise, pop, es.OneToOne(), weight=20.5, delay=0.1)
    return net, net.record_spikes(pop)


def measure(engine, n, k, rate, t_sim):
    t0 = time.perf_counter()
    net, rec = build(engine, n, k, rate)
    net.run(0.1)  # engine build and compilation
    t1 = time.perf_counter()
    net.run(t_sim)
    t2 = time.perf_counter()
    return dict(build=t1 - t0, sim=t2 - t1, per_s=(t2 - t1) / (t_sim * 1e-3),
                rate=len(rec) / n / ((t_sim + 0.1) * 1e-3), events=sum(net.synaptic_events))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=1_000_000)
    ap.add_argument("--indegree", type=int, default=100)
    ap.add_argument("--rates", type=float, nargs="+", default=[0.5], help="Poisson rates (Hz)")
    ap.add_argument("--t-event", type=float, default=1000.0, help="ms simulated by the event engine")
    ap.add_argument("--t-clock", type=float, default=200.0, help="ms simulated by the clock engine")
    args = ap.parse_args(argv)
    n, k = args.neurons, args.indegree
    print(f"{n:,d} neurons, {n * k:,d} recurrent synapses, 1 thread for the event engine, "
          f"clock engine on all threads")
    print(f"{'rate in':>8} {'rate out':>9} {'event s/s':>10} {'clock s/s':>10} {'clock/event':>12}")
    rows = []
    for r in args.rates:
        ev = measure("event", n, k, r, args.t_event)
        ck = measure("clock", n, k, r, args.t_clock)
        ratio = ck["per_s"] / ev["per_s"]
        rows.append((ev["rate"], ratio))
        print(f"{r:8.2f} {ev['rate']:9.2f} {ev['per_s']:10.3f} {ck['per_s']:10.3f} {ratio:12.1f}"
              f"   (build event {ev['build']:.1f} s, clock {ck['build']:.1f} s; clock rate {ck['rate']:.2f} Hz)")
    if len(rows) > 1:
        rates, ratios = np.array(rows).T
        lr = np.log(ratios)
        cross = None
        for i in range(len(rows) - 1):
            if lr[i] >= 0 > lr[i + 1]:
                f = lr[i] / (lr[i] - lr[i + 1])
                cross = float(np.exp(np.log(rates[i]) + f * (np.log(rates[i + 1]) - np.log(rates[i]))))
        print("crossover (clock engine faster above):", f"{cross:.2f} Hz" if cross else "not within the rates")


if __name__ == "__main__":
    main()
