"""Checkpoints are data only: crafted, oversized, corrupted or unauthentic files raise CheckpointError and
run nothing; old pickled files load only on request; stale temporary files of killed saves are removed."""

import hashlib
import json
import os
import pathlib
import pickle
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import eventsim as es
from eventsim.checkpoint import CheckpointError, LegacyCheckpointWarning
from eventsim.engines import event_cpu as ev

HEAD = struct.Struct("<8sIIQQ")


def _net(engine="clock"):
    net = es.Network(dt=0.1, seed=5, engine=engine)
    a = net.population(30, es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0),
                       v_init=es.Uniform(0.0, 20.0))
    b = net.population(10, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0))
    net.connect(a, a | b, es.FixedInDegree(5), weight=es.Normal(2.0, 0.5), delay=es.Uniform(0.1, 2.0))
    net.connect(b, a, es.FixedProbability(0.3), weight=-100.0, delay=0.7)
    noise = net.poisson(40, rate=20000.0)
    net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(30, 1.0), np.full(10, 120.0)], delay=0.1)
    stim = net.spike_source([0, 1], [2.0, 3.0])
    net.connect(stim, a[:4], es.AllToAll(), weight=5.0, delay=1.0)
    dc = net.dc(200.0, start=5.0, stop=15.0)
    net.connect(dc, b[:3], es.AllToAll(), weight=1.0)
    net.record_spikes(a | b)
    net.record_state(b[::2], "v", interval=0.5)
    return net


def _split(path):
    data = pathlib.Path(path).read_bytes()
    _, _, flags, n_doc, n_arr = HEAD.unpack(data[:HEAD.size])
    return json.loads(data[96:96 + n_doc]), bytearray(data[96 + n_doc:]), flags


def _write(path, doc, arrays, n_doc=None, n_arr=None, flags=0, mac=bytes(32)):
    """A file as an attacker would make it: any content, with a correct SHA-256."""
    text = json.dumps(doc).encode()
    head = HEAD.pack(b"ESIMCKPT", 4, flags, len(text) if n_doc is None else n_doc,
                     len(arrays) if n_arr is None else n_arr)
    pathlib.Path(path).write_bytes(head + hashlib.sha256(head + text + bytes(arrays)).digest() + mac + text
                                   + bytes(arrays))


def _legacy(path, payload, version=3):
    pathlib.Path(path).write_bytes(struct.pack("<8sIQ32s", b"ESIMCKPT", version, len(payload),
                                               hashlib.sha256(payload).digest()) + payload)


