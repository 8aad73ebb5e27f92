"""Recorders: spikes and state variables of chosen neurons."""

from __future__ import annotations

import numpy as np


class _Recorder:
    def __init__(self, net, group):
        self._net = net
        self.group = group
        self._ids = group.ids
        order = np.argsort(self._ids, kind="stable")
        self._sorted_ids = self._ids[order]
        self._pos = order

    def _local(self, global_ids):
        """Positions of ``global_ids`` within the recorded group."""
        return self._pos[np.searchsorted(self._sorted_ids, global_ids)]


class SpikeRecorder(_Recorder):
    """Spikes of a group of neurons.

    Attributes
    ----------
    senders : ndarray of int64
        Index of the spiking neuron *within the recorded group* (0-based).
    neuron_ids : ndarray of int64
        Network-wide neuron index of the spiking neuron.
    steps : ndarray of int64
        Step stamp of each spike; the spike time is ``steps * dt``.
    times : ndarray of float64
        Spike times (ms).  Spikes are in time order, ties by neuron index.
    """

    def __init__(self, net, group):
        super().__init__(net, group)
        self._chunks_steps = []
        self._chunks_ids = []
        self._cache = None

    def _append(self, steps, ids):
        if steps.size:
            self._chunks_steps.append(steps)
            self._chunks_ids.append(ids)
            self._cache = None

    def _arrays(self):
        if self._cache is None:
            if self._chunks_steps:
                steps = np.concatenate(self._chunks_steps)
                ids = np.concatenate(self._chunks_ids)
                self._chunks_steps, self._chunks_ids = [steps], [ids]
            else:
                steps = np.zeros(0, np.int64)
                ids = np.zeros(0, np.int64)
            self._cache = (steps, ids)
        return self._cache

    @property
    def steps(self):
        return self._arrays()[0].copy()

    @property
    def neuron_ids(self):
        return self._arrays()[1].copy()

    @property
    def senders(self):
        return self._local(self._arrays()[1])

    @property
    def times(self):
        return self._arrays()[0] * self._net.dt

    def __len__(self):
        return int(self._arrays()[0].size)

    def rates(self, duration=None):
        """Mean firing rate of each neuron of the group (Hz) over ``duration`` ms (default: all simulated time)."""
        duration = self._net.t if duration is None else float(duration)
        if duration <= 0:
            raise ValueError(f"duration={duration} must be > 0 ms")
        counts = np.bincount(self.senders, minlength=len(self.group))
        return counts / (duration * 1e-3)

    def __repr__(self):
        return f"SpikeRecorder({len(self.group)} neurons, {len(self)} spikes)"


class StateRecorder(_Recorder):
    """Samples of one state variable of a group of neurons every ``interval_steps`` steps.

    Attributes
    ----------
    variable : str
        The recorded state variable (``"v"`` in mV, ``"i_ex"``/``"i_in"`` in pA,
        ``"theta"`` and ``"v_th"`` in mV).
    steps : ndarray of int64
        Sample stamps; a sample at stamp ``k`` is the state at time ``k*dt``,
        after the update that ends there.
    times : ndarray of float64
        Sample times (ms).
    values : ndarray of float64, shape (n_samples, n_neurons)
        The samples, columns in the order of the recorded group.
    """

    def __init__(self, net, group, variable, interval_steps):
        super().__init__(net, group)
        self.variable = variable
        self.interval_steps = int(interval_steps)
        self._chunks = []
        self._steps = []

    def _append(self, steps, values):
        if steps.size:
            self._steps.append(steps)
            self._chunks.append(values)

    @property
    def steps(self):
        return np.concatenate(self._steps) if self._steps else np.zeros(0, np.int64)

    @property
    def times(self):
        return self.steps * self._net.dt

    @property
    def values(self):
        if not self._chunks:
            return np.zeros((0, len(self.group)))
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks, axis=0)]
            self._steps = [np.concatenate(self._steps)]
        return self._chunks[0].copy()

    def __repr__(self):
        return f"StateRecorder({self.variable!r}, {len(self.group)} neurons, every {self.interval_steps} steps)"
