"""CUDA clock engine: bit-identical to the CPU engine (float64), clear errors when unusable.

The comparisons run in a subprocess with ``NUMBA_ENABLE_CUDASIM=1`` (numba-cuda's
simulator must be enabled before numba.cuda is imported), on small networks with
few threads per block.  The same script runs on a real GPU under the ``gpu`` marker.
"""

import importlib.util
import os
import subprocess
import sys

import pytest

import eventsim as es
from eventsim.engines import clock_cuda

HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None

SCRIPT = r"""
import hashlib, os, sys, tempfile, numpy as np, eventsim as es
from eventsim import config
config.CUDA_THREADS_PER_BLOCK = int(sys.argv[1])
config.SPIKE_BUFFER_INITIAL = 1      # force the early-stop / grow path of the spike buffer
config.CHUNK_STEPS = 97              # several chunks per run(), not aligned with the runs


def build(backend):
    net = es.Network(dt=0.1, seed=3, backend=backend)
    delta = es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
    exp = es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0)
    alif = es.ALIF(tau_m=15.0, c_m=1.0, v_th=15.0, v_reset=0.0, t_ref=1.0, tau_theta=(50.0, 200.0),
                   d_theta=(1.0, 0.5), reset="subtract")
    a = net.population(20, delta, v_init=es.Uniform(0.0, 20.0))
    b = net.population(15, exp, v_init=es.Uniform(0.0, 15.0))
    c = net.population(10, alif, v_init=es.Uniform(0.0, 15.0))
    # ONE_DELAY=1: one delay per sender (the synapses in the column form), else mixed delays
    one = os.environ.get("ONE_DELAY") == "1"
    net.connect(a, a | b | c, es.FixedInDegree(5), weight=es.Normal(2.0, 0.5),
                delay=1.2 if one else es.Uniform(0.1, 2.0))
    net.connect(b, a | c, es.FixedProbability(0.2), weight=-1.5, delay=0.7)
    net.connect(a | c, b, es.FixedProbability(0.2), weight=es.Normal(300.0, 50.0), delay=1.2)
    net.connect(b, b, es.FixedProbability(0.2), weight=-400.0, delay=0.7 if one else 0.4)
    noise = net.poisson(45, rate=20000.0)
    net.connect(noise, a | b | c, es.OneToOne(),
                weight=np.r_[np.full(20, 1.0), np.full(15, 120.0), np.full(10, 1.0)], delay=0.1)
    strong = net.poisson(3, rate=150000.0)          # lam = 15 per step: the PTRS sampler
    net.connect(strong, a[:3], es.OneToOne(), weight=0.2, delay=0.3)
    stim = net.spike_source(senders=[0, 1, 0, 1], times=[1.0, 2.0, 3.5, 3.5])
    net.connect(stim, a | b | c, es.AllToAll(), weight=5.0, delay=1.0)
    dc = net.dc(200.0, start=5.0, stop=15.0)
    net.connect(dc, b[:5], es.AllToAll(), weight=1.0)
    recs = [net.record_spikes(a | b | c), net.record_spikes(c), net.record_state(b[::3], "v"),
            net.record_state(c, "theta", interval=0.5), net.record_state(c[:4], "v_th", interval=0.3),
            net.record_state(b[:4], "i_ex"),
            net.record_spikes(a | c, to=os.path.join(tempfile.mkdtemp(), "s.h5")),     # streamed to disk
            net.record_state(b[::2], "i_in", interval=0.4, to=os.path.join(tempfile.mkdtemp(), "v.h5"))]
    return net, recs


def digest(backend, checkpoint=False):
    net, recs = build(backend)
    for d in (7.3, 12.0, 0.0, 0.7, 10.0):
        net.run(d)
        if checkpoint and d == 12.0:   # run(T1); save; load; run(T2) == run(T1 + T2)
            path = os.path.join(tempfile.mkdtemp(), "ck.esim")
            net.save(path)
            net.close()                # the loaded network's streaming recorders take over the files
            net = es.Network.load(path)
            recs = net.recorders
    h = hashlib.sha256()
    for r in recs:
        for name in ("steps", "senders", "times", "values"):
            x = getattr(r, name, None)
            if x is not None:
                h.update(np.ascontiguousarray(x).tobytes())
    p = net._plan
    for x in (*p.state, p.ring, p.pend[: p.pend_n[0]], p.sources.ss_ptr):
        h.update(np.ascontiguousarray(x).tobytes())
    # the spikes streamed to disk, read back from the file: those of the recorder, up to the end of the runs
    streamed = read_spikes(recs[-2].path)
    assert np.array_equal(streamed.steps, recs[-2].steps) and streamed.t_stop == 30.0, (backend, streamed.t_stop)
    return len(recs[0]), net.synaptic_events, h.hexdigest(), p._syn_off.itemsize


from eventsim.record import read_spikes
from eventsim.engines import clock_cpu as _cc
from eventsim.models.family import tags as _tags
_fams, _update = [], _cc._update_partition


def _spy(*args):  # the families the simulated kernel compiles in (its 11th argument)
    _fams.append(args[10])
    return _update(*args)


_cc._update_partition = _spy
cpu, gpu, gpu_ck = digest("cpu"), digest("cuda"), digest("cuda", checkpoint=True)
_cc._update_partition = _update
# under the simulator, the families present only (a GPU kernel compiles every family in)
_net, _ = build("cpu")
_net.run(0.1)
_present = _tags(_net._plan.params.family)
assert _fams and len(_present) < len(_tags()), (len(_fams), _present)
assert all(f == _present for f in _fams), [f for f in _fams if f != _present][:1]
print(cpu)
print(gpu)
assert cpu[0] > 300, cpu
assert cpu[3] == (2 if os.environ.get("ONE_DELAY") == "1" else 4), cpu  # column form / offsets
assert cpu == gpu == gpu_ck, (cpu, gpu, gpu_ck)

# numerical guard: same contract as the CPU engine
net = es.Network(dt=0.1, backend="cuda")
ok = net.population(3, es.LIF(v_th=15.0, i_e=100.0), label="fine")
bad = net.population(2, es.LIF(tau_syn_ex=2.0, tau_syn_in=2.0), label="exploding")
src = net.spike_source([0, 1], [3.0, 3.0])
net.connect(src, bad[1], es.AllToAll(), weight=1.0e308, delay=0.1)
vm = net.record_state(ok | bad, "v")
try:
    net.run(10.0)
except FloatingPointError as e:
    assert "exploding" in str(e) and "t = 3.1 ms" in str(e), e
else:
    raise AssertionError("no FloatingPointError")
assert abs(net.t - 3.0) < 1e-9 and np.isfinite(net._plan.state.v).all() and vm.values.shape == (30, 5)
print("OK")
"""


