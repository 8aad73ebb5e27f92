"""Connection rules and parameter distributions (pure NumPy).

A rule turns a presynaptic and a postsynaptic group into two index arrays
``(pre, post)`` of local positions within the groups.  The order of the
returned connections is part of the contract: an array ``weight`` or
``delay`` passed to :meth:`eventsim.Network.connect` is matched to it.

=====================  ==========================================================
rule                   order of the connections
=====================  ==========================================================
FixedInDegree(k)       by target: post = repeat(arange(n_post), k); within a
                       target in draw order, or source index ascending
                       with ``allow_multapses=False``
FixedProbability(p)    by target, then source index ascending
OneToOne()             i -> i
AllToAll()             by target, then source: (pre, post) = (j, i) row-major in i
FromArrays(pre, post)  as given
=====================  ==========================================================

Rules that exclude repeats (``FixedInDegree(k, allow_multapses=False)``,
``FixedProbability``) sample each target's sources without replacement,
exactly uniformly, in expected O(k) time and memory per target for ``k``
sources (also when ``k`` is all of them): see :func:`_distinct_per_row`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _number(where, name, value):
    """A real number as a float; anything else (str, bool, None, arrays) is a ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where}: {name}={value!r} must be a number")
    return float(value)


def _flags(rule, *names):
    """Refuse rule options that are not True or False (a TypeError naming the option)."""
    for name in names:
        v = getattr(rule, name)
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{type(rule).__name__}: {name}={v!r} must be True or False")


#: Largest in-degree or number of connections per target a rule accepts (the int64 index arithmetic's range).
MAX_PER_TARGET = 1 << 40


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


def _self_positions(pre_ids, post_ids, order=None):
    """Position of each target's own id in the source group, -1 where the group does not hold it.

    ``order``: ``argsort(pre_ids, kind="stable")`` if already known."""
    if order is None:
        order = np.argsort(pre_ids, kind="stable")
    ids = pre_ids[order]
    j = np.minimum(np.searchsorted(ids, post_ids), ids.size - 1)
    return np.where(ids[j] == post_ids, order[j], -1).astype(np.int64)


def _member(sorted_keys, x):
    """Whether each value of ``x`` is in the ascending array ``sorted_keys``."""
    i = np.searchsorted(sorted_keys, x)
    hit = i < sorted_keys.size
    hit[hit] = sorted_keys[i[hit]] == x[hit]
    return hit


def _distinct_by_redraw(rng, high, counts):
    """``counts[r]`` distinct integers in ``[0, high[r])`` per row, by redrawing repeated values.

    ``high`` is an int (every row) or an array with one bound per row.  All
    values are drawn independently; then every repeat of a value within a row
    is redrawn (the redraws in row order), until no row repeats a value.
    The procedure treats every value alike, so each set of ``counts[r]``
    values is equally likely.  When ``counts[r] <= high[r] / 2`` a redraw
    repeats with probability below 1/2: expected O(counts[r]) draws per row.
    Only the redrawn values are sorted and looked up again, so a round costs
    time in proportion to its redraws.

    Returns ``(rows, vals)``, row-major, values ascending within a row.
    """
    counts = np.asarray(counts, np.int64)
    scalar = np.ndim(high) == 0
    width = max(int(high) if scalar else int(high.max(initial=1)), 1)
    if counts.size * width >= 2**62:  # one int64 key (row, value) per draw must fit
        raise ValueError(f"{counts.size} targets x {width} sources are too many pairs to sample")

    def draw(rows):
        if scalar:
            return rows * width + rng.integers(0, high, size=rows.size, dtype=np.int64)
        return rows * width + rng.integers(0, high[rows], dtype=np.int64)

    rows = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    key = np.sort(draw(rows))
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    kept = key[first]                     # distinct (row, value) keys, ascending
    again = key[~first] // width          # rows of the values to redraw, ascending
    added = np.zeros(0, np.int64)         # distinct keys accepted from redraws, ascending
    while again.size:
        new = np.sort(draw(again))
        ok = np.ones(new.size, dtype=bool)
        ok[1:] = new[1:] != new[:-1]
        ok &= ~_member(kept, new) & ~_member(added, new)
        added = np.insert(added, np.searchsorted(added, new[ok]), new[ok])
        again = new[~ok] // width
    key = np.insert(kept, np.searchsorted(kept, added), added)
    return rows, key - rows * width


