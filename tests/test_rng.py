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


def _generator_16bit(seed, *stream):
    """The stream key before indices were widened: 16 bits per stream word above the seed."""
    key = seed
    for k, s in enumerate(stream):
        key |= (s & 0xFFFF) << (64 + 16 * k)
    return np.random.Generator(np.random.Philox(key=key))


def test_generator_keeps_the_16_bit_streams():
    # every purpose used by Network (1 v_init, 2 connections, 3 weights, 4 delays) and indices up to
    # the old limit draw exactly what the 16-bit key drew
    for seed in (0, 1, 12345, 2**63 - 1):
        for purpose in (1, 2, 3, 4):
            for index in (0, 1, 7, 4097, 65535):
                np.testing.assert_array_equal(generator(seed, purpose, index).integers(0, 2**62, 8),
                                              _generator_16bit(seed, purpose, index).integers(0, 2**62, 8))
    np.testing.assert_array_equal(generator(9).random(4), _generator_16bit(9).random(4))
    np.testing.assert_array_equal(generator(9, 3).random(4), _generator_16bit(9, 3).random(4))


def test_generator_indices_beyond_16_bits_are_distinct_streams():
    for purpose in (1, 2, 3, 4):
        draws = {}
        for index in (0, 1, 65535, 65536, 65537, 131072, 2**32, 2**32 + 65536, 2**48 - 1):
            draws[index] = tuple(generator(5, purpose, index).integers(0, 2**62, 4).tolist())
        assert len(set(draws.values())) == len(draws), purpose
    # purposes and indices never alias each other
    assert not np.array_equal(generator(5, 1, 65536).random(4), generator(5, 2, 1).random(4))


def test_generator_rejects_what_does_not_fit():
    import pytest

    with pytest.raises(ValueError, match=r"index=281474976710656 must be an integer in \[0, 2\*\*48\)"):
        generator(1, 2, 2**48)
    with pytest.raises(ValueError, match=r"index=-1"):
        generator(1, 2, -1)
    with pytest.raises(ValueError, match=r"purpose=65536 must be an integer in \[0, 2\*\*16\)"):
        generator(1, 65536, 0)
    with pytest.raises(ValueError, match=r"seed=-1 must be an integer in \[0, 2\*\*64\)"):
        generator(-1, 1, 0)
    with pytest.raises(ValueError, match=r"at most 2"):
        generator(1, 2, 3, 4)
    with pytest.raises(ValueError, match=r"index=1.5"):
        generator(1, 2, 1.5)


def test_network_streams_of_population_and_projection_65536_differ_from_0():
    # Network keys v_init by the population's index and connections, weights and delays by the
    # projection's: the 65,537th object must not repeat the first one's numbers.  The lists are
    # padded with the first object (creating 65,536 real ones takes a minute); only their length
    # picks the stream.
    import eventsim as es

    net = es.Network(seed=3)
    v = es.Uniform(0.0, 10.0)
    p0 = net.population(20, es.LIF(), v_init=v)
    net.populations.extend([p0] * 65535)
    p1 = net.population(20, es.LIF(), v_init=v)
    assert not np.array_equal(p0.v_init, p1.v_init)
    kw = dict(weight=es.Uniform(0.0, 1.0), delay=es.Uniform(0.1, 50.0))
    c0 = net.connect(p0, p1, es.FixedInDegree(5), **kw)
    net.projections.extend([c0] * 65535)
    c1 = net.connect(p0, p1, es.FixedInDegree(5), **kw)
    assert not np.array_equal(c0.pre, c1.pre)
    assert not np.array_equal(c0.weight, c1.weight)
    assert not np.array_equal(c0.delay_steps, c1.delay_steps)


def test_generator_takes_numpy_integers():
    np.testing.assert_array_equal(generator(np.int64(4), np.int32(2), np.uint64(70000)).random(3),
                                  generator(4, 2, 70000).random(3))
