"""Connection rules that exclude repeats: exact sampling without replacement."""

import math
from itertools import combinations

import numpy as np
import pytest
from scipy import stats

import eventsim as es
from eventsim.connectivity import FixedInDegree, FixedProbability, _distinct_per_row
from eventsim.rng import generator


def _redraw_reference(rng, n_choices, counts):
    """Slow reference of the redraw sampler: draw all, sort, redraw every later copy, repeat."""
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


def _rows(pre, post, n_post):
    """The sources of each target as a list of arrays (connections are ordered by target)."""
    assert np.all(np.diff(post) >= 0)
    return np.split(pre, np.cumsum(np.bincount(post, minlength=n_post))[:-1])


def _check_in_degree(pre, post, pre_ids, post_ids, k):
    np.testing.assert_array_equal(post, np.repeat(np.arange(post_ids.size), k))
    assert pre.min(initial=0) >= 0 and pre.max(initial=0) < pre_ids.size
    for row in _rows(pre, post, post_ids.size):
        assert np.all(np.diff(row) > 0)             # distinct, ascending source index
    assert not np.any(pre_ids[pre] == post_ids[post])  # no autapse


@pytest.mark.parametrize("n_pre, k, shared", [
    (30, 1, True), (30, 14, True), (30, 15, True), (30, 16, True), (30, 28, True), (30, 29, True),
    (30, 15, False), (30, 16, False), (30, 30, False), (1, 1, False), (2, 1, True)])
