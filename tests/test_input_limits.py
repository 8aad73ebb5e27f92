"""Time-like values, counts and sizes out of range, numbers-only arguments and the memory guard.

Every bad value is refused with a ValueError (MemoryError for the guard)
whose message names the argument, and the network is left as it was: it
runs afterwards exactly as one that never saw the bad call.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import eventsim as es
from eventsim import network as nw
from eventsim.models._params import MAX_EVENT_TIME, MAX_STEPS, rounded_steps, steps_of


def _net(engine="clock"):
    net = es.Network(dt=0.1, seed=3, engine=engine)
    pop = net.population(3, es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, i_e=800.0))
    return net, pop


def _spikes_after(net, pop, t=50.0):
    rec = net.record_spikes(pop)
    net.run(t)
    return rec.senders.copy(), rec.times.copy()


# ---------------------------------------------------------------- ms -> steps
@pytest.mark.parametrize("t", [1e18, 1e30, 1e300, -1e30])
def test_steps_of_refuses_counts_beyond_the_step_counter(t):
    with pytest.raises(ValueError, match=r"x=.* too large.*2\*\*62"):
        steps_of("x", t, 0.1)
    with pytest.raises(ValueError, match=r"x=.* too large"):
        rounded_steps("x", np.array([1.0, t]), 0.1)


def test_steps_of_accepts_the_largest_count_and_refuses_strings_and_nan():
    assert int(steps_of("x", MAX_STEPS * 1.0, 1.0)) == MAX_STEPS
    for bad in ("1.0", b"1", True, np.array(["1"]), np.array([True])):
        with pytest.raises(ValueError, match="x=.*must be a number"):
            steps_of("x", bad, 0.1)
    with pytest.raises(ValueError, match="x=nan ms must be finite"):
        steps_of("x", float("nan"), 0.1)


@pytest.mark.parametrize("call,match", [
    (lambda net, pop: net.run(1e18), r"duration=1e\+18 ms is too large"),
    (lambda net, pop: net.run(1e300), r"duration=1e\+300 ms is too large"),
    (lambda net, pop: net.population(1, es.LIF(t_ref=1e18)), r"t_ref=1e\+18 ms is too large"),
    (lambda net, pop: net.connect(pop, pop, es.AllToAll(), weight=1.0, delay=1e30),
     r"delay=1e\+30 ms exceeds the longest supported delay"),
    (lambda net, pop: net.connect(pop, pop, es.AllToAll(), weight=1.0, delay=[0.1] * 8 + [1e30],
                                  round_delays=True), r"delay=1e\+30 ms exceeds the longest"),
    (lambda net, pop: net.connect(pop, pop, es.AllToAll(), weight=1.0, delay=es.Normal(1e30, 1.0)),
     r"delay=.* ms exceeds the longest"),
    (lambda net, pop: net.record_state(pop, "v", interval=1e30), r"interval=1e\+30 ms is too large"),
    (lambda net, pop: net.dc(1.0, start=1e30), r"start=1e\+30 ms is too large"),
    (lambda net, pop: net.dc(1.0, start=1.0, stop=1e30), r"stop=1e\+30 ms is too large"),
    (lambda net, pop: net.spike_source([0], [1e30]), r"times=1e\+30 ms is too large"),
    (lambda net, pop: net.spike_source([0], [1e30], round_times=True), r"times=1e\+30 ms is too large"),
    (lambda net, pop: net.poisson(1, rate=1e25), r"rate=1e\+25 Hz is too large"),
])
def test_values_too_large_for_steps_or_counts_are_refused_and_change_nothing(call, match):
    net, pop = _net()
    ref, ref_pop = _net()
    with pytest.raises(ValueError, match=match):
        call(net, pop)
    assert net.t == 0.0 and len(net.populations) == 1 and not net.projections and not net.sources
    assert not net.recorders and not net.dc_sources
    for a, b in zip(_spikes_after(net, pop), _spikes_after(ref, ref_pop)):
        np.testing.assert_array_equal(a, b)


def test_a_run_past_the_step_counter_after_running_leaves_the_time():
    net, pop = _net()
    net.run(1.0)
    with pytest.raises(ValueError, match=r"would take the step counter past 2\*\*62 steps \(now at step 10\)"):
        net.run(MAX_STEPS * 0.1)
    assert net.step == 10
    net.run(1.0)
    assert net.step == 20


def test_the_largest_poisson_rate_is_accepted():
    net = es.Network(dt=0.1)
    net.poisson(1, rate=nw.MAX_POISSON_PER_STEP / 1e-4)  # exactly 1e9 per step
    with pytest.raises(ValueError, match="rate=.* Hz is too large"):
        net.poisson(1, rate=nw.MAX_POISSON_PER_STEP / 1e-4 * 1.01)


def test_a_tiny_dt_makes_every_time_like_value_refused_by_range():
    net = es.Network(dt=1e-300)
    with pytest.raises(ValueError, match=r"t_ref=2.0 ms is too large"):
        net.population(1, es.LIF())
    pop = net.population(1, es.LIF(t_ref=0.0))
    with pytest.raises(ValueError, match="duration=1.0 ms is too large"):
        net.run(1.0)
    assert net.step == 0 and pop.n == 1


@pytest.mark.parametrize("call,match", [
    (lambda net, pop: net.run(MAX_EVENT_TIME * 2), "duration=.* too large for the event engine"),
    (lambda net, pop: net.run(1e300), "duration=.* too large for the event engine"),
    (lambda net, pop: net.spike_source([0], [1e30]), "times=1e\\+30 ms is too large for the event engine"),
    (lambda net, pop: net.connect(pop, pop, es.AllToAll(), weight=1.0, delay=1e30),
     "delay=1e\\+30 ms is too large for the event engine"),
    (lambda net, pop: net.dc(1.0, start=1e30), "start=1e\\+30 ms is too large for the event engine"),
    (lambda net, pop: net.dc(1.0, start=1.0, stop=1e30), "stop=1e\\+30 ms is too large"),
    (lambda net, pop: net.dc(1.0, start="1"), "start='1' must be a number"),
    (lambda net, pop: net.poisson(1, rate=1e25), r"rate=1e\+25 Hz is too large"),
])
def test_event_engine_times_beyond_its_float_clock_are_refused(call, match):
    net, pop = _net("event")
    with pytest.raises(ValueError, match=match):
        call(net, pop)
    assert net.t == 0.0 and not net.projections and not net.sources and not net.dc_sources


def test_event_engine_runs_up_to_the_limit_after_a_refused_run():
    net, pop = _net("event")
    rec = net.record_spikes(pop)
    with pytest.raises(ValueError):
        net.run(1e300)
    net.run(20.0)
    assert net.t == 20.0 and len(rec) > 0


# ---------------------------------------------------------------- clearer messages
@pytest.mark.parametrize("call,match", [
    (lambda net, pop: net.population(3, es.LIF(), v_init=[1.0, 2.0]),
     r"v_init has shape \(2,\) but the population has 3 neurons"),
    (lambda net, pop: net.population(3, es.LIF(), v_init=np.zeros((3, 1))),
     r"v_init has shape \(3, 1\) but the population has 3 neurons"),
    (lambda net, pop: net.poisson(3, rate=[1.0, 2.0]), r"rate has shape \(2,\) but the source has 3 channels"),
    (lambda net, pop: net.poisson(3, rate=None), "rate=None is not allowed"),
    (lambda net, pop: net.dc([1.0, 2.0], n=3), r"amplitude has shape \(2,\) but the source has 3 channels"),
    (lambda net, pop: net.connect(pop, pop, es.AllToAll(), weight=None), "weight=None is not allowed"),
    (lambda net, pop: net.connect(pop, pop, es.AllToAll(), weight=[1.0]),
     r"weight has shape \(1,\) but the rule made 9 connections"),
    (lambda net, pop: net.connect(pop, pop, es.AllToAll(), weight=1.0, delay=[1.0]),
     r"delay has shape \(1,\) but the rule made 9 connections"),
    (lambda net, pop: net.spike_source([-1], [1.0]), r"senders must be >= 0 .* got minimum -1"),
    (lambda net, pop: net.spike_source([0, -2], [1.0, 2.0], n=None), r"senders must be >= 0"),
    (lambda net, pop: net.spike_source([0], ["a"]), "times must contain numbers only"),
    (lambda net, pop: net.spike_source([0], ["1.0"]), "times must contain numbers only"),
    (lambda net, pop: net.spike_source([0], "1.0"), "times='1.0' must be a number"),
    (lambda net, pop: net.connect(pop, pop, es.AllToAll(), weight=1.0, delay="1"), "delay='1' must be a number"),
    (lambda net, pop: net.connect(pop, pop, es.AllToAll(), weight=1.0, delay=["1"] * 9),
     "delay must contain numbers only"),
    (lambda net, pop: net.connect(pop, pop, es.AllToAll(), weight="1"), "weight='1' must be a number"),
    (lambda net, pop: net.connect(pop, pop, es.AllToAll(), weight=[True] * 9), "weight must contain numbers"),
    (lambda net, pop: net.poisson(1, rate="5"), "rate='5' must be a number"),
    (lambda net, pop: net.dc("5"), "amplitude='5' must be a number"),
    (lambda net, pop: net.dc(5.0, start="1"), "start='1' must be a number"),
    (lambda net, pop: net.record_state(pop, "v", interval="1"), "interval='1' must be a number"),
    (lambda net, pop: net.population(1, es.LIF(), v_init="1"), "v_init='1' must be a number"),
    (lambda net, pop: es.LIF(tau_m="20"), "tau_m='20' must be a number"),
    (lambda net, pop: es.LIF(v_th=["20"]), "v_th must be a number or an array of numbers"),
    (lambda net, pop: es.LIF(i_e=[True, False]), "i_e must be a number or an array of numbers"),
])
def test_messages_name_the_argument_and_change_nothing(call, match):
    net, pop = _net()
    with pytest.raises(ValueError, match=match):
        call(net, pop)
    assert len(net.populations) == 1 and not net.projections and not net.sources and not net.recorders


def test_numbers_in_any_numeric_form_are_still_accepted():
    net, pop = _net()
    proj = net.connect(pop, pop, es.AllToAll(), weight=np.float32(0.5), delay=np.int64(1))
    assert proj.delay_steps[0] == 10
    src = net.spike_source(np.array([0, 1], np.int32), np.array([1, 2], np.int64))
    assert list(src.spike_steps) == [10, 20]
    net.connect(pop, pop, es.AllToAll(), weight=np.array(list(range(1, 10)), object), delay=0.1)
    net.poisson(2, rate=[np.float32(1.0), 2])
    assert es.LIF(tau_m=np.int32(20)).tau_m == 20.0


# ---------------------------------------------------------------- memory guard
def test_guard_refuses_huge_populations_and_sources_with_its_message():
    net, pop = _net()
    for call, what in [(lambda: net.population(10**11, es.LIF()), "a population of 100,000,000,000 neurons"),
                       (lambda: net.poisson(10**11, rate=1.0), "a Poisson source of 100,000,000,000"),
                       (lambda: net.dc(1.0, n=10**11), "a DC source of 100,000,000,000"),
                       (lambda: net.spike_source([0], [1.0], n=10**11), "a spike source of 100,000,000,000")]:
        with pytest.raises(MemoryError, match=what + ".* GiB .*nothing was allocated"):
            call()
    assert len(net.populations) == 1 and not net.sources and not net.dc_sources


def test_available_memory_is_the_lowest_of_the_three_limits(monkeypatch):
    monkeypatch.setattr(nw, "_meminfo_available", lambda: 5000)
    monkeypatch.setattr(nw, "_rlimit_available", lambda: 3000)
    monkeypatch.setattr(nw, "_cgroup_available", lambda: 4000)
    assert nw.available_memory() == 3000
    monkeypatch.setattr(nw, "_cgroup_available", lambda: 1000)
    assert nw.available_memory() == 1000
    monkeypatch.setattr(nw, "_rlimit_available", lambda: None)
    monkeypatch.setattr(nw, "_cgroup_available", lambda: None)
    assert nw.available_memory() == 5000
    monkeypatch.setattr(nw, "_meminfo_available", lambda: None)
    assert nw.available_memory() is None


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_limit_is_read_from_the_process_cgroup(tmp_path):
    _write(tmp_path / "proc/self/cgroup", "0::/box/job\n")
    _write(tmp_path / "sys/fs/cgroup/box/job/memory.max", "1073741824\n")
    _write(tmp_path / "sys/fs/cgroup/box/job/memory.current", "73741824\n")
    assert nw._cgroup_available(tmp_path) == 1_000_000_000
    _write(tmp_path / "sys/fs/cgroup/box/job/memory.max", "max\n")
    assert nw._cgroup_available(tmp_path) is None


def test_cgroup_v1_limit_is_read_and_its_no_limit_value_ignored(tmp_path):
    _write(tmp_path / "proc/self/cgroup", "4:memory:/ctr\n1:cpu:/\n")
    _write(tmp_path / "sys/fs/cgroup/memory/ctr/memory.limit_in_bytes", "2000000000\n")
    _write(tmp_path / "sys/fs/cgroup/memory/ctr/memory.usage_in_bytes", "500000000\n")
    assert nw._cgroup_available(tmp_path) == 1_500_000_000
    _write(tmp_path / "sys/fs/cgroup/memory/ctr/memory.limit_in_bytes", str(2**63 - 4096))
    assert nw._cgroup_available(tmp_path) is None
    assert nw._cgroup_available(tmp_path / "nothing-here") is None


def test_guard_honours_rlimit_as_in_a_real_process():
    code = textwrap.dedent("""
        import resource
        import eventsim as es
        from eventsim import network as nw
        import re
        vm = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, resource.RLIM_INFINITY))
        left = nw.available_memory()
        assert left is not None and left <= 2**30, left
        net = es.Network()
        try:
            net.population(10**7, es.LIF())   # 2.4 GiB by the guard's count: more than the 1 GiB left
        except MemoryError as e:
            assert "a population of 10,000,000 neurons" in str(e), e
            print("REFUSED")
        net.population(1000, es.LIF())
        print("OK")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["REFUSED", "OK"]
