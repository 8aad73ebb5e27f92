"""Streaming recorders: spikes and state written to HDF5 as the run goes.

Checked against in-memory recorders of the same seed (bit for bit), after a
crash of the writing process (os._exit mid-chunk and SIGKILL at a random
moment), and across checkpoint save / load, including a file that went on
growing (or crashed) after the checkpoint.
"""

import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import eventsim as es  # noqa: E402
from eventsim import config  # noqa: E402
from eventsim.record import RecordingError, read_spikes, read_state  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNK = 50  # steps per engine chunk in these tests: many commits in short runs

BUILD = r"""
import numpy as np, eventsim as es
from eventsim import config

def build(spikes_to=None, state_to=None, seed=5):
    net = es.Network(dt=0.1, seed=seed)
    m1 = es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
    m2 = es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0)
    a = net.population(120, m1, v_init=es.Uniform(0.0, 20.0))
    b = net.population(40, m2, v_init=es.Uniform(0.0, 15.0))
    net.connect(a, a | b, es.FixedInDegree(20), weight=es.Normal(0.5, 0.1), delay=es.Uniform(0.1, 2.0))
    net.connect(b, a, es.FixedProbability(0.1), weight=-1.5, delay=0.7)
    net.connect(a, b, es.FixedProbability(0.1), weight=40.0, delay=1.2)
    noise = net.poisson(160, rate=15000.0)
    net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(120, 0.1), np.full(40, 25.0)], delay=0.1)
    sp = net.record_spikes(a[5:] | b, to=spikes_to)
    vm = net.record_state(b[::7], "v", interval=0.3, to=state_to)
    return net, sp, vm
"""


def _build(*args, **kw):
    ns = {}
    exec(BUILD, ns)
    return ns["build"](*args, **kw)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(config, "CHUNK_STEPS", CHUNK)


@pytest.fixture(scope="module")
def reference():
    """In-memory recording of 400 ms (4000 steps), same seed."""
    old = config.CHUNK_STEPS
    config.CHUNK_STEPS = CHUNK
    try:
        net, sp, vm = _build()
        net.run(400.0)
    finally:
        config.CHUNK_STEPS = old
    return dict(steps=sp.steps, ids=sp.neuron_ids, senders=sp.senders, vsteps=vm.steps, values=vm.values)


def _upto(ref, step):
    """The reference restricted to spikes / samples stamped at or before ``step``."""
    k, j = ref["steps"] <= step, ref["vsteps"] <= step
    return ref["steps"][k], ref["ids"][k], ref["vsteps"][j], ref["values"][j]


def _assert_spike_file_is(path, ref, step):
    sp = read_spikes(path)
    steps, ids, _, _ = _upto(ref, step)
    assert sp.t_stop == pytest.approx(step * 0.1)
    np.testing.assert_array_equal(sp.steps, steps)
    np.testing.assert_array_equal(sp.neuron_ids, ids)


def _assert_state_file_is(path, ref, step):
    vm = read_state(path)
    _, _, vsteps, values = _upto(ref, step)
    assert vm.t_stop == pytest.approx(step * 0.1)
    np.testing.assert_array_equal(vm.steps, vsteps)
    np.testing.assert_array_equal(vm.values, values)


def _assert_file_is(tmp_path, ref, step):
    _assert_spike_file_is(tmp_path / "s.h5", ref, step)
    _assert_state_file_is(tmp_path / "v.h5", ref, step)


