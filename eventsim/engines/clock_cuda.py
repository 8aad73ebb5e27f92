"""Clock-driven CUDA engine (numba-cuda): the CPU clock engine, one CUDA thread per partition.

Design
------
The GPU runs exactly the algorithm of :mod:`eventsim.engines.clock_cpu`,
compiled from the same source: the kernels below call
:func:`~eventsim.engines.clock_cpu._update_partition` and
:func:`~eventsim.engines.clock_cpu._after_step`, which numba-cuda compiles
as device functions (as it does the model dispatchers
:func:`~eventsim.models.dynamics.neuron_update` and
:func:`~eventsim.models.dynamics.reset_voltage`, and the Philox helpers of
:mod:`eventsim.rng`).  There is no second copy of the dynamics, of the
delivery or of the Poisson generator.

Per step ``s`` two kernels are launched:

1. ``update`` (grid-stride loop, one thread per target partition; the neurons
   are split into many partitions with :meth:`ClockPlan._partition`): the
   thread delivers the pending neuron spikes (by neuron index), the explicit
   source spikes and the Poisson counts (same counter-based Philox stream,
   keyed by seed, step and channel) into the ring columns of *its own*
   partition only, then updates its neurons (decay, input, threshold,
   reset) and compacts its spikers into its slice of ``work.spk``.  No two
   threads write the same memory, so no atomics are needed.
2. ``after`` (one thread): the serial part of the step: advance the
   spike-source pointer, gather the spikes in neuron order into the
   pending list, count synaptic events, append recorded spikes and state
   samples to device buffers.  It also stops the chunk early (a device flag
   read by later launches) when the spike buffer could overflow in the next
   step, exactly where the CPU engine returns early.

All arrays (parameters, state, connectivity, ring buffer, sources,
recording buffers) stay resident on the device across steps and chunks;
recordings are copied to the host in bulk once per chunk
(``config.CHUNK_STEPS`` steps), and the state, ring buffer and pending
spikes once per :meth:`Network.run` (so ``net._plan.state`` always shows
the current state; it is uploaded again at the start of the next run, so
host-side edits between runs, e.g. a checkpoint restore, are honoured).

Numerical effect
----------------
None, in float64.  Every ring cell receives its additions in the same
fixed order as on the CPU (the order is set by the partitioning, and the
CPU result does not depend on the partitioning), the neuron update is the
same sequence of IEEE operations, and the kernels are compiled with FMA
contraction disabled (NVVM contracts ``a*b + c`` into a fused multiply-add
by default, which would change rounding).  Spike trains and recorded state
are therefore bit-identical to the CPU backend for the same seed.  The one
caveat: Poisson channels with an expected count ``rate*dt >= 12`` per step
use the PTRS rejection sampler, whose acceptance test calls ``log`` and
``lgamma`` (CUDA libdevice on the GPU, the C library on the CPU); these are
not guaranteed to round identically, so for such extreme rates a count can
(very rarely) differ.  Counts for ``rate*dt < 12`` use branch-free CDF
inversion against tables computed on the host and are always identical.

The alternative (one thread per synapse with atomics into the ring) would
need integer fixed-point accumulation to be order-independent, which
rounds differently from the CPU engine; it was not chosen.

Under ``NUMBA_ENABLE_CUDASIM=1`` (numba-cuda's simulator) the "device"
arrays are host NumPy copies and the device functions run as the compiled
CPU functions, so the simulator checks the kernels' logic (grid-stride
loops, launch sequence, early stop, bulk copies) at CPU speed.

Over MPI ranks (:mod:`eventsim.engines.plan_mpi`) each rank runs its own
neurons on one GPU: its rank among the ranks of its node, modulo the
node's GPUs (:func:`rank_device`).  After each step the host gathers the
rank's spikers, the ranks exchange them (one ``Allgather``), and the
network's spikers of the step, in ascending network ids, become the
device's pending list: the order in which the single process adds them,
so the results are bit-identical to it.  The exchange is made every step
(not once per interval of the shortest delay as on the CPU), one copy of
the spikers each way per step.  Plastic synapses: the pending list then holds
network ids, which the spike histories map to the rank's neurons
(``Plastic.loc``).

Importing this module does not import :mod:`numba.cuda`; that happens on
first use (:func:`unavailable_reason`, :func:`advance`).
"""

from __future__ import annotations

import importlib.util
import math
import os
import weakref

import numpy as np

from .. import config
from . import clock_cpu as cc
from .plastic import MUTABLE as MUTABLE_PLASTIC
from .plastic import update_traces
from ..models.family import tags as _family_tags
from .progress import progress_bar

