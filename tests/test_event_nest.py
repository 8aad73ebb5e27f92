"""Differential tests of the event engine against NEST 3.10's precise-timing models.

The reference files ``tests/nest_ps_reference/*.npz`` were produced by
``tests/generate_nest_ps_reference.py`` with ``iaf_psc_delta_ps`` and
``iaf_psc_exp_ps`` networks driven by spike trains at off-grid times (see
that script's docstring for NEST's semantics, and the README next to the
files for the key schema).  The same networks are rebuilt with
``engine="event"``:

* feed-forward cases: exactly NEST's spikes (same count, same senders,
  times within 1e-6 ms);
* recurrent cases (1 s, a few hundred neurons): at least 99 % of NEST's
  spikes are matched one-to-one by sender within 1e-6 ms, and at most 1 %
  of eventsim's spikes are unmatched.

Independently of the engine, every reference is first checked against the
slow continuous-time model in ``tests/naive_ps.py`` (closed-form threshold
crossings for delta synapses, dense sampling plus bisection for exponential
currents), which must reproduce NEST's spikes to 1e-9 ms.
"""

import glob
import os

import numpy as np
import pytest

import eventsim as es
import naive_ps

HERE = os.path.join(os.path.dirname(__file__), "nest_ps_reference")
CASES = sorted(glob.glob(os.path.join(HERE, "*.npz")))
NAMES = [os.path.basename(c)[:-4] for c in CASES]
EXPECTED = {"delta_ps_ff", "delta_ps_coincident", "exp_ps_ff", "exp_ps_equal_tau",
            "delta_ps_recurrent", "exp_ps_recurrent"}

TOL_ENGINE = 1e-6  # ms, eventsim vs NEST
TOL_EXACT = 1e-9  # ms, NumPy reference vs NEST (NEST's own root search is far better)
PARAMS = ("tau_m", "c_m", "v_rest", "v_reset", "v_th", "t_ref", "i_e", "tau_syn_ex", "tau_syn_in",
          "v_init")


def load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def is_recurrent(d):
    return d["conn_pre"].size > 0


def is_exp(d):
    return str(d["model"]) == "iaf_psc_exp_ps"


def case_params(kind):
    """pytest params for the cases of one kind ('ff' or 'recurrent')."""
    out = []
    for path, name in zip(CASES, NAMES):
        d = load(path)
        if is_recurrent(d) != (kind == "recurrent"):
            continue
        marks = [pytest.mark.slow] if kind == "recurrent" and is_exp(d) else []
        out.append(pytest.param(path, id=name, marks=marks))
    return out


def build_from_reference(d):
    """The stored network in eventsim's event engine; returns (net, spike recorder)."""
    exp = is_exp(d)
    model = es.LIF(
        tau_m=d["tau_m"], c_m=d["c_m"], v_rest=d["v_rest"], v_reset=d["v_reset"], v_th=d["v_th"],
        t_ref=d["t_ref"], i_e=d["i_e"],
        tau_syn_ex=d["tau_syn_ex"] if exp else None, tau_syn_in=d["tau_syn_in"] if exp else None)
    net = es.Network(dt=float(d["dt"]), seed=0, engine="event")
    pop = net.population(int(d["n"]), model, v_init=d["v_init"])
    src = net.spike_source(senders=d["gen_sender"], times=d["gen_time"], n=int(d["n_gen"]))
    net.connect(src, pop, rule=es.FromArrays(pre=d["in_pre"], post=d["in_post"]),
                weight=d["in_weight"], delay=d["in_delay"])
    if is_recurrent(d):
        net.connect(pop, pop, rule=es.FromArrays(pre=d["conn_pre"], post=d["conn_post"]),
                    weight=d["conn_weight"], delay=d["conn_delay"])
    return net, net.record_spikes(pop)


def input_arrivals(d):
    """(post, arrival time, weight) of every input spike at its target."""
    times = {ch: d["gen_time"][d["gen_sender"] == ch] for ch in range(int(d["n_gen"]))}
    post = np.concatenate([np.full(times[c].size, p) for c, p in zip(d["in_pre"], d["in_post"])])
    arrival = np.concatenate([times[c] + dl for c, dl in zip(d["in_pre"], d["in_delay"])])
    weight = np.concatenate([np.full(times[c].size, w) for c, w in zip(d["in_pre"], d["in_weight"])])
    return post, arrival, weight


def exact_model_spikes(d, **kw):
    """Spikes of the continuous-time NumPy model (tests/naive_ps.py) for a stored network."""
    conn = None
    if is_recurrent(d):
        conn = (d["conn_pre"], d["conn_post"], d["conn_weight"], d["conn_delay"])
    return naive_ps.simulate({k: d[k] for k in PARAMS}, float(d["t_sim"]), input_arrivals(d), conn, **kw)


def by_sender(senders, times):
    order = np.lexsort((times, senders))
    return np.asarray(senders)[order], np.asarray(times)[order]


# ---------------------------------------------------------------------------
# The references themselves (no engine needed)
# ---------------------------------------------------------------------------


