"""The compiled clock engine against the slow NumPy reference in tests/naive.py."""

import math

import numpy as np
import pytest

import eventsim as es
from naive import simulate

DT = 0.1


def _random_case(seed, kind, one_delay_senders=0):
    """A random network of 12 single neurons; senders below ``one_delay_senders`` get one delay for all their
    synapses (a row that the engine adds without a wrap-around test per synapse)."""
    rng = np.random.default_rng(seed)
    row_delay = np.random.default_rng(seed + 1).integers(1, 20, n_senders := 12)
    n = 12
    assert n == n_senders
    neurons = []
    for i in range(n):
        nd = dict(tau_m=float(rng.uniform(5, 30)), c_m=float(rng.uniform(100, 300)), v_rest=-65.0,
                  v_reset=-70.0, v_th=-55.0, ref_steps=int(rng.integers(0, 25)), i_e=float(rng.uniform(200, 500)),
                  tau_ex=None, tau_in=None, v_min=-math.inf, reset="value", m=0.0, b=0.0,
                  tau_theta=[], d_theta=[], v0=float(rng.uniform(-70, -56)))
        alpha = kind.startswith("alpha")
        if kind in ("exp", "alif", "if") or alpha:
            nd["tau_ex"] = float(rng.uniform(0.5, 5))
            nd["tau_in"] = float(rng.uniform(1, 10))
        if alpha:
            nd["psc"] = "alpha"
        if kind in ("exp", "alpha") and i % 3 == 0:
            nd["tau_ex"] = nd["tau_m"]  # the singular limit
        if kind == "alpha" and i % 4 == 1:
            nd["tau_in"] = nd["tau_m"]
        if kind == "alpha":
            nd["v_min"] = -68.0 if i % 2 else -math.inf
            nd["reset"] = "subtract" if i % 5 == 0 else "value"
        if kind in ("if", "alpha_if"):
            nd["tau_m"] = math.inf
            nd["i_e"] = float(rng.uniform(150, 400))
        if kind == "alpha_alif":
            nd["v_min"] = -68.0 if i % 2 else -math.inf
        if kind in ("alif", "alpha_alif"):
            nd["tau_theta"] = [20.0, 200.0]
            nd["d_theta"] = [2.0, 0.5]
            nd["reset"] = ["value", "subtract", "affine"][i % 3]
            nd["m"], nd["b"] = 0.3, 4.0
        if kind == "delta":
            nd["v_min"] = -72.0
            nd["reset"] = "subtract" if i % 4 == 0 else "value"
        neurons.append(nd)
    mv = kind == "delta"
    synapses = []
    for pre in range(n):
        for post in range(n):
            if pre != post and rng.random() < 0.3:
                w = float(rng.uniform(0.5, 3.0) if mv else rng.uniform(50, 300))
                if pre >= 9:
                    w = -2 * w
                d = int(rng.integers(1, 20))
                synapses.append((pre, post, w, int(row_delay[pre]) if pre < one_delay_senders else d))
    inputs = []
    for _ in range(150):
        w = float(rng.uniform(-3, 5) if mv else rng.uniform(-300, 500))
        inputs.append((int(rng.integers(0, 900)), int(rng.integers(0, n)), w, int(rng.integers(1, 8))))
    return neurons, synapses, inputs


