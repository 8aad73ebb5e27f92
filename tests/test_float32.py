"""The float32 option of the clock engine: its own tolerances against float64, CPU and CUDA."""

import importlib.util
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import eventsim as es
from test_cuda import _gpu_available

HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None


def single_neuron(dtype, synapse):
    net = es.Network(dt=0.1, seed=2, dtype=dtype)
    if synapse == "exp":
        model = es.LIF(tau_m=10.0, c_m=250.0, v_rest=-70.0, v_th=-55.0, v_reset=-70.0, t_ref=2.0,
                       tau_syn_ex=2.0, tau_syn_in=5.0, i_e=420.0)
        w = (400.0, -300.0)
    else:
        model = es.LIF(tau_m=10.0, c_m=250.0, v_rest=-70.0, v_th=-55.0, v_reset=-70.0, t_ref=2.0, i_e=420.0)
        w = (1.5, -1.0)
    pop = net.population(1, model, v_init=-70.0)
    stim = net.spike_source(senders=[0, 0, 1, 0], times=[3.0, 17.2, 25.0, 61.3], n=2)
    net.connect(stim[0], pop, es.AllToAll(), weight=w[0], delay=1.0)
    net.connect(stim[1], pop, es.AllToAll(), weight=w[1], delay=1.0)
    sp = net.record_spikes(pop)
    vm = net.record_state(pop, "v")
    net.run(200.0)
    return sp.steps.copy(), vm.values[:, 0].copy(), net


@pytest.mark.parametrize("synapse", ["delta", "exp"])
def test_single_neuron_float32_within_tolerance_of_float64(synapse):
    s64, v64, _ = single_neuron("float64", synapse)
    s32, v32, net = single_neuron("float32", synapse)
    assert net._plan.state.v.dtype == np.float32 and net._plan.params.p_vv.dtype == np.float32
    assert s64.size >= 5
    np.testing.assert_array_equal(s32, s64)            # no grazing crossings in this trace
    # 2000 steps of single-precision rounding: well inside 1e-5 relative to the voltage scale
    assert np.max(np.abs(v32 - v64)) < 1e-5 * 70.0
    assert np.max(np.abs(v32 - v64)) > 0.0             # it really ran in single precision


def network(dtype, threads=None, t=200.0):
    net = es.Network(dt=0.1, seed=1, dtype=dtype)
    m = es.LIF(tau_m=20.0, c_m=250.0, v_rest=-49.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0,
               tau_syn_ex=5.0, tau_syn_in=10.0)
    d = es.LIF(tau_m=20.0, c_m=1.0, v_rest=0.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
    a = net.population(300, m, v_init=es.Uniform(-60.0, -50.0))
    b = net.population(200, d, v_init=es.Uniform(0.0, 20.0))
    net.connect(a, a, es.FixedProbability(0.05), weight=es.Normal(20.0, 5.0), delay=es.Uniform(0.1, 2.0))
    net.connect(a, b, es.FixedInDegree(20), weight=0.3, delay=1.0)
    net.connect(b, a, es.FixedProbability(0.05), weight=-60.0, delay=0.5)
    noise = net.poisson(500, rate=np.r_[np.full(300, 8000.0), np.full(200, 12000.0)])
    net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(300, 30.0), np.full(200, 1.2)])
    sp = net.record_spikes(a | b)
    before = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        net.run(t)
    finally:
        numba.set_num_threads(before)
    return net, sp


def test_network_float32_rates_match_float64_and_memory_halves():
    n64, s64 = network("float64")
    n32, s32 = network("float32")
    assert len(s64) > 5000
    assert abs(len(s32) - len(s64)) <= 0.02 * len(s64), (len(s32), len(s64))
    assert n32._plan.ring.dtype == np.float32 and n32._plan.ring.nbytes * 2 == n64._plan.ring.nbytes
    for x in n32._plan.state:
        assert x.dtype in (np.float32, np.int64)
    assert n32.weight_dtype == np.float32          # weights follow dtype unless given


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_float32_bit_identical_across_thread_counts():
    r = []
    for threads in (1, 2):
        net, sp = network("float32", threads=threads, t=100.0)
        r.append((sp.steps.copy(), sp.senders.copy(), net._plan.state.v.copy(), net._plan.ring.copy()))
    for x, y in zip(*r):
        np.testing.assert_array_equal(x, y)


def test_float32_checkpoint_resume(tmp_path):
    ref, sref = network("float32", t=100.0)
    net, _ = network("float32", t=60.0)
    net.save(tmp_path / "ck.esim")
    back = es.Network.load(tmp_path / "ck.esim")
    back.run(40.0)
    assert back._plan.state.v.dtype == np.float32
    np.testing.assert_array_equal(back._plan.state.v, ref._plan.state.v)
    np.testing.assert_array_equal(back.recorders[0].senders, sref.senders)


def test_dtype_errors():
    with pytest.raises(ValueError, match="dtype"):
        es.Network(dtype="float16")
    with pytest.raises(NotImplementedError, match="float64"):
        es.Network(engine="event", dtype="float32")
    assert es.Network(dtype="float32", weight_dtype="float64").weight_dtype == np.float64


CUDA_SCRIPT = r"""
import numpy as np, eventsim as es
from eventsim import config
config.CUDA_THREADS_PER_BLOCK = 4

def run(backend, dtype):
    net = es.Network(dt=0.1, seed=4, backend=backend, dtype=dtype)
    m = es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0)
    d = es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
    a = net.population(20, m, v_init=es.Uniform(0.0, 15.0))
    b = net.population(20, d, v_init=es.Uniform(0.0, 20.0))
    net.connect(a, b, es.FixedInDegree(4), weight=1.0, delay=0.5)
    net.connect(b, a, es.FixedInDegree(4), weight=-200.0, delay=0.3)
    noise = net.poisson(40, rate=20000.0)
    net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(20, 150.0), np.full(20, 1.0)])
    sp = net.record_spikes(a | b)
    vm = net.record_state(a | b, "v")
    net.run(20.0)
    assert net._plan.state.v.dtype == np.dtype(dtype)
    return len(sp), vm.values

n_cpu, v_cpu = run("cpu", "float32")
n_gpu, v_gpu = run("cuda", "float32")
n_64, v_64 = run("cpu", "float64")
assert n_cpu > 20, n_cpu
assert abs(n_gpu - n_cpu) <= 2, (n_gpu, n_cpu)
# until the first divergent spike, traces agree to float32 rounding
k = int(np.argmax(np.any(np.abs(v_gpu - v_cpu) > 1e-3, axis=1))) or len(v_cpu)
assert k > 50, k
assert np.max(np.abs(v_gpu[:k] - v_cpu[:k])) < 1e-4
assert np.max(np.abs(v_cpu[:50] - v_64[:50])) < 1e-4
print("OK")
"""


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
def test_float32_cuda_simulator_matches_cpu():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-c", CUDA_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("OK")


@pytest.mark.gpu
def test_float32_gpu_matches_cpu():
    if not _gpu_available():
        pytest.skip("no CUDA GPU")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    out = subprocess.run([sys.executable, "-c", CUDA_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("OK")
