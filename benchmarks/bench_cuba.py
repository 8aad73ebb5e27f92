"""Brette et al. (2007) CUBA network, as ``examples/cuba.py``: construction and 10 s of simulation.

4,000 neurons with exponential current synapses, p = 0.02 (320 k synapses),
delay 0.1 ms, self-sustained activity; dt = 0.1 ms.  Small and slow-firing,
so it measures the per-step and per-neuron cost more than delivery.
"""

import time

from . import DT, THREADS, WARMUP_STEPS, build_network, set_threads, warm_up

T_SIM = 10_000.0  # ms of biological time per simulate call


class CubaBuild:
    """Network construction: connectivity and the engine's arrays (``net.run(0)``), no stepping."""

    params = [[4000]]
    param_names = ["n_neurons"]   # fixed by the benchmark; a parameter only to label the results
    number = 1
    warmup_time = 0.0
    timeout = 300

    def setup(self, n_neurons):
        set_threads(1)
        warm_up("cuba")

    def _build(self):
        net, _ = build_network("cuba")
        net.run(0.0)
        return net

    def time_build(self, n_neurons):
        self._build()

    def peakmem_build(self, n_neurons):
        self._build()


class CubaSimulate:
    """10 s of biological time, network built and engine compiled in ``setup``."""

    params = [THREADS]
    param_names = ["threads"]
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, threads):
        set_threads(threads)
        self.net, self.recorders = build_network("cuba")
        self.net.run(WARMUP_STEPS * DT)

    def time_simulate(self, threads):
        self.net.run(T_SIM)

    def track_events_per_second(self, threads):
        """Recurrent synaptic events delivered per second of wall time."""
        e0 = self.net.synaptic_events[0]
        t0 = time.perf_counter()
        self.net.run(T_SIM)
        elapsed = time.perf_counter() - t0
        return (self.net.synaptic_events[0] - e0) / elapsed

    track_events_per_second.unit = "events/s"
