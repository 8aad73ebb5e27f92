"""The CUDA clock engine's runs are transactions too (numba-cuda's simulator, small network).

A KeyboardInterrupt injected at many lines of a run (see
:mod:`test_interrupt`) must leave the host copy at a committed chunk, equal
to the CPU engine run to the same step (the backends agree bit for bit in
float64), and the next ``run()`` must bring the device back to it and give
the uninterrupted result.  The script runs in a subprocess because the
simulator must be enabled before numba.cuda is imported.
"""

import importlib.util
import os
import subprocess
import sys

import pytest

HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = r"""
import os, sys, tempfile
sys.path.insert(0, sys.argv[1])
import numpy as np
from eventsim import config
import test_interrupt as ti

config.CHUNK_STEPS = ti.CHUNK
config.CUDA_THREADS_PER_BLOCK = 3
T, FIRST = 8.0, 2.0
total = round(T / 0.1)
cache = {}

def cpu_at(step):
    if step not in cache:
        net, _ = ti.clock_net(tempfile.mkdtemp())
        net.run(step * 0.1)
        cache[step] = ti.clock_fingerprint(net)
        net.close()
    return cache[step]

net, _ = ti.clock_net(tempfile.mkdtemp(), backend="cuda")
net.run(FIRST)
with ti.LineInterrupt() as counter:
    net.run(T - FIRST)
net.close()
ti.assert_same(ti.clock_fingerprint(net), cpu_at(total), "uninterrupted")
n = counter.count
points = sorted(set(range(1, n + 1, max(1, n // int(sys.argv[2])))) | set(range(n - 40, n + 1)))
steps = set()
for k in points:
    net, _ = ti.clock_net(tempfile.mkdtemp(), backend="cuda")
    net.run(FIRST)
    tracer = ti.LineInterrupt(k)
    try:
        with tracer:
            net.run(T - FIRST)
    except KeyboardInterrupt:
        pass
    assert tracer.fired, k
    step = net.step
    steps.add(step)
    ti.assert_same(ti.clock_fingerprint(net), cpu_at(step), f"interrupted at line {k}, step {step}")
    net.run((total - step) * 0.1)
    ti.assert_same(ti.clock_fingerprint(net), cpu_at(total), f"resumed after line {k}")
    net.close()
assert len(steps) >= 3, steps
print("OK", n, len(points), sorted(steps))
"""


def _run(env_extra, n_points):
    env = dict(os.environ, **env_extra)
    out = subprocess.run([sys.executable, "-c", SCRIPT, HERE, str(n_points)], env=env, capture_output=True,
                         text=True, timeout=1200)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("OK"), out.stdout


@pytest.mark.slow
@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
def test_cuda_simulator_interrupt_leaves_a_committed_chunk_and_resumes_exactly():
    _run({"NUMBA_ENABLE_CUDASIM": "1"}, 60)


@pytest.mark.gpu
def test_gpu_interrupt_leaves_a_committed_chunk_and_resumes_exactly():
    code = "from numba import cuda; import sys; sys.exit(0 if cuda.is_available() else 1)"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    if not HAS_NUMBA_CUDA or subprocess.run([sys.executable, "-c", code], env=env,
                                            capture_output=True).returncode != 0:
        pytest.skip("no CUDA GPU")
    _run({"NUMBA_ENABLE_CUDASIM": "0"}, 60)
