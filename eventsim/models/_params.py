"""Validation and packing helpers shared by the neuron model families."""

from __future__ import annotations

import dataclasses
import difflib
import math

import numpy as np


def as_param(name, value, *, allow_none=False, allow_inf=False):
    """Return ``value`` as a float or a 1-D float64 array, or raise ValueError.

    Parameters
    ----------
    name : str
        Parameter name, used in the error message.
    value : float, array_like or None
        A scalar or one value per neuron.
    allow_none : bool
        Whether ``None`` is accepted (and returned unchanged).
    allow_inf : bool
        Whether infinite values are accepted.
    """
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name}=None is not allowed; expected a number or an array")
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={value!r} must be a number, not a bool")
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name}={value!r} must be a number or an array of numbers, not a string")
    if np.isscalar(value):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}={value!r} must be a number or an array of numbers") from None
        if math.isnan(v) or (math.isinf(v) and not allow_inf):
            raise ValueError(f"{name}={v!r} must be finite")
        return v
    try:
        raw = np.asarray(value)
        if raw.dtype.kind not in "iufO" or (raw.dtype.kind == "O" and any(
                isinstance(x, (str, bytes, bool, np.bool_)) for x in raw.ravel())):
            raise TypeError
        arr = raw.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {type(value).__name__}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array (one value per neuron), got shape {arr.shape}")
    if np.isnan(arr).any() or (not allow_inf and np.isinf(arr).any()):
        raise ValueError(f"{name} contains NaN or infinite values")
    arr = arr.copy()
    arr.setflags(write=False)
    return arr


def show_value(v):
    """A short text for a parameter value: a per-neuron array as its length and range, a tuple element-wise."""
    if isinstance(v, tuple):
        return "(" + ", ".join(show_value(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, np.ndarray):
        return f"<{v.size} values in [{v.min():g}, {v.max():g}]>" if v.size else "<0 values>"
    return repr(v)


def model_repr(model):
    """``Name(param=value, ...)`` of a model dataclass: its constructor's fields, arrays shortened
    (:func:`show_value`), so reprs of large populations stay one short line."""
    return f"{type(model).__name__}(" + ", ".join(
        f"{f.name}={show_value(getattr(model, f.name))}" for f in dataclasses.fields(model) if f.init) + ")"


def check(name, value, ok, rule):
    """Raise ValueError naming ``name`` unless ``ok`` holds everywhere."""
    if not np.all(ok):
        if np.ndim(value) == 0:
            shown = repr(float(value))
        else:
            bad = np.flatnonzero(~np.broadcast_to(np.asarray(ok), np.shape(value)))
            shown = f"array with {bad.size} offending value(s), first at index {bad[0]}: {np.asarray(value)[bad[0]]!r}"
        raise ValueError(f"{name}={shown} violates {rule}")


def check_syn_pair(tau_syn_ex, tau_syn_in):
    """Check an optional pair of synaptic time constants (ms): both None (no synaptic current) or both
    numbers > 0 (ValueError naming the argument otherwise)."""
    if (tau_syn_ex is None) != (tau_syn_in is None):
        raise ValueError("tau_syn_ex and tau_syn_in must both be None (no synaptic current) or both be "
                         f"numbers; got tau_syn_ex={tau_syn_ex!r}, tau_syn_in={tau_syn_in!r}")
    for name, v in (("tau_syn_ex", tau_syn_ex), ("tau_syn_in", tau_syn_in)):
        if v is not None:
            check(name, v, np.asarray(v) > 0, f"{name} > 0 (ms)")


def param_length(params: dict):
    """Common length of the array-valued parameters, or None if all are scalar."""
    n = None
    for name, v in params.items():
        if isinstance(v, np.ndarray):
            if n is None:
                n = v.size
            elif v.size != n:
                raise ValueError(
                    f"parameter arrays have mismatched lengths: {name} has {v.size}, expected {n}")
    return n


def broadcast(name, value, n, dtype=np.float64):
    """Broadcast a scalar or length-``n`` array to a fresh length-``n`` array."""
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.size != n:
        raise ValueError(f"{name} has {value.size} values but the population has {n} neurons")
    return np.array(np.broadcast_to(np.asarray(value, dtype=dtype), (n,)), dtype=dtype)


#: Largest step count any time-like value may have (2**62 steps: ample headroom below the
#: int64 step counter, so ``step + n`` never wraps around).
MAX_STEPS = 1 << 62

#: Largest time (ms) of the event engine, whose clock is a float64: 2**33 ms (about 99 days),
#: where float64 still resolves 2e-6 ms.
MAX_EVENT_TIME = float(1 << 33)


def _check_step_range(name, t, dt):
    """Raise ValueError if a duration ``t`` (ms) has more steps of ``dt`` than the step counter holds."""
    if isinstance(t, (bool, np.bool_, str, bytes)) or np.asarray(t).dtype.kind not in "iuf":
        raise ValueError(f"{name}={t!r} must be a number or an array of numbers (ms)")
    t = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(t)):
        raise ValueError(f"{name} contains NaN or infinite values" if t.ndim else
                         f"{name}={float(t)!r} ms must be finite")
    big = np.abs(t) / dt > MAX_STEPS
    if np.any(big):
        shown = float(t) if t.ndim == 0 else float(t[big][0])
        raise ValueError(f"{name}={shown!r} ms is too large: it is {shown / dt:.3g} steps of dt={dt} ms, "
                         f"beyond the step counter's range of 2**62 steps")