def test_stream_equals_memory_and_documented_layout(tmp_path, reference):
    net, sp, vm = _build(tmp_path / "s.h5", tmp_path / "v.h5")
    for d in (13.7, 100.0, 0.0, 286.3):  # runs not aligned with chunks
        net.run(d)
    assert len(sp) == reference["steps"].size > 1000
    np.testing.assert_array_equal(sp.steps, reference["steps"])
    np.testing.assert_array_equal(sp.neuron_ids, reference["ids"])
    np.testing.assert_array_equal(sp.senders, reference["senders"])
    np.testing.assert_array_equal(sp.times, reference["steps"] * 0.1)
    np.testing.assert_array_equal(vm.steps, reference["vsteps"])
    np.testing.assert_array_equal(vm.values, reference["values"])
    assert sp.path == str(tmp_path / "s.h5")
    # the module-level readers, without a Network
    got = read_spikes(tmp_path / "s.h5")
    np.testing.assert_array_equal(got.senders, reference["senders"])
    np.testing.assert_array_equal(got.group_ids, sp.group.ids)
    assert (got.dt, got.seed, got.t_stop) == (0.1, 5, pytest.approx(400.0))
    st = read_state(tmp_path / "v.h5")
    assert (st.variable, st.unit, st.interval) == ("v", "mV", pytest.approx(0.3))
    np.testing.assert_array_equal(st.times, reference["vsteps"] * 0.1)
    with h5py.File(tmp_path / "s.h5", "r", swmr=True) as f:
        assert f.attrs["format"] == "eventsim-spikes" and f.attrs["format_version"] == 1
        assert f["steps"].dtype == np.int64 and f["neuron_ids"].dtype == np.int32
        assert list(f["committed"][:]) == [len(sp), 4000]
    with h5py.File(tmp_path / "v.h5", "r", swmr=True) as f:
        assert f["values"].shape == (reference["vsteps"].size, len(vm.group))
        assert f.attrs["interval_steps"] == 3


def test_gzip_compression_round_trips(tmp_path, reference):
    ns = {}
    exec(BUILD.replace("to=spikes_to)", "to=spikes_to, compression='gzip')"), ns)
    net, sp, _ = ns["build"](tmp_path / "s.h5")
    net.run(100.0)
    _assert_spike_file_is(tmp_path / "s.h5", reference, 1000)
    with h5py.File(tmp_path / "s.h5", "r", swmr=True) as f:
        assert f["steps"].compression == "gzip" and f["steps"].shuffle


def test_recorder_holds_no_growing_copy(tmp_path):
    net, sp, vm = _build(tmp_path / "s.h5", tmp_path / "v.h5")
    net.run(20.0)
    size = len(pickle.dumps(sp._store)), len(pickle.dumps(vm._store))
    n = len(sp)
    net.run(300.0)
    assert len(sp) > 5 * n
    for store, before in zip((sp._store, vm._store), size):  # counters may take a byte or two more
        assert len(pickle.dumps(store)) <= before + 16
    assert not any(isinstance(v, (list, np.ndarray)) for v in vars(sp._store).values())


def test_bad_targets_are_refused(tmp_path):
    net = es.Network(dt=0.1)
    pop = net.population(3, es.LIF())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        net.record_spikes(pop, to=tmp_path / "nowhere" / "s.h5")
    with pytest.raises(IsADirectoryError):
        net.record_spikes(pop, to=tmp_path)
    (tmp_path / "old.h5").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        net.record_state(pop, "v", to=tmp_path / "old.h5")
    assert (tmp_path / "old.h5").read_bytes() == b"keep me"
    with pytest.raises(TypeError, match="file path"):
        net.record_spikes(pop, to=3)
    with pytest.raises(ValueError, match="compression"):
        net.record_spikes(pop, to=tmp_path / "c.h5", compression="zstd")
    with pytest.raises(ValueError, match="only to recorders streaming"):
        net.record_spikes(pop, compression="gzip")
    with pytest.raises(ValueError, match="unknown state variable"):
        net.record_state(pop, "theta", to=tmp_path / "t.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.h5"]  # nothing half-made
    rec = net.record_spikes(pop, to=tmp_path / "old.h5", overwrite=True)
    assert len(rec) == 0 and read_spikes(tmp_path / "old.h5").steps.size == 0
    with pytest.raises(ValueError, match="another recorder"):
        net.record_state(pop, "v", to=tmp_path / "old.h5", overwrite=True)
    with pytest.raises(FileNotFoundError):
        read_spikes(tmp_path / "missing.h5")
    net.record_state(pop, "v", to=tmp_path / "v.h5")
    with pytest.raises(RecordingError, match="not an eventsim-spikes file"):
        read_spikes(tmp_path / "v.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5" * 100)
    with pytest.raises(RecordingError, match="not a readable HDF5 file"):
        read_state(tmp_path / "junk.h5")


