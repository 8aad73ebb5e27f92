r"""The first threshold crossing of a free trajectory, for any family that bounds its distance to threshold.

A family of the event engine (see :mod:`eventsim.models.family`) whose
crossing time has no closed form declares three functions of the time
``s`` since the neuron's last event: its distance to threshold
:math:`f(s)` (mV, :math:`\ge 0` at and after the crossing), ``slope``
:math:`(f(s), f'(s))`, and ``bounds`` on an interval :math:`[a, b]`: an
upper bound of :math:`f` and a lower bound of :math:`f'`, both rigorous.
:func:`leftmost_crossing` then finds the first :math:`s` with
:math:`f(s) \ge 0` without missing one: intervals whose upper bound is
negative are pruned, the others halved left first; an interval on which
:math:`f` is provably increasing and changes sign is solved by safeguarded
Newton iteration to :data:`TOL`.
"""

from __future__ import annotations

import math

from numba import njit

from .family import TL, TR, bounds, distance, slope

#: Width (ms) at which a crossing is located.
TOL = 1e-13

_jit = njit(cache=True, _nrt=False)


@_jit
def newton(fam, i, p, a, b, PP, SS, TH, ITH):
    """Root of the increasing distance on ``[a, b]`` (f(a) < 0 <= f(b)), to :data:`TOL` ms."""
    x = b
    for _ in range(200):
        fx, dfx = slope(fam, i, p, x, PP, SS, TH, ITH)
        if fx >= 0.0:
            b = x
        else:
            a = x
        if b - a <= TOL:
            return b
        nx = x - fx / dfx if dfx > 0.0 else 0.5 * (a + b)
        if not (a < nx < b):
            nx = 0.5 * (a + b)
        if abs(nx - x) <= TOL:
            return nx  # converged: |root - nx| < TOL
        x = nx
    return b


@_jit
def leftmost_crossing(fam, i, p, tl, s0, H, PP, SS, TH, ITH, stack):
    """Absolute time (ms) of the first crossing at or after ``s0`` ms past the last event ``tl`` (inf: none).

    ``f(s0) < 0`` and the bound of the distance on ``[s0, inf)`` is >= 0
    (the caller has checked both).  ``H`` (ms) is the first horizon tried
    (the family's longest time constant): it doubles until the distance is
    >= 0 there or no crossing can follow it.  ``stack`` is float64
    ``[256, 2]`` scratch space.
    """
    # a horizon beyond which no crossing can happen, or where the distance is >= 0
    b = s0 + H
    for _ in range(200):
        b = s0 + H
        if distance(fam, i, p, b, PP, SS, TH, ITH) >= 0.0:
            break
        gap, _ = bounds(fam, i, p, b, math.inf, PP, SS, TH, ITH)
        if gap < 0.0:
            break
        H *= 2.0
    else:
        return math.inf
    # leftmost root on [s0, b]: branch and bound, left half first
    stack[0, 0] = s0
    stack[0, 1] = b
    sp = 1
    while sp > 0:
        sp -= 1
        a = stack[sp, 0]
        c = stack[sp, 1]
        gap, rate = bounds(fam, i, p, a, c, PP, SS, TH, ITH)
        if gap < 0.0:
            continue
        fc = distance(fam, i, p, c, PP, SS, TH, ITH)
        if c - a <= TOL:
            if fc >= 0.0:
                return tl + c
            continue
        if fc >= 0.0 and rate > 0.0:
            return tl + newton(fam, i, p, a, c, PP, SS, TH, ITH)
        if sp + 2 > stack.shape[0]:  # cannot happen with 256 levels of halving; be safe
            return tl + c if fc >= 0.0 else math.inf
        m = 0.5 * (a + c)
        stack[sp, 0] = m
        stack[sp, 1] = c
        stack[sp + 1, 0] = a
        stack[sp + 1, 1] = m
        sp += 2
    return math.inf


@_jit
def next_crossing_bounded(fam, i, p, H, PP, SS, TH, ITH, stack):
    """Absolute time (ms) at which neuron ``i`` first reaches threshold without further input, not before the
    end of its refractory period (inf: never), from the family's ``distance`` and ``bounds`` alone: at once
    if it is at or above threshold there, never if the bound on ``[s0, inf)`` stays below, else
    :func:`leftmost_crossing` (``H``: the first horizon, the family's longest time constant, ms).  The
    ``next_crossing`` of a family without a closed form."""
    tl = SS[i, TL]
    s0 = max(SS[i, TR] - tl, 0.0)
    if distance(fam, i, p, s0, PP, SS, TH, ITH) >= 0.0:
        return tl + s0
    gap, _ = bounds(fam, i, p, s0, math.inf, PP, SS, TH, ITH)
    if gap < 0.0:
        return math.inf
    return leftmost_crossing(fam, i, p, tl, s0, H, PP, SS, TH, ITH, stack)
