"""Hostile values for every public constructor and method, and the check each of them must pass.

Used by tests/test_bad_inputs.py (hypothesis, CPU clock and event engines)
and, through ``python tests/bad_inputs.py``, under the CUDA simulator.

For a call ``target(net, value)`` the rule is: either a clear exception (one
of :data:`CLEAR`, its message naming the argument), after which the network
runs exactly as a network that never saw the call, or a valid result, after
which the network still runs (or stops with a FloatingPointError naming the
neuron, for values that make the state overflow).
"""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np

import eventsim as es
from eventsim.models._params import MAX_EVENT_TIME, MAX_STEPS

CLEAR = (ValueError, TypeError, IndexError, NotImplementedError, MemoryError)

#: Values a careless or hostile caller may pass anywhere.
HOSTILE = [None, True, False, "1", "a", "", b"1", float("nan"), float("inf"), -float("inf"), 0, -1, 0.0, -0.5,
           1e-300, 1e30, 1e300, 2**70, -2**70, 1.5, 7, [], [1.0], [[1.0, 2.0]], [1.0, 2.0, 3.0], ["1"],
           np.array([np.nan]), np.zeros(0), np.zeros((2, 2)), np.array(["x"]), np.array([1, 2], np.uint8),
           {"a": 1}, object(), 1 + 2j, (1.0,), (0.0, -1.0), slice(None), np.float32(3.0), np.int64(-3)]

T_RUN = 10.0

#: Longest valid ``run.duration`` (ms) a check runs in full.
LONG_RUN = 1.0e4


def runs_long(target, value, engine="clock", dt=0.1):
    """True if ``target(value)`` is a valid run far longer than :data:`LONG_RUN`.

    Such a call is correct input (e.g. ``run(2.0**33)``: 8.6e10 steps on the
    clock engine) but would run for hours, so drawn-value tests leave it out;
    durations past the engines' limits (refused before any step) are not
    left out.
    """
    if target != "run.duration" or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    v = float(value)
    limit = MAX_EVENT_TIME if engine == "event" else MAX_STEPS * dt
    return math.isfinite(v) and LONG_RUN < v <= limit


#: The calls checked on the CUDA backend (its simulator is slow; the validation is shared with the CPU).
CUDA_CASES = [("run.duration", "a"), ("run.duration", -1), ("run.duration", 1e30), ("connect.delay", 1e30),
              ("poisson.rate", 1e25), ("population.v_init", [1.0]), ("record_state.interval", 1e30)]


def base(engine="clock", backend="cpu"):
    """A small network with every kind of object, and the groups a call needs."""
    net = es.Network(dt=0.1, seed=5, engine=engine, backend=backend)
    model = es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, v_reset=0.0, t_ref=2.0, i_e=500.0,
                   tau_syn_ex=2.0, tau_syn_in=3.0)
    pop = net.population(4, model, v_init=np.array([4.0, 8.0, 11.0, 14.0]))
    noise = net.poisson(2, rate=800.0)
    net.connect(noise, pop, es.AllToAll(), weight=40.0, delay=0.5)
    net.connect(pop, pop, es.FixedInDegree(2), weight=-30.0, delay=1.0)
    rec = net.record_spikes(pop)
    vrec = net.record_state(pop, "v", interval=1.0)
    return net, {"pop": pop, "noise": noise, "rec": rec, "vrec": vrec}


def outcome(net, ctx):
    """Run the network for T_RUN ms; its spikes, membrane potentials and time (what 'runs identically' compares)."""
    net.run(T_RUN)
    return (ctx["rec"].senders.tolist(), np.asarray(ctx["rec"].times).tolist(),
            np.asarray(ctx["vrec"].values).tolist(), net.t)


def _lif(**kw):
    return es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, **kw)