def test_to_disk_writes_the_same_layout(tmp_path, reference):
    net, sp, vm = _build()
    net.run(100.0)
    sp.to_disk(tmp_path / "s.h5")
    vm.to_disk(tmp_path / "v.h5")
    _assert_file_is(tmp_path, reference, 1000)
    with pytest.raises(FileExistsError):
        sp.to_disk(tmp_path / "s.h5")


CHILD = BUILD + r"""
import os, signal, sys, time
from eventsim import config, record
config.CHUNK_STEPS = 50
mode, out = sys.argv[1], sys.argv[2]
net, sp, vm = build(os.path.join(out, "s.h5"), os.path.join(out, "v.h5"))
commits = [0]
real_commit, real_append = record._FileStore.commit, record._FileStore.append

def commit(self, step):
    if mode == "exit" and self.path.endswith("s.h5"):
        commits[0] += 1
        if commits[0] == 5:        # die inside the 5th chunk's commit: rows written and flushed,
            self._f.flush()        # their count not yet
            os._exit(3)
    real_commit(self, step)
    if mode == "kill" and self.path.endswith("v.h5"):
        commits[0] += 1
        print(step, flush=True)

def append(self, **cols):
    real_append(self, **cols)
    if mode == "kill":             # widen the window between writing rows and committing them,
        time.sleep(0.002 if commits[0] < 10 else 0.05)   # more so once the parent is about to kill

record._FileStore.commit, record._FileStore.append = commit, append
if mode == "checkpoint":
    net.run(100.0)
    net.save(os.path.join(out, "ck.esim"))
    net.run(130.0)
    os.kill(os.getpid(), signal.SIGKILL)   # the files grew after the checkpoint, then the process died
net.run(400.0)
"""


