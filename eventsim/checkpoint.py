"""Save and restore the complete state of a simulation, without running code from the file.

A checkpoint is data only: a versioned JSON document describing the network
(the arguments of its public constructors) and a region of raw little-endian
arrays.  Loading rebuilds the network through :class:`eventsim.Network`'s
own methods, so every parameter is validated again, builds the engine the
normal way, and copies the stored state arrays into it after checking their
names, dtypes, shapes and index ranges.  Nothing read from the file is ever
unpickled, evaluated or used as a class or attribute name.

File format (version 4)
-----------------------
========  ==========  =======================================================
offset    size        content
========  ==========  =======================================================
0         8           magic ``b"ESIMCKPT"``
8         4           format version, little-endian uint32 (4)
12        4           flags, uint32: bit 0 set when the file carries an HMAC
16        8           ``J``: length of the document in bytes, uint64
24        8           ``A``: length of the array region in bytes, uint64
32        32          SHA-256 of bytes 0..31, the document and the arrays
64        32          HMAC-SHA256 of the same bytes under the key given to
                      :func:`save` (zeros without a key)
96        J           the document: UTF-8 JSON (below)
96 + J    A           the arrays, each starting at a multiple of 64 bytes
========  ==========  =======================================================

The file is exactly ``96 + J + A`` bytes long; every length and offset is
checked against the file's size before anything is allocated, and the
document is at most 64 MiB.

The document is an object with ``"format": "eventsim-checkpoint"``,
``"version": 4``, ``"arrays"`` (name -> ``{"dtype", "shape", "offset"}``,
the offset relative to the array region, the dtype one of the little-endian
bool, integer and float types) and the network: ``"network"`` (``dt`` in
ms, ``seed``, ``backend``, ``engine``, ``weight_dtype``, ``dtype``),
``"populations"`` (model name among ``LIF``, ``IF``, ``ALIF``, its
parameters, ``v_init`` in mV, label), ``"sources"`` (Poisson rates in Hz;
spike-source channels and times in ms), ``"dc_sources"`` (amplitudes in pA,
start and stop in steps, or ms for the event engine), ``"projections"``
(source and target groups as network-wide indices, then the stored
connections, weights and delays, rebuilt as :class:`eventsim.FromArrays`),
``"recorders"`` (kind, group, variable, interval in steps, and the in-memory
rows or the streaming file's path, recording id and committed rows),
``"step"``, ``"time"`` (ms) and ``"plan"``: null before the first run,
else the engine's state arrays (clock engine: neuron state, ring buffer,
pending spikes, spike-source pointer, event counters and the size of the
spike buffer; event engine: state rows, thresholds, Poisson stream and
counts, event heap, crossing heap, pending marks, counters, sampling
clock, and the retired delay groups that spikes on their way still use
after their emitter's connections changed; files without them have none).
Arrays are referenced from the document as ``{"array": name}``.

Why not npz, HDF5 or pickle: a pickle runs code while it is read, and a
checksum does not help (whoever crafts the file recomputes it).  npz and
HDF5 read without pickle, but their own headers give sizes that are only
known to be consistent with the file after parsing them; this layout has
one header whose lengths are checked against the file size first, and one
byte range to hash and authenticate.  The arrays stay readable from any
language: the document gives each one's dtype, shape and offset.

Integrity and authenticity
--------------------------
The SHA-256 detects corruption (a flipped bit, a truncated copy).  It does
not prove where a file came from.  For that, pass a secret ``key`` (bytes)
to :func:`save` and the same key to :func:`load`: the file then carries an
HMAC-SHA256, and a load with a key refuses a file without one or with one
made under another key.  Without a key a file is still only data: a crafted
checkpoint can describe a network you did not build, never run code.

Writes are atomic: the file is written to a temporary file
``.ckpt-<host>-<pid>-<random>.tmp`` in the same directory, flushed and
fsync-ed, then renamed over the target, so an existing checkpoint is
replaced only by a complete new one.  A save that is killed leaves its
temporary file behind; the next save into that directory removes such
files when their writer is gone (this host, a process id that no longer
exists) or, for other hosts and for the temporary files of earlier eventsim
versions (``.ckpt-`` and 8 characters), when they have not been modified for
10 minutes.  No other file is touched.

Version history: 2 -- the clock engine keeps the two receptor columns of
its ring buffer in two blocks (column ``n`` and ``N + n``) instead of side
by side.  3 -- the event engine keeps one 64-byte state row per neuron
(bias current, parameter class and mark included), parameters per class,
and its Poisson emissions in a stream of time windows.  Versions 2 and 3
were pickles.  4 -- data only (this layout).  Version 3 files are refused
with a :class:`CheckpointError` unless loaded with ``allow_pickle=True``,
which unpickles them (running whatever code they hold: only for files you
trust) with a :class:`LegacyCheckpointWarning`; save them again to convert
them.  Older versions are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import pickle
import re
import socket
import stat
import struct
import tempfile
import time
import warnings

import numpy as np

MAGIC = b"ESIMCKPT"
VERSION = 4
#: The pickled versions that ``allow_pickle=True`` still reads.
LEGACY_VERSIONS = (3,)
FLAG_HMAC = 1
_HEADER = struct.Struct("<8sIIQQ32s32s")
_HASHED = 32  # bytes of the header covered by the digests
_LEGACY_HEADER = struct.Struct("<8sIQ32s")
_ALIGN = 64
_MAX_DOCUMENT = 64 << 20
_READ_BLOCK = 1 << 24
_DTYPES = frozenset(np.dtype(t).str for t in ("?", "i1", "i2", "<i4", "<i8", "u1", "<u2", "<u4", "<u8",
                                              "<f4", "<f8"))
#: Temporary files of a save not modified for this long are stale when their writer cannot be checked (s).
STALE_SECONDS = 600.0
_TEMP = re.compile(r"\.ckpt-([A-Za-z0-9]{1,32})-([0-9]{1,10})-[A-Za-z0-9_]{1,16}\.tmp\Z")
_LEGACY_TEMP = re.compile(r"\.ckpt-[a-z0-9_]{8}\Z")


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupted, foreign, unauthentic or of an unknown version."""


class LegacyCheckpointWarning(UserWarning):
    """A pickled checkpoint of an earlier format was loaded (``allow_pickle=True``)."""


# ============================================================================ keys, names
def _check_key(key):
    if key is None:
        return None
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise TypeError(f"key={key!r} must be bytes (a secret such as os.urandom(32)) or None")
    key = bytes(key)
    if not key:
        raise ValueError("key=b'' must not be empty; use None for no authentication")
    return key


