"""Checkpoint and resume: bit-identical continuation, atomic writes, corruption refused."""

import os
import subprocess
import sys

import numpy as np
import pytest

import eventsim as es
from eventsim.checkpoint import CheckpointError

BUILD = r"""
import numpy as np, eventsim as es
def build(one_delay=False):
    net = es.Network(dt=0.1, seed=21)
    m1 = es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
    m2 = es.ALIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0,
                 tau_theta=(30.0,), d_theta=(0.5,))
    a = net.population(200, m1, v_init=es.Uniform(0.0, 20.0))
    b = net.population(100, m2, v_init=es.Uniform(0.0, 15.0))
    # one_delay: every sender with a single delay (the engine's column form), else mixed delays
    net.connect(a, a | b, es.FixedInDegree(30), weight=es.Normal(0.4, 0.1),
                delay=1.2 if one_delay else es.Uniform(0.1, 3.0))
    net.connect(b, a, es.FixedProbability(0.1), weight=-1.5, delay=0.7)
    net.connect(a, b, es.FixedProbability(0.1), weight=40.0, delay=1.2)
    noise = net.poisson(300, rate=15000.0)
    net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(200, 0.1), np.full(100, 25.0)], delay=0.1)
    stim = net.spike_source([0, 0, 1], [30.0, 75.0, 120.0])
    net.connect(stim, a[:2], es.AllToAll(), weight=5.0, delay=0.5)
    net.record_spikes(a | b)
    net.record_state(b[::9], "v", interval=0.5)
    return net
"""


def _build(one_delay=False):
    ns = {}
    exec(BUILD, ns)
    return ns["build"](one_delay)


def _result(net):
    sp, vm = net.recorders
    return sp.steps, sp.senders, vm.values, vm.steps, net._plan.state.v


@pytest.mark.parametrize("one_delay", [False, True])
def test_save_load_in_fresh_process_is_bit_identical(tmp_path, one_delay):
    ref = _build(one_delay)
    ref.run(150.0)
    path = tmp_path / "net.ckpt"
    net = _build(one_delay)
    net.run(60.0)
    assert net._plan._syn_off.itemsize == (2 if one_delay else 4)  # column form / offsets
    net.save(path)
    code = BUILD + f"""
import sys
net = es.Network.load({str(path)!r})
assert net.t == 60.0, net.t
net.run(90.0)
sp, vm = net.recorders
np.savez({str(tmp_path / 'out.npz')!r}, steps=sp.steps, senders=sp.senders, values=vm.values, vsteps=vm.steps,
         v=net._plan.state.v)
"""
    # the column-form case resumes on one thread (re-partitioned on load)
    env = dict(os.environ, **({"NUMBA_NUM_THREADS": "1"} if one_delay else {}))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    got = np.load(tmp_path / "out.npz")
    expect = _result(ref)
    assert len(expect[0]) > 500
    for key, e in zip(("steps", "senders", "values", "vsteps", "v"), expect):
        np.testing.assert_array_equal(got[key], e)


def test_save_before_first_run(tmp_path):
    net = _build()
    net.save(tmp_path / "a.ckpt")
    again = es.Network.load(tmp_path / "a.ckpt")
    again.run(20.0)
    net.run(20.0)
    np.testing.assert_array_equal(_result(again)[0], _result(net)[0])


def test_pickled_plan_without_poisson_count_tables_gets_them(tmp_path):
    # a clock plan pickled (format version 3) before Sources had tab / one_run / one_rptr: loaded on
    # request (allow_pickle=True), they are rebuilt and the run goes on bit for bit
    import hashlib
    import pickle
    import struct

    from eventsim.checkpoint import LegacyCheckpointWarning

    ref = _build()
    ref.run(80.0)
    net = _build()
    net.run(40.0)
    plan = net._plan
    del plan._sources_base["tab"]
    # (and float64 uniforms as the Poisson scratch instead of uint32 words)
    plan.sources = plan.sources._replace(tab=None, one_run=None, one_rptr=None,
                                         one_u=np.zeros(plan.sources.one_u.size))
    payload = pickle.dumps(net, protocol=5)
    (tmp_path / "old.ckpt").write_bytes(struct.pack("<8sIQ32s", b"ESIMCKPT", 3, len(payload),
                                                    hashlib.sha256(payload).digest()) + payload)
    with pytest.warns(LegacyCheckpointWarning):
        again = es.Network.load(tmp_path / "old.ckpt", allow_pickle=True)
    assert again._plan.sources.tab is not None and again._plan.sources.one_run.size > 1
    assert again._plan.sources.one_u.dtype == np.uint32 and again._plan.sources.one_u.size > 0
    again.run(40.0)
    for a, b in zip(_result(again), _result(ref)):
        np.testing.assert_array_equal(a, b)


def _arrays(obj, path=""):
    """Every array reachable from a plan's attributes (NamedTuples, tuples, dicts), by path."""
    if isinstance(obj, np.ndarray):
        return {path: obj}
    if isinstance(obj, (int, float, np.integer, np.floating)) and not isinstance(obj, bool):
        return {path: np.asarray(obj)}
    out = {}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        items = zip(obj._fields, obj)
    elif isinstance(obj, (tuple, list)):
        items = enumerate(obj)
    elif isinstance(obj, dict):
        items = obj.items()
    else:
        return out
    for k, v in items:
        out.update(_arrays(v, f"{path}.{k}"))
    return out


