"""Recording for the PyNN backend: eventsim recorders read back as PyNN expects (neo via pyNN.recording).

Spikes of neurons come from ``net.record_spikes`` on the whole population,
membrane potentials from ``net.record_state(..., "v", interval)`` on the
cells recorded when the segment's first run starts (samples at
the end of each interval, plus the value when recording starts, so a run of
T ms sampled every h ms gives T/h + 1 samples from t = 0, as PyNN's other
backends).  Spikes of spike sources are the ones the backend handed to
eventsim (eventsim records neurons only).  Only ``spikes`` and ``v`` can be
recorded.
"""

import itertools

import numpy as np

from pyNN import recording

from . import simulator
from .simulator import UnsupportedError, state

_counter = itertools.count()


class Recorder(recording.Recorder):
    """Reads the recorded spikes and membrane potentials of one Population."""
    _simulator = simulator

    def __init__(self, population, file=None):
        super().__init__(population, file)
        self._order = next(_counter)
        self._unbuild()

    def _unbuild(self):
        """Forget the eventsim recorders (``reset()``: the network is rebuilt)."""
        self._es = {}
        self._columns = {}   # variable -> population indices of the recorded cells (state variables)
        self._start = {}     # variable -> first sample (array over the population)
        self._offset = {}    # variable -> rows (or spikes) already cleared

    def _record(self, variable, new_ids, sampling_interval=None):
        if variable.name not in ("spikes", "v"):
            raise UnsupportedError(f"recording {variable.name!r} is not supported by the eventsim backend; "
                                   "recordable: 'spikes', 'v'")
        if sampling_interval is not None:
            self.sampling_interval = sampling_interval

    def _before_run(self):
        """Create the eventsim recorders of newly recorded variables (at the start of a run)."""
        pop = self.population
        net = state.net
        for variable in self.recorded:
            name = variable.name
            if pop._es is None:
                continue
            if name in self._es:
                if name != "spikes" and self._indices(variable).size != self._columns[name].size:
                    raise UnsupportedError(
                        f"the eventsim backend records {name!r} from the cells chosen before the first run of a "
                        "segment; more cells were added since (record them before running, or reset())")
                continue
            if name == "spikes":
                if pop.celltype.injectable:
                    self._es[name] = net.record_spikes(pop._es)
                else:
                    self._es[name] = "source"
            else:
                interval = round(self.sampling_interval / state.dt) * state.dt
                cols = self._indices(variable)
                self._columns[name] = cols
                self._es[name] = net.record_state(pop._es[cols], name, interval=interval)
                self._start[name] = pop._es[cols].get(name)
            self._offset[name] = 0

    def _indices(self, variable):
        """Sorted population indices of the cells recorded for ``variable``."""
        ids = np.fromiter((int(i) for i in self.recorded[variable]), dtype=np.int64)
        return np.sort(ids - int(self.population.first_id))

    def _spikes(self):
        """(population indices, times in ms) of the spikes recorded since the last clear."""
        rec = self._es.get("spikes")
        if rec is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        if isinstance(rec, str):  # a spike source: the spikes eventsim was given, up to now
            idx, times = self.population._emitted()
            keep = times <= state.t + 1e-9
            idx, times = idx[keep], times[keep]
            order = np.argsort(times, kind="stable")
            idx, times = idx[order], times[order]
        else:
            idx, times = np.asarray(rec.senders, dtype=np.int64), np.asarray(rec.times, dtype=float)
        k = self._offset.get("spikes", 0)
        return idx[k:], times[k:]

    def _get_spiketimes(self, ids, clear=False):
        idx, times = self._spikes()
        first = int(self.population.first_id)
        wanted = np.asarray([int(i) for i in ids], dtype=np.int64) - first
        mask = np.isin(idx, wanted)
        out = (idx[mask] + first, times[mask].copy())
        if clear:
            self._clear_variable("spikes")
        return out

    def _get_all_signals(self, variable, ids, clear=False):
        name = variable.name
        wanted = np.asarray([int(i) for i in ids], dtype=np.int64) - int(self.population.first_id)
        rec = self._es.get(name)
        if rec is None:
            return np.zeros((0, wanted.size)), None
        cols = np.searchsorted(self._columns[name], wanted)
        values = np.asarray(rec.values)[self._offset[name]:]
        out = np.vstack([self._start[name][None, :], values])[:, cols]
        if clear:
            self._clear_variable(name)
        return out, None

    def _local_count(self, variable, filter_ids=None):
        idx, _ = self._spikes()
        counts = np.bincount(idx, minlength=self.population.size)
        first = int(self.population.first_id)
        return {int(i): int(counts[int(i) - first]) for i in self.filter_recorded(variable, filter_ids)}

    def _clear_simulator(self):
        for name in list(self._es):
            self._clear_variable(name)

    def _clear_variable(self, name):
        """Forget what was recorded of ``name`` so far (the last sample of a signal starts the next)."""
        rec = self._es.get(name)
        if rec is None:
            return
        if name == "spikes":
            self._offset[name] += self._spikes()[0].size
        else:
            values = np.asarray(rec.values)
            if values.shape[0] > self._offset[name]:
                self._start[name] = values[-1].copy()
            self._offset[name] = values.shape[0]

    def _reset(self):
        self._unbuild()