def _host():
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _pid_alive(pid):
    if pid <= 0:
        return True  # never signal a process group; keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_temporaries(directory, now=None):
    """Remove temporary files that killed saves left in ``directory``; return their names.

    Only eventsim's own names are considered: ``.ckpt-<host>-<pid>-<random>.tmp``
    (removed when ``host`` is this host and process ``pid`` no longer
    exists, or, for another host, when unmodified for ``STALE_SECONDS``)
    and the 8-character ``.ckpt-*`` names of earlier versions (when
    unmodified for ``STALE_SECONDS``).  Only regular files are removed.
    """
    now = time.time() if now is None else now
    host, removed = _host(), []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.startswith(".ckpt-"):
            continue
        m = _TEMP.match(name)
        if m is None and _LEGACY_TEMP.match(name) is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if m is not None and m.group(1) == host:
            pid = int(m.group(2))
            stale = pid != os.getpid() and not _pid_alive(pid)
        else:
            stale = now - st.st_mtime > STALE_SECONDS
        if stale:
            try:
                os.unlink(entry.path)
                removed.append(name)
            except OSError:
                pass
    return removed


# ============================================================================ encoding
class _Writer:
    """Collects the arrays of a document and lays them out in the array region."""

    def __init__(self):
        self.table = {}
        self.arrays = []
        self.size = 0

    def ref(self, name, a):
        a = np.asarray(a)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        a = np.ascontiguousarray(a)
        if a.dtype.str not in _DTYPES:
            raise CheckpointError(f"cannot save {name}: arrays of dtype {a.dtype} are not part of the format")
        if name in self.table:
            raise AssertionError(f"array {name} stored twice")
        self.size = -(-self.size // _ALIGN) * _ALIGN
        self.table[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": self.size}
        self.arrays.append((self.size, a))
        self.size += a.nbytes
        return {"array": name}


def _value(w, name, v):
    """A model parameter, initial value or scalar: JSON number, string, null or array reference."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (tuple, list)):
        return {"tuple": [_value(w, f"{name}.{k}", x) for k, x in enumerate(v)]}
    if isinstance(v, np.ndarray):
        return w.ref(name, v)
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    return float(v)


def _group(w, name, view):
    return {"kind": view.kind, "ids": w.ref(name, view.ids), "label": view.label}


def _model_types():
    """``{name: class}`` of every model of a registered neuron family (:mod:`eventsim.models.family`)."""
    from .models.family import model_classes

    return model_classes()


def _encode(net):
    """The document and the arrays of ``net`` (nothing is written)."""
    from dataclasses import fields

    from .record import SpikeRecorder, WeightRecorder, _FileStore, _MemoryStore

    w = _Writer()
    models = _model_types()
    doc = {"format": "eventsim-checkpoint", "version": VERSION}
    from . import __version__

    doc["eventsim"] = __version__
    doc["network"] = {"dt": net.dt, "seed": net.seed, "backend": net.backend, "engine": net.engine,
                      "weight_dtype": net.weight_dtype.name, "dtype": net.dtype.name}
    pops = []
    for j, pop in enumerate(net.populations):
        name = type(pop.model).__name__
        if models.get(name) is not type(pop.model):
            raise CheckpointError(f"cannot save population {j}: its model is a {type(pop.model).__qualname__}, "
                                  f"not one of {', '.join(models)}")
        params = {f.name: _value(w, f"pop{j}.{f.name}", getattr(pop.model, f.name)) for f in fields(pop.model)}
        pops.append({"n": pop.n, "model": name, "params": params, "v_init": w.ref(f"pop{j}.v_init", pop.v_init),
                     "label": pop.label})
    doc["populations"] = pops
    sources = []
    for j, src in enumerate(net.sources):
        if hasattr(src, "rate"):
            d = {"kind": "poisson", "n": len(src), "rate": w.ref(f"src{j}.rate", src._rows[0])}
            if src._steps.size > 1:  # the rate schedule (scheduled changes and those set between runs)
                d.update(rate_steps=[int(k) for k in src._steps[1:]],
                         rate_values=w.ref(f"src{j}.rate_values", np.ascontiguousarray(src._rows[1:])))
            sources.append(d)
        else:
            sources.append({"kind": "spike_source", "n": len(src),
                            "senders": w.ref(f"src{j}.senders", src.spike_senders),
                            "times": w.ref(f"src{j}.times", src.spike_times)})
    doc["sources"] = sources
    dcs = []
    for j, src in enumerate(net.dc_sources):
        d = {"n": len(src), "amplitude": w.ref(f"dc{j}.amplitude", src._rows[0])}
        if src._steps.size > 1:  # the amplitude schedule (step currents and amplitudes set between runs)
            d.update(amplitude_steps=[int(k) for k in src._steps[1:]],
                     amplitude_values=w.ref(f"dc{j}.amplitude_values", np.ascontiguousarray(src._rows[1:])))
        if src.delay:
            d["delay"] = src.delay
        if net.engine == "event":
            d.update(start=src.start_time, stop=src.stop_time if math.isfinite(src.stop_time) else None)
        else:
            d.update(start_step=int(src.start_step),
                     stop_step=None if src.stop_step == np.iinfo(np.int64).max else int(src.stop_step))
        dcs.append(d)
    doc["dc_sources"] = dcs
    projs = []
    for j, p in enumerate(net.projections):
        d = {"pre": _group(w, f"proj{j}.source", p.source), "post": _group(w, f"proj{j}.target", p.target),
             "pre_idx": w.ref(f"proj{j}.pre", p.pre), "post_idx": w.ref(f"proj{j}.post", p.post),
             "weight": w.ref(f"proj{j}.weight", p.weight)}
        if p.delay_steps is not None:
            d["delay_steps"] = w.ref(f"proj{j}.delay_steps", p.delay_steps)
        if getattr(p, "delay", None) is not None:
            d["delay"] = w.ref(f"proj{j}.delay", p.delay)
        if getattr(p, "_positions", None) is not None:  # (MPI, FromArrays) places in the whole projection
            d.update(positions=w.ref(f"proj{j}.positions", p._positions), n_all=int(p._n_all))
        if p.receptor is not None:
            d["receptor"] = int(p.receptor)
        if getattr(p, "synapse", None) is not None:
            d["synapse"] = {"rule": type(p.synapse).__name__,
                            "params": {f.name: getattr(p.synapse, f.name) for f in fields(p.synapse)},
                            "generation": int(p.generation)}
        projs.append(d)
    doc["projections"] = projs
    recs = []
    for j, r in enumerate(net.recorders):
        kind = "spikes" if isinstance(r, SpikeRecorder) else "weights" if isinstance(r, WeightRecorder) else "state"
        d = {"kind": kind, "group": _group(w, f"rec{j}.group", r.group)}
        if d["kind"] == "state":
            d.update(variable=r.variable, interval_steps=int(r.interval_steps))
        if d["kind"] == "weights":
            d.update(projection=net.projections.index(r.projection), index=w.ref(f"rec{j}.index", r.index),
                     interval_steps=int(r.interval_steps))
        store = r._store
        if isinstance(store, _FileStore):
            d["store"] = {"type": "file", "path": store.path, "fmt": store.fmt, "recording_id": store.recording_id,
                          "rows": int(store.rows), "step": int(store.step),
                          "columns": {nm: [np.dtype(dt).str, [int(x) for x in shape]]
                                      for nm, (dt, shape) in store.columns.items()}}
        elif isinstance(store, _MemoryStore):
            d["store"] = {"type": "memory",
                          "columns": {nm: w.ref(f"rec{j}.{nm}", store.read(nm, r._empty(nm))) for nm in store._names}}
        else:
            raise CheckpointError(f"cannot save recorder {j}: unknown storage {type(store).__name__}")
        recs.append(d)
    doc["recorders"] = recs
    doc["step"] = int(net._step)
    doc["time"] = float(net._time)
    doc["plan"] = None if net._plan is None else _encode_plan(w, net)
    doc["arrays"] = w.table
    return doc, w


# ---------------------------------------------------------------------------- engine state
def _clock_arrays(plan):
    """Name -> array of every array of a clock plan that a run changes and the next run reads."""
    out = {f"state.{f}": a for f, a in zip(plan.state._fields, plan.state)}
    out.update({"ring": plan.ring, "pend": plan.pend, "pmul": plan.pmul, "pend_n": plan.pend_n,
                "ss_ptr": plan.sources.ss_ptr, "counters": plan.counters})
    P = getattr(plan, "plastic", None)
    if P is not None:  # plastic synapses: weights, traces (copy 0 of the per-partition ones) and spike histories
        from .engines.plastic import MUTABLE

        out.update({f"plastic.{nm}": getattr(P, nm)[0] if nm in ("kp", "tl") else getattr(P, nm)
                    for nm in MUTABLE})
    return out


#: Arrays of an event plan that a run changes and the next run reads (fields of its NamedTuples).
_EVENT_FIELDS = {"SRC": ("count", "ptr", "nxt", "st", "sc", "spos", "win"), "X": None, "M": None}
#: Of those, the ones whose length changes while running (replaced, not copied into).
_EVENT_RESIZED = ("SRC.st", "SRC.sc", "Q.0", "Q.1", "Q.2")
#: The retired delay groups of an event plan (spikes on their way through connections that have
#: changed since they were emitted; see ``EventPlan._carry``); absent from older files (none then).
_EVENT_RETIRED = ("ret.em", "ret.size", "ret.delay", "ret.tgt", "ret.w", "ret.port")


def _event_arrays(plan):
    out = {"SS": plan.SS, "TH": plan.TH, "counters": plan.counters, "sample_t": plan.sample_t}
    for tup, names in _EVENT_FIELDS.items():
        t = getattr(plan, tup)
        for f in names or t._fields:
            out[f"{tup}.{f}"] = getattr(t, f)
    for k, q in enumerate(plan.Q):
        out[f"Q.{k}"] = q
    out.update(zip(_EVENT_RETIRED, plan.retired()))
    return out


def _encode_plan(w, net):
    plan = net._plan
    if net.engine == "event":
        arrays = _event_arrays(plan)
        extra = {"qn": int(plan.qn)}
    else:
        arrays = _clock_arrays(plan)
        extra = {"spike_buffer": int(plan.spk_buf_step.size)}
    return {"engine": net.engine, "arrays": {nm: w.ref(f"plan.{nm}", a) for nm, a in arrays.items()}, **extra}


# ============================================================================ writing
def save(net, path, key=None, mpi=None):
    """Write ``net`` to ``path`` atomically (format in the module docstring).

    Parameters
    ----------
    net : Network
    path : str or path-like
        The checkpoint file; its directory must exist.  An existing file is
        replaced only once the new one is complete.
    key : bytes, optional
        Secret key: the file then carries an HMAC-SHA256 that
        :func:`load` with the same key verifies.
    mpi : dict, optional
        Over MPI ranks (:meth:`eventsim.Network.save`): ``{"rank", "n_ranks", "id"}``, stored in the
        document of this rank's file (``id`` is the same on every rank's file of one checkpoint).
    """
    key = _check_key(key)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"path={path!r} is a directory; give a file path")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"path={path!r}: the directory {directory!r} does not exist")
    doc, w = _encode(net)
    if mpi is not None:
        doc["mpi"] = dict(mpi)
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")
    size = -(-w.size // _ALIGN) * _ALIGN if w.size else 0
    head = _HEADER.pack(MAGIC, VERSION, FLAG_HMAC if key else 0, len(text), size, b"", b"")[:_HASHED]
    remove_stale_temporaries(directory)
    fd, tmp = tempfile.mkstemp(prefix=f".ckpt-{_host()}-{os.getpid()}-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            digest = hashlib.sha256(head)
            mac = hmac.new(key, head, hashlib.sha256) if key else None

            def put(b):
                f.write(b)
                digest.update(b)
                if mac is not None:
                    mac.update(b)

            f.write(bytes(_HEADER.size))
            put(text)
            at = 0
            for offset, a in w.arrays:
                if offset > at:
                    put(bytes(offset - at))
                if a.nbytes:
                    put(memoryview(a.reshape(-1)).cast("B"))
                at = offset + a.nbytes
            if size > at:
                put(bytes(size - at))
            f.seek(0)
            f.write(head + digest.digest() + (mac.digest() if mac is not None else bytes(32)))
            f.flush()
            os.fsync(f.fileno())
        from .record import _umask_mode

        os.chmod(tmp, _umask_mode())  # the user's umask, not mkstemp's 0600
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


# ============================================================================ reading
def _open(path):
    """A file object of the regular file ``path`` and its size; CheckpointError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise CheckpointError(f"{path}: is {kind}, not a checkpoint file")
    return os.fdopen(fd, "rb"), st.st_size


def _read_exact(f, n, path, what):
    try:
        b = f.read(n)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(b) != n:
        raise CheckpointError(f"{path}: truncated checkpoint ({what} incomplete)")
    return b


def load(path, key=None, allow_pickle=False, cls=None):
    """Read a checkpoint written by :func:`save` and return the Network.

    Parameters
    ----------
    path : str or path-like
    key : bytes, optional
        The key given to :func:`save`: the file must carry a valid HMAC
        under it (CheckpointError otherwise).
    allow_pickle : bool
        Also read the pickled checkpoints of format version 3, with a
        :class:`LegacyCheckpointWarning`.  Unpickling runs whatever code
        the file holds: only for files you trust.
    cls : type, optional
        The Network class to build (default :class:`eventsim.Network`).

    Raises
    ------
    CheckpointError
        The file is missing, a directory, truncated, corrupted, not a
        checkpoint, of another version, fails authentication or describes
        an invalid network.
    """
    from .network import Network

    key = _check_key(key)
    if not isinstance(allow_pickle, bool):
        raise TypeError(f"allow_pickle={allow_pickle!r} must be True or False")
    cls = Network if cls is None else cls
    path = os.fspath(path)
    from .mpi import resolve

    comm = resolve("auto")
    if comm is not None and comm.Get_size() > 1:  # this rank's file of a checkpoint saved over MPI ranks
        return _load_ranks(comm, path, key, cls)
    return _load_file(path, key, allow_pickle, cls)


def _load_ranks(comm, path, key, cls):
    """Every rank reads its own file (:func:`eventsim.record.rank_path`); all agree, then rebuild together."""
    from .mpi import Ranks
    from .record import rank_path

    ranks = Ranks(comm)
    mine = rank_path(path, ranks.rank, ranks.size)

    def read():
        if not os.path.exists(mine) and os.path.exists(path):
            raise CheckpointError(f"{path}: saved by one process; a network run over {ranks.size} MPI ranks loads "
                                  f"the per-rank files of a checkpoint saved on {ranks.size} ranks")
        doc, region = _load_file(mpi_path=mine, key=key)
        m = doc.get("mpi")
        if not isinstance(m, dict) or m.get("n_ranks") != ranks.size or m.get("rank") != ranks.rank:
            raise CheckpointError(f"{mine}: not the file of rank {ranks.rank} of a checkpoint saved on "
                                  f"{ranks.size} ranks (it holds {m!r})")
        return doc, region

    doc, region = ranks.agree(read)
    ids = comm.allgather(doc["mpi"].get("id"))
    if any(i != ids[0] for i in ids):
        raise CheckpointError(f"{path}: the ranks' files belong to different checkpoints (a save was interrupted?)")
    try:
        net = _Decoder(doc, region, net_cls=cls).network()
    except CheckpointError as exc:
        raise CheckpointError(f"{mine}: {exc}") from None
    import hashlib

    net._dist.digest = hashlib.sha256(f"checkpoint {ids[0]}".encode())  # (the ranks' parts differ)
    return net


def _load_file(path=None, key=None, allow_pickle=False, cls=None, mpi_path=None):
    """Read one checkpoint file: the Network, or with ``mpi_path`` (a rank's file) ``(doc, arrays)``."""
    if mpi_path is not None:
        path = mpi_path
    f, size = _open(path)
    with f:
        start = _read_exact(f, 12, path, "header")
        magic, version = start[:8], struct.unpack("<I", start[8:12])[0]
        if magic != MAGIC:
            raise CheckpointError(f"{path}: not an eventsim checkpoint")
        if version in LEGACY_VERSIONS and mpi_path is None:
            return _load_legacy(f, size, path, version, allow_pickle, key, cls)
        if version != VERSION:
            raise CheckpointError(f"{path}: checkpoint format version {version}; this eventsim reads "
                                  f"version {VERSION} (and {', '.join(map(str, LEGACY_VERSIONS))} with "
                                  "allow_pickle=True)")
        head = start + _read_exact(f, _HEADER.size - 12, path, "header")
        _, _, flags, n_doc, n_arr, digest, mac_stored = _HEADER.unpack(head)
        if flags & ~FLAG_HMAC:
            raise CheckpointError(f"{path}: unknown flags {flags:#x} in the header")
        if n_doc > _MAX_DOCUMENT:
            raise CheckpointError(f"{path}: document length {n_doc} exceeds the limit of {_MAX_DOCUMENT} bytes")
        if _HEADER.size + n_doc + n_arr != size:
            what = "truncated" if _HEADER.size + n_doc + n_arr > size else "padded"
            raise CheckpointError(f"{path}: {what} checkpoint (the header gives {n_doc} + {n_arr} payload bytes, "
                                  f"the file holds {size - _HEADER.size})")
        if key is not None and not flags & FLAG_HMAC:
            raise CheckpointError(f"{path}: a key was given but the checkpoint carries no HMAC "
                                  "(saved without a key)")
        h = hashlib.sha256(head[:_HASHED])
        mac = hmac.new(key, head[:_HASHED], hashlib.sha256) if key is not None else None
        buf = bytearray(n_doc + n_arr)
        view = memoryview(buf)
        at = 0
        while at < len(buf):
            try:
                got = f.readinto(view[at:at + _READ_BLOCK])
            except OSError as exc:
                raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
            if not got:
                raise CheckpointError(f"{path}: truncated checkpoint (payload incomplete)")
            h.update(view[at:at + got])
            if mac is not None:
                mac.update(view[at:at + got])
            at += got
    if not hmac.compare_digest(h.digest(), digest):
        raise CheckpointError(f"{path}: checksum mismatch, the checkpoint is corrupted")
    if mac is not None and not hmac.compare_digest(mac.digest(), mac_stored):
        raise CheckpointError(f"{path}: HMAC mismatch: the checkpoint was saved with another key or altered")
    try:
        doc = json.loads(bytes(view[:n_doc]).decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != "eventsim-checkpoint" or doc.get("version") != VERSION:
            raise CheckpointError("the document is not an eventsim checkpoint of version 4")
        if mpi_path is not None:
            return doc, view[n_doc:]
        return _Decoder(doc, view[n_doc:], net_cls=cls).network()
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        raise CheckpointError(f"{path}: invalid checkpoint content: {exc}") from None


def _load_legacy(f, size, path, version, allow_pickle, key, cls):
    if not allow_pickle:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is a pickle, which can run code when loaded; "
            "if you trust the file, load it with Network.load(path, allow_pickle=True) and save it again "
            f"to convert it to version {VERSION}")
    if key is not None:
        raise CheckpointError(f"{path}: a key was given but format version {version} carries no HMAC")
    rest = _read_exact(f, _LEGACY_HEADER.size - 12, path, "header")
    n, digest = struct.unpack("<Q32s", rest)
    if _LEGACY_HEADER.size + n != size:
        raise CheckpointError(f"{path}: truncated or padded checkpoint ({size - _LEGACY_HEADER.size} payload "
                              f"bytes, expected {n})")
    payload = _read_exact(f, n, path, "payload")
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"{path}: checksum mismatch, the checkpoint is corrupted")
    warnings.warn(f"{path}: loading a pickled checkpoint of format version {version} (allow_pickle=True); "
                  f"save it again to convert it to version {VERSION}", LegacyCheckpointWarning, stacklevel=4)
    net = pickle.loads(payload)
    if not isinstance(net, cls):
        raise CheckpointError(f"{path}: does not hold a {cls.__name__}")
    return net