def _run_script(env_extra, tpb):
    env = dict(os.environ, **env_extra)
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tpb)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("OK"), out.stdout


@pytest.mark.slow
@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
def test_cuda_simulator_bit_identical_to_cpu():
    # 8 partitions, 3 threads per block: 3 blocks, grid-stride loop with a partial last block
    _run_script({"NUMBA_ENABLE_CUDASIM": "1"}, tpb=3)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
def test_cuda_simulator_column_form_bit_identical_to_cpu():
    # one delay per sender: the synapses as two-byte ring columns (clock_cpu.column_form) on both engines
    _run_script({"NUMBA_ENABLE_CUDASIM": "1", "ONE_DELAY": "1"}, tpb=3)


def _gpu_available():
    if not HAS_NUMBA_CUDA or clock_cuda.simulator_enabled():
        return False
    code = "from numba import cuda; import sys; sys.exit(0 if cuda.is_available() else 1)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


@pytest.mark.gpu
def test_gpu_bit_identical_to_cpu():
    if not _gpu_available():
        pytest.skip("no CUDA GPU")
    _run_script({"NUMBA_ENABLE_CUDASIM": "0"}, tpb=32)


def test_missing_numba_cuda_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numba_cuda" else real(name, *a))
    with pytest.raises(RuntimeError, match="numba-cuda is not installed"):
        es.Network(backend="cuda")


def test_no_gpu_is_a_clear_error():
    if not HAS_NUMBA_CUDA:
        pytest.skip("numba-cuda is not installed")
    code = ("import eventsim as es\n"
            "try:\n    es.Network(backend='cuda')\n"
            "except RuntimeError as e:\n    print('ERR', e)\n"
            "else:\n    print('OK')\n")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    if out.stdout.startswith("OK"):
        pytest.skip("a CUDA GPU is present")
    assert "no usable CUDA GPU" in out.stdout and "NUMBA_ENABLE_CUDASIM=1" in out.stdout, out.stdout


def test_simulator_counts_as_usable():
    if not HAS_NUMBA_CUDA:
        pytest.skip("numba-cuda is not installed")
    code = "import eventsim as es; net = es.Network(backend='cuda'); print(net.backend)"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "cuda", out.stdout + out.stderr


def test_importing_the_engine_does_not_import_numba_cuda():
    code = ("import sys, eventsim.engines.clock_cuda, eventsim.engines.plan; "
            "bad = [m for m in sys.modules if m.startswith('numba.cuda') or m.startswith('numba_cuda')]; "
            "assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gpu_benchmark_script_runs_on_the_simulator(dtype):
    """benchmarks/gpu.py builds the examples' networks on the CUDA backend and prints its table."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "gpu.py"), "--brunel", "0.004", "--pd",
                          "0.002", "--t-sim", "1", "--dtype", dtype], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("real-time factor") == 2, out.stdout
    assert f"cuda, {dtype}" in out.stdout
