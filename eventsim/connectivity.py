"""Connection rules and parameter distributions (pure NumPy).

A rule turns a presynaptic and a postsynaptic group into two index arrays
``(pre, post)`` of local positions within the groups.  The order of the
returned connections is part of the contract: an array ``weight`` or
``delay`` passed to :meth:`eventsim.Network.connect` is matched to it.

=====================  ==========================================================
rule                   order of the connections
=====================  ==========================================================
FixedInDegree(k)       by target, then draw: post = repeat(arange(n_post), k)
FixedProbability(p)    by target, then source index ascending
OneToOne()             i -> i
AllToAll()             by target, then source: (pre, post) = (j, i) row-major in i
FromArrays(pre, post)  as given
=====================  ==========================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _index_array(name, a):
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.rint(arr) == arr):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must contain integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _distinct_per_row(rng, n_choices, counts):
    """For each row r draw counts[r] distinct integers in [0, n_choices), sorted within rows."""
    rows = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    vals = rng.integers(0, n_choices, size=rows.size, dtype=np.int64)
    while True:
        order = np.lexsort((vals, rows))
        rows, vals = rows[order], vals[order]
        dup = np.zeros(rows.size, dtype=bool)
        dup[1:] = (rows[1:] == rows[:-1]) & (vals[1:] == vals[:-1])
        if not dup.any():
            return rows, vals
        vals[dup] = rng.integers(0, n_choices, size=int(dup.sum()), dtype=np.int64)


class Rule:
    """Base class of connection rules."""

    def connections(self, pre_ids, post_ids, rng):
        """Return local index arrays ``(pre, post)``.

        Parameters
        ----------
        pre_ids, post_ids : ndarray of int64
            Global ids of the groups' members (used to detect autapses; a
            source never equals a neuron, the caller passes disjoint ranges).
        rng : numpy.random.Generator
            Stream reserved for this projection.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class FixedInDegree(Rule):
    """Each target receives exactly ``k`` connections from randomly drawn sources.

    Parameters
    ----------
    k : int
        In-degree (>= 0).
    allow_autapses : bool
        Whether a neuron may connect to itself.
    allow_multapses : bool
        Whether the same pair may be drawn more than once (NEST's default).
    """

    k: int
    allow_autapses: bool = False
    allow_multapses: bool = True

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 0:
            raise ValueError(f"FixedInDegree: k={self.k!r} must be an integer >= 0")

    def connections(self, pre_ids, post_ids, rng):
        n_pre, n_post, k = pre_ids.size, post_ids.size, int(self.k)
        if n_post == 0 or k == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if n_pre == 0:
            raise ValueError("FixedInDegree: the source group is empty")
        overlap = (not self.allow_autapses) and np.intersect1d(pre_ids, post_ids).size > 0
        avail = n_pre - (1 if overlap else 0)
        if not self.allow_multapses and k > avail:
            raise ValueError(f"FixedInDegree: k={k} exceeds the {avail} distinct sources available "
                             "without multapses")
        if avail <= 0:
            raise ValueError("FixedInDegree: no source available without autapses")
        post = np.repeat(np.arange(n_post, dtype=np.int64), k)
        if self.allow_multapses:
            pre = rng.integers(0, n_pre, size=post.size, dtype=np.int64)
        else:
            _, pre = _distinct_per_row(rng, n_pre, np.full(n_post, k, dtype=np.int64))
        if overlap:
            # position of each target's own id in the source group (-1 if none)
            lookup = {int(g): i for i, g in enumerate(pre_ids)}
            self_pos = np.array([lookup.get(int(g), -1) for g in post_ids], dtype=np.int64)
            while True:
                bad = pre == self_pos[post]
                if self.allow_multapses is False:
                    # redraw whole rows that contain the target itself
                    rows = np.unique(post[bad])
                    if rows.size == 0:
                        break
                    for r in rows:
                        sel = post == r
                        cand = np.delete(np.arange(n_pre), self_pos[r])
                        pre[sel] = np.sort(rng.choice(cand, size=k, replace=False))
                    continue
                if not bad.any():
                    break
                pre[bad] = rng.integers(0, n_pre, size=int(bad.sum()), dtype=np.int64)
        return pre, post


