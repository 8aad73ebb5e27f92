"""Reading and changing a network between runs (the objects' ``get`` / ``set`` / ``add``).

The rule every change follows: a network changed at time ``t`` (between two
``run()`` calls) continues exactly as a network built with the change from
the start would continue from the same state at ``t``.  In particular:

* neuron state (``v``, ``i_ex``, ``i_in``) set at ``t`` is the state the
  next step starts from; parameters set at ``t`` (``tau_m``, ``v_th``,
  ``i_e``, ...) act from the first step after ``t``, with their propagators
  computed exactly (float64) for the neurons touched;
* spikes already on their way (in the delay lines) arrive as they would
  have; spikes stamped ``t`` itself (the last step's spikes, and source
  spikes at ``t``) are delivered at the start of the next run, through the
  connections that exist then, as in NEST;
* a Poisson rate set at ``t`` draws the counts of the steps from ``t`` on
  at the new rate (a count is a function of seed, channel, step and rate);
  a DC amplitude or window set at ``t`` is the current from ``t`` on;
  spikes added to a spike source at or after ``t`` are emitted as if they
  had been given at construction;
* populations, sources, connections and recorders added at ``t`` exist from
  ``t`` on; recorders record from ``t`` on.

Every value is validated as at construction (a ValueError or TypeError
naming the argument) before anything changes: a refused call leaves the
network as it was.  The engine applies the changes at the start of the next
``run()`` (or ``save()``), without losing any state: the clock engine keeps
its ring buffers, pending spikes and counters, the event engine its queue.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .models._params import suggest
from .models.family import check_event_engine, state_key

#: State variables that ``set`` accepts (``theta`` and the effective threshold are read-only).
SETTABLE_STATE = ("v", "i_ex", "i_in")


def _pops_of(view):
    """``[(population, local indices in it, positions in the view)]`` of the populations a view touches."""
    net = view.net
    out = []
    ids = view.ids
    for pop in net.populations:
        pos = np.flatnonzero((ids >= pop.offset) & (ids < pop.offset + pop.n))
        if pos.size:
            out.append((pop, ids[pos] - pop.offset, pos))
    return out


def _init_fields(model):
    return [f.name for f in dataclasses.fields(model) if f.init]


def _per_neuron(value, n):
    """A model parameter (scalar, array or tuple of them) as per-neuron values: (n,) or (n, K)."""
    if isinstance(value, tuple):
        return np.stack([np.broadcast_to(np.asarray(x, np.float64), (n,)) for x in value], axis=1) if value \
            else np.zeros((n, 0))
    if value is None:
        return np.full(n, np.nan)
    if isinstance(value, str):
        return np.full(n, value, dtype=object)
    return np.array(np.broadcast_to(np.asarray(value, np.float64), (n,)))


def known_names(view):
    """State variables and parameters readable on the neurons of ``view``, in a stable order."""
    names = []
    for pop, _, _ in _pops_of(view):
        for nm in tuple(pop.model.state_names) + tuple(_init_fields(pop.model)):
            if nm not in names:
                names.append(nm)
    return names


def get_neurons(view, name):
    """Values of state variable or parameter ``name`` for every neuron of ``view`` (a copy).

    Parameters win over state variables of the same name (``v_th`` is the
    parameter; record ``"v_th"`` for the adaptive effective threshold).
    """
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} must be the name of a state variable or parameter (a str)")
    parts = _pops_of(view)
    n = len(view)
    net = view.net
    if not parts:
        return np.zeros(0)
    is_param = [name in _init_fields(p.model) for p, _, _ in parts]
    is_state = [name in p.model.state_names for p, _, _ in parts]
    for (pop, _, _), a, b in zip(parts, is_param, is_state):
        if not (a or b):
            raise ValueError(f"{name!r} is neither a state variable nor a parameter of {type(pop.model).__name__} "
                             f"neurons ({suggest(name, known_names(view), type(pop.model).__name__)}); "
                             f"available: {', '.join(known_names(view))}")
    if all(is_param):
        cols = [_per_neuron(getattr(pop.model, name), pop.n)[loc] for pop, loc, _ in parts]
        shape = (n,) + cols[0].shape[1:]
        if any(c.shape[1:] != shape[1:] for c in cols):
            raise ValueError(f"{name!r} has a different number of components in the populations of this group")
        out = np.empty(shape, dtype=cols[0].dtype)
        for (_, _, pos), c in zip(parts, cols):
            out[pos] = c
        return out
    if not all(is_state):
        raise ValueError(f"{name!r} is a parameter of some populations of this group and a state variable of others")
    plan = net._sync()
    out = np.empty(n)
    for pop, loc, pos in parts:
        key = state_key(pop.model, name)
        if plan is None and isinstance(key, (int, np.integer)):  # a family's own state: its initial values
            out[pos] = pop.model.pack(pop.n, net.dt)["x_init"][loc, key]
        elif plan is None:
            out[pos] = pop.v_init[loc] if name == "v" else 0.0
        else:
            out[pos] = plan.get_state(key, pop.offset + loc)
    return out


def _settable(model):
    """The state variables of ``model`` that ``set`` accepts: ``v``, the synaptic currents and the
    family's own state columns it names (``state_columns``)."""
    own = [nm for nm, key in getattr(model, "state_columns", {}).items() if isinstance(key, (int, np.integer))]
    return tuple(nm for nm in model.state_names if nm in SETTABLE_STATE or nm in own)


