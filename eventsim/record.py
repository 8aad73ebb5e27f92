"""Recorders: spikes and state variables of chosen neurons, in memory or streamed to disk.

A recorder keeps what it records either in memory (the default) or, with
``to=path``, in an HDF5 file that grows as the run goes: the engines hand
each chunk of steps (``config.CHUNK_STEPS``; the event engine: each window
of ``config.CHUNK_STEPS * dt`` ms) to the recorders, which append it to the
file and flush.  A streaming recorder holds no growing in-memory copy, so
memory stays flat however long the run.

Why HDF5
--------
One self-describing binary file per recorder, readable from any language
(h5py, MATLAB, Julia, ``h5dump``), with typed, chunked, appendable datasets
and attributes for units and metadata.  HDF5's single-writer/multiple-reader
(SWMR) mode orders its writes so that the file on disk is a valid HDF5 file
at every instant, which is what makes the recording survive a crash (below).
Readers other than eventsim must open a file that may still be written, or
whose writer crashed, in SWMR mode too: ``h5py.File(path, "r", swmr=True)``
(``libver="latest"`` files keep the SWMR flag after a crash, and a plain
``h5py.File(path, "r")`` then fails with "file is already open for write");
``h5clear -s path`` clears the flag for tools that cannot read in SWMR mode.
:func:`read_spikes`, :func:`read_state` and :func:`read_weights` do this for you.
Zarr would store each chunk as its own file (thousands of small files for a
long run) and updates its metadata non-atomically; h5py is also the more
widely installed of the two.

File layout (format version 1)
------------------------------
Both kinds of file have these root attributes:

=================  =========  =================================================
attribute          type       meaning
=================  =========  =================================================
``format``         str        ``"eventsim-spikes"`` or ``"eventsim-state"``
``format_version`` int        1
``dt``             float      time step of the network (ms)
``seed``           int        seed of the network
``recording_id``   str        random hex id; a resumed run checks it
``eventsim``       str        eventsim version that created the file
=================  =========  =================================================

and these datasets:

==================  ======================  ====================================
dataset             dtype, shape            content
==================  ======================  ====================================
``group_ids``       int64 (n,)              network-wide indices of the recorded
                                            neurons, in the group's order
``committed``       int64 (2,)              ``[rows, step]``: rows of the
                                            row-aligned datasets that are
                                            complete, and the number of steps
                                            simulated when they were flushed
==================  ======================  ====================================

Spike files (``format = "eventsim-spikes"``), one row per spike, in time
order, ties by neuron index:

==================  ======================  ====================================
``steps``           int64 (rows,)           step stamp; spike time is
                                            ``steps * dt`` (ms)
``neuron_ids``      int32 (rows,)           network-wide index of the neuron
                                            (int64 if an index needs it)
==================  ======================  ====================================

A spike file of the event engine (``engine="event"``: spikes off the grid)
has ``times`` (float64 (rows,), the spike times in ms) instead of
``steps``; ``committed[1]`` is then the committed time in steps of ``dt``,
rounded (:func:`read_spikes` returns ``steps`` None and the ``times``).

State files (``format = "eventsim-state"``), one row per sample, with the
extra root attributes ``variable`` (str), ``unit`` (str: ``"mV"`` or
``"pA"``), ``interval`` (ms) and ``interval_steps`` (int):

==================  ======================  ====================================
``steps``           int64 (rows,)           sample stamp; the sample is the
                                            state at ``steps * dt`` (ms)
``values``          float64 (rows, n)       the samples, columns in the order
                                            of ``group_ids``
==================  ======================  ====================================

Weight files (``format = "eventsim-weights"``, :class:`WeightRecorder`)
have the state files' layout with ``values`` of shape (rows, connections)
and, instead of ``group_ids``, ``connection_index`` (the connections'
positions in their projection), ``pre_ids`` and ``post_ids``; attribute
``unit`` (mV or pA).

Only the first ``committed[0]`` rows are meaningful: the datasets may be
longer after a crash (a chunk written but not yet committed).  The readers
:func:`read_spikes`, :func:`read_state` and :func:`read_weights` do this for
you.

Crash safety
------------
Files are created complete (written to a temporary file in the same
directory, then renamed) and written in SWMR mode.  At the end of each chunk
the recorder appends the chunk's rows, flushes, then writes ``committed``
and flushes again.  If the process dies at any moment (exception, SIGKILL,
out of memory), the file still opens and holds exactly the rows of the
chunks committed before; a partly written chunk is ignored.  This protects
against the process dying, not against the operating system losing data it
had not yet written to the disk (power failure).

Failures inside a run
---------------------
A chunk is committed in two phases: every recorder first stages the
chunk's rows (in memory apart from the recording; on disk after the
committed rows) and makes them durable (files: rows flushed, then
``committed`` written and flushed), then the network's clock moves, then
every recorder settles (adopts the rows; no I/O).  An exception anywhere
before the clock moves (a file that cannot be written because the disk is
full or it was removed, KeyboardInterrupt, ...) rolls every recorder back
to its last settled chunk: memory recorders drop the staged rows, files
are truncated back to the settled rows and their ``committed`` rewritten
(at once if the file can be opened, else when the next run reopens it),
and the network's state is restored with them; one landing after it only
completes the settling.  So fixing the cause (putting the file back,
freeing space) and calling ``run()`` again gives the uninterrupted
recording, in memory and on disk.  A streaming file that is removed or
replaced while it is being written is detected at the next commit
(:class:`RecordingError`).

Checkpoints and resume
----------------------
A checkpoint (:meth:`eventsim.Network.save`) stores each streaming
recorder's path, ``recording_id`` and committed row count, never the open
file.  When a loaded network runs again, the recorder reopens its file,
checks the id, and **truncates it back to the row count stored in the
checkpoint** before appending, so a file that went on growing after the
checkpoint (the run continued, or crashed later) ends up exactly as if the
run had never stopped.  A file that was cleanly closed is truncated in
place; one left open by a crash is rebuilt (its committed rows copied to a
temporary file that is renamed over it).  Reading a loaded network's
recorder before it runs returns the rows of the checkpoint and leaves the
file untouched.  The file must stay at its absolute path; a missing file,
a file of another recording, or one with fewer rows than the checkpoint
raises :class:`RecordingError`.  One process writes a file at a time.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import weakref
from typing import NamedTuple

import numpy as np

from . import config

FORMAT_VERSION = 1


#: Stores holding a file open for writing in this process, by absolute path.
_WRITERS = weakref.WeakValueDictionary()


class RecordingError(ValueError):
    """A recording file is missing, of another recording, or shorter than expected."""


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise ImportError("streaming recorders (to=...) need h5py: pip install h5py") from None
    return h5py


def _version():
    from . import __version__

    return __version__


def check_target(path, overwrite):
    """Validate ``path`` as a new recording file; return its absolute path."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"to={path!r} must be a file path (str or os.PathLike)")
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"to={path!r} is a directory; give a file path")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"to={path!r}: the directory {directory!r} does not exist")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"to={path!r} already exists; pass overwrite=True to replace it")
    return path


