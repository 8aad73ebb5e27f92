"""The clock engine's team tuner: how many threads run each chunk of steps (speed only, never results)."""

import os
import subprocess
import sys

import pytest

from eventsim import config
from eventsim.engines import plan as plan_mod
from eventsim.engines.plan import TeamTuner, idle_cores


def feed(tuner, cost, steps=100):
    """One chunk of ``steps`` steps at ``cost[size]`` seconds per step on the tuner's current size."""
    m = tuner.current
    left = tuner.probe_left()
    n = min(steps, left) if left is not None else steps
    tuner.observe(m, n, n * cost[m])
    return m


def test_tuner_starts_where_told_measures_and_stays_on_the_fastest():
    t = TeamTuner(4, start=2, probe_steps=100, reprobe_steps=1000)
    assert t.sizes == [4, 2, 1] and t.current == 2 and t.probing
    cost = {4: 3e-6, 2: 2e-6, 1: 5e-6}
    sizes = [feed(t, cost) for _ in range(40)]
    assert sizes[:10] == [2] * 10  # measured, then 1,000 steps on it
    # after 1,000 steps on 2 a neighbour is measured (4, then 1 the next time), each time back to 2
    assert set(sizes) == {4, 2, 1}
    assert sizes.count(2) > 30 and sizes.count(4) >= 1 and sizes.count(1) >= 1
    assert t.best == 2 and t.cost == pytest.approx(cost)


def test_tuner_moves_to_a_faster_neighbour_step_by_step():
    t = TeamTuner(8, start=8, probe_steps=100, reprobe_steps=300)
    assert t.sizes == [8, 4, 2, 1]
    cost = {8: 9e-6, 4: 6e-6, 2: 3e-6, 1: 4e-6}   # a busy machine: 2 threads are fastest
    sizes = [feed(t, cost) for _ in range(60)]
    assert sizes[0] == 8 and t.best == 2
    assert sizes[-10:].count(2) >= 6  # mostly on 2, now and then a neighbour
    # the load changes: 4 threads become fastest, and the tuner follows
    cost.update({4: 1e-6})
    for _ in range(20):
        feed(t, cost)
    assert t.best == 4


def test_tuner_ignores_short_chunks_and_checks_its_start():
    t = TeamTuner(2, start=2, probe_steps=200)
    t.observe(2, 10, 1.0)  # a 10-step call: its fixed costs would dominate
    assert t.cost == {} and t.probe_left() == 200
    t.observe(2, 200, 2e-3)
    assert t.cost == {2: 1e-5} and not t.probing
    with pytest.raises(ValueError, match="start must be one of"):
        TeamTuner(4, start=3)


SCRIPT = r"""
import numpy as np, numba, eventsim as es
from eventsim import config

def build():
    net = es.Network(dt=0.1, seed=21)
    m1 = es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
    m2 = es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0)
    a = net.population(200, m1, v_init=es.Uniform(0.0, 20.0))
    b = net.population(100, m2, v_init=es.Uniform(0.0, 15.0))
    net.connect(a, a | b, es.FixedInDegree(30), weight=es.Normal(0.4, 0.1), delay=es.Uniform(0.4, 2.0))
    net.connect(b, a, es.FixedProbability(0.1), weight=-1.5, delay=0.7)
    net.connect(a, b, es.FixedProbability(0.1), weight=30.0, delay=1.2,
                synapse=es.STDP(lam=0.05, w_max=60.0))
    noise = net.poisson(300, rate=15000.0)
    net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(200, 0.1), np.full(100, 20.0)], delay=0.5)
    sp = net.record_spikes(a | b)
    vm = net.record_state(b[::10], "v")
    return net, sp, vm

def result(net, sp, vm, proj):
    return (sp.steps.copy(), sp.senders.copy(), vm.values.copy(), net._plan.state.v.copy(), proj.weight.copy())

numba.set_num_threads(1)
config.TEAM_TUNING = False
ref = build()
ref[0].run(300.0)
expect = result(*ref, ref[0].projections[2])

from eventsim.engines import plan as plan_mod
numba.set_num_threads(2)
config.TEAM_TUNING = True
config.TEAM_WORK_PER_THREAD = 0     # start on 2 threads, whatever the machine's load
plan_mod.idle_cores = lambda: 2
config.TEAM_PROBE_STEPS = 100
config.TEAM_REPROBE_STEPS = 150     # then measure the other size every few hundred steps
seen = []
partition = plan_mod.ClockPlan._partition
plan_mod.ClockPlan._partition = lambda self, T: seen.append(T) or partition(self, T)
got = build()
for _ in range(6):
    got[0].run(50.0)
out = result(*got, got[0].projections[2])
assert sorted(got[0]._plan.tuner.cost) == [1, 2]
assert len(expect[0]) > 500
for x, y in zip(expect, out):
    assert np.array_equal(x, y)
print("ok", seen)
"""


