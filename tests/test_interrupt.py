"""Runs are transactions: an exception or Ctrl-C inside ``run()`` leaves a consistent network.

An interrupt is injected at every line (or every few lines) that the run
executes in the engine and recorder modules, by a trace function that raises
KeyboardInterrupt at its k-th line event, which is where a real SIGINT's
handler can run (between bytecodes; the compiled kernels do not check
signals).  After the interrupt, the network must equal an uninterrupted
network run to the same time (state, ring buffer, pending spikes, source
pointers, counters, every recorder in memory and on disk), and continuing
must give the uninterrupted result bit for bit.  Real SIGINTs, delivered by
the operating system at a few moments of a longer run, are checked too.
"""

import os
import signal
import sys
import threading

import numpy as np
import pytest

import eventsim as es
from eventsim import config
from eventsim.record import read_spikes, read_state

h5py = pytest.importorskip("h5py")

CHUNK = 20  # steps per chunk: several commits in a short run
ENGINE_FILES = tuple(os.path.join("eventsim", *p) for p in
                     (("engines", "plan.py"), ("engines", "event_plan.py"), ("engines", "event_cpu.py"),
                      ("engines", "clock_cuda.py"), ("record.py",)))


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(config, "CHUNK_STEPS", CHUNK)


def clock_net(folder=None, seed=7, backend="cpu"):
    """A small clock network with every kind of input and four recorders (two streamed when ``folder``)."""
    net = es.Network(dt=0.1, seed=seed, backend=backend)
    a = net.population(40, es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0),
                       v_init=es.Uniform(0.0, 20.0))
    b = net.population(15, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0),
                       v_init=es.Uniform(0.0, 15.0))
    net.connect(a, a | b, es.FixedInDegree(8), weight=es.Normal(1.5, 0.3), delay=es.Uniform(0.1, 2.0))
    net.connect(b, a, es.FixedProbability(0.2), weight=-2.0, delay=0.7)
    net.connect(a, b, es.FixedProbability(0.2), weight=80.0, delay=1.2)
    noise = net.poisson(55, rate=12000.0)
    net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(40, 0.6), np.full(15, 60.0)], delay=0.1)
    stim = net.spike_source(senders=[0, 1, 0], times=[1.0, 2.3, 4.1])
    net.connect(stim, a[:10], es.AllToAll(), weight=4.0, delay=1.0)
    dc = net.dc(150.0, start=3.3, stop=7.7)  # switches inside chunks: the chunks are cut there
    net.connect(dc, b[:5], es.AllToAll(), weight=1.0)
    recs = [net.record_spikes(a | b), net.record_state(b[::4], "v", interval=0.3)]
    if folder is not None:
        os.makedirs(folder, exist_ok=True)
        recs += [net.record_spikes(a[::2], to=os.path.join(folder, "s.h5")),
                 net.record_state(b[:6], "i_ex", interval=0.2, to=os.path.join(folder, "i.h5"))]
    return net, recs


def clock_fingerprint(net):
    """Everything a run changes, as plain arrays (recorders read back from memory and from their files)."""
    p = net._plan
    out = {"step": np.array([net.step]), "t": np.array([net.t])}
    if p is not None:
        for name, arr in zip(p.state._fields, p.state):
            out["state." + name] = arr.copy()
        out.update(ring=p.ring.copy(), pend=p.pend[: int(p.pend_n[0])].copy(), pend_n=p.pend_n.copy(),
                   ss_ptr=p.sources.ss_ptr.copy(), counters=p.counters.copy())
    for j, r in enumerate(net.recorders):
        out.update(_recorder_print(j, r, net))
    return out


def _recorder_print(j, r, net):
    out = {}
    if isinstance(r, es.SpikeRecorder):
        out[f"r{j}.times"], out[f"r{j}.ids"] = r.times, r.neuron_ids
        if r.path is not None:
            d = read_spikes(r.path)
            out[f"r{j}.file.times"], out[f"r{j}.file.ids"] = d.times, d.neuron_ids
            out[f"r{j}.file.t_stop"] = np.array([round(d.t_stop / net.dt)])
    else:
        out[f"r{j}.steps"], out[f"r{j}.values"] = r.steps, r.values
        if r.path is not None:
            d = read_state(r.path)
            out[f"r{j}.file.steps"], out[f"r{j}.file.values"] = d.steps, d.values
            out[f"r{j}.file.t_stop"] = np.array([round(d.t_stop / net.dt)])
    return out


def assert_same(got, want, where):
    assert got.keys() == want.keys(), where
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=f"{k} ({where})")


