"""The synaptic-scatter ceiling: how fast one core can add weights into random targets.

Delivering a spike is, at its core, ``acc[target[k]] += w`` for each of the
sender's synapses: a sequential read of target indices and a random
read-modify-write of the target array.  A bare Numba loop doing exactly that
bounds the events per second that any clock-driven engine can reach on
this machine, so eventsim's throughput is reported as a fraction of it
(``bench_brunel.BrunelScatterFraction``, and ``peers/cpu_networks.py``).

Two target arrays: 12,500 float64 (100 kB, the Brunel network's neurons,
resident in L2) and 12.5 M float64 (100 MB, far larger than any cache).
This module imports only NumPy and Numba (the peer script loads it by path).
"""

import time

import numba
import numpy as np

#: Target-array sizes (number of float64), by label.
TARGET_SIZES = {"cache": 12_500, "dram": 12_500_000}

#: Events (index reads + scattered adds) per measurement: 64 MB of int32 indices.
N_EVENTS = 1 << 24


@numba.njit(boundscheck=False, nogil=True)
def scatter_add(acc, targets, w):
    """``acc[targets[k]] += w`` for every k, in order (the delivery inner loop)."""
    for k in range(targets.size):
        acc[targets[k]] += w


@numba.njit(boundscheck=False, nogil=True)
def scatter_add_weights(acc, targets, w):
    """``acc[targets[k]] += w[k]`` for every k, in order: per-synapse weights, as a general row is stored."""
    for k in range(targets.size):
        acc[targets[k]] += w[k]


def random_targets(n_targets, n_events, seed=0):
    """``n_events`` target indices drawn uniformly from ``[0, n_targets)`` (int32)."""
    return np.random.default_rng(seed).integers(0, n_targets, size=n_events, dtype=np.int32)


def scatter_events_per_second(n_targets, n_events=N_EVENTS, seed=0, repeats=3, targets=None, weights=False):
    """Best-of-``repeats`` events per second of :func:`scatter_add` (compile excluded).

    ``weights=True``: :func:`scatter_add_weights`, one float64 weight per
    event read alongside its target index.
    """
    if targets is None:
        targets = random_targets(n_targets, n_events, seed)
    acc = np.zeros(n_targets)
    if weights:
        w = np.random.default_rng(seed + 1).random(targets.size)
        run = lambda: scatter_add_weights(acc, targets, w)  # noqa: E731
        scatter_add_weights(acc, targets[:16], w[:16])    # compile
    else:
        run = lambda: scatter_add(acc, targets, 0.1)  # noqa: E731
        scatter_add(acc, targets[:16], 0.1)          # compile
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return targets.size / best


class ScatterCeiling:
    """``acc[idx[k]] += w`` over 2**24 random indices into a cache-resident or a 100 MB array."""

    params = [list(TARGET_SIZES.values())]
    param_names = ["n_targets"]
    timeout = 300

    def setup(self, n_targets):
        self.targets = random_targets(n_targets, N_EVENTS, seed=1)
        self.acc = np.zeros(n_targets)
        scatter_add(self.acc, self.targets[:16], 0.1)   # JIT warm-up, outside the timed region

    def time_scatter_add(self, n_targets):
        scatter_add(self.acc, self.targets, 0.1)

    def track_events_per_second(self, n_targets):
        return scatter_events_per_second(n_targets, targets=self.targets, repeats=3)

    track_events_per_second.unit = "events/s"

    def track_events_per_second_weights(self, n_targets):
        return scatter_events_per_second(n_targets, targets=self.targets, repeats=3, weights=True)

    track_events_per_second_weights.unit = "events/s"
