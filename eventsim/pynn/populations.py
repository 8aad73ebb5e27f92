"""PyNN Population, PopulationView and Assembly on eventsim."""

import numpy as np

from pyNN import common, errors
from pyNN.parameters import ParameterSpace, Sequence, simplify
from lazyarray import larray

import eventsim as es

from . import simulator
from .recording import Recorder
from .simulator import UnsupportedError, as_array, spike_times, state
from .standardmodels import LIF_CELLS, SpikeSourceArray, SpikeSourcePoisson, check_cell_type

_STATE = {"v": "v"}  # PyNN state variable -> eventsim state variable (same unit, mV)


class Assembly(common.Assembly):
    __doc__ = common.Assembly.__doc__
    _simulator = simulator


def _get_parameters(view, names):
    """PyNN-unit ParameterSpace of ``names`` for a Population or view (shared by both)."""
    celltype = view.celltype
    if any(name in celltype.computed_parameters() for name in names):
        native_names = celltype.get_native_names()
    else:
        native_names = celltype.get_native_names(*names)
    return celltype.reverse_translate(view._get_native_parameters(*native_names))


class PopulationView(common.PopulationView):
    __doc__ = common.PopulationView.__doc__
    _simulator = simulator
    _assembly_class = Assembly

    def _get_parameters(self, *names):
        return _get_parameters(self, names)

    def _get_native_parameters(self, *names):
        values = {}
        for name in names:
            value = self.parent._parameters[name]
            values[name] = simplify(value[self.mask])
        return ParameterSpace(values, shape=(self.size,))

    def _set_parameters(self, parameter_space):
        parameter_space.evaluate(simplify=False)
        changed = {}
        for name, value in parameter_space.items():
            full = self.parent._parameters[name].copy()
            full[self.mask] = value
            changed[name] = full
        self.parent._apply_parameters(changed)

    def initialize(self, **initial_values):
        """Set initial values (PyNN units) of the state variables of the cells of this view."""
        for variable, value in initial_values.items():
            values = as_array(larray(value, shape=(self.size,), dtype=float), self.size)
            parent = self.parent
            full = as_array(parent.initial_values[variable], parent.size).copy()
            full[self.mask] = values
            parent.initial_values[variable] = larray(full, shape=(parent.size,), dtype=float)
            parent._push_state(variable, full, self.mask)

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)


