"""Alpha-shaped current synapses (``psc="alpha"``, NEST's ``iaf_psc_alpha`` / ``iaf_psc_alpha_ps``) in the event
engine (eventsim/models/psc_alpha.py, its event functions).

* on-grid inputs: the event engine's state equals the clock engine's at every grid point (1e-9), LIF / IF /
  ALIF, tau_m == tau_syn included;
* closed forms: the PSP for tau_m == tau_syn, and the first threshold crossing of a neuron driven by off-grid
  inputs against ``brentq`` on the closed-form trajectory (1e-9 ms), including a crossing that lasts less
  than one step and lies between grid points (the clock engine misses it, the event engine cannot);
* ``run(T1); run(T2)`` == ``run(T1 + T2)``, checkpoints, 1 and 2 threads: bit for bit;
* NEST 3.10's ``iaf_psc_alpha_ps`` on stored networks (tests/nest_alpha_reference, made by
  tests/generate_nest_alpha_reference.py): the same spikes.
"""

import glob
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import brentq

import eventsim as es

E = math.e


def _psp(t, t_a, w, tau_m, tau_s, c_m):
    """Closed-form membrane response (mV) at ``t`` to an alpha current of peak ``w`` pA arriving at ``t_a``
    (``tau_m = inf``: no leak), written from the ODE directly (not from the engine's propagator)."""
    u = np.maximum(np.asarray(t, np.float64) - t_a, 0.0)
    k = w * E / (tau_s * c_m)  # the drive's jump over C_m
    if math.isinf(tau_m):
        # v' = I / C_m: integral of k r e^{-r/tau_s}
        return k * tau_s * tau_s * (1.0 - np.exp(-u / tau_s) * (1.0 + u / tau_s))
    a = 1.0 / tau_s - 1.0 / tau_m
    if a == 0.0:
        return k * np.exp(-u / tau_m) * u * u / 2.0
    # e^{-u/tau_m} int_0^u r e^{-a r} dr
    return k * np.exp(-u / tau_m) * (1.0 - np.exp(-a * u) * (1.0 + a * u)) / (a * a)


def _free(t, v0, v_rest, i_e, tau_m, c_m):
    """Membrane potential without synaptic input from ``v0`` at 0 (mV)."""
    if math.isinf(tau_m):
        return v0 + i_e * t / c_m
    v_inf = v_rest + i_e * tau_m / c_m
    return v_inf + (v0 - v_inf) * np.exp(-t / tau_m)


# ---------------------------------------------------------------- on the grid: the clock engine's state
VARS = ("v", "i_ex", "i_in", "di_ex", "di_in")


def _grid_network(engine):
    net = es.Network(dt=0.1, seed=2, engine=engine)
    common = dict(c_m=250.0, v_rest=-65.0, v_th=1000.0, v_reset=-70.0, t_ref=2.0, psc="alpha")  # never reached
    lif = net.population(4, es.LIF(tau_m=10.0, tau_syn_ex=[0.5, 2.0, 10.0, 10.0], tau_syn_in=[3.0, 10.0, 1.0, 5.0],
                                   i_e=[0.0, 50.0, -20.0, 100.0], **common), v_init=[-65.0, -60.0, -70.0, -64.0])
    iff = net.population(2, es.IF(tau_syn_ex=2.0, tau_syn_in=4.0, i_e=[0.0, 5.0], **common), v_init=-65.0)
    alif = net.population(2, es.ALIF(tau_m=20.0, tau_syn_ex=20.0, tau_syn_in=2.0, tau_theta=(50.0,), d_theta=(1.0,),
                                     **common), v_init=-65.0)
    pops = lif | iff | alif
    rng = np.random.default_rng(7)
    steps = np.sort(rng.choice(np.arange(5, 400), 60, replace=False))
    src = net.spike_source(senders=np.arange(60) % 3, times=steps * 0.1)
    w = rng.uniform(-200.0, 300.0, (3, 8))
    pre, post = np.meshgrid(np.arange(3), np.arange(8), indexing="ij")
    delay = rng.choice([0.1, 0.5, 1.3], 24)
    net.connect(src, pops, rule=es.FromArrays(pre=pre.ravel(), post=post.ravel()), weight=w.ravel(), delay=delay)
    recs = {name: net.record_state(pops, name) for name in VARS}
    arrivals = (steps * 0.1)[:, None] + delay[None, :]
    return net, pops, recs, arrivals.ravel()


