"""PyNN Projection on eventsim: PyNN's connectors draw the connections, eventsim simulates them.

The connector's ``connect()`` calls :meth:`Projection._convergent_connect`
once per target cell; the connections are kept as arrays (presynaptic and
postsynaptic index, weight and delay in PyNN units, plasticity parameters)
and become ``net.connect(..., es.FromArrays(pre, post), weight, delay,
round_delays=True, synapse=...)`` calls when the network is built, one per
pair of (pre, post) populations.  Weights are converted to eventsim's units
(nA -> pA for ``IF_curr_exp`` targets, mV for ``IF_curr_delta``); PyNN's
negative weights of current-based inhibitory synapses select eventsim's
inhibitory receptor by their sign.  Delays are rounded to the time grid.
"""

import numpy as np

from pyNN import common
from pyNN.space import Space

import eventsim as es

from . import simulator
from .populations import Population
from .simulator import UnsupportedError, state
from .standardmodels import STDPMechanism, StaticSynapse, check_synapse_type

_MULTI = {"sum": np.add, "min": np.minimum, "max": np.maximum, "first": None, "last": None}


class Connection(common.Connection):
    """One connection of a :class:`Projection` (weight in nA or mV, delay in ms)."""

    def __init__(self, projection, k):
        self.projection = projection
        self.k = k

    @property
    def presynaptic_index(self):
        return int(self.projection._pre[self.k])

    @property
    def postsynaptic_index(self):
        return int(self.projection._post[self.k])

    def _get(self, name):
        return float(self.projection._values(name)[self.k])

    def _set(self, name, value):
        values = self.projection._values(name).copy()
        values[self.k] = value
        self.projection._store({name: values})

    weight = property(lambda self: self._get("weight"), lambda self, w: self._set("weight", w))
    delay = property(lambda self: self._get("delay"), lambda self, d: self._set("delay", d))

    def as_tuple(self, *names):
        return tuple(getattr(self, name) if name.endswith("_index") else self._get(name) for name in names)


