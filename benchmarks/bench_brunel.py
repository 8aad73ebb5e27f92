"""Brunel (2000) network, as ``examples/brunel2000.py``: construction and 1 s of simulation.

Scale 1.0 is NEST's ``brunel_delta_nest``: 12,500 ``iaf_psc_delta``-like
neurons, 15.6 M synapses, 1.5 ms delays, a 20 kHz Poisson train per neuron,
dt = 0.1 ms; scale 0.2 is the example's ``--quick`` size (2,500 neurons).
"""

import time

from . import BRUNEL_SCALES, DT, THREADS, WARMUP_STEPS, build_network, set_threads, warm_up
from .bench_scatter import TARGET_SIZES, random_targets, scatter_events_per_second

T_SIM = 1000.0  # ms of biological time per simulate call


class BrunelBuild:
    """Network construction: connectivity and the engine's arrays (``net.run(0)``), no stepping."""

    params = [BRUNEL_SCALES]
    param_names = ["scale"]
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, scale):
        set_threads(1)
        warm_up("brunel")

    def _build(self, scale):
        net, _ = build_network("brunel", scale)
        net.run(0.0)   # the engine's arrays are built on the first run; 0 ms takes no step
        return net

    def time_build(self, scale):
        self._build(scale)

    def peakmem_build(self, scale):
        self._build(scale)


class BrunelSimulate:
    """1 s of biological time, network built and engine compiled in ``setup``."""

    params = [BRUNEL_SCALES, THREADS]
    param_names = ["scale", "threads"]
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, scale, threads):
        set_threads(threads)
        self.net, self.recorders = build_network("brunel", scale)
        self.net.run(WARMUP_STEPS * DT)   # JIT compile / cache load + the first steps

    def time_simulate(self, scale, threads):
        self.net.run(T_SIM)

    def track_events_per_second(self, scale, threads):
        """Recurrent synaptic events delivered per second of wall time."""
        e0 = self.net.synaptic_events[0]
        t0 = time.perf_counter()
        self.net.run(T_SIM)
        elapsed = time.perf_counter() - t0
        return (self.net.synaptic_events[0] - e0) / elapsed

    track_events_per_second.unit = "events/s"


class BrunelScatterFraction:
    """Brunel's events/s (1 thread) as a fraction of the scatter ceiling, measured in the same process.

    The ceiling is ``bench_scatter.scatter_add`` into a cache-resident array
    of 12,500 float64: the best case for the delivery loop alone, with no
    neuron update, no delays and no spike bookkeeping.
    """

    params = [BRUNEL_SCALES]
    param_names = ["scale"]
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, scale):
        set_threads(1)
        self.net, _ = build_network("brunel", scale)
        self.net.run(WARMUP_STEPS * DT)
        n = TARGET_SIZES["cache"]
        self.targets = random_targets(n, 1 << 24, seed=1)
        scatter_events_per_second(n, targets=self.targets[:1024], repeats=1)   # compile

    def track_fraction_of_scatter_ceiling(self, scale):
        ceiling = scatter_events_per_second(TARGET_SIZES["cache"], targets=self.targets, repeats=3)
        e0 = self.net.synaptic_events[0]
        t0 = time.perf_counter()
        self.net.run(T_SIM)
        elapsed = time.perf_counter() - t0
        return (self.net.synaptic_events[0] - e0) / elapsed / ceiling

    track_fraction_of_scatter_ceiling.unit = "fraction"