def _child(mode, tmp_path, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", CHILD, mode, str(tmp_path)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_crash_inside_a_commit_keeps_exactly_the_flushed_chunks(tmp_path, reference):
    proc = _child("exit", tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    with h5py.File(tmp_path / "s.h5", "r", swmr=True) as f:
        rows, step = f["committed"][:]
        assert f["steps"].shape[0] > rows  # the 5th chunk's rows are in the file, uncommitted
    assert step == 4 * CHUNK
    _assert_file_is(tmp_path, reference, 4 * CHUNK)


def test_sigkill_at_a_random_moment_keeps_exactly_the_committed_chunks(tmp_path, reference):
    proc = _child("kill", tmp_path)
    try:
        for line in proc.stdout:
            if int(line) >= 10 * CHUNK:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    # the two files commit one after the other: each holds exactly its own committed chunks
    s_step = round(read_spikes(tmp_path / "s.h5").t_stop / 0.1)
    v_step = round(read_state(tmp_path / "v.h5").t_stop / 0.1)
    assert s_step >= 10 * CHUNK and s_step % CHUNK == 0 and v_step in (s_step, s_step - CHUNK)
    _assert_spike_file_is(tmp_path / "s.h5", reference, s_step)
    _assert_state_file_is(tmp_path / "v.h5", reference, v_step)


def test_resume_after_crash_truncates_to_the_checkpoint(tmp_path, reference):
    proc = _child("checkpoint", tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    assert read_spikes(tmp_path / "s.h5").t_stop == pytest.approx(230.0)  # grew after the checkpoint
    net = es.Network.load(tmp_path / "ck.esim")
    sp, vm = net.recorders
    # reading before the run gives the checkpoint's rows and leaves the file alone
    np.testing.assert_array_equal(sp.steps, _upto(reference, 1000)[0])
    assert read_spikes(tmp_path / "s.h5").t_stop == pytest.approx(230.0)
    net.run(300.0)
    _assert_file_is(tmp_path, reference, 4000)
    np.testing.assert_array_equal(vm.values, reference["values"])


def test_resume_in_process_after_the_file_grew(tmp_path, reference):
    net, sp, vm = _build(tmp_path / "s.h5", tmp_path / "v.h5")
    net.run(150.0)
    net.save(tmp_path / "ck.esim")
    net.run(77.0)
    loaded = es.Network.load(tmp_path / "ck.esim")
    with pytest.raises(RecordingError, match="open for writing by another recorder"):
        loaded.run(10.0)
    net.close()
    loaded = es.Network.load(tmp_path / "ck.esim")
    assert read_spikes(tmp_path / "s.h5").t_stop == pytest.approx(227.0)
    loaded.run(250.0)
    loaded.close()
    _assert_file_is(tmp_path, reference, 4000)


def test_resume_refuses_a_missing_or_foreign_file(tmp_path):
    net, sp, vm = _build(tmp_path / "s.h5", tmp_path / "v.h5")
    net.run(20.0)
    net.save(tmp_path / "ck.esim")
    net.close()
    os.rename(tmp_path / "s.h5", tmp_path / "moved.h5")
    with pytest.raises(RecordingError, match="missing"):
        es.Network.load(tmp_path / "ck.esim").run(5.0)
    other, _, _ = _build(tmp_path / "s.h5", tmp_path / "w.h5")  # a new recording at the same path
    other.run(5.0)
    other.close()
    with pytest.raises(RecordingError, match="another recording"):
        es.Network.load(tmp_path / "ck.esim").run(5.0)


def test_checkpoints_from_before_streaming_still_load():
    net, sp, vm = _build()
    net.run(30.0)
    steps, ids, vsteps, values = sp.steps, sp.neuron_ids, vm.steps, vm.values
    # the attributes an in-memory recorder had before recorders got a storage backend
    old_sp = {k: v for k, v in vars(sp).items() if k != "_store"}
    old_sp.update(_chunks_steps=[steps[:10], steps[10:]], _chunks_ids=[ids[:10], ids[10:]], _cache=None)
    old_vm = {k: v for k, v in vars(vm).items() if k != "_store"}
    old_vm.update(_steps=[vsteps], _chunks=[values])
    sp2 = es.SpikeRecorder.__new__(es.SpikeRecorder)
    sp2.__setstate__(old_sp)
    vm2 = es.StateRecorder.__new__(es.StateRecorder)
    vm2.__setstate__(old_vm)
    np.testing.assert_array_equal(sp2.steps, steps)
    np.testing.assert_array_equal(sp2.senders, sp.senders)
    np.testing.assert_array_equal(vm2.values, values)
    assert len(sp2) == len(sp) and sp2.path is None


# ---------------------------------------------------------------------------------- failures mid-run
def _mixed(tmp_path):
    """Memory recorders first, then the same groups streamed (the order a failure must not matter to)."""
    net, sp, vm = _build()
    net.record_spikes(sp.group, to=tmp_path / "s.h5")
    net.record_state(vm.group, "v", interval=0.3, to=tmp_path / "v.h5")
    return net, sp, vm


def _assert_memory_is(sp, vm, ref, step):
    steps, ids, vsteps, values = _upto(ref, step)
    np.testing.assert_array_equal(sp.steps, steps)
    np.testing.assert_array_equal(sp.neuron_ids, ids)
    np.testing.assert_array_equal(vm.steps, vsteps)
    np.testing.assert_array_equal(vm.values, values)


def _assert_state_is(net, step):
    """The network's state equals that of an uninterrupted network run to ``step``."""
    other, _, _ = _build()
    other.run(step * 0.1)
    for name, a, b in zip(net._plan.state._fields, net._plan.state, other._plan.state):
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(net._plan.ring, other._plan.ring)
    np.testing.assert_array_equal(net._plan.counters, other._plan.counters)


@pytest.mark.parametrize("n_commit", [1, 5, 6])
def test_a_file_removed_mid_run_raises_and_resumes_exactly_once_put_back(tmp_path, reference, monkeypatch,
                                                                         n_commit):
    from eventsim import record

    net, sp, vm = _mixed(tmp_path)
    real = record._FileStore.commit
    calls = [0]

    def commit(self, step):  # the spike file is moved away just before the chunk's commit
        if self.path.endswith("s.h5"):
            calls[0] += 1
            if calls[0] == n_commit:
                os.rename(self.path, tmp_path / "away.h5")
        real(self, step)

    monkeypatch.setattr(record._FileStore, "commit", commit)
    with pytest.raises(RecordingError, match=r"s\.h5: the recording file was removed during the run"):
        net.run(400.0)
    step = (n_commit - 1) * CHUNK
    assert net.step == step
    _assert_memory_is(sp, vm, reference, step)
    _assert_state_is(net, step)
    with pytest.raises(RecordingError, match="missing"):  # not yet put back: refused again, nothing changes
        net.run(10.0)
    assert net.step == step
    os.rename(tmp_path / "away.h5", tmp_path / "s.h5")
    _assert_file_is(tmp_path, reference, step)
    net.run(400.0 - step * 0.1)
    net.close()
    _assert_memory_is(sp, vm, reference, 4000)
    _assert_file_is(tmp_path, reference, 4000)


@pytest.mark.parametrize("n_write", [1, 2, 4, 9, 14, 15, 16, 23])
def test_a_full_disk_mid_run_raises_and_resumes_exactly_once_fixed(tmp_path, reference, monkeypatch, n_write):
    """Every write into the files fails from the ``n_write``-th on (rows or their count), until fixed."""
    import errno

    net, sp, vm = _mixed(tmp_path)
    real = h5py.Dataset.__setitem__
    calls = [0]

    def setitem(self, key, value):
        calls[0] += 1
        if calls[0] >= n_write:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", setitem)
    with pytest.raises(OSError, match="No space left"):
        net.run(400.0)
    step = net.step
    assert step % CHUNK == 0 and step < 4000
    _assert_memory_is(sp, vm, reference, step)
    _assert_state_is(net, step)
    monkeypatch.setattr(h5py.Dataset, "__setitem__", real)  # space freed
    net.run(400.0 - step * 0.1)
    net.close()
    _assert_memory_is(sp, vm, reference, 4000)
    _assert_file_is(tmp_path, reference, 4000)


# ---------------------------------------------------------------------------------- event engine
def test_event_engine_streams_state_to_a_file(tmp_path, monkeypatch):
    def build(to):
        net = es.Network(dt=0.1, seed=2, engine="event")
        pop = net.population(20, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0,
                                        tau_syn_in=4.0), v_init=es.Uniform(0.0, 15.0))
        noise = net.poisson(20, rate=8000.0)
        net.connect(noise, pop, es.OneToOne(), weight=60.0, delay=0.1)
        net.connect(pop, pop, es.FixedInDegree(4), weight=-30.0, delay=0.5)
        return net, net.record_state(pop[::3], "i_ex", interval=0.2, to=to)

    mem_net, mem = build(None)
    mem_net.run(30.0)
    net, rec = build(tmp_path / "i.h5")
    net.run(12.5)  # several windows of CHUNK steps, then a partial one
    part = read_state(tmp_path / "i.h5")
    assert part.t_stop == pytest.approx(12.5) and part.unit == "pA" and part.variable == "i_ex"
    k = mem.steps <= 125
    np.testing.assert_array_equal(part.steps, mem.steps[k])
    np.testing.assert_array_equal(part.values, mem.values[k])
    net.run(17.5)
    net.close()
    full = read_state(tmp_path / "i.h5")
    assert full.values.shape == (150, 7) and full.t_stop == pytest.approx(30.0)
    np.testing.assert_array_equal(full.steps, mem.steps)
    np.testing.assert_array_equal(full.values, mem.values)
    np.testing.assert_array_equal(rec.values, mem.values)
    copy = read_state(mem.to_disk(tmp_path / "copy.h5"))  # an in-memory recording written afterwards
    assert copy.t_stop == pytest.approx(30.0)
    np.testing.assert_array_equal(copy.values, mem.values)


def _event_spikes(to):
    net = es.Network(dt=0.1, seed=2, engine="event")
    pop = net.population(20, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0),
                         v_init=es.Uniform(0.0, 15.0))
    noise = net.poisson(20, rate=8000.0)
    net.connect(noise, pop, es.OneToOne(), weight=60.0, delay=0.1)
    net.connect(pop, pop, es.FixedInDegree(4), weight=-30.0, delay=0.5)
    return net, net.record_spikes(pop[::2], to=to)


def test_event_engine_streams_spikes_with_their_continuous_times(tmp_path):
    mem_net, mem = _event_spikes(None)
    mem_net.run(60.0)
    assert len(mem) > 50 and np.any(np.abs(mem.times / 0.1 - np.rint(mem.times / 0.1)) > 1e-6)  # (off the grid)
    net, rec = _event_spikes(tmp_path / "s.h5")
    net.run(12.5)
    part = read_spikes(tmp_path / "s.h5")
    assert part.steps is None and part.t_stop == pytest.approx(12.5)
    k = mem.times <= 12.5
    np.testing.assert_array_equal(part.times, mem.times[k])
    np.testing.assert_array_equal(part.neuron_ids, mem.neuron_ids[k])
    with h5py.File(tmp_path / "s.h5", "r", swmr=True) as f:  # the documented layout
        assert f["times"].dtype == np.float64 and "steps" not in f and f.attrs["format"] == "eventsim-spikes"
    net.save(tmp_path / "ck.esim")
    net.run(20.0)
    net.close()
    back = es.Network.load(tmp_path / "ck.esim")  # resumes the file from the checkpoint's rows
    back.run(47.5)
    back.close()
    full = read_spikes(tmp_path / "s.h5")
    assert full.t_stop == pytest.approx(60.0)
    for got in (full, back.recorders[0]):
        np.testing.assert_array_equal(got.times, mem.times)
        np.testing.assert_array_equal(got.senders, mem.senders)
    copy = read_spikes(mem.to_disk(tmp_path / "copy.h5"))  # an in-memory recording written afterwards
    np.testing.assert_array_equal(copy.times, mem.times)
    with pytest.raises(AttributeError, match="continuous"):
        rec.steps


def test_event_engine_spike_file_survives_a_failed_commit(tmp_path, monkeypatch):
    """A write that fails inside a window's commit leaves the file at the last committed window and the
    network before that window; the run resumes exactly once the disk works again."""
    from eventsim import record

    mem_net, mem = _event_spikes(None)
    mem_net.run(40.0)
    net, rec = _event_spikes(tmp_path / "s.h5")
    net.run(10.0)
    real, calls = record._FileStore.commit, [0]

    def failing(self, step):
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(28, "No space left on device")
        real(self, step)

    monkeypatch.setattr(record._FileStore, "commit", failing)
    with pytest.raises(OSError, match="No space"):
        net.run(30.0)
    t_fail = net.t
    assert 10.0 <= t_fail < 40.0
    assert read_spikes(tmp_path / "s.h5").t_stop == pytest.approx(t_fail)
    np.testing.assert_array_equal(rec.times, mem.times[mem.times <= t_fail])
    monkeypatch.setattr(record._FileStore, "commit", real)
    net.run(40.0 - t_fail)
    net.close()
    np.testing.assert_array_equal(read_spikes(tmp_path / "s.h5").times, mem.times)


def test_memory_recordings_stored_before_staging_still_load():
    """A checkpoint's in-memory store of the layout before staged rows (one chunk list per column)."""
    from eventsim.record import _MemoryStore

    steps, ids = np.array([3, 5, 5, 9]), np.array([1, 0, 2, 1])
    old = {"_names": ("steps", "neuron_ids"), "_chunks": {"steps": [steps[:1], steps[1:]],
                                                         "neuron_ids": [ids[:1], ids[1:]]}, "rows": 4}
    store = _MemoryStore.__new__(_MemoryStore)
    store.__setstate__(old)
    assert store.rows == 4
    np.testing.assert_array_equal(store.read("steps", None), steps)
    np.testing.assert_array_equal(store.read("neuron_ids", None), ids)
    store.append(steps=np.array([11]), neuron_ids=np.array([0]))
    store.rollback()
    assert store.rows == 4 and store.read("steps", None).size == 4
    store.append(steps=np.array([11]), neuron_ids=np.array([0]))
    store.settle()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(store)).read("steps", None), np.r_[steps, 11])