class LineInterrupt:
    """Raise KeyboardInterrupt at the ``k``-th line executed in the engine and recorder modules.

    ``k=None`` only counts the lines (``self.count``).
    """

    def __init__(self, k=None):
        self.k, self.count, self.fired = k, 0, False

    def _local(self, frame, event, arg):
        if event == "line" and not self.fired:
            self.count += 1
            if self.count == self.k:
                self.fired = True
                raise KeyboardInterrupt(f"line {frame.f_code.co_filename}:{frame.f_lineno}")
        return self._local

    def _global(self, frame, event, arg):
        if not self.fired and frame.f_code.co_filename.endswith(ENGINE_FILES):
            return self._local
        return None

    def __enter__(self):
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc):
        sys.settrace(None)
        return False


def _points(n, every):
    """Interrupt points 1..n: all of the first chunks' lines, then every ``every``-th line."""
    return sorted(set(range(1, min(n, 400) + 1)) | set(range(1, n + 1, every)))


# ---------------------------------------------------------------------------------- clock engine
T_CLOCK = 12.0  # ms: 120 steps, chunks cut at the DC switches (3.3, 7.7 ms)


@pytest.fixture(scope="module")
def clock_reference(tmp_path_factory):
    old = config.CHUNK_STEPS
    config.CHUNK_STEPS = CHUNK
    try:
        cache = {}

        def at(step):
            """Fingerprint of an uninterrupted network run to ``step``."""
            if step not in cache:
                folder = tmp_path_factory.mktemp("ref")
                net, _ = clock_net(str(folder))
                net.run(step * 0.1)
                cache[step] = clock_fingerprint(net)
                net.close()
            return cache[step]

        at(round(T_CLOCK / 0.1))
        yield at
    finally:
        config.CHUNK_STEPS = old


def _interrupted_clock_run(k, folder):
    net, _ = clock_net(folder)
    net.run(2.0)  # a committed run before the interrupted one
    net.close()  # the interrupted run reopens the files
    tracer = LineInterrupt(k)
    with pytest.raises(KeyboardInterrupt):
        with tracer:
            net.run(T_CLOCK - 2.0)
    assert tracer.fired
    return net


def test_clock_interrupt_at_every_line_leaves_a_committed_chunk_and_resumes_exactly(tmp_path, clock_reference):
    total = round(T_CLOCK / 0.1)
    net, _ = clock_net(str(tmp_path / "count"))
    net.run(2.0)
    net.close()
    with LineInterrupt() as counter:
        net.run(T_CLOCK - 2.0)
    net.close()
    assert counter.count > 100
    seen = set()
    for k in _points(counter.count, 7):
        folder = tmp_path / f"k{k}"
        net = _interrupted_clock_run(k, str(folder))
        step = net.step
        seen.add(step)
        assert 20 <= step <= total
        assert_same(clock_fingerprint(net), clock_reference(step), f"interrupted at line {k}, step {step}")
        net.run(round((total - step)) * 0.1)
        assert_same(clock_fingerprint(net), clock_reference(total), f"resumed after line {k}")
        net.close()
    assert len(seen) >= 4  # interrupts landed in several chunks


def test_clock_exception_in_the_recorders_commit_loop_rolls_every_recorder_back(tmp_path, clock_reference,
                                                                                  monkeypatch):
    """The second recorder's commit fails after the first one committed: both end at the same chunk."""
    total = round(T_CLOCK / 0.1)
    for n_fail in (3, 4, 6):
        net, recs = clock_net(str(tmp_path / f"n{n_fail}"))
        calls = [0]
        real = type(recs[3])._commit

        def failing(self, step, real=real, calls=calls, n_fail=n_fail):
            calls[0] += 1
            if calls[0] == n_fail:
                raise KeyboardInterrupt
            real(self, step)

        monkeypatch.setattr(es.StateRecorder, "_commit", failing)
        with pytest.raises(KeyboardInterrupt):
            net.run(T_CLOCK)
        monkeypatch.undo()
        monkeypatch.setattr(config, "CHUNK_STEPS", CHUNK)
        step = net.step
        assert_same(clock_fingerprint(net), clock_reference(step), f"failed commit {n_fail}")
        net.run((total - step) * 0.1)
        assert_same(clock_fingerprint(net), clock_reference(total), f"resumed after commit {n_fail}")
        net.close()


class SigintOnce:
    """Real SIGINTs sent to this process from ``delay`` s on, until one is raised as KeyboardInterrupt.

    The handler raises only in a frame of eventsim's own code (where a
    signal that lands inside a compiled kernel is handled too); elsewhere,
    e.g. in a garbage-collector callback, Python would swallow the exception,
    so that signal is ignored and the next one, 2 ms later, tries again.
    """

    def __init__(self, delay):
        self.delay, self.armed, self.delivered = delay, False, False
        self._stop = threading.Event()

    def _handler(self, signum, frame):
        if self.armed and os.sep + "eventsim" + os.sep in frame.f_code.co_filename:
            self.armed = False
            self.delivered = True
            raise KeyboardInterrupt

    def _send(self):
        if self._stop.wait(self.delay):
            return
        while self.armed and not self._stop.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            self._stop.wait(0.002)

    def __enter__(self):
        self._old = signal.signal(signal.SIGINT, self._handler)
        self.armed = True
        self._thread = threading.Thread(target=self._send)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.armed = False
        self._stop.set()
        self._thread.join()
        signal.signal(signal.SIGINT, self._old)
        return False