def test_on_grid_inputs_give_the_clock_engines_state_at_every_grid_point():
    """The drives ``di_ex``, ``di_in`` jump at an input: at the time of an arrival the event engine samples
    before the inputs arriving then, the clock engine after its step (which adds them), so those samples
    are left out for the drives."""
    results = {}
    for engine in ("clock", "event"):
        net, pops, recs, arrivals = _grid_network(engine)
        net.run(23.3)
        net.run(26.7)
        results[engine] = ({k: (r.times, r.values) for k, r in recs.items()},
                           {k: pops.get(k) for k in VARS})
    (clock, clock_now), (event, event_now) = results["clock"], results["event"]
    for name in VARS:
        np.testing.assert_array_equal(event[name][0], clock[name][0])
        assert event[name][1].shape == (500, 8)
        scale = max(1.0, np.abs(clock[name][1]).max())
        rows = slice(None)
        if name.startswith("di"):
            rows = np.abs(clock[name][0][:, None] - arrivals[None, :]).min(axis=1) > 1e-6
            assert 300 < rows.sum() < 500
        np.testing.assert_allclose(event[name][1][rows], clock[name][1][rows], rtol=0, atol=1e-9 * scale,
                                   err_msg=name)
        np.testing.assert_allclose(event_now[name], clock_now[name], rtol=0, atol=1e-9 * scale, err_msg=name)
    assert np.ptp(clock["v"][1]) > 5.0 and np.abs(clock["di_in"][1]).max() > 10.0  # the inputs did something


def test_equal_time_constants_follow_the_closed_form_psp():
    """tau_m == tau_syn (the propagator's singular limit): the PSP of one off-grid input, and i_ex, di_ex."""
    net = es.Network(dt=0.1, engine="event")
    pop = net.population(1, es.LIF(tau_m=10.0, c_m=250.0, v_rest=-65.0, v_th=0.0, v_reset=-70.0, tau_syn_ex=10.0, tau_syn_in=2.0,
                                   psc="alpha"), v_init=-65.0)
    src = net.spike_source(senders=[0], times=[1.2345])
    net.connect(src, pop, rule=es.AllToAll(), weight=300.0, delay=1.0)
    recs = {name: net.record_state(pop, name) for name in ("v", "i_ex", "di_ex")}
    net.run(60.0)
    t = recs["v"].times
    u = np.maximum(t - 2.2345, 0.0)
    np.testing.assert_allclose(recs["v"].values[:, 0], -65.0 + _psp(t, 2.2345, 300.0, 10.0, 10.0, 250.0),
                               rtol=0, atol=1e-11)
    np.testing.assert_allclose(recs["i_ex"].values[:, 0], 300.0 * u / 10.0 * np.exp(1.0 - u / 10.0), rtol=0,
                               atol=1e-10)
    np.testing.assert_allclose(recs["di_ex"].values[:, 0], np.where(t >= 2.2345, 300.0 * E / 10.0, 0.0)
                               * np.exp(-u / 10.0), rtol=0, atol=1e-10)
    assert recs["v"].values.max() > -65.0 + 3.0


# ---------------------------------------------------------------- exact threshold crossings
def _first_crossing(f, t0, t1, step=1e-3):
    """First root of the increasing crossing of ``f`` on ``[t0, t1]`` (dense scan, then brentq to 1e-15)."""
    t = np.arange(t0, t1, step)
    above = np.flatnonzero(f(t) >= 0.0)
    assert above.size and above[0] > 0
    k = above[0]
    return brentq(f, t[k - 1], t[k], xtol=1e-15, rtol=1e-15)


CROSS = dict(tau_m=10.0, c_m=250.0, v_rest=-65.0, v_th=-50.0, v_reset=-70.0, t_ref=2.0, tau_syn_ex=2.0,
             tau_syn_in=5.0, i_e=200.0)
ARRIVALS = [(3.1234567, 700.0), (4.0041, -250.0), (5.31, 900.0)]


