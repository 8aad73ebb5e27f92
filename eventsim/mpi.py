"""Running one network over MPI ranks (mpi4py): ownership of neurons, collectives, failures.

Under ``mpiexec -n R python script.py`` every rank runs the same script;
``es.Network(...)`` finds ``MPI.COMM_WORLD`` by itself (``comm=`` takes
another communicator, ``comm=None`` keeps every rank on its own).  Outside
MPI nothing here is imported and ``net.comm`` is None.

Ownership
---------
Each population of ``n`` neurons is cut into ``R`` contiguous blocks of
``n // R`` or ``n // R + 1`` neurons: rank ``r`` owns the neurons at
positions ``r * n // R .. (r + 1) * n // R - 1`` of every population
(:meth:`Ranks.owner`).  A rank keeps the state, the ring-buffer columns
and the incoming synapses of the neurons it owns, and draws only their
connections (:func:`eventsim.connectivity.draw`: connection rules draw
target block by target block from counter-based streams, so the network
is the same for any number of ranks).  Source channels (Poisson, explicit
spikes) exist on every rank; a rank draws or delivers a channel's spikes
only into its own targets.

Failures
--------
Every rank builds the same network: a digest of the build calls is
compared at the first run, and a rank that built something else stops
every rank with a ValueError.  Errors that can happen on one rank only
inside a run (the NaN guard, a recorder that cannot write) are agreed on
by all ranks, which raise together.  Any other exception that leaves the
script on one rank ends every rank: the rank prints its traceback and
calls ``MPI_Abort`` (non-zero exit), so a job never hangs.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

import numpy as np

#: Environment variables that MPI launchers set to the job's number of ranks (MPICH/Hydra, Intel MPI,
#: Open MPI, MVAPICH): a process that sees one of them above 1 runs under mpiexec.
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")


def _launched():
    """Whether this process was started by an MPI launcher with more than one rank."""
    for name in _SIZE_VARS:
        v = os.environ.get(name, "")
        if v.isdigit() and int(v) > 1:
            return True
    mpi = sys.modules.get("mpi4py.MPI")  # (a script that imported mpi4py itself)
    return mpi is not None and mpi.Is_initialized() and mpi.COMM_WORLD.Get_size() > 1


def resolve(comm):
    """The communicator a Network uses: ``comm="auto"`` -> COMM_WORLD under mpiexec, else None."""
    if comm is None:
        return None
    if isinstance(comm, str):
        if comm != "auto":
            raise ValueError(f"comm={comm!r} must be 'auto', None or an mpi4py communicator")
        if not _launched():
            return None
        try:
            from mpi4py import MPI
        except ImportError:
            raise ImportError("this process runs under an MPI launcher but mpi4py is not installed: "
                              "pip install 'eventsim[mpi]' (or pass comm=None to run every rank on its own)") from None
        return MPI.COMM_WORLD
    if not (hasattr(comm, "Get_rank") and hasattr(comm, "Get_size") and hasattr(comm, "Allgatherv")):
        raise TypeError(f"comm must be an mpi4py communicator (e.g. MPI.COMM_WORLD), got {type(comm).__name__}")
    return comm


_HOOKED = False
#: Seconds between printing an uncaught exception and ``MPI_Abort`` (s).
ABORT_DELAY = 2.0


def _abort_on_uncaught():
    """Make an exception that leaves the script on one rank end every rank (MPI_Abort) instead of a hang."""
    global _HOOKED
    if _HOOKED:
        return
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        try:
            sys.stderr.flush()
            from mpi4py import MPI

            if MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1:
                rank = MPI.COMM_WORLD.Get_rank()
                sys.stderr.write(f"eventsim: {kind.__name__} on MPI rank {rank}: stopping every rank\n")
                sys.stderr.flush()
                time.sleep(ABORT_DELAY)  # (the launcher forwards the message before the job is torn down)
                MPI.COMM_WORLD.Abort(1)
        except Exception:  # noqa: BLE001 - the original exception has been printed
            pass

    sys.excepthook = hook
    _HOOKED = True


class RankError(RuntimeError):
    """An error raised on another MPI rank (every rank raises it together; the message names the rank)."""


class Ranks:
    """This process's place in a distributed network: communicator, rank, ownership, collectives."""

    def __init__(self, comm):
        self.comm = comm
        self.rank = int(comm.Get_rank())
        self.size = int(comm.Get_size())
        self.digest = hashlib.sha256()
        _abort_on_uncaught()

    # ---------------------------------------------------------------- ownership
    def owner(self, pops, ids):
        """Rank owning each of the neuron ``ids`` (int64), populations ``pops`` as (offset, n) pairs."""
        ids = np.asarray(ids, np.int64)
        offsets = np.array([o for o, _ in pops], np.int64)
        sizes = np.array([n for _, n in pops], np.int64)
        p = np.searchsorted(offsets, ids, side="right") - 1
        q = ids - offsets[p]
        return ((q + 1) * self.size - 1) // sizes[p]

    def owned_range(self, n, rank=None):
        """Positions ``(a, b)`` of the neurons of a population of ``n`` that ``rank`` (default: this one) owns."""
        r = self.rank if rank is None else rank
        return (r * n) // self.size, ((r + 1) * n) // self.size

    # ---------------------------------------------------------------- build digest
    def note(self, *parts):
        """Add a build call to the digest compared across ranks at the first run."""
        for p in parts:
            if isinstance(p, np.ndarray):
                self.digest.update(str(p.dtype).encode() + str(p.shape).encode())
                self.digest.update(np.ascontiguousarray(p).tobytes())
            else:
                self.digest.update(repr(p).encode())
            self.digest.update(b"|")

    def check_same_build(self):
        """Every rank must have made the same build calls (ValueError on every rank otherwise)."""
        mine = self.digest.digest()
        every = self.comm.allgather(mine)
        if any(d != every[0] for d in every):
            groups = {}
            for r, d in enumerate(every):
                groups.setdefault(d, []).append(r)
            parts = "; ".join(f"ranks {', '.join(map(str, rs))}" for rs in groups.values())
            raise ValueError("the MPI ranks built different networks (populations, sources, connections or "
                             f"recorders differ: {parts}); every rank must run the same build calls with the "
                             "same arguments")

    # ---------------------------------------------------------------- collectives
    def agree(self, fn, *args, undo=None):
        """Run ``fn(*args)`` on every rank; if it raised on any rank, every rank raises.

        The rank that failed re-raises its own exception; the others raise
        :class:`RankError` (or the same type, when it can be built from a
        message) naming the rank and the message, after ``undo(result)``
        undid what ``fn`` did on them.
        """
        exc = None
        try:
            out = fn(*args)
        except Exception as e:  # noqa: BLE001 - shared with the other ranks, then re-raised
            exc = e
        report = None if exc is None else (type(exc).__name__, str(exc))
        every = self.comm.allgather(report)
        if exc is not None:
            raise exc
        bad = [(r, rep) for r, rep in enumerate(every) if rep is not None]
        if bad and undo is not None:
            undo(out)
        if bad:
            r, (kind, msg) = bad[0]
            text = f"on MPI rank {r}: {kind}: {msg}"
            cls = {"FloatingPointError": FloatingPointError, "ValueError": ValueError, "OSError": RankError,
                   "MemoryError": MemoryError}.get(kind, RankError)
            raise cls(text)
        return out

    def allsum(self, x):
        """Sum of an int64 array over the ranks."""
        from mpi4py import MPI

        x = np.ascontiguousarray(x, np.int64)
        out = np.empty_like(x)
        self.comm.Allreduce(x, out, op=MPI.SUM)
        return out

    def all_true(self, flag):
        """Whether ``flag`` holds on every rank."""
        return bool(self.allsum(np.array([0 if flag else 1]))[0] == 0)

    def allgatherv(self, local, dtype):
        """The ranks' 1-D arrays ``local`` concatenated in rank order, on every rank, and the counts."""
        local = np.ascontiguousarray(local, dtype)
        counts = np.empty(self.size, np.int64)
        self.comm.Allgather(np.array([local.size], np.int64), counts)
        out = np.empty(int(counts.sum()), dtype)
        from mpi4py import MPI

        mpitype = MPI._typedict[np.dtype(dtype).char]
        self.comm.Allgatherv([local, mpitype], [out, (counts, None), mpitype])
        return out, counts
