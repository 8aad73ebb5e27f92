"""The engine's CSR build: identical to a plain NumPy sort, compact, and without big temporaries."""

import gc
import tracemalloc

import numba
import numpy as np
import pytest

import eventsim as es
from eventsim.engines.plan import build_plan


def _network(weight_dtype):
    net = es.Network(dt=0.1, seed=11, weight_dtype=weight_dtype)
    delta = es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
    exp = es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0)
    a = net.population(60, delta)
    b = net.population(40, exp)
    # multapses, mixed signs (receptor split on exp targets), tiny weights that are -0.0 in float32
    net.connect(a, a | b, es.FixedInDegree(25), weight=es.Normal(0.0, 1.0), delay=es.Uniform(0.1, 3.0))
    net.connect(b, a | b, es.FixedProbability(0.3), weight=-2.0, delay=0.7)
    net.connect(a[:5], b[:5], es.OneToOne(), weight=[-1e-50, 1e-50, -1.0, 0.0, -0.0], delay=0.2)
    net.connect(a, b, es.FixedInDegree(3), weight=3.0, delay=1.2)          # more multapses, later
    noise = net.poisson(100, rate=5000.0)
    net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(60, 0.5), np.full(40, 50.0)], delay=0.1)
    stim = net.spike_source([0, 1], [1.0, 2.0])
    net.connect(stim, b, es.AllToAll(), weight=-5.0, delay=0.5)
    dc = net.dc(10.0)
    net.connect(dc, a[:3], es.AllToAll(), weight=1.0)
    return net


def _reference_csr(net, plan):
    """Stable sort of all synapses by (sender, column): the obviously-correct construction."""
    N, C = net.n_neurons, plan.C
    pre, col, off, w = [], [], [], []
    for p in net.projections:
        if p.source.kind == "dc":
            continue
        sender = p.source.ids[p.pre] + (N if p.source.kind == "source" else 0)
        target = p.target.ids[p.post]
        wt = np.asarray(p.weight).astype(net.weight_dtype)
        # column n for the (excitatory) input, N + n for the inhibitory receptor of exp-synapse neurons
        c = target + N * ((plan.params.is_exp[plan.params.pid[target]] == 1) & (wt < 0))
        pre.append(sender)
        col.append(c)
        off.append(np.asarray(p.delay_steps, np.int64) * C + c)
        w.append(wt)
    pre, col, off, w = (np.concatenate(x) for x in (pre, col, off, w))
    order = np.lexsort((col, pre))  # lexsort is stable
    row_ptr = np.concatenate([[0], np.cumsum(np.bincount(pre, minlength=N + net._n_channels))])
    return row_ptr, off[order], w[order]


@pytest.mark.parametrize("weight_dtype", ["float64", "float32"])
def test_csr_equals_a_stable_sort(weight_dtype):
    net = _network(weight_dtype)
    plan = build_plan(net)
    row_ptr, off, w = _reference_csr(net, plan)
    np.testing.assert_array_equal(plan._row_ptr, row_ptr)
    np.testing.assert_array_equal(plan._syn_off, off)
    np.testing.assert_array_equal(plan._syn_w, w)
    assert plan._syn_w.dtype == np.dtype(weight_dtype)
    assert np.signbit(plan._syn_w).sum() > 0
    # partitions: each sub-row holds exactly the synapses whose column its partition owns
    for T in (1, 3, 7):
        plan._partition(T)
        rs, part = plan.conn.row_split, plan.work.part
        N = plan.params.pid.size
        blocks = [0, N] if plan.C > N else [0]  # the column blocks: excitatory/only, inhibitory receptor
        assert rs.shape[1] == len(blocks) * T + 1
        cols = plan._syn_off % plan.C
        for s in range(row_ptr.size - 1):
            for k, off in enumerate(blocks):
                for t in range(T):
                    sub = cols[rs[s, k * T + t]: rs[s, k * T + t + 1]]
                    assert np.all((sub >= off + part[t]) & (sub < off + part[t + 1]))
            assert rs[s, 0] == row_ptr[s] and rs[s, -1] == row_ptr[s + 1]
    plan._partition(numba.get_num_threads())