#: scratch of the engines: rewritten before it is read in every chunk (or emptied after it)
_SCRATCH = {"clock": {".sources.one_u", ".spk_buf_id", ".spk_buf_step", ".work.flag", ".work.insp", ".work.isp",
                      ".work.spk", ".work.nsp", ".work.seg_dc", ".work.seg_dcu", ".state.i_dc"},
            "event": {".R.i", ".R.t", ".RS.buf", ".stack"}}


@pytest.mark.parametrize("engine", ["clock", "event"])
def test_loaded_plan_holds_every_array_the_run_changed(tmp_path, engine):
    # a fresh plan differs from a run one exactly in the arrays the run changed: after a load, all
    # of them (but scratch) must equal the saved plan's, so a mutable array left out of the file fails
    def build():
        net = _build() if engine == "clock" else _event_build()
        return net

    net = build()
    net.run(60.0)
    net.save(tmp_path / "n.ckpt")
    skip = ("net", "spike_recorders", "state_recorders")
    saved = {k: v.copy() for k, v in _arrays({k: v for k, v in vars(net._plan).items() if k not in skip}).items()}
    fresh = build()
    fresh.run(0.0)
    fresh = _arrays({k: v for k, v in vars(fresh._plan).items() if k not in skip})
    changed = [k for k in saved if k in fresh and not np.array_equal(saved[k], fresh[k], equal_nan=True)]
    assert len(set(changed) - _SCRATCH[engine]) >= 8  # the run did change the state
    got = _arrays({k: v for k, v in vars(es.Network.load(tmp_path / "n.ckpt")._plan).items() if k not in skip})
    assert set(got) == set(saved)
    for k in sorted(set(saved) - _SCRATCH[engine]):
        assert got[k].dtype == saved[k].dtype and got[k].shape == saved[k].shape, k
        np.testing.assert_array_equal(got[k], saved[k], err_msg=k)


def _event_build():
    net = es.Network(dt=0.1, seed=8, engine="event")
    a = net.population(60, es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, tau_syn_ex=1.0, tau_syn_in=2.0))
    b = net.population(20, es.ALIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, tau_theta=(30.0,),
                                   d_theta=(2.0,)))
    noise = net.poisson(80, rate=np.linspace(20000.0, 40000.0, 80))
    net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(60, 120.0), np.full(20, 1.2)], delay=0.5)
    net.connect(a, a | b, es.FixedProbability(0.1), weight=es.Normal(20.0, 5.0), delay=es.Uniform(1.0, 3.0))
    stim = net.spike_source([0, 1, 0], [3.0, 7.25, 90.0])
    net.connect(stim, a[:3], es.AllToAll(), weight=300.0, delay=0.3)
    dc = net.dc(50.0, start=10.0, stop=80.0)
    net.connect(dc, b[:4], es.AllToAll(), weight=1.0)
    net.record_spikes(a | b)
    net.record_state(a[:3], "v", interval=0.5)
    return net


def test_event_engine_continues_bit_for_bit(tmp_path):
    ref = _event_build()
    ref.run(120.0)
    net = _event_build()
    net.run(45.0)
    net.save(tmp_path / "e.ckpt")
    again = es.Network.load(tmp_path / "e.ckpt")
    again.run(75.0)
    assert len(ref.recorders[0]) > 200
    for r, g in zip(ref.recorders, again.recorders):
        for name in ("times", "senders", "values"):
            if hasattr(r, name):
                np.testing.assert_array_equal(getattr(g, name), getattr(r, name))
    assert again.synaptic_events == ref.synaptic_events


def test_corrupted_and_truncated_files_are_refused(tmp_path):
    net = _build()
    net.run(5.0)
    path = tmp_path / "n.ckpt"
    net.save(path)
    data = path.read_bytes()
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0xFF
    (tmp_path / "corrupt.ckpt").write_bytes(bytes(bad))
    with pytest.raises(CheckpointError, match="checksum"):
        es.Network.load(tmp_path / "corrupt.ckpt")
    (tmp_path / "short.ckpt").write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="truncated"):
        es.Network.load(tmp_path / "short.ckpt")
    (tmp_path / "tiny.ckpt").write_bytes(data[:10])
    with pytest.raises(CheckpointError, match="truncated"):
        es.Network.load(tmp_path / "tiny.ckpt")
    (tmp_path / "other.ckpt").write_bytes(b"hello world" * 10)
    with pytest.raises(CheckpointError, match="not an eventsim checkpoint"):
        es.Network.load(tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="no such"):
        es.Network.load(tmp_path / "missing.ckpt")
    old = bytearray(data)
    old[8:12] = (2).to_bytes(4, "little")  # a file of format version 2 (before the event engine's layout)
    (tmp_path / "old.ckpt").write_bytes(bytes(old))
    with pytest.raises(CheckpointError, match="version 2"):
        es.Network.load(tmp_path / "old.ckpt")


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    net = _build()
    path = tmp_path / "n.ckpt"
    net.save(path)
    before = path.read_bytes()
    net.run(5.0)
    import eventsim.checkpoint as ck

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ck.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        net.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["n.ckpt"]