def _distinct_per_row(rng, n_choices, counts, skip=None):
    """For each row r draw counts[r] distinct integers in [0, n_choices), sorted within rows.

    Every set of ``counts[r]`` values is equally likely.  Where ``skip[r] >=
    0`` that value is left out (it is never drawn; the row has
    ``n_choices - 1`` values to choose from).  Rows that take at most half of
    their values draw them by :func:`_distinct_by_redraw`; fuller rows draw
    the values they leave out that way and keep the others.  Expected time
    and memory O(counts[r]) per row, also when a row takes every value.

    Returns ``(rows, vals)``, row-major.
    """
    counts = np.asarray(counts, np.int64)
    n_rows = counts.size
    if skip is None:
        n_r = np.full(n_rows, n_choices, dtype=np.int64)
    else:
        n_r = n_choices - (skip >= 0).astype(np.int64)
    full = 2 * counts > n_r
    drawn = np.where(full, n_r - counts, counts)
    d_rows, d_vals = _distinct_by_redraw(rng, n_choices if skip is None else n_r, drawn)
    if skip is not None:  # values at and above the skipped one move up by one
        s = skip[d_rows]
        d_vals = d_vals + ((s >= 0) & (d_vals >= s))
    if not full.any():
        return d_rows, d_vals
    keep = ~full[d_rows]
    parts = [(d_rows[keep], d_vals[keep])]
    f_idx = np.flatnonzero(full)
    mask = np.ones((f_idx.size, n_choices), dtype=bool)
    local = np.cumsum(full) - 1
    out = full[d_rows]
    mask[local[d_rows[out]], d_vals[out]] = False
    if skip is not None:
        has = skip[f_idx] >= 0
        mask[np.flatnonzero(has), skip[f_idx][has]] = False
    fr, fv = np.nonzero(mask)
    parts.append((f_idx[fr], fv.astype(np.int64)))
    # both parts are row-major: place them at their rows' offsets
    total = int(counts.sum())
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
    vals = np.empty(total, dtype=np.int64)
    offset = np.cumsum(counts) - counts
    for in_part, (pr, pv) in zip((~full, full), parts):
        part_counts = np.where(in_part, counts, 0)
        part_start = np.cumsum(part_counts) - part_counts
        vals[offset[pr] + np.arange(pr.size, dtype=np.int64) - part_start[pr]] = pv
    return rows, vals


