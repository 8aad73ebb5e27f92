"""Same seed => bit-identical spikes and state with 1, 2 and 3 threads."""

import os
import subprocess
import sys

SCRIPT = r"""
import hashlib, numpy as np, eventsim as es
net = es.Network(dt=0.1, seed=11)
m1 = es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
m2 = es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0)
a = net.population(300, m1, v_init=es.Uniform(0.0, 20.0))
b = net.population(200, m2, v_init=es.Uniform(0.0, 15.0))
net.connect(a, a | b, es.FixedInDegree(40), weight=es.Normal(0.4, 0.1), delay=es.Uniform(0.1, 2.0))
net.connect(b, a, es.FixedProbability(0.1), weight=-1.5, delay=0.7)
net.connect(a, b, es.FixedProbability(0.1), weight=es.Normal(30.0, 10.0), delay=1.2)
net.connect(b, b, es.FixedProbability(0.1), weight=-120.0, delay=0.4)
noise = net.poisson(500, rate=15000.0)
net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(300, 0.1), np.full(200, 20.0)], delay=0.1)
sp = net.record_spikes(a | b)
vm = net.record_state(b[::10], "v")
net.run(150.0)
net.run(50.0)
h = hashlib.sha256()
for x in (sp.steps, sp.senders, vm.values, net._plan.state.v, net._plan.state.i_ex, net._plan.ring):
    h.update(np.ascontiguousarray(x).tobytes())
import numba
print(numba.get_num_threads(), len(sp), h.hexdigest())
"""


# every delay at least 4 steps: with 2 or more threads the team meets every 3 steps (clock_cpu._run_intervals);
# explicit source spikes, Poisson input, state samples every step and every 3 steps, a spike buffer so small
# that the team must stop early and hand it over to be emptied (and grown), runs of lengths not multiple of 3
INTERVAL_SCRIPT = r"""
import hashlib, os, numpy as np, eventsim as es
from eventsim.engines import clock_cpu as cc, plan as plan_mod
cc.INTERVAL_MAX = int(os.environ.get("INTERVAL_MAX", cc.INTERVAL_MAX))
plan_mod.COLUMN_FORM = os.environ.get("COLUMN_FORM", "1") == "1"
es.config.SPIKE_BUFFER_INITIAL = 8
net = es.Network(dt=0.1, seed=5)
m1 = es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
m2 = es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0)
a = net.population(300, m1, v_init=es.Uniform(0.0, 20.0))
b = net.population(200, m2, v_init=es.Uniform(0.0, 15.0))
net.connect(a, a | b, es.FixedInDegree(40), weight=es.Normal(0.4, 0.1), delay=es.Uniform(0.4, 2.0))
net.connect(b, a, es.FixedProbability(0.1), weight=-1.5, delay=0.7)
net.connect(a, b, es.FixedProbability(0.1), weight=es.Normal(30.0, 10.0), delay=1.2)
net.connect(b, b, es.FixedProbability(0.1), weight=-120.0, delay=0.4)
noise = net.poisson(500, rate=15000.0)
net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(300, 0.1), np.full(200, 20.0)], delay=0.5)
src = net.spike_source(np.arange(20), np.arange(20) * 7.3 + 1.0)
net.connect(src, a, es.FixedInDegree(2), weight=15.0, delay=0.4)
sp = net.record_spikes(a | b)
vm = net.record_state(b[::10], "v")
im = net.record_state(a[::7], "v", interval=0.3)
net.run(100.3)
net.run(0.1)
net.run(99.6)
h = hashlib.sha256()
for x in (sp.steps, sp.senders, vm.values, im.values, im.steps, net._plan.state.v, net._plan.state.i_ex,
          net._plan.ring):
    h.update(np.ascontiguousarray(x).tobytes())
import numba
print(numba.get_num_threads(), len(sp), h.hexdigest(), net._plan.work.interval[0], net._plan._syn_off.itemsize)
"""

# every sender with a single delay (1.2, 0.7, 0.5 and 0.4 ms: rows that pass the ring's end at different steps):
# the synapses in the column form (two-byte columns, the delay per sender) unless COLUMN_FORM=0
COLUMN_SCRIPT = INTERVAL_SCRIPT.replace("delay=es.Uniform(0.4, 2.0)", "delay=1.2").replace(
    "weight=-120.0, delay=0.4", "weight=-120.0, delay=0.7")