def test_clock_real_sigint_at_several_moments(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CHUNK_STEPS", 5)
    total = 2000
    ref, _ = clock_net(str(tmp_path / "ref"), seed=11)
    ref.run(total * 0.1)
    want = clock_fingerprint(ref)
    ref.close()
    interrupted = 0
    for j, delay in enumerate((0.01, 0.05, 0.2, 0.5)):
        net, _ = clock_net(str(tmp_path / f"d{j}"), seed=11)
        net.run(0.0)
        try:
            with SigintOnce(delay) as sig:
                net.run(total * 0.1)
        except KeyboardInterrupt:
            pass
        if sig.delivered and net.step < total:
            interrupted += 1
            step = net.step
            again, _ = clock_net(str(tmp_path / f"again{j}"), seed=11)
            again.run(step * 0.1)
            assert_same(clock_fingerprint(net), clock_fingerprint(again), f"SIGINT after {delay} s")
            again.close()
        net.run((total - net.step) * 0.1)
        assert_same(clock_fingerprint(net), want, f"resumed after SIGINT at {delay} s")
        net.close()
    assert interrupted >= 3


# ---------------------------------------------------------------------------------- event engine
def event_net(folder=None, seed=5):
    net = es.Network(dt=0.1, seed=seed, engine="event")
    a = net.population(30, es.LIF(tau_m=20.0, c_m=1.0, v_th=20.0, v_reset=10.0, t_ref=2.0),
                       v_init=es.Uniform(0.0, 20.0))
    b = net.population(10, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=1.0, tau_syn_ex=2.0, tau_syn_in=4.0),
                       v_init=es.Uniform(0.0, 15.0))
    net.connect(a, a | b, es.FixedInDegree(6), weight=es.Normal(1.5, 0.3), delay=es.Uniform(0.1, 2.0))
    net.connect(b, a, es.FixedProbability(0.2), weight=-2.0, delay=0.7)
    net.connect(a, b, es.FixedProbability(0.2), weight=80.0, delay=1.2)
    noise = net.poisson(40, rate=12000.0)
    net.connect(noise, a | b, es.OneToOne(), weight=np.r_[np.full(30, 0.6), np.full(10, 60.0)], delay=0.1)
    stim = net.spike_source(senders=[0, 1, 0], times=[1.0, 2.3, 4.1])
    net.connect(stim, a[:10], es.AllToAll(), weight=4.0, delay=1.0)
    dc = net.dc(150.0, start=3.3, stop=7.7)
    net.connect(dc, b[:5], es.AllToAll(), weight=1.0)
    recs = [net.record_spikes(a | b), net.record_state(b[::3], "v", interval=0.3)]
    if folder is not None:
        os.makedirs(folder, exist_ok=True)
        recs.append(net.record_state(b[:4], "i_ex", interval=0.2, to=os.path.join(folder, "i.h5")))
    return net, recs


def event_fingerprint(net):
    p = net._plan
    out = {"t": np.array([net.t])}
    if p is not None:
        out.update(SS=p.SS.copy(), TH=p.TH.copy(), Q=np.stack([q[:p.qn].astype(np.float64) for q in p.Q]),
                   counters=p.counters.copy(), sample_t=p.sample_t.copy(), M_n=p.M.n.copy(),
                   M=p.M.lst[: int(p.M.n[0])].copy(), X_n=p.X.n.copy(), X_key=p.X.key.copy(),
                   X_heap=p.X.heap[: int(p.X.n[0])].copy())
        for name in ("count", "ptr", "nxt", "spos", "win", "st", "sc"):
            out["SRC." + name] = getattr(p.SRC, name).copy()
    for j, r in enumerate(net.recorders):
        out.update(_recorder_print(j, r, net))
    return out


T_EVENT = 12.0  # ms: windows of CHUNK * dt = 2 ms


#: Poisson emissions per window of the event engine's stream in the line tests: a new window every
#: ~0.4 ms, so interrupts also land while the stream is refilled
STREAM_TARGET = 200