def _targets():
    t = {}
    # ---- constructors of models, rules, distributions
    for name in ("tau_m", "c_m", "v_rest", "v_reset", "v_th", "t_ref", "i_e", "tau_syn_ex", "tau_syn_in",
                 "v_min", "reset"):
        t[f"LIF.{name}"] = (name, lambda net, c, v, name=name: net.population(2, es.LIF(**{name: v})))
    for name in ("c_m", "v_th", "t_ref"):
        t[f"IF.{name}"] = (name, lambda net, c, v, name=name: net.population(2, es.IF(**{name: v})))
    for name in ("tau_theta", "d_theta", "reset_mult", "reset_offset"):
        t[f"ALIF.{name}"] = (name, lambda net, c, v, name=name: net.population(2, es.ALIF(**{name: v})))
    t["FixedInDegree.k"] = ("k", lambda net, c, v: net.connect(c["pop"], c["pop"], es.FixedInDegree(v), 1.0, 1.0))
    t["FixedInDegree.allow_multapses"] = ("allow_multapses", lambda net, c, v: net.connect(
        c["pop"], c["pop"], es.FixedInDegree(2, allow_multapses=v), 1.0, 1.0))
    t["FixedProbability.allow_autapses"] = ("allow_autapses", lambda net, c, v: net.connect(
        c["pop"], c["pop"], es.FixedProbability(0.5, allow_autapses=v), 1.0, 1.0))
    t["AllToAll.allow_autapses"] = ("allow_autapses", lambda net, c, v: net.connect(
        c["pop"], c["pop"], es.AllToAll(allow_autapses=v), 1.0, 1.0))
    t["Uniform.high"] = ("high", lambda net, c, v: net.connect(c["pop"], c["pop"], es.OneToOne(),
                                                                es.Uniform(0.5, v), 1.0))
    t["Normal.low"] = ("low", lambda net, c, v: net.connect(c["pop"], c["pop"], es.OneToOne(),
                                                             es.Normal(1.0, 1.0, low=v), 1.0))
    t["FixedProbability.p"] = ("p", lambda net, c, v: net.connect(c["pop"], c["pop"], es.FixedProbability(v),
                                                                   1.0, 1.0))
    t["FromArrays.pre"] = ("pre", lambda net, c, v: net.connect(c["pop"], c["pop"], es.FromArrays(v, [0]),
                                                                 1.0, 1.0))
    t["FromArrays.post"] = ("post", lambda net, c, v: net.connect(c["pop"], c["pop"], es.FromArrays([0], v),
                                                                   1.0, 1.0))
    t["Normal.mean"] = ("mean", lambda net, c, v: net.connect(c["pop"], c["pop"], es.OneToOne(),
                                                               es.Normal(v, 1.0), 1.0))
    t["Normal.std"] = ("std", lambda net, c, v: net.connect(c["pop"], c["pop"], es.OneToOne(),
                                                             es.Normal(1.0, v), 1.0))
    t["Uniform.low"] = ("low", lambda net, c, v: net.connect(c["pop"], c["pop"], es.OneToOne(),
                                                              es.Uniform(v, 2.0), 1.0))
    # ---- Network methods
    t["population.n"] = ("n", lambda net, c, v: net.population(v, _lif()))
    t["population.model"] = ("model", lambda net, c, v: net.population(2, v))
    t["population.v_init"] = ("v_init", lambda net, c, v: net.population(2, _lif(), v_init=v))
    t["poisson.n"] = ("n", lambda net, c, v: net.poisson(v, rate=10.0))
    t["poisson.rate"] = ("rate", lambda net, c, v: net.poisson(2, rate=v))
    t["spike_source.senders"] = ("senders", lambda net, c, v: net.spike_source(v, [1.0]))
    t["spike_source.times"] = ("times", lambda net, c, v: net.spike_source([0], v))
    t["spike_source.n"] = ("n", lambda net, c, v: net.spike_source([0], [1.0], n=v))
    t["dc.amplitude"] = ("amplitude", lambda net, c, v: net.dc(v))
    t["dc.start"] = ("start", lambda net, c, v: net.dc(1.0, start=v))
    t["dc.stop"] = ("stop", lambda net, c, v: net.dc(1.0, start=1.0, stop=v))
    t["dc.n"] = ("n", lambda net, c, v: net.dc(1.0, n=v))
    t["connect.pre"] = ("pre", lambda net, c, v: net.connect(v, c["pop"], es.OneToOne(), 1.0, 1.0))
    t["connect.post"] = ("post", lambda net, c, v: net.connect(c["pop"], v, es.OneToOne(), 1.0, 1.0))
    t["connect.rule"] = ("rule", lambda net, c, v: net.connect(c["pop"], c["pop"], v, 1.0, 1.0))
    t["connect.weight"] = ("weight", lambda net, c, v: net.connect(c["pop"], c["pop"], es.OneToOne(), v, 1.0))
    t["connect.delay"] = ("delay", lambda net, c, v: net.connect(c["pop"], c["pop"], es.OneToOne(), 1.0, v))
    t["connect.round_delays"] = ("round_delays", lambda net, c, v: net.connect(
        c["pop"], c["pop"], es.OneToOne(), 1.0, 1.0, round_delays=v))
    t["record_spikes.group"] = ("group", lambda net, c, v: net.record_spikes(v))
    t["record_spikes.overwrite"] = ("overwrite", lambda net, c, v: net.record_spikes(c["pop"], overwrite=v))
    t["record_spikes.compression"] = ("compression", lambda net, c, v: net.record_spikes(c["pop"],
                                                                                          compression=v))
    t["record_state.variable"] = ("variable", lambda net, c, v: net.record_state(c["pop"], v))
    t["record_state.interval"] = ("interval", lambda net, c, v: net.record_state(c["pop"], "v", interval=v))
    t["run.duration"] = ("duration", lambda net, c, v: net.run(v))
    t["view.index"] = ("index", lambda net, c, v: c["pop"][v])
    return t