def _value_array(name, value, n):
    from .network import _numbers

    arr = _numbers(name, value)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape} but the group has {n} neurons")
    return arr


def set_neurons(view, values):
    """Set state variables and parameters of the neurons of ``view`` (see :meth:`NodeView.set`)."""
    net = view.net
    if not values:
        return
    parts = _pops_of(view)
    n = len(view)
    state, params = {}, {}
    for name, value in values.items():
        if any(name in _init_fields(p.model) for p, _, _ in parts):
            if not all(name in _init_fields(p.model) for p, _, _ in parts):
                raise ValueError(f"{name!r} is not a parameter of every population of this group")
            params[name] = value
        elif any(name in p.model.state_names for p, _, _ in parts):
            if not all(name in _settable(p.model) for p, _, _ in parts if name in p.model.state_names):
                ok = sorted({nm for p, _, _ in parts for nm in _settable(p.model)})
                raise ValueError(f"state variable {name!r} cannot be set; settable: {', '.join(ok)}")
            if not all(name in p.model.state_names for p, _, _ in parts):
                raise ValueError(f"{name!r} is not a state variable of every population of this group")
            arr = _value_array(name, value, n)
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} contains NaN or infinite values")
            state[name] = arr
        else:
            raise TypeError(f"unknown name {name!r} for these neurons "
                            f"({suggest(name, known_names(view), type(parts[0][0].model).__name__)}); "
                            f"state variables and parameters: {', '.join(known_names(view))}")
    started = net._plan is not None
    new_models = {}
    for pop, loc, pos in parts:
        if not params:
            break
        model = new_models.get(id(pop), pop.model)
        kw = {nm: getattr(model, nm) for nm in _init_fields(model)}
        for name, value in params.items():
            kw[name] = _new_param(name, kw[name], value, pop, loc, pos, n)
        try:
            new = type(model)(**kw)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        _check_model_change(net, pop, model, new, started)
        new_models[id(pop)] = new
    # everything is valid: apply
    for pop, _, _ in parts:
        if id(pop) in new_models:
            object.__setattr__(pop, "model", new_models.pop(id(pop)))
    if params:
        net._changed("params")
    if state:
        plan = net._sync() if started else None
        for name, arr in state.items():
            for pop, loc, pos in parts:
                if plan is None and name == "v":
                    v0 = np.array(pop.v_init, dtype=np.float64)
                    v0[loc] = arr[pos]
                    v0.setflags(write=False)
                    object.__setattr__(pop, "v_init", v0)
                elif plan is None:
                    plan = net._sync(force=True)
                if plan is not None:
                    plan.set_state(state_key(pop.model, name), pop.offset + loc, arr[pos])