def test_reference_files_present():
    assert EXPECTED <= set(NAMES)


@pytest.mark.parametrize("path", CASES, ids=NAMES)
def test_reference_is_well_formed(path):
    d = load(path)
    n, dt, t_sim = int(d["n"]), float(d["dt"]), float(d["t_sim"])
    assert str(d["nest_version"]).startswith("3.")
    assert str(d["model"]) in ("iaf_psc_delta_ps", "iaf_psc_exp_ps")
    for k in PARAMS:
        assert d[k].shape == (n,) and d[k].dtype == np.float64, k
    assert np.all(np.isnan(d["tau_syn_ex"])) != is_exp(d)
    assert np.all(d["v_min"] == -np.inf)  # no lower bound, eventsim's v_min=None
    assert np.all(d["v_init"] < d["v_th"])
    # input times are off the grid; delays and t_ref are whole steps
    g = d["gen_time"]
    assert np.all((g > 0) & (g < t_sim))
    assert np.mean(np.abs(g / dt - np.rint(g / dt)) > 1e-6) > 0.99
    for key in ("in_delay", "conn_delay", "t_ref"):
        steps = d[key] / dt
        np.testing.assert_allclose(steps, np.rint(steps), rtol=0, atol=1e-9)
        assert np.all(np.rint(steps) >= 1)
    assert np.all((d["in_pre"] >= 0) & (d["in_pre"] < int(d["n_gen"])))
    for key in ("in_post", "conn_pre", "conn_post"):
        assert np.all((d[key] >= 0) & (d[key] < n)), key
    s, t = d["spike_senders"], d["spike_times"]
    assert s.size == t.size and t.dtype == np.float64
    assert np.all((s >= 0) & (s < n)) and np.all((t > 0) & (t <= t_sim))
    assert np.all(np.diff(t) >= 0)
    assert s.size >= (1000 if is_recurrent(d) else 20)


@pytest.mark.parametrize("path", case_params("ff") + case_params("recurrent"))
def test_reference_matches_exact_numpy_model(path):
    """NEST's spikes are those of the exact continuous-time model, to 1e-9 ms."""
    d = load(path)
    senders, times = exact_model_spikes(d)
    ref_s, ref_t = by_sender(d["spike_senders"], d["spike_times"])
    got_s, got_t = by_sender(senders, times)
    assert got_s.size == ref_s.size
    np.testing.assert_array_equal(got_s, ref_s)
    np.testing.assert_allclose(got_t, ref_t, rtol=0, atol=TOL_EXACT)


def test_refractory_inputs_are_discarded_in_delta_reference():
    """delta_ps_ff has inputs that arrive while the target is refractory (NEST drops them)."""
    d = load(os.path.join(HERE, "delta_ps_ff.npz"))
    s, t = d["spike_senders"], d["spike_times"]
    post, arrival, _ = input_arrivals(d)
    hits = 0
    for i, a in zip(post, arrival):
        before = t[(s == i) & (t < a)]
        hits += bool(before.size and a < before[-1] + d["t_ref"][i])
    assert hits >= 10


def test_coincident_inputs_are_summed_in_delta_reference():
    """delta_ps_coincident: NEST sums inputs that arrive at the same time before the
    threshold test; applying them one by one gives other spikes."""
    d = load(os.path.join(HERE, "delta_ps_coincident.npz"))
    n_ref = d["spike_senders"].size
    one_by_one = exact_model_spikes(d, sum_coincident=False)
    matched, _ = naive_ps.match_spikes(d["spike_senders"], d["spike_times"], *one_by_one, TOL_EXACT)
    assert (matched, one_by_one[0].size) != (n_ref, n_ref)


# ---------------------------------------------------------------------------
# eventsim's event engine against NEST
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", case_params("ff"))
def test_feed_forward_same_spikes_as_nest(path):
    d = load(path)
    net, rec = build_from_reference(d)
    net.run(float(d["t_sim"]))
    assert rec.times.dtype == np.float64
    got_s, got_t = by_sender(rec.senders, rec.times)
    ref_s, ref_t = by_sender(d["spike_senders"], d["spike_times"])
    assert got_s.size == ref_s.size
    np.testing.assert_array_equal(got_s, ref_s)
    np.testing.assert_allclose(got_t, ref_t, rtol=0, atol=TOL_ENGINE)


@pytest.mark.parametrize("path", case_params("recurrent"))
def test_recurrent_keeps_nest_spikes(path):
    d = load(path)
    net, rec = build_from_reference(d)
    net.run(float(d["t_sim"]))
    n_ref, n_got = d["spike_senders"].size, len(rec.senders)
    matched, worst = naive_ps.match_spikes(d["spike_senders"], d["spike_times"], rec.senders, rec.times,
                                           TOL_ENGINE)
    assert matched >= 0.99 * n_ref, f"matched {matched} of NEST's {n_ref} spikes"
    assert n_got - matched <= 0.01 * n_ref, f"{n_got - matched} spikes that NEST does not have"
    assert worst <= TOL_ENGINE