def _single(engine, arrivals, model=CROSS, cls=es.LIF, t=30.0, v_init=-62.0):
    net = es.Network(dt=0.01 if engine == "event" else 0.1, engine=engine)  # (event: dense samples)
    pop = net.population(1, cls(**model, psc="alpha"), v_init=v_init)
    k = len(arrivals)
    src = net.spike_source(senders=np.arange(k), times=[a - 0.5 for a, _ in arrivals])
    net.connect(src, pop, rule=es.FromArrays(pre=np.arange(k), post=np.zeros(k, np.int64)),
                weight=[w for _, w in arrivals], delay=0.5)
    sp = net.record_spikes(pop)
    vm = net.record_state(pop, "v")
    net.run(t)
    return sp, vm


def _trajectory(arrivals, p=CROSS, v0=-62.0):
    tau_m = p.get("tau_m", math.inf)

    def v(t):
        out = _free(t, v0, p["v_rest"], p["i_e"], tau_m, p["c_m"])
        for t_a, w in arrivals:
            tau_s = p["tau_syn_ex"] if w >= 0 else p["tau_syn_in"]
            out = out + _psp(t, t_a, w, tau_m, tau_s, p["c_m"])
        return out
    return v


@pytest.mark.parametrize("cls", [es.LIF, es.IF])
def test_the_first_crossing_is_found_exactly(cls):
    p = dict(CROSS) if cls is es.LIF else {k: v for k, v in CROSS.items() if k != "tau_m"}
    if cls is es.IF:
        p["i_e"] = 20.0
    v = _trajectory(ARRIVALS, p)
    t_ref = _first_crossing(lambda t: v(t) - p["v_th"], 0.0, 30.0)
    assert 3.1234567 < t_ref < 30.0 and not np.isclose(t_ref / 0.1, round(t_ref / 0.1))
    sp, vm = _single("event", ARRIVALS, p, cls)
    assert sp.times.size >= 1
    assert abs(sp.times[0] - t_ref) < 1e-9, (sp.times[0], t_ref)
    # held at v_reset for t_ref after the spike (the currents keep flowing), free after it
    t = vm.times
    held = (t > sp.times[0] + 1e-9) & (t < sp.times[0] + 2.0 - 1e-9)
    assert held.sum() > 150 and np.all(vm.values[held, 0] == -70.0)
    assert vm.values[(t > sp.times[0] + 2.0 + 0.05)][0, 0] != -70.0


def test_a_crossing_shorter_than_a_step_between_grid_points_is_not_missed():
    """A peak just above threshold between two grid points: the clock engine (threshold tested on the grid)
    misses it; the event engine finds the crossing, at the time of the closed form."""
    p = dict(CROSS, i_e=0.0)
    t_a = 1.0  # on the grid: the clock engine receives the same input
    base = _trajectory([(t_a, 1.0)], p, v0=-65.0)
    grid = np.arange(0.0, 20.0, 1e-4)
    t_peak = grid[np.argmax(base(grid))]
    w = (p["v_th"] - p["v_rest"]) / (base(t_peak) - p["v_rest"]) * (1.0 + 1e-7)
    v = _trajectory([(t_a, w)], p, v0=-65.0)
    crossing = _first_crossing(lambda t: v(t) - p["v_th"], t_a, t_peak + 1.0, step=1e-4)
    leave = brentq(lambda t: v(t) - p["v_th"], t_peak, t_peak + 1.0, xtol=1e-15)
    assert 0.0 < leave - crossing < 0.1 and math.floor(crossing / 0.1) == math.floor(leave / 0.1)
    ev, _ = _single("event", [(t_a, w)], p, v_init=-65.0)
    assert ev.times.size == 1 and abs(ev.times[0] - crossing) < 1e-9, (ev.times, crossing)
    clock, _ = _single("clock", [(t_a, w)], p, v_init=-65.0)
    assert clock.times.size == 0


