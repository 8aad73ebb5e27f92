"""Build the engine's CSR connectivity in place, projection by projection.

The engine stores, per sender (neurons ``0..N-1``, then source channels
``N..N+S-1``), one row of synapses sorted by target ring column; multapses
to the same column keep their creation order (projection order, then the
order of the connection rule).  Each synapse is one integer
``off = delay_steps * C + column`` and one weight; when every sender has a
single delay (found while counting), the column alone, two bytes
(:func:`eventsim.engines.clock_cpu.column_form`).

Building it costs no copy of the synapse arrays beyond the final ones:

1. :func:`count_rows` counts each sender's synapses, one projection at a
   time (row lengths, each sender's delay range);
2. :func:`scatter` writes every synapse straight into its row, in creation
   order (a counting sort by sender, stable);
3. :func:`sort_rows` sorts each row by column with a stable sort on a
   row-sized scratch array.

The result is identical to a stable sort of all synapses by
``(sender, column)``.  Kernels take the projections' own index arrays plus
the group-to-network id maps, so no per-synapse temporary is made.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import config


@njit(cache=config.NUMBA_CACHE)
def counting_order(key, n_keys, perm):
    """``(order, start)``: the indices ``perm`` reordered stably by ``key[perm]`` (``0 <= key < n_keys``), by
    a counting sort in O(n); ``start[k]`` (``n_keys + 1``) is the first position of key ``k``.  Applied by
    the last key first, it sorts by several keys (as ``np.lexsort``)."""
    start = np.zeros(n_keys + 1, np.int64)
    for j in range(perm.size):
        start[key[perm[j]] + 1] += 1
    for e in range(n_keys):
        start[e + 1] += start[e]
    fill = start[:-1].copy()
    order = np.empty(perm.size, np.int64)
    for j in range(perm.size):
        k = perm[j]
        e = key[k]
        order[fill[e]] = k
        fill[e] += 1
    return order, start


@njit(cache=config.NUMBA_CACHE)
def count_rows(counts, pre, src_ids, delay, dmin, dmax):
    """``counts[src_ids[pre[i]]] += 1`` for every synapse, each sender's shortest and longest delay into
    ``dmin``/``dmax`` (steps; lowered/raised from their values); return the longest delay."""
    max_d = 0
    for i in range(pre.size):
        s = src_ids[pre[i]]
        counts[s] += 1
        d = delay[i]
        if d > max_d:
            max_d = d
        if d < dmin[s]:
            dmin[s] = d
        if d > dmax[s]:
            dmax[s] = d
    return max_d


@njit(cache=config.NUMBA_CACHE)
def scatter(fill, syn_off, syn_w, pre, post, weight, delay, src_ids, tgt_ids, col, split, ioff, C):
    """Write the synapses of one projection into their rows, in order.

    ``fill[s]`` is the next free slot of sender ``s``.  The receptor column of
    a target with separate receptors (``split[t] == 1``) is ``col[t] + ioff``
    for weights that are negative once stored in ``syn_w``'s dtype.  Each
    synapse gets ``delay * C + column``: ``C = 0`` writes the column alone
    (the engine's column form, one delay per sender).
    """
    for i in range(pre.size):
        s = src_ids[pre[i]]
        t = tgt_ids[post[i]]
        pos = fill[s]
        fill[s] = pos + 1
        syn_w[pos] = weight[i]
        c = col[t]
        if split[t] == 1 and syn_w[pos] < 0:
            c += ioff
        syn_off[pos] = delay[i] * C + c


@njit(cache=config.NUMBA_CACHE)
def rows_sorted(row_ptr, syn_off, C):
    """True if every row is in column order (``syn_off % C`` non-decreasing)."""
    for s in range(row_ptr.size - 1):
        for j in range(row_ptr[s] + 1, row_ptr[s + 1]):
            if syn_off[j] % C < syn_off[j - 1] % C:
                return False
    return True


@njit(parallel=True, cache=config.NUMBA_CACHE)
def sort_rows(row_ptr, syn_off, syn_w, C):
    """Stable sort of each row by column (``syn_off % C``); rows already sorted are left alone.

    A bottom-up merge sort of (column, position) pairs per row: plain loops,
    which compile in a fraction of the time of ``np.argsort``.
    """
    n = row_ptr.size - 1
    for s in prange(n):
        a, b = row_ptr[s], row_ptr[s + 1]
        ordered = True
        for j in range(a + 1, b):
            if syn_off[j] % C < syn_off[j - 1] % C:
                ordered = False
                break
        if ordered:
            continue
        m = b - a
        key = syn_off[a:b] % C
        order = np.arange(m)
        tmp = np.empty(m, np.int64)
        width = 1
        while width < m:
            for lo in range(0, m, 2 * width):
                mid = min(lo + width, m)
                hi = min(lo + 2 * width, m)
                i, j = lo, mid
                for k in range(lo, hi):
                    # stable: on equal keys the left run's element comes first
                    if j >= hi or (i < mid and key[order[i]] <= key[order[j]]):
                        tmp[k] = order[i]
                        i += 1
                    else:
                        tmp[k] = order[j]
                        j += 1
            order, tmp = tmp, order
            width *= 2
        off = syn_off[a:b].copy()
        w = syn_w[a:b].copy()
        for k in range(m):
            syn_off[a + k] = off[order[k]]
            syn_w[a + k] = w[order[k]]


@njit(cache=config.NUMBA_CACHE)
def column_counts(syn_off, C):
    """Synapses per ring column."""
    out = np.zeros(C, np.int64)
    for j in range(syn_off.size):
        out[syn_off[j] % C] += 1
    return out


@njit(parallel=True, cache=config.NUMBA_CACHE)
def split_rows(row_ptr, syn_off, C, first_col, row_split):
    """Bounds of each row's sub-row per partition; partition ``t`` owns columns
    ``first_col[t] <= column < first_col[t + 1]`` (``first_col[T] == C``)."""
    T = first_col.size - 1
    for s in prange(row_ptr.size - 1):
        j, b = row_ptr[s], row_ptr[s + 1]
        row_split[s, 0] = j
        for t in range(T):
            hi = first_col[t + 1]
            while j < b and syn_off[j] % C < hi:
                j += 1
            row_split[s, t + 1] = j


@njit(cache=config.NUMBA_CACHE)
def constant_rows(row_ptr, w, flag, value):
    """Per row: ``flag[i] = 1`` and ``value[i]`` its weight if all its weights are equal (empty rows: 0)."""
    for i in range(row_ptr.size - 1):
        a = row_ptr[i]
        b = row_ptr[i + 1]
        if b == a:
            flag[i] = 0
            value[i] = 0.0
            continue
        x = w[a]
        same = True
        for j in range(a + 1, b):
            if w[j] != x:
                same = False
                break
        flag[i] = 1 if same else 0
        value[i] = x


@njit(cache=config.NUMBA_CACHE)
def delay_ranges(row_ptr, syn_off, C, L, dmin, dmax):
    """Per row the shortest and longest delay (steps, ``syn_off // C``); an empty row gets ``L`` and 0."""
    for i in range(row_ptr.size - 1):
        lo = L
        hi = 0
        for j in range(row_ptr[i], row_ptr[i + 1]):
            d = syn_off[j] // C
            if d < lo:
                lo = d
            if d > hi:
                hi = d
        dmin[i] = lo
        dmax[i] = hi
