"""Save and restore the complete state of a simulation.

File format (version 2)
-----------------------
========  ==========  =======================================================
offset    size        content
========  ==========  =======================================================
0         8           magic ``b"ESIMCKPT"``
8         4           format version, little-endian uint32 (2)
12        8           payload length in bytes, little-endian uint64
20        32          SHA-256 of the payload
52        n           payload: the pickled :class:`eventsim.Network` (protocol 5)
========  ==========  =======================================================

The payload holds everything needed to continue bit for bit: the network's
structure (populations, sources, projections), the engine's flat arrays
(neuron state, ring buffers, pending spikes, explicit-source pointer), the
step counter, the recorders with everything they recorded, and the seed (the
Poisson generator is counter-based, so the step counter is its only state).

Writes are atomic: the file is written to a temporary file in the same
directory, flushed and fsync-ed, then renamed over the target, so an
existing checkpoint is replaced only by a complete new one.  Loading checks
the magic, version, length and checksum and refuses anything else.

Checkpoints are pickles: load only files you trust.

Version history: 2 -- the clock engine keeps the two receptor columns of
its ring buffer in two blocks (column ``n`` and ``N + n``) instead of side
by side.  3 -- the event engine keeps one 64-byte state row per neuron
(bias current, parameter class and mark included), parameters per class,
and its Poisson emissions in a stream of time windows.  Older versions are
refused with a :class:`CheckpointError` naming the version.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
import tempfile

MAGIC = b"ESIMCKPT"
VERSION = 3
_HEADER = struct.Struct("<8sIQ32s")


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupted or of an unknown version."""


def save(net, path):
    """Write ``net`` to ``path`` atomically (see the module docstring for the format)."""
    path = os.fspath(path)
    payload = pickle.dumps(net, protocol=5)
    header = _HEADER.pack(MAGIC, VERSION, len(payload), hashlib.sha256(payload).digest())
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        try:  # make the rename itself durable
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path):
    """Read a checkpoint written by :func:`save` and return the Network."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(_HEADER.size)
            if len(head) < _HEADER.size:
                raise CheckpointError(f"{path}: truncated checkpoint (header incomplete)")
            magic, version, n, digest = _HEADER.unpack(head)
            if magic != MAGIC:
                raise CheckpointError(f"{path}: not an eventsim checkpoint")
            if version != VERSION:
                raise CheckpointError(f"{path}: checkpoint format version {version}; this eventsim reads "
                                      f"version {VERSION}")
            payload = f.read(n + 1)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    if len(payload) != n:
        raise CheckpointError(f"{path}: truncated or padded checkpoint ({len(payload)} payload bytes, "
                              f"expected {n})")
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"{path}: checksum mismatch, the checkpoint is corrupted")
    return pickle.loads(payload)