def steps_of(name, t, dt):
    """Number of steps in a duration ``t`` (ms) that must be a multiple of ``dt`` (ms).

    The one conversion of time-like values to int64 steps: values that are not
    finite, not on the grid, or whose step count exceeds :data:`MAX_STEPS` are
    refused with a ValueError naming ``name``.
    """
    from ..config import GRID_RTOL

    _check_step_range(name, t, dt)
    t = np.asarray(t, dtype=np.float64)
    k = np.rint(t / dt)
    bad = np.abs(k * dt - t) > GRID_RTOL * np.maximum(1.0, np.abs(t))
    if np.any(bad):
        shown = repr(float(t)) if t.ndim == 0 else f"{float(t[bad][0])!r} (and {int(bad.sum()) - 1} more)"
        raise ValueError(f"{name}={shown} ms is not a multiple of dt={dt} ms")
    return k.astype(np.int64)


def rounded_steps(name, t, dt):
    """``t`` (ms) rounded to the nearest number of steps of ``dt``, with the range checks of :func:`steps_of`."""
    _check_step_range(name, t, dt)
    return np.rint(np.asarray(t, dtype=np.float64) / dt).astype(np.int64)


def check_event_time(name, t):
    """Raise ValueError if an event-engine time ``t`` (ms, scalar or array) exceeds :data:`MAX_EVENT_TIME`."""
    t = np.asarray(t, dtype=np.float64)
    big = np.abs(t) > MAX_EVENT_TIME
    if np.any(big):
        shown = float(t) if t.ndim == 0 else float(t[big][0])
        raise ValueError(f"{name}={shown!r} ms is too large for the event engine's float64 clock "
                         f"(at most {MAX_EVENT_TIME:.6g} ms, about 99 days)")


_STDP = "a parameter of the plasticity rule here (es.STDP(..., {0}=...), given to net.connect(..., synapse=...))"
_PER_NA = "; PyNN gives it in nA, eventsim in pA (multiply by 1000)"

