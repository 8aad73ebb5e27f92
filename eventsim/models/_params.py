"""Validation and packing helpers shared by the neuron model families."""

from __future__ import annotations

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
    if isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be a number, not a bool")
    if np.isscalar(value):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}={value!r} must be a number or an array of numbers") from None
        if math.isnan(v) or (math.isinf(v) and not allow_inf):
            raise ValueError(f"{name}={v!r} must be finite")
        return v
    try:
        arr = np.asarray(value, dtype=np.float64)
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


def steps_of(name, t, dt):
    """Number of steps in a duration ``t`` (ms) that must be a multiple of ``dt`` (ms)."""
    from ..config import GRID_RTOL

    t = np.asarray(t, dtype=np.float64)
    k = np.rint(t / dt)
    bad = np.abs(k * dt - t) > GRID_RTOL * np.maximum(1.0, np.abs(t))
    if np.any(bad):
        shown = repr(float(t)) if t.ndim == 0 else f"{float(t[bad][0])!r} (and {int(bad.sum()) - 1} more)"
        raise ValueError(f"{name}={shown} ms is not a multiple of dt={dt} ms")
    return k.astype(np.int64)