# ---------------------------------------------------------------- networks: runs, checkpoints, threads
def _network(seed=4):
    net = es.Network(dt=0.1, seed=seed, engine="event")
    common = dict(c_m=250.0, v_rest=-65.0, v_th=-50.0, v_reset=-70.0, psc="alpha")
    exc = net.population(160, es.LIF(tau_m=10.0, t_ref=2.0, tau_syn_ex=0.5, tau_syn_in=[2.0, 10.0] * 80, i_e=150.0,
                                     **common), v_init=es.Uniform(-70.0, -52.0))
    adapt = net.population(40, es.ALIF(tau_m=10.0, t_ref=1.0, tau_syn_ex=10.0, tau_syn_in=3.0, i_e=150.0,
                                       tau_theta=(30.0,), d_theta=(2.0,), **common), v_init=-60.0)
    net.connect(exc, exc | adapt, es.FixedInDegree(20), weight=es.Normal(40.0, 10.0), delay=es.Uniform(0.5, 2.0))
    net.connect(adapt, exc | adapt, es.FixedProbability(0.2), weight=-120.0, delay=0.7)
    noise = net.poisson(200, rate=800.0)
    net.connect(noise, exc | adapt, es.OneToOne(), weight=120.0, delay=0.1)
    spikes = net.record_spikes(exc | adapt)
    vm = net.record_state(exc[::20] | adapt[::10], "v", interval=0.3)
    di = net.record_state(exc[::40], "di_in")
    return net, spikes, vm, di


def _same(a, b):
    for x, y in zip(a[1:], b[1:]):
        for name in ("times", "senders", "values"):
            if hasattr(x, name):
                np.testing.assert_array_equal(getattr(x, name), getattr(y, name))


def test_split_runs_equal_one_run():
    ref = _network()
    ref[0].run(150.0)
    net = _network()
    net[0].run(37.3)
    net[0].run(0.05)
    net[0].run(112.65)
    assert len(ref[1]) > 300
    _same(ref, net)
    assert net[0].synaptic_events == ref[0].synaptic_events


def test_a_checkpoint_continues_bit_for_bit(tmp_path):
    ref = _network()
    ref[0].run(120.0)
    net = _network()
    net[0].run(45.0)
    net[0].save(tmp_path / "alpha.ckpt")
    again = es.Network.load(tmp_path / "alpha.ckpt")
    again.run(75.0)
    assert len(ref[1]) > 200
    _same(ref, (again,) + tuple(again.recorders))
    np.testing.assert_array_equal(again.populations[0].get("di_ex"), ref[0].populations[0].get("di_ex"))


def test_state_can_be_read_and_set_between_runs():
    net, spikes, vm, di = _network()
    net.run(20.0)
    pop = net.populations[0]
    di_ex = pop.get("di_ex")
    assert di_ex.shape == (160,) and np.all(di_ex >= 0.0) and di_ex.max() > 0.0
    pop[:3].set(di_ex=0.0, i_ex=0.0)
    np.testing.assert_array_equal(pop[:3].get("di_ex"), 0.0)
    net.run(5.0)


SCRIPT = r"""
import hashlib, sys, numpy as np, numba
sys.path.insert(0, sys.argv[1])
import test_event_alpha as t
net, spikes, vm, di = t._network()
net.run(100.0)
h = hashlib.sha256()
for x in (spikes.times, spikes.senders, vm.values, di.values, net.populations[0].get("v")):
    h.update(np.ascontiguousarray(x).tobytes())
print(numba.get_num_threads(), len(spikes), h.hexdigest())
"""