#: Parameter names of other simulators and what eventsim calls them: the one table behind the hints of
#: every model's constructor (:func:`check_keywords`) and of ``net.set`` / ``net.get``.  ``name ->
#: (eventsim name or None, simulator, note)``; a name is looked up as spelled, then ignoring case.
#: The eventsim name may be a parameter of another model (the hint then names it), or
#: :data:`_ELSEWHERE`'s.
PARAMETER_NAMES = {
    # NEST (iaf_psc_*, iaf_cond_*, aeif_*, izhikevich, and the neuron-side STDP parameters)
    "V_th": ("v_th", "NEST", ""), "V_reset": ("v_reset", "NEST", ""), "C_m": ("c_m", "NEST", ""),
    "E_L": ("v_rest", "NEST", ""), "I_e": ("i_e", "NEST", ""), "t_ref": ("t_ref", "NEST", ""),
    "tau_m": ("tau_m", "NEST", ""), "tau_syn": ("tau_syn_ex and tau_syn_in", "NEST", ""),
    "tau_syn_ex": ("tau_syn_ex", "NEST", ""), "tau_syn_in": ("tau_syn_in", "NEST", ""),
    "V_min": ("v_min", "NEST", ""), "V_m": ("v_init", "NEST", ""), "U_m": ("u_init", "NEST", ""),
    "E_ex": ("e_ex", "NEST", ""), "E_in": ("e_in", "NEST", ""), "V_peak": ("v_peak", "NEST", ""),
    "Delta_T": ("delta_t", "NEST", ""), "tau_w": ("tau_w", "NEST", ""),
    "g_L": ("g_l", "NEST", ""),
    "tau_ref": ("t_ref", "NEST", ""), "tau_minus": (None, "NEST", _STDP.format("tau_minus")),
    "tau_plus": (None, "NEST", _STDP.format("tau_plus")),
    "tau_minus_triplet": (None, "NEST", "es.TripletSTDP(..., tau_y=...) here"),
    "refractory_input": (None, "NEST", "input arriving while refractory is discarded, as NEST's default "
                                       "refractory_input=False"),
    # PyNN (standard cell types)
    "v_thresh": ("v_th", "PyNN", ""), "v_rest": ("v_rest", "PyNN", ""), "tau_refrac": ("t_ref", "PyNN", ""),
    "t_refrac": ("t_ref", "PyNN", ""),
    "cm": ("c_m", "PyNN", "; PyNN gives it in nF, eventsim in pF (multiply by 1000)"),
    "i_offset": ("i_e", "PyNN", _PER_NA), "tau_syn_E": ("tau_syn_ex", "PyNN", ""),
    "tau_syn_I": ("tau_syn_in", "PyNN", ""), "e_rev_E": ("e_ex", "PyNN", ""), "e_rev_I": ("e_in", "PyNN", ""),
    "v_spike": ("v_peak", "PyNN", ""), "delta_T": ("delta_t", "PyNN", ""),
    # Brian2 (the names of its examples) and the torch libraries
    "tau": ("tau_m", "Brian2", ""), "Cm": ("c_m", "Brian2", ""), "El": ("v_rest", "Brian2", ""),
    "Vt": ("v_th", "Brian2", ""), "Vr": ("v_reset", "Brian2", ""), "refractory": ("t_ref", "Brian2", ""),
    "taue": ("tau_syn_ex", "Brian2", ""), "taui": ("tau_syn_in", "Brian2", ""), "Ee": ("e_ex", "Brian2", ""),
    "Ei": ("e_in", "Brian2", ""), "gL": ("g_l", "Brian2", ""),
    "tau_mem": ("tau_m", "NIR", ""), "v_leak": ("v_rest", "NIR", ""), "v_threshold": ("v_th", "NIR", ""),
    "threshold": ("v_th", "snnTorch", ""),
    "v_init": ("v_init", "eventsim", ""),
}
_LOWER = {}
for _k, _v in PARAMETER_NAMES.items():
    _LOWER.setdefault(_k.lower(), (_k, _v))

#: What to do instead, for a model that has ``tau_m`` but not the eventsim name a foreign name maps to.
_WITH_TAU_M = {"g_l": "this model takes the membrane time constant tau_m = C_m / g_L (ms) instead"}

#: Names that are not model parameters but arguments elsewhere, and where they go.
_ELSEWHERE = {"v_init": "the initial potential v_init is an argument of net.population(n, model, v_init=...)"}


