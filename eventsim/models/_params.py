"""Validation and packing helpers shared by the neuron model families."""

from __future__ import annotations

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


def check(name, value, ok, rule):
    """Raise ValueError naming ``name`` unless ``ok`` holds everywhere."""
    if not np.all(ok):
        if np.ndim(value) == 0:
            shown = repr(float(value))
        else:
            bad = np.flatnonzero(~np.broadcast_to(np.asarray(ok), np.shape(value)))
            shown = f"array with {bad.size} offending value(s), first at index {bad[0]}: {np.asarray(value)[bad[0]]!r}"
        raise ValueError(f"{name}={shown} violates {rule}")


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


#: Parameter names of NEST (and other simulators), lower-cased, and what eventsim calls them.
NEST_NAMES = {
    "v_th": "v_th", "c_m": "c_m", "e_l": "v_rest", "v_reset": "v_reset", "t_ref": "t_ref",
    "i_e": "i_e", "tau_m": "tau_m", "tau_syn": "tau_syn_ex and tau_syn_in", "tau_syn_ex": "tau_syn_ex",
    "tau_syn_in": "tau_syn_in", "v_min": "v_min", "tau_ref": "t_ref", "t_refrac": "t_ref",
    "v_rest": "v_rest", "v_m": "v_init", "v_init": "v_init", "v_thresh": "v_th",
}

#: Names that are not model parameters but arguments elsewhere, and where they go.
_ELSEWHERE = {"v_init": "the initial potential v_init is an argument of net.population(n, model, v_init=...)"}


def check_keywords(cls, kwargs, valid, hints=None):
    """Raise TypeError if ``kwargs`` holds names that are not parameters of the model ``cls``.

    The message lists the valid names and, for each unknown one, the NEST
    equivalent (``V_th`` -> ``v_th``, ``E_L`` -> ``v_rest``, ``tau_syn`` ->
    ``tau_syn_ex`` and ``tau_syn_in``, ``V_m`` -> ``v_init`` ...) or the
    nearest valid name (:func:`difflib.get_close_matches`).

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
        model without leak).
    """
    valid = sorted(valid)
    unknown = [k for k in kwargs if k not in valid]
    if not unknown:
        return
    hints = hints or {}
    lines = []
    for name in unknown:
        target = NEST_NAMES.get(name.lower())
        if name in hints:
            why = hints[name]
        elif target in _ELSEWHERE:
            why = (f"NEST's {name}: " if name != target else "") + _ELSEWHERE[target]
        elif target is not None and all(t in valid for t in target.split(" and ")):
            why = f"NEST's {name} is {target} here" if target != name else f"did you mean {target}?"
        else:
            near = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
            near = near or difflib.get_close_matches(name.lower(), valid, n=1, cutoff=0.6)
            why = f"did you mean {near[0]}?" if near else "no similar name"
        lines.append(f"{name!r} ({why})")
    raise TypeError(f"{cls.__name__}() got unknown parameter{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(lines)}; valid parameters of {cls.__name__}: {', '.join(valid)}")