def test_one_and_two_threads_give_the_same_bits():
    out = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        res = subprocess.run([sys.executable, "-c", SCRIPT, os.path.dirname(__file__)], env=env,
                             capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, res.stderr[-2000:]
        out.append(res.stdout.split()[-3:])
    assert [o[0] for o in out] == ["1", "2"] and int(out[0][1]) > 100
    assert out[0][1:] == out[1][1:]


# ---------------------------------------------------------------- NEST iaf_psc_alpha_ps
HERE = os.path.join(os.path.dirname(__file__), "nest_alpha_reference")
NEST_CASES = sorted(glob.glob(os.path.join(HERE, "*.npz")))
#: ms: eventsim's spike times against NEST's (both locate each crossing to far better than this).
TOL_NEST = 1e-9


def _build_from_reference(d):
    model = es.LIF(tau_m=d["tau_m"], c_m=d["c_m"], v_rest=d["v_rest"], v_reset=d["v_reset"], v_th=d["v_th"],
                   t_ref=d["t_ref"], i_e=d["i_e"], tau_syn_ex=d["tau_syn_ex"], tau_syn_in=d["tau_syn_in"],
                   psc="alpha")
    net = es.Network(dt=float(d["dt"]), seed=0, engine="event")
    pop = net.population(int(d["n"]), model, v_init=d["v_init"])
    src = net.spike_source(senders=d["gen_sender"], times=d["gen_time"], n=int(d["n_gen"]))
    net.connect(src, pop, rule=es.FromArrays(pre=d["in_pre"], post=d["in_post"]), weight=d["in_weight"],
                delay=d["in_delay"])
    if d["conn_pre"].size:
        net.connect(pop, pop, rule=es.FromArrays(pre=d["conn_pre"], post=d["conn_post"]), weight=d["conn_weight"],
                    delay=d["conn_delay"])
    return net, net.record_spikes(pop)


def test_nest_reference_files_are_present():
    names = {os.path.basename(c)[:-4] for c in NEST_CASES}
    assert {"alpha_ps_ff", "alpha_ps_equal_tau", "alpha_ps_recurrent"} <= names


@pytest.mark.parametrize("path", NEST_CASES, ids=[os.path.basename(c)[:-4] for c in NEST_CASES])
def test_nest_iaf_psc_alpha_ps_spikes(path):
    with np.load(path) as f:
        d = {k: f[k] for k in f.files}
    assert str(d["model"]) == "iaf_psc_alpha_ps" and str(d["nest_version"]).startswith("3.")
    net, sp = _build_from_reference(d)
    net.run(float(d["t_sim"]))
    ref_s, ref_t = d["spike_senders"], d["spike_times"]
    assert ref_s.size > 50
    order = np.lexsort((sp.times, sp.senders))
    ref = np.lexsort((ref_t, ref_s))
    np.testing.assert_array_equal(sp.senders[order], ref_s[ref])
    np.testing.assert_allclose(sp.times[order], ref_t[ref], rtol=0, atol=TOL_NEST)


def test_an_alpha_population_added_between_runs_widens_the_state_rows():
    """A network of exponential synapses (three state slots) that gets an alpha population (five) after its
    first run: the state rows widen, every state carries over, the old population's spikes stay those of a run
    without the change, and the new population runs as one that existed from the start, unconnected."""
    def build():
        net = es.Network(dt=0.1, seed=9, engine="event")
        exp = net.population(50, es.LIF(tau_m=10.0, c_m=250.0, v_rest=-65.0, v_th=-50.0, v_reset=-70.0,
                                        tau_syn_ex=2.0, tau_syn_in=5.0, i_e=400.0), v_init=es.Uniform(-70.0, -55.0))
        net.connect(exp, exp, es.FixedInDegree(5), weight=-30.0, delay=1.0)
        return net, net.record_spikes(exp)

    ref, ref_exp = build()
    ref.run(60.0)
    net, sp_exp = build()
    net.run(25.0)
    assert net._plan.SS.shape[1] == 8
    alpha = net.population(10, es.LIF(tau_m=10.0, c_m=250.0, v_rest=-65.0, v_th=-50.0, v_reset=-70.0,
                                      tau_syn_ex=2.0, tau_syn_in=5.0, i_e=390.0, psc="alpha"), v_init=-65.0)
    sp_alpha = net.record_spikes(alpha)
    net.run(35.0)
    assert net._plan.SS.shape[1] == 10
    assert len(ref_exp) > 40 and len(sp_alpha) == 10  # (each new neuron crosses once, at the time below)
    np.testing.assert_array_equal(sp_exp.times, ref_exp.times)
    np.testing.assert_array_equal(sp_exp.senders, ref_exp.senders)
    # the new neurons start at 25 ms from v_init: the free trajectory's closed-form crossing
    v_inf = -65.0 + 390.0 * 10.0 / 250.0
    first = 25.0 + 10.0 * math.log((-65.0 - v_inf) / (-50.0 - v_inf))
    np.testing.assert_array_equal(np.sort(sp_alpha.senders), np.arange(10))
    np.testing.assert_allclose(sp_alpha.times, first, rtol=0, atol=1e-9)
