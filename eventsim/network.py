"""Network, populations, sources, projections; validation and the engine plan."""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from . import config
from .connectivity import Distribution, FromArrays, Rule, block_values, draw
from .models._params import MAX_STEPS, check_event_time, rounded_steps, steps_of
from .models.family import check_event_engine, model_classes
from .record import SpikeRecorder, StateRecorder
from .rng import POISSON, generator, key_words

_KINDS = ("neuron", "source", "dc")


class NodeView:
    """An ordered group of neurons or source channels of one Network.

    Supports ``view[i:j]``, ``view[index_array]``, ``view[bool_mask]`` and the
    union ``a | b`` (order kept, duplicates dropped).
    """

    #: Public attributes that may be assigned (everything else raises AttributeError with what to call).
    _ASSIGNABLE = ("label",)
    #: ``attribute -> what to call instead`` for the AttributeError of an assignment.
    _HINTS = {"model": "pop.set(name=value) for parameters such as tau_m, v_th, i_e",
              "v_init": "pop.set(v=...) (the initial value before the first run, the state after)",
              "rate": "source.set(rate=...)", "amplitude": "dc.set(amplitude=...)",
              "start_step": "dc.set(start=...)", "stop_step": "dc.set(stop=...)",
              "start_time": "dc.set(start=...)", "stop_time": "dc.set(stop=...)",
              "spike_times": "source.add(senders=..., times=...)", "spike_steps": "source.add(senders=..., times=...)",
              "spike_senders": "source.add(senders=..., times=...)",
              "delay": "a new net.dc(..., delay=...) (a source's delay is fixed when it is made)",
              "delay_steps": "a new net.dc(..., delay=...) (a source's delay is fixed when it is made)"}

    def __init__(self, net, kind, ids, label=None):
        self.net = net
        self.kind = kind
        self.ids = np.asarray(ids, dtype=np.int64)
        self.ids.setflags(write=False)
        self.label = label

    def _lock(self):
        """From now on public attributes cannot be assigned (see ``_ASSIGNABLE``)."""
        object.__setattr__(self, "_locked", True)
        return self

    def __setattr__(self, name, value):
        if name.startswith("_") or name in self._ASSIGNABLE or not self.__dict__.get("_locked", False):
            object.__setattr__(self, name, value)
            return
        hint = self._HINTS.get(name)
        raise AttributeError(f"{type(self).__name__}.{name} cannot be assigned"
                             + (f"; use {hint}" if hint else
                                "; change neurons with .set(...), sources with .set(...) or .add(...)"))

    def get(self, name):
        """Current values of a state variable or parameter, one per neuron (a NumPy copy).

        Parameters
        ----------
        name : str
            A state variable (``"v"`` in mV; ``"i_ex"``, ``"i_in"`` in pA for
            current synapses; ``"theta"``, the sum of the adaptive threshold
            components in mV) or a model parameter (``"tau_m"`` ms,
            ``"v_th"`` mV, ``"i_e"`` pA, ...; ``tau_theta`` / ``d_theta``
            give one column per component).  Before the first run the
            state is the initial state (``v_init``, zero currents).
        """
        if self.kind != "neuron":
            return self._source_get(name)
        from .live import get_neurons

        return get_neurons(self, name)

    def set(self, **values):
        """Set state variables and parameters of these neurons (or rates / amplitudes of these sources).

        Neurons: ``set(v=..., i_ex=..., i_in=..., tau_m=..., v_th=..., i_e=..., ...)``
        with a scalar or one value per neuron of this group; any time,
        before the first run or between runs.  Parameters that differ
        within a population make it heterogeneous (per-neuron values);
        propagators are recomputed exactly.  Every value is validated as
        at construction and nothing changes if one is refused.  The rule of
        every change: the network continues as if it had been built with
        the change from the start (:mod:`eventsim.live`).

        Sources: ``set(rate=...)`` (Hz) on Poisson channels,
        ``set(amplitude=..., start=..., stop=...)`` (pA, ms) on DC channels.
        """
        if self.kind == "neuron":
            from .live import set_neurons

            set_neurons(self, values)
        else:
            self._source_set(values)

    def _source_objects(self, kinds):
        """``[(source, channel positions in it, positions in this view)]`` of the sources this view touches."""
        net = self.net
        pool = net.dc_sources if self.kind == "dc" else net.sources
        out = []
        for src in pool:
            lo = int(src.ids[0])
            pos = np.flatnonzero((self.ids >= lo) & (self.ids < lo + len(src)))
            if pos.size:
                if not isinstance(src, kinds):
                    raise TypeError(f"this group contains channels of a {type(src).__name__}, which has no such value")
                out.append((src, self.ids[pos] - lo, pos))
        return out

    def _source_get(self, name):
        if self.kind == "source" and name == "rate":
            parts, attr = self._source_objects(PoissonSource), "rate"
        elif self.kind == "dc" and name == "amplitude":
            parts, attr = self._source_objects(DCSource), "amplitude"
        else:
            raise ValueError(f"{name!r} cannot be read from a {self.kind} group; "
                             + ("Poisson channels have 'rate'" if self.kind == "source" else "DC channels have 'amplitude'"))
        out = np.zeros(len(self))
        for src, loc, pos in parts:
            out[pos] = getattr(src, attr)[loc]
        return out

    def _source_set(self, values):
        net = self.net
        allowed = ("rate",) if self.kind == "source" else ("amplitude", "start", "stop")
        for name in values:
            if name not in allowed:
                raise TypeError(f"unknown name {name!r} for {self.kind} channels; settable: {', '.join(allowed)}")
        if not values:
            return
        net._check_live(f"changing {', '.join(values)}")
        if self.kind == "source":
            parts = self._source_objects(PoissonSource)
            rate = _values("rate", values["rate"], len(self), None, of=f"the group has {len(self)} channels")
            net._check_rates(rate)
            for src, loc, pos in parts:
                r = src.rate.copy()
                r[loc] = rate[pos]
                src._set_now(r)
            net._changed("sources")
            return
        parts = self._source_objects(DCSource)
        if net.engine == "event" and "amplitude" in values and any(src.delay > 0 for src, _, _ in parts):
            raise NotImplementedError("the event engine cannot change the amplitude of a DC source with a delay "
                                      "between runs (the clock engine can); make a new source instead")
        updates = []
        for src, loc, pos in parts:
            amp = src.amplitude
            if "amplitude" in values:
                new = _values("amplitude", values["amplitude"], len(self), None,
                              of=f"the group has {len(self)} channels")
                amp = amp.copy()
                amp[loc] = new[pos]
            window = {}
            if "start" in values or "stop" in values:
                if loc.size != len(src):
                    raise ValueError("start and stop apply to a whole DC source; set them on the source, not a part")
                window = net._dc_window(values.get("start", src._start_ms()), values.get("stop", src._stop_ms()))
            updates.append((src, amp, window))
        for src, amp, window in updates:
            if "amplitude" in values:
                src._set_now(amp)
            for k, v in window.items():
                object.__setattr__(src, k, v)
        net._changed("dc")

    def __len__(self):
        return int(self.ids.size)

    def __getitem__(self, key):
        n = len(self)
        if isinstance(key, slice):
            sel = self.ids[key]
        elif isinstance(key, numbers.Integral):
            if not -n <= key < n:
                raise IndexError(f"index {key} is out of range for a group of {n}")
            sel = self.ids[[key]]
        else:
            idx = np.asarray(key)
            if idx.size == 0 and idx.ndim == 1:
                return NodeView(self.net, self.kind, self.ids[:0], self.label)
            if idx.dtype == bool:
                if idx.shape != (n,):
                    raise IndexError(f"boolean mask of shape {idx.shape} does not match a group of {n}")
                sel = self.ids[idx]
            else:
                if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
                    raise IndexError("a group is indexed by a slice, an int, a 1-D int array or a bool mask")
                if idx.size and (idx.min() < -n or idx.max() >= n):
                    raise IndexError(f"index array has values out of range for a group of {n}")
                sel = self.ids[idx]
        return NodeView(self.net, self.kind, sel, self.label)

    def __or__(self, other):
        if not isinstance(other, NodeView):
            return NotImplemented
        if other.net is not self.net:
            raise ValueError("cannot unite groups of different Networks")
        if other.kind != self.kind:
            raise ValueError(f"cannot unite a {self.kind} group with a {other.kind} group")
        ids = np.concatenate([self.ids, other.ids])
        _, first = np.unique(ids, return_index=True)
        return NodeView(self.net, self.kind, ids[np.sort(first)])

    def __repr__(self):
        return f"<{self.kind} group of {len(self)}{' from ' + self.label if self.label else ''}>"


class Population(NodeView):
    """A population of ``n`` neurons of one model (created by :meth:`Network.population`).

    Read and change its neurons with :meth:`get` and :meth:`set` (state and
    parameters, before the first run or between runs).
    """

    def __init__(self, net, model, offset, n, v_init, label):
        super().__init__(net, "neuron", np.arange(offset, offset + n), label)
        self.model = model
        self.offset = offset
        self.n = n
        self.v_init = v_init

    def __repr__(self):
        return f"Population({self.n} x {type(self.model).__name__}{', ' + self.label if self.label else ''})"


