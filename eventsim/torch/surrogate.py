r"""Surrogate derivatives of the spike threshold, selectable by name.

The forward pass of every layer is the exact Heaviside step
:math:`z = H(u)` with :math:`u = v - \vartheta` (membrane potential minus
effective threshold, in the layer's voltage unit).  Backward replaces
:math:`H'(u)` by one of the functions below; ``alpha`` is its parameter.

==================== ======================================================= =============== =========================================
name                 :math:`\partial z / \partial u`                          default alpha   the same as
==================== ======================================================= =============== =========================================
``"superspike"``     :math:`1 / (\alpha |u| + 1)^2`                           1               norse ``"super"`` (alpha = 1; norse ignores
                                                                                              its own alpha); snnTorch ``fast_sigmoid``
                                                                                              (alpha = slope, default 25)
``"sigmoid"``        :math:`\alpha\,\sigma(\alpha u)(1 - \sigma(\alpha u))`   4               SpikingJelly ``Sigmoid`` (alpha 4),
                                                                                              snnTorch ``sigmoid`` (slope 25)
``"single_exponential"`` :math:`\alpha\, e^{-\alpha |u|}`                     2               sinabs ``SingleExponential`` with
                                                                                              alpha = 1 / (threshold * grad_width)
``"triangle"``       :math:`\alpha \max(0, 1 - |u|)`                          1               norse ``"triangle"``
``"atan"``           :math:`\frac{\alpha/2}{1 + (\frac{\pi}{2}\alpha u)^2}`     2               snnTorch ``atan`` (its default surrogate),
                                                                                              SpikingJelly ``ATan``
``"straight_through"`` :math:`1`                                              (unused)        snnTorch ``straight_through_estimator``
==================== ======================================================= =============== =========================================

The functions are scalar Numba functions (``surrogate_grad``) called from
the fused backward kernels, on CPU and as CUDA device functions.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.extending import overload

from ..models.family import like  # noqa: F401  (re-exported: the typed constants of the scalar steps)

SUPERSPIKE = 0
SIGMOID = 1
SINGLE_EXPONENTIAL = 2
TRIANGLE = 3
ATAN = 4
STRAIGHT_THROUGH = 5

#: name -> (code, default alpha)
SURROGATES = {
    "superspike": (SUPERSPIKE, 1.0),
    "sigmoid": (SIGMOID, 4.0),
    "single_exponential": (SINGLE_EXPONENTIAL, 2.0),
    "triangle": (TRIANGLE, 1.0),
    "atan": (ATAN, 2.0),
    "straight_through": (STRAIGHT_THROUGH, 1.0),
}

_HALF_PI = 0.5 * math.pi


def resolve(name, alpha=None):
    """Return ``(code, alpha)`` for a surrogate name; ``alpha=None`` picks its default.

    Raises
    ------
    ValueError
        For an unknown name or a non-finite / non-positive ``alpha``.
    """
    if not isinstance(name, str) or name not in SURROGATES:
        raise ValueError(f"surrogate={name!r} must be one of {sorted(SURROGATES)}")
    code, default = SURROGATES[name]
    if alpha is None:
        alpha = default
    if isinstance(alpha, bool) or not (isinstance(alpha, str) or np.isscalar(alpha) or np.ndim(alpha) == 0):
        raise ValueError(f"alpha={alpha!r} must be a single number")
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha={alpha!r} must be a number") from None
    if not (math.isfinite(alpha) and alpha > 0.0):
        raise ValueError(f"alpha={alpha!r} must be a finite number > 0")
    return code, alpha


@njit(inline="always", cache=True, error_model="numpy")
def surrogate_grad(code, alpha, u):
    """Surrogate derivative ``dz/du`` of the surrogate ``code`` at ``u`` (see the module table).

    Computed in the floating type of ``u`` (``alpha`` is converted to it).
    """
    a = like(u, alpha)
    one = like(u, 1.0)
    if code == SUPERSPIKE:
        d = a * abs(u) + one
        return one / (d * d)
    if code == SIGMOID:
        s = one / (one + math.exp(-a * u))
        return a * s * (one - s)
    if code == SINGLE_EXPONENTIAL:
        return a * math.exp(-a * abs(u))
    if code == TRIANGLE:
        return a * max(like(u, 0.0), one - abs(u))
    if code == ATAN:
        w = like(u, _HALF_PI) * a * u
        return like(u, 0.5) * a / (one + w * w)
    return one


# the models' reverse steps name the surrogate through eventsim.models.family.spike_grad (they never import torch)
def _bind_spike_grad():
    from ..models import family

    if not family._SPIKE_GRAD:
        family._SPIKE_GRAD.append(surrogate_grad.py_func)

    @overload(family.spike_grad)
    def _spike_grad(code, alpha, u):
        return lambda code, alpha, u: surrogate_grad(code, alpha, u)


_bind_spike_grad()