# ---------------------------------------------------------------------------- decoding
def _type_name(x):
    return "null" if x is None else type(x).__name__


class _Decoder:
    """Rebuilds a Network from a checked document through the public constructors."""

    def __init__(self, doc, region, net_cls):
        self.doc = doc
        self.region = region
        self.net_cls = net_cls
        table = self.field(doc, "arrays", dict, "document")
        self.table = {}
        for name, spec in table.items():
            where = f"array {name!r}"
            self.field(spec, "dtype", str, where)
            if spec["dtype"] not in _DTYPES:
                raise CheckpointError(f"{where}: dtype {spec['dtype']!r} is not one of the format's dtypes")
            shape = self.field(spec, "shape", list, where)
            offset = self.field(spec, "offset", int, where)
            if any(type(s) is not int or s < 0 for s in shape) or offset < 0:
                raise CheckpointError(f"{where}: shape {shape} and offset {offset} must be integers >= 0")
            nbytes = math.prod(shape) * np.dtype(spec["dtype"]).itemsize
            if offset + nbytes > len(region):
                raise CheckpointError(f"{where}: bytes {offset}..{offset + nbytes} lie outside the array region "
                                      f"of {len(region)} bytes")
            self.table[name] = (np.dtype(spec["dtype"]), tuple(shape), offset, nbytes)

    @staticmethod
    def field(d, name, types, where):
        if not isinstance(d, dict):
            raise CheckpointError(f"{where}: expected an object, got {_type_name(d)}")
        if name not in d:
            raise CheckpointError(f"{where}: missing field {name!r}")
        v = d[name]
        if types is int and (type(v) is not int):
            raise CheckpointError(f"{where}: field {name!r} must be an integer, got {_type_name(v)}")
        if types is float:
            if type(v) not in (int, float):
                raise CheckpointError(f"{where}: field {name!r} must be a number, got {_type_name(v)}")
            return float(v)
        if types is not int and types is not None and not isinstance(v, types):
            raise CheckpointError(f"{where}: field {name!r} must be {getattr(types, '__name__', types)}, "
                                  f"got {_type_name(v)}")
        return v

    def array(self, ref, where, kind=None, ndim=None):
        """The stored array of reference ``ref`` (a fresh copy), checked for dtype kind and dimensions."""
        name = self.field(ref, "array", str, where)
        if name not in self.table:
            raise CheckpointError(f"{where}: refers to array {name!r}, which the file does not hold")
        dtype, shape, offset, nbytes = self.table[name]
        if kind is not None and dtype.kind not in kind:
            raise CheckpointError(f"{where}: array {name!r} has dtype {dtype}, expected kind {kind!r}")
        if ndim is not None and len(shape) != ndim:
            raise CheckpointError(f"{where}: array {name!r} has shape {shape}, expected {ndim} dimension(s)")
        return np.frombuffer(self.region, dtype, math.prod(shape), offset).reshape(shape).copy()

    def value(self, v, where):
        if v is None or isinstance(v, (str, bool, int, float)):
            return v
        if isinstance(v, dict) and "tuple" in v:
            items = self.field(v, "tuple", list, where)
            return tuple(self.value(x, f"{where}[{k}]") for k, x in enumerate(items))
        if isinstance(v, dict):
            return self.array(v, where, kind="fiub", ndim=1).astype(np.float64)
        raise CheckpointError(f"{where}: unexpected value of type {_type_name(v)}")

    def group(self, g, net, where):
        kind = self.field(g, "kind", str, where)
        counts = {"neuron": net._n_neurons, "source": net._n_channels, "dc": net._n_dc}
        if kind not in counts:
            raise CheckpointError(f"{where}: kind {kind!r} must be one of {', '.join(counts)}")
        from .network import NodeView

        ids = self.array(g.get("ids"), f"{where}.ids", kind="iu", ndim=1).astype(np.int64)
        view = NodeView(net, kind, np.arange(counts[kind]))[ids]
        label = g.get("label")
        if label is not None and not isinstance(label, str):
            raise CheckpointError(f"{where}: label must be a string or null")
        view.label = label
        return view

    # ------------------------------------------------------------------ the network
    def network(self):
        doc, F = self.doc, self.field
        args = F(doc, "network", dict, "document")
        net = self.net_cls(dt=F(args, "dt", float, "network"), seed=F(args, "seed", int, "network"),
                           backend=F(args, "backend", str, "network"), engine=F(args, "engine", str, "network"),
                           weight_dtype=F(args, "weight_dtype", str, "network"),
                           dtype=F(args, "dtype", str, "network"))
        event = net.engine == "event"
        models = _model_types()
        for j, p in enumerate(F(doc, "populations", list, "document")):
            where = f"population {j}"
            name = F(p, "model", str, where)
            if name not in models:
                raise CheckpointError(f"{where}: model {name!r} is not one of {', '.join(models)}")
            params = {k: self.value(v, f"{where}.{k}") for k, v in F(p, "params", dict, where).items()}
            model = models[name](**params)
            label = p.get("label")
            if label is not None and not isinstance(label, str):
                raise CheckpointError(f"{where}: label must be a string or null")
            net.population(F(p, "n", int, where), model,
                           v_init=self.array(F(p, "v_init", dict, where), f"{where}.v_init", "fiu", 1), label=label)
        for j, s in enumerate(F(doc, "sources", list, "document")):
            where = f"source {j}"
            kind = F(s, "kind", str, where)
            n = F(s, "n", int, where)
            if kind == "poisson":
                sched = {}
                if "rate_steps" in s:
                    steps = F(s, "rate_steps", list, where)
                    if not all(isinstance(k, int) and not isinstance(k, bool) for k in steps):
                        raise CheckpointError(f"{where}: rate_steps must be integers")
                    sched = dict(rate_times=np.asarray(steps, np.float64) * net.dt,
                                 rate_values=self.array(F(s, "rate_values", dict, where), f"{where}.rate_values",
                                                        "fiu", 2))
                src = net.poisson(n, rate=self.array(F(s, "rate", dict, where), f"{where}.rate", "fiu", 1), **sched)
                if sched and not np.array_equal(src._steps[1:], steps):
                    raise CheckpointError(f"{where}: rate steps do not survive dt={net.dt} ms")
            elif kind == "spike_source":
                src = net.spike_source(self.array(F(s, "senders", dict, where), f"{where}.senders", "iu", 1),
                                       self.array(F(s, "times", dict, where), f"{where}.times", "fiu", 1),
                                       n=n, round_times=True)
            else:
                raise CheckpointError(f"{where}: kind {kind!r} must be 'poisson' or 'spike_source'")
            if len(src) != n:
                raise CheckpointError(f"{where}: {len(src)} channels, expected {n}")
        for j, d in enumerate(F(doc, "dc_sources", list, "document")):
            where = f"DC source {j}"
            amp = self.array(F(d, "amplitude", dict, where), f"{where}.amplitude", "fiu", 1)
            delay = F(d, "delay", (int, float), where) if "delay" in d else 0.0
            if event:
                stop = F(d, "stop", (int, float, type(None)), where)
                net.dc(amp, start=F(d, "start", float, where), stop=stop, n=F(d, "n", int, where), delay=delay)
            else:
                a = F(d, "start_step", int, where)
                b = F(d, "stop_step", (int, type(None)), where)
                sched = {}
                if "amplitude_steps" in d:
                    steps = F(d, "amplitude_steps", list, where)
                    if not all(isinstance(k, int) and not isinstance(k, bool) for k in steps):
                        raise CheckpointError(f"{where}: amplitude_steps must be integers")
                    sched = dict(amplitude_times=np.asarray(steps, np.float64) * net.dt,
                                 amplitude_values=self.array(F(d, "amplitude_values", dict, where),
                                                             f"{where}.amplitude_values", "fiu", 2))
                src = net.dc(amp, start=a * net.dt, stop=None if b is None else b * net.dt, n=F(d, "n", int, where),
                             delay=delay, **sched)
                if src.start_step != a or (b is not None and src.stop_step != b):
                    raise CheckpointError(f"{where}: start/stop steps {a}/{b} do not survive dt={net.dt} ms")
                if sched and not np.array_equal(src._steps[1:], steps):
                    raise CheckpointError(f"{where}: amplitude steps do not survive dt={net.dt} ms")
        from .connectivity import FromArrays

        for j, p in enumerate(F(doc, "projections", list, "document")):
            where = f"projection {j}"
            pre = self.group(F(p, "pre", dict, where), net, f"{where}.pre")
            post = self.group(F(p, "post", dict, where), net, f"{where}.post")
            rule = FromArrays(self.array(F(p, "pre_idx", dict, where), f"{where}.pre_idx", "iu", 1),
                              self.array(F(p, "post_idx", dict, where), f"{where}.post_idx", "iu", 1))
            weight = self.array(F(p, "weight", dict, where), f"{where}.weight", "fiu", 1)
            delay, steps = None, None
            if pre.kind != "dc":
                if event:
                    delay = self.array(F(p, "delay", dict, where), f"{where}.delay", "fiu", 1)
                else:
                    steps = self.array(F(p, "delay_steps", dict, where), f"{where}.delay_steps", "iu", 1)
                    delay = steps.astype(np.float64) * net.dt
            if weight.size != rule.pre.size or (delay is not None and delay.size != rule.pre.size):
                raise CheckpointError(f"{where}: {rule.pre.size} connections but {weight.size} weights"
                                      + ("" if delay is None else f" and {delay.size} delays"))
            synapse = None
            if "synapse" in p:
                from .models.plasticity import RULES

                sd = F(p, "synapse", dict, where)
                rules = {r.__name__: r for r in RULES}
                name = F(sd, "rule", str, f"{where}.synapse")
                if name not in rules:
                    raise CheckpointError(f"{where}: synapse rule {name!r} is not one of {', '.join(rules)}")
                try:
                    synapse = rules[name](**F(sd, "params", dict, f"{where}.synapse"))
                except (TypeError, ValueError) as exc:
                    raise CheckpointError(f"{where}: synapse: {exc}") from None
            receptor = F(p, "receptor", int, where) if "receptor" in p else None
            proj = net.connect(pre, post, rule, weight=weight, delay=delay, synapse=synapse, receptor=receptor)
            if synapse is not None:  # (files from before plastic connections between runs: generation 0)
                proj._generation = F(sd, "generation", int, f"{where}.synapse") if "generation" in sd else 0
                if proj._generation < 0:
                    raise CheckpointError(f"{where}.synapse: generation {proj._generation} < 0")
            if net._dist is not None:  # this rank's part: its places in the whole projection (or target order)
                proj._positions = proj._n_all = None
                if "positions" in p:
                    pos = self.array(F(p, "positions", dict, where), f"{where}.positions", "iu", 1).astype(np.int64)
                    n_all = F(p, "n_all", int, where)
                    if (pos.size != len(proj) or (pos.size and (pos[0] < 0 or pos[-1] >= n_all))
                            or (pos[1:] <= pos[:-1]).any()):
                        raise CheckpointError(f"{where}: positions must be {len(proj)} ascending places in "
                                              f"[0, n_all={n_all})")
                    proj._positions, proj._n_all = pos, n_all
            if steps is not None and not np.array_equal(proj.delay_steps, steps):
                raise CheckpointError(f"{where}: delays in steps do not survive dt={net.dt} ms")
        for j, r in enumerate(F(doc, "recorders", list, "document")):
            self.recorder(net, r, f"recorder {j}")
        step = F(doc, "step", int, "document")
        t = F(doc, "time", float, "document")
        if step < 0 or not (math.isfinite(t) and t >= 0):
            raise CheckpointError(f"document: step={step} and time={t} ms must be >= 0")
        plan = doc.get("plan")
        if plan is not None:
            self.plan(net, plan)
        elif step or t:
            raise CheckpointError(f"document: step={step} or time={t} ms without the engine's state")
        net._step, net._time = step, t
        if net._plan is not None and net.engine == "clock":
            net._changes.update(("sources", "dc"))  # the rates and amplitudes in effect at this step
        return net

    def recorder(self, net, r, where):
        from .record import _FileStore

        F = self.field
        kind = F(r, "kind", str, where)
        group = self.group(F(r, "group", dict, where), net, f"{where}.group")
        if kind == "spikes":
            rec = net.record_spikes(group)
        elif kind == "state":
            k = F(r, "interval_steps", int, where)
            if k < 1:
                raise CheckpointError(f"{where}: interval_steps={k} must be >= 1")
            rec = net.record_state(group, F(r, "variable", str, where), interval=k * net.dt)
            if rec.interval_steps != k:
                raise CheckpointError(f"{where}: interval of {k} steps does not survive dt={net.dt} ms")
        elif kind == "weights":
            j = F(r, "projection", int, where)
            if not 0 <= j < len(net.projections):
                raise CheckpointError(f"{where}: projection {j} does not exist")
            k = F(r, "interval_steps", int, where)
            if k < 1:
                raise CheckpointError(f"{where}: interval_steps={k} must be >= 1")
            try:
                rec = net.record_weights(net.projections[j], index=self.array(F(r, "index", dict, where),
                                                                                f"{where}.index", "iu", 1),
                                         interval=k * net.dt)
            except (TypeError, ValueError) as exc:
                raise CheckpointError(f"{where}: {exc}") from None
            if rec.interval_steps != k or len(rec.group) != len(group):
                raise CheckpointError(f"{where}: the recorder does not survive dt={net.dt} ms")
        else:
            raise CheckpointError(f"{where}: kind {kind!r} must be 'spikes', 'state' or 'weights'")
        store = F(r, "store", dict, where)
        typ = F(store, "type", str, f"{where}.store")
        cols = F(store, "columns", dict, f"{where}.store")
        names = tuple(rec._store._names)
        if sorted(cols) != sorted(names):
            raise CheckpointError(f"{where}: columns {sorted(cols)}, expected {sorted(names)}")
        n = len(group)
        if net._dist is not None and kind == "state":  # (each rank samples the recorded neurons it owns)
            owner = net._dist.owner([(p.offset, p.n) for p in net.populations], group.ids)
            n = int(np.count_nonzero(owner == net._dist.rank))
        if kind == "weights":  # (over MPI ranks: the recorded connections this rank holds)
            n = rec._width()
        if typ == "memory":
            arrays = {}
            for nm in names:
                a = self.array(cols[nm], f"{where}.{nm}", kind="iuf", ndim=2 if nm == "values" else 1)
                if nm == "values" and a.shape[1] != n:
                    raise CheckpointError(f"{where}: values have {a.shape[1]} columns, the group has {n} neurons")
                arrays[nm] = a
            rows = {a.shape[0] for a in arrays.values()}
            if len(rows) != 1:
                raise CheckpointError(f"{where}: columns of different lengths")
            if "neuron_ids" in arrays:
                ids = arrays["neuron_ids"].astype(np.int64)
                if ids.size and not np.isin(ids, group.ids).all():
                    raise CheckpointError(f"{where}: spikes of neurons outside the recorded group")
                arrays["neuron_ids"] = ids
            if "steps" in arrays:
                arrays["steps"] = arrays["steps"].astype(np.int64)
            rec._store.append(**arrays)
            if hasattr(rec._store, "settle"):  # (rows staged by append join the recording)
                rec._store.settle()
        elif typ == "file":
            sw = f"{where}.store"
            path = F(store, "path", str, sw)
            fmt = F(store, "fmt", str, sw)
            expect = {"spikes": "eventsim-spikes", "weights": "eventsim-weights"}.get(kind, "eventsim-state")
            if not os.path.isabs(path) or fmt != expect:
                raise CheckpointError(f"{sw}: path {path!r} must be absolute and fmt {fmt!r} be {expect!r}")
            columns = {}
            for nm in names:
                spec = cols[nm]
                if (not isinstance(spec, list) or len(spec) != 2 or spec[0] not in _DTYPES
                        or not isinstance(spec[1], list) or spec[1] != ([n] if nm == "values" else [])):
                    raise CheckpointError(f"{sw}: column {nm!r} has an invalid description {spec!r}")
                columns[nm] = (np.dtype(spec[0]), tuple(spec[1]))
            rows, step = F(store, "rows", int, sw), F(store, "step", int, sw)
            if rows < 0 or step < 0:
                raise CheckpointError(f"{sw}: rows={rows} and step={step} must be >= 0")
            fs = _FileStore.__new__(_FileStore)
            fs.__dict__.update(path=path, fmt=fmt, columns=columns, recording_id=F(store, "recording_id", str, sw),
                               rows=rows, step=step, _f=None, _ino=None, _pending=None)
            rec._store = fs
        else:
            raise CheckpointError(f"{where}: store type {typ!r} must be 'memory' or 'file'")

    # ------------------------------------------------------------------ the engine
    def plan(self, net, doc):
        F = self.field
        engine = F(doc, "engine", str, "plan")
        if engine != net.engine:
            raise CheckpointError(f"plan: engine {engine!r} but the network's is {net.engine!r}")
        stored = F(doc, "arrays", dict, "plan")
        if net.engine == "event":
            from .engines.event_plan import EventPlan

            plan = EventPlan(net)
            current = _event_arrays(plan)
        else:
            from .engines.plan import build_plan
            from .network import _BYTES_PER_SYNAPSE_BUILD, _guard_memory

            _guard_memory(f"building the engine for {net.n_synapses:,d} synapses",
                          net.n_synapses * _BYTES_PER_SYNAPSE_BUILD)
            plan = build_plan(net)
            if "plastic.hs" in stored and getattr(plan, "plastic", None) is not None:  # the saved history length
                from .engines.plastic import grow_history

                H = self.array(stored["plastic.hs"], "plan.plastic.hs", "i", 2).shape[1]
                if not 1 <= H <= 1 << 24 or H & (H - 1):
                    raise CheckpointError(f"plan.plastic.hs: history length {H} is not a power of two up to 2**24")
                plan.plastic = grow_history(plan.plastic, H)
            current = _clock_arrays(plan)
        if net.engine == "event" and not set(_EVENT_RETIRED) & set(stored):
            for name in _EVENT_RETIRED:  # a file from before retired groups: none
                current.pop(name)
        if net.engine == "event" and "ret.em" in stored and "ret.port" not in stored:
            current.pop("ret.port")  # a file from before receptor ports in the event engine: none
        if net.engine != "event" and "pmul" not in stored:
            current.pop("pmul")  # a file from before spike multiplicities: every pending spike single
        if net.engine != "event" and "state.x" not in stored and current["state.x"].shape[1] == 0:
            current.pop("state.x")  # a file from before families had state of their own: none then
        if sorted(stored) != sorted(current):
            raise CheckpointError(f"plan: arrays {sorted(stored)}, expected {sorted(current)}")
        new = {}
        for name, dst in current.items():
            a = self.array(stored[name], f"plan.{name}")
            if a.dtype != dst.dtype:
                raise CheckpointError(f"plan.{name}: dtype {a.dtype}, expected {dst.dtype}")
            if name in _EVENT_RESIZED + _EVENT_RETIRED and net.engine == "event":
                if a.ndim != 1:
                    raise CheckpointError(f"plan.{name}: shape {a.shape}, expected one dimension")
            elif a.shape != dst.shape:
                raise CheckpointError(f"plan.{name}: shape {a.shape}, expected {dst.shape}")
            new[name] = a
        if net.engine == "event":
            _restore_event(plan, new, F(doc, "qn", int, "plan"))
        else:
            _restore_clock(plan, new, F(doc, "spike_buffer", int, "plan"))
        net._plan = plan


