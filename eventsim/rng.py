r"""Counter-based random numbers shared by every engine and by connectivity.

Every random number in eventsim is a pure function of (seed, purpose,
counter): Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as
easy as 1, 2, 3") keyed by the network seed.  Nothing depends on thread
count, backend or call order.

* Poisson input: the count of channel ``c`` at step ``s`` is a pure function
  of ``(seed, s, c)`` (:func:`poisson_count`) under the key
  ``(seed_lo, seed_hi ^ POISSON)``; channels are numbered across all
  sources of a network, so no two channels share a stream.
* Connectivity and parameter distributions use NumPy's ``Philox`` bit
  generator keyed by ``(seed, purpose, index)`` (:func:`generator`), one
  stream per projection or population (indices up to ``2**48``), so adding
  a projection never changes earlier ones.  Within a projection's stream
  each block of targets starts at its own counter (``block``), so any
  process can draw the connections of its own targets alone.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numba import njit

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)

#: Purpose tags mixed into the high key word.
POISSON = 0x5EED0001
INIT = 0x5EED0002

_TWO_M32 = 2.0 ** -32


@njit(inline="always", cache=True)
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block function on uint64 values holding 32-bit words."""
    for r in range(10):
        if r > 0:
            k0 = (k0 + _W0) & _MASK
            k1 = (k1 + _W1) & _MASK
        p0 = _M0 * c0
        p1 = _M1 * c2
        hi0 = p0 >> _S32
        lo0 = p0 & _MASK
        hi1 = p1 >> _S32
        lo1 = p1 & _MASK
        c0, c1, c2, c3 = (hi1 ^ c1 ^ k0) & _MASK, lo1, (hi0 ^ c3 ^ k1) & _MASK, lo0
    return c0, c1, c2, c3


@njit(inline="always", cache=True)
def u01(word):
    """Uniform double in the open interval (0, 1) from one 32-bit word."""
    return (np.float64(word) + 0.5) * _TWO_M32


@njit(inline="always", cache=True)
def poisson_inversion(u, lam, exp_neg_lam):
    """Smallest k with CDF(k) >= u for Poisson(lam), given exp(-lam); for lam < 12."""
    p = exp_neg_lam
    f = p
    k = 0
    while u > f and k < 200:
        k += 1
        p *= lam / k
        f += p
    return k


def poisson_cdf_table(lam):
    """CDF values F(0), F(1), ... of Poisson(lam < 12) by the recurrence of :func:`poisson_inversion`.

    The table ends once F reaches 1 - 2**-34 (above every uniform from
    :func:`u01`), so ``sum(u > table)`` equals ``poisson_inversion(u, ...)``
    exactly: a branch-free form of the same inversion.
    """
    p = math.exp(-lam)
    f = p
    out = [f]
    k = 0
    while f < 1.0 - 2.0 ** -34 and k < 200:
        k += 1
        p *= lam / k
        f += p
        out.append(f)
    return np.array(out)


def poisson_count_table(cdf, m):
    """Counts of ``m`` equal buckets of (0, 1) for the CDF table ``cdf``, -1 where a bucket is ambiguous.

    Bucket ``j`` holds the uniforms in ``[j / m, (j + 1) / m)`` (``m`` a power
    of two, so ``floor(u * m)`` is exact).  If no CDF value lies in the
    bucket, every uniform in it has the same count, the number of CDF values
    below ``j / m``; otherwise the entry is -1 and the count must be searched.
    """
    cdf = np.asarray(cdf, np.float64)
    j = np.arange(m)
    out = np.searchsorted(cdf, j / m, side="left").astype(np.int64)
    inside = np.floor(cdf[(cdf >= 0.0) & (cdf < 1.0)] * m).astype(np.int64)
    out[inside] = -1
    if out.max(initial=0) > 127:
        raise ValueError("Poisson count table: counts above 127 do not fit int8")
    return out.astype(np.int8)


@njit(cache=True)
def poisson_ptrs(lam, k0, k1, step, channel):
    """Poisson(lam) for lam >= 12 by Hörmann's PTRS transformed rejection (1993).

    Uses counters ``(s_lo, s_hi, channel, 1 + draw)``.
    """
    s = np.uint64(step)
    s_lo = s & _MASK
    s_hi = s >> _S32
    c = np.uint64(channel)
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    draw = np.uint64(1)
    while True:
        w0, w1, w2, w3 = philox4x32(s_lo, s_hi, c, draw, k0, k1)
        draw += np.uint64(1)
        for half in range(2):
            if half == 0:
                U = u01(w0) - 0.5
                V = u01(w1)
            else:
                U = u01(w2) - 0.5
                V = u01(w3)
            us = 0.5 - abs(U)
            k = math.floor((2.0 * a / us + b) * U + lam + 0.43)
            if us >= 0.07 and V <= vr:
                return int(k)
            if k < 0 or (us < 0.013 and V > us):
                continue
            if (math.log(V) + math.log(invalpha) - math.log(a / (us * us) + b)
                    <= -lam + k * loglam - math.lgamma(k + 1.0)):
                return int(k)


@njit(inline="always", cache=True)
def group_words(k0, k1, step, group):
    """The four 32-bit words shared by channels ``4*group .. 4*group+3`` at ``step``."""
    s = np.uint64(step)
    return philox4x32(s & _MASK, s >> _S32, np.uint64(group), np.uint64(0), k0, k1)