TARGETS = _targets()


def _message_names(exc, arg):
    msg = str(exc)
    return arg in msg or (arg == "index" and ("index" in msg or "indexed" in msg or "mask" in msg))


def check(target, value, engine="clock", backend="cpu", reference=None):
    """Apply ``TARGETS[target]`` with ``value``; assert the rule of the module docstring.

    Returns the outcome of the network afterwards.  ``reference`` is the
    outcome of an untouched network (computed when not given).
    """
    arg, call = TARGETS[target]
    net, ctx = base(engine, backend)
    try:
        call(net, ctx, value)
    except CLEAR as exc:
        assert _message_names(exc, arg), f"{target}({value!r}): {type(exc).__name__} does not name {arg!r}: {exc}"
        if reference is None:
            reference = outcome(*base(engine, backend))
        got = outcome(net, ctx)
        assert got == reference, f"{target}({value!r}) raised but changed the network"
        return got
    except Exception as exc:  # anything else is a defect: a raw error from deep inside
        raise AssertionError(f"{target}({value!r}) raised {type(exc).__name__}: {exc}") from exc
    try:
        return outcome(net, ctx)
    except FloatingPointError as exc:
        assert "non-finite state" in str(exc), exc
        return None
    except CLEAR as exc:  # a later run refusing a valid-looking addition must still say why
        raise AssertionError(f"{target}({value!r}) was accepted but the run then raised "
                             f"{type(exc).__name__}: {exc}") from exc


def main(argv):
    """Check every target with every hostile value (used under the CUDA simulator)."""
    backend = argv[1] if len(argv) > 1 else "cpu"
    reference = outcome(*base("clock", backend))
    cpu_reference = outcome(*base("clock", "cpu"))
    assert reference == cpu_reference, "the CUDA backend differs from the CPU on the base network"
    cases = CUDA_CASES if backend == "cuda" else [(t, v) for t in TARGETS for v in HOSTILE]
    for target, value in cases:
        check(target, value, "clock", backend, reference)
    n = len(cases)
    print(f"checked {n} calls on backend={backend}")


if __name__ == "__main__":
    main(sys.argv)