class _Touch:
    """Unpickling this creates the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_crafted_pickle_with_a_valid_checksum_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    payload = pickle.dumps(_Touch(str(marker)), protocol=5)
    _legacy(tmp_path / "evil.ckpt", payload)
    with pytest.raises(CheckpointError, match="allow_pickle=True"):
        es.Network.load(tmp_path / "evil.ckpt")
    assert not marker.exists()
    # the same payload presented as the current version: not a document, nothing run
    head = HEAD.pack(b"ESIMCKPT", 4, 0, len(payload), 0)
    (tmp_path / "evil4.ckpt").write_bytes(head + hashlib.sha256(head + payload).digest() + bytes(32) + payload)
    with pytest.raises(CheckpointError, match="invalid checkpoint content|not an eventsim"):
        es.Network.load(tmp_path / "evil4.ckpt")
    assert not marker.exists()
    # the marker does detect execution: the explicit opt-in unpickles (and warns)
    with pytest.warns(LegacyCheckpointWarning), pytest.raises(CheckpointError, match="does not hold"):
        es.Network.load(tmp_path / "evil.ckpt", allow_pickle=True)
    assert marker.exists()


def test_legacy_pickle_loads_only_on_request_and_continues_exactly(tmp_path):
    ref = _net()
    ref.run(30.0)
    net = _net()
    net.run(15.0)
    _legacy(tmp_path / "old.ckpt", pickle.dumps(net, protocol=5))
    with pytest.raises(CheckpointError, match="version 3 is a pickle"):
        es.Network.load(tmp_path / "old.ckpt")
    with pytest.warns(LegacyCheckpointWarning, match="save it again"):
        old = es.Network.load(tmp_path / "old.ckpt", allow_pickle=True)
    old.save(tmp_path / "new.ckpt")  # converted
    again = es.Network.load(tmp_path / "new.ckpt")
    again.run(15.0)
    np.testing.assert_array_equal(again.recorders[0].steps, ref.recorders[0].steps)
    np.testing.assert_array_equal(again.recorders[1].values, ref.recorders[1].values)


def test_legacy_event_plan_with_the_old_parameter_rows_continues_exactly(tmp_path):
    # an event-engine plan pickled before the families declared their event functions: 15 parameter columns,
    # the record flag in column 14, no tuple of family tags; loaded, it continues bit for bit
    def build():
        net = es.Network(dt=0.1, seed=5, engine="event")
        a = net.population(20, es.LIF(tau_m=10.0, v_th=15.0, t_ref=2.0, i_e=500.0, tau_syn_ex=2.0, tau_syn_in=5.0),
                           v_init=es.Uniform(0.0, 14.0))
        b = net.population(10, es.ALIF(tau_m=10.0, v_th=15.0, t_ref=2.0, i_e=400.0, tau_theta=20.0, d_theta=1.0))
        net.connect(a | b, a | b, es.FixedInDegree(3), weight=20.0, delay=1.0)
        net.record_spikes(a[:10] | b)
        net.record_state(b[:3], "v")
        return net

    ref = build()
    ref.run(40.0)
    net = build()
    net.run(20.0)
    plan = net._plan
    old = np.zeros((plan.PP.shape[0], 15))
    old[:, 14] = plan.PP[:, ev.RECORD]
    old[:, 0] = np.arange(old.shape[0])  # other columns: whatever they held
    plan.PP = old
    del plan.fams
    _legacy(tmp_path / "old.ckpt", pickle.dumps(net, protocol=5))
    with pytest.warns(LegacyCheckpointWarning):
        again = es.Network.load(tmp_path / "old.ckpt", allow_pickle=True)
    again.run(20.0)
    assert len(ref.recorders[0].times) > 20
    np.testing.assert_array_equal(again.recorders[0].times, ref.recorders[0].times)
    np.testing.assert_array_equal(again.recorders[0].senders, ref.recorders[0].senders)
    np.testing.assert_array_equal(again.recorders[1].values, ref.recorders[1].values)


def test_lengths_beyond_the_file_raise_checkpoint_error(tmp_path):
    net = _net()
    net.run(2.0)
    net.save(tmp_path / "n.ckpt")
    doc, arrays, _ = _split(tmp_path / "n.ckpt")
    size = (tmp_path / "n.ckpt").stat().st_size
    _write(tmp_path / "a.ckpt", doc, arrays, n_doc=size + 2**40)
    with pytest.raises(CheckpointError, match="exceeds the limit"):
        es.Network.load(tmp_path / "a.ckpt")
    _write(tmp_path / "b.ckpt", doc, arrays, n_arr=len(arrays) + 2**40)
    with pytest.raises(CheckpointError, match="truncated"):
        es.Network.load(tmp_path / "b.ckpt")
    name = doc["populations"][0]["v_init"]["array"]
    doc["arrays"][name]["shape"] = [2**40]
    _write(tmp_path / "c.ckpt", doc, arrays)
    with pytest.raises(CheckpointError, match="outside the array region"):
        es.Network.load(tmp_path / "c.ckpt")
    payload = b"x" * 100
    (tmp_path / "d.ckpt").write_bytes(struct.pack("<8sIQ32s", b"ESIMCKPT", 3, len(payload) + 2**40,
                                                  hashlib.sha256(payload).digest()) + payload)
    with pytest.raises(CheckpointError, match="truncated"):
        es.Network.load(tmp_path / "d.ckpt", allow_pickle=True)


def test_directories_fifos_empty_foreign_and_damaged_files(tmp_path):
    with pytest.raises(CheckpointError, match="directory"):
        es.Network.load(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(CheckpointError, match="not a regular file"):
        es.Network.load(tmp_path / "fifo")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(CheckpointError, match="truncated"):
        es.Network.load(tmp_path / "empty")
    (tmp_path / "foreign").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    with pytest.raises(CheckpointError, match="not an eventsim checkpoint"):
        es.Network.load(tmp_path / "foreign")
    net = _net()
    net.run(2.0)
    net.save(tmp_path / "n.ckpt")
    data = (tmp_path / "n.ckpt").read_bytes()
    n_doc = HEAD.unpack(data[:HEAD.size])[3]
    for cut in (20, 96, 96 + n_doc // 2, 96 + n_doc + 10, len(data) - 1):
        (tmp_path / "cut").write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated"):
            es.Network.load(tmp_path / "cut")
    for at in (40, 96 + n_doc // 2, len(data) - 70):
        bad = bytearray(data)
        bad[at] ^= 0x10
        (tmp_path / "bad").write_bytes(bytes(bad))
        with pytest.raises(CheckpointError, match="checksum"):
            es.Network.load(tmp_path / "bad")


def _edit(tmp_path, change, engine="clock"):
    net = _net(engine)
    net.run(20.0)
    net.save(tmp_path / "n.ckpt")
    doc, arrays, _ = _split(tmp_path / "n.ckpt")

    def put(name, values):
        spec = doc["arrays"][name]
        a = np.frombuffer(arrays, np.dtype(spec["dtype"]), int(np.prod(spec["shape"])), spec["offset"]).reshape(spec["shape"]).copy()
        a[...] = values(a) if callable(values) else values
        arrays[spec["offset"]:spec["offset"] + a.nbytes] = a.tobytes()

    change(doc, put)
    _write(tmp_path / "x.ckpt", doc, arrays)
    return tmp_path / "x.ckpt"


@pytest.mark.parametrize("change, match", [
    (lambda d, put: d["populations"][0].update(model="system"), "model 'system' is not one of"),
    (lambda d, put: d["populations"][0]["params"].update(tau_m=-1.0), "tau_m"),
    (lambda d, put: d["populations"][0]["params"].update(command="rm"), "invalid checkpoint content"),
    (lambda d, put: d["arrays"][d["populations"][0]["v_init"]["array"]].update(dtype="|O"), "dtype"),
    (lambda d, put: put(d["projections"][0]["post_idx"]["array"], 10**6), "out of range"),
    (lambda d, put: d["network"].update(dt=-0.1), "dt"),
    (lambda d, put: put("plan.pend_n", 10**9), "pend_n"),
    (lambda d, put: (put("plan.pend_n", 1), put("plan.pend", -5)), "plan.pend"),
    (lambda d, put: put("plan.ss_ptr", 10**6), "plan.ss_ptr"),
    (lambda d, put: d["plan"]["arrays"].pop("ring"), "plan: arrays"),
    (lambda d, put: d["plan"].update(spike_buffer=2**50), "spike_buffer"),
])
def test_crafted_content_with_a_valid_checksum_is_validated(tmp_path, change, match):
    path = _edit(tmp_path, change)
    with pytest.raises(CheckpointError, match=match):
        es.Network.load(path)


@pytest.mark.parametrize("change, match", [
    (lambda d, put: put("plan.Q.1", 10**6), "plan.Q"),
    (lambda d, put: put("plan.X.heap", -1), "X.heap|crossing heap"),
    (lambda d, put: put("plan.SRC.ptr", lambda a: a + 10**6), "SRC.ptr"),
    (lambda d, put: put("plan.SRC.spos", [0, 10**6]), "SRC"),
    (lambda d, put: put("plan.SS", lambda a: np.where(np.arange(a.shape[1]) == 6, 1e9, a)), "classes"),
])
def test_crafted_event_engine_state_is_validated(tmp_path, change, match):
    path = _edit(tmp_path, change, engine="event")
    with pytest.raises(CheckpointError, match=match):
        es.Network.load(path)


def test_hmac_authenticates_the_file(tmp_path):
    key = b"k" * 32
    net = _net()
    net.run(5.0)
    net.save(tmp_path / "s.ckpt", key=key)
    net.save(tmp_path / "u.ckpt")
    assert es.Network.load(tmp_path / "s.ckpt", key=key).t == 5.0
    assert es.Network.load(tmp_path / "s.ckpt").t == 5.0  # the checksum still guards it
    with pytest.raises(CheckpointError, match="HMAC mismatch"):
        es.Network.load(tmp_path / "s.ckpt", key=b"other key")
    with pytest.raises(CheckpointError, match="carries no HMAC"):
        es.Network.load(tmp_path / "u.ckpt", key=key)
    doc, arrays, flags = _split(tmp_path / "s.ckpt")
    mac = (tmp_path / "s.ckpt").read_bytes()[64:96]
    doc["network"]["seed"] = 6  # altered, checksum recomputed, the old MAC kept
    _write(tmp_path / "t.ckpt", doc, arrays, flags=flags, mac=mac)
    with pytest.raises(CheckpointError, match="HMAC mismatch"):
        es.Network.load(tmp_path / "t.ckpt", key=key)
    _write(tmp_path / "v.ckpt", doc, arrays, flags=0)  # the MAC stripped
    with pytest.raises(CheckpointError, match="carries no HMAC"):
        es.Network.load(tmp_path / "v.ckpt", key=key)
    with pytest.raises(TypeError, match="key="):
        net.save(tmp_path / "w.ckpt", key="secret")
    assert not (tmp_path / "w.ckpt").exists()


KILLED_SAVE = r"""
import os, signal, sys
import eventsim as es, eventsim.checkpoint as ck
net = es.Network(dt=0.1)
net.population(10, es.LIF())
net.run(1.0)
ck.os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)   # die with the temporary file written
net.save(os.path.join(sys.argv[1], "n.ckpt"))
"""


def test_the_next_save_removes_temporary_files_of_killed_saves(tmp_path):
    out = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(tmp_path)], capture_output=True, timeout=300)
    assert out.returncode == -signal.SIGKILL, out.stderr
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".ckpt-") and left[0].endswith(".tmp")
    # files that must stay: a save in progress in a live process, someone else's files, a fresh old-style name
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = left[0].split("-")
        live[2] = str(sleeper.pid)
        keep = ["-".join(live), ".ckpt-notes.txt", ".n.h5.abcdefgh.tmp", ".ckpt-abcd1234"]
        for name in keep + [".ckpt-old12345"]:
            (tmp_path / name).write_bytes(b"x")
        old = time.time() - 3600
        os.utime(tmp_path / ".ckpt-old12345", (old, old))
        net = _net()
        net.save(tmp_path / "n.ckpt")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep + ["n.ckpt"])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert es.Network.load(tmp_path / "n.ckpt").n_neurons == 40