class Projection(common.Projection):
    __doc__ = common.Projection.__doc__
    _simulator = simulator
    _static_synapse_class = StaticSynapse

    def __init__(self, presynaptic_population, postsynaptic_population, connector, synapse_type=None,
                 source=None, receptor_type=None, space=Space(), label=None):
        if synapse_type is not None:
            check_synapse_type(synapse_type)
        common.Projection.__init__(self, presynaptic_population, postsynaptic_population, connector,
                                   synapse_type, source, receptor_type, space, label)
        check_synapse_type(self.synapse_type)
        if self.receptor_type not in ("excitatory", "inhibitory"):
            raise UnsupportedError(f"receptor_type={self.receptor_type!r} is not supported by the eventsim backend; "
                                   "use 'excitatory' or 'inhibitory'")
        self._parts = []
        connector.connect(self)
        pre = [p for p, _, _ in self._parts]
        post = [np.full(len(p), q, dtype=np.int64) for p, q, _ in self._parts]
        self._pre = np.concatenate(pre).astype(np.int64) if pre else np.zeros(0, dtype=np.int64)
        self._post = np.concatenate(post) if post else np.zeros(0, dtype=np.int64)
        names = self.synapse_type.get_native_names() if False else list(self._parts[0][2]) if self._parts else []
        self._params = {}
        for name in names:
            self._params[name] = np.concatenate([np.broadcast_to(np.asarray(v[name], dtype=float), (len(p),))
                                                 for p, _, v in self._parts]).copy()
        for name in ("weight", "delay"):
            self._params.setdefault(name, np.zeros(0))
        del self._parts
        self._es = []      # (eventsim projection, positions of its connections in this one, weight factor)
        state.register(self)

    def _convergent_connect(self, presynaptic_indices, postsynaptic_index, location_selector=None,
                            **connection_parameters):
        if location_selector is not None:
            raise UnsupportedError("the eventsim backend has point neurons only (no location_selector)")
        pre = np.asarray(presynaptic_indices, dtype=np.int64).ravel()
        values = {name: np.array(value, dtype=float, copy=True) for name, value in connection_parameters.items()}
        if "delay" in values and state.engine == "clock":  # as eventsim will use them (NEST reports the same)
            values["delay"] = np.round(values["delay"] / state.dt) * state.dt
        self._parts.append((pre, int(postsynaptic_index), values))

    def __len__(self):
        return int(self._pre.size)

    @property
    def connections(self):
        """Every connection, as a :class:`Connection` (read and write ``weight``, ``delay``)."""
        return [Connection(self, k) for k in range(len(self))]

    # -- values -------------------------------------------------------------
    def _values(self, name):
        """Current values of an attribute, one per connection, PyNN units (weights read back after a run)."""
        if name == "presynaptic_index":
            return self._pre.astype(float)
        if name == "postsynaptic_index":
            return self._post.astype(float)
        if name == "weight" and self._es:
            w = self._params["weight"].copy()
            for proj, pos, factor in self._es:
                w[pos] = np.asarray(proj.weight, dtype=float) / factor
            return w
        if name not in self._params:
            raise KeyError(f"{name!r} is not an attribute of this projection's connections; "
                           f"available: {', '.join(self._params)}")
        return self._params[name]

    def _store(self, new):
        """Set attributes (PyNN units, one per connection), passing weights to the running network."""
        if self._es:
            for name, value in new.items():
                if name != "weight" and not np.array_equal(value, self._params[name]):
                    raise UnsupportedError(f"changing {name!r} of connections after the network is built is not "
                                           "supported by the eventsim backend (only weights can change)")
        for name, value in new.items():
            self._params[name] = np.asarray(value, dtype=float).copy()
        if "weight" in new:
            for proj, pos, factor in self._es:
                proj.weight = self._params["weight"][pos] * factor

    def _set_attributes(self, parameter_space):
        parameter_space.evaluate(simplify=False)
        new = {}
        for name, value in parameter_space.items():
            value = np.asarray(value, dtype=float)
            if value.ndim == 0:
                values = np.full(len(self), float(value))
            else:
                values = value[self._pre, self._post]
            keep = np.isnan(values)
            values[keep] = self._params[name][keep]
            new[name] = values
        self._store(new)

    def _get_attributes_as_list(self, names):
        columns = [self._values(n) for n in names]
        ints = [n.endswith("_index") for n in names]
        return [tuple(int(c[k]) if i else float(c[k]) for c, i in zip(columns, ints)) for k in range(len(self))]

    def _get_attributes_as_arrays(self, names, multiple_synapses="sum"):
        if multiple_synapses not in _MULTI:
            raise ValueError(f"multiple_synapses={multiple_synapses!r} must be one of {', '.join(_MULTI)}")
        shape = (self.pre.size, self.post.size)
        out = []
        for name in names:
            name = name[:-1] if name in ("weights", "delays") else name
            values = self._values(name)
            array = np.full(shape, np.nan)
            i, j = self._pre, self._post
            if multiple_synapses in ("first", "last"):
                flat = i * shape[1] + j
                if multiple_synapses == "last":
                    flat, values = flat[::-1], values[::-1]
                _, first = np.unique(flat, return_index=True)
                array.flat[flat[first]] = values[first]
            else:
                ufunc = _MULTI[multiple_synapses]
                start = {"sum": 0.0, "min": np.inf, "max": -np.inf}[multiple_synapses]
                acc = np.full(shape, start)
                ufunc.at(acc, (i, j), values)
                seen = np.zeros(shape, dtype=bool)
                seen[i, j] = True
                array[seen] = acc[seen]
            out.append(array)
        return out

    def _set_initial_value_array(self, variable, value):
        raise UnsupportedError("synaptic state variables cannot be initialised in the eventsim backend")

    # -- building -------------------------------------------------------------
    def _rule(self, sign, factor, positions):
        """The eventsim plasticity rule of these connections, or None (static)."""
        if not isinstance(self.synapse_type, STDPMechanism):
            return None
        p = {}
        for name in ("tau_plus", "tau_minus", "A_plus", "A_minus", "w_max", "w_min", "mu_plus", "mu_minus"):
            if name in self._params:
                values = self._params[name][positions]
                if values.size and not np.all(values == values[0]):
                    raise UnsupportedError(f"STDP parameter {name} differs between connections of one projection; "
                                           "the eventsim backend takes one rule per projection")
                p[name] = float(values[0]) if values.size else 0.0
        if p["w_min"] != 0.0:
            raise UnsupportedError(f"w_min={p['w_min']} is not supported by the eventsim backend (its STDP "
                                   "rule, NEST's stdp_synapse, bounds weights at 0 and w_max)")
        if p["A_plus"] == 0.0 and p["A_minus"] != 0.0:
            raise UnsupportedError("A_plus = 0 with A_minus != 0 cannot be expressed as es.STDP(lam, alpha) "
                                   "(alpha = A_minus / A_plus)")
        mu_plus, mu_minus = self.synapse_type.weight_dependence.mu(p)
        return es.STDP(tau_plus=p["tau_plus"], tau_minus=p["tau_minus"], lam=p["A_plus"],
                       alpha=p["A_minus"] / p["A_plus"] if p["A_plus"] else 0.0,
                       mu_plus=mu_plus, mu_minus=mu_minus, w_max=sign * p["w_max"] * factor)

    def _plastic_from(self, population):
        """Whether this is a plastic projection with connections from ``population``."""
        if not isinstance(self.synapse_type, STDPMechanism) or not len(self):
            return False
        pre_ids = np.asarray(self.pre.all_cells, dtype=np.int64)[self._pre]
        return bool(np.any((pre_ids >= population.first_id) & (pre_ids <= population.last_id)))

    def _build(self, net):
        pre_ids = np.asarray(self.pre.all_cells, dtype=np.int64)[self._pre]
        post_ids = np.asarray(self.post.all_cells, dtype=np.int64)[self._post]
        populations = [obj for obj in state.objects if isinstance(obj, Population)]
        sign = -1.0 if self.receptor_type == "inhibitory" else 1.0
        self._es = []
        for src in populations:
            in_src = (pre_ids >= src.first_id) & (pre_ids <= src.last_id)
            if not in_src.any():
                continue
            for tgt in populations:
                pos = np.flatnonzero(in_src & (post_ids >= tgt.first_id) & (post_ids <= tgt.last_id))
                if not pos.size:
                    continue
                factor = tgt.celltype.weight_factor
                w = self._params["weight"][pos] * factor
                if sign < 0:
                    w = -np.abs(w)  # PyNN: negative for current-based inhibitory; 0 stays on the right receptor
                source = src._es if src._relay is None else src._relay  # every path from the source alike
                proj = net.connect(source, tgt._es,
                                   es.FromArrays(pre_ids[pos] - src.first_id, post_ids[pos] - tgt.first_id),
                                   weight=w, delay=self._params["delay"][pos], round_delays=True,
                                   synapse=self._rule(sign, factor, pos))
                self._es.append((proj, pos, factor))

    def _before_reset(self):
        self._params["weight"] = self._values("weight").copy()

    def _unbuild(self):
        self._es = []
