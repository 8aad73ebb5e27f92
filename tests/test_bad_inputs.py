"""Bad and hostile input to every public constructor and method (see tests/bad_inputs.py for the rule).

Each call either raises a clear exception naming the argument, after which
the network runs bit-identically to one that never saw the call, or gives
a valid result.  Every target is tried with every value of a fixed hostile
list on the clock and the event engine, then hypothesis draws further
values; the CUDA backend runs a selection under numba-cuda's simulator.
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import bad_inputs as bad

ENGINES = ("clock", "event")
_REFERENCE = {}


def _reference(engine):
    if engine not in _REFERENCE:
        _REFERENCE[engine] = bad.outcome(*bad.base(engine))
    return _REFERENCE[engine]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("target", sorted(bad.TARGETS))
def test_every_hostile_value(target, engine):
    ref = _reference(engine)
    for value in bad.HOSTILE:
        bad.check(target, value, engine, reference=ref)


_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-2**80, max_value=2**80),
    st.sampled_from([0.1, 0.05, 1e-9, 3276.7, 3276.8, 2.0**62 * 0.1, 2.0**33, np.nextafter(0.1, 1.0)]),
)
_values = st.one_of(
    _numbers,
    st.lists(_numbers, max_size=6),
    st.text(max_size=3),
    st.booleans(),
    st.none(),
    st.lists(_numbers, min_size=1, max_size=6).map(lambda x: np.asarray(x, dtype=np.float64)),
    st.lists(st.integers(-5, 10), max_size=6).map(lambda x: np.asarray(x, dtype=np.int64)),
)


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(target=st.sampled_from(sorted(bad.TARGETS)), value=_values)
def test_drawn_values(engine, target, value):
    assume(not bad.runs_long(target, value, engine))  # valid, but hours long
    bad.check(target, value, engine, reference=_reference(engine))


def test_only_valid_hours_long_runs_are_left_out_of_the_drawn_values():
    """The drawn values may hit a valid duration of days (2.0**33 ms is a boundary they probe): only those are
    left out; a duration past an engine's limit is still checked (refused before any step)."""
    for engine in ENGINES:
        assert bad.runs_long("run.duration", 2.0**33, engine)
        assert bad.runs_long("run.duration", np.float32(2e4), engine)
        assert not any(bad.runs_long("run.duration", v, engine) for v in (5.0, bad.LONG_RUN, 1e30, "1e5", True))
        assert not bad.runs_long("connect.delay", 2.0**33, engine)
    assert bad.runs_long("run.duration", 2.0**62 * 0.1, "clock")
    assert not bad.runs_long("run.duration", 2.0**33 * 1.001, "event")
    bad.check("run.duration", 2.0**33 * 1.001, "event", reference=_reference("event"))
    bad.check("run.duration", 2.0**62 * 0.11, "clock", reference=_reference("clock"))


def test_a_refused_call_on_a_network_that_has_run_changes_nothing():
    net, ctx = bad.base("clock")
    net.run(3.0)
    ref, ref_ctx = bad.base("clock")
    ref.run(3.0)
    for target in ("run.duration", "record_state.interval"):
        _, call = bad.TARGETS[target]
        with pytest.raises((ValueError, TypeError, RuntimeError)):
            call(net, ctx, "x")
    assert bad.outcome(net, ctx) == bad.outcome(ref, ref_ctx)


def test_the_checker_catches_a_raw_error_and_an_unnamed_argument(monkeypatch):
    """The check itself can fail: a call whose error does not name its argument, or a raw exception."""
    monkeypatch.setitem(bad.TARGETS, "fake.raw", ("x", lambda net, c, v: {}[v]))
    with pytest.raises(AssertionError, match="raised KeyError"):
        bad.check("fake.raw", "k")
    monkeypatch.setitem(bad.TARGETS, "fake.unnamed", ("x", lambda net, c, v: float("oops")))
    with pytest.raises(AssertionError, match="does not name 'x'"):
        bad.check("fake.unnamed", 1)

    def half_done(net, c, v):
        net.poisson(1, rate=1000.0)
        net.connect(net.sources[-1], c["pop"], bad.es.AllToAll(), weight=100.0)
        raise ValueError("x was bad")
    monkeypatch.setitem(bad.TARGETS, "fake.half", ("x", half_done))
    with pytest.raises(AssertionError, match="raised but changed the network"):
        bad.check("fake.half", 1)


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda is not installed")
def test_cuda_simulator_backend():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    here = os.path.dirname(__file__)
    out = subprocess.run([sys.executable, os.path.join(here, "bad_inputs.py"), "cuda"], capture_output=True,
                         text=True, timeout=900, env=env, cwd=here)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert f"checked {len(bad.CUDA_CASES)} calls on backend=cuda" in out.stdout