def test_sort_rows_is_a_stable_sort_by_column():
    from eventsim.engines import csr

    rng = np.random.default_rng(3)
    C = 37
    lengths = [0, 1, 2, 3, 5, 8, 64, 100, 1000, 1025]  # powers of two and not: every merge width
    row_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    off = rng.integers(0, 4 * C, row_ptr[-1]).astype(np.int32)  # many equal columns (stability)
    off[row_ptr[5]:row_ptr[6]] = np.arange(8)  # one row already sorted
    w = np.arange(off.size, dtype=np.float64)  # the original position, to check the order of ties
    assert not csr.rows_sorted(row_ptr, off, C)
    ref_off, ref_w = off.copy(), w.copy()
    for a, b in zip(row_ptr[:-1], row_ptr[1:]):
        order = np.argsort(off[a:b] % C, kind="stable")
        ref_off[a:b], ref_w[a:b] = off[a:b][order], w[a:b][order]
    csr.sort_rows(row_ptr, off, w, C)
    np.testing.assert_array_equal(off, ref_off)
    np.testing.assert_array_equal(w, ref_w)
    assert csr.rows_sorted(row_ptr, off, C)
    # a row out of order is found wherever it is
    for j in (row_ptr[2] + 1, off.size - 1):  # the first and the last row of more than one
        bad = off.copy()
        bad[j - 1], bad[j] = C - 1, 0
        assert not csr.rows_sorted(row_ptr, bad, C)


def test_projections_are_stored_compactly():
    net = _network("float32")
    p = net.projections[0]
    assert (p.pre.dtype, p.post.dtype, p.weight.dtype, p.delay_steps.dtype) == (np.int32, np.int32, np.float32,
                                                                               np.int16)
    assert net.projections[-1].weight.dtype == np.float64  # DC factors stay float64
    net = es.Network(dt=0.1, weight_dtype="float32")
    a = net.population(2, es.LIF())
    with pytest.raises(ValueError, match="does not fit in weight_dtype=float32"):
        net.connect(a, a, es.OneToOne(), weight=[1.0, 1e39], delay=1.0)
    with pytest.raises(ValueError, match="does not fit"):
        net.connect(a, a, es.OneToOne(), weight=-1e39, delay=1.0)
    assert net.projections == []


@pytest.mark.parametrize("one_delay", [False, True])
def test_build_makes_no_per_synapse_temporaries(one_delay):
    net = es.Network(dt=0.1, seed=1)
    pop = net.population(2000, es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0))
    net.connect(pop, pop, es.FixedInDegree(500), weight=es.Normal(0.1, 0.02),
                delay=1.5 if one_delay else es.Uniform(0.5, 3.0))
    build_plan(net)  # compile outside the measurement
    gc.collect()
    n_syn = net.n_synapses
    tracemalloc.start()
    try:
        plan = build_plan(net)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    final = plan._syn_off.nbytes + plan._syn_w.nbytes
    assert final == (10 if one_delay else 12) * n_syn  # two-byte columns (one delay) or four-byte offsets
    # everything else: ring buffer, spike buffers, per-sender arrays, per-neuron parameter tables
    other = (plan.ring.nbytes + plan.spk_buf_step.nbytes + plan.spk_buf_id.nbytes + plan.conn.row_split.nbytes
             + 1024 * net.n_neurons)
    # the engine arrays plus at most 2 bytes per synapse (NumPy allocations; the former
    # argsort-based build peaked at about 6 times the final arrays)
    assert peak < final + other + 2 * n_syn, ((peak - other) / n_syn, final / n_syn)