# --------------------------------------------------------------------------- storage
class _MemoryStore:
    """Rows kept in memory as a list of parts, one per append (concatenated on read).

    The first ``_mark[0]`` parts (``_mark[1]`` rows) are the recording; the
    parts appended after them are staged until the engine settles the chunk
    (:meth:`settle`) or drops them (:meth:`rollback`).  Each of these moves
    is one assignment, so an interrupt between any two lines leaves the
    store in one state or the other.
    """

    def __init__(self, names):
        self._names = names
        self._parts = []
        self._mark = (0, 0)  # settled (parts, rows)
        self._tip = (0, 0)  # (parts, rows) with the staged ones

    def __setstate__(self, state):
        if "_parts" not in state:  # stored before staging existed: one list of chunks per column
            chunks = state.pop("_chunks")
            names = state["_names"]
            n = min(len(chunks[nm]) for nm in names) if names else 0
            state["_parts"] = [{nm: chunks[nm][j] for nm in names} for j in range(n)]
            rows = int(state.pop("rows"))
            state["_mark"] = state["_tip"] = (n, rows)
        self.__dict__.update(state)

    @property
    def rows(self):
        return self._mark[1]

    def append(self, **cols):
        m = len(next(iter(cols.values())))
        if m:
            n, rows = self._tip
            del self._parts[n:]  # (a part left by an interrupted append)
            self._parts.append({nm: cols[nm] for nm in self._names})
            self._tip = (n + 1, rows + m)

    def commit(self, step):
        """Nothing to make durable in memory: the staged rows wait for :meth:`settle`."""

    def settle(self):
        """The chunk is committed: its staged rows join the recording."""
        self._mark = self._tip

    def rollback(self):
        """Drop the rows appended since the last settled chunk."""
        self._tip = self._mark
        del self._parts[self._mark[0]:]

    def read(self, name, empty):
        n, rows = self._mark
        if n == 0:
            return empty
        if n > 1:  # merge the settled parts into one
            merged = {nm: np.concatenate([p[nm] for p in self._parts[:n]], axis=0) for nm in self._names}
            self._parts[:n] = [merged]
            self._mark, self._tip = (1, rows), (self._tip[0] - n + 1, self._tip[1])
        return self._parts[0][name]

    def blocks(self, name, empty):
        yield self.read(name, empty)


def _umask_mode(mode=0o666):
    """``mode`` less the process's umask: the permissions ``open()`` gives a new file.

    Temporary files (``tempfile.mkstemp``) are created 0600; a file renamed
    into place from one gets these permissions first, as any new file would.
    """
    try:  # Linux: read the umask without changing it (setting it is not thread-safe)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return mode & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mode & ~mask