def foreign_name(name):
    """``(as spelled in the table, eventsim name or None, simulator, note)`` of ``name`` in
    :data:`PARAMETER_NAMES` (exact spelling first, then ignoring case), or None."""
    if name in PARAMETER_NAMES:
        return (name,) + PARAMETER_NAMES[name]
    hit = _LOWER.get(name.lower())
    return None if hit is None else (name,) + hit[1]


def _owners(target):
    """Names of the registered model classes with a parameter ``target``."""
    from dataclasses import fields as dc_fields, is_dataclass

    from .family import model_classes

    return sorted(nm for nm, cls in model_classes().items()
                  if is_dataclass(cls) and target in [f.name for f in dc_fields(cls) if f.init])


def suggest(name, valid, owner):
    """Why ``name`` is not among the names ``valid`` of ``owner`` (a model class name), and what to use.

    The other simulator's name it may be (:data:`PARAMETER_NAMES`: ``V_th``
    -> ``v_th``, ``E_L`` -> ``v_rest``, ``tau_syn_E`` -> ``tau_syn_ex``,
    ``cm`` -> ``c_m`` with the unit change...), the model class that has it
    if ``owner`` has not, or the nearest valid name
    (:func:`difflib.get_close_matches`).
    """
    hit = foreign_name(name)
    if hit is not None:
        _, target, sim, note = hit
        said = f"{sim}'s {name}" if name != target else None
        if target is None:
            return f"{said}: {note}"
        if target in _ELSEWHERE:
            return (f"{said}: " if said else "") + _ELSEWHERE[target]
        if all(t in valid for t in target.split(" and ")):
            return (f"{said} is {target} here" if said else f"did you mean {target}?") + note
        if target in _WITH_TAU_M and "tau_m" in valid:
            return f"{said or name}: {_WITH_TAU_M[target]}"
        others = _owners(target)
        if others:
            return (f"{said} is {target}" if said else target) + f", a parameter of {', '.join(others)}; " \
                f"{owner} has none" + note
        return (f"{said} would be {target}; {owner} has no such parameter" if said else
                f"{owner} has no parameter {target}") + note
    others = _owners(name)
    if others:
        return f"a parameter of {', '.join(others)}; {owner} has none"
    near = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    near = near or difflib.get_close_matches(name.lower(), valid, n=1, cutoff=0.6)
    return f"did you mean {near[0]}?" if near else "no similar name"


def check_keywords(cls, kwargs, valid, hints=None):
    """Raise TypeError if ``kwargs`` holds names that are not parameters of the model ``cls``.

    The message lists the valid names and, for each unknown one, the eventsim
    name of another simulator's (:func:`suggest`, from the one table
    :data:`PARAMETER_NAMES`: NEST's ``V_th`` -> ``v_th``, ``E_L`` -> ``v_rest``,
    ``tau_syn`` -> ``tau_syn_ex`` and ``tau_syn_in``, ``V_m`` -> ``v_init``,
    PyNN's ``tau_syn_E`` -> ``tau_syn_ex`` ...) or the nearest valid name.

    Parameters
    ----------
    cls : type
        The model class (its name goes into the message).
    kwargs : dict
        The keyword arguments given to the constructor.
    valid : iterable of str
        The parameter names ``cls`` accepts.
    hints : dict, optional
        Extra explanations for particular unknown names (e.g. ``tau_m`` of a
        model without leak); they take precedence over the table.
    """
    valid = sorted(valid)
    unknown = [k for k in kwargs if k not in valid]
    if not unknown:
        return
    hints = hints or {}
    lines = [f"{name!r} ({hints[name] if name in hints else suggest(name, valid, cls.__name__)})"
             for name in unknown]
    listing = f"valid parameters of {cls.__name__}: {', '.join(valid)}" if valid else \
        f"{cls.__name__} has no parameters"
    raise TypeError(f"{cls.__name__}() got unknown parameter{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(lines)}; {listing}")
