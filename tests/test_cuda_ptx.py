"""Real CUDA compilation of every kernel, without a GPU: PTX for sm_80 and sm_90, then ptxas.

The CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, used by ``test_cuda.py`` and
``torch/test_cuda_sim.py``) runs the kernels as Python, so it accepts code
that the real compiler refuses and says nothing about registers or
local-memory spills.  Here every kernel of the clock engine
(:mod:`eventsim.engines.clock_cuda`) and of the torch bridge
(:mod:`eventsim.torch._cuda`) goes through numba-cuda's real pipeline
(typing for the CUDA target, NVVM to PTX, and ptxas to SASS when the
toolkit wheels provide it), for compute capabilities 8.0 (A100) and 9.0
(H100), as ``pip install 'numba-cuda[cu12]'`` allows on a machine with no
GPU and no driver.

Signatures are not written by hand: they are captured from the real launch
code.  A small network of every model family (delta and exponential LIF, IF,
ALIF, every reset mode, Poisson, spike and DC sources, every recorder) is run
with ``backend="cuda"`` while the kernels are replaced by recorders of their
arguments; a torch layer of every integrator, reset and synapse (adaptive
layers with one and two threshold components, ``LIFRecurrent`` with and
without adaptation) is run
forward and backward on a tensor that claims to be on a CUDA device, the
launchers building their arguments exactly as on a GPU.  Each argument is
then typed as numba-cuda types its device copy (a ``DeviceNDArray`` of the
same dtype, rank and layout).  Flags that select the model, reset mode and
synapse form of the torch kernels are run-time values; the clock engine's
synapse form (ring columns ``uint16`` or offsets ``int32``) is a type, so
both appear.  Offsets in ``int64`` (rings of 2**31 cells or more) are added
by widening the captured type, since no test network is that large.

The clock kernels are compiled as they are launched: inside
:class:`clock_cuda._NoFMA` (no contraction of ``a*b + c``, which the
bit-identity with the CPU engine relies on); the torch kernels with
numba-cuda's defaults, as they are launched.  Device functions (the CPU
engine's functions that the kernels call) are typed and lowered once per
argument types and reused for the second compute capability, as numba-cuda
does on a GPU; NVVM and ptxas then compile everything for each target.

Registers, stack frame and spills per thread come from ``ptxas -v`` (the
``nvidia-cuda-nvcc-cu12`` wheel that ``numba-cuda[cu12]`` installs brings it);
without ptxas only the PTX's ``.local`` declarations are checked.  The table
is printed (``pytest -s`` or ``-rA``) and recorded as a test property.

Must run in a process without ``NUMBA_ENABLE_CUDASIM`` (``compile_ptx`` does
not exist in the simulator).
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import os
import re
import subprocess
import tempfile
import types as pytypes

import numpy as np
import pytest

from eventsim import config

HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")
CCS = [(8, 0), (9, 0)]
#: registers per streaming multiprocessor (and the most one block may use) on sm_80 and sm_90
SM_REGISTERS = 65536
#: under pytest-xdist (tests/conftest.py) the clock engine's tests and the torch bridge's are two units of work,
#: which can run at the same time on two workers; each runs its tests in one process, where the module fixture
#: captures the launch signatures once and each kernel is lowered once for both targets
CLOCK_UNIT = pytest.mark.xdist_group("cuda_ptx_clock")
TORCH_UNIT = pytest.mark.xdist_group("cuda_ptx_torch")

pytestmark = [
    pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed (pip install 'numba-cuda[cu12]')"),
    pytest.mark.skipif(SIMULATOR, reason="NUMBA_ENABLE_CUDASIM is set: the simulator cannot compile to PTX"),
]


def _nvvm_missing():
    """``None`` if NVVM compiles here, else why not (one sentence)."""
    import numba
    from numba import cuda

    def probe(a):
        a[0] = 1.0

    try:
        cuda.compile_ptx(probe, (numba.float64[::1],), cc=CCS[0])
    except Exception as exc:  # noqa: BLE001 - any failure of the toolchain is reported in words
        return f"numba-cuda cannot compile to PTX here ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    return None


@pytest.fixture(scope="module")
def nvvm():
    reason = _nvvm_missing()
    if reason is not None:
        pytest.skip(reason + "; pip install 'numba-cuda[cu12]' brings NVVM as wheels")


# ---------------------------------------------------------------------- typing as on the device
def device_type(value):
    """The numba type numba-cuda gives the device copy of a launch argument.

    Arrays become ``DeviceNDArray`` s of the same dtype and rank; their layout
    follows ``DeviceNDArray._numba_type_`` ("C", else "F", else "A"; broadcast
    arrays "A"), mutable and aligned.  Tuples (named or not) are typed element by
    element; scalars as numba types them.
    """
    import numba
    from numba.core import types

    if isinstance(value, np.ndarray):
        broadcast = 0 in value.strides and value.size != 0
        layout = ("C" if value.flags.c_contiguous and not broadcast else
                  "F" if value.flags.f_contiguous and not broadcast else "A")
        return types.Array(numba.from_dtype(value.dtype), value.ndim, layout)
    if isinstance(value, tuple):
        return types.BaseTuple.from_types([device_type(v) for v in value], type(value))
    return numba.typeof(value)


class _Recorder:
    """Stands in for a CUDA kernel: ``k[grid](*args)`` records the device types of ``args``.

    ``seen[name]`` collects the distinct signatures, ``seen["#" + name]`` counts the launches.
    """

    def __init__(self, name, seen):
        self.name, self.seen = name, seen

    def __getitem__(self, launch_config):
        def launch(*args):
            self.seen[self.name].add(tuple(device_type(a) for a in args))
            self.seen["#" + self.name].add(len(self.seen["#" + self.name]))
        return launch


# ---------------------------------------------------------------------- clock engine
def _clock_network(dtype, weight_dtype, one_delay, minimal=False, plastic=False):
    """Every model family, reset mode, source and recorder of the clock engine, small.

    ``minimal``: one population of delta-synapse LIF neurons with Poisson input only.
    ``plastic``: with plastic synapses of every rule (the kernels' plastic argument).
    """
    import eventsim as es

    net = es.Network(dt=0.1, seed=5, backend="cuda", dtype=dtype, weight_dtype=weight_dtype)
    if minimal:
        pop = net.population(5, es.LIF(v_th=15.0))
        net.connect(net.poisson(5, rate=8000.0), pop, es.OneToOne(), weight=1.0, delay=0.5)
        return net
    pops = [
        net.population(6, es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0)),
        net.population(6, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0)),
        net.population(4, es.IF(v_th=15.0, t_ref=1.0)),
    ]
    for reset in ("value", "subtract", "affine"):
        pops.append(net.population(4, es.ALIF(tau_m=15.0, v_th=15.0, v_reset=0.0, t_ref=1.0,
                                              tau_theta=(50.0, 200.0), d_theta=(1.0, 0.5), reset=reset)))
    alpha = dict(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0, psc="alpha")
    pops += [net.population(4, es.LIF(**alpha)), net.population(4, es.ALIF(tau_theta=(50.0,), d_theta=(1.0,), **alpha))]
    allp = pops[0]
    for p in pops[1:]:
        allp = allp | p
    n = len(allp)
    net.connect(pops[0], allp, es.FixedInDegree(3), weight=2.0, delay=1.2 if one_delay else es.Uniform(0.1, 2.0))
    net.connect(pops[1], allp, es.FixedProbability(0.3), weight=-1.5, delay=0.7)
    noise = net.poisson(n, rate=20000.0)
    net.connect(noise, allp, es.OneToOne(), weight=1.0, delay=0.1)
    strong = net.poisson(2, rate=150000.0)  # 15 per step: the PTRS sampler (log, lgamma)
    net.connect(strong, pops[0][:2], es.OneToOne(), weight=0.2, delay=0.3)
    stim = net.spike_source(senders=[0, 1], times=[0.5, 0.7])
    net.connect(stim, allp, es.AllToAll(), weight=5.0, delay=1.0)
    net.connect(net.dc(200.0, start=0.0, stop=5.0), pops[1][:2], es.AllToAll(), weight=1.0)
    net.record_spikes(allp)
    for var, pop in (("v", pops[0]), ("i_ex", pops[1]), ("i_in", pops[1]), ("theta", pops[3]),
                     ("v_th", pops[4]), ("di_ex", pops[6])):
        net.record_state(pop, var)
    if plastic:
        net.connect(pops[0], pops[0], es.FixedInDegree(2), weight=0.5, delay=1.0, synapse=es.STDP(w_max=2.0))
        net.connect(pops[0], pops[1], es.FixedInDegree(2), weight=50.0, delay=1.5, synapse=es.STDPPowerLaw())
        net.connect(pops[0], pops[2], es.FixedInDegree(2), weight=0.5, delay=0.5,
                    synapse=es.TripletSTDP(w_max=2.0))
    return net


#: (dtype, weight_dtype, one delay per sender, minimal, plastic) of the captured networks; the minimal
#: networks must add no signature (the model families, resets and sources are run-time data)
CLOCK_CASES = [("float64", None, True, False, False), ("float64", None, False, False, False),
               ("float32", None, True, False, False), ("float32", None, False, False, False),
               ("float64", "float32", False, False, False), ("float64", None, True, True, False),
               ("float32", None, True, True, False), ("float64", None, False, False, True),
               ("float32", None, False, False, True)]


@pytest.fixture(scope="module")
def clock_launches(nvvm):
    """``{"update": {signature, ...}, "after": {...}}`` from real launches of :func:`_clock_network`."""
    from eventsim.engines import clock_cuda

    seen = collections.defaultdict(set)
    forms = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(clock_cuda, "unavailable_reason", lambda: None)
        # host copies instead of device arrays (the simulator's memory path); kernels that record
        mp.setattr(clock_cuda, "simulator_enabled", lambda: True)
        mp.setattr(clock_cuda, "_kernels", lambda: (_Recorder("update", seen), _Recorder("after", seen)))
        for dtype, wdtype, one, minimal, plastic in CLOCK_CASES:
            net = _clock_network(dtype, wdtype, one, minimal, plastic)
            net.run(0.2)
            forms.append((dtype, wdtype, one, net._plan.conn.syn_off.dtype))
    # rings of 2**31 cells or more store offsets in int64 (plan.build_plan); no test network is that big
    from numba.core import types

    for name, k in (("update", 3), ("after", 5)):  # position of the Conn argument
        for sig in list(seen[name]):
            conn = sig[k]
            if conn.types[2] == types.Array(types.int32, 1, "C"):
                wide = type(conn)([*conn.types[:2], types.Array(types.int64, 1, "C"), *conn.types[3:]],
                                  conn.instance_class)
                seen[name].add((*sig[:k], wide, *sig[k + 1:]))
    return dict(seen), forms


@CLOCK_UNIT
def test_ptx_clock_signatures_cover_every_form(clock_launches):
    """Both synapse forms and both precisions reach the kernels; models and resets share one kernel each."""
    from numba.core import types

    seen, forms = clock_launches
    off_types = {sig[3].types[2].dtype for sig in seen["update"]}
    assert off_types == {types.uint16, types.int32, types.int64}, off_types
    state_types = {sig[2].types[0].dtype for sig in seen["update"]}
    assert state_types == {types.float32, types.float64}, state_types
    weight_types = {(sig[2].types[0].dtype, sig[3].types[3].dtype) for sig in seen["update"]}
    assert (types.float64, types.float32) in weight_types, weight_types
    assert {f[3] for f in forms} == {np.dtype(np.uint16), np.dtype(np.int32)}, forms
    # 5 kinds of static network, 3 with offsets (+3 widened to int64), and no more: the two networks of a
    # single model family and source add no signature (model family, reset mode and sources are run-time
    # data, and every family is compiled in); the plastic ones (offsets, float64 and float32, each widened) add 4
    static = [sig for sig in seen["update"] if isinstance(sig[-2], types.NoneType)]
    assert len(static) == 8 and len(seen["update"]) == len(seen["after"]) == 12, [str(s) for s in seen["update"]]


# ---------------------------------------------------------------------- torch bridge
TORCH_LAYERS = [
    ("LIF", dict(tau_m=10.0, t_ref=2.0, reset="value")),
    ("LIF", dict(tau_m=10.0, tau_syn=4.0, reset="subtract", trainable=True)),
    ("LIF", dict(tau_m=10.0, tau_syn=4.0, integrator="euler")),
    ("LIF", dict(tau_m=10.0, integrator="snntorch", reset="subtract")),
    ("LIF", dict(tau_m=10.0, integrator="spikingjelly")),
    ("LIF", dict(tau_m=10.0, integrator="sinabs", reset="subtract")),
    ("IF", dict(t_ref=1.0)),
    ("ALIF", dict(tau_m=10.0, tau_syn=3.0, tau_theta=20.0, d_theta=0.2, reset="subtract", trainable=True)),
    ("ALIF", dict(tau_m=10.0, tau_theta=(5.0, 50.0), d_theta=(0.2, 0.1), t_ref=1.0, trainable=True)),
    ("LIFRecurrent", dict(input_size=5, hidden_size=4, tau_m=10.0, t_ref=1.0, trainable=True)),
    ("LIFRecurrent", dict(input_size=5, hidden_size=4, tau_m=10.0, tau_syn=3.0, tau_theta=(5.0, 50.0),
                          d_theta=(0.2, 0.1), reset="subtract", trainable=True)),
]
TORCH_KERNELS = ("ff_forward", "ff_backward", "rec_forward", "rec_backward")


@pytest.fixture(scope="module")
def torch_launches(nvvm):
    """``{"ff_forward": {signature, ...}, "ff_backward": {...}, "rec_forward": ..., "rec_backward": ...}`` from
    the real launchers of the torch bridge (feed-forward and recurrent layers)."""
    torch = pytest.importorskip("torch")
    import eventsim.torch as est
    from eventsim.torch import _cuda

    class OnDevice(torch.Tensor):
        """A CPU tensor that the layer code takes for a CUDA tensor (``x.is_cuda``)."""

        @property
        def is_cuda(self):
            return True

    def views(tensors):  # as _cuda._dev, with NumPy views instead of CUDA views
        return [t.detach().as_subclass(torch.Tensor).numpy() if isinstance(t, torch.Tensor) else t
                for t in tensors], None

    seen = collections.defaultdict(set)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_cuda, "kernels", lambda: {k: _Recorder(k, seen) for k in TORCH_KERNELS})
        mp.setattr(_cuda, "_dev", views)
        mp.setattr(_cuda, "cuda", pytypes.SimpleNamespace(to_device=lambda a, stream=None: np.ascontiguousarray(a)))
        for dtype in (torch.float32, torch.float64):
            for kind, kw in TORCH_LAYERS:
                layer = getattr(est, kind)(**kw).to(dtype)
                x = (torch.rand(6, 2, 5, dtype=dtype) + 0.5).as_subclass(OnDevice).requires_grad_()
                s, _, v = layer(x, return_v=True)
                (s.sum() + v.sum()).backward()
    n_rec = 2 * sum(kind == "LIFRecurrent" for kind, _ in TORCH_LAYERS)
    n_ff = 2 * len(TORCH_LAYERS) - n_rec
    # every forward and backward went through the CUDA launchers (else their signatures were not checked)
    assert len(seen["#ff_forward"]) == len(seen["#ff_backward"]) == n_ff, {k: len(v) for k, v in seen.items()}
    assert len(seen["#rec_forward"]) == len(seen["#rec_backward"]) == n_rec, {k: len(v) for k, v in seen.items()}
    return dict(seen)


@TORCH_UNIT
def test_ptx_torch_signatures_cover_both_precisions(torch_launches):
    from numba.core import types

    for name in TORCH_KERNELS:
        sigs = torch_launches[name]
        assert {sig[1].dtype for sig in sigs} == {types.float32, types.float64}, name
        # the family's tag (first argument) binds its step at compile time; integrator, reset, synapse and
        # adaptation are run-time flags: one kernel per precision and family (iaf_psc_delta, iaf_psc_exp and
        # alif feed-forward; iaf_psc_delta and alif recurrent, as TORCH_LAYERS has them)
        families = {sig[0] for sig in sigs}
        assert len(families) == (2 if name.startswith("rec") else 3), [str(s) for s in sigs]
        assert len(sigs) == 2 * len(families), [str(s) for s in sigs]


# ---------------------------------------------------------------------- compiling and reading ptxas
def _ptxas_path():
    try:
        from cuda.pathfinder import find_nvidia_binary_utility

        path = find_nvidia_binary_utility("ptxas")
    except Exception:  # noqa: BLE001 - older pathfinder or no wheel: fall back on PATH
        path = None
    if path is None:
        import shutil

        path = shutil.which("ptxas")
    return path


Resources = collections.namedtuple("Resources", "registers stack spill_stores spill_loads")


def ptxas_resources(ptx, cc):
    """Run ``ptxas -v`` on ``ptx``; return ``{function name: Resources}`` (bytes per thread; None: no ptxas)."""
    exe = _ptxas_path()
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "k.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        out = subprocess.run([exe, f"-arch=sm_{cc[0]}{cc[1]}", "-v", "-o", os.path.join(d, "k.cubin"), src],
                             capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    res, name, props = {}, None, {}
    for line in out.stderr.splitlines():
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            name = m.group(1)
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and name is not None:
            props[name] = [int(g) for g in m.groups()]
            continue
        m = re.search(r"Compiling entry function '(\S+)'", line)
        if m:
            name = m.group(1)
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m and name is not None:
            res[name] = int(m.group(1))
    return {n: Resources(res.get(n, 0), *props.get(n, (0, 0, 0))) for n in set(res) | set(props)}


def ptx_local_bytes(ptx):
    """Bytes of ``.local`` memory (stack arrays) each PTX function declares, by function name."""
    out, name = {}, None
    for line in ptx.splitlines():
        m = re.match(r"\s*\.(?:visible\s+|weak\s+)?(?:\.entry|\.func)\s+(?:\([^)]*\)\s*)?(\w+)", line)
        if m:
            name = m.group(1)
            out.setdefault(name, 0)
        m = re.search(r"\.local\s+\.align\s+\d+\s+\.b8\s+\w+\[(\d+)\]", line)
        if m and name is not None:
            out[name] += int(m.group(1))
    return out


@pytest.fixture
def fake_device(monkeypatch):
    """Let numba-cuda compile device functions (CPU dispatchers called from kernels) for ``cc`` with no GPU.

    numba-cuda asks the current device for its compute capability when it first
    compiles a device function; there is none here, so the answer is supplied.
    """
    from numba.cuda import dispatcher

    def use(cc):
        monkeypatch.setattr(dispatcher, "get_current_device", lambda: pytypes.SimpleNamespace(compute_capability=cc))
    return use


#: PTX by (function, signature, no_fma, target)
_PTX = {}


def _compile_all(items, no_fma, ccs=CCS):
    """PTX of every ``(pyfunc, sig)`` in ``items`` for every target of ``ccs``, kept in :data:`_PTX`.

    Each kernel is lowered once (numba's typing and lowering, on this thread); NVVM then
    turns its LLVM IR into PTX for each target, the targets on threads of their own (NVVM
    runs outside the interpreter lock).  A numba-cuda without that split compiles per target.
    """
    from concurrent.futures import ThreadPoolExecutor

    from numba.cuda import compiler

    from eventsim.engines import clock_cuda

    todo = [(f, s) for f, s in items if any((f, s, no_fma, cc) not in _PTX for cc in ccs)]
    if not todo:
        return
    fma = clock_cuda._NoFMA() if no_fma else contextlib.nullcontext()
    lower = getattr(compiler, "_compile_pyfunc_with_fixup", None)
    with fma:
        if lower is None:
            for f, s in todo:
                for cc in ccs:
                    _PTX[f, s, no_fma, cc] = compiler.compile_ptx(f, s, cc=cc)[0]
            return
        libs = [lower(f, s, device=False, cc=ccs[0], abi="numba")[0] for f, s in todo]

        def nvvm(cc):
            return [lib.get_asm_strs(cc=cc) for lib in libs]

        with ThreadPoolExecutor(len(ccs)) as pool:
            per_cc = dict(zip(ccs, pool.map(nvvm, ccs)))
    for cc, ptxes in per_cc.items():
        for (f, s), ptx in zip(todo, ptxes):
            assert len(ptx) == 1, len(ptx)
            _PTX[f, s, no_fma, cc] = ptx[0]


def _compile(pyfunc, sig, cc, no_fma):
    """PTX of kernel ``pyfunc`` for ``sig`` on target ``cc``."""
    _compile_all([(pyfunc, sig)], no_fma, ccs=(cc,))
    return _PTX[pyfunc, sig, no_fma, cc]


def _check_kernel(label, ptx, cc, hot, report):
    """Assert the launch fits a block and (for hot kernels) nothing spills; add a line to ``report``."""
    local = ptx_local_bytes(ptx)
    res = ptxas_resources(ptx, cc)
    tpb = int(config.CUDA_THREADS_PER_BLOCK)
    if res is None:
        report.append(f"{label} sm_{cc[0]}{cc[1]}: PTX .local {max(local.values(), default=0)} B (no ptxas)")
        if hot:
            assert max(local.values(), default=0) == 0, (label, local)
        return None
    kern = max(res.items(), key=lambda kv: kv[1].registers)
    regs = kern[1].registers
    spill = {n: r for n, r in res.items() if r.spill_stores or r.spill_loads}
    report.append(f"{label:38s} sm_{cc[0]}{cc[1]}: {regs:3d} registers, stack {kern[1].stack:4d} B, "
                  f"spill {kern[1].spill_stores}/{kern[1].spill_loads} B (st/ld), PTX .local "
                  f"{sum(local.values())} B")
    # launches of config.CUDA_THREADS_PER_BLOCK threads fail ("too many resources requested") beyond this
    assert ((regs + 7) // 8 * 8) * tpb <= SM_REGISTERS, (label, regs, tpb)
    if hot:
        assert not spill, f"{label} spills to local memory on sm_{cc[0]}{cc[1]}: {spill}"
    return res


def _clock_signatures(seen, cc):
    """The clock launch signatures checked on target ``cc``, by kernel name.

    The newest target (sm_90: H100/H200) gets every signature; older ones one per kernel and
    precision of the state (the synapse forms compile to the same arithmetic), which keeps
    NVVM's time in the suite down.
    """
    out = {}
    for name, conn in (("update", 3), ("after", 5)):
        sigs = sorted(seen[name], key=str)
        if cc != CCS[-1]:
            first = {}
            for sig in sigs:
                first.setdefault(sig[conn - 1].types[0].dtype, sig)
            sigs = list(first.values())
        out[name] = sigs
    return out


@CLOCK_UNIT
@pytest.mark.parametrize("cc", CCS, ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
def test_ptx_clock_kernels_compile(clock_launches, fake_device, cc, record_property, capsys):
    """Every clock kernel, for every launch signature on sm_90 and every precision on sm_80,
    compiles to PTX and SASS; the step kernel never spills."""
    from eventsim.engines import clock_cuda

    fake_device(cc)
    update_k, after_k = clock_cuda._kernels()
    seen, _ = clock_launches
    sigs = {c: _clock_signatures(seen, c) for c in CCS}
    kernels = (("update", update_k), ("after", after_k))
    # each signature lowered once: those of every target first, then the newest target's others
    _compile_all([(k.py_func, sig) for name, k in kernels for sig in sigs[CCS[0]][name]], no_fma=True)
    _compile_all([(k.py_func, sig) for name, k in kernels for sig in sigs[CCS[-1]][name]], no_fma=True,
                 ccs=CCS[-1:])
    report = []
    for name, kern, hot in (("update", update_k, True), ("after", after_k, False)):
        conn = 3 if name == "update" else 5
        for sig in sigs[cc][name]:
            off = sig[conn].types[2].dtype
            form = "columns" if off.bitwidth == 16 else f"offsets {off}"
            label = f"clock {name} {sig[conn - 1].types[0].dtype}/{sig[conn].types[3].dtype} {form}"
            ptx = _compile(kern.py_func, sig, cc, no_fma=True)
            assert f".target sm_{cc[0]}{cc[1]}" in ptx
            _check_kernel(label, ptx, cc, hot, report)
            if name == "update":
                # the engine's own float arithmetic is compiled without contraction (bit-identity with the CPU)
                body = ptx.split(".entry", 1)[1]
                for op in ("add", "mul", "sub"):
                    assert not re.search(rf"\b{op}\.f(32|64)\b", body), (label, op)
    record_property("clock_ptx", "\n".join(report))
    with capsys.disabled():
        print("\n" + "\n".join(report))


@TORCH_UNIT
@pytest.mark.parametrize("cc", CCS, ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
def test_ptx_torch_kernels_compile(torch_launches, fake_device, cc, record_property, capsys):
    """The torch bridge's forward and backward kernels (feed-forward and recurrent) compile for both
    precisions; none spills."""
    from eventsim.torch import _cuda

    fake_device(cc)
    _compile_all([(getattr(_cuda, name + "_k").py_func, sig) for name in TORCH_KERNELS
                  for sig in sorted(torch_launches[name], key=str)], no_fma=False)
    report = []
    for name in TORCH_KERNELS:
        kern = getattr(_cuda, name + "_k")
        for sig in sorted(torch_launches[name], key=str):
            ptx = _compile(kern.py_func, sig, cc, no_fma=False)
            assert f".target sm_{cc[0]}{cc[1]}" in ptx
            _check_kernel(f"torch {name} {sig[0]} {sig[1].dtype}", ptx, cc, True, report)
            if str(sig[1].dtype) == "float32":  # float32 layers compute in float32 (float64 runs at 1/2 to 1/64 rate)
                f64 = sorted(set(re.findall(r"\b(?:add|sub|mul|div|fma|rcp|sqrt|ex2|lg2)(?:\.\w+)*\.f64\b", ptx)))
                assert not f64, (name, cc, f64)
    record_property("torch_ptx", "\n".join(report))
    with capsys.disabled():
        print("\n" + "\n".join(report))


@CLOCK_UNIT
def test_ptx_clock_kernels_run_the_cpu_engine_code(clock_launches, fake_device):
    """The clock kernels compile the CPU engine's own functions as device functions (one definition).

    Functions declared ``inline="always"`` (e.g. the model steps) are inlined by
    Numba before this level; the others get a CUDA device dispatcher each,
    which is what this test lists.
    """
    from numba.core.dispatcher import Dispatcher

    from eventsim.engines import clock_cpu, clock_cuda

    fake_device(CCS[0])
    seen, _ = clock_launches
    sig = sorted(seen["update"], key=str)[0]
    _compile(clock_cuda._kernels()[0].py_func, sig, CCS[0], no_fma=True)
    compiled = {}
    for name, obj in vars(clock_cpu).items():
        if isinstance(obj, Dispatcher):
            dev = getattr(obj, "_CUDATypingContext__dispatcher", None)
            if dev is not None and dev.overloads:
                compiled[name] = len(dev.overloads)
    assert "_update_partition" in compiled and "_neurons" in compiled, sorted(compiled)