@dataclass(frozen=True)
class FixedProbability(Rule):
    """Each (source, target) pair is connected independently with probability ``p``.

    Parameters
    ----------
    p : float
        Connection probability in [0, 1].
    allow_autapses : bool
        Whether a neuron may connect to itself.
    """

    p: float
    allow_autapses: bool = False

    def __post_init__(self):
        p = self.p
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) \
                or not (0.0 <= float(p) <= 1.0) or math.isnan(float(p)):
            raise ValueError(f"FixedProbability: p={p!r} must be a number in [0, 1]")

    def connections(self, pre_ids, post_ids, rng):
        n_pre, n_post = pre_ids.size, post_ids.size
        if n_pre == 0 or n_post == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        counts = rng.binomial(n_pre, float(self.p), size=n_post).astype(np.int64)
        post, pre = _distinct_per_row(rng, n_pre, counts)
        if not self.allow_autapses:
            keep = pre_ids[pre] != post_ids[post]
            pre, post = pre[keep], post[keep]
        return pre, post


@dataclass(frozen=True)
class OneToOne(Rule):
    """Source i connects to target i; both groups must have the same size."""

    def connections(self, pre_ids, post_ids, rng):
        if pre_ids.size != post_ids.size:
            raise ValueError(f"OneToOne: the groups have different sizes ({pre_ids.size} sources, "
                             f"{post_ids.size} targets)")
        i = np.arange(pre_ids.size, dtype=np.int64)
        return i, i.copy()


@dataclass(frozen=True)
class AllToAll(Rule):
    """Every source connects to every target.

    Parameters
    ----------
    allow_autapses : bool
        Whether a neuron may connect to itself.
    """

    allow_autapses: bool = True

    def connections(self, pre_ids, post_ids, rng):
        post = np.repeat(np.arange(post_ids.size, dtype=np.int64), pre_ids.size)
        pre = np.tile(np.arange(pre_ids.size, dtype=np.int64), post_ids.size)
        if not self.allow_autapses:
            keep = pre_ids[pre] != post_ids[post]
            pre, post = pre[keep], post[keep]
        return pre, post


class FromArrays(Rule):
    """Explicit connections: ``pre[i]`` -> ``post[i]`` (local indices within the groups).

    Parameters
    ----------
    pre, post : array_like of int
        Equal-length index arrays.
    """

    def __init__(self, pre, post):
        self.pre = _index_array("FromArrays: pre", pre)
        self.post = _index_array("FromArrays: post", post)
        if self.pre.size != self.post.size:
            raise ValueError(f"FromArrays: pre has {self.pre.size} entries but post has {self.post.size}")

    def __repr__(self):
        return f"FromArrays(<{self.pre.size} connections>)"

    def connections(self, pre_ids, post_ids, rng):
        for name, idx, n in (("pre", self.pre, pre_ids.size), ("post", self.post, post_ids.size)):
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                bad = idx[(idx < 0) | (idx >= n)][0]
                raise ValueError(f"FromArrays: {name} index {bad} is out of range for a group of {n}")
        return self.pre.copy(), self.post.copy()


# --------------------------------------------------------------------------- distributions
class Distribution:
    """Base class of parameter distributions used for weights, delays and initial values."""

    def sample(self, rng, n):
        """Draw ``n`` float64 values with ``rng``."""
        raise NotImplementedError


def _truncate(draw, rng, n, low, high):
    x = draw(n)
    for _ in range(1000):
        bad = (x < low) | (x > high)
        if not bad.any():
            return x
        x[bad] = draw(int(bad.sum()))
    raise ValueError(f"could not draw values inside [{low}, {high}]: the bounds hold too little mass")


@dataclass(frozen=True)
class Normal(Distribution):
    """Normal distribution, optionally truncated to ``[low, high]`` by redrawing.

    Parameters
    ----------
    mean, std : float
        Mean and standard deviation (units of the parameter), std >= 0.
    low, high : float
        Bounds; values outside are redrawn.
    """

    mean: float
    std: float
    low: float = -math.inf
    high: float = math.inf

    def __post_init__(self):
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std >= 0):
            raise ValueError(f"Normal(mean={self.mean}, std={self.std}): need finite mean and std >= 0")
        if not self.low < self.high:
            raise ValueError(f"Normal: low={self.low} must be < high={self.high}")

    def sample(self, rng, n):
        return _truncate(lambda m: rng.normal(self.mean, self.std, size=m), rng, n, self.low, self.high)


@dataclass(frozen=True)
class Uniform(Distribution):
    """Uniform distribution on ``[low, high)``."""

    low: float
    high: float

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"Uniform(low={self.low}, high={self.high}): need finite low < high")

    def sample(self, rng, n):
        return rng.uniform(self.low, self.high, size=n)