def _bad(name, what):
    raise CheckpointError(f"plan.{name}: {what}")


def _in_range(name, a, lo, hi):
    if a.size and (a.min() < lo or a.max() >= hi):
        _bad(name, f"values must lie in [{lo}, {hi}), found [{a.min()}, {a.max()}]")


def _restore_clock(plan, new, spike_buffer):
    from . import config

    N = plan.pend.size  # (the network's neurons; over MPI ranks any of them may be pending)
    n = int(new["pend_n"][0])
    if not 0 <= n <= N:
        _bad("pend_n", f"{n} pending spikes for {N} neurons")
    _in_range("pend", new["pend"][:n], 0, N)
    if "pmul" in new:
        _in_range("pmul", new["pmul"][:n], 1, 2**31)
    _in_range("ss_ptr", new["ss_ptr"], 0, plan.sources.ss_step.size + 1)
    if (new["counters"] < 0).any():
        _bad("counters", "event counts must be >= 0")
    least = plan.spk_buf_step.size
    most = max(least, 4 * (config.CHUNK_STEPS + 1) * max(plan.n_flag, 1))
    if not least <= spike_buffer <= most:
        _bad("spike_buffer", f"{spike_buffer} must lie in [{least}, {most}]")
    if "plastic.hn" in new:
        if (new["plastic.hn"] < 0).any() or (new["plastic.tl"] < 0).any():
            _bad("plastic", "spike counts and stamps must be >= 0")
        if not np.all(np.isfinite(new["plastic.w"])):
            _bad("plastic.w", "weights must be finite")
    for name, dst in _clock_arrays(plan).items():
        if name in new:  # (state.x: absent from older files, and then empty)
            dst[...] = new[name]
    if getattr(plan, "plastic", None) is not None:
        plan._partition(plan.T)  # every partition's copy of the presynaptic traces from copy 0
    if spike_buffer != least:
        plan.spk_buf_step = np.zeros(spike_buffer, np.int64)
        plan.spk_buf_id = np.zeros(spike_buffer, np.int64)