class Rule:
    """Base class of connection rules.

    A rule that draws target by target implements :meth:`_prepare` (checks
    and look-ups over the whole groups, once) and :meth:`_block` (the
    connections of the targets at positions ``a .. e-1``, in the rule's
    order, from one random stream); :func:`draw` calls them block by block.
    """

    def connections(self, pre_ids, post_ids, rng):
        """Return local index arrays ``(pre, post)``, all targets drawn from the one stream ``rng``.

        Parameters
        ----------
        pre_ids, post_ids : ndarray of int64
            Global ids of the groups' members (used to detect autapses; a
            source never equals a neuron, the caller passes disjoint ranges).
        rng : numpy.random.Generator
            Stream reserved for this projection.
        """
        return self._block(self._prepare(pre_ids, post_ids), 0, post_ids.size, rng)

    def _prepare(self, pre_ids, post_ids):
        """Validate the groups for this rule; returns what :meth:`_block` needs."""
        return (pre_ids, post_ids)

    def _block(self, ctx, a, e, rng):
        """``(pre, post)`` (int64 positions) of the targets at positions ``a .. e-1``, drawn from ``rng``."""
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

    Notes
    -----
    Without multapses, each target's ``k`` sources are a uniformly random
    set of distinct sources (leaving out the target itself unless
    ``allow_autapses``), listed in ascending order, in expected O(k) time
    and memory per target, so ``k`` may be as large as the number of
    sources.  The mapping from seed to connections changed when this
    sampler was introduced: it is the same as before only when ``k`` is at
    most half the sources and no target is among the sources (or autapses
    are allowed); otherwise the same seed gives other connections than
    earlier versions did.
    """

    k: int
    allow_autapses: bool = False
    allow_multapses: bool = True

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 0:
            raise ValueError(f"FixedInDegree: k={self.k!r} must be an integer >= 0")
        if self.k > MAX_PER_TARGET:
            raise ValueError(f"FixedInDegree: k={self.k!r} is too large (at most 2**40 connections per target)")
        _flags(self, "allow_autapses", "allow_multapses")

    def _prepare(self, pre_ids, post_ids):
        n_pre, n_post, k = pre_ids.size, post_ids.size, int(self.k)
        if n_post == 0 or k == 0:
            return None
        if n_pre == 0:
            raise ValueError("FixedInDegree: the source group is empty")
        overlap = (not self.allow_autapses) and np.intersect1d(pre_ids, post_ids).size > 0
        avail = n_pre - (1 if overlap else 0)
        if not self.allow_multapses and k > avail:
            raise ValueError(f"FixedInDegree: k={k} exceeds the {avail} distinct sources available "
                             "without multapses")
        if avail <= 0:
            raise ValueError("FixedInDegree: no source available without autapses")
        order = np.argsort(pre_ids, kind="stable") if overlap else None
        return pre_ids, post_ids, overlap, order

    def _block(self, ctx, a, e, rng):
        if ctx is None or e <= a:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pre_ids, post_ids, overlap, order = ctx
        n_pre, k = pre_ids.size, int(self.k)
        post = np.repeat(np.arange(e - a, dtype=np.int64), k)
        self_pos = _self_positions(pre_ids, post_ids[a:e], order) if overlap else None
        if not self.allow_multapses:
            _, pre = _distinct_per_row(rng, n_pre, np.full(e - a, k, dtype=np.int64), skip=self_pos)
            return pre, post + a
        pre = rng.integers(0, n_pre, size=post.size, dtype=np.int64)
        if overlap:
            while True:
                bad = pre == self_pos[post]
                if not bad.any():
                    break
                pre[bad] = rng.integers(0, n_pre, size=int(bad.sum()), dtype=np.int64)
        return pre, post + a


@dataclass(frozen=True)
class FixedProbability(Rule):
    """Each (source, target) pair is connected independently with probability ``p``.

    Parameters
    ----------
    p : float
        Connection probability in [0, 1].
    allow_autapses : bool
        Whether a neuron may connect to itself.

    Notes
    -----
    Each target draws its number of sources from Binomial(n_pre, p), then
    that many distinct sources uniformly (:func:`_distinct_per_row`,
    expected O(count) per target also for ``p`` near 1); its own id is
    dropped afterwards when autapses are excluded.  A network whose every
    target draws at most half the sources (for ``p`` well below 1/2 and
    groups of more than a few dozen, practically always) gets the same
    connections from the same seed as with earlier versions.
    """

    p: float
    allow_autapses: bool = False

    def __post_init__(self):
        p = self.p
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) \
                or not (0.0 <= float(p) <= 1.0) or math.isnan(float(p)):
            raise ValueError(f"FixedProbability: p={p!r} must be a number in [0, 1]")
        _flags(self, "allow_autapses")

    def _block(self, ctx, a, e, rng):
        pre_ids, post_ids = ctx
        n_pre = pre_ids.size
        if n_pre == 0 or e <= a:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        counts = rng.binomial(n_pre, float(self.p), size=e - a).astype(np.int64)
        post, pre = _distinct_per_row(rng, n_pre, counts)
        post += a
        if not self.allow_autapses:
            keep = pre_ids[pre] != post_ids[post]
            pre, post = pre[keep], post[keep]
        return pre, post


@dataclass(frozen=True)
class OneToOne(Rule):
    """Source i connects to target i; both groups must have the same size."""

    def _prepare(self, pre_ids, post_ids):
        if pre_ids.size != post_ids.size:
            raise ValueError(f"OneToOne: the groups have different sizes ({pre_ids.size} sources, "
                             f"{post_ids.size} targets)")
        return (pre_ids, post_ids)

    def _block(self, ctx, a, e, rng):
        i = np.arange(a, e, dtype=np.int64)
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

    def __post_init__(self):
        _flags(self, "allow_autapses")

    def _block(self, ctx, a, e, rng):
        pre_ids, post_ids = ctx
        post = np.repeat(np.arange(a, e, dtype=np.int64), pre_ids.size)
        pre = np.tile(np.arange(pre_ids.size, dtype=np.int64), e - a)
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

    def _prepare(self, pre_ids, post_ids):
        for name, idx, n in (("pre", self.pre, pre_ids.size), ("post", self.post, post_ids.size)):
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                bad = idx[(idx < 0) | (idx >= n)][0]
                raise ValueError(f"FromArrays: {name} index {bad} is out of range for a group of {n}")
        return (pre_ids, post_ids)

    def connections(self, pre_ids, post_ids, rng):
        self._prepare(pre_ids, post_ids)
        return self.pre.copy(), self.post.copy()


#: Targets per block of a rule's random stream: the targets at positions ``b * TARGET_BLOCK ..`` of the
#: target group draw their connections (and their weights and delays from distributions) from block ``b`` of
#: the projection's streams, so a process can draw the blocks of its own targets alone.
TARGET_BLOCK = 256
#: Connections per block of the weight and delay streams of :class:`FromArrays` (in the order given).
CONNECTION_BLOCK = 1 << 16


@dataclass
class Drawn:
    """The connections of one projection kept by this process (:func:`draw`).

    Attributes
    ----------
    pre, post : ndarray of int64
        Positions in the source and target groups, in the rule's order.
    blocks : list of (int, int, ndarray or None)
        Per stream block holding kept connections: the block number, the
        number of connections the block makes in all, and the positions of
        the kept ones among them (None: all).
    index : ndarray of int64 or None
        Position of each kept connection in the rule's whole order (None
        unless asked for).
    total : int or None
        Connections of the whole projection (None unless ``index`` was asked for).
    """

    pre: np.ndarray
    post: np.ndarray
    blocks: list
    index: np.ndarray = None
    total: int = None


def draw(rule, pre_ids, post_ids, generator, keep=None, need_index=False):
    """Draw the connections of ``rule`` block by block, keeping those to the targets in ``keep``.

    Parameters
    ----------
    rule : Rule
    pre_ids, post_ids : ndarray of int64
        Ids of the groups' members (see :meth:`Rule.connections`).
    generator : callable
        ``generator(block)`` returns the rule's random stream of block ``block``.
    keep : ndarray of bool, optional
        One flag per target position: the targets whose connections are
        kept (default all).  Blocks without such a target are not drawn.
    need_index : bool
        Also return every kept connection's position in the whole rule's
        order and the total (this draws or counts the other blocks too).

    The targets at positions ``b * TARGET_BLOCK .. (b + 1) * TARGET_BLOCK - 1``
    draw from block ``b`` of the stream (block 0 is the stream's start), so
    the connections of a target do not depend on which other targets a
    process keeps: every split of the targets gives the same network.
    """
    if isinstance(rule, FromArrays):
        rule._prepare(pre_ids, post_ids)
        m = rule.pre.size
        sel = np.arange(m, dtype=np.int64) if keep is None else np.flatnonzero(keep[rule.post]).astype(np.int64)
        blocks = []
        if sel.size:
            b_of = sel // CONNECTION_BLOCK
            cut = np.flatnonzero(np.diff(b_of)) + 1
            for part in np.split(sel, cut):
                b = int(part[0] // CONNECTION_BLOCK)
                n_b = min(CONNECTION_BLOCK, m - b * CONNECTION_BLOCK)
                blocks.append((b, n_b, None if part.size == n_b else part - b * CONNECTION_BLOCK))
        return Drawn(rule.pre[sel], rule.post[sel], blocks, sel if need_index else None, m if need_index else None)
    ctx = rule._prepare(pre_ids, post_ids)
    n_post = post_ids.size
    nb = -(-n_post // TARGET_BLOCK)
    pres, posts, blocks, firsts = [], [], [], []
    total = 0
    for b in range(nb):
        a, e = b * TARGET_BLOCK, min(n_post, (b + 1) * TARGET_BLOCK)
        wanted = keep is None or keep[a:e].any()
        if not wanted and not need_index:
            continue
        pre, post = rule._block(ctx, a, e, generator(b))
        if wanted and pre.size:
            sel = None if keep is None else np.flatnonzero(keep[post])
            if sel is None or sel.size == pre.size:
                sel = None
                pres.append(pre)
                posts.append(post)
                firsts.append(total + np.arange(pre.size, dtype=np.int64))
            elif sel.size:
                pres.append(pre[sel])
                posts.append(post[sel])
                firsts.append(total + sel)
            if sel is None or sel.size:
                blocks.append((b, int(pre.size), sel))
        total += int(pre.size)
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64)  # noqa: E731
    return Drawn(cat(pres), cat(posts), blocks, cat(firsts) if need_index else None, total if need_index else None)


def block_values(dist, drawn, generator):
    """Values of a distribution for the kept connections of ``drawn``: each block's values from its own
    stream ``generator(block)``, for all the block's connections, then the kept ones taken."""
    parts = []
    for b, n_b, sel in drawn.blocks:
        v = np.asarray(dist.sample(generator(b), n_b), dtype=np.float64)
        parts.append(v if sel is None else v[sel])
    return np.concatenate(parts) if parts else np.zeros(0)


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
    raise ValueError(f"could not draw values inside [low, high] = [{low}, {high}]: the bounds hold too little mass")


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
        for name in ("mean", "std", "low", "high"):
            object.__setattr__(self, name, _number("Normal", name, getattr(self, name)))
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
        for name in ("low", "high"):
            object.__setattr__(self, name, _number("Uniform", name, getattr(self, name)))
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"Uniform(low={self.low}, high={self.high}): need finite low < high")

    def sample(self, rng, n):
        return rng.uniform(self.low, self.high, size=n)
