"""Simulation state of the PyNN backend: the clock, the objects made, and the eventsim Network.

The PyNN layer keeps a complete description of the model (populations with
their current parameters and initial values, projections with their
connections, current sources, what is recorded).  The eventsim
:class:`~eventsim.Network` is built from it at the first ``run()`` after
``setup()`` or ``reset()``; objects made after that are added to the running
network directly (eventsim accepts additions between runs).  ``reset()``
discards the network (after the recorders have stored their data), so the
next run starts again from ``t = 0`` with the initial values, the current
parameters and the current weights.
"""

import numpy as np

from pyNN import common

import eventsim as es

name = "eventsim"


class UnsupportedError(NotImplementedError):
    """A PyNN construct that eventsim cannot simulate (raised when the model is built)."""


class ID(int, common.IDMixin):
    """A PyNN cell identifier (a plain int with a ``parent`` population)."""

    def __init__(self, n):
        int.__init__(n)
        common.IDMixin.__init__(self)


class State(common.control.BaseState):
    """The simulator state: time (ms), dt (ms), delays (ms) and the eventsim Network."""

    def __init__(self):
        super().__init__()
        self.mpi_rank = 0
        self.num_processes = 1
        self.dt = 0.1
        self.default_delay = 0.1
        self.auto_min_delay = False
        self.max_delay = 10.0
        self.seed = 1
        self.engine = "clock"
        self.clear()

    @property
    def min_delay(self):
        """The smallest delay (ms): as given to setup(), or with "auto" the smallest in the model (dt if none)."""
        if not self.auto_min_delay:
            return self.default_delay
        delays = [float(obj._params["delay"].min()) for obj in self.objects
                  if hasattr(type(obj), "_plastic_from") and len(obj)]
        return min(delays) if delays else self.dt

    # -- bookkeeping --------------------------------------------------------
    def clear(self):
        """Forget every object (``setup()`` and ``end()``)."""
        self.objects = []          # populations, projections, current sources in creation order
        self.recorders = set()
        self.id_counter = 0
        self.segment_counter = -1
        self.write_on_end = []
        self.net = None
        self.reset()

    def register(self, obj):
        """Add a model object; built at once if the network already exists."""
        self.objects.append(obj)
        if self.net is not None:
            obj._build(self.net)

    def reset(self):
        """Back to ``t = 0``: keep the model, drop the eventsim Network (rebuilt at the next run)."""
        for obj in getattr(self, "objects", []):
            if self.net is not None and hasattr(type(obj), "_before_reset"):
                obj._before_reset()
        for obj in getattr(self, "objects", []):
            if hasattr(type(obj), "_unbuild"):
                obj._unbuild()
        for rec in self.recorders:
            rec._unbuild()
        self.net = None
        self.running = False
        self.t = 0.0
        self.t_start = 0.0
        self.segment_counter += 1

    # -- running ------------------------------------------------------------
    @property
    def now_step(self):
        """The current time as a step count (int; the event engine runs whole steps here too)."""
        return 0 if self.net is None else int(round(self.net.t / self.dt))

    def _ensure_built(self):
        if self.net is None:
            self.net = es.Network(dt=self.dt, seed=int(self.seed) + max(self.segment_counter, 0), engine=self.engine)
            for obj in self.objects:
                obj._build(self.net)

    def run(self, simtime):
        """Advance by ``simtime`` ms."""
        self.run_until(self.t + simtime)

    def run_until(self, tstop):
        """Advance to ``tstop`` ms (rounded to the time grid)."""
        self._ensure_built()
        target = int(round(tstop / self.dt))
        for obj in self.objects:
            if hasattr(type(obj), "_before_run"):
                obj._before_run(target)
        for rec in sorted(self.recorders, key=lambda r: r._order):
            rec._before_run()
        n = target - self.now_step
        if n > 0:
            self.net.run(n * self.dt)
        self.t = self.now_step * self.dt
        self.running = True


state = State()


def spike_times(times):
    """Spike times (ms) as eventsim will emit them: exact (event engine) or on the grid (clock engine).

    On the grid, a time between two grid points is emitted at the end of the
    step that contains it (the next grid point), as NEST's spike_generator
    does with off-grid times; times within half a NEST tic (0.5 us) of a grid
    point are taken as that point.
    """
    times = np.asarray(times, dtype=float)
    if state.engine == "event":
        return times
    tol = min(0.0005, 0.25 * state.dt)
    return np.ceil((times - tol) / state.dt) * state.dt


def as_array(value, n):
    """``value`` (scalar, array or lazy array) as a float64 array of ``n`` values."""
    if hasattr(value, "evaluate"):
        value = value.evaluate(simplify=False)
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    return arr
