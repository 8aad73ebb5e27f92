"""MPI called from compiled code: the exchange of a rank's interval loop without a return to Python.

:func:`allgather` and :func:`wtime` are Numba intrinsics that call the
MPI library's ``MPI_Allgather`` and ``MPI_Wtime`` through symbols of their
own (``eventsim_mpi_allgather``, ``eventsim_mpi_wtime``), which
:func:`bind` points at the library that mpi4py loaded.  The compiled code
names only these symbols (no address), so it is cached on disk like the
rest of the engine; :func:`bind` must run before it is loaded.

The handles are passed as integers (``MPI._handleof``): the MPICH ABI
(MPICH, Intel MPI, MVAPICH, Cray MPICH), where a communicator and a
datatype are C ``int``.  :func:`available` says whether the running MPI has
that ABI (and :data:`eventsim.config.MPI_NATIVE` allows it); elsewhere the
engine exchanges from Python (one collective per interval through mpi4py).
"""

from __future__ import annotations

import ctypes

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_BOUND = []


def available():
    """Whether the compiled calls serve: :data:`eventsim.config.MPI_NATIVE` and MPI handles that are C ``int``
    (the MPICH ABI)."""
    from mpi4py import MPI

    from .. import config

    return bool(config.MPI_NATIVE) and MPI._sizeof(MPI.Comm) == 4 and MPI._sizeof(MPI.Datatype) == 4


def bind():
    """Point the compiled code's MPI symbols at the loaded MPI library (once per process)."""
    if _BOUND:
        return
    import llvmlite.binding as llb
    from mpi4py import MPI

    lib = ctypes.CDLL(MPI.__file__)  # (its symbols resolve through the MPI library it links)
    llb.add_symbol("eventsim_mpi_allgather", ctypes.cast(lib.MPI_Allgather, ctypes.c_void_p).value)
    llb.add_symbol("eventsim_mpi_wtime", ctypes.cast(lib.MPI_Wtime, ctypes.c_void_p).value)
    _BOUND.append(True)


@intrinsic
def allgather(typingctx, send, recv, comm, dtype):
    """``MPI_Allgather(send, n, dtype, recv, n, dtype, comm)`` with ``n = send.size``; returns the MPI error code
    (int32).  ``comm``, ``dtype``: the handles as int64."""
    sig = types.int32(send, recv, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        s, r, cm, dt = args
        sa = context.make_array(signature.args[0])(context, builder, s)
        ra = context.make_array(signature.args[1])(context, builder, r)
        i32 = ir.IntType(32)
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(i32, [i8p, i32, i32, i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "eventsim_mpi_allgather")
        n = builder.trunc(cgutils.unpack_tuple(builder, sa.shape, 1)[0], i32)
        d = builder.trunc(dt, i32)
        return builder.call(fn, [builder.bitcast(sa.data, i8p), n, d, builder.bitcast(ra.data, i8p), n, d,
                                 builder.trunc(cm, i32)])

    return sig, codegen


@intrinsic
def wtime(typingctx):
    """``MPI_Wtime()``: seconds (float64)."""
    sig = types.float64()

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.DoubleType(), []),
                                            "eventsim_mpi_wtime")
        return builder.call(fn, [])

    return sig, codegen