def run_with(threads, script=SCRIPT, **env_vars):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), **env_vars)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    n, count, digest, *interval = out.stdout.split()
    assert int(n) == threads
    return (int(count), digest) + tuple(int(i) for i in interval)


def test_thread_count_does_not_change_results():
    results = {t: run_with(t) for t in (1, 2, 3)}
    assert results[1][0] > 1000
    assert results[1] == results[2] == results[3], results


def test_threads_meeting_every_few_steps_give_the_same_results():
    """With every delay at least 4 steps the threads meet every 3 steps: the same spikes, samples and state,
    bit for bit, for 1, 2 and 3 threads and as when they meet every step or every other step."""
    runs = {(t, None): run_with(t, INTERVAL_SCRIPT) for t in (1, 2, 3)}
    runs.update({(t, m): run_with(t, INTERVAL_SCRIPT, INTERVAL_MAX=str(m)) for t, m in ((1, 0), (2, 0), (2, 1))})
    assert runs[1, None][0] > 1000
    assert {r[3] for r in runs.values()} == {4}  # mixed delays: offsets
    assert len({r[:2] for r in runs.values()}) == 1, runs
    assert {k: r[2] for k, r in runs.items()} == {(1, None): 3, (2, None): 3, (3, None): 3, (1, 0): 0, (2, 0): 0,
                                                 (2, 1): 1}


def test_column_form_gives_the_same_results_as_offsets():
    """Every sender with one delay: the synapses stored as two-byte ring columns give the same spikes, samples
    and state, bit for bit, as the four-byte offsets, for 1, 2 and 3 threads, meeting every 3 steps or every
    step."""
    cases = [(1, "1", None), (2, "1", None), (3, "1", None), (2, "1", "0"), (2, "0", None)]
    runs = {c: run_with(c[0], COLUMN_SCRIPT, COLUMN_FORM=c[1], **({"INTERVAL_MAX": c[2]} if c[2] else {}))
            for c in cases}
    assert runs[cases[0]][0] > 1000
    assert len({r[:2] for r in runs.values()}) == 1, runs
    assert [runs[c][2:] for c in cases] == [(3, 2), (3, 2), (3, 2), (0, 2), (3, 4)]  # (interval, bytes per offset)


TEAM_SCRIPT = r"""
import numpy as np, numba, eventsim as es
from eventsim.engines import clock_cpu as cc

def build():
    net = es.Network(dt=0.1, seed=3)
    a = net.population(60, es.LIF(), v_init=es.Uniform(0.0, 20.0))
    p = net.poisson(60, rate=8000.0)
    net.connect(p, a, es.OneToOne(), weight=1.0, delay=0.5)
    net.connect(a, a, es.FixedInDegree(10), weight=0.5, delay=1.0)
    return net, net.record_spikes(a)

numba.set_num_threads(2)
net, sp = build()
net.run(0.1)                      # 2 threads, 2 partitions
plan = net._plan
assert plan.T == 2
v0 = plan.state.v.copy()
calls = []

def refuse_once(*a):
    # the first call: a member waits for a thread that never comes, closes the team and does nothing
    s0, s1, L, C, pr, st, conn, ring, src, rec, work, n_flag, flags = a
    calls.append(work.nsp.size)
    if len(calls) > 1:
        return cc.run_steps(*a)
    team = np.zeros(32, np.int64)
    args = (s0, s1, L, C, pr, st, conn, ring, src, rec, work, n_flag, team) + tuple(flags)
    cc.run_clock(np.int64(1), *args)  # alone: waits for thread 0, then gives up
    assert team[cc.JOIN] < 0 and np.array_equal(st.v, v0), team   # closed, nothing was done
    cc.run_clock(np.int64(0), *args)  # a late member finds the team closed and returns
    assert np.array_equal(st.v, v0)
    return -1

import warnings
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    reached, rec = plan._chunk(refuse_once, 1, 101)
assert reached == 101 and calls == [2, 1], calls
assert any("could not be started together" in str(x.message) for x in w)
plan._commit(1, reached, rec)
numba.set_num_threads(1)
ref, ref_sp = build()
ref.run(10.1)
assert len(sp) > 50
assert np.array_equal(sp.steps, ref_sp.steps) and np.array_equal(sp.senders, ref_sp.senders)
assert np.array_equal(plan.state.v, ref._plan.state.v)
print("ok")
"""


def test_a_thread_team_that_cannot_gather_falls_back():
    """A member that waits for a thread that never comes closes the team before any work (no
    deadlock); the chunk then runs on one thread, with the same results."""
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", TEAM_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "ok"