def test_fixed_in_degree_without_multapses_is_distinct_and_has_no_autapse(n_pre, k, shared):
    pre_ids = np.arange(n_pre, dtype=np.int64)
    # targets: some inside the source group (when shared), some outside
    post_ids = np.concatenate([pre_ids[::-1][:max(n_pre // 2, 1)] if shared else np.zeros(0, np.int64),
                               np.arange(1000, 1040)])
    pre, post = FixedInDegree(k, allow_multapses=False).connections(pre_ids, post_ids, generator(4, 2, 0))
    assert pre.dtype == np.int64 and post.dtype == np.int64
    _check_in_degree(pre, post, pre_ids, post_ids, k)


def test_k_equal_to_the_sources_takes_every_source_once():
    net = es.Network(seed=2)
    a, b = net.population(1000, es.LIF()), net.population(1000, es.LIF())
    proj = net.connect(a, b, es.FixedInDegree(1000, allow_multapses=False), weight=1.0)
    np.testing.assert_array_equal(proj.pre, np.tile(np.arange(1000), 1000))
    np.testing.assert_array_equal(proj.post, np.repeat(np.arange(1000), 1000))


def test_k_one_below_the_sources_without_autapses_takes_every_other_source():
    net = es.Network(seed=2)
    a = net.population(1000, es.LIF())
    proj = net.connect(a, a, es.FixedInDegree(999, allow_multapses=False), weight=1.0)
    full = np.tile(np.arange(1000), 1000).reshape(1000, 1000)
    want = full[~np.eye(1000, dtype=bool)]
    np.testing.assert_array_equal(proj.pre, want)
    np.testing.assert_array_equal(proj.post, np.repeat(np.arange(1000), 999))
    with pytest.raises(ValueError, match="k=1000 exceeds the 999 distinct sources"):
        net.connect(a, a, es.FixedInDegree(1000, allow_multapses=False), weight=1.0)


def test_views_that_partly_overlap():
    net = es.Network(seed=6)
    a, b = net.population(40, es.LIF()), net.population(25, es.LIF())
    pre_view, post_view = a[10:] | b[:5], a[::3] | b
    for k in (1, 17, 34):
        proj = net.connect(pre_view, post_view, es.FixedInDegree(k, allow_multapses=False), weight=1.0)
        _check_in_degree(proj.pre, proj.post, pre_view.ids, post_view.ids, k)


def _subset_chi2_pvalue(n_pre, k, self_pos, n_targets=30000, seed=11):
    """p-value of the chi-square test that every k-subset of the allowed sources is equally likely."""
    pre_ids = np.arange(n_pre, dtype=np.int64)
    post_ids = np.full(n_targets, 10**6 if self_pos is None else self_pos, dtype=np.int64)
    pre, post = FixedInDegree(k, allow_multapses=False).connections(pre_ids, post_ids, generator(seed, 2, 0))
    allowed = [i for i in range(n_pre) if i != self_pos]
    index = {c: i for i, c in enumerate(combinations(allowed, k))}
    codes = np.array([index[tuple(r)] for r in pre.reshape(n_targets, k).tolist()])
    observed = np.bincount(codes, minlength=len(index))
    expected = n_targets / len(index)
    chi2 = ((observed - expected) ** 2 / expected).sum()
    return stats.chi2.sf(chi2, len(index) - 1)


@pytest.mark.parametrize("n_pre, k, self_pos", [
    (10, 3, None),    # at most half the sources: redraws
    (10, 5, None),
    (10, 7, None),    # above half: the left-out sources are drawn
    (10, 4, 6),       # the target is a source: 9 allowed
    (10, 6, 0),
    (10, 7, 9)])
def test_every_subset_is_equally_likely(n_pre, k, self_pos):
    assert _subset_chi2_pvalue(n_pre, k, self_pos) > 1e-4


def test_the_uniformity_check_can_fail():
    # a sampler that favours low source indices must be caught by the same statistic
    rng = np.random.default_rng(0)
    n_pre, k, n_targets = 10, 3, 30000
    index = {c: i for i, c in enumerate(combinations(range(n_pre), k))}
    w = np.linspace(1.0, 1.5, n_pre)
    rows = [tuple(sorted(rng.choice(n_pre, k, replace=False, p=w / w.sum()))) for _ in range(n_targets)]
    observed = np.bincount([index[r] for r in rows], minlength=len(index))
    expected = n_targets / len(index)
    assert stats.chi2.sf(((observed - expected) ** 2 / expected).sum(), len(index) - 1) < 1e-4


def test_same_seed_same_connections_other_seed_other_connections():
    def build(seed):
        net = es.Network(seed=seed)
        a = net.population(300, es.LIF())
        return [net.connect(a, a, es.FixedInDegree(k, allow_multapses=False), weight=1.0).pre
                for k in (20, 150, 151, 280)]

    for x, y in zip(build(8), build(8)):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(build(8), build(9)):
        assert not np.array_equal(x, y)


def test_at_most_half_without_autapses_draws_what_the_redraw_reference_draws():
    # the sparse case keeps its mapping: same seed, same connections as the plain redraw sampler
    for n_choices, counts in ((50, np.full(40, 10)), (50, np.full(40, 25)), (7, np.array([0, 3, 1, 2, 3])),
                              (400, np.random.default_rng(1).binomial(400, 0.3, 300))):
        got = _distinct_per_row(generator(3, 2, 5), n_choices, counts)
        want = _redraw_reference(generator(3, 2, 5), n_choices, counts)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_distinct_per_row_mixes_sparse_and_full_rows():
    counts = np.array([0, 1, 5, 6, 10, 3, 9, 0, 10])
    skip = np.array([-1, 2, -1, 0, -1, 9, 4, 1, -1])
    n_r = 10 - (skip >= 0)
    counts = np.minimum(counts, n_r)
    rows, vals = _distinct_per_row(generator(1, 2, 0), 10, counts, skip=skip)
    np.testing.assert_array_equal(rows, np.repeat(np.arange(counts.size), counts))
    for r, row in enumerate(np.split(vals, np.cumsum(counts)[:-1])):
        assert row.size == counts[r] and np.all(np.diff(row) > 0)
        assert row.min(initial=0) >= 0 and row.max(initial=0) < 10 and skip[r] not in row


def test_fixed_probability_near_one():
    net = es.Network(seed=5)
    a, b = net.population(1000, es.LIF()), net.population(800, es.LIF())
    proj = net.connect(a, b, es.FixedProbability(1.0), weight=1.0)
    np.testing.assert_array_equal(proj.pre, np.tile(np.arange(1000), 800))
    proj = net.connect(a, a, es.FixedProbability(1.0), weight=1.0)
    assert len(proj) == 1000 * 999 and not np.any(proj.pre == proj.post)
    proj = net.connect(a, b, es.FixedProbability(0.9), weight=1.0)
    for row in _rows(proj.pre, proj.post, 800):
        assert np.all(np.diff(row) > 0)
    # every pair independently with p = 0.9: the total is Binomial(800000, 0.9), each source's count
    # over the 800 targets Binomial(800, 0.9)
    assert abs(len(proj) - 720_000) < 5 * math.sqrt(800_000 * 0.09)
    per_source = np.bincount(proj.pre, minlength=1000)
    assert abs(per_source.var() / (800 * 0.09) - 1.0) < 0.25


def test_multapses_without_autapses_never_connect_a_neuron_to_itself():
    net = es.Network(seed=3)
    a = net.population(30, es.LIF())
    proj = net.connect(a | net.population(5, es.LIF()), a, es.FixedInDegree(80), weight=1.0)
    assert np.all(np.bincount(proj.post, minlength=30) == 80)
    assert not np.any(proj.pre == proj.post)


def test_pairs_whose_keys_do_not_fit_are_refused():
    from eventsim.connectivity import _distinct_by_redraw

    with pytest.raises(ValueError, match="too many pairs"):
        _distinct_by_redraw(generator(1, 2, 0), 2**61, np.array([1, 1]))
