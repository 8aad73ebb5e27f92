"""Validation of the torch bridge's arguments at the public boundary.

The checks run once, in a layer's ``__init__`` or at the entry of a call,
on Python scalars, NumPy copies of the parameters and tensor shapes; the
kernels assume valid input.  Messages read as the simulator's models do
(:mod:`eventsim.models._params`): they name the argument, its value and the
rule it breaks.
"""

from __future__ import annotations

import operator

import numpy as np
import torch

from ..models._params import as_param, check, param_length, steps_of

__all__ = ["param", "positive", "scalar", "size", "flag", "same_length", "ref_steps", "choice", "tensor_input",
           "per_neuron"]


def _no_text(name, value):
    """Refuse strings, which the simulator's ``as_param`` would parse as numbers."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name}={value!r} must be a number or an array of numbers")


def _values(name, value, allow_inf=False):
    """Float or 1-D float64 array of a parameter given as a number, array_like or Tensor."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise ValueError(f"{name} must be a real number or a tensor of real numbers, got a {value.dtype} tensor")
        value = value.detach().to("cpu", torch.float64).numpy()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    _no_text(name, value)
    out = as_param(name, value, allow_inf=allow_inf)
    if isinstance(out, np.ndarray) and out.size == 0:
        raise ValueError(f"{name} is an empty array; expected a number or one value per neuron")
    return out


def param(name, value, *, allow_none=False):
    """Check a neuron parameter (finite number, or one finite value per neuron).

    Parameters
    ----------
    name : str
        Argument name, used in the messages.
    value : float, array_like, Tensor or None
        A number, or a 1-D list / ndarray / Tensor with one value per neuron.
    allow_none : bool
        Whether None is accepted (and returned as None).

    Returns
    -------
    float, ndarray or None
        The values as the simulator's models hold them (a float or a 1-D
        float64 array), for range checks and lengths.

    Raises
    ------
    ValueError
        For a value that is not a number or 1-D array of numbers, or one
        with NaN or infinite values.
    """
    if value is None and allow_none:
        return None
    return _values(name, value)


def positive(name, value, unit="ms", allow_none=False):
    """:func:`param` that also requires every value to be > 0 (a time constant)."""
    v = param(name, value, allow_none=allow_none)
    if v is not None:
        check(name, v, np.asarray(v) > 0, f"{name} > 0 ({unit})")
    return v


def scalar(name, value, rule="a finite number", ok=None):
    """A finite Python float from a number (or 0-d tensor / array); ``ok(v)`` must hold.

    Raises ValueError naming ``name`` for lists, arrays with more than one
    value, strings, bools, NaN and infinities, or when ``ok`` fails.
    """
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not (isinstance(value, str) or np.isscalar(value)) and value is not None:
        raise ValueError(f"{name}={value!r} must be a single number ({rule})")
    _no_text(name, value)
    v = as_param(name, value)
    if ok is not None and not ok(v):
        raise ValueError(f"{name}={v!r} must be {rule}")
    return v


def size(name, value, minimum=1):
    """A Python int >= ``minimum`` from an integer (bool and non-integral numbers are refused)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r} must be an integer >= {minimum}, not a bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}={value!r} must be an integer >= {minimum}, got {type(value).__name__}") from None
    if v < minimum:
        raise ValueError(f"{name}={v!r} must be an integer >= {minimum}")
    return int(v)


def flag(name, value, allow_none=False):
    """A bool from True / False (or 0 / 1); anything else is a TypeError naming ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    expected = "True, False or None" if allow_none else "True or False"
    raise TypeError(f"{name}={value!r} must be {expected}")


def same_length(values):
    """Common length of the per-neuron parameters in ``values`` (a dict), None if all are scalar."""
    return param_length({k: v for k, v in values.items() if isinstance(v, np.ndarray)})


#: Longest refractory period in steps: the kernels count it down in an int32 per neuron.
MAX_REF_STEPS = (1 << 31) - 1


def ref_steps(t_ref, dt):
    """``(t_ref, steps)``: the refractory period (ms, >= 0, a multiple of ``dt``) and its step count."""
    t = scalar("t_ref", t_ref, "a finite number >= 0 (ms), a multiple of dt", lambda v: v >= 0)
    if t / dt > MAX_REF_STEPS:
        raise ValueError(f"t_ref={t!r} ms is {t / dt:.3g} steps of dt={dt} ms; at most {MAX_REF_STEPS} steps "
                         "(the refractory counter is an int32)")
    return t, int(steps_of("t_ref", t, dt))


def choice(name, value, options):
    """``value`` if it is one of ``options`` (strings); ValueError naming ``name`` otherwise."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}={value!r} must be one of {sorted(options)}")
    return value


#: Input dtypes run in float32 inside the kernels (state and accumulation), outputs cast back.
HALF = (torch.float16, torch.bfloat16)


def tensor_input(name, x, min_dim=2, layout="[T, B, ...]"):
    """Check a sequence input: a floating-point CPU or CUDA tensor with at least ``min_dim`` axes.

    float32 and float64 run as they are; float16 and bfloat16 are accepted
    and computed in float32 by the callers (:data:`HALF`).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {layout}, got {type(x).__name__} "
                        "(convert it with torch.as_tensor)")
    if x.dtype not in (torch.float32, torch.float64) + HALF:
        raise TypeError(f"{name} must be float32, float64, float16 or bfloat16, got {x.dtype}")
    if x.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} is on device {str(x.device)!r}; expected a CPU or CUDA tensor")
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have shape {layout}, got {tuple(x.shape)}")
    return x


def per_neuron(lengths, n):
    """Check that every per-neuron parameter (``{name: length}``) has 1 or ``n`` values."""
    for name, k in lengths.items():
        if k not in (1, n):
            raise ValueError(f"{name} has {k} values but the layer has {n} neurons (features)")
