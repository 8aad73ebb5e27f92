"""Clock-driven CPU engine (Numba).

The network is a flat plan of structure-of-arrays:

* neuron parameters and state, one contiguous array per variable;
* CSR connectivity over all senders (neurons ``0..N-1``, then source
  channels ``N..N+S-1``), each row sorted by target column and split into
  one contiguous sub-row per thread partition (``row_split[sender, t]``);
  per synapse one integer ``off = delay_steps * C + column`` and the weight
  (the *column form*: only the column, as uint16, when every sender has a
  single delay, kept per sender, and ``C <= 65536``: half the bytes per
  event, see :func:`column_form`);
* one flat ring buffer ``ring[L * C]`` (``L = max_delay_steps + 1`` slots of
  ``C`` columns): neuron ``n``'s input (its excitatory receptor) in column
  ``n``, and, if any neuron has separate receptors (``C = 2N``), its
  inhibitory receptor in column ``N + n``.

The neurons are split into partitions, contiguous ranges of target
neurons (and so one or two contiguous blocks of ring columns, each a
sub-row of every CSR row), one per thread.  Delivery into a partition walks
every event but writes only the partition's columns, so it needs no
atomics, and each ring cell receives its additions in one fixed order
(pending neuron spikes by neuron index, then explicit source spikes, then
Poisson channels, each row in target order) whatever the thread count:
results are bit-identical for 1, 2 or more threads.  The threads run all
the steps of a chunk as one team (:func:`run_clock`, started once per
chunk) rather than meeting in a parallel loop launched at every step.  The
work goes in phases, once per step when some delay is one step, else twice
per interval of steps shorter than the shortest delay (neuron updates of
the whole interval, then its deliveries in the step-by-step order; the
same results); each partition's piece of a phase is claimed by one thread,
usually its own, so a thread that loses its CPU to another process does not
hold the others up for long: they do its pieces, and wait by sleeping
rather than spinning.

Time convention (NEST's): the update of step ``s`` advances the state from
``s*dt`` to ``(s+1)*dt``; a spike emitted in it is stamped ``s+1``.  A spike
stamped ``t`` with delay ``d`` steps is added to slot ``(t+d) mod L`` and read
by the update that ends at ``t+d``.  Neuron spikes stamped ``s`` (kept as
"pending" at the end of the previous step) and source events stamped ``s``
are delivered at the start of the update of step ``s``.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
from numba import njit, types
from numba.extending import overload

from .. import _compile  # noqa: F401  (announces the first compilation of the engine's kernels)
from ..models.family import tags as family_tags
from ..models.family import update_family
from ..rng import group_block, group_words, pick, poisson_ptrs, u01
from ._intrinsics import atomic_add, atomic_cas, atomic_load, futex_wait, futex_wake, yield_thread
from .plastic import deliver as deliver_plastic
from .plastic import deliver_only as deliver_plastic_only
from .plastic import push_spikes

#: Entries of the Poisson inversion guide tables (a power of two).
GUIDE = 256

#: Buckets of the Poisson count tables (a power of two): the count of a
#: uniform in a bucket that holds no CDF value is read from the table.
TAB = 4096
#: A 32-bit word's bucket: its top log2(TAB) bits.
TAB_SHIFT = 32 - (TAB.bit_length() - 1)

#: Bytes at the head of each pending spike's sub-rows that a thread reads all
#: at once at the start of a step, before adding any of them
#: (:func:`_warm_rows`): the memory latencies of the rows' first cache lines
#: overlap instead of stalling one row after the other (a large network's rows
#: are not in cache).  A compile-time constant; 0 turns it off.
ROW_WARM_BYTES = 1024

#: Longest interval (steps) between two meetings of the CPU threads
#: (:func:`run_clock`); it also stays below the network's shortest delay.
#: Each interval keeps its steps' spikers: ``(INTERVAL_MAX + 1) * 8`` bytes per neuron.
INTERVAL_MAX = 16

VAR_CODES = {"v": 0, "i_ex": 1, "i_in": 2, "theta": 3, "v_th": 4}
#: Recorder code of column ``k`` of a family's own state ``State.x``: ``X_CODE + k``.
X_CODE = 5


class Params(NamedTuple):
    """Parameter sets (one row per distinct set of values) plus per-neuron set id and ring column."""

    is_exp: np.ndarray
    p_vv: np.ndarray
    p_vi: np.ndarray
    p_ve: np.ndarray
    p_vn: np.ndarray
    p_ee: np.ndarray
    p_nn: np.ndarray
    v_rest: np.ndarray
    v_th: np.ndarray
    v_reset: np.ndarray
    v_min: np.ndarray
    i_e: np.ndarray
    ref_steps: np.ndarray
    reset_mode: np.ndarray
    reset_m: np.ndarray
    reset_b: np.ndarray
    p_theta: np.ndarray
    d_theta: np.ndarray
    col: np.ndarray           # int64 per neuron: first ring column
    pid: np.ndarray           # int64 per neuron: parameter set
    # (last, with a default: plans pickled before it existed get it on load, ClockPlan.__setstate__)
    family: np.ndarray = None  # int64 per parameter set: the neuron family's code (eventsim.models.family)
    coef: np.ndarray = None    # [sets, M] a family's own coefficients (a model's pack()["coef"]; M = 0: none)
    counts: np.ndarray = None  # int64 per parameter set: 1 if the family counts its input spikes and sends its
                               # spikes with that multiplicity (``Family.counts``: parrot neurons), else 0


#: Decorator of the per-step kernels.  They never allocate, so they are
#: compiled without Numba's reference counting (``_nrt=False``): otherwise
#: every array argument and every array taken from a tuple costs an atomic
#: increment and decrement per call, about half of the fixed cost of a step.
_kernel = njit(cache=True, _nrt=False)


class State(NamedTuple):
    v: np.ndarray
    i_ex: np.ndarray
    i_in: np.ndarray
    refr: np.ndarray
    theta: np.ndarray
    i_dc: np.ndarray          # constant input current (pA): the model's i_e plus DC sources
    x: np.ndarray = None      # [N, KX] a family's own state columns (a model's pack()["x_init"]; KX = 0: none)


class Conn(NamedTuple):
    row_split: np.ndarray     # int64 [n_senders, B*T+1] sub-row bounds per partition and receptor block (C == B*N)
    outdeg: np.ndarray        # int64 [n_senders]
    syn_off: np.ndarray       # int32/int64 delay_steps * C + column; uint16: column only (see column_form)
    syn_w: np.ndarray         # float64/float32 weight
    # (last, with defaults: plans pickled before they existed get them on load, ClockPlan.__setstate__)
    row_cw: np.ndarray = None  # uint8 [n_senders] 1: all the sender's synapses have the weight row_w
    row_w: np.ndarray = None   # [n_senders] that weight (dtype of syn_w)
    row_dmin: np.ndarray = None  # int32 [n_senders] shortest delay of the sender's synapses (steps; empty row: L)
    row_dmax: np.ndarray = None  # int32 [n_senders] longest delay (steps; empty row: 0)


class Sources(NamedTuple):
    pois_sender: np.ndarray   # int64 global sender id of each Poisson channel
    pois_channel: np.ndarray  # int64 channel id (RNG stream) of each Poisson channel
    pois_lam: np.ndarray      # float64 expected count per step
    pois_cls: np.ndarray      # int64 row of each channel in the CDF tables
    cdf: np.ndarray           # float64 [n_rates, kmax] CDF tables of the distinct rates < 12/step, padded with 2.0
    guide: np.ndarray         # int64 [n_rates, GUIDE]: number of CDF entries below j / GUIDE
    pois_ptr: np.ndarray      # int64 [T+1] CSR over pois_list per partition
    pois_list: np.ndarray     # int64 other Poisson channels with synapses into each partition
    one_ptr: np.ndarray       # int64 [T+1] CSR over the one_* arrays per partition
    one_ch: np.ndarray        # int64 channels (rate < 12/step) with exactly one synapse, by channel
    one_cls: np.ndarray       # int64 their CDF table row
    one_off: np.ndarray       # int64 their synapse's ring offset
    one_w: np.ndarray         # their synapse's weight (dtype of syn_w)
    one_gptr: np.ndarray      # int64 [S+1] each sub-range's Philox groups in one_u (4 words each; none: per channel)
    one_g0: np.ndarray        # int64 [S] first Philox group of each sub-range
    one_u: np.ndarray         # uint32 scratch: the step's Philox words of those groups, lane-major per sub-range
    key: np.ndarray           # uint64[2] Philox key
    ss_step: np.ndarray       # int64 stamps of explicit spikes, sorted
    ss_sender: np.ndarray     # int64 global sender ids
    ss_ptr: np.ndarray        # int64[1] next explicit spike
    # (last, with defaults: plans pickled before they existed get them on load, ClockPlan.__setstate__)
    tab: np.ndarray = None    # int8 [n_rates, TAB] Poisson count of each bucket of uniforms, -1 if it holds a CDF value
    one_run: np.ndarray = None  # int64 bounds (in the one_* arrays) of runs of consecutive channels, one rate
                                # and weight, consecutive columns of one delay row; cut at partitions
    one_rptr: np.ndarray = None  # int64 [S+1] first run of each sub-range in one_run
    one_sptr: np.ndarray = None  # int64 [T+1] first sub-range of each partition: its runs cut where the channels
                                 # leave a gap of Philox groups (an MPI rank's blocks of several populations)


class Work(NamedTuple):
    part: np.ndarray          # int64 [T+1] neuron range of each partition
    spk: np.ndarray           # int64 [N] spikers of this step, partition t from part[t]
    nsp: np.ndarray           # int64 [T]
    pend: np.ndarray          # int64 [N] spikes stamped at the current step, not yet delivered
    pend_n: np.ndarray        # int64 [1]
    ext: np.ndarray           # int64 [T] external events per partition
    seg: np.ndarray           # int64 bounds of runs of neurons sharing one parameter set, cut at partitions
    seg_ptr: np.ndarray       # int64 [T+1] first run of each partition in ``seg``
    flag: np.ndarray          # uint8 [N] spiked in this step (scratch)
    # (last, with defaults: plans pickled before they existed get them on load, ClockPlan.__setstate__)
    seg_dc: np.ndarray = None   # [n_runs] the constant input (pA) shared by every neuron of a run of ``seg``
    seg_dcu: np.ndarray = None  # uint8 [n_runs] 1: the run's neurons all have input seg_dc (no per-neuron read)
    isp: np.ndarray = None      # int64 [M * N] spikers of the last M steps (M = max(I, 1) + 1; CPU engine)
    insp: np.ndarray = None     # int64 [M * T] their number per step and partition
    interval: np.ndarray = None  # int64[1] I: steps per meeting of the CPU threads (0: one, events first)
    # multiplicity of each listed spike (int32, 1 but for counting families), beside the lists above:
    imul: np.ndarray = None     # [M * N] beside ``isp``
    smul: np.ndarray = None     # [N] beside ``spk``
    pmul: np.ndarray = None     # [N] beside ``pend``


class Recording(NamedTuple):
    spk_flag: np.ndarray      # int8 per neuron
    spk_step: np.ndarray      # int64 buffer
    spk_id: np.ndarray        # int64 buffer
    spk_n: np.ndarray         # int64[1] fill level
    rec_var: np.ndarray       # int64 per state recorder
    rec_k: np.ndarray         # int64 interval in steps
    rec_ptr: np.ndarray       # int64 CSR into rec_idx
    rec_idx: np.ndarray       # int64 neuron ids
    rec_off: np.ndarray       # int64 offset in rec_buf
    rec_cnt: np.ndarray       # int64 samples written
    rec_buf: np.ndarray       # float64
    counters: np.ndarray      # int64[2]: synaptic events from neurons, from sources


def column_form(syn_off):
    """True if ``syn_off`` holds ring columns only (uint16), each sender's delay being ``Conn.row_dmin``.

    A plan stores its synapses so when every sender has one delay and the
    ring has at most 65,536 columns (``plan.build_plan``): two bytes per
    synapse instead of four, and no delay arithmetic per synapse.
    In compiled code the answer is a constant of the array's type.
    """
    return syn_off.dtype == np.uint16


@overload(column_form, inline="always")
def _column_form_compiled(syn_off):
    const = syn_off.dtype == types.uint16
    return lambda syn_off: const


@njit(inline="always", cache=True)
def _deliver(a, b, mult, base, syn_off, syn_w, ring, LC):
    """Add ``mult * w`` of synapses ``a..b-1`` into the ring at their delay slots from ``base``.

    Slices indexed from 0 and an unsigned ring index: no negative-index
    wrap-around arithmetic in the loop.  ``LC = 0``: no synapse passes the
    ring's end (no test per synapse); else those that do wrap around.
    """
    so = syn_off[a:b]
    sw = syn_w[a:b]
    if LC == 0:
        for j in range(so.size):
            ring[np.uint64(base + so[j])] += mult * sw[j]
    else:
        for j in range(so.size):
            idx = base + so[j]
            if idx >= LC:
                idx -= LC
            ring[np.uint64(idx)] += mult * sw[j]


@njit(inline="always", cache=True)
def _deliver_const(a, b, x, base, syn_off, ring, LC):
    """Add ``x`` at the delay slots of synapses ``a..b-1`` (a row of equal weights: none read); ``LC`` as in
    :func:`_deliver`."""
    so = syn_off[a:b]
    if LC == 0:
        for j in range(so.size):
            ring[np.uint64(base + so[j])] += x
    else:
        for j in range(so.size):
            idx = base + so[j]
            if idx >= LC:
                idx -= LC
            ring[np.uint64(idx)] += x


@njit(inline="always", cache=True)
def _warm_rows(t, T, lst, a, b, rs, syn_off):
    """Read the first ``ROW_WARM_BYTES`` of partition ``t``'s sub-rows of senders ``lst[a:b]``.

    One load per cache line, independent of each other, so the CPU has many
    memory reads in flight at once; :func:`_deliver_row` then finds the
    heads of its rows in cache.  Returns the sum of the values read (kept by
    the caller so that the reads are not optimised away).
    """
    stride = max(1, 64 // syn_off.itemsize)
    span = ROW_WARM_BYTES // syn_off.itemsize
    acc = 0
    if span == 0:
        return acc
    blocks = (rs.shape[1] - 1) // T
    for q in range(a, b):
        n = lst[q]
        for k in range(blocks):
            j0 = rs[n, k * T + t]
            j1 = min(rs[n, k * T + t + 1], j0 + span)
            for j in range(j0, j1, stride):
                acc += syn_off[j]
    return acc


@_kernel
def _deliver_row(rs, n, t, T, mult, slot, L, C, syn_off, syn_w, row_cw, row_w, row_dmin, row_dmax, ring):
    """Add sender ``n``'s synapses into partition ``t``'s column block(s) at ring slot ``slot``; return how many.

    A sender whose synapses all have one weight (``row_cw[n]``) adds
    ``mult * row_w[n]``, the same number as ``mult * syn_w[j]`` for each of
    them, without reading the weights (a third of the bytes per event).
    When the sender's delays (``row_dmin[n] .. row_dmax[n]`` steps) all stay
    before the ring's end from ``slot``, or all pass it, the row is added
    without a wrap-around test per synapse (the same cells).  In the column
    form (:func:`column_form`) the row's one delay gives its ring slot.
    """
    a = rs[n, t]
    b = rs[n, t + 1]
    const = row_cw[n] != 0
    x = mult * row_w[n]
    base = slot * C
    LC = L * C
    if column_form(syn_off):
        d = slot + row_dmin[n]  # (an empty row's L: any slot, nothing is added)
        if d >= L:
            d -= L
        base = d * C
        LC = 0
    elif slot + row_dmax[n] < L:
        LC = 0
    elif slot + row_dmin[n] >= L:
        base -= LC   # every synapse wraps around: from ``base - LC``, >= 0 at each of them
        LC = 0
    if const:
        _deliver_const(a, b, x, base, syn_off, ring, LC)
    else:
        _deliver(a, b, mult, base, syn_off, syn_w, ring, LC)
    k = b - a
    for blk in range(1, (rs.shape[1] - 1) // T):  # the other receptor blocks
        a = rs[n, blk * T + t]
        b = rs[n, blk * T + t + 1]
        if const:
            _deliver_const(a, b, x, base, syn_off, ring, LC)
        else:
            _deliver(a, b, mult, base, syn_off, syn_w, ring, LC)
        k += b - a
    return k


@njit(inline="always", cache=True)
def _invert(u, cls, guide, cdf):
    """Poisson count for uniform ``u`` from CDF row ``cls`` (rate below 12 per step).

    The search starts from a guide table: ``u * GUIDE`` is exact (GUIDE is a
    power of two), so the count equals the number of CDF entries below ``u``,
    usually after one comparison.
    """
    c = guide[cls, int(u * GUIDE)]
    while u > cdf[cls, c]:
        c += 1
    return c


@njit(inline="always", cache=True)
def _count(word, cls, tab, guide, cdf):
    """Poisson count for the 32-bit word ``word`` (uniform ``u01(word)``) of rate row ``cls``.

    A table look-up, else :func:`_invert`.  The bucket of ``u01(word)``,
    ``floor((word + 0.5) / 2**32 * TAB)``, is the word's top ``log2(TAB)``
    bits (no float arithmetic); a bucket without a CDF value has one count
    for all its uniforms (the same as the search).
    """
    c = np.int64(tab[cls, np.uint64(word) >> np.uint64(TAB_SHIFT)])
    if c < 0:
        c = _invert(u01(word), cls, guide, cdf)
    return c


@njit(inline="always", cache=True)
def _state_value(code, n, st, pr):
    if code == 0:
        return st.v[n]
    if code == 1:
        return st.i_ex[n]
    if code == 2:
        return st.i_in[n]
    if code >= X_CODE:
        return st.x[n, code - X_CODE]
    th = 0.0
    for k in range(st.theta.shape[1]):
        th += st.theta[n, k]
    if code == 3:
        return th
    return pr.v_th[pr.pid[n]] + th


@_kernel
def _update_partition(t, s, pr, st, conn, ring, src, work, C, L, fams, f_pois, f_one,
                      f_pl=None):
    """Deliver the events stamped ``s`` into partition ``t``, then update its neurons (the CUDA engine's step).

    ``fams`` (the tags of the neuron families present) and ``f_*`` (``None``
    or ``True``) say which kinds of work the network has (see
    :func:`features`).  Numba prunes a branch on an argument that is
    ``None`` before typing, and compiles the update of the families in
    ``fams`` only, so the kernels of absent kinds (neuron families, Poisson
    channels with several or with one synapse) are never compiled: less to
    compile on a cold start.
    """
    T = work.nsp.shape[0]
    _deliver_list(t, T, s, L, C, work.pend, work.pmul, 0, work.pend_n[0], conn, ring)
    if f_pl is not None:  # plastic synapses: one copy of the presynaptic traces, updated by _after_step's caller
        push_spikes(t, s, work.pend, 0, work.pend_n[0], work.part[t], work.part[t + 1], f_pl)
        deliver_plastic_only(t, T, 0, s, work.pend, work.pmul, 0, work.pend_n[0], s % L, L, C, f_pl, ring)
    _deliver_sources(t, T, s, L, C, src.ss_ptr[0], src, conn, ring)
    _poisson_inputs(t, s, conn, ring, src, work, C, L, f_pois, f_one)
    work.nsp[t] = _neurons(t, s, pr, st, ring, work, C, L, work.spk, work.smul, fams)


@njit(inline="always", cache=True)
def _deliver_list(t, T, s, L, C, lst, mul, a, b, conn, ring):
    """Add the synapses of senders ``lst[a:b]`` (spikes stamped ``s``, multiplicities ``mul[a:b]``: weight x
    multiplicity, as NEST delivers) into partition ``t``, in that order."""
    slot = s % L
    for q in range(a, b):
        m = mul[q]
        if m == 1:
            _deliver_row(conn.row_split, lst[q], t, T, 1.0, slot, L, C, conn.syn_off, conn.syn_w, conn.row_cw,
                         conn.row_w, conn.row_dmin, conn.row_dmax, ring)
        else:
            _deliver_row(conn.row_split, lst[q], t, T, float(m), slot, L, C, conn.syn_off, conn.syn_w,
                         conn.row_cw, conn.row_w, conn.row_dmin, conn.row_dmax, ring)


@njit(inline="always", cache=True)
def _deliver_sources(t, T, s, L, C, p, src, conn, ring):
    """Add the explicit source spikes stamped ``s`` into partition ``t``, scanning from entry ``p`` (any entry
    at or before the first one stamped ``s``); return the first entry stamped after ``s``."""
    slot = s % L
    while p < src.ss_step.shape[0] and src.ss_step[p] <= s:
        if src.ss_step[p] == s:
            _deliver_row(conn.row_split, src.ss_sender[p], t, T, 1.0, slot, L, C, conn.syn_off, conn.syn_w,
                         conn.row_cw, conn.row_w, conn.row_dmin, conn.row_dmax, ring)
        p += 1
    return p


@njit(inline="always", cache=True)
def _poisson_inputs(t, s, conn, ring, src, work, C, L, f_pois, f_one):
    """Draw the step-``s`` Poisson counts of the channels into partition ``t`` and add them."""
    LC = L * C
    base = (s % L) * C
    T = work.nsp.shape[0]
    if f_pois is not None:
        work.ext[t] += _poisson(t, T, s, L, C, src.key[0], src.key[1], src.pois_ptr[t], src.pois_ptr[t + 1],
                                src.pois_list, src.pois_lam, src.pois_channel, src.pois_cls, src.pois_sender,
                                src.tab, src.guide, src.cdf, conn.row_split, conn.syn_off, conn.syn_w,
                                conn.row_cw, conn.row_w, conn.row_dmin, conn.row_dmax, ring)
    if f_one is not None:
        for k in range(src.one_sptr[t], src.one_sptr[t + 1]):  # the partition's sub-ranges, in channel order
            work.ext[t] += _poisson_one(s, base, LC, src.key[0], src.key[1], src.one_rptr[k], src.one_rptr[k + 1],
                                        src.one_run, src.one_ch, src.one_cls, src.one_off, src.one_w, src.tab,
                                        src.guide, src.cdf, ring, src.one_g0[k],
                                        src.one_u[4 * src.one_gptr[k]: 4 * src.one_gptr[k + 1]])


@_kernel
def _neurons(t, s, pr, st, ring, work, C, L, spk, mul, fams):
    """Step ``s``'s neuron update, threshold and reset of partition ``t`` (input: ring slot ``s + 1``); the
    spikers go to ``spk`` from ``work.part[t]`` on, their multiplicities to ``mul`` beside them.  Returns
    how many."""
    return _update_neurons(work.seg_ptr[t], work.seg_ptr[t + 1], work.seg, work.seg_dc, work.seg_dcu,
                           ((s + 1) % L) * C, ring, pr, st, work.flag, spk, mul, fams)


@_kernel
def _poisson(t, T, s, L, C, k0, k1, m0, m1, pois_list, pois_lam, pois_channel, pois_cls, pois_sender, tab,
             guide, cdf, row_split, syn_off, syn_w, row_cw, row_w, row_dmin, row_dmax, ring):
    """Draw the step-``s`` counts of Poisson channels ``pois_list[m0:m1]`` and add them into partition ``t``.

    Returns the number of synaptic events.  Plain array arguments (no tuples)
    keep the base pointers in registers.
    """
    last = -1
    words = group_words(k0, k1, s, 0)
    ext = 0
    for m in range(m0, m1):
        j = pois_list[m]
        lam = pois_lam[j]
        ch = pois_channel[j]
        if lam < 12.0:
            g = ch >> 2
            if g != last:
                words = group_words(k0, k1, s, g)
                last = g
            c = _count(pick(words, ch & 3), pois_cls[j], tab, guide, cdf)
        else:
            c = poisson_ptrs(lam, k0, k1, s, ch)
        if c > 0:
            ext += c * _deliver_row(row_split, pois_sender[j], t, T, float(c), s % L, L, C, syn_off, syn_w, row_cw,
                                    row_w, row_dmin, row_dmax, ring)
    return ext


@_kernel
def _poisson_one(s, base, LC, k0, k1, r0, r1, run, one_ch, one_cls, one_off, one_w, tab, guide, cdf, ring, g0, u):
    """Poisson channels with a single synapse (e.g. one-to-one input), runs ``r0..r1-1``: draw and add.

    The same counts as :func:`_poisson` from compact per-partition arrays;
    whether a channel is listed here does not depend on the thread count,
    so every ring cell still receives its additions in one fixed order.
    Run ``r`` covers entries ``run[r] .. run[r+1]-1`` of the ``one_*``
    arrays: consecutive channels of one rate and weight whose synapses go
    to consecutive columns of one delay row, so within a run only the
    uniform and the count vary (one wrap-around test per run).

    ``u`` holds 4 words (uint32) per Philox group from group ``g0`` on
    (lane-major: lane ``l`` of group ``g`` at ``l * G + g - g0``): when it is
    not empty, the step's words of the whole range are made first in one
    vectorised pass (:func:`eventsim.rng.group_block`), then each channel
    picks its own; otherwise every group of four channels is drawn where it
    is met.  Both give the same words, hence the same counts.
    """
    ext = 0
    G = u.size // 4
    if G > 0 and r1 > r0:
        group_block(k0, k1, s, g0, u)
    last = -1
    words = group_words(k0, k1, s, 0)
    for r in range(r0, r1):
        a = run[r]
        n = run[r + 1] - a
        ch0 = one_ch[a]
        cls = one_cls[a]
        w = one_w[a]
        idx = base + one_off[a]
        if idx >= LC:
            idx -= LC
        rg = ring[idx: idx + n]
        if G > 0:
            for i in range(n):
                ch = ch0 + i
                c = _count(u[np.uint64((ch & 3) * G + (ch >> 2) - g0)], cls, tab, guide, cdf)
                rg[i] += c * w
                ext += c
        else:
            for i in range(n):
                ch = ch0 + i
                g = ch >> 2
                if g != last:  # four channels share one Philox block
                    words = group_words(k0, k1, s, g)
                    last = g
                c = _count(pick(words, ch & 3), cls, tab, guide, cdf)
                rg[i] += c * w
                ext += c
    return ext


@_kernel
def _update_neurons(g0, g1, seg, seg_dc, seg_dcu, rbase, ring, pr, st, flag, spk, mul, fams):
    """Update the runs ``g0..g1-1`` of ``seg`` (reading ring slot at ``rbase``); return how many spiked.

    Within a run every neuron has the same parameter set, so its family's
    block update (:func:`eventsim.models.family.update_block`) has the
    parameters as loop constants and reads consecutive ring columns
    (:func:`eventsim.models.family.update_family` picks it); the
    spikers are gathered from ``flag`` afterwards, in index order.  A run
    whose neurons all have the same constant input (``seg_dcu[g]``) passes
    it as a loop constant instead of having ``st.i_dc`` read per neuron (the
    same sum, ``i_e + seg_dc[g]``).  ``fams``: the tags of the families
    present (:func:`features`); the update of an absent family is not
    compiled.  Each spiker's multiplicity goes to ``mul`` beside it: 1, or
    for a family that counts its input (``pr.counts``) the count it left in
    ``st.v``.
    """
    lo = seg[g0]
    nsp = 0
    for g in range(g0, g1):
        a = seg[g]
        b = seg[g + 1]
        q = pr.pid[a]
        c0 = rbase + pr.col[a] - a
        per_neuron = seg_dcu[g] == 0
        i_c = pr.i_e[q] if per_neuron else pr.i_e[q] + seg_dc[g]
        update_family(fams, pr.family[q], a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag)
        # gather the spikers in index order, skipping blocks of 64 without any (a vectorised sum)
        p0 = lo + nsp
        n = a
        while n < b:
            e = min(n + 64, b)
            fs = flag[n:e]
            k = 0
            for j in range(fs.size):
                k += fs[j]
            if k:
                for j in range(fs.size):  # branch-free: the slot written is never past n + j
                    spk[lo + nsp] = n + j
                    nsp += fs[j]
            n = e
        if pr.counts[q] != 0:
            for p in range(p0, lo + nsp):
                mul[p] = np.int32(st.v[spk[p]])
        else:
            for p in range(p0, lo + nsp):
                mul[p] = 1
    return nsp


@njit(inline="always", cache=True)
def _spikes_out(s, spk, mul, nsp, part, pend, pmul, conn, rec):
    """The spikers of step ``s`` (partition ``t``'s in ``spk`` from ``part[t]``, ``nsp[t]`` of them, their
    multiplicities beside them in ``mul``), in index order: their synapses counted (times the
    multiplicity), the recorded ones stored (stamp ``s + 1``; see :data:`MULT_SHIFT`) and, unless ``pend``
    is ``None``, copied to ``pend`` and ``pmul``.  Returns how many."""
    m = 0
    for t in range(nsp.shape[0]):
        lo = part[t]
        for k in range(nsp[t]):
            n = spk[lo + k]
            c = np.int64(mul[lo + k])
            if pend is not None:
                pend[m] = n
                pmul[m] = c
            m += 1
            rec.counters[0] += conn.outdeg[n] * c
            if rec.spk_flag[n]:
                r = rec.spk_n[0]
                rec.spk_step[r] = s + 1
                rec.spk_id[r] = n | ((c - 1) << MULT_SHIFT)
                rec.spk_n[0] = r + 1
    return m


@njit(inline="always", cache=True)
def _record_states(s, s0, lo, hi, pr, st, rec):
    """The samples due at the end of step ``s`` of the state recorders' neurons ``lo <= n < hi``.

    A recorder's sample at step ``s`` is its ``s // k - s0 // k``-th since step ``s0`` (sampling every ``k``
    steps), so the threads can each write their own neurons' values."""
    for r in range(rec.rec_var.shape[0]):
        k = rec.rec_k[r]
        if (s + 1) % k == 0:
            a = rec.rec_ptr[r]
            b = rec.rec_ptr[r + 1]
            base = rec.rec_off[r] + (s // k - s0 // k) * (b - a)
            for i in range(a, b):
                n = rec.rec_idx[i]
                if lo <= n < hi:
                    rec.rec_buf[base + i - a] = _state_value(rec.rec_var[r], n, st, pr)


@njit(inline="always", cache=True)
def _skip_sources(s, src):
    """Move the explicit-source pointer past the spikes stamped up to ``s``."""
    p = src.ss_ptr[0]
    while p < src.ss_step.shape[0] and src.ss_step[p] <= s:
        p += 1
    src.ss_ptr[0] = p


@_kernel
def _after_step(s, s0, pr, st, conn, src, rec, work):
    """Serial end of step ``s`` of a chunk from step ``s0`` (CUDA engine): advance the source pointer,
    collect spikes, record."""
    _skip_sources(s, src)
    work.pend_n[0] = _spikes_out(s, work.spk, work.smul, work.nsp, work.part, work.pend, work.pmul, conn, rec)
    _record_states(s, s0, 0, work.flag.shape[0], pr, st, rec)
    for r in range(rec.rec_var.shape[0]):
        if (s + 1) % rec.rec_k[r] == 0:
            rec.rec_cnt[r] += 1


def features(pr, src):
    """The ``fams, f_pois, f_one`` arguments of the step kernels for a plan.

    ``fams``: the tags of the neuron families of the network's parameter
    sets (:func:`eventsim.models.family.tags`); the update of a family not
    among them is not compiled (nor run).  The Poisson flags (channels with
    several synapses, with one) are always ``True``: a network without such
    channels runs their loops over empty ranges, and every network of one
    neuron family shares one compiled kernel (fewer compilations, and
    :func:`eventsim.warmup` covers them), for about a second more
    compilation when none was needed.
    """
    return (family_tags(pr.family[pr.pid]), True, True)


# ---------------------------------------------------------------- thread team
#: A recorded spike of multiplicity ``m > 1`` is stored once, as ``id | (m - 1) << MULT_SHIFT`` in
#: ``Recording.spk_id`` (:func:`split_multiplicity` expands it), so the buffer's bound of one entry per
#: recorded neuron and step holds.
MULT_SHIFT = 40


def split_multiplicity(steps, ids):
    """``(steps, ids)`` of a spike recording with each spike of multiplicity ``m`` repeated ``m`` times
    (see :data:`MULT_SHIFT`)."""
    ids = np.asarray(ids, np.int64)
    extra = ids >> MULT_SHIFT
    if not extra.any():
        return steps, ids
    ids = ids & ((1 << MULT_SHIFT) - 1)
    return np.repeat(steps, extra + 1), np.repeat(ids, extra + 1)


#: Slots of the ``team`` array of :func:`run_clock` (one cache line apart;
#: ``SINK`` collects the values of the rows' heads read ahead, unused;
#: ``STOP_AT``: the step before which the team stops early, 0 if none;
#: ``SLEEPERS``: threads asleep waiting for a phase to end).
#: ``RETIRED``: threads that left the rest of the call to the others; ``FINAL``: 1 once a thread has
#: taken the end of the call.
JOIN, DONE, REACHED, SINK, STOP_AT, SLEEPERS, RETIRED, FINAL = 0, 8, 24, 25, 26, 27, 28, 29
#: Partition ``u``'s slots start at ``TEAM_PART + TEAM_STRIDE * u`` (one cache line each): the number of
#: phases in which it has been claimed, and its explicit-source pointer.
TEAM_PART, TEAM_STRIDE = 32, 8
#: A waiting thread yields the CPU after this many polls ...
SPINS = 1000
#: ... and a team still incomplete after this many yields is abandoned.
JOIN_YIELDS = 200_000
#: A thread waiting for the end of a phase polls ``SPINS`` times, then
#: yields the CPU between polls this many times, then sleeps until the phase
#: ends (it gives its CPU away instead of spinning on it while the machine
#: is busy).
PHASE_YIELDS = 20
#: Longest sleep of a waiting thread before it looks again (ns; it is normally woken earlier).
SLEEP_NS = 1_000_000
#: A thread that found every piece of a phase already claimed by the others (it came late: it had lost
#: its CPU, or slept longer than a piece takes) this many phases in a row leaves the rest of the call to
#: the others (the last thread never leaves).  Counted in a row: a thread that is late now and then
#: (it slept while the other finished a longer piece) stays, else a network whose pieces are uneven
#: ran on one thread.
RETIRE_AFTER = 64


def team_array(T):
    """A new ``team`` array for :func:`run_clock` with ``T`` partitions."""
    return np.zeros(TEAM_PART + TEAM_STRIDE * T, np.int64)


@njit(inline="always", cache=True)
def _spin(k):
    """Poll number ``k + 1`` of a spin-wait (returned): every ``SPINS`` polls the CPU is yielded."""
    k += 1
    if k % SPINS == 0:
        yield_thread()
    return k


@njit(inline="always", cache=True)
def _join(team, T):
    """Rendezvous of the ``T`` threads of a team: True once all of them are running.

    False if they do not all start (a thread the system did not run for a
    long time): whoever waited too long closes the team (a negative count)
    before anyone has worked, and every member then returns at once.
    Phases never wait for a thread that has not joined, so a team cannot
    deadlock.
    """
    old = atomic_add(team, JOIN, 1)
    if old < 0:
        return False
    if old == T - 1:
        return True
    k = 0
    while True:
        v = atomic_load(team, JOIN)
        if v == T:
            return True
        if v < 0:
            return False
        k = _spin(k)
        if k >= SPINS * JOIN_YIELDS and atomic_cas(team, JOIN, v, -(1 << 40)):
            return False


@njit(inline="always", cache=True)
def _claim(team, u, ph):
    """Claim partition ``u``'s work of phase ``ph``: True for exactly one thread of the team."""
    return atomic_cas(team, TEAM_PART + TEAM_STRIDE * u, ph, ph + 1)


@njit(inline="always", cache=True)
def _done(team, ph, T):
    """One partition's work of phase ``ph`` is done; whoever finishes the phase wakes the sleepers."""
    if atomic_add(team, DONE, 1) == (ph + 1) * T - 1:   # its ordering publishes every write before it
        if atomic_load(team, SLEEPERS) > 0:   # (read after the last addition: a thread about to sleep sees
            futex_wake(team, DONE)            # the phase complete, or has counted itself before)


@njit(inline="always", cache=True)
def _wait_phase(team, ph, T):
    """Wait until all ``T`` partitions' work of phase ``ph`` is done.

    Spin ``SPINS`` polls, yield ``PHASE_YIELDS`` times, then sleep on the
    count (a futex) until the thread that completes the phase wakes it.
    """
    end = (ph + 1) * T
    k = 0
    while atomic_load(team, DONE) < end:
        k += 1
        if k >= SPINS:
            if k < SPINS + PHASE_YIELDS:
                yield_thread()
            else:
                atomic_add(team, SLEEPERS, 1)
                d = atomic_load(team, DONE)
                while d < end:
                    futex_wait(team, DONE, d, SLEEP_NS)
                    d = atomic_load(team, DONE)
                atomic_add(team, SLEEPERS, -1)


@njit(inline="always", cache=True)
def _interval_len(s, s1, I, cap, n_flag):
    """Steps of the interval starting at ``s``: at most ``I``, ending at ``s1``, with room for its spikes."""
    J = min(I, s1 - s)
    if n_flag > 0:
        J = max(1, min(J, cap // n_flag))
    return J


@njit(inline="always", cache=True)
def _update_steps(t, a, b, s0, M, lo, hi, pr, st, ring, work, rec, C, L, fams):
    """Steps ``a .. b-1`` of partition ``t``'s neurons (``lo <= n < hi``): update, spikers into list ``k % M``,
    state samples."""
    T = work.nsp.shape[0]
    N = work.flag.shape[0]
    for k in range(a, b):
        j = k % M
        work.insp[j * T + t] = _neurons(t, k, pr, st, ring, work, C, L, work.isp[j * N: (j + 1) * N],
                                        work.imul[j * N: (j + 1) * N], fams)
        _record_states(k, s0, lo, hi, pr, st, rec)


def _first_room(s0, s1, I, n_flag, rec):
    """Whether the spike-recording buffer has room for the first interval of a call from step ``s0``."""
    cap = rec.spk_step.shape[0]
    return rec.spk_n[0] + _interval_len.py_func(s0, s1, max(int(I), 1), cap, n_flag) * n_flag <= cap


@njit(cache=True, _nrt=False, nogil=True)
def run_clock(t, s0, s1, L, C, pr, st, conn, ring, src, rec, work, n_flag, team, fams, f_pois,
              f_one, f_pl=None):
    """Thread ``t``'s share of steps ``s0 .. s1-1`` on a team of ``T = work.nsp.size`` threads and partitions.

    ``I = work.interval[0]`` steps (at most the shortest delay minus one)
    make an interval.  Within an interval the neurons of each partition are
    first updated step after step (the ring slots they read are complete:
    every addition reaches the ring ``I + 1`` or more steps after the step
    that makes it), keeping each step's spikers; then, once every partition
    is updated, the interval's events are added into each partition step
    after step, in the step-by-step order (spikes stamped ``k`` by index,
    source spikes, Poisson channels).  ``I = 0`` (a delay of one step) means
    one step at a time, events first: deliver the spikes stamped ``k``,
    update.  Either way every ring cell gets its additions in the order of
    the step-by-step loop, so the results do not depend on ``I`` or on the
    thread count.  ``f_pl``: the plastic synapses (:mod:`.plastic`) or None;
    a partition's plastic deliveries follow its static ones for each list of
    spikes, and it records its own neurons' spikes in their histories first.

    Each of these phases is ``T`` pieces of work, one per partition, each
    claimed by exactly one thread (a thread tries its own partition first,
    then the others), and a phase starts when the previous one is done.  The
    work of a partition is the same whoever does it, so results do not
    depend on which thread does what; a thread that lost its CPU (a busy
    machine) only delays the pieces it has claimed, and the others do the
    rest.  A thread waiting for the end of a phase spins, yields, then sleeps
    (:func:`_wait_phase`); a thread that comes too late for any piece
    ``RETIRE_AFTER`` times leaves the rest of the call to the others (a
    busy machine then runs the team on fewer threads, a quiet one on all).

    Step ``k``'s spikers are list ``k % M`` of ``work.isp`` / ``work.insp``
    (``M = max(I, 1) + 1``).  The delivery work of partition 0 also counts
    and records each complete list.  At the end one thread leaves the last
    step's spikers in ``work.pend``, the source pointer past that step and
    the step reached in ``team[REACHED]``: ``s1``, or earlier (at an
    interval's start) when the spike-recording buffer could overflow; the
    caller empties it and calls again.  The buffer must have room for the
    first interval (:func:`_first_room`; :func:`run_steps` checks it).
    Every thread calls it with the same arguments but ``t``, with ``team``
    from :func:`team_array` whose partitions' source pointers are
    ``src.ss_ptr[0]`` (see :func:`run_steps`); it runs without the GIL.
    ``team[JOIN] < 0``: the team could not be gathered and nothing was done.
    ``s1 <= s0`` returns at once (a call that only compiles or loads the kernel).
    """
    if s1 <= s0:
        return
    T = work.nsp.shape[0]
    if not _join(team, T):
        return
    N = work.flag.shape[0]
    I = work.interval[0]
    Jmax = max(I, 1)
    M = Jmax + 1
    cap = rec.spk_step.shape[0]
    part = work.part
    reached = s1
    sink = 0
    ph = 0  # phases started so far (the same sequence on every thread)
    late = 0  # phases in a row in which this thread found nothing left to do
    s = s0
    while s < s1:
        J = _interval_len(s, s1, Jmax, cap, n_flag)
        if s > s0 and team[STOP_AT] == s:  # set with partition 0's deliveries in the last interval
            reached = s
            break
        if late >= RETIRE_AFTER:
            if atomic_add(team, RETIRED, 1) < T - 1:
                atomic_add(team, SINK, sink)
                return
            atomic_add(team, RETIRED, -1)  # the last thread stays
            late = 0
        e = s + J
        if I > 0:
            got = False
            for i in range(T):
                u = (t + i) % T
                if _claim(team, u, ph):
                    got = True
                    _update_steps(u, s, e, s0, M, part[u], part[u + 1], pr, st, ring, work, rec, C, L, fams)
                    _done(team, ph, T)
            late = 0 if got else late + 1  # (in a row)
            _wait_phase(team, ph, T)
            ph += 1
        got = False
        for i in range(T):
            u = (t + i) % T
            if not _claim(team, u, ph):
                continue
            got = True
            if u == 0:  # the complete lists of steps s-1 .. e-2 (e-1's: in the next interval, or at the end)
                for k in range(max(s - 1, s0), e - 1):
                    j = k % M
                    _spikes_out(k, work.isp[j * N: (j + 1) * N], work.imul[j * N: (j + 1) * N],
                                work.insp[j * T: (j + 1) * T], part, None, None, conn, rec)
            p = team[TEAM_PART + TEAM_STRIDE * u + 1]  # the partition's explicit-source pointer
            for k in range(s, e):
                if k == s0:
                    sink += _warm_rows(u, T, work.pend, 0, work.pend_n[0], conn.row_split, conn.syn_off)
                    _deliver_list(u, T, k, L, C, work.pend, work.pmul, 0, work.pend_n[0], conn, ring)
                    if f_pl is not None:
                        push_spikes(u, k, work.pend, 0, work.pend_n[0], part[u], part[u + 1], f_pl)
                        deliver_plastic(u, T, k, work.pend, work.pmul, 0, work.pend_n[0], k % L, L, C, f_pl, ring)
                else:
                    j = (k - 1) % M
                    lst = work.isp[j * N: (j + 1) * N]
                    lmul = work.imul[j * N: (j + 1) * N]
                    cnt = work.insp[j * T: (j + 1) * T]
                    for v in range(T):
                        sink += _warm_rows(u, T, lst, part[v], part[v] + cnt[v], conn.row_split, conn.syn_off)
                    for v in range(T):
                        _deliver_list(u, T, k, L, C, lst, lmul, part[v], part[v] + cnt[v], conn, ring)
                    if f_pl is not None:
                        push_spikes(u, k, lst, part[u], part[u] + cnt[u], part[u], part[u + 1], f_pl)
                        for v in range(T):
                            deliver_plastic(u, T, k, lst, lmul, part[v], part[v] + cnt[v], k % L, L, C, f_pl, ring)
                p = _deliver_sources(u, T, k, L, C, p, src, conn, ring)
                _poisson_inputs(u, k, conn, ring, src, work, C, L, f_pois, f_one)
            team[TEAM_PART + TEAM_STRIDE * u + 1] = p
            if I == 0:  # (J == 1) the step's update after its events
                _update_steps(u, s, e, s0, M, part[u], part[u + 1], pr, st, ring, work, rec, C, L, fams)
            # room for the last step's spikers and the next interval's
            if u == 0 and e < s1 and rec.spk_n[0] + (1 + _interval_len(e, s1, Jmax, cap, n_flag)) * n_flag > cap:
                team[STOP_AT] = e
            _done(team, ph, T)
        late = 0 if got else late + 1
        _wait_phase(team, ph, T)
        ph += 1
        s = e
    atomic_add(team, SINK, sink)
    if atomic_cas(team, FINAL, 0, 1):  # (every thread still here has the same ``reached``)
        if reached > s0:
            j = (reached - 1) % M
            work.pend_n[0] = _spikes_out(reached - 1, work.isp[j * N: (j + 1) * N], work.imul[j * N: (j + 1) * N],
                                         work.insp[j * T: (j + 1) * T], part, work.pend, work.pmul, conn, rec)
            _skip_sources(reached - 1, src)
            for r in range(rec.rec_var.shape[0]):
                k = rec.rec_k[r]
                rec.rec_cnt[r] = reached // k - s0 // k
        team[REACHED] = reached


def run_steps(s0, s1, L, C, pr, st, conn, ring, src, rec, work, n_flag, flags):
    """Steps ``s0 .. s1-1`` on ``T = work.nsp.size`` threads (this one and ``T - 1`` started here).

    Returns the step reached (see :func:`run_clock`; ``s0`` when the
    spike-recording buffer has no room for the first interval), or -1 if the
    threads could not be gathered (nothing was done).  The threads are
    started per call (a chunk of steps: tens of microseconds against
    milliseconds), so a plan holds no thread and pickles as it is.
    """
    if s1 <= s0:
        return s1
    if not _first_room(s0, s1, work.interval[0], n_flag, rec):
        return s0
    T = work.nsp.shape[0]
    team = team_array(T)
    team[TEAM_PART + 1::TEAM_STRIDE] = src.ss_ptr[0]
    args = (s0, s1, L, C, pr, st, conn, ring, src, rec, work, n_flag, team) + tuple(flags)
    run_clock(np.int64(0), s0, s0, *args[2:])  # compiled or loaded from the cache before any thread waits
    errors = []

    def member(t):
        try:
            run_clock(np.int64(t), *args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)

    threads = []
    try:
        for t in range(1, T):
            th = threading.Thread(target=member, args=(t,), name=f"eventsim-{t}", daemon=True)
            th.start()
            threads.append(th)
    except BaseException:
        team[JOIN] = -(1 << 40)   # close the team: the started members return at once
        for th in threads:
            th.join()
        raise
    run_clock(np.int64(0), *args)
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return -1 if team[JOIN] < 0 else int(team[REACHED])