@pytest.mark.parametrize("blocks", [1, 2])
def test_warm_rows_reads_one_value_per_cache_line_of_each_sub_row_head(blocks):
    """The read-ahead of a step touches, per pending sender, partition t's sub-row(s) from their start, one
    value per 64-byte line, at most ROW_WARM_BYTES, never past the sub-row's end."""
    from eventsim.engines import clock_cpu as cc

    rng = np.random.default_rng(5)
    T, n_send = 3, 40
    lengths = rng.integers(0, 700, n_send * blocks * T)
    bounds = np.concatenate([[0], np.cumsum(lengths)]).reshape(-1)
    rs = np.empty((n_send, blocks * T + 1), np.int64)
    for n in range(n_send):
        b = bounds[n * blocks * T: (n + 1) * blocks * T + 1]
        rs[n] = b
    for dtype in (np.int32, np.int64):
        syn_off = rng.integers(0, 1 << 20, bounds[-1]).astype(dtype)
        pend = rng.permutation(n_send)[:25].astype(np.int64)
        stride = 64 // syn_off.itemsize
        span = cc.ROW_WARM_BYTES // syn_off.itemsize
        for t in range(T):
            want = 0
            for n in pend[:20]:
                for k in range(blocks):
                    a, b = rs[n, k * T + t], rs[n, k * T + t + 1]
                    want += int(syn_off[a:min(b, a + span):stride].sum())
            assert cc._warm_rows(t, T, pend, 0, 20, rs, syn_off) == want


def _one_delay_network(n, exp=False, second_delay=None):
    net = es.Network(dt=0.1, seed=2)
    model = es.LIF(tau_syn_ex=2.0, tau_syn_in=4.0) if exp else es.LIF()
    pop = net.population(n, model)
    net.connect(pop, pop, es.FixedInDegree(2), weight=es.Normal(0.0, 1.0), delay=0.3)
    net.connect(pop[:3], pop[:3], es.OneToOne(), weight=1.0, delay=second_delay or 0.3)
    noise = net.poisson(n, rate=100.0)
    net.connect(noise, pop, es.OneToOne(), weight=1.0, delay=0.5)
    return net


@pytest.mark.parametrize("n, exp, second_delay, form", [
    (300, False, None, "columns"),
    (300, True, None, "columns"),
    (300, False, 0.4, "offsets"),          # senders 0-2 have two delays
    (1 << 16, False, None, "columns"),     # C = 65,536 columns: the largest that fit two bytes
    ((1 << 16) + 1, False, None, "offsets"),
    ((1 << 15) + 1, True, None, "offsets"),  # two receptor columns per neuron: C = 65,538
])
def test_column_form_only_when_every_sender_has_one_delay_and_the_columns_fit_two_bytes(n, exp, second_delay,
                                                                                        form, monkeypatch):
    from eventsim.engines import plan as plan_mod

    plans = {}
    for on in (True, False):
        monkeypatch.setattr(plan_mod, "COLUMN_FORM", on)
        plans[on] = build_plan(_one_delay_network(n, exp, second_delay))
    plan, ref = plans[True], plans[False]
    assert ref._syn_off.dtype == np.int32
    assert plan._syn_off.dtype == (np.uint16 if form == "columns" else np.int32)
    if form == "columns":
        dmin, dmax = plan._row_delays
        np.testing.assert_array_equal(dmin, ref._row_delays[0])
        senders = np.repeat(np.arange(plan._row_ptr.size - 1), np.diff(plan._row_ptr))
        assert np.array_equal(dmin[senders], dmax[senders])
        np.testing.assert_array_equal(plan._syn_off.astype(np.int64) + dmin[senders].astype(np.int64) * plan.C,
                                      ref._syn_off)
        # the single-synapse Poisson channels keep their full offsets
        np.testing.assert_array_equal(plan.sources.one_off, ref.sources.one_off)
    else:
        np.testing.assert_array_equal(plan._syn_off, ref._syn_off)