class _Schedule:
    """Per-channel values as a step function of the step: row ``k`` of ``_rows`` from step ``_steps[k]`` on
    (``_steps[0] == 0``); the rates of a Poisson source, the amplitudes of a DC source."""

    def _init_schedule(self, first, steps, rows):
        self._steps = np.zeros(1, np.int64) if steps is None else np.r_[0, steps].astype(np.int64)
        self._rows = first[None, :] if rows is None else np.vstack([first[None, :], rows])

    def _current(self):
        """The values at the network's current step (a read-only array)."""
        row = self._rows[int(np.searchsorted(self._steps, self.net._step, side="right")) - 1]
        row.setflags(write=False)
        return row

    def _value_at(self, step):
        """The values in force at ``step`` (the first row before step 0)."""
        return self._rows[max(int(np.searchsorted(self._steps, step, side="right")) - 1, 0)]

    def _rate_edges(self):
        """Steps (> 0) at which the values change by the schedule."""
        return self._steps[1:]

    def _set_now(self, values):
        """From the network's current step on (until the next scheduled change), ``values``."""
        s = self.net._step
        keep = self._steps != s
        at = int(keep[: int(np.searchsorted(self._steps, s, side="right"))].sum())
        self._steps = np.insert(self._steps[keep], at, s)
        self._rows = np.insert(self._rows[keep], at, values, axis=0)


class PoissonSource(_Schedule, NodeView):
    """``n`` independent Poisson spike trains (:meth:`Network.poisson`); ``set(rate=...)`` changes their rates."""

    def __init__(self, net, offset, n, rate, rate_steps=None, rate_rows=None):
        super().__init__(net, "source", np.arange(offset, offset + n), "poisson")
        self._init_schedule(rate, rate_steps, rate_rows)

    @property
    def rate(self):
        """The channels' rates (Hz) at the network's current time (a read-only array)."""
        return self._current()


class SpikeSource(NodeView):
    """Channels emitting explicit spike times (:meth:`Network.spike_source`); :meth:`add` adds spikes."""

    def __init__(self, net, offset, n, senders, steps):
        super().__init__(net, "source", np.arange(offset, offset + n), "spike_source")
        self.spike_senders = senders
        self.spike_steps = steps

    def add(self, senders, times, round_times=False):
        """Add spikes: channel ``senders[k]`` (0-based) emits at ``times[k]`` (ms).

        Times must lie at or after the network's current time ``net.t``
        (spikes in the past cannot be emitted any more); the clock engine
        needs them on the grid unless ``round_times=True``.  The spikes are
        emitted exactly as if they had been given at construction.
        """
        net = self.net
        net._check_live("adding spikes to a spike source")
        senders, times, steps = net._spike_arrays(senders, times, len(self), round_times)
        if times.size:
            early = steps < net._step if steps is not None else times < net.t
            if early.any():
                raise ValueError(f"times must be >= the current time t = {net.t} ms (spikes cannot be added in "
                                 f"the past); got {float(times[early][0])!r} ms")
        object.__setattr__(self, "spike_senders", np.concatenate([self.spike_senders, senders]))
        object.__setattr__(self, "spike_times", np.concatenate([self.spike_times, times]))
        if steps is not None:
            object.__setattr__(self, "spike_steps", np.concatenate([self.spike_steps, steps]))
        net._changed("sources")


class DCSource(_Schedule, NodeView):
    """Constant currents switched on in ``[start, stop)`` (:meth:`Network.dc`).

    ``set(amplitude=..., start=..., stop=...)`` changes them between runs.
    ``delay`` (ms): the targets receive the current the source produces at
    ``t`` at ``t + delay`` (NEST's device delay); 0 by default.
    """

    def __init__(self, net, offset, n, amplitude, start_step, stop_step, amp_steps=None, amp_rows=None, delay=0.0,
                 delay_steps=0):
        super().__init__(net, "dc", np.arange(offset, offset + n), "dc")
        self._init_schedule(amplitude, amp_steps, amp_rows)
        self.start_step = start_step
        self.stop_step = stop_step
        self.delay = float(delay)
        self.delay_steps = int(delay_steps)

    def _delivered(self):
        """The amplitudes the targets receive at the network's current step (those of ``delay`` earlier)."""
        return self._value_at(self.net._step - self.delay_steps)

    def _delivery_window(self):
        """``(start_step, stop_step)`` of the current at the targets (clock engine): the window shifted by the
        delay."""
        big = np.iinfo(np.int64).max
        return (self.start_step + self.delay_steps,
                big if self.stop_step == big else self.stop_step + self.delay_steps)

    @property
    def amplitude(self):
        """The channels' amplitudes (pA) at the network's current time (a read-only array)."""
        return self._current()

    def _start_ms(self):
        return self.start_time if self.net.engine == "event" else self.start_step * self.net.dt

    def _stop_ms(self):
        if self.net.engine == "event":
            return None if math.isinf(self.stop_time) else self.stop_time
        return None if self.stop_step == np.iinfo(np.int64).max else self.stop_step * self.net.dt


class Projection:
    """The connections made by one :meth:`Network.connect` call.

    Attributes
    ----------
    pre, post : ndarray of int32 (int64 for groups of 2**31 or more)
        Local indices within the source and target groups.
    weight : ndarray of the network's ``weight_dtype``
        mV (delta synapses), pA (current synapses) or, from a DC source, the
        factor applied to its amplitude (always float64).  Weights are
        stored in the precision the engine uses.
    delay_steps : ndarray of int16
        Delays in steps (None for DC sources).
    receptor : int or None
        The targets' receptor port (``connect(..., receptor=k)``), or None.
    generation : int
        Plastic projections: the step at which the projection was made (0
        before the first run).  Projections of one generation with equal
        rules share the sender's presynaptic traces; a later one starts
        from traces of its own (NEST: a new synapse starts with
        ``K_+ = 0``).

    The arrays are kept compact (14 bytes per connection with float32
    weights, 18 with float64) because they stay alive for the whole run:
    they are part of the network a checkpoint saves.
    """

    receptor = None  # (the class default: projections pickled before receptor ports have none)
    _generation = 0  # (projections pickled before plastic connections could be made between runs: all 0)

    def __init__(self, source, target, pre, post, weight, delay_steps):
        self.source = source
        self.target = target
        self.pre = pre
        self.post = post
        self._weight = weight
        self.delay_steps = delay_steps

    def _lock(self):
        object.__setattr__(self, "_locked", True)
        return self

    @property
    def generation(self):
        """The step at which the projection was made (plastic projections; see the class docstring)."""
        return self._generation

    def __setattr__(self, name, value):
        if name.startswith("_") or not self.__dict__.get("_locked", False):
            object.__setattr__(self, name, value)
            return
        if name == "weight":
            type(self).weight.fset(self, value)
            return
        raise AttributeError(f"Projection.{name} cannot be assigned; connections are fixed once made "
                             "(assign proj.weight to change weights, or connect() again)")

    @property
    def weight(self):
        """The weight of every connection, in the order of ``pre`` and ``post`` (read-only array;
        assign a whole new array of the same length between runs to change them).  For plastic
        synapses, the current weights."""
        if getattr(self, "synapse", None) is not None and not self.__dict__.get("_weight_set", False):
            plan = self.source.net._plan
            if plan is not None and getattr(plan, "plastic", None) is not None:
                return plan.plastic_weights(self)
        return self._weight

    @weight.setter
    def weight(self, value):
        net = self.source.net
        net._check_live("changing weights")
        m = len(self)
        if isinstance(value, Distribution):
            raise ValueError("weight must be a number or an array with one value per connection")
        if self.source.kind == "dc":
            w = _values("weight", value, m, None, of=f"the projection has {m} connections")
        else:
            w = net._weights(value if np.ndim(value) else float(_scalar("weight", value)), m, None)
            if np.ndim(value) and np.shape(value) != (m,):
                raise ValueError(f"weight has shape {np.shape(value)} but the projection has {m} connections")
        if getattr(self, "synapse", None) is not None:
            self.synapse.check_weights(np.asarray(w, np.float64))
            self._weight_set = True  # the engine's current weights are replaced at the next run
        w.setflags(write=False)
        self._weight = w
        net._changed("dc" if self.source.kind == "dc" else "structure")

    def __len__(self):
        return int(self.pre.size)

    def __repr__(self):
        return f"Projection({len(self)} connections)"


#: Peak bytes per connection while connect() runs (the rule's int64 indices, float64 weight and
#: delay draws, and the compact arrays the Projection keeps: 14-18 bytes).
_BYTES_PER_CONNECTION = 56
#: Bytes per synapse of the engine arrays that the first run() builds (an int32/int64 offset and
#: the weight); the build sorts in place, so it needs no further per-synapse memory.
_BYTES_PER_SYNAPSE_BUILD = 16


#: Bytes per neuron of a population: its initial values, parameters and state, and the engine's
#: per-neuron arrays (state, parameters, ring-buffer columns at the shortest delays).
_BYTES_PER_NEURON = 256
#: Most rule rows of the plastic synapses (eventsim.engines.plastic: one byte per synapse names its row).
_MAX_RULE_ROWS = 256
#: Bytes per channel of a Poisson, spike or DC source (its rate and the engine's per-channel arrays).
_BYTES_PER_CHANNEL = 64
#: Largest mean count of a Poisson channel in one step (rate * dt); larger rates are refused.
MAX_POISSON_PER_STEP = 1e9