def test_changing_team_size_mid_run_gives_the_same_results():
    """A tuner switching between 2 threads and 1 every few hundred steps (STDP synapses, Poisson input,
    mixed delays, state samples): the same spikes, samples, state and weights as one thread, bit for bit."""
    env = dict(os.environ, NUMBA_NUM_THREADS="2", EVENTSIM_TEAM_TUNING="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("ok"), out.stdout
    seen = eval(out.stdout.split(" ", 1)[1])  # the team sizes the plan was partitioned for, in turn
    assert seen[:2] == [2, 1], seen   # (then on the faster of the two)


def test_prior_runs_small_networks_on_one_thread(monkeypatch):
    """The plan's first guess: a network with little work between two meetings of the threads starts on
    fewer threads; with the tuner off every chunk runs on all of them."""
    import numba

    import eventsim as es

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2")
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        net = es.Network(dt=0.1, seed=1)
        a = net.population(400, es.LIF(v_rest=-49.0, v_th=-50.0, v_reset=-60.0, tau_syn_ex=5.0, tau_syn_in=10.0,
                                       c_m=200.0, tau_m=20.0), v_init=es.Uniform(-60.0, -50.0))
        net.connect(a, a, es.FixedProbability(0.02), weight=16.0, delay=0.1)
        monkeypatch.setattr(config, "TEAM_TUNING", True)
        net.run(1.0)
        plan = net._plan
        assert plan._team_prior(2) == 1 and plan.T == 1 and plan.tuner.current == 1
        monkeypatch.setattr(config, "TEAM_WORK_PER_THREAD", 100)   # 400 neurons x 1 step >= 2 x 100
        monkeypatch.setattr(plan_mod, "idle_cores", lambda: 2)
        assert plan._team_prior(2) == 2
        monkeypatch.setattr(plan_mod, "idle_cores", lambda: 1)   # a busy machine
        assert plan._team_prior(2) == 1
        monkeypatch.setattr(config, "TEAM_TUNING", False)
        net.run(1.0)
        assert plan.T == 2 and plan.tuner is None
    finally:
        numba.set_num_threads(before)


def test_idle_cores_reads_the_runnable_threads(tmp_path, monkeypatch):
    f = tmp_path / "loadavg"
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    for running, idle in ((1, 4), (2, 3), (4, 1), (9, 1)):  # (this thread included)
        f.write_text(f"0.50 0.40 0.30 {running}/120 4242\n")
        assert idle_cores(str(f)) == idle
    monkeypatch.setattr(os, "cpu_count", lambda: 64)   # a container with 4 of 64 cores, 20 threads running
    f.write_text("20.0 20.0 20.0 20/900 4242\n")
    assert idle_cores(str(f)) == 4
    f.write_text("70.0 70.0 70.0 70/900 4242\n")   # every core of the machine busy
    assert idle_cores(str(f)) == 1
    assert idle_cores(str(tmp_path / "missing")) == 4   # unreadable: every core of the process