def _new_param(name, old, value, pop, loc, pos, n):
    """The population's new value of parameter ``name``: ``old`` with the view's neurons set to ``value``."""
    from .models._params import as_param

    if isinstance(old, str) or isinstance(value, str):
        if len(loc) != pop.n:
            raise ValueError(f"{name} applies to whole populations; set it on the population, not a part of it")
        return value
    if isinstance(old, tuple):
        vals = value if isinstance(value, (tuple, list)) else (value,)
        if len(vals) != len(old):
            raise ValueError(f"{name} has {len(old)} components; got {len(vals)} values")
        return tuple(_new_param(f"{name}[{k}]", o, v, pop, loc, pos, n) for k, (o, v) in enumerate(zip(old, vals)))
    if isinstance(old, (bool, np.bool_)) or (isinstance(old, np.ndarray) and old.dtype == np.bool_):  # a switch
        vals = np.asarray(value)
        if vals.dtype != np.bool_ or vals.ndim > 1:
            raise ValueError(f"{name}={value!r} must be True or False, or an array of them (one per neuron)")
        if vals.ndim and vals.size != n:
            raise ValueError(f"{name} has {vals.size} values but the group has {n} neurons")
        full = np.array(np.broadcast_to(old, (pop.n,)), np.bool_)
        full[loc] = vals[pos] if vals.ndim else vals
        return bool(full[0]) if np.all(full == full[0]) else full
    if value is None or old is None:
        if value is None and old is None:
            return None
        if len(loc) != pop.n:
            raise ValueError(f"{name}={value!r}: switching between None and numbers applies to whole populations")
        return value
    if isinstance(value, np.ndarray) or np.ndim(value) > 0:
        arr = as_param(name, value)
        if isinstance(arr, np.ndarray) and arr.size != n:
            raise ValueError(f"{name} has {arr.size} values but the group has {n} neurons")
        arr = arr[pos] if isinstance(arr, np.ndarray) else arr
    else:
        arr = as_param(name, value)
    full = np.array(np.broadcast_to(np.asarray(old, np.float64), (pop.n,)))
    full[loc] = arr
    if np.all(full == full[0]):
        return float(full[0])  # uniform again: a scalar, the population stays one parameter set
    return full


def _check_model_change(net, pop, old, new, started):
    """Refuse a parameter change that the engines cannot take at this point."""
    if net.engine == "event":
        check_event_engine(new)  # (e.g. a conductance-based family: the event engine does not run it)
        if new.v_min is not None:
            raise NotImplementedError("v_min is not supported by engine='event'; use v_min=None")
    else:
        new.pack(pop.n, net.dt)  # validates t_ref against dt
    if started:
        if new.synapse != old.synapse:
            raise ValueError(f"population {pop!r} has {old.synapse} synapses; tau_syn_ex / tau_syn_in cannot switch "
                             "between None and numbers, nor psc change, after the network has run")
        if len(getattr(new, "tau_theta", ())) != len(getattr(old, "tau_theta", ())):
            raise ValueError("the number of threshold components cannot change after the network has run")
        if net.engine != "event":
            shape = lambda m: m.pack(pop.n, net.dt).get("x_init", np.zeros((pop.n, 0))).shape  # noqa: E731
            if new.family is not old.family or shape(new) != shape(old):
                raise ValueError(f"population {pop!r}: this change alters the neurons' state variables "
                                 f"({type(old).__name__} {old.family.name} -> {new.family.name}); it is possible "
                                 "only before the network has run")