@pytest.fixture(scope="module")
def event_reference(tmp_path_factory):
    from eventsim.engines import event_plan

    old = config.CHUNK_STEPS, event_plan._STREAM_TARGET
    config.CHUNK_STEPS, event_plan._STREAM_TARGET = CHUNK, STREAM_TARGET
    try:
        cache = {}

        def at(t):
            key = round(t / 0.1)
            if key not in cache:
                net, _ = event_net(str(tmp_path_factory.mktemp("ref")))
                net.run(t)
                cache[key] = event_fingerprint(net)
                net.close()
            return cache[key]

        at(T_EVENT)
        yield at
    finally:
        config.CHUNK_STEPS, event_plan._STREAM_TARGET = old


def test_event_interrupt_at_every_line_leaves_a_committed_window_and_resumes_exactly(tmp_path, event_reference,
                                                                                    monkeypatch):
    from eventsim.engines import event_plan

    monkeypatch.setattr(event_plan, "_STREAM_TARGET", STREAM_TARGET)
    net, _ = event_net(str(tmp_path / "count"))
    net.run(1.0)
    net.close()
    with LineInterrupt() as counter:
        net.run(T_EVENT - 1.0)
    net.close()
    assert counter.count > 100
    seen = set()
    for k in _points(counter.count, 9):
        folder = tmp_path / f"k{k}"
        net, _ = event_net(str(folder))
        net.run(1.0)
        net.close()  # the interrupted run reopens the file
        tracer = LineInterrupt(k)
        with pytest.raises(KeyboardInterrupt):
            with tracer:
                net.run(T_EVENT - 1.0)
        t = net.t
        seen.add(t)
        # at the end of the first run or of a committed window (1 + 2j ms)
        assert t == 1.0 or (t - 1.0) % 2.0 == 0.0 or t == T_EVENT, t
        assert_same(event_fingerprint(net), event_reference(t), f"interrupted at line {k}, t = {t} ms")
        net.run(T_EVENT - t)
        assert net.t == T_EVENT
        assert_same(event_fingerprint(net), event_reference(T_EVENT), f"resumed after line {k}")
        net.close()
    assert len(seen) >= 4


def test_event_real_sigint_at_several_moments(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CHUNK_STEPS", 2)
    total = 300.0
    ref, _ = event_net(str(tmp_path / "ref"), seed=9)
    ref.run(total)
    want = event_fingerprint(ref)
    ref.close()
    interrupted = 0
    for j, delay in enumerate((0.01, 0.05, 0.2, 0.5)):
        net, _ = event_net(str(tmp_path / f"d{j}"), seed=9)
        net.run(0.0)
        try:
            with SigintOnce(delay) as sig:
                net.run(total)
        except KeyboardInterrupt:
            pass
        if sig.delivered and net.t < total:
            interrupted += 1
            t = net.t
            again, _ = event_net(str(tmp_path / f"again{j}"), seed=9)
            again.run(t)
            assert_same(event_fingerprint(net), event_fingerprint(again), f"SIGINT after {delay} s")
            again.close()
        net.run(total - net.t)
        assert_same(event_fingerprint(net), want, f"resumed after SIGINT at {delay} s")
        net.close()
    assert interrupted >= 3


# ---------------------------------------------------------------------------------- non-finite state
def _exploding(engine):
    net = es.Network(dt=0.1, engine=engine)
    ok = net.population(3, es.LIF(v_th=15.0, i_e=100.0), label="fine")
    bad = net.population(2, es.LIF(tau_syn_ex=2.0, tau_syn_in=2.0), label="exploding")
    src = net.spike_source([0, 1], [3.0, 3.0])  # two huge currents arrive together at 3.1 ms: I_ex = inf
    net.connect(src, bad[1], es.AllToAll(), weight=1.0e308, delay=0.1)
    sp = net.record_spikes(ok | bad)
    vm = net.record_state(ok | bad, "v")
    return net, sp, vm


def test_event_non_finite_state_stops_at_the_last_finite_state(monkeypatch):
    monkeypatch.setattr(config, "CHUNK_STEPS", 2000)
    net, sp, vm = _exploding("event")
    net.run(1.0)
    with pytest.raises(FloatingPointError, match=r"exploding.*neuron 1 .*left at t = 3.0\d* ms"):
        net.run(10.0)
    assert net.t == pytest.approx(3.0)
    p = net._plan
    assert np.isfinite(p.SS[:, :3]).all() and np.isfinite(p.TH).all()
    assert vm.values.shape == (30, 5) and np.isfinite(vm.values).all()
    ref, rsp, rvm = _exploding("event")
    ref.run(net.t)
    np.testing.assert_array_equal(p.SS, ref._plan.SS)
    np.testing.assert_array_equal(sp.times, rsp.times)
    np.testing.assert_array_equal(vm.values, rvm.values)
    with pytest.raises(FloatingPointError):  # the same input arrives again: the same stop
        net.run(1.0)
    assert net.t == pytest.approx(3.0)