class _FileStore:
    """Row-aligned datasets appended to an HDF5 file in SWMR mode (see the module docstring)."""

    def __init__(self, path, fmt, columns, static, attrs, compression):
        """Create the file at ``path`` (atomically; the caller validated the path).

        columns : dict name -> (dtype, row_shape)
        static : dict name -> array written once
        """
        h5py = _h5py()
        self.path = path
        self.fmt = fmt
        self.columns = columns
        self.recording_id = uuid.uuid4().hex
        self.rows = 0
        self.step = 0
        self._f = None
        self._ino = None
        directory = os.path.dirname(path)
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
        os.close(fd)
        try:
            with h5py.File(tmp, "w", libver="latest") as f:
                f.attrs["format"] = fmt
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["recording_id"] = self.recording_id
                f.attrs["eventsim"] = _version()
                for k, v in attrs.items():
                    f.attrs[k] = v
                for name, arr in static.items():
                    f.create_dataset(name, data=arr)
                c = f.create_dataset("committed", data=np.zeros(2, np.int64))
                c.attrs["description"] = "[rows complete, steps simulated] at the last flush"
                for name, (dtype, row_shape) in columns.items():
                    per_row = int(np.prod(row_shape)) if row_shape else 1
                    chunk_rows = max(1, config.STREAM_CHUNK_ELEMENTS // max(per_row, 1))
                    kw = dict(compression="gzip", compression_opts=1, shuffle=True) if compression else {}
                    # (a row of width 0, e.g. an MPI rank that holds none of the recorded columns: HDF5's
                    # chunks must be positive, so that dimension is unlimited, with chunks of 1)
                    f.create_dataset(name, shape=(0, *row_shape), dtype=dtype,
                                     maxshape=(None, *(d if d else None for d in row_shape)),
                                     chunks=(chunk_rows, *(d if d else 1 for d in row_shape)), **kw)
            os.chmod(tmp, _umask_mode())  # the user's umask, not mkstemp's 0600
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    # ---------------------------------------------------------------- pickling
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_f"] = None  # the open file never goes into a checkpoint
        return state

    # ---------------------------------------------------------------- opening
    def _check(self, f):
        if f.attrs.get("recording_id") != self.recording_id:
            raise RecordingError(f"{self.path}: holds another recording (recording_id "
                                 f"{f.attrs.get('recording_id')!r}, expected {self.recording_id!r})")
        rows = int(f["committed"][0])
        if rows < self.rows:
            raise RecordingError(f"{self.path}: holds {rows} committed rows but the recorder has "
                                 f"{self.rows}; the file was truncated or replaced")

    def _writer(self):
        """The file open for writing in SWMR mode, truncated to ``self.rows`` committed rows."""
        if self._f is not None:
            return self._f
        h5py = _h5py()
        if not os.path.exists(self.path):
            raise RecordingError(f"{self.path}: the recording file is missing")
        other = _WRITERS.get(self.path)
        if (other is not None and other is not self and other._f is not None
                and other._ino == os.stat(self.path).st_ino):
            raise RecordingError(f"{self.path}: the file is open for writing by another recorder in this "
                                 "process (e.g. of the network a checkpoint was saved from); close that one "
                                 "first (net.close())")
        try:
            f = h5py.File(self.path, "r+", libver="latest")
        except OSError:
            # left open by a process that died: rebuild it from its committed rows
            self._rebuild()
            f = h5py.File(self.path, "r+", libver="latest")
        try:
            self._check(f)
            for name in self.columns:
                if f[name].shape[0] != self.rows:
                    f[name].resize(self.rows, axis=0)
            f["committed"][:] = [self.rows, self.step]
            f.flush()
            f.swmr_mode = True
        except BaseException:
            f.close()
            raise
        self._f = f
        self._ino = os.stat(self.path).st_ino
        _WRITERS[self.path] = self
        return f

    def _rebuild(self):
        h5py = _h5py()
        with h5py.File(self.path, "r", libver="latest", swmr=True) as old:
            self._check(old)
            directory = os.path.dirname(self.path)
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(self.path) + ".", suffix=".tmp",
                                       dir=directory)
            os.close(fd)
            try:
                with h5py.File(tmp, "w", libver="latest") as new:
                    for k, v in old.attrs.items():
                        new.attrs[k] = v
                    for name, obj in old.items():
                        if name in self.columns:
                            ds = new.create_dataset(name, shape=(self.rows, *obj.shape[1:]), dtype=obj.dtype,
                                                    maxshape=obj.maxshape, chunks=obj.chunks,
                                                    compression=obj.compression,
                                                    compression_opts=obj.compression_opts, shuffle=obj.shuffle)
                            step = max(1, obj.chunks[0]) * 16
                            for a in range(0, self.rows, step):
                                b = min(a + step, self.rows)
                                ds[a:b] = obj[a:b]
                        else:
                            new.create_dataset(name, data=obj[()])
                        for k, v in obj.attrs.items():
                            new[name].attrs[k] = v
                    new["committed"][:] = [self.rows, self.step]
                os.chmod(tmp, os.stat(self.path).st_mode & 0o7777)  # keep the file's permissions
                os.replace(tmp, self.path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None
            if _WRITERS.get(self.path) is self:
                del _WRITERS[self.path]

    # ---------------------------------------------------------------- writing
    def append(self, **cols):
        """Write rows after the committed ones (valid only once committed and settled)."""
        m = len(next(iter(cols.values())))
        if not m:
            return
        f = self._writer()
        n = int(f[next(iter(self.columns))].shape[0])
        for name in self.columns:
            ds = f[name]
            ds.resize(n + m, axis=0)
            ds[n:n + m] = cols[name]

    def commit(self, step):
        """Flush the appended rows, then mark them committed in the file at simulated step ``step``.

        The recorder itself still reports its previous rows until :meth:`settle`
        (a :meth:`rollback` in between takes the file back to them).
        """
        f = self._writer()
        self._check_same_file()
        n = int(f[next(iter(self.columns))].shape[0])
        f.flush()  # rows first ...
        f["committed"][:] = [n, step]
        f.flush()  # ... then the count that makes them valid
        self._pending = (n, int(step))

    def settle(self):
        """The chunk is committed: the rows marked by :meth:`commit` are the recorder's."""
        pending = getattr(self, "_pending", None)
        if pending is not None:  # (idempotent: settling twice changes nothing)
            self.rows, self.step = pending

    def rollback(self):
        """Take the file back to the last settled rows (or leave that to the next opening).

        Called while an exception propagates: never raises.  The file is
        closed; it is reopened (and truncated to the settled rows, its
        ``committed`` rewritten) at once if it can be, else by the next run.
        """
        self._pending = None
        if self._f is None:
            return
        try:
            self.close()
        except Exception:  # noqa: BLE001 - the file may be gone or its device full
            self._f = None
            if _WRITERS.get(self.path) is self:
                del _WRITERS[self.path]
        try:
            self._writer()
        except Exception:  # noqa: BLE001 - reported by the next run, when it reopens the file
            self._f = None

    def _check_same_file(self):
        """Raise RecordingError if the open file was removed or replaced while it was written."""
        try:
            ino = os.stat(self.path).st_ino
        except FileNotFoundError:
            raise RecordingError(f"{self.path}: the recording file was removed during the run; put it "
                                 "back and run again to continue the recording") from None
        if ino != self._ino:
            raise RecordingError(f"{self.path}: the recording file was replaced during the run; put the "
                                 "original back and run again to continue the recording")

    # ---------------------------------------------------------------- reading
    def _reader(self):
        if self._f is not None:
            return self._f, False
        if not os.path.exists(self.path):
            raise RecordingError(f"{self.path}: the recording file is missing")
        f = _h5py().File(self.path, "r", libver="latest", swmr=True)
        try:
            self._check(f)
        except BaseException:
            f.close()
            raise
        return f, True

    def read(self, name, empty):
        f, close = self._reader()
        try:
            return f[name][: self.rows]
        finally:
            if close:
                f.close()

    def blocks(self, name, empty):
        """Yield the committed rows of ``name`` in blocks of bounded size."""
        f, close = self._reader()
        try:
            ds = f[name]
            step = max(1, config.STREAM_READ_ROWS // max(1, int(np.prod(ds.shape[1:]))))
            for a in range(0, self.rows, step):
                yield ds[a: min(a + step, self.rows)]
        finally:
            if close:
                f.close()


# --------------------------------------------------------------------------- recorders
def _neo():
    """``(neo, quantities)``, or an ImportError that says how to install them."""
    try:
        import neo
        import quantities
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("to_neo() needs the neo and quantities packages: pip install 'eventsim[neo]'") from None
    return neo, quantities


class _Recorder:
    def __init__(self, net, group):
        self._net = net
        self.group = group
        self._ids = group.ids
        order = np.argsort(self._ids, kind="stable")
        self._sorted_ids = self._ids[order]
        self._pos = order

    def _local(self, global_ids):
        """Positions of ``global_ids`` within the recorded group."""
        return self._pos[np.searchsorted(self._sorted_ids, global_ids)]

    @property
    def path(self):
        """Absolute path of the recording file, or None for an in-memory recorder."""
        return self._store.path if isinstance(self._store, _FileStore) else None

    def _commit(self, step):
        """Make everything appended so far durable (stream) at simulated step ``step``.

        The first phase of committing a chunk; the engine calls :meth:`_settle`
        once every recorder has committed and the network's clock has moved,
        or :meth:`_rollback` if anything failed before.
        """
        self._store.commit(step)

    def _settle(self):
        """Second phase of a commit: the chunk's rows become the recorder's (no I/O, never fails)."""
        self._store.settle()

    def _rollback(self):
        """Forget the rows appended since the last settled chunk (memory and file); never raises."""
        self._store.rollback()

    def close(self):
        """Close the recording file (a later run or read reopens it).  No-op in memory."""
        if isinstance(self._store, _FileStore):
            self._store.close()

    def _file_attrs(self):
        return {"dt": self._net.dt, "seed": self._net.seed}

    def to_disk(self, path, overwrite=False):
        """Write everything recorded so far to a new HDF5 file ``path`` (layout in the module docstring).

        The file is written to a temporary name and renamed, so ``path`` is
        only ever a complete file.  Returns the absolute path.
        """
        path = check_target(path, overwrite)
        store = self._new_file_store(path, False)
        try:
            names = list(store.columns)
            for parts in zip(*(self._store.blocks(nm, self._empty(nm)) for nm in names)):
                store.append(**dict(zip(names, parts)))
            net = self._net
            store.commit(net.step if net.engine == "clock" else int(round(net.t / net.dt)))
            store.settle()
        finally:
            store.close()
        return path


class SpikeRecorder(_Recorder):
    """Spikes of a group of neurons, kept in memory or streamed to an HDF5 file.

    Create with :meth:`eventsim.Network.record_spikes`.

    Attributes
    ----------
    senders : ndarray of int64
        Index of the spiking neuron *within the recorded group* (0-based).
    neuron_ids : ndarray of int64
        Network-wide neuron index of the spiking neuron.
    steps : ndarray of int64
        Step stamp of each spike; the spike time is ``steps * dt``.
    times : ndarray of float64
        Spike times (ms).  Spikes are in time order, ties by neuron index.
    path : str or None
        The recording file (``to=``), or None in memory.

    Notes
    -----
    A streaming recorder (``to=path``) reads these arrays from its file
    each time they are accessed; see :mod:`eventsim.record` for the layout.
    """

    #: What it records (the engines select recorders by it: they import no recorder class).
    kind = "spikes"

    def __init__(self, net, group, to=None, overwrite=False, compression=None):
        super().__init__(net, group)
        self._continuous = net.engine == "event"
        if to is None:
            self._store = _MemoryStore(("times" if self._continuous else "steps", "neuron_ids"))
        else:
            self._store = self._new_file_store(check_target(to, overwrite), compression)

    def __setstate__(self, state):
        if "_store" not in state:  # recorded before streaming existed: lists of chunks in memory
            store = _MemoryStore(("steps", "neuron_ids"))
            store.append(steps=np.concatenate([np.zeros(0, np.int64), *state.pop("_chunks_steps")]),
                         neuron_ids=np.concatenate([np.zeros(0, np.int64), *state.pop("_chunks_ids")]))
            store.settle()
            state.pop("_cache", None)
            state["_store"] = store
        self.__dict__.update(state)

    def _new_file_store(self, path, compression):
        id_dtype = np.int32 if (self._ids.size == 0 or self._ids.max() < 2**31) else np.int64
        # (the event engine's spikes: continuous times, ms, instead of step stamps)
        stamp = ("times", (np.float64, ())) if getattr(self, "_continuous", False) else ("steps", (np.int64, ()))
        store = _FileStore(path, "eventsim-spikes", dict([stamp, ("neuron_ids", (id_dtype, ()))]),
                           {"group_ids": self._ids}, self._file_attrs(), compression)
        return store

    @staticmethod
    def _empty(name):
        return np.zeros(0, np.float64 if name == "times" else np.int64)

    def _append(self, steps, ids):
        self._store.append(steps=steps, neuron_ids=ids)

    def _append_times(self, times, ids):
        """Continuous spike times (ms) of the event-driven engine."""
        self._store.append(times=times, neuron_ids=ids)

    def _gathered(self):
        """``(steps, neuron_ids)`` of every MPI rank's spikes, in the single process's order (collective)."""
        dist = self._net._dist
        steps, _ = dist.allgatherv(self._store.read("steps", self._empty("steps")), np.int64)
        ids, _ = dist.allgatherv(self._store.read("neuron_ids", self._empty("neuron_ids")), np.int64)
        order = np.lexsort((ids, steps))
        return steps[order], ids[order]

    @property
    def steps(self):
        if getattr(self, "_continuous", False):
            raise AttributeError("spikes of engine='event' have continuous times and no step stamps; use .times")
        if getattr(self._net, "_dist", None) is not None:
            return self._gathered()[0]
        return np.array(self._store.read("steps", self._empty("steps")), dtype=np.int64)

    @property
    def neuron_ids(self):
        if getattr(self._net, "_dist", None) is not None:
            return self._gathered()[1]
        return np.array(self._store.read("neuron_ids", self._empty("neuron_ids")), dtype=np.int64)

    @property
    def senders(self):
        return self._local(self.neuron_ids)

    @property
    def times(self):
        if getattr(self, "_continuous", False):
            return np.array(self._store.read("times", np.zeros(0)), dtype=np.float64)
        return self.steps * self._net.dt

    def __len__(self):
        if getattr(self._net, "_dist", None) is not None:
            return int(self._net._dist.allsum(np.array([self._store.rows]))[0])
        return int(self._store.rows)

    def rates(self, duration=None):
        """Mean firing rate of each neuron of the group (Hz) over ``duration`` ms (default: all simulated time)."""
        duration = self._net.t if duration is None else float(duration)
        if duration <= 0:
            raise ValueError(f"duration={duration} must be > 0 ms")
        counts = np.zeros(len(self.group), np.int64)
        for ids in self._store.blocks("neuron_ids", self._empty("neuron_ids")):
            counts += np.bincount(self._local(ids), minlength=len(self.group))
        if getattr(self._net, "_dist", None) is not None:
            counts = self._net._dist.allsum(counts)
        return counts / (duration * 1e-3)

    def __repr__(self):
        where = f", to {self.path!r}" if self.path else ""
        return f"SpikeRecorder({len(self.group)} neurons, {len(self)} spikes{where})"

    def to_neo(self, t_start=0.0, t_stop=None):
        """The spikes as neo ``SpikeTrain`` objects, one per neuron of the group, in the group's order.

        Times are in ms (``quantities``), so elephant's statistics apply
        directly (``elephant.statistics.mean_firing_rate`` gives 1/ms;
        ``.rescale("Hz")``).  Needs ``neo`` (``pip install 'eventsim[neo]'``).

        Parameters
        ----------
        t_start : float
            Start of the trains (ms), >= 0; spikes before it are left out.
        t_stop : float, optional
            End of the trains (ms), > ``t_start``; default the network's
            current time ``net.t`` (all simulated time).  Spikes after it
            are left out.

        Returns
        -------
        list of neo.SpikeTrain
            Train ``j`` holds the spikes of ``group[j]``, annotated with
            ``neuron_id`` (its network-wide index), ``position`` (``j``) and
            ``dt`` (the network's step, ms; spikes of the clock engine lie
            on its grid).
        """
        neo, pq = _neo()
        t_stop = float(self._net.t if t_stop is None else t_stop)
        t_start = float(t_start)
        if not (np.isfinite(t_start) and t_start >= 0):
            raise ValueError(f"t_start={t_start!r} must be a finite number >= 0 (ms)")
        if not (np.isfinite(t_stop) and t_stop > t_start):
            raise ValueError(f"t_stop={t_stop!r} must be > t_start={t_start!r} (ms); run the network first or "
                             "pass t_stop")
        times, senders = self.times, self.senders
        keep = (times >= t_start) & (times <= t_stop)
        times, senders = times[keep], senders[keep]
        order = np.argsort(senders, kind="stable")  # time order within each neuron
        bounds = np.searchsorted(senders[order], np.arange(len(self.group) + 1))
        trains = []
        for j, nid in enumerate(self._ids):
            t = times[order[bounds[j]:bounds[j + 1]]]
            trains.append(neo.SpikeTrain(t * pq.ms, t_start=t_start * pq.ms, t_stop=t_stop * pq.ms,
                                         name=f"neuron {int(nid)}", neuron_id=int(nid), position=j,
                                         dt=float(self._net.dt)))
        return trains


class StateRecorder(_Recorder):
    """Samples of one state variable of a group of neurons every ``interval_steps`` steps.

    Create with :meth:`eventsim.Network.record_state`.

    Attributes
    ----------
    variable : str
        The recorded state variable (``"v"`` in mV, ``"i_ex"``/``"i_in"`` in pA,
        ``"theta"`` and ``"v_th"`` in mV).
    steps : ndarray of int64
        Sample stamps; a sample at stamp ``k`` is the state at time ``k*dt``,
        after the update that ends there.
    times : ndarray of float64
        Sample times (ms).
    values : ndarray of float64, shape (n_samples, n_neurons)
        The samples, columns in the order of the recorded group.
    path : str or None
        The recording file (``to=``), or None in memory.
    """

    #: What it records (the engines select recorders by it: they import no recorder class).
    kind = "state"

    def __init__(self, net, group, variable, interval_steps, to=None, overwrite=False, compression=None):
        super().__init__(net, group)
        self.variable = variable
        self.interval_steps = int(interval_steps)
        dist = getattr(net, "_dist", None)
        # over MPI ranks: the positions in the group of the neurons this rank samples (its own)
        self._columns = None if dist is None else np.flatnonzero(
            dist.owner([(p.offset, p.n) for p in net.populations], self._ids) == dist.rank)
        if to is None:
            self._store = _MemoryStore(("steps", "values"))
        else:
            self._store = self._new_file_store(check_target(to, overwrite), compression)

    @property
    def unit(self):
        """The unit of the recorded variable (``"mV"``, ``"pA"``, ``"nS"``...; ``""`` if it has none)."""
        from .models.family import state_unit

        for p in self._net.populations:
            if ((self._ids >= p.offset) & (self._ids < p.offset + p.n)).any():
                return state_unit(p.model, self.variable)
        return state_unit(None, self.variable)

    def __setstate__(self, state):
        if "_store" not in state:  # recorded before streaming existed: lists of chunks in memory
            store = _MemoryStore(("steps", "values"))
            n = len(state["group"])
            store.append(steps=np.concatenate([np.zeros(0, np.int64), *state.pop("_steps")]),
                         values=np.concatenate([np.zeros((0, n)), *state.pop("_chunks")], axis=0))
            store.settle()
            state["_store"] = store
        self.__dict__.update(state)

    def _new_file_store(self, path, compression):
        attrs = dict(self._file_attrs(), variable=self.variable, unit=self.unit,
                     interval=self.interval_steps * self._net.dt, interval_steps=self.interval_steps)
        cols = getattr(self, "_columns", None)
        if cols is None:
            return _FileStore(path, "eventsim-state", {"steps": (np.int64, ()),
                                                       "values": (np.float64, (len(self.group),))},
                              {"group_ids": self._ids}, attrs, compression)
        # one MPI rank's file: its own columns, where they go in the group, and the group's size
        attrs["group_size"] = len(self.group)
        return _FileStore(path, "eventsim-state", {"steps": (np.int64, ()), "values": (np.float64, (cols.size,))},
                          {"group_ids": self._ids[cols], "group_positions": cols.astype(np.int64)}, attrs,
                          compression)

    def _empty(self, name):
        return np.zeros(0, np.int64) if name == "steps" else np.zeros((0, len(self.group)))

    def _append(self, steps, values):
        self._store.append(steps=steps, values=values)

    @property
    def steps(self):
        return np.array(self._store.read("steps", self._empty("steps")), dtype=np.int64)

    @property
    def times(self):
        return self.steps * self._net.dt

    @property
    def values(self):
        vals = np.array(self._store.read("values", self._empty("values")), dtype=np.float64)
        dist = getattr(self._net, "_dist", None)
        if dist is None:
            return vals
        # (MPI: each rank sampled the recorded neurons it owns, in the group's order; collective)
        n = vals.shape[0]
        owner = dist.owner([(p.offset, p.n) for p in self._net.populations], self._ids)
        flat, counts = dist.allgatherv(vals.ravel(), np.float64)
        out = np.empty((n, len(self.group)))
        off = 0
        for r in range(dist.size):
            cols = np.flatnonzero(owner == r)
            out[:, cols] = flat[off: off + counts[r]].reshape(n, cols.size)
            off += int(counts[r])
        return out

    def __len__(self):
        return int(self._store.rows)

    def __repr__(self):
        where = f", to {self.path!r}" if self.path else ""
        return (f"StateRecorder({self.variable!r}, {len(self.group)} neurons, every {self.interval_steps} "
                f"steps{where})")

    def to_neo(self):
        """The samples as one neo ``AnalogSignal`` of shape (n_samples, n_neurons).

        Columns in the group's order; units mV (``v``, ``theta``, ``v_th``)
        or pA (``i_ex``, ``i_in``); ``t_start`` is the first sample's time
        and ``sampling_period`` the recording interval (ms).  Needs ``neo``
        (``pip install 'eventsim[neo]'``).

        Returns
        -------
        neo.AnalogSignal
            Named after the variable, with the array annotation
            ``neuron_id`` (network-wide index of each column) and the
            annotations ``variable`` and ``dt`` (ms).
        """
        neo, pq = _neo()
        steps, values = self.steps, self.values
        period = self.interval_steps * self._net.dt
        if steps.size > 1 and np.any(np.diff(steps) != self.interval_steps):
            raise ValueError("the samples are not evenly spaced (the recording was resumed from another "
                             "checkpoint?); build the AnalogSignal from .times and .values instead")
        t0 = steps[0] * self._net.dt if steps.size else 0.0
        unit = self.unit or "dimensionless"
        return neo.AnalogSignal(values, units=unit, t_start=t0 * pq.ms, sampling_period=period * pq.ms,
                                name=self.variable, array_annotations={"neuron_id": self._ids.copy()},
                                variable=self.variable, dt=float(self._net.dt))


class WeightRecorder(_Recorder):
    """Samples of chosen connections' weights every ``interval_steps`` steps.

    Create with :meth:`eventsim.Network.record_weights`.  A sample at stamp
    ``k`` is the weights at time ``k*dt`` (after the deliveries of the spikes
    stamped up to ``k - 1``).  Files (``to=``) have the state recorders'
    layout with format ``eventsim-weights``: datasets ``steps`` and
    ``values`` (rows x connections), static ``connection_index`` (the
    connections' positions in the projection), ``pre_ids`` and ``post_ids``
    (network-wide indices of their neurons); attribute ``unit`` (mV, pA).
    Over MPI ranks each rank samples the recorded connections it holds (those
    onto its own neurons); ``values`` gathers them (collective), and a rank's
    file holds its own columns, with ``index_positions`` (where they go among
    ``index``) and the attribute ``index_size``; :func:`read_weights` reads
    the rank files as one recording.

    Attributes
    ----------
    projection : Projection
    index : ndarray of int64
        The recorded connections' positions in the projection's order.
    steps, times, values
        As for :class:`StateRecorder` (``values``: shape (n_samples, len(index))).
    """

    #: What it records (the engines select recorders by it: they import no recorder class).
    kind = "weights"

    def __init__(self, net, projection, index, interval_steps, to=None, overwrite=False, compression=None,
                 positions=None):
        from .network import NodeView

        index = np.asarray(index, np.int64)
        self._columns = self._local = None
        if positions is None:
            post = projection.post[index]
        else:  # (MPI, collective) ``positions``: this rank's connections' places in the whole projection
            dist = net._dist
            self._local = np.searchsorted(positions, index)
            mine = (self._local < positions.size)
            mine[mine] = positions[self._local[mine]] == index[mine]
            self._columns = np.flatnonzero(mine)
            self._local = self._local[self._columns]
            cols, _ = dist.allgatherv(self._columns, np.int64)
            got, _ = dist.allgatherv(projection.post[self._local].astype(np.int64), np.int64)
            if cols.size != index.size:
                raise RuntimeError(f"the ranks hold {cols.size} of the {index.size} recorded connections")
            post = np.empty(index.size, np.int64)
            post[cols] = got
        super().__init__(net, NodeView(net, "neuron", projection.target.ids[post]))
        self.projection = projection
        self.index = index
        self.index.setflags(write=False)
        self.interval_steps = int(interval_steps)
        if to is None:
            self._store = _MemoryStore(("steps", "values"))
        else:
            self._store = self._new_file_store(check_target(to, overwrite), compression)

    def _new_file_store(self, path, compression):
        p = self.projection
        exp = any(pop.model.synapse in ("exp", "alpha") and np.isin(self._ids, pop.ids).any() for pop in self._net.populations)
        unit = "pA" if exp else "mV"
        attrs = dict(self._file_attrs(), unit=unit, interval=self.interval_steps * self._net.dt,
                     interval_steps=self.interval_steps)
        cols = getattr(self, "_columns", None)
        if cols is None:
            static = {"connection_index": self.index, "pre_ids": p.source.ids[p.pre[self.index]],
                      "post_ids": self._ids}
        else:  # one MPI rank's file: its own columns and where they go among ``index``
            attrs["index_size"] = self.index.size
            static = {"connection_index": self.index[cols], "pre_ids": p.source.ids[p.pre[self._local]],
                      "post_ids": self._ids[cols], "index_positions": cols.astype(np.int64)}
        return _FileStore(path, "eventsim-weights", {"steps": (np.int64, ()),
                                                     "values": (np.float64, (self._width(),))},
                          static, attrs, compression)

    def _width(self):
        """Columns this process samples (over MPI ranks: its own)."""
        cols = getattr(self, "_columns", None)
        return self.index.size if cols is None else cols.size

    def _empty(self, name):
        return np.zeros(0, np.int64) if name == "steps" else np.zeros((0, self._width()))

    def _sample(self, step):
        """Append the sample at stamp ``step`` (called at the end of a chunk ending there)."""
        local = getattr(self, "_local", None)
        w = np.asarray(self.projection.weight, np.float64)[self.index if local is None else local]
        self._store.append(steps=np.array([step], np.int64), values=w[None, :])

    @property
    def steps(self):
        return np.array(self._store.read("steps", self._empty("steps")), dtype=np.int64)

    @property
    def times(self):
        return self.steps * self._net.dt

    @property
    def values(self):
        vals = np.array(self._store.read("values", self._empty("values")), dtype=np.float64)
        if getattr(self, "_columns", None) is None:
            return vals
        # (MPI: each rank sampled the recorded connections it holds; collective)
        dist = self._net._dist
        n = vals.shape[0]
        flat, counts = dist.allgatherv(vals.ravel(), np.float64)
        cols, ccounts = dist.allgatherv(self._columns, np.int64)
        out = np.empty((n, self.index.size))
        off = coff = 0
        for r in range(dist.size):
            c = cols[coff: coff + ccounts[r]]
            out[:, c] = flat[off: off + counts[r]].reshape(n, c.size)
            off += int(counts[r])
            coff += int(ccounts[r])
        return out

    def __len__(self):
        return int(self._store.rows)

    def __repr__(self):
        where = f", to {self.path!r}" if self.path else ""
        return f"WeightRecorder({self.index.size} connections, every {self.interval_steps} steps{where})"


# --------------------------------------------------------------------------- readers
class SpikeData(NamedTuple):
    """Spikes read from a file by :func:`read_spikes` (same meaning as on :class:`SpikeRecorder`)."""

    steps: np.ndarray        #: int64 step stamps (None in a file of the event engine: continuous times only)
    neuron_ids: np.ndarray   #: int64 network-wide neuron indices
    senders: np.ndarray      #: int64 positions within the recorded group
    times: np.ndarray        #: float64 spike times (ms)
    group_ids: np.ndarray    #: int64 network-wide indices of the recorded group
    dt: float                #: time step (ms)
    seed: int                #: network seed
    t_stop: float            #: simulated time covered by the file (ms)


class WeightData(NamedTuple):
    """Weight samples read from a file by :func:`read_weights`."""

    steps: np.ndarray             #: int64 sample stamps
    times: np.ndarray             #: float64 sample times (ms)
    values: np.ndarray            #: float64 (n_samples, n_connections)
    connection_index: np.ndarray  #: int64 the connections' positions in the projection
    pre_ids: np.ndarray           #: int64 network-wide indices of their sources
    post_ids: np.ndarray          #: int64 network-wide indices of their targets
    unit: str                     #: unit of ``values`` (mV or pA)
    dt: float                     #: time step (ms)
    interval: float               #: sampling interval (ms)
    t_stop: float                 #: simulated time covered by the file (ms)


class StateData(NamedTuple):
    """Samples read from a file by :func:`read_state`."""

    steps: np.ndarray        #: int64 sample stamps
    times: np.ndarray        #: float64 sample times (ms)
    values: np.ndarray       #: float64 (n_samples, n_neurons)
    group_ids: np.ndarray    #: int64 network-wide indices of the recorded neurons
    variable: str            #: state variable name
    unit: str                #: unit of ``values``
    dt: float                #: time step (ms)
    interval: float          #: sampling interval (ms)
    t_stop: float            #: simulated time covered by the file (ms)


def _open_for_reading(path, fmt):
    h5py = _h5py()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path!r}: no such recording file")
    try:
        f = h5py.File(path, "r", libver="latest", swmr=True)
    except OSError as exc:
        raise RecordingError(f"{path!r}: not a readable HDF5 file ({exc})") from None
    found = f.attrs.get("format")
    if found != fmt:
        f.close()
        raise RecordingError(f"{path!r}: not an {fmt} file (format={found!r})")
    return f


def _committed(f, path, names):
    rows, step = (int(x) for x in f["committed"][:])
    for nm in names:
        if f[nm].shape[0] < rows:
            raise RecordingError(f"{path!r}: dataset {nm!r} has {f[nm].shape[0]} rows but {rows} are committed")
    return rows, step


def rank_path(path, rank, n_ranks):
    """The file of MPI rank ``rank`` of ``n_ranks`` for a recording asked to go to ``path``:
    ``spikes.h5`` -> ``spikes.rank1-of-4.h5``."""
    root, ext = os.path.splitext(os.fspath(path))
    return f"{root}.rank{rank}-of-{n_ranks}{ext}"


def _rank_files(path):
    """The per-rank files of a recording made over MPI ranks as ``path``, or None when ``path`` is a file."""
    import glob
    import re

    path = os.fspath(path)
    if os.path.exists(path):
        return None
    root, ext = os.path.splitext(path)
    found = {}
    pat = re.compile(re.escape(os.path.basename(root)) + r"\.rank(\d+)-of-(\d+)" + re.escape(ext) + "$")
    for f in glob.glob(glob.escape(root) + ".rank*-of-*" + glob.escape(ext)):
        m = pat.match(os.path.basename(f))
        if m:
            found.setdefault(int(m[2]), {})[int(m[1])] = f
    if not found:
        return None
    if len(found) > 1:
        raise RecordingError(f"{path}: per-rank files of several rank counts ({sorted(found)}) are there")
    n, files = next(iter(found.items()))
    missing = [r for r in range(n) if r not in files]
    if missing:
        raise RecordingError(f"{path}: the files of ranks {missing} of {n} are missing")
    return [files[r] for r in range(n)]


def read_spikes(path):
    """Read a spike file written by a streaming :class:`SpikeRecorder` (or ``to_disk``).

    Works without a Network, also on a file that another process is still
    writing or that a crashed process left behind: returns exactly the
    committed spikes.  A recording streamed over ``R`` MPI ranks is one
    file per rank (:func:`rank_path`); ``read_spikes(path)`` with the path
    the recorder was given reads them all as one recording (in time order,
    ties by neuron index, up to the time that every rank has committed).

    Returns
    -------
    SpikeData
    """
    parts = _rank_files(path)
    if parts is not None:
        data = [read_spikes(p) for p in parts]
        t_stop = min(d.t_stop for d in data)
        steps = np.concatenate([d.steps for d in data])
        ids = np.concatenate([d.neuron_ids for d in data])
        keep = steps * data[0].dt <= t_stop + 1e-9 * max(1.0, t_stop)
        steps, ids = steps[keep], ids[keep]
        order = np.lexsort((ids, steps))
        d0 = data[0]
        g = d0.group_ids
        o = np.argsort(g, kind="stable")
        senders = o[np.searchsorted(g[o], ids[order])] if ids.size else np.zeros(0, np.int64)
        return SpikeData(steps[order], ids[order], senders.astype(np.int64), steps[order] * d0.dt, g, d0.dt,
                         d0.seed, t_stop)
    with _open_for_reading(path, "eventsim-spikes") as f:
        stamp = "times" if "times" in f else "steps"  # (the event engine's files: continuous times)
        rows, step = _committed(f, path, (stamp, "neuron_ids"))
        ids = f["neuron_ids"][:rows].astype(np.int64)
        group = f["group_ids"][()].astype(np.int64)
        dt, seed = float(f.attrs["dt"]), int(f.attrs["seed"])
        if stamp == "times":
            steps, times = None, f["times"][:rows].astype(np.float64)
        else:
            steps = f["steps"][:rows].astype(np.int64)
            times = steps * dt
        t_stop = step * dt
    order = np.argsort(group, kind="stable")
    senders = order[np.searchsorted(group[order], ids)] if ids.size else np.zeros(0, np.int64)
    return SpikeData(steps, ids, senders.astype(np.int64), times, group, dt, seed, t_stop)


def _rank_columns(parts, fmt, read, positions, size):
    """The per-rank files ``parts`` of a sampled recording read with ``read``: ``(data, where, rows, values)``,
    ``where[r]`` the places of rank ``r``'s columns (dataset ``positions``; attribute ``size`` the
    recording's width), ``rows`` the samples every rank has committed, ``values`` them assembled."""
    data, where = [], []
    for p in parts:
        with _open_for_reading(p, fmt) as f:
            where.append(f[positions][()].astype(np.int64))
            n = int(f.attrs[size])
        data.append(read(p))
    rows = min(d.steps.size for d in data)
    values = np.empty((rows, n))
    for d, pos in zip(data, where):
        values[:, pos] = d.values[:rows]
    return data, where, rows, values


def read_state(path):
    """Read a state file written by a streaming :class:`StateRecorder` (or ``to_disk``).

    A recording streamed over ``R`` MPI ranks is one file per rank, each with
    the columns of the rank's own neurons (:func:`rank_path`);
    ``read_state(path)`` with the path the recorder was given reads them as
    one recording, columns in the group's order, up to the time that every
    rank has committed.

    Returns
    -------
    StateData
    """
    parts = _rank_files(path)
    if parts is not None:
        data, where, rows, values = _rank_columns(parts, "eventsim-state", read_state, "group_positions",
                                                  "group_size")
        group = np.empty(values.shape[1], np.int64)
        for d, pos in zip(data, where):
            group[pos] = d.group_ids
        d0 = data[0]
        return StateData(d0.steps[:rows], d0.times[:rows], values, group, d0.variable, d0.unit, d0.dt, d0.interval,
                         min(d.t_stop for d in data))
    with _open_for_reading(path, "eventsim-state") as f:
        rows, step = _committed(f, path, ("steps", "values"))
        steps = f["steps"][:rows].astype(np.int64)
        values = f["values"][:rows].astype(np.float64)
        group = f["group_ids"][()].astype(np.int64)
        dt = float(f.attrs["dt"])
        a = f.attrs
        return StateData(steps, steps * dt, values, group, str(a["variable"]), str(a["unit"]), dt,
                         float(a["interval"]), step * dt)


def read_weights(path):
    """Read a weight file written by a streaming :class:`WeightRecorder` (``record_weights(..., to=path)``).

    A recording streamed over ``R`` MPI ranks is one file per rank, each with
    the columns of the connections the rank holds (:func:`rank_path`);
    ``read_weights(path)`` with the path the recorder was given reads them as
    one recording, columns in the recorder's ``index`` order, up to the time
    that every rank has committed.

    Returns
    -------
    WeightData
    """
    parts = _rank_files(path)
    if parts is not None:
        data, where, rows, values = _rank_columns(parts, "eventsim-weights", read_weights, "index_positions",
                                                  "index_size")
        index, pre, post = (np.empty(values.shape[1], np.int64) for _ in range(3))
        for d, pos in zip(data, where):
            index[pos], pre[pos], post[pos] = d.connection_index, d.pre_ids, d.post_ids
        d0 = data[0]
        return WeightData(d0.steps[:rows], d0.times[:rows], values, index, pre, post, d0.unit, d0.dt, d0.interval,
                          min(d.t_stop for d in data))
    with _open_for_reading(path, "eventsim-weights") as f:
        rows, step = _committed(f, path, ("steps", "values"))
        steps = f["steps"][:rows].astype(np.int64)
        values = f["values"][:rows].astype(np.float64)
        dt = float(f.attrs["dt"])
        a = f.attrs
        return WeightData(steps, steps * dt, values, f["connection_index"][()].astype(np.int64),
                          f["pre_ids"][()].astype(np.int64), f["post_ids"][()].astype(np.int64), str(a["unit"]),
                          dt, float(a["interval"]), step * dt)