def _meminfo_available():
    """MemAvailable of /proc/meminfo (bytes), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rlimit_available():
    """Bytes of address space left under RLIMIT_AS (limit minus this process's VmSize), or None."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError, AttributeError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    used = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    used = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    return max(int(soft) - used, 0)


def _read_int(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_available(root="/"):
    """Bytes left under this process's cgroup memory limit (v2 ``memory.max``, v1 ``limit_in_bytes``), or None.

    ``root`` is the file-system root to read ``proc/self/cgroup`` and
    ``sys/fs/cgroup`` under (``"/"``; another directory in tests).
    """
    root = str(root)
    paths = []
    try:
        with open(os.path.join(root, "proc/self/cgroup")) as f:
            for line in f:
                parts = line.strip().split(":", 2)
                if len(parts) == 3 and (parts[0] == "0" or "memory" in parts[1].split(",")):
                    paths.append((parts[0] == "0", parts[2].lstrip("/")))
    except OSError:
        pass
    best = None
    base = os.path.join(root, "sys/fs/cgroup")
    for v2, rel in paths + [(True, ""), (False, "")]:
        if v2:
            d = os.path.join(base, rel)
            limit, usage = _read_int(os.path.join(d, "memory.max")), _read_int(os.path.join(d, "memory.current"))
        else:
            d = os.path.join(base, "memory", rel)
            limit = _read_int(os.path.join(d, "memory.limit_in_bytes"))
            usage = _read_int(os.path.join(d, "memory.usage_in_bytes"))
            if limit is not None and limit >= 1 << 60:  # v1's "no limit"
                limit = None
        if limit is not None:
            left = max(limit - (usage or 0), 0)
            best = left if best is None else min(best, left)
    return best


def available_memory():
    """Bytes of memory this process can still allocate, or None if unknown.

    The lowest of the system's available memory (MemAvailable on Linux), the
    address space left under ``RLIMIT_AS`` (``ulimit -v``) and the memory left
    under a cgroup (container) memory limit.
    """
    found = [m for m in (_meminfo_available(), _rlimit_available(), _cgroup_available()) if m is not None]
    return min(found) if found else None


def _expected_connections(rule, n_pre, n_post):
    from .connectivity import AllToAll, FixedInDegree, FixedProbability, FromArrays, OneToOne

    if isinstance(rule, FixedInDegree):
        return n_post * int(rule.k)
    if isinstance(rule, FixedProbability):
        p = float(rule.p)
        n = n_pre * n_post
        return int(n * p + 5 * (n * p * (1 - p)) ** 0.5)
    if isinstance(rule, AllToAll):
        return n_pre * n_post
    if isinstance(rule, OneToOne):
        return n_post
    if isinstance(rule, FromArrays):
        return rule.pre.size
    return 0


def _compact_index(idx, n):
    """Indices into a group of ``n`` as int32 when they fit."""
    return idx.astype(np.int32) if n < 2**31 else idx


def _guard_memory(what, need):
    avail = available_memory()
    if avail is not None and need > avail:
        raise MemoryError(f"{what} needs about {need / 2**30:.2f} GiB but only {avail / 2**30:.2f} GiB "
                          "of memory is available; nothing was allocated")


def _numbers(name, value):
    """``value`` (a number or array_like of numbers) as a float64 array; strings, bools and objects refused.

    Numbers only: a string such as ``'1'`` is refused rather than converted,
    as everywhere in eventsim's API.
    """
    if value is None:
        raise ValueError(f"{name}=None is not allowed; expected a number or an array of numbers")
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise ValueError(f"{name}={value!r} must be a number or an array of numbers")
    if isinstance(value, numbers.Real):
        return np.asarray(float(value))
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {type(value).__name__}") from None
    if arr.dtype.kind not in "iuf":
        if arr.dtype.kind == "O" and all(isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))
                                         for x in arr.ravel()):
            return arr.astype(np.float64)
        raise ValueError(f"{name} must contain numbers only, got an array of dtype {arr.dtype}"
                         + (f" (first value {arr.ravel()[0]!r})" if arr.size else ""))
    return arr.astype(np.float64)


def _array_sizes(model):
    """``{parameter name: number of values}`` of a model's array-valued parameters."""
    import dataclasses

    sizes = {}
    for f in dataclasses.fields(model):
        v = getattr(model, f.name)
        parts = v if isinstance(v, tuple) else (v,)
        for k, x in enumerate(parts):
            if isinstance(x, np.ndarray):
                sizes[f"{f.name}[{k}]" if isinstance(v, tuple) else f.name] = int(x.size)
    return sizes


def _remove_file(rec):
    """Close and delete a recorder's file (made on this rank while another rank's failed)."""
    if rec.path is not None:
        rec.close()
        os.unlink(rec.path)


def _is_array(value):
    """Whether ``value`` is an array (or list) of values rather than one value or a distribution."""
    return not isinstance(value, (Distribution, str, bytes)) and value is not None and np.ndim(value) > 0