def _build(neurons, synapses, inputs):
    net = es.Network(dt=DT, seed=0)
    pops = []
    for nd in neurons:
        kw = dict(c_m=nd["c_m"], v_rest=nd["v_rest"], v_reset=nd["v_reset"], v_th=nd["v_th"],
                  t_ref=nd["ref_steps"] * DT, i_e=nd["i_e"], tau_syn_ex=nd["tau_ex"], tau_syn_in=nd["tau_in"],
                  v_min=None if math.isinf(nd["v_min"]) else nd["v_min"], reset=nd["reset"],
                  psc=nd.get("psc", "exp"))
        if math.isinf(nd["tau_m"]):
            model = es.IF(**kw)
        elif nd["tau_theta"]:
            model = es.ALIF(tau_m=nd["tau_m"], tau_theta=tuple(nd["tau_theta"]), d_theta=tuple(nd["d_theta"]),
                            reset_mult=nd["m"], reset_offset=nd["b"], **kw)
        else:
            model = es.LIF(tau_m=nd["tau_m"], **kw)
        pops.append(net.population(1, model, v_init=nd["v0"]))
    allp = pops[0]
    for p in pops[1:]:
        allp = allp | p
    if synapses:
        pre, post, w, d = map(np.array, zip(*synapses))
        net.connect(allp, allp, es.FromArrays(pre, post), weight=w, delay=d * DT)
    stamps, post, w, d = map(np.array, zip(*inputs))
    src = net.spike_source(np.arange(len(inputs)), stamps * DT)
    net.connect(src, allp, es.FromArrays(np.arange(len(inputs)), post), weight=w, delay=d * DT)
    return net, allp


def _check_against_reference(neurons, synapses, inputs, n_steps=1000):
    """Run the case in the engine and in the reference; the same spikes and voltages.  Returns the network."""
    ref_spikes, ref_v = simulate(neurons, synapses, inputs, n_steps, DT)
    net, allp = _build(neurons, synapses, inputs)
    sp = net.record_spikes(allp)
    vr = net.record_state(allp, "v")
    net.run(n_steps * DT)
    got = sorted(zip(sp.steps.tolist(), sp.senders.tolist()))
    assert len(ref_spikes) > 30, "the case must spike"
    assert got == sorted(ref_spikes)
    np.testing.assert_allclose(vr.values, ref_v, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(vr.steps, np.arange(1, n_steps + 1))
    return net


@pytest.mark.parametrize("kind", ["delta", "exp", "if", "alif", "alpha", "alpha_if", "alpha_alif"])
def test_engine_matches_naive_reference(kind):
    """alpha: psc="alpha" with tau_syn_ex == tau_m (every third neuron) and tau_syn_in == tau_m (every fourth),
    v_min and both LIF resets; alpha_alif: every ALIF reset rule ("value", "subtract", "affine") with and
    without v_min."""
    _check_against_reference(*_random_case(7, kind))


@pytest.mark.parametrize("seed", [3, 11])
def test_rows_of_one_delay_match_naive_reference(seed):
    """Senders whose synapses share one delay (all before the ring's end or all past it at a given step,
    added without a per-synapse test) next to senders with mixed delays: the same spikes and voltages as
    the reference."""
    neurons, synapses, inputs = _random_case(seed, "exp", one_delay_senders=8)
    net = _check_against_reference(neurons, synapses, inputs)
    conn, L = net._plan.conn, net._plan.L
    delays = [{d for (pre, _, _, d) in synapses if pre == n} for n in range(12)]
    assert conn.row_dmin[:12].tolist() == [min(d, default=L) for d in delays]
    assert conn.row_dmax[:12].tolist() == [max(d, default=0) for d in delays]
    assert sum(len(d) == 1 for d in delays) >= 6 and sum(len(d) > 1 for d in delays) >= 2


@pytest.mark.parametrize("kind", ["delta", "exp"])
def test_column_form_matches_naive_reference(kind):
    """Every sender with one delay (its synapses stored as two-byte ring columns, the delay kept per sender):
    the same spikes and voltages as the reference."""
    neurons, synapses, inputs = _random_case(5, kind, one_delay_senders=12)
    net = _check_against_reference(neurons, synapses, inputs)
    plan = net._plan
    assert plan._syn_off.dtype == np.uint16
    assert plan.conn.row_dmin.tolist()[:12] == [min({d for (p, _, _, d) in synapses if p == n}, default=plan.L)
                                                for n in range(12)]
