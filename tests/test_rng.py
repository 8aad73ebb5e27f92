"""Counter-based random numbers."""

import numpy as np
from scipy import stats

from eventsim.rng import POISSON, generator, group_block, group_words, key_words, philox4x32, poisson_count, u01


def test_philox_known_answer():
    # Random123 known-answer vectors for philox4x32-10
    z = np.uint64(0)
    assert [int(x) for x in philox4x32(z, z, z, z, z, z)] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    f = np.uint64(0xFFFFFFFF)
    assert [int(x) for x in philox4x32(f, f, f, f, f, f)] == [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]


def test_poisson_counts_are_pure_functions():
    k0, k1 = key_words(7, POISSON)
    a = [poisson_count(3.0, k0, k1, s, 11) for s in range(100)]
    b = [poisson_count(3.0, k0, k1, s, 11) for s in range(100)]
    assert a == b
    c = [poisson_count(3.0, k0, k1, s, 12) for s in range(100)]
    assert a != c


def test_poisson_distribution():
    k0, k1 = key_words(1, POISSON)
    for lam in (0.05, 2.0, 11.9, 12.0, 40.0, 400.0):
        x = np.array([poisson_count(lam, k0, k1, s, 3) for s in range(20000)])
        assert abs(x.mean() - lam) < 5 * np.sqrt(lam / x.size)
        assert abs(x.var() / lam - 1) < 0.1
        if lam < 50:
            ks = np.arange(0, int(lam * 3 + 10))
            observed = np.bincount(x, minlength=ks.size)[: ks.size]
            expected = stats.poisson.pmf(ks, lam) * x.size
            keep = expected > 5
            chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
            assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4


def test_host_generator_streams():
    a = generator(1, 2, 3).integers(0, 1 << 30, 5)
    b = generator(1, 2, 3).integers(0, 1 << 30, 5)
    c = generator(1, 2, 4).integers(0, 1 << 30, 5)
    assert (a == b).all() and not (a == c).all()


def test_group_block_is_the_group_words():
    # the vectorised pass must give exactly the words of one block at a time,
    # from any first group and at steps above 2**32
    k0, k1 = key_words(5, POISSON)
    for step, g0, n_groups in ((0, 0, 1), (17, 3, 10), (2**33 + 5, 1000, 37)):
        w = np.zeros(4 * n_groups, np.uint32)
        group_block(k0, k1, step, g0, w)
        for i in range(n_groups):
            words = group_words(k0, k1, step, g0 + i)
            for lane in range(4):
                assert w[lane * n_groups + i] == words[lane]


def test_poisson_count_of_a_word_is_the_inversion_of_its_uniform():
    # the count kernel buckets a word by its top bits: the bucket of its uniform u01(word)
    from eventsim.engines import clock_cpu as cc
    from eventsim.rng import poisson_cdf_table, poisson_count_table, poisson_inversion

    rng = np.random.default_rng(2)
    step = 1 << cc.TAB_SHIFT
    edges = np.arange(cc.TAB, dtype=np.uint64) * step
    words = np.unique(np.concatenate([edges, edges[1:] - 1, edges + 1, np.array([2**32 - 1], np.uint64),
                                      rng.integers(0, 2**32, 20000, dtype=np.uint64)]))
    u = (words.astype(np.float64) + 0.5) * 2.0**-32
    np.testing.assert_array_equal(words >> np.uint64(cc.TAB_SHIFT), np.floor(u * cc.TAB).astype(np.uint64))
    lams = (0.3, 2.0, 11.5)
    cdf = np.full((len(lams), 64), 2.0)
    for r, lam in enumerate(lams):
        row = poisson_cdf_table(lam)
        cdf[r, :row.size] = row
    tab = np.stack([poisson_count_table(row, cc.TAB) for row in cdf])
    guide = np.stack([np.searchsorted(row, np.arange(cc.GUIDE) / cc.GUIDE, side="left") for row in cdf])
    # words whose uniform lies next to a CDF value (the searched buckets)
    at = np.floor(cdf[(cdf > 2.0**-30) & (cdf < 1.0)] * 2.0**32).astype(np.uint64)
    near = np.concatenate([at - np.uint64(1), at, at + np.uint64(1)])
    near = near[near < 2**32]
    for word in np.concatenate([words[::7], near]):
        for r, lam in enumerate(lams):
            assert cc._count(word, r, tab, guide, cdf) == poisson_inversion(u01(word), lam, np.exp(-lam))


def test_poisson_count_table_is_the_inversion():
    # every uniform u01 can produce: bucket edges, CDF values and their neighbours, a dense sweep
    from eventsim.rng import poisson_cdf_table, poisson_count_table, poisson_inversion

    m = 4096
    for lam in (0.002, 0.3, 2.0, 7.5, 11.99):
        cdf = poisson_cdf_table(lam)
        tab = poisson_count_table(cdf, m)
        assert tab.dtype == np.int8 and tab.size == m
        # ambiguous buckets are exactly those holding a CDF value below 1
        holders = np.unique(np.floor(cdf[cdf < 1.0] * m).astype(int))
        assert set(np.flatnonzero(tab < 0)) == set(holders)
        words = np.concatenate([
            np.arange(0, 2**32, 7919, dtype=np.uint64),
            (np.arange(m, dtype=np.uint64) << np.uint64(20)),                    # first word of each bucket
            (np.arange(1, m + 1, dtype=np.uint64) << np.uint64(20)) - np.uint64(1),  # last word of each bucket
            np.clip(np.floor(cdf[cdf < 1.0] * 2**32).astype(np.uint64)[:, None]
                    + np.arange(-2, 3, dtype=np.int64).astype(np.uint64)[None, :], 0, 2**32 - 1).ravel(),
        ])
        for w in words:
            u = u01(w)
            want = poisson_inversion(u, lam, np.exp(-lam))
            j = int(u * m)
            if tab[j] >= 0:
                assert tab[j] == want, (lam, int(w))
            else:
                assert np.sum(cdf < u) == want