def _restore_event(plan, new, qn):
    from .engines import event_cpu as ev

    N = plan.SS.shape[0]
    S = plan.SRC
    nc = S.rate.size
    n_em = plan.G.gptr.size - 1
    SS = new["SS"]
    if not np.array_equal(SS[:, ev.CM], plan.SS[:, ev.CM]):
        _bad("SS", "parameter classes differ from the network's")
    # the crossing heap: n distinct neurons, each knowing its position
    xn = int(new["X.n"][0])
    if not 0 <= xn <= N:
        _bad("X.n", f"{xn} entries for {N} neurons")
    heap = new["X.heap"][:xn]
    _in_range("X.heap", heap, 0, N)
    pos = SS[:, ev.XPOS]
    if (not np.array_equal(pos[heap], np.arange(xn, dtype=np.float64))
            or np.count_nonzero(pos != -1.0) != xn):
        _bad("SS", "positions in the crossing heap are inconsistent")
    mn = int(new["M.n"][0])
    if not 0 <= mn <= N:
        _bad("M.n", f"{mn} marked neurons for {N}")
    _in_range("M.lst", new["M.lst"][:mn], 0, N)
    # the event heap
    q = [new["Q.0"], new["Q.1"], new["Q.2"]]
    if not (q[0].size == q[1].size == q[2].size and 0 <= qn <= q[0].size and q[0].size >= plan.Q[0].size):
        _bad("Q", f"{qn} entries in arrays of {q[0].size}, {q[1].size}, {q[2].size}")
    e, g = q[1][:qn], q[2][:qn]
    _in_range("Q.1", e, 0, n_em)
    ok = np.zeros(qn, bool)
    src = (e >= N) & (e < N + nc)
    dc = e >= N + nc
    ok |= (g == -1) & src
    ok |= ((g == -2) | (g == -3)) & dc
    grp = g >= 0
    if "ret.em" in new:
        r_em, r_size, r_tgt = new["ret.em"], new["ret.size"], new["ret.tgt"]
        r_port = new.get("ret.port")
        if not (r_em.size == r_size.size == new["ret.delay"].size and r_tgt.size == new["ret.w"].size
                and (r_size >= 0).all() and int(r_size.sum()) == r_tgt.size
                and (r_port is None or r_port.size == r_em.size)):
            _bad("ret", "retired groups of inconsistent sizes")
        _in_range("ret.em", r_em, 0, n_em)
        _in_range("ret.tgt", r_tgt, 0, N)
        if r_port is not None:
            from .models.multisynapse import MAX_EVENT_PORTS

            _in_range("ret.port", r_port, -1, MAX_EVENT_PORTS)
        plan._set_retired(r_em, r_size, new["ret.delay"], r_tgt, new["ret.w"], r_port)
    ng = plan.ng
    ret = grp & (g >= ng)
    grp &= g < ng
    ok[grp] = (g[grp] >= plan.G.gptr[e[grp]]) & (g[grp] < plan.G.gptr[e[grp] + 1])
    if plan._ret_em.size:
        r = np.minimum(g[ret] - ng, plan._ret_em.size - 1)
        ok[ret] = (g[ret] - ng < plan._ret_em.size) & (plan._ret_em[r] == e[ret])
    if not ok.all():
        _bad("Q", "an event names a group that its emitter does not have")
    # the sources
    ptr = new["SRC.ptr"]
    if ((ptr < S.sptr[:-1]) | (ptr > S.sptr[1:])).any():
        _bad("SRC.ptr", "a channel's pointer lies outside its spike times")
    st, sc, spos = new["SRC.st"], new["SRC.sc"], new["SRC.spos"]
    if st.size != sc.size or not 0 <= spos[0] <= spos[1] <= st.size:
        _bad("SRC", f"stream of {st.size} times, {sc.size} channels, position {spos.tolist()}")
    _in_range("SRC.sc", sc, 0, nc)
    if (new["SRC.count"] < 0).any() or (new["counters"] < 0).any():
        _bad("counters", "counts must be >= 0")
    # copy in
    for name, dst in _event_arrays(plan).items():
        if name not in _EVENT_RESIZED + _EVENT_RETIRED:
            dst[...] = new[name]
    plan.SRC = plan.SRC._replace(st=st, sc=sc)
    plan.Q = tuple(q)
    plan.qn = qn