#: Maximum number of target partitions (threads doing work) on a real GPU.
#: More partitions = more parallelism, but every partition walks every event
#: and ``row_split`` costs ``8 * (T + 1)`` bytes per sender (``8 * (2T + 1)`` with two receptor blocks).
GPU_PARTITIONS = 2048
#: Upper bound on the memory spent on ``row_split`` when choosing the partition count.
ROW_SPLIT_BYTES = 1 << 30
#: Partitions under the CUDA simulator (each simulated thread is a Python thread).
SIM_PARTITIONS = 8

cuda = None  # numba.cuda, bound on first use (module global so the simulator can swap it)
_KERNELS = None


# ---------------------------------------------------------------------- availability
def simulator_enabled():
    """Whether numba-cuda's simulator is requested (``NUMBA_ENABLE_CUDASIM=1``)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _kernel_families(plan):
    """The tags of the neuron families compiled into the step kernel for ``plan``.

    On a GPU every family: one kernel for every network.  Under numba-cuda's simulator (Numba's own
    ``ENABLE_CUDASIM`` flag, set from ``NUMBA_ENABLE_CUDASIM`` when Numba is imported) the kernel's body
    is Python and the engine functions it calls are compiled for the CPU, per argument types: the
    families present only, as the CPU engine does (the same code for them; an all-family compile there
    costs a minute or more per network signature).
    """
    from numba.core import config as numba_config

    return _family_tags(plan.params.family) if numba_config.ENABLE_CUDASIM else _family_tags()


def unavailable_reason():
    """``None`` if the CUDA backend can run here, else a sentence saying why not.

    Under ``NUMBA_ENABLE_CUDASIM=1`` the simulator counts as usable.
    """
    if importlib.util.find_spec("numba_cuda") is None:
        return ("the package numba-cuda is not installed (pip install numba-cuda, or "
                "pip install 'numba-cuda[cu12]' for the CUDA 12 toolkit wheels)")
    try:
        _bind_cuda()
    except Exception as exc:  # noqa: BLE001 - report any import failure in words
        return f"numba.cuda could not be imported ({type(exc).__name__}: {exc})"
    if simulator_enabled():
        return None
    try:
        ok = cuda.is_available()
    except Exception:  # noqa: BLE001
        ok = False
    if not ok:
        return ("no usable CUDA GPU was found (numba.cuda.is_available() is False: no device, "
                "no driver or no CUDA toolkit); set NUMBA_ENABLE_CUDASIM=1 to run on numba-cuda's "
                "simulator instead")
    return None


def _bind_cuda():
    global cuda
    if cuda is None:
        from numba import cuda as _cuda

        cuda = _cuda
    return cuda


# ---------------------------------------------------------------------- kernels
class _NoFMA:
    """Compile with NVVM's ``-fma=0`` (no contraction of ``a*b + c``) so rounding matches the CPU.

    numba-cuda has no kernel option for this, so ``nvvm.compile_ir`` is wrapped while our kernels
    are launched (they compile lazily on first launch); kernels compiled with ``fastmath=True``
    are left alone.  Explicit ``fma`` calls inside libdevice's math functions are unaffected.
    Checked on PTX for sm_80: the contractions of the engine's own arithmetic disappear.
    """

    def __enter__(self):
        self._nvvm = None
        if simulator_enabled():
            return self
        from numba.cuda.cudadrv import nvvm

        self._nvvm = nvvm
        self._orig = orig = nvvm.compile_ir

        def compile_ir(llvmir, **options):
            if not options.get("fastmath"):
                options["fma"] = False
            return orig(llvmir, **options)

        nvvm.compile_ir = compile_ir
        return self

    def __exit__(self, *exc):
        if self._nvvm is not None:
            self._nvvm.compile_ir = self._orig
        return False


def _kernels():
    global _KERNELS
    if _KERNELS is not None:
        return _KERNELS
    _bind_cuda()

    # ``buf = (ring, stop)``: arrays are passed inside tuples throughout (the simulator would
    # otherwise copy top-level arrays in and out at every launch)
    @cuda.jit
    def update_kernel(s, pr, st, conn, buf, src, work, C, L, pl, fams):
        """Deliver the events stamped ``s`` and update the neurons, one partition per thread (``fams``: the
        tags of every neuron family, :func:`eventsim.models.family.tags`)."""
        ring, stop = buf
        if stop[0] != 0:
            return
        T = work.nsp.shape[0]
        for t in range(cuda.grid(1), T, cuda.gridsize(1)):
            # every kind of work compiled in (one kernel for all networks; plastic synapses: ``pl``, or None)
            cc._update_partition(t, s, pr, st, conn, ring, src, work, C, L, fams, True, True, pl)

    @cuda.jit
    def after_kernel(s, s0, end, pr, st, conn, src, rec, work, n_flag, buf, pl):
        """Serial end of step ``s``; flags an early stop when the spike buffer could overflow."""
        stop = buf[1]
        if cuda.grid(1) != 0 or stop[0] != 0:
            return
        if pl is not None:  # the presynaptic traces after the spikes delivered in this step
            update_traces(0, s, work.pend, 0, work.pend_n[0], pl)
        cc._after_step(s, s0, pr, st, conn, src, rec, work)
        if s + 1 < end and rec.spk_n[0] + n_flag > rec.spk_step.shape[0]:
            stop[0] = 1
            stop[1] = s + 1

    _KERNELS = (update_kernel, after_kernel)
    return _KERNELS


def rank_device(ranks):
    """Select this MPI rank's GPU: its rank among the ranks on its node (``MPI_COMM_TYPE_SHARED``), modulo
    the node's GPUs; returns the device number (collective over ``ranks``)."""
    from mpi4py import MPI

    _bind_cuda()
    node = ranks.comm.Split_type(MPI.COMM_TYPE_SHARED)
    local = node.Get_rank()
    node.Free()
    n = len(cuda.gpus)
    if n == 0:
        raise RuntimeError("backend='cuda': this node has no GPU")
    cuda.select_device(local % n)
    return local % n


