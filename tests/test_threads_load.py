"""The clock engine's thread team when threads wait, sleep, come late or leave: the same results, bit for bit.

The team's pieces of work (one per partition and phase) are claimed by
whichever thread gets there first, waiting threads fall asleep on a futex,
and threads that keep coming late leave the rest of a call to the others
(:func:`eventsim.engines.clock_cpu.run_clock`).  These tests force each of
those paths (tuning constants patched before compilation, in a fresh
process with its own Numba cache; the runs with the package's constants
share one) and a competing CPU-bound process, and
compare spikes, samples and final state with one thread.  (Timings are in
``benchmarks/threads_load.py``.)
"""

import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import hashlib, os, numpy as np, numba
from eventsim.engines import clock_cpu as cc
for name in ("SPINS", "PHASE_YIELDS", "RETIRE_AFTER"):
    if name in os.environ:
        setattr(cc, name, int(os.environ[name]))
made = []
_team_array = cc.team_array
cc.team_array = lambda T: made.append(_team_array(T)) or made[-1]
import eventsim as es
numba.set_num_threads(int(os.environ["THREADS"]))
net = es.Network(dt=0.1, seed=7)
a = net.population(300, es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0), v_init=es.Uniform(0.0, 20.0))
b = net.population(200, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0),
                   v_init=es.Uniform(0.0, 15.0))
net.connect(a, a | b, es.FixedInDegree(30), weight=es.Normal(0.4, 0.1), delay=es.Uniform(0.1, 2.0))
net.connect(b, a, es.FixedProbability(0.1), weight=-1.5, delay=0.7)
net.connect(a, b, es.FixedProbability(0.1), weight=es.Normal(30.0, 10.0), delay=1.2)
noise = net.poisson(500, rate=15000.0)
net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(300, 0.1), np.full(200, 20.0)], delay=0.1)
src = net.spike_source(np.arange(20), np.arange(20) * 7.3 + 1.0)
net.connect(src, a, es.FixedInDegree(2), weight=15.0, delay=0.4)
sp = net.record_spikes(a | b)
vm = net.record_state(b[::10], "v")
net.run(120.0)
net.run(80.0)
h = hashlib.sha256()
for x in (sp.steps, sp.senders, vm.values, net._plan.state.v, net._plan.state.i_ex, net._plan.ring):
    h.update(np.ascontiguousarray(x).tobytes())
retired = sum(int(t[cc.RETIRED]) for t in made)
print(net._plan.T, len(sp), retired, h.hexdigest())
"""


def run(threads, busy=0, cache=None, **consts):
    """``(partitions, spikes, threads retired, hash)`` of SCRIPT in a fresh process.

    The Numba cache is ``cache``, else a fresh one (patched constants must be compiled in).
    """
    import tempfile

    assert cache is None or not consts, "patched constants need a cache of their own"
    env = dict(os.environ, NUMBA_NUM_THREADS="3", THREADS=str(threads), **{k: str(v) for k, v in consts.items()})
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        with tempfile.TemporaryDirectory() as fresh:
            env["NUMBA_CACHE_DIR"] = cache or fresh
            out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                                 timeout=900)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert out.returncode == 0, out.stdout + out.stderr
    T, n, retired, h = out.stdout.split()
    return int(T), int(n), int(retired), h


@pytest.fixture(scope="module")
def unpatched_cache(tmp_path_factory):
    """A Numba cache for the runs with the package's own constants (compiled once for all of them)."""
    return str(tmp_path_factory.mktemp("numba_cache"))


@pytest.fixture(scope="module")
def reference(unpatched_cache):
    ref = run(1, cache=unpatched_cache)
    assert ref[0] == 1 and ref[1] > 1000
    return ref


@pytest.mark.parametrize("threads, busy, consts, retire", [
    (2, 1, {}, None),                                                   # beside a busy process
    (3, 0, dict(SPINS=1, PHASE_YIELDS=0, RETIRE_AFTER=10**9), 0),       # every wait ends asleep, nobody leaves
    (3, 0, dict(RETIRE_AFTER=0), 2),                                    # all but one leave at once
    (2, 1, dict(SPINS=1, PHASE_YIELDS=1, RETIRE_AFTER=2), None),        # sleeping, late, leaving, under load
])
def test_same_results_when_threads_sleep_come_late_or_leave(reference, unpatched_cache, threads, busy, consts,
                                                            retire):
    T, n, retired, h = run(threads, busy, cache=None if consts else unpatched_cache, **consts)
    assert T == threads
    assert (n, h) == (reference[1], reference[3])
    if retire == 0:
        assert retired == 0
    elif retire is not None:  # the same number in every call (chunk) of the run
        assert retired > 0 and retired % retire == 0, retired