@njit(cache=True)
def group_block(k0, k1, step, g0, w):
    """The step-``step`` words of Philox groups ``g0 .. g0 + w.size // 4 - 1`` into ``w`` (uint32, lane-major).

    A loop without branches over independent groups: LLVM vectorises the
    Philox rounds (32 x 32 -> 64-bit products), about ten times faster than
    one block at a time.  Lane ``l`` of group ``g0 + i`` is ``w[l * G + i]``
    with ``G = w.size // 4``; the words are those of :func:`group_words`
    (their uniforms: :func:`u01`).
    """
    G = w.size // 4
    su = np.uint64(step)
    lo = su & _MASK
    hi = su >> _S32
    w0s = w[:G]
    w1s = w[G:2 * G]
    w2s = w[2 * G:3 * G]
    w3s = w[3 * G:]
    for i in range(G):
        w0, w1, w2, w3 = philox4x32(lo, hi, np.uint64(g0 + i) & _MASK, np.uint64(0), k0, k1)
        w0s[i] = w0
        w1s[i] = w1
        w2s[i] = w2
        w3s[i] = w3


@njit(inline="always", cache=True)
def pick(words, lane):
    w0, w1, w2, w3 = words
    if lane == 0:
        return w0
    if lane == 1:
        return w1
    if lane == 2:
        return w2
    return w3


@njit(cache=True)
def poisson_count(lam, k0, k1, step, channel):
    """Poisson(lam) count of ``channel`` at ``step``: a pure function of its arguments.

    For ``lam < 12``: inversion of the CDF with one uniform, word ``channel % 4``
    of the Philox block at counter ``(s_lo, s_hi, channel // 4, 0)`` (four
    channels share one block).  Above: :func:`poisson_ptrs`.
    """
    if lam <= 0.0:
        return 0
    if lam < 12.0:
        words = group_words(k0, k1, step, channel >> 2)
        return poisson_inversion(u01(pick(words, channel & 3)), lam, math.exp(-lam))
    return poisson_ptrs(lam, k0, k1, step, channel)


def key_words(seed, purpose):
    """Philox key (two uint64 holding 32-bit words) for a seed and a purpose tag."""
    seed = int(seed)
    return np.uint64(seed & 0xFFFFFFFF), np.uint64(((seed >> 32) & 0xFFFFFFFF) ^ purpose)


#: Bits of the Philox key taken by the purpose tag (first stream word) and by
#: the index (second stream word: population, projection, ...).
PURPOSE_BITS = 16
INDEX_BITS = 48


def generator(seed, *stream, block=0):
    """NumPy Generator on a Philox bit generator keyed by ``(seed, *stream)``, from block ``block``.

    Used for connectivity and parameter draws on the host: one stream per
    purpose and object, e.g. ``(1, population)`` for initial values and
    ``(2, projection)``, ``(3, projection)``, ``(4, projection)`` for
    connections, weights and delays.

    Parameters
    ----------
    seed : int
        Network seed in ``[0, 2**64)``.
    *stream : int
        At most two words: a purpose tag in ``[0, 2**16)`` and an index in
        ``[0, 2**48)``.
    block : int
        Start of the stream: Philox counter ``(0, 0, block, 0)`` (256-bit
        counter, four 64-bit words), in ``[0, 2**64)``.  Block 0 is the
        stream's beginning; distinct blocks never overlap (each has 2**128
        counters).  Connection rules draw each block of targets from its
        own block (:func:`eventsim.connectivity.draw`).

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    ValueError
        If the seed or a stream word is out of its range, or more than two
        words are given.

    Notes
    -----
    The 128-bit Philox key holds the seed in bits 0-63, the purpose in bits
    64-79 and the index in bits 80-127: its low 16 bits in bits 80-95 and
    the rest in bits 96-127.  Distinct ``(seed, purpose, index)`` give
    distinct keys, hence independent streams, and an index below ``2**16``
    gives the same key (the same numbers) as when the index had 16 bits only.
    """
    seed_ok = isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and 0 <= seed < 1 << 64
    if not seed_ok:
        raise ValueError(f"generator: seed={seed!r} must be an integer in [0, 2**64)")
    if len(stream) > 2:
        raise ValueError(f"generator: stream={stream!r} has {len(stream)} words; expected at most 2 "
                         "(purpose, index)")
    key = int(seed)
    for k, (name, bits, s) in enumerate(zip(("purpose", "index"), (PURPOSE_BITS, INDEX_BITS), stream)):
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 0 <= s < 1 << bits:
            raise ValueError(f"generator: stream {name}={s!r} must be an integer in [0, 2**{bits})")
        s = int(s)
        if k == 0:
            key |= s << 64
        else:
            key |= (s & 0xFFFF) << 80 | (s >> 16) << 96
    if isinstance(block, bool) or not isinstance(block, numbers.Integral) or not 0 <= block < 1 << 64:
        raise ValueError(f"generator: block={block!r} must be an integer in [0, 2**64)")
    if block == 0:
        return np.random.Generator(np.random.Philox(key=key))
    return np.random.Generator(np.random.Philox(key=key, counter=[0, 0, int(block), 0]))
