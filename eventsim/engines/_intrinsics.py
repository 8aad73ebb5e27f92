"""Low-level helpers for the compiled kernels that Numba does not offer itself."""

from __future__ import annotations

import platform
import sys

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch_row(typingctx, arr, row):
    """Hint the CPU to load the cache line holding ``arr[row, 0]`` (a 2-D array) for reading and
    writing.  No effect on results; an index out of range is harmless (a prefetch never faults)."""
    if not isinstance(arr, types.Array) or arr.ndim != 2 or not isinstance(row, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        aryty, rowty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        r = context.cast(builder, args[1], rowty, types.intp)
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer2(context, builder, ary.data, cgutils.unpack_tuple(builder, ary.shape),
                                        cgutils.unpack_tuple(builder, ary.strides), aryty.layout, [r, zero])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        # the typed-pointer name; LLVM versions with opaque pointers re-mangle it to "llvm.prefetch.p0"
        name = "llvm.prefetch.p0i8"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            name)
        # (address, 1 = write, locality 3 = keep in all cache levels, 1 = data cache)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, row), codegen


def _slot(context, builder, aryty, ary, idx, idxty):
    """Pointer to ``ary[idx]`` of a 1-D array."""
    a = context.make_array(aryty)(context, builder, ary)
    return cgutils.get_item_pointer(context, builder, aryty, a, [context.cast(builder, idx, idxty, types.intp)])


def _is_int64_vector(arr):
    return isinstance(arr, types.Array) and arr.ndim == 1 and arr.dtype == types.int64


@intrinsic
def atomic_add(typingctx, arr, i, v):
    """``arr[i] += v`` as one sequentially consistent atomic operation; returns the old value.

    ``arr`` is a 1-D int64 array.  (Also a full memory barrier: plain reads
    and writes are not moved across it.)"""
    if not _is_int64_vector(arr) or not isinstance(i, types.Integer) or not isinstance(v, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        ptr = _slot(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        val = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, val, "seq_cst")

    return types.int64(arr, i, v), codegen


@intrinsic
def atomic_load(typingctx, arr, i):
    """``arr[i]`` read atomically (sequentially consistent: never cached in a register or hoisted out of a loop)."""
    if not _is_int64_vector(arr) or not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        ptr = _slot(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        return builder.load_atomic(ptr, "seq_cst", 8)

    return types.int64(arr, i), codegen


@intrinsic
def atomic_cas(typingctx, arr, i, expected, new):
    """Atomically: if ``arr[i] == expected`` set it to ``new`` and return True, else return False."""
    if not _is_int64_vector(arr) or not all(isinstance(x, types.Integer) for x in (i, expected, new)):
        return None

    def codegen(context, builder, signature, args):
        ptr = _slot(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        exp = context.cast(builder, args[2], signature.args[2], types.int64)
        val = context.cast(builder, args[3], signature.args[3], types.int64)
        pair = builder.cmpxchg(ptr, exp, val, "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)

    return types.boolean(arr, i, expected, new), codegen


@intrinsic
def yield_thread(typingctx):
    """Let the operating system run another thread (POSIX ``sched_yield``), for spin-waits."""

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen



#: Number of the Linux ``futex`` system call on this machine (None: no futexes here; waits yield instead).
FUTEX_SYSCALL = ({"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}.get(platform.machine().lower())
                 if sys.platform.startswith("linux") else None)
_FUTEX_WAIT_PRIVATE = 128
_FUTEX_WAKE_PRIVATE = 129


def _syscall(builder, args):
    """``syscall(args...)`` (libc), every argument an i64."""
    i64 = ir.IntType(64)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64], var_arg=True), "syscall")
    return builder.call(fn, [i64(a) if isinstance(a, int) else a for a in args])


def _sched_yield(builder):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
    builder.call(fn, [])


@intrinsic
def futex_wait(typingctx, arr, i, expected, timeout_ns):
    """Sleep while the low 32 bits of ``arr[i]`` equal those of ``expected``, at most ``timeout_ns`` ns.

    ``arr`` is a 1-D int64 array.  Returns at once if the value differs, else
    on :func:`futex_wake` on the same element, on the timeout or on a signal;
    the caller checks the value again.  (Linux ``FUTEX_WAIT_PRIVATE``; on
    other systems a ``sched_yield``.)
    """
    if not _is_int64_vector(arr) or not all(isinstance(x, types.Integer) for x in (i, expected, timeout_ns)):
        return None

    def codegen(context, builder, signature, args):
        if FUTEX_SYSCALL is None:
            _sched_yield(builder)
            return context.get_dummy_value()
        i64 = ir.IntType(64)
        ptr = _slot(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        exp = context.cast(builder, args[2], signature.args[2], types.int64)
        tmo = context.cast(builder, args[3], signature.args[3], types.int64)
        ts = cgutils.alloca_once(builder, ir.LiteralStructType([i64, i64]))   # struct timespec
        billion = i64(1_000_000_000)
        builder.store(builder.sdiv(tmo, billion), cgutils.gep_inbounds(builder, ts, 0, 0))
        builder.store(builder.srem(tmo, billion), cgutils.gep_inbounds(builder, ts, 0, 1))
        low = builder.zext(builder.trunc(exp, ir.IntType(32)), i64)
        _syscall(builder, [FUTEX_SYSCALL, builder.ptrtoint(ptr, i64), _FUTEX_WAIT_PRIVATE, low,
                           builder.ptrtoint(ts, i64), 0, 0])
        return context.get_dummy_value()

    return types.void(arr, i, expected, timeout_ns), codegen


@intrinsic
def futex_wake(typingctx, arr, i):
    """Wake every thread sleeping in :func:`futex_wait` on ``arr[i]`` (no effect without futexes)."""
    if not _is_int64_vector(arr) or not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        if FUTEX_SYSCALL is not None:
            ptr = _slot(context, builder, signature.args[0], args[0], args[1], signature.args[1])
            _syscall(builder, [FUTEX_SYSCALL, builder.ptrtoint(ptr, ir.IntType(64)), _FUTEX_WAKE_PRIVATE,
                               0x7FFFFFFF, 0, 0, 0])
        return context.get_dummy_value()

    return types.void(arr, i), codegen