# ---------------------------------------------------------------------- memory
def _to_device(a):
    a = np.ascontiguousarray(a)
    if simulator_enabled():
        return a.copy()
    return cuda.to_device(a)


def _zeros(n, dtype):
    if simulator_enabled():
        return np.zeros(n, dtype)
    return cuda.to_device(np.zeros(n, dtype))


def _to_host(d, out=None):
    """Copy a device array to the host (into ``out`` when given)."""
    if simulator_enabled():
        if out is None:
            return d.copy()
        out[...] = d
        return out
    if out is None:
        return d.copy_to_host()
    if out.size:
        d.copy_to_host(out)
    return out


def _upload(d, host):
    """Overwrite device array ``d`` with ``host`` (same shape)."""
    if simulator_enabled():
        d[...] = host
    elif host.size:
        d.copy_to_device(np.ascontiguousarray(host))


def _sync():
    if not simulator_enabled():
        cuda.synchronize()


def n_partitions(n_neurons, n_senders, blocks=1):
    """Number of target partitions (parallel threads) for a network.

    ``blocks``: column blocks of the ring (one per receptor port), each
    adding one ``row_split`` bound per partition and sender.
    """
    if simulator_enabled():
        return max(1, min(n_neurons, SIM_PARTITIONS))
    cap = max(1, (ROW_SPLIT_BYTES // (8 * max(n_senders, 1)) - 1) // blocks)
    return max(1, min(n_neurons, GPU_PARTITIONS, cap))


# ---------------------------------------------------------------------- engine
class ClockCuda:
    """Device-resident copy of a :class:`~eventsim.engines.plan.ClockPlan` and its step loop."""

    def __init__(self, plan):
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"backend='cuda' cannot run: {reason}")
        self.plan = plan
        self._ranks = plan.__dict__.get("_ranks")  # (MPI: the rank's plan, eventsim.engines.plan_mpi)
        if self._ranks is not None:
            self.device = rank_device(self._ranks)
        N = plan.params.pid.size
        n_send = plan._row_ptr.size - 1
        T = n_partitions(N, n_send, plan.C // max(N, 1))
        if plan.T != T:
            plan._partition(T)
        self.T = plan.T
        self.pr = cc.Params(*[_to_device(a) for a in plan.params])
        self.st = cc.State(*[_to_device(a) for a in plan.state])
        self.conn = cc.Conn(*[_to_device(a) for a in plan.conn])
        self.src = cc.Sources(*[_to_device(a) for a in plan.sources])
        self.work = cc.Work(*[_to_device(a) for a in plan.work])
        self._pl_host = None
        self.pl = None
        self._upload_plastic()
        self.ring = _to_device(plan.ring)
        self.spk_flag = _to_device(plan.spk_flag)
        self.rec_var = _to_device(plan.rec_var)
        self.rec_k = _to_device(plan.rec_k)
        self.rec_ptr = _to_device(plan.rec_ptr)
        self.rec_idx = _to_device(plan.rec_idx)
        self.counters = _to_device(plan.counters)
        self._alloc_spike_buffer(plan.spk_buf_step.size)
        self.stop = _zeros(2, np.int64)  # [stop flag, step reached]
        tpb = int(config.CUDA_THREADS_PER_BLOCK)
        self.tpb = tpb
        self.blocks = max(1, min(math.ceil(self.T / tpb), 65535))

    def _alloc_spike_buffer(self, n):
        self.spk_step = _zeros(n, np.int64)
        self.spk_id = _zeros(n, np.int64)

    def _upload_plastic(self):
        """A device copy of the plan's plastic synapses (again when the host's arrays were replaced)."""
        P = self.plan.plastic
        if P is not None and P is not self._pl_host:
            from .plastic import Plastic

            # (over MPI ranks the pending list holds network ids, also when the histories are pushed)
            dev = P if self._ranks is None else P._replace(loc=self.plan._g2l.astype(np.int64))
            self.pl = Plastic(*[_to_device(a) for a in dev])
            self._pl_host = P

    # host -> device for everything the user may have changed between runs
    def _upload_mutable(self):
        plan = self.plan
        self._upload_plastic()
        if self.pl is not None:
            for nm in MUTABLE_PLASTIC:
                _upload(getattr(self.pl, nm), getattr(plan.plastic, nm))
        for d, h in zip(self.st, plan.state):
            _upload(d, h)
        _upload(self.ring, plan.ring)
        _upload(self.src.ss_ptr, plan.sources.ss_ptr)
        _upload(self.work.pend, plan.work.pend)
        _upload(self.work.pmul, plan.work.pmul)
        _upload(self.work.pend_n, plan.work.pend_n)
        _upload(self.work.ext, plan.work.ext)
        _upload(self.counters, plan.counters)

    def _download_mutable(self):
        plan = self.plan
        if self.pl is not None:
            for nm in MUTABLE_PLASTIC:
                _to_host(getattr(self.pl, nm), getattr(plan.plastic, nm))
        for d, h in zip(self.st, plan.state):
            _to_host(d, h)
        _to_host(self.ring, plan.ring)
        _to_host(self.src.ss_ptr, plan.sources.ss_ptr)
        _to_host(self.work.pend, plan.work.pend)
        _to_host(self.work.pmul, plan.work.pmul)
        _to_host(self.work.pend_n, plan.work.pend_n)

    def _chunk(self, s, end):
        """Run steps ``s..end`` on the device; copy results back in bulk; return (reached, host recording)."""
        plan = self.plan
        update_kernel, after_kernel = _kernels()
        if plan.plastic is not self._pl_host:  # the spike histories grew (ClockPlan._chunk_end)
            self._upload_plastic()
        plan._apply_dc(s)
        _upload(self.st.i_dc, plan.state.i_dc)
        _upload(self.work.seg_dc, plan.work.seg_dc)
        _upload(self.work.seg_dcu, plan.work.seg_dcu)
        counts = (end // plan.rec_k) - (s // plan.rec_k)
        sizes = counts * np.diff(plan.rec_ptr)
        off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        rec = cc.Recording(self.spk_flag, self.spk_step, self.spk_id, _zeros(1, np.int64), self.rec_var,
                           self.rec_k, self.rec_ptr, self.rec_idx, _to_device(off[:-1]),
                           _zeros(plan.rec_var.size, np.int64), _zeros(int(off[-1]), np.float64),
                           self.counters)
        _upload(self.stop, np.array([0, end], np.int64))
        self._events0 = int(plan.counters[0])
        grid_u = update_kernel[self.blocks, self.tpb]
        grid_a = after_kernel[1, 1]
        L, C, n_flag, stop = plan.L, plan.C, plan.n_flag, self.stop
        buf = (self.ring, stop)
        fams = _kernel_families(plan)
        events = 0
        with _NoFMA():
            for step in range(s, end):
                grid_u(step, self.pr, self.st, self.conn, buf, self.src, self.work, C, L, self.pl, fams)
                grid_a(step, s, end, self.pr, self.st, self.conn, self.src, rec, self.work, n_flag, buf, self.pl)
                if self._ranks is not None:
                    events += self._exchange(step)
        # ---- bulk copies, once per chunk (the first one synchronises)
        reached = int(_to_host(stop)[1])
        _to_host(self.work.ext, plan.work.ext)
        _upload(self.work.ext, np.zeros_like(plan.work.ext))
        plan.counters[0] = _to_host(self.counters)[0]
        if self._ranks is not None:  # the events onto this rank's neurons, counted at the exchanges
            plan.counters[0] = self._events0 + events
        self._download_mutable()
        m = int(_to_host(rec.spk_n)[0])
        empty = np.zeros(0, np.int64)
        spk_id = _to_host(rec.spk_id[:m]) if m else empty
        if self._ranks is not None:  # recorded in local indices: network ids, as the CPU ranks record them
            mask = (1 << cc.MULT_SHIFT) - 1  # (the multiplicity above MULT_SHIFT stays)
            spk_id = plan._gid[spk_id & mask] | (spk_id & ~mask)
        host = cc.Recording(None, _to_host(rec.spk_step[:m]) if m else empty, spk_id, np.array([m], np.int64),
                            None, None, None, None, off[:-1], _to_host(rec.rec_cnt), _to_host(rec.rec_buf),
                            None)
        return reached, host

    def _exchange(self, step):
        """MPI: the ranks' spikers of ``step`` become every rank's pending list (network ids, ascending); every
        rank stops where one must (its spike buffer could overflow).  Returns the step's synaptic events onto
        this rank's neurons."""
        plan = self.plan
        n = int(_to_host(self.work.pend_n)[0])
        local = _to_host(self.work.pend[:n]) if n else np.zeros(0, np.int64)
        lmul = _to_host(self.work.pmul[:n]).astype(np.int64) if n else np.zeros(0, np.int64)
        stop = _to_host(self.stop)
        from .clock_mpi import MULT_BITS

        out = (plan._gid[local] << MULT_BITS) | (lmul - 1)  # (the exchanged values, eventsim.engines.clock_mpi)
        ids, mul, _, stop_any = plan._exchange(out, n, np.array([n], np.int64), 1, bool(stop[0]))
        if ids.size:
            _upload(self.work.pend[: ids.size], ids)
            _upload(self.work.pmul[: ids.size], mul)
        _upload(self.work.pend_n, np.array([ids.size], np.int64))
        if stop_any and not stop[0]:  # another rank stops after this step: so does this one
            _upload(self.stop, np.array([1, step + 1], np.int64))
        return int((plan.conn.outdeg[ids] * mul).sum())

    def advance(self, n_steps, progress=None):
        """Simulate ``n_steps`` steps; same contract as :meth:`ClockPlan.advance` (numerical guard included)."""
        plan = self.plan
        net = plan.net
        self._upload_mutable()
        target = net._step + n_steps
        bar = progress_bar(net, n_steps, progress)
        try:
            while net._step < target:
                s = net._step
                end = plan._chunk_end(s, target)
                # a transaction as on the CPU: the host copy is current at chunk boundaries; after an
                # undone chunk the device is behind it and gets it again at the start of the next run
                reached = plan._transaction(self._chunk, s, end)
                if reached is None:
                    # replay the chunk step by step to stop at the last finite state
                    self._upload_mutable()
                    while True:
                        plan._transaction(self._chunk, net._step, net._step + 1, single=True)
                if bar is not None:
                    bar.update(reached - s)
                if reached < end:  # the spike buffer could have overflowed: grow it
                    plan._grow_spike_buffer()
                    self._alloc_spike_buffer(plan.spk_buf_step.size)
        finally:
            if bar is not None:
                bar.close()

    def memory_bytes(self):
        """Bytes held by the resident device arrays (excluding per-chunk recording buffers)."""
        arrays = [*self.pr, *self.st, *self.conn, *self.src, *self.work, self.ring, self.spk_flag, self.rec_var,
                  self.rec_k, self.rec_ptr, self.rec_idx, self.counters, self.spk_step, self.spk_id]
        return int(sum(a.nbytes for a in arrays))


# Device copies live beside their plan, not in it, so pickling a Network (checkpoints) never
# touches device memory; a loaded plan gets a fresh device copy from its host arrays.
_ENGINES = weakref.WeakKeyDictionary()


def engine_of(plan):
    """The :class:`ClockCuda` of ``plan`` (created, and the plan uploaded, on first call)."""
    eng = _ENGINES.get(plan)
    revision = plan.__dict__.get("revision", 0)  # (ClockPlan.refresh counts the changes between runs)
    if eng is None or eng.revision != revision:
        eng = _ENGINES[plan] = ClockCuda(plan)
        eng.revision = revision
    return eng


def advance(plan, n_steps, progress=None):
    """Advance ``plan`` (a :class:`~eventsim.engines.plan.ClockPlan`) by ``n_steps`` on the GPU."""
    engine_of(plan).advance(n_steps, progress)
    _sync()