class Population(common.Population):
    __doc__ = common.Population.__doc__
    _simulator = simulator
    _recorder_class = Recorder
    _assembly_class = Assembly

    def _create_cells(self):
        check_cell_type(self.celltype)
        first = state.id_counter
        self.all_cells = np.array([simulator.ID(i) for i in range(first, first + self.size)], dtype=simulator.ID)
        self._mask_local = np.ones(self.size, dtype=bool)
        for cell in self.all_cells:
            cell.parent = self
        state.id_counter += self.size
        parameter_space = self.celltype.native_parameters
        parameter_space.shape = (self.size,)
        parameter_space.evaluate(simplify=False)
        self._parameters = {name: np.asarray(value) for name, value in parameter_space.items()}
        _check_spike_times(self._parameters)
        self._es = None
        self._relay = None
        self._poisson_rng = None
        self._sent = []
        state.register(self)

    # -- parameters and state ----------------------------------------------
    def _get_parameters(self, *names):
        return _get_parameters(self, names)

    def _get_native_parameters(self, *names):
        return ParameterSpace({name: simplify(self._parameters[name]) for name in names}, shape=(self.size,))

    def _set_parameters(self, parameter_space):
        parameter_space.evaluate(simplify=False)
        self._apply_parameters({name: value for name, value in parameter_space.items()})

    def _apply_parameters(self, changed):
        """Store new native values (full arrays) and pass them on to the running network."""
        _check_spike_times(changed)
        old = {name: self._parameters[name] for name in changed}
        for name, value in changed.items():
            self._parameters[name] = np.asarray(value)
        if self._es is None:
            return
        if isinstance(self.celltype, LIF_CELLS):
            values = {name: np.asarray(value, dtype=float) for name, value in changed.items()}
            if "t_ref" in values:
                values["t_ref"] = np.round(values["t_ref"] / state.dt) * state.dt
            self._es.set(**values)
        elif isinstance(self.celltype, SpikeSourceArray) and "spike_times" in changed:
            self._update_spike_times(old["spike_times"])
        # SpikeSourcePoisson: the new rate, start and duration apply to the spikes drawn from now on

    def _update_spike_times(self, old):
        """New spike times of a SpikeSourceArray after a run: the spikes from now on are replaced."""
        t = state.net.t
        senders, times = [], []
        for i, (before, after) in enumerate(zip(old, self._parameters["spike_times"])):
            pending = _grid(before.value, state.dt)
            if np.any(pending >= t - 1e-9):
                new = _grid(after.value, state.dt)
                if not np.array_equal(new[new >= t - 1e-9], pending[pending >= t - 1e-9]):
                    raise UnsupportedError(
                        "the eventsim backend cannot remove spikes that a SpikeSourceArray has not emitted "
                        f"yet (cell {i}: spikes after t = {t} ms); set spike_times once the old ones are past")
                continue
            new = _grid(after.value, state.dt)
            new = new[new >= t - 1e-9]
            senders.extend([i] * new.size)
            times.extend(new)
        self._send(senders, times)

    def initialize(self, **initial_values):
        """Set initial values of state variables (PyNN units); random ones are drawn now, as PyNN's
        other backends do, so a shared generator is used in the script's order."""
        drawn = {name: larray(as_array(larray(value, shape=(self.size,), dtype=float), self.size),
                              shape=(self.size,), dtype=float)
                 for name, value in initial_values.items()}
        super().initialize(**drawn)

    def _set_initial_value_array(self, variable, initial_values):
        if self._es is not None:
            self._push_state(variable, as_array(initial_values, self.size), np.ones(self.size, dtype=bool))

    def _push_state(self, variable, values, mask):
        """Set a state variable of the running network now (PyNN's initialize() after a run)."""
        if self._es is None or not isinstance(self.celltype, LIF_CELLS):
            return
        if variable not in _STATE:
            raise UnsupportedError(f"state variable {variable!r} cannot be initialised in the eventsim backend; "
                                   f"available: {', '.join(_STATE)}")
        idx = np.arange(self.size)[mask]  # mask: a boolean array, an index array or a slice
        self._es[idx].set(**{_STATE[variable]: values[idx]})

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)

    # -- building -------------------------------------------------------------
    def _build(self, net):
        celltype = self.celltype
        p = {name: np.asarray(value) for name, value in self._parameters.items()}
        if isinstance(celltype, LIF_CELLS):
            p["t_ref"] = np.round(p["t_ref"].astype(float) / state.dt) * state.dt  # NEST: rounded to steps
            kwargs = {name: _compact(value.astype(float)) for name, value in p.items()}
            kwargs["psc"] = getattr(celltype, "psc", "exp")
            v0 = as_array(self.initial_values["v"], self.size)
            self._es = net.population(self.size, es.LIF(**kwargs), v_init=v0, label=self.label)
        elif isinstance(celltype, SpikeSourceArray):
            self._build_source(net)
            senders, times = [], []
            for i, seq in enumerate(p["spike_times"]):
                t = _grid(seq.value, state.dt)
                t = t[t >= net.t - 1e-9]
                senders.extend([i] * t.size)
                times.extend(t)
            self._send(senders, times)
        elif isinstance(celltype, SpikeSourcePoisson):
            self._build_source(net)
            self._poisson_rng = np.random.default_rng([int(state.seed), max(state.segment_counter, 0),
                                                       int(self.first_id)])
        else:  # pragma: no cover - refused in _create_cells
            raise UnsupportedError(type(celltype).__name__)

    def _build_source(self, net):
        """An eventsim spike source, and a relay of parrot neurons if plastic synapses start here.

        eventsim's plastic synapses connect neurons to neurons (as NEST's, which
        is why pyNN.nest puts parrot neurons behind its spike generators): the
        relay is a population of parrot neurons (:class:`eventsim.Parrot`)
        driven one to one with delay dt; its spikes are the source's, because
        the source is given each spike dt earlier (spikes before dt are emitted
        at dt).  Every projection from the population, static ones too, then
        starts at the relay.  Several spikes of a channel in one step leave the
        relay as one.
        """
        self._es = net.spike_source(np.zeros(0, dtype=np.int64), np.zeros(0), n=self.size)
        self._relay = None
        if any(obj._plastic_from(self) for obj in state.objects if hasattr(type(obj), "_plastic_from")):
            self._relay = net.population(self.size, es.Parrot(), label=f"{self.label} relay")
            net.connect(self._es, self._relay, es.OneToOne(), weight=1.0, delay=state.dt)

    def _unbuild(self):
        self._es = None
        self._relay = None
        self._poisson_rng = None
        self._sent = []

    def _send(self, senders, times):
        """Hand spikes (channel indices, times in ms on the grid) to the eventsim spike source."""
        senders = np.asarray(senders, dtype=np.int64)
        times = np.asarray(times, dtype=float)
        if senders.size:
            emit = times if self._relay is None else np.maximum(times - state.dt, 0.0)
            self._es.add(senders=senders, times=emit, round_times=True)
            self._sent.append((senders, spike_times(times)))

    def _emitted(self):
        """(channel indices, times in ms) of every spike handed to eventsim since the network was built."""
        if not self._sent:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return (np.concatenate([s for s, _ in self._sent]), np.concatenate([t for _, t in self._sent]))

    def _before_run(self, target_step):
        """Draw the Poisson spikes of the steps up to ``target_step`` (SpikeSourcePoisson only)."""
        if not isinstance(self.celltype, SpikeSourcePoisson) or self._es is None:
            return
        step0 = state.now_step
        n_steps = target_step - step0
        if n_steps <= 0:
            return
        dt = state.dt
        t = (step0 + np.arange(n_steps)) * dt
        rate = np.broadcast_to(self._parameters["rate"].astype(float), (self.size,))
        start = np.broadcast_to(self._parameters["start"].astype(float), (self.size,))
        stop = start + np.broadcast_to(self._parameters["duration"].astype(float), (self.size,))
        senders, steps = [], []
        for i in range(self.size):
            on = (t >= start[i] - 1e-9) & (t < stop[i] - 1e-9)
            if not on.any() or rate[i] <= 0:
                continue
            k = self._poisson_rng.poisson(rate[i] * dt * 1e-3, size=int(on.sum()))
            s = np.repeat(np.flatnonzero(on), k)
            senders.append(np.full(s.size, i, dtype=np.int64))
            steps.append(s + step0)
        if senders:
            self._send(np.concatenate(senders), np.concatenate(steps) * dt)


def _check_spike_times(parameters):
    """PyNN's rule: the spike times of each SpikeSourceArray cell are increasing."""
    for i, seq in enumerate(np.atleast_1d(parameters.get("spike_times", []))):
        times = np.asarray(getattr(seq, "value", seq), dtype=float)
        if times.size > 1 and np.any(np.diff(times) < 0):
            raise errors.InvalidParameterValueError(
                f"spike_times of cell {i} must be in increasing order, got {times.tolist()}")


def _grid(times, dt):
    """Spike times (ms) as eventsim emits them (on the grid for the clock engine), sorted."""
    return np.sort(spike_times(times))


def _compact(value):
    """One float for a homogeneous parameter, else the array."""
    value = np.asarray(value, dtype=float)
    return float(value[0]) if value.size and np.all(value == value[0]) else value