def _flag(name, value):
    """``value`` as a bool; anything but True, False (or a NumPy bool) is a TypeError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r} must be True or False")
    return bool(value)


def _scalar(name, value):
    """A single number (a Python float), refused with a ValueError naming ``name`` otherwise."""
    arr = _numbers(name, value)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a single number, got an array of shape {arr.shape}")
    return float(arr)


def _values(name, value, n, rng, of=None):
    """Scalar / array / Distribution -> float64 array of length n, all finite.

    ``of`` says what the n values are for in the length error, e.g. ``"the
    population has 5 neurons"`` (default: ``"the rule made n connections"``).
    """
    if isinstance(value, Distribution):
        out = np.asarray(value.sample(rng, n), dtype=np.float64)
    else:
        arr = _numbers(name, value)
        if arr.ndim == 0:
            out = np.full(n, float(arr))
        else:
            if arr.ndim != 1 or arr.size != n:
                raise ValueError(f"{name} has shape {arr.shape} but {of or f'the rule made {n} connections'}")
            out = arr.copy()
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return out


class Network:
    """A spiking network simulated on a clock (time is an int64 step count).

    Parameters
    ----------
    dt : float
        Time step (ms), > 0.
    seed : int
        Seed of every random draw (connectivity, distributions, Poisson input).
    backend : {"cpu", "cuda"}
        Where the engine runs.  "cuda" needs numba-cuda and a CUDA GPU (or
        ``NUMBA_ENABLE_CUDASIM=1`` for numba-cuda's simulator); it gives
        bit-identical results to "cpu" in float64.
    engine : {"clock", "event"}
        Simulation scheme.  "clock": time advances in steps of ``dt``, spikes
        on the grid (NEST ``iaf_psc_*``).  "event": continuous time, exact
        threshold crossings, a priority queue (NEST ``iaf_psc_*_ps``; see
        :mod:`eventsim.engines.event_cpu`): spike-source times, delays,
        ``t_ref`` and run durations are any float ms (delays > 0); ``dt``
        only sets the state recorders' clock.  CPU only, single-threaded.
    weight_dtype : {"float64", "float32"}
        Storage type of synaptic weights (default: ``dtype``).
    dtype : {"float64", "float32"}
        Precision of the clock engine's neuron state, parameters and ring
        buffers, on both backends (default "float64").  "float32" halves
        their memory and is the fast choice on most GPUs; neuron updates are
        then computed in single precision (relative rounding about 6e-8 per
        step instead of 1e-16), so membrane potentials differ from float64 by
        a few 1e-6 relative over thousands of steps and spike times can move
        by a step where a neuron grazes the threshold.  float32 results are
        still bit-identical for 1, 2 or more threads; CPU and CUDA agree
        within float32 rounding.  The event engine needs "float64".
    comm : "auto", None or an mpi4py communicator
        The MPI ranks that simulate this network together (:mod:`eventsim.mpi`).
        "auto" (default): ``MPI.COMM_WORLD`` when the script runs under an
        MPI launcher (``mpiexec -n R python script.py``) with more than one
        rank, else None (one process, mpi4py not imported).  Every rank runs
        the same build calls; each keeps and simulates the neurons it owns
        and their incoming synapses, and the spikes are the same, bit for
        bit, as in one process.  Clock engine on the CPU.

    Notes
    -----
    Time convention (as NEST): the update of step ``s`` advances the state
    from ``s*dt`` to ``(s+1)*dt`` and stamps its spikes ``(s+1)*dt``; a spike
    at ``t`` through a synapse with delay ``d`` reaches its target in the
    update that ends at ``t + d``.  Spike sources and Poisson trains emit
    spikes stamped on the grid in the same way.
    """

    def __init__(self, dt=0.1, seed=0, backend="cpu", engine="clock", weight_dtype=None, dtype="float64",
                 comm="auto"):
        if isinstance(dt, bool) or not isinstance(dt, numbers.Real) or not math.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt={dt!r} must be a finite number > 0 (ms)")
        if not 0.001 <= dt <= 10.0:
            import warnings

            warnings.warn(f"dt={dt!r} ms is outside the usual range [0.001, 10] ms; eventsim's times are in "
                          "milliseconds (dt=0.1 means 0.1 ms, i.e. 1e-4 s)", UserWarning, stacklevel=2)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**63:
            raise ValueError(f"seed={seed!r} must be an integer in [0, 2**63)")
        if backend not in ("cpu", "cuda"):
            raise ValueError(f"backend={backend!r} must be 'cpu' or 'cuda'")
        if engine == "event" and backend != "cpu":
            raise NotImplementedError("engine='event' runs on the CPU only; use backend='cpu'")
        if backend == "cuda":
            from .engines.clock_cuda import unavailable_reason

            reason = unavailable_reason()
            if reason is not None:
                raise RuntimeError(f"backend='cuda' is not usable here: {reason}")
        if engine not in ("clock", "event"):
            raise ValueError(f"engine={engine!r} must be 'clock' or 'event'")
        if dtype not in ("float64", "float32", np.float64, np.float32):
            raise ValueError(f"dtype={dtype!r} must be 'float64' or 'float32'")
        dtype = np.dtype(dtype)
        if engine == "event" and dtype != np.float64:
            raise NotImplementedError("engine='event' computes exact crossing times in float64; use dtype='float64'")
        weight_dtype = weight_dtype or (dtype.name if dtype == np.float32 else config.DEFAULT_WEIGHT_DTYPE)
        if weight_dtype not in ("float64", "float32"):
            raise ValueError(f"weight_dtype={weight_dtype!r} must be 'float64' or 'float32'")
        from .mpi import Ranks, resolve

        comm = resolve(comm)
        dist = Ranks(comm) if comm is not None and comm.Get_size() > 1 else None
        if dist is not None and engine == "event":
            raise NotImplementedError("engine='event' does not run over MPI ranks yet; use engine='clock' "
                                      "(or comm=None to run every rank on its own)")
        self.comm = comm
        self._dist = dist
        self.dt = float(dt)
        self.seed = int(seed)
        self.backend = backend
        self.engine = engine
        self.weight_dtype = np.dtype(weight_dtype)
        self.dtype = dtype
        self.populations = []
        self.sources = []
        self.dc_sources = []
        self.projections = []
        self.recorders = []
        self._n_neurons = 0
        self._n_channels = 0
        self._n_dc = 0
        self._step = 0
        self._time = 0.0  # event engine: simulated time (ms)
        self._plan = None
        self._changes = set()  # kinds of changes made since the last run (see _changed)

    #: What ``eventsim.torch.to_network`` and ``eventsim.nir.from_nir`` built the network from (None otherwise).
    torch_export = None
    nir_import = None

    #: Attributes fixed at construction (assigning them raises AttributeError).
    _FIXED = ("dt", "seed", "backend", "engine", "weight_dtype", "dtype", "populations", "sources", "dc_sources",
              "projections", "recorders", "comm")

    def __setattr__(self, name, value):
        if name in self._FIXED and name in self.__dict__:
            raise AttributeError(f"Network.{name} is fixed at construction; build a new es.Network(...) "
                                 "(populations, sources, connections and recorders are added with their methods)")
        if (type(self) is Network and not name.startswith("_") and name not in self._FIXED
                and not hasattr(Network, name)):  # (subclasses may add attributes of their own)
            raise AttributeError(f"Network has no attribute {name!r} to assign")
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ properties
    @property
    def t(self):
        """Simulated time (ms), ``step * dt``."""
        if self.engine == "event":
            return self._time
        return self._step * self.dt

    @property
    def step(self):
        """Number of steps simulated so far (int)."""
        return self._step

    @property
    def rank(self):
        """This process's MPI rank in ``comm`` (0 without MPI)."""
        return 0 if self._dist is None else self._dist.rank

    @property
    def n_ranks(self):
        """Number of MPI ranks simulating this network (1 without MPI)."""
        return 1 if self._dist is None else self._dist.size

    def _note(self, *parts):
        """Add a build call to the digest that the MPI ranks compare at each run."""
        if self._dist is not None:
            self._dist.note(*parts)

    @property
    def n_neurons(self):
        """Number of neurons in the network."""
        return self._n_neurons

    @property
    def n_synapses(self):
        """Number of synapses (all projections except DC inputs)."""
        return sum(len(p) for p in self.projections if p.source.kind != "dc")

    @property
    def synaptic_events(self):
        """Synaptic events delivered so far: ``(from neurons, from sources)``.

        One spike of a sender with ``k`` outgoing synapses is ``k`` events; a
        Poisson count of ``c`` spikes is ``c * k`` events.
        """
        if self._dist is not None:  # (collective: summed over the ranks)
            c = np.zeros(2, np.int64) if self._plan is None else self._plan.counters
            c = self._dist.allsum(c)
            return int(c[0]), int(c[1])
        if self._plan is None:
            return (0, 0)
        return int(self._plan.counters[0]), int(self._plan.counters[1])

    def _check_mutable(self, what):
        """Additions are allowed at any time (the clock engine takes them between runs)."""
        self._check_live(f"adding {what}")

    def _check_live(self, what):
        """Refuse a change that this network's engine cannot take after it has run (both engines now
        take every change: :mod:`eventsim.live`)."""

    def _changed(self, kind):
        """Note a change of ``kind`` (see ClockPlan.refresh); the engine takes it at the next run."""
        if self._plan is not None:
            self._changes.add(kind)

    def _sync(self, force=False):
        """The engine plan with every change applied (None before the first run unless ``force``)."""
        if self._plan is None:
            if force:
                self._build_plan()
            return self._plan
        if self._changes:
            self._plan = self._plan.refresh(self._changes)
            self._changes = set()
        return self._plan

    def _build_plan(self):
        if self.engine == "event":
            from .engines.event_plan import EventPlan

            self._plan = EventPlan(self)
            return
        from .engines.plan import build_plan

        _guard_memory(f"building the engine for {self.n_synapses:,d} synapses",
                      self.n_synapses * _BYTES_PER_SYNAPSE_BUILD)
        self._plan = build_plan(self)

    def _rate_schedule(self, rate_times, rate_values, n):
        """Validated ``(steps, rows)`` of a Poisson rate schedule, or ``(None, None)``."""
        return self._schedule(rate_times, rate_values, n, "rate_times", "rate_values", self._check_rates)

    def _schedule(self, times, values, n, t_name, v_name, check):
        """Validated ``(steps, rows)`` of a schedule of per-channel values, or ``(None, None)``."""
        if times is None and values is None:
            return None, None
        if times is None or values is None:
            raise ValueError(f"{t_name} and {v_name} go together: give both or neither")
        if self.engine == "event":
            raise NotImplementedError(f"{t_name} / {v_name} (scheduled changes) need engine='clock'")
        times = _numbers(t_name, times)
        if times.ndim != 1 or times.size == 0:
            raise ValueError(f"{t_name} must be a non-empty 1-D array of times (ms), got shape {times.shape}")
        if not np.all(np.isfinite(times)) or np.any(times < 0):
            raise ValueError(f"{t_name} must be finite and >= 0 ms")
        steps = steps_of(t_name, times, self.dt)
        if np.any(np.diff(steps) <= 0) or steps[0] <= 0:
            raise ValueError(f"{t_name} must be strictly increasing steps after 0 ms (the value before the "
                             "first one is the source's initial one)")
        vals = _numbers(v_name, values)
        if vals.ndim == 1 and vals.size == steps.size:
            vals = np.repeat(vals[:, None], n, axis=1)
        if vals.shape != (steps.size, n):
            raise ValueError(f"{v_name} has shape {vals.shape}; expected ({steps.size},) or ({steps.size}, {n}) "
                             f"(one row per time in {t_name})")
        if not np.all(np.isfinite(vals)):
            raise ValueError(f"{v_name} contains NaN or infinite values")
        if check is not None:
            check(vals.ravel())
        return steps, vals.astype(np.float64)

    def _rate_edges(self, start, stop):
        """The scheduled changes of rates and DC amplitudes in steps ``(start, stop]`` (sorted, unique)."""
        edges = [src._rate_edges() + (src.delay_steps if isinstance(src, DCSource) else 0)
                 for src in [*self.sources, *self.dc_sources] if isinstance(src, (PoissonSource, DCSource))]
        e = np.unique(np.concatenate(edges)) if edges else np.zeros(0, np.int64)
        return e[(e > start) & (e <= stop)]

    def _check_rates(self, r):
        """Refuse negative Poisson rates and rates above the per-step limit (Hz)."""
        if np.any(r < 0):
            raise ValueError(f"rate must be >= 0 Hz, got minimum {r.min()}")
        # the event engine's dt only clocks its recorders: its bound is the clock engine's at dt = 1 ms
        step_ms = self.dt if self.engine == "clock" else 1.0
        if r.size and r.max() * step_ms * 1e-3 > MAX_POISSON_PER_STEP:
            raise ValueError(f"rate={float(r.max())!r} Hz is too large: at most {MAX_POISSON_PER_STEP:.0e} spikes per "
                             f"{'step' if self.engine == 'clock' else 'ms'} on average "
                             f"(rate <= {MAX_POISSON_PER_STEP / (step_ms * 1e-3):.3g} Hz)")

    def _check_group(self, name, group, kinds):
        if not isinstance(group, NodeView):
            raise TypeError(f"{name} must be a population, source or view of one, got {type(group).__name__}")
        if group.net is not self:
            raise ValueError(f"{name} belongs to another Network")
        if group.kind not in kinds:
            raise ValueError(f"{name} is a {group.kind} group; expected {' or '.join(kinds)}")

    # ------------------------------------------------------------------ building
    def population(self, n, model, v_init=None, label=None):
        """Create ``n`` neurons of ``model``.

        Parameters
        ----------
        n : int
            Number of neurons (>= 1).
        model : a neuron model (LIF, IF, ALIF, LI, ...)
            Parameters, scalars or one value per neuron.
        v_init : float, array or Distribution, optional
            Initial membrane potential (mV); default ``model.v_rest``.
        label : str, optional
            A name shown in messages.
        """
        self._check_mutable("a population")
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n={n!r} must be an integer >= 1")
        _guard_memory(f"a population of {n:,d} neurons", int(n) * _BYTES_PER_NEURON)
        if type(model) not in model_classes().values():  # a model of a registered neuron family
            raise TypeError(f"model must be a neuron model such as es.LIF(...), got {type(model).__name__}")
        m = model.n_values
        if m is not None and m != n:
            sizes = _array_sizes(model)
            wrong = ", ".join(f"{k} has {v}" for k, v in sizes.items() if v != n)
            raise ValueError(f"the model's per-neuron parameters must have n={n} values: {wrong}")
        if self.engine == "event":
            check_event_engine(model)
            if model.v_min is not None:
                raise NotImplementedError("v_min is not supported by engine='event'; use v_min=None")
        else:
            model.pack(int(n), self.dt)  # validates t_ref against dt now, not at run time
        if v_init is None:
            v0 = np.broadcast_to(np.asarray(model.v_rest, dtype=np.float64), (n,)).copy()
        else:
            rng = generator(self.seed, 1, len(self.populations))
            v0 = _values("v_init", v_init, int(n), rng, of=f"the population has {n} neurons")
        self._note("population", int(n), model, v0)
        pop = Population(self, model, self._n_neurons, int(n), v0, label)._lock()
        self._n_neurons += int(n)
        self.populations.append(pop)
        self._changed("structure")
        return pop

    def poisson(self, n, rate, rate_times=None, rate_values=None):
        """``n`` independent Poisson spike trains of ``rate`` Hz (scalar or one per channel).

        Counts per step are drawn from a counter-based generator keyed by the
        network seed, the channel and the step, so they never depend on
        thread count or call order.  Several spikes of a channel in one step
        are delivered as one event of multiplicity k (weight x k).

        Parameters
        ----------
        n : int
            Number of channels.
        rate : float or array
            Rate (Hz), one value or one per channel; with a schedule, the
            rate before its first time.
        rate_times : array of float, optional
            Times (ms, strictly increasing, multiples of dt) at which the rates
            change to the rows of ``rate_values``: piecewise-constant rates
            (NEST's inhomogeneous_poisson_generator).  Clock engine only.
        rate_values : array, optional
            Rates (Hz) from each of ``rate_times`` on: shape ``(m,)`` (one
            rate for every channel) or ``(m, n)``.

        A rate changed at step ``k`` (by the schedule or by ``set(rate=...)``
        between runs) draws the counts of steps ``k, k+1, ...`` at the new
        rate; both give the same spikes.
        """
        self._check_mutable("a source")
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n={n!r} must be an integer >= 1")
        _guard_memory(f"a Poisson source of {n:,d} channels", int(n) * _BYTES_PER_CHANNEL)
        if isinstance(rate, Distribution):
            raise ValueError("rate must be a number or an array (Hz), not a distribution")
        r = _values("rate", rate, int(n), None, of=f"the source has {n} channels")
        self._check_rates(r)
        steps, rows = self._rate_schedule(rate_times, rate_values, int(n))
        self._note("poisson", r, steps, rows)
        src = PoissonSource(self, self._n_channels, int(n), r, steps, rows)._lock()
        self._n_channels += int(n)
        self.sources.append(src)
        self._changed("structure")
        return src

    def spike_source(self, senders, times, n=None, round_times=False):
        """Channels that emit the given spikes.

        Parameters
        ----------
        senders : array_like of int
            Channel of each spike (0-based).
        times : array_like of float
            Spike times (ms), >= 0 and multiples of dt (or rounded to the
            nearest step with ``round_times=True``).
        n : int, optional
            Number of channels; default ``max(senders) + 1``.
        """
        self._check_mutable("a source")
        if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
            raise ValueError(f"n={n!r} must be an integer >= 1")
        senders, times, steps = self._spike_arrays(senders, times, n, round_times)
        if n is None:
            n = int(senders.max()) + 1 if senders.size else 1
        _guard_memory(f"a spike source of {n:,d} channels", int(n) * _BYTES_PER_CHANNEL)
        self._note("spike_source", int(n), senders, times)
        src = SpikeSource(self, self._n_channels, int(n), senders, steps)
        src.spike_times = times.copy()
        src._lock()
        self._n_channels += int(n)
        self.sources.append(src)
        self._changed("structure")
        return src

    def _spike_arrays(self, senders, times, n, round_times):
        """Validated ``(senders int64, times float64 ms, steps int64 or None)`` of explicit spikes on
        ``n`` channels (None: any channel >= 0)."""
        senders = np.asarray(senders)
        times = _numbers("times", times)
        if senders.ndim != 1 or times.ndim != 1 or senders.size != times.size:
            raise ValueError(f"senders and times must be 1-D arrays of equal length, got shapes "
                             f"{senders.shape} and {times.shape}")
        if senders.size and not np.issubdtype(senders.dtype, np.integer):
            raise ValueError(f"senders must be integers, got dtype {senders.dtype}")
        senders = senders.astype(np.int64)
        if not np.all(np.isfinite(times)):
            raise ValueError("times contains NaN or infinite values")
        if np.any(times < 0):
            raise ValueError(f"times must be >= 0 ms, got minimum {times.min()}")
        if senders.size and senders.min() < 0:
            raise ValueError(f"senders must be >= 0 (channel indices), got minimum {senders.min()}")
        if n is not None and senders.size and senders.max() >= n:
            raise ValueError(f"senders must lie in [0, {n}), got values in [{senders.min()}, {senders.max()}]")
        if self.engine == "event":  # continuous time: any time >= 0
            _flag("round_times", round_times)
            check_event_time("times", times)
            steps = None
        elif _flag("round_times", round_times):
            steps = rounded_steps("times", times, self.dt)
        else:
            steps = steps_of("times", times, self.dt)
        return senders, times, steps

    def dc(self, amplitude, start=0.0, stop=None, n=1, amplitude_times=None, amplitude_values=None, delay=0.0):
        """``n`` constant current channels of ``amplitude`` pA, on in ``[start, stop)`` ms.

        Connect them to neurons with ``connect(dc, pop, rule, weight=factor)``;
        the current added to a target is ``factor * amplitude``.
        ``amplitude_times`` (ms, strictly increasing, multiples of dt) and
        ``amplitude_values`` (pA, shape ``(m,)`` or ``(m, n)``) change the
        amplitudes at those times (clock engine; :meth:`step_current`).
        ``delay`` (ms, >= 0; clock engine: a multiple of dt): the targets
        receive the current the source produces at ``t`` at ``t + delay``
        (NEST's device delay, which NEST's current generators take from
        their connections): the window, the scheduled changes and changes
        made between runs (``dc.set``) all reach the targets ``delay``
        later.  Default 0: the current acts from ``start`` on.
        """
        self._check_mutable("a source")
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n={n!r} must be an integer >= 1")
        _guard_memory(f"a DC source of {n:,d} channels", int(n) * _BYTES_PER_CHANNEL)
        amp = _values("amplitude", amplitude, int(n), None, of=f"the source has {n} channels")
        window = self._dc_window(start, stop)
        delay = _scalar("delay", delay)
        if not (math.isfinite(delay) and delay >= 0):
            raise ValueError(f"delay={delay!r} must be a finite number >= 0 ms")
        delay_steps = 0 if self.engine == "event" else int(steps_of("delay", delay, self.dt))
        if self.engine == "event":
            check_event_time("delay", delay)
        steps, rows = self._schedule(amplitude_times, amplitude_values, int(n), "amplitude_times",
                                     "amplitude_values", None)
        self._note("dc", amp, window, steps, rows, float(delay))
        src = DCSource(self, self._n_dc, int(n), amp, window.get("start_step"), window.get("stop_step"), steps, rows,
                       delay=float(delay), delay_steps=delay_steps)
        if self.engine == "event":
            src.start_time, src.stop_time = window["start_time"], window["stop_time"]
        src._lock()
        self._n_dc += int(n)
        self.dc_sources.append(src)
        self._changed("structure")
        return src

    def step_current(self, times, amplitudes, n=1, delay=0.0):
        """``n`` channels of piecewise-constant current (NEST's ``step_current_generator``).

        Parameters
        ----------
        times : array of float
            Times (ms, strictly increasing, > 0 and multiples of dt) at which
            the current changes; it is 0 pA before the first.
        amplitudes : array
            The current (pA) from each time on: shape ``(m,)`` (every channel)
            or ``(m, n)``.
        n : int
            Number of channels.
        delay : float
            ms, a multiple of dt (default 0): each change reaches the targets
            ``delay`` later (NEST's device delay).

        Connect it like a DC source, ``connect(sc, pop, rule, weight=factor)``.
        A change at step ``k`` acts from the update of step ``k + delay/dt`` on, as
        ``dc.set(amplitude=...)`` between runs does.  Clock engine.
        """
        return self.dc(0.0, n=n, amplitude_times=times, amplitude_values=amplitudes, delay=delay)

    def _dc_window(self, start, stop):
        """Validated on/off window of a DC source: ``start_step``/``stop_step`` (clock engine) or
        ``start_time``/``stop_time`` (ms, event engine); ``stop=None`` never switches off."""
        if self.engine == "event":  # continuous time: switch at any float ms
            start = float(_scalar("start", start))
            stop = math.inf if stop is None else float(_scalar("stop", stop))
            if not (math.isfinite(start) and start >= 0):
                raise ValueError(f"start={start} must be a finite number >= 0 ms")
            check_event_time("start", start)
            if math.isfinite(stop):
                check_event_time("stop", stop)
            if not stop > start:
                raise ValueError(f"stop={stop} must be > start={start} ms")
            return {"start_time": start, "stop_time": stop}
        start_step = int(steps_of("start", _scalar("start", start), self.dt))
        if start_step < 0:
            raise ValueError(f"start={start} must be >= 0 ms")
        stop_step = np.iinfo(np.int64).max if stop is None else int(steps_of("stop", _scalar("stop", stop), self.dt))
        if stop_step <= start_step:
            raise ValueError(f"stop={stop} must be > start={start} ms")
        return {"start_step": start_step, "stop_step": stop_step}

    def connect(self, pre, post, rule, weight, delay=None, round_delays=False, synapse=None, receptor=None):
        """Connect ``pre`` to ``post`` by ``rule``.

        Parameters
        ----------
        pre : population, source or view
        post : population or view of neurons
        rule : FixedInDegree, FixedProbability, OneToOne, AllToAll or FromArrays
        weight : float, array or Distribution
            mV for delta-synapse targets, pA for current-synapse targets (its
            sign selects the receptor); from a DC source, a factor on its
            amplitude.  An array has one value per connection in the rule's
            order.
        delay : float, array or Distribution
            Delay (ms), >= dt and a multiple of dt.  Default dt.  Values are
            rounded to the nearest step when ``round_delays`` is true; draws
            from a distribution are always rounded.  Not used for DC sources.
        synapse : es.STDP or es.STDPPowerLaw, optional
            A plasticity rule (:mod:`eventsim.models.plasticity`): the
            connections' weights then change with the pre- and postsynaptic
            spikes (NEST's ``stdp_synapse`` / ``stdp_pl_synapse_hom`` /
            ``stdp_triplet_synapse``, the delay dendritic).  Neuron to neuron
            only, clock engine (CPU or CUDA); made before the first run or
            between runs (a new synapse starts as NEST's: ``K_+ = 0``, no
            last presynaptic spike; see :mod:`eventsim.models.plasticity`);
            ``proj.weight`` reads the current weights.  None (default):
            static synapses.
        receptor : int, optional
            The receptor port ``k`` of the targets (``0 <= k < len(tau_syn)``)
            for targets with receptor ports (``es.LIF(..., tau_syn=[...])``;
            NEST's ``receptor_type`` is ``k + 1``): required for them, and
            then the port no longer follows the weight's sign.  None for
            every other target.  Static synapses from neurons or sources.

        Returns
        -------
        Projection
        """
        self._check_mutable("connections")
        self._check_group("pre", pre, ("neuron", "source", "dc"))
        self._check_group("post", post, ("neuron",))
        if pre.kind == "dc":
            deaf = [p for p in self.populations if not getattr(p.model, "current_input", True)
                    and ((post.ids >= p.offset) & (post.ids < p.offset + p.n)).any()]
            if deaf:
                raise ValueError(f"{type(deaf[0].model).__name__} neurons take no current; post must not include "
                                 "them when pre is a DC source")
        if not isinstance(rule, Rule):
            raise TypeError(f"rule must be a connection rule such as es.FixedInDegree(k), got {rule!r}")
        receptor = self._check_receptor(pre, post, receptor, synapse)
        if synapse is not None:
            self._check_plastic(pre, synapse, receptor)
        stream = len(self.projections)
        expect = _expected_connections(rule, len(pre), len(post))
        round_delays = _flag("round_delays", round_delays)
        _guard_memory(f"connect() by {rule!r} with about {expect:,d} connections", expect * _BYTES_PER_CONNECTION)
        keep = None
        if self._dist is not None:  # this MPI rank keeps the connections onto its own neurons
            self._note("connect", pre.kind, pre.ids, post.ids, repr(rule), round_delays, synapse, receptor,
                       *((rule.pre, rule.post) if isinstance(rule, FromArrays) else ()),
                       *(np.asarray(x) if _is_array(x) else repr(x) for x in (weight, delay)))
            keep = self._dist.owner([(p.offset, p.n) for p in self.populations], post.ids) == self._dist.rank
        pre_space = pre.ids if pre.kind == "neuron" else pre.ids + (1 << 40)
        # each block of targets draws from its own block of the streams (connectivity.draw)
        drawn = draw(rule, pre_space, post.ids, lambda b: generator(self.seed, 2, stream, block=b), keep,
                     need_index=keep is not None and (_is_array(weight) or _is_array(delay)
                                                      or isinstance(rule, FromArrays)))
        m = drawn.pre.size
        pre_idx = _compact_index(drawn.pre, len(pre))
        post_idx = _compact_index(drawn.post, len(post))
        if isinstance(delay, Distribution):
            round_delays = True  # (draws from a distribution are always rounded)
        weight = self._per_connection("weight", weight, drawn, 3, stream)
        if delay is not None:
            delay = self._per_connection("delay", delay, drawn, 4, stream)
        if pre.kind == "dc":
            w = _values("weight", weight, m, None)
            if delay is not None:
                raise ValueError("delay must be None for a DC source (currents act without delay)")
            d = None
        else:
            w = self._weights(weight, m, None)
            d = None
            if self.engine != "event":
                d = self._delay_steps(self.dt if delay is None else delay, m, round_delays, None)
        if synapse is not None:
            synapse.check_weights(np.asarray(w, np.float64))
            self._check_late_plastic(post.ids[post_idx], synapse)
        proj = Projection(pre, post, pre_idx, post_idx, w, d)
        proj.synapse = synapse
        if synapse is not None:
            proj._generation = int(self._step)
        proj.receptor = receptor
        if keep is not None and isinstance(rule, FromArrays):  # (MPI) the kept connections' places in the arrays
            proj._positions, proj._n_all = drawn.index, int(drawn.total)
        if self.engine == "event" and pre.kind != "dc":
            proj.delay = self._delays_ms(self.dt if delay is None else delay, m, None)
        w.setflags(write=False)
        proj._lock()
        self.projections.append(proj)
        self._changed("dc" if pre.kind == "dc" else "structure")
        return proj

    def _per_connection(self, name, value, drawn, purpose, stream):
        """``value`` for the connections in ``drawn``: a distribution drawn block by block (stream
        ``(seed, purpose, projection)``), an array for all the rule's connections taken at the kept ones (MPI),
        anything else as it is (validated by the caller)."""
        if isinstance(value, Distribution):
            return block_values(value, drawn, lambda b: generator(self.seed, purpose, stream, block=b))
        if drawn.index is not None and _is_array(value):
            arr = _numbers(name, value)
            if arr.ndim != 1 or arr.size != drawn.total:
                raise ValueError(f"{name} has shape {arr.shape} but the rule made {drawn.total} connections")
            return arr[drawn.index]
        return value

    def _global_positions(self, proj):
        """Over MPI ranks (collective): the positions of this rank's connections of ``proj`` in the whole
        projection's order (ascending), and the whole projection's size.

        A rule that draws target by target makes its connections in the order of their targets, and a
        rank keeps every connection of its own targets in that order: a connection's position is the
        number of the projection's connections onto earlier targets (summed over the ranks) plus its
        place among its target's.  A :class:`FromArrays` projection keeps the places in the arrays.
        """
        if getattr(proj, "_positions", None) is not None:
            return proj._positions, int(proj._n_all)
        post = np.asarray(proj.post, np.int64)
        if post.size > 1 and (post[1:] < post[:-1]).any():
            raise RuntimeError("a projection drawn target by target holds its connections out of target order")
        counts = self._dist.allsum(np.bincount(post, minlength=len(proj.target)))
        start = np.zeros(counts.size + 1, np.int64)
        np.cumsum(counts, out=start[1:])
        first = np.searchsorted(post, post)  # each connection's target's first local connection
        return start[post] + np.arange(post.size, dtype=np.int64) - first, int(start[-1])

    def _check_receptor(self, pre, post, receptor, synapse):
        """``receptor`` validated against the targets' ports (an int, or None where the targets have none)."""
        ports = {p.model.receptor_ports if hasattr(p.model, "receptor_ports") else 0 for p in self.populations
                 if ((post.ids >= p.offset) & (post.ids < p.offset + p.n)).any()}
        if pre.kind == "dc":
            if receptor is not None:
                raise ValueError(f"receptor={receptor!r} does not apply to DC sources (their current enters the "
                                 "membrane directly); leave it None")
            return None
        if receptor is None:
            if ports - {0}:
                raise ValueError(f"receptor=None, but the targets have receptor ports (tau_syn=[...]): give "
                                 f"receptor=k with 0 <= k < {min(ports - {0})}")
            return None
        if isinstance(receptor, bool) or not isinstance(receptor, numbers.Integral):
            raise TypeError(f"receptor={receptor!r} must be an int (a port of the targets' tau_syn) or None")
        if 0 in ports:
            raise ValueError(f"receptor={receptor!r}: some targets have no receptor ports (their weight's sign "
                             "chooses the port); receptor= needs targets made with tau_syn=[...]")
        if not 0 <= receptor < min(ports):
            raise ValueError(f"receptor={receptor!r} must satisfy 0 <= receptor < {min(ports)} (the targets' "
                             "number of ports, len(tau_syn))")
        return int(receptor)

    def _check_plastic(self, pre, synapse, receptor):
        """Refuse a plasticity rule where the engine cannot run it (before anything is drawn)."""
        from .models.plasticity import RULES

        if not isinstance(synapse, RULES):
            raise TypeError(f"synapse must be a plasticity rule ({', '.join(r.__name__ for r in RULES)}) or None, "
                            f"got {type(synapse).__name__}")
        if pre.kind != "neuron":
            raise ValueError(f"plastic synapses connect neurons to neurons; pre is a {pre.kind} group")
        if self.engine != "clock":
            raise NotImplementedError("plastic synapses run in the clock engine (CPU and CUDA) for now; "
                                      f"this network has engine={self.engine!r}")
        rows = {(p.generation, p.synapse, p.receptor) for p in self.projections
                if getattr(p, "synapse", None) is not None}
        if len(rows | {(int(self._step), synapse, receptor)}) > _MAX_RULE_ROWS:
            raise ValueError(f"a network holds at most {_MAX_RULE_ROWS} distinct plastic rules (a rule used by "
                             "connections made at different steps between runs, or onto different receptor "
                             "ports, counts once per step and port)")

    def _check_late_plastic(self, targets, synapse):
        """A plastic projection made after a run onto ``targets`` (network indices of its connections'
        targets, this rank's): its postsynaptic traces must be known on them.

        Each rule row keeps its own ``K_-`` (and ``tau_y`` trace) per neuron,
        updated at every spike of a neuron once it has plastic input (NEST: a
        neuron's ``K_-`` and spike history are kept only while it has STDP
        input; before that they stay 0).  A row made later copies its traces
        from the first row with the same time constant
        (``engines.plan._fill_new_rows``); a time constant first used by a
        row made after a neuron got plastic input was never followed on that
        neuron, and its values would depend on spikes no longer kept:
        refused.
        """
        plastic = [p for p in self.projections if getattr(p, "synapse", None) is not None]
        if self._plan is None or not plastic:
            return
        first = {}  # time constant -> generation of the first row with it (generations never decrease)
        for p in plastic:
            for tau in p.synapse.post_taus:
                first.setdefault(tau, p.generation)
        need = max(first.get(tau, int(self._step)) for tau in synapse.post_taus)
        bad = False
        if need > 0:  # targets with plastic input from a generation before `need` lack a trace
            hit = np.zeros(self.n_neurons, bool)
            hit[targets] = True
            bad = any(hit[p.target.ids[p.post]].any() for p in plastic if p.generation < need)
        if self._dist is not None:
            bad = not self._dist.all_true(not bad)
        if bad:
            known = sorted(first)
            raise NotImplementedError(
                f"{type(synapse).__name__} with postsynaptic time constants {synapse.post_taus} (ms), made after a "
                "run onto neurons that already had plastic input: a trace of a time constant that no rule of "
                f"theirs had ({known} ms so far) was not kept on them; use those time constants, or make the "
                "connections before the first run")

    def _weights(self, weight, m, rng):
        """Synaptic weights as ``weight_dtype`` (a scalar is expanded without a float64 copy)."""
        with np.errstate(over="ignore"):  # a value too large for float32 is reported below
            if np.isscalar(weight) and not isinstance(weight, (bool, str, bytes)):
                stored = _values("weight", weight, 1, None).astype(self.weight_dtype)
                w = np.full(m, stored[0], self.weight_dtype)
            else:
                w = _values("weight", weight, m, rng)
                stored = w = w.astype(self.weight_dtype, copy=False)
        if not np.all(np.isfinite(stored)):
            bad = stored[~np.isfinite(stored)][0]
            raise ValueError(f"weight={bad!r} does not fit in weight_dtype={self.weight_dtype.name}")
        return w

    def _delays_ms(self, delay, m, rng):
        """Continuous delays (ms, float64, > 0) of the event engine."""
        dv = _values("delay", delay, m, rng)
        if m and not (dv > 0).all():
            raise ValueError(f"delay={float(dv[~(dv > 0)][0])!r} ms must be > 0 ms")
        check_event_time("delay", dv)
        return dv.astype(np.float64)

    def _delay_steps(self, delay, m, round_delays, rng):
        """Delays (ms) -> int16 steps, validated, converted in blocks to bound the temporaries."""
        rounding = round_delays or isinstance(delay, Distribution)
        if np.isscalar(delay) and not isinstance(delay, (bool, str, bytes)) and m > 1:
            return np.full(m, self._delay_steps(delay, 1, round_delays, None)[0], np.int16)
        dv = _values("delay", delay, m, rng)
        longest = np.iinfo(np.int16).max
        if m and dv.max() / self.dt > longest + 0.5:
            raise ValueError(f"delay={float(dv.max())!r} ms exceeds the longest supported delay ({longest} steps "
                             f"of dt={self.dt} ms = {longest * self.dt:g} ms)")
        short = dv < self.dt * (1 - config.GRID_RTOL)
        if short.any() and not rounding:
            raise ValueError(f"delay={float(dv[short][0])!r} ms is shorter than dt={self.dt} ms; "
                             "delays must be >= dt")
        del short
        d = np.empty(m, np.int16)
        first_short, too_long = None, False
        block = 1 << 20
        for a in range(0, m, block):
            dv_b = dv[a:a + block]
            if rounding:
                k = rounded_steps("delay", dv_b, self.dt)
            else:
                try:
                    k = steps_of("delay", dv_b, self.dt)
                except ValueError:
                    steps_of("delay", dv, self.dt)  # the same error, counted over all delays
                    raise
            if first_short is None and k.min() < 1:
                first_short = dv_b[k < 1][0]
            too_long = too_long or k.max() > longest
            d[a:a + block] = np.minimum(k, longest)
        if first_short is not None:
            raise ValueError(f"delay={first_short!r} ms is shorter than dt={self.dt} ms; delays must be >= dt")
        if too_long:
            raise ValueError(f"delay={dv.max()!r} ms exceeds the longest supported delay ({longest} steps)")
        return d

    def _check_stream(self, to, overwrite, compression, per_rank=False):
        if to is not None and self._dist is not None and not per_rank:
            raise NotImplementedError("this recorder cannot stream to a file (to=...) over MPI ranks yet; record in "
                                      "memory (reading a recorder gathers every rank's part)")
        if not (compression is None or (isinstance(compression, str) and compression == "gzip")):
            raise ValueError(f"compression={compression!r} must be None or 'gzip'")
        if not isinstance(overwrite, bool):
            raise TypeError(f"overwrite={overwrite!r} must be True or False")
        if to is None:
            if compression is not None:
                raise ValueError("compression applies only to recorders streaming to a file (to=...)")
            return
        import os

        if isinstance(to, (str, os.PathLike)):
            path = os.path.abspath(os.fspath(to))
            if any(r.path == path for r in self.recorders):
                raise ValueError(f"to={path!r} is already the file of another recorder of this network")

    def record_spikes(self, group, to=None, overwrite=False, compression=None):
        """Record the spikes of a group of neurons; returns a :class:`SpikeRecorder`.

        Parameters
        ----------
        group : population or view of neurons
        to : str or path-like, optional
            Stream the spikes to this HDF5 file as the run goes (appended
            and flushed at the end of every chunk of ``config.CHUNK_STEPS``
            steps) instead of keeping them in memory.  The directory must
            exist.  Layout, crash safety and checkpoint behaviour:
            :mod:`eventsim.record`.  Needs h5py.  Over MPI ranks each rank
            writes the spikes of its own neurons to its own file,
            ``spikes.rank1-of-4.h5`` for ``to="spikes.h5"``
            (:func:`eventsim.record.rank_path`), and
            ``eventsim.record.read_spikes("spikes.h5")`` reads them as one.
            With ``engine="event"`` the file holds the continuous spike
            times (ms) instead of step stamps, committed window by window.
        overwrite : bool
            Replace an existing file ``to`` (otherwise FileExistsError).
        compression : {None, "gzip"}
            Compress the file's datasets (gzip level 1 with byte shuffling):
            smaller files, more CPU time per chunk.
        """
        self._check_mutable("a recorder")
        self._check_group("group", group, ("neuron",))
        self._check_stream(to, overwrite, compression, per_rank=True)
        if self._dist is None:
            rec = SpikeRecorder(self, group, to=to, overwrite=overwrite, compression=compression)
        else:  # one file per rank (eventsim.record.rank_path), created on every rank or on none
            from .record import rank_path

            self._note("record_spikes", group.ids, to is not None)
            if to is not None:
                to = rank_path(to, self._dist.rank, self._dist.size)
            rec = self._dist.agree(lambda: SpikeRecorder(self, group, to=to, overwrite=overwrite,
                                                         compression=compression), undo=_remove_file)
        self.recorders.append(rec)
        self._changed("recorders")
        return rec

    def record_weights(self, proj, index=None, interval=None, to=None, overwrite=False, compression=None):
        """Record the weights of chosen connections of a projection; returns a :class:`WeightRecorder`.

        Parameters
        ----------
        proj : Projection
            A projection of this network (plastic or static).
        index : array of int, optional
            Positions of the connections in the projection's order (``proj.pre``,
            ``proj.post``); default all.
        interval : float, optional
            Sampling interval (ms), a multiple of dt; default 1 ms (or dt if
            larger).  The engine stops at each sample to read the weights,
            so short intervals cost time.
        to, overwrite, compression
            Stream the samples to an HDF5 file, as for :meth:`record_spikes`;
            :func:`eventsim.record.read_weights` reads it.

        Over MPI ranks (collective) ``index`` is a position in the whole
        projection's order, as in one process (a rank's ``proj.weight`` is its
        own part); each rank samples the recorded connections onto its own
        neurons, reading ``values`` gathers them, and ``to=`` writes one file
        per rank (``w.rank1-of-4.h5``) that ``read_weights("w.h5")`` reads as
        one recording.
        """
        from .record import WeightRecorder

        self._check_mutable("a recorder")
        if not isinstance(proj, Projection) or proj not in self.projections:
            raise TypeError(f"proj must be a Projection of this network, got {type(proj).__name__}")
        if proj.source.kind == "dc":
            raise ValueError("proj connects a DC source; its weights are factors, not synapses")
        if self.engine != "clock":
            raise NotImplementedError("record_weights needs engine='clock'")
        n_all = len(proj)
        if self._dist is not None:
            positions, n_all = self._global_positions(proj)
        if index is None:
            idx = np.arange(n_all, dtype=np.int64)
        else:
            idx = np.asarray(index)
            if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
                raise ValueError("index must be a 1-D array of integers (positions in the projection)")
            if idx.size and (idx.min() < 0 or idx.max() >= n_all):
                raise ValueError(f"index must lie in [0, {n_all}), got values in [{idx.min()}, {idx.max()}]")
        if interval is None:
            k = max(1, int(round(1.0 / self.dt)))
        else:
            k = int(steps_of("interval", _scalar("interval", interval), self.dt))
            if k < 1:
                raise ValueError(f"interval={interval} must be >= dt={self.dt} ms")
        self._check_stream(to, overwrite, compression, per_rank=True)
        if self._dist is None:
            rec = WeightRecorder(self, proj, idx.astype(np.int64), k, to=to, overwrite=overwrite,
                                 compression=compression)
        else:  # each rank samples the recorded connections it holds (read_weights reads the files as one)
            from .record import rank_path

            self._note("record_weights", self.projections.index(proj), idx.astype(np.int64), k, to is not None)
            if to is not None:
                to = rank_path(to, self._dist.rank, self._dist.size)
            rec = self._dist.agree(lambda: WeightRecorder(self, proj, idx.astype(np.int64), k, to=to,
                                                          overwrite=overwrite, compression=compression,
                                                          positions=positions), undo=_remove_file)
        self.recorders.append(rec)
        self._changed("recorders")
        return rec

    def record_state(self, group, variable="v", interval=None, to=None, overwrite=False, compression=None):
        """Record a state variable of a group of neurons.

        Parameters
        ----------
        group : population or view of neurons
        variable : str
            ``"v"`` (mV); ``"i_ex"``, ``"i_in"`` (pA, current synapses);
            ``"theta"``, ``"v_th"`` (mV, adaptive models).
        interval : float, optional
            Sampling interval (ms), a multiple of dt; default dt.
        to, overwrite, compression
            Stream the samples to an HDF5 file, as for :meth:`record_spikes`.
        """
        self._check_mutable("a recorder")
        self._check_group("group", group, ("neuron",))
        if not isinstance(variable, str):
            raise TypeError(f"variable={variable!r} must be the name of a state variable (a str)")
        for pop in self.populations:
            mask = (group.ids >= pop.offset) & (group.ids < pop.offset + pop.n)
            if mask.any() and variable not in pop.model.state_names:
                raise ValueError(f"unknown state variable {variable!r} for {type(pop.model).__name__} "
                                 f"neurons; available: {', '.join(pop.model.state_names)}")
        if self.engine != "event":
            from .engines.plan import var_code

            var_code(self, group.ids, variable)  # (one storage for the variable in every population of the group)
        k = 1 if interval is None else int(steps_of("interval", _scalar("interval", interval), self.dt))
        if k < 1:
            raise ValueError(f"interval={interval} must be >= dt={self.dt} ms")
        self._check_stream(to, overwrite, compression, per_rank=True)
        if self._dist is None:
            rec = StateRecorder(self, group, variable, k, to=to, overwrite=overwrite, compression=compression)
        else:  # one file per rank, each with the rank's own neurons (eventsim.record.read_state reads them as one)
            from .record import rank_path

            self._note("record_state", group.ids, variable, k, to is not None)
            if to is not None:
                to = rank_path(to, self._dist.rank, self._dist.size)
            rec = self._dist.agree(lambda: StateRecorder(self, group, variable, k, to=to, overwrite=overwrite,
                                                         compression=compression), undo=_remove_file)
        self.recorders.append(rec)
        self._changed("recorders")
        return rec

    # ------------------------------------------------------------------ running
    def run(self, duration, progress=None):
        """Advance the simulation by ``duration`` ms (a multiple of dt, >= 0).

        Calling ``run(T1)`` then ``run(T2)`` gives exactly the same result as
        ``run(T1 + T2)``.

        Parameters
        ----------
        duration : float
            Biological time to simulate (ms).
        progress : bool or None
            Show a progress bar (biological time, real-time factor; needs
            tqdm).  None: only for runs of 10 s or more on a terminal.

        Raises
        ------
        FloatingPointError
            If the state becomes NaN or infinite; the network is left in its
            last finite state, with the population, neuron and time named.
        ValueError
            If ``duration`` is not a number, negative, off the grid, or takes
            the step counter past 2**62 steps (the event engine's clock past
            2**33 ms).

        Notes
        -----
        A run is a sequence of transactions (one per chunk of
        ``config.CHUNK_STEPS`` steps): any exception inside it, a
        KeyboardInterrupt or a failing streaming recorder included, leaves
        the network, its engine state and every recorder at the last
        committed chunk; fixing the cause and calling ``run()`` again
        continues exactly as an uninterrupted run.
        """
        if isinstance(duration, bool) or not isinstance(duration, numbers.Real) or not math.isfinite(duration):
            raise ValueError(f"duration={duration!r} must be a finite number of ms")
        if duration < 0:
            raise ValueError(f"duration={duration!r} must be >= 0 ms")
        if self._dist is not None:  # every rank must have built the same network (and run as long)
            self._note("run", float(duration))
            self._dist.check_same_build()
        if self.engine == "event":
            check_event_time("duration", self._time + float(duration))
            self._sync(force=True).advance(self._time + float(duration), progress)
            return
        n_steps = int(steps_of("duration", duration, self.dt))
        if self._step + n_steps > MAX_STEPS:
            raise ValueError(f"duration={duration!r} ms would take the step counter past 2**62 steps "
                             f"(now at step {self._step})")
        target = self._step + n_steps
        # scheduled rate changes: the run stops at each, and the engine takes the new rates there
        for edge in [*self._rate_edges(self._step, target), target]:
            plan = self._sync(force=True)
            if edge > self._step or edge == target:
                plan.advance(int(edge) - self._step, progress)
            if self._rate_edges(self._step - 1, self._step).size:
                self._changes.update(("sources", "dc"))

    def close(self):
        """Close the files of streaming recorders (a later ``run()`` or read reopens them)."""
        for r in self.recorders:
            r.close()

    # ------------------------------------------------------------------ checkpoints
    def save(self, path, key=None):
        """Write the complete simulation state to ``path`` (atomic; format in :mod:`eventsim.checkpoint`).

        ``Network.load(path)`` in any process continues exactly where this
        network stands: ``run(T1); save; load; run(T2)`` is bit-identical to
        ``run(T1 + T2)``, on any thread count.  The file is data only (JSON
        and raw arrays); loading it never runs code from it.

        Parameters
        ----------
        path : str or path-like
            The checkpoint file; its directory must exist.
        key : bytes, optional
            Secret key: the file carries an HMAC-SHA256 under it, which
            ``Network.load(path, key=key)`` verifies.

        Over MPI ranks (collective) each rank writes its part to its own
        file, ``ckpt.rank1-of-4.bin`` for ``path="ckpt.bin"``
        (:func:`eventsim.record.rank_path`), and ``Network.load(path)``
        under the same number of ranks restores it.
        """
        from . import checkpoint

        self._sync()  # changes made since the last run are part of the saved engine state
        if self._dist is None:
            checkpoint.save(self, path, key=key)
            return
        # over MPI ranks: every rank writes its own part to its own file (atomically), one id for all
        import uuid

        from .record import rank_path

        d = self._dist
        cid = d.comm.bcast(uuid.uuid4().hex if d.rank == 0 else None, root=0)
        d.agree(checkpoint.save, self, rank_path(path, d.rank, d.size), key,
                {"rank": d.rank, "n_ranks": d.size, "id": cid})

    @classmethod
    def load(cls, path, key=None, allow_pickle=False):
        """Restore a Network saved with :meth:`save`; its recorders are in ``net.recorders``.

        The network is rebuilt through the public constructors (every
        parameter validated again) and its engine state is checked before
        use; a bad file raises :class:`eventsim.checkpoint.CheckpointError`.

        Parameters
        ----------
        path : str or path-like
        key : bytes, optional
            The key given to :meth:`save`: a file without a valid HMAC under
            it is refused.
        allow_pickle : bool
            Also load the pickled checkpoints of format version 3 (with a
            warning).  Unpickling runs any code the file holds: only for
            files you trust; save them again to convert them.
        """
        from . import checkpoint

        return checkpoint.load(path, key=key, allow_pickle=allow_pickle, cls=cls)

    def __repr__(self):
        return (f"Network(dt={self.dt}, seed={self.seed}, {self._n_neurons} neurons, "
                f"{sum(len(p) for p in self.projections)} connections, t={self.t} ms)")
