"""Sparse activity on both engines (the network of ``benchmarks/event_sparse.py``).

20,000 LIF neurons (delta synapses), in-degree 100, each driven to fire by a
private Poisson train of ``rate`` Hz.  ``time_simulate`` runs 500 ms of
biological time; comparing the engines across rates shows where the event
engine stops paying off (the crossover, documented in the README).
"""

import importlib.util

from . import REPO, set_threads

N, K, T_SIM = 20_000, 100, 500.0


def _module():
    spec = importlib.util.spec_from_file_location("event_sparse", REPO / "benchmarks" / "event_sparse.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class SparseActivity:
    params = [["event", "clock"], [0.3, 1.0, 10.0]]
    param_names = ["engine", "rate"]
    number = 1
    repeat = 3
    warmup_time = 0.0
    timeout = 600

    def setup(self, engine, rate):
        set_threads(1)
        self.net, self.rec = _module().build(engine, N, K, rate)
        self.net.run(0.1)  # build and compile outside the timing

    def time_simulate(self, engine, rate):
        self.net.run(T_SIM)

    def track_events_per_second_of_wall_time(self, engine, rate):
        import time

        e0 = sum(self.net.synaptic_events)
        t0 = time.perf_counter()
        self.net.run(T_SIM)
        return (sum(self.net.synaptic_events) - e0) / (time.perf_counter() - t0)
