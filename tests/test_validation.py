"""Bad input gives a clear error naming the argument, and leaves nothing half-built."""

import math

import numpy as np
import pytest

import eventsim as es


def small():
    net = es.Network(dt=0.1, seed=3)
    a = net.population(10, es.LIF())
    b = net.population(5, es.LIF(tau_syn_ex=2.0, tau_syn_in=5.0))
    return net, a, b


@pytest.mark.parametrize("dt", [0.0, -0.1, math.nan, math.inf, "0.1", True])
def test_bad_dt(dt):
    with pytest.raises(ValueError, match="dt"):
        es.Network(dt=dt)


@pytest.mark.parametrize("seed", [-1, 1.5, 2**64, None])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        es.Network(seed=seed)


def test_bad_backend_and_engine():
    with pytest.raises(ValueError, match="backend"):
        es.Network(backend="tpu")
    with pytest.raises(ValueError, match="engine"):
        es.Network(engine="magic")


@pytest.mark.parametrize("kw,name", [
    (dict(tau_m=0.0), "tau_m"), (dict(tau_m=-5.0), "tau_m"), (dict(c_m=0.0), "c_m"),
    (dict(t_ref=-1.0), "t_ref"), (dict(v_reset=15.0, v_th=15.0), "v_reset"),
    (dict(v_reset=16.0), "v_reset"), (dict(tau_syn_ex=2.0), "tau_syn"),
    (dict(tau_syn_ex=-2.0, tau_syn_in=1.0), "tau_syn_ex"), (dict(tau_m=math.nan), "tau_m"),
    (dict(i_e=math.inf), "i_e"), (dict(v_min=20.0), "v_min"), (dict(reset="zero"), "reset"),
    (dict(tau_m=np.array([10.0, -1.0])), "tau_m"), (dict(tau_m=np.ones((2, 2))), "tau_m"),
    (dict(tau_m=np.array([10.0, 20.0]), c_m=np.array([1.0, 2.0, 3.0])), "mismatched"),
])
def test_bad_model_parameters(kw, name):
    with pytest.raises(ValueError, match=name):
        es.LIF(**kw)


def test_bad_alif_parameters():
    with pytest.raises(ValueError, match="d_theta"):
        es.ALIF(tau_theta=(10.0, 20.0), d_theta=(1.0,))
    with pytest.raises(ValueError, match="tau_theta"):
        es.ALIF(tau_theta=(-1.0,), d_theta=(1.0,))


def test_population_errors_leave_network_unchanged():
    net, a, b = small()
    n_before = net.n_neurons
    with pytest.raises(ValueError, match="n="):
        net.population(0, es.LIF())
    with pytest.raises(ValueError, match="must have n=3 values: tau_m has 2"):
        net.population(3, es.LIF(tau_m=np.array([10.0, 20.0])))
    with pytest.raises(ValueError, match="t_ref"):
        net.population(3, es.LIF(t_ref=0.15))
    with pytest.raises(ValueError, match="v_init"):
        net.population(3, es.LIF(), v_init=[1.0, 2.0])
    with pytest.raises(TypeError, match="model"):
        net.population(3, "LIF")
    assert net.n_neurons == n_before and len(net.populations) == 2


@pytest.mark.parametrize("delay,match", [(0.05, "shorter than dt"), (0.0, "shorter than dt"),
                                         (0.15, "not a multiple"), (-1.0, "shorter"),
                                         (math.nan, "NaN")])
def test_bad_delays(delay, match):
    net, a, b = small()
    with pytest.raises(ValueError, match=match):
        net.connect(a, b, es.AllToAll(), weight=1.0, delay=delay)
    assert net.projections == []


def test_round_delays_opt_in():
    net, a, b = small()
    proj = net.connect(a, b, es.AllToAll(), weight=1.0, delay=0.149, round_delays=True)
    assert np.all(proj.delay_steps == 1)


@pytest.mark.parametrize("weight,match", [(math.nan, "NaN"), (math.inf, "NaN or infinite"),
                                          (np.array([1.0, np.nan] * 25), "NaN"),
                                          (np.ones(3), "shape"), ("heavy", "weight")])
def test_bad_weights(weight, match):
    net, a, b = small()
    with pytest.raises(ValueError, match=match):
        net.connect(a, b, es.AllToAll(), weight=weight, delay=1.0)
    assert net.projections == []


def test_bad_indices():
    net, a, b = small()
    with pytest.raises(ValueError, match="out of range"):
        net.connect(a, b, es.FromArrays([0, 10], [0, 1]), weight=1.0)
    with pytest.raises(ValueError, match="out of range"):
        net.connect(a, b, es.FromArrays([0, 1], [0, 5]), weight=1.0)
    with pytest.raises(ValueError, match="pre has 2 entries but post has 1"):
        es.FromArrays([0, 1], [0])
    with pytest.raises(IndexError):
        a[10]
    with pytest.raises(IndexError):
        a[np.array([0, 11])]
    with pytest.raises(ValueError, match="OneToOne"):
        net.connect(a, b, es.OneToOne(), weight=1.0)
    assert net.projections == []


def test_bad_rules():
    with pytest.raises(ValueError, match="k="):
        es.FixedInDegree(-1)
    with pytest.raises(ValueError, match="p="):
        es.FixedProbability(1.5)
    net, a, b = small()
    with pytest.raises(TypeError, match="rule"):
        net.connect(a, b, "all", weight=1.0)
    with pytest.raises(ValueError, match="exceeds"):
        net.connect(a, b, es.FixedInDegree(20, allow_multapses=False), weight=1.0)


def test_bad_durations():
    net, a, b = small()
    for d in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="duration"):
            net.run(d)
    with pytest.raises(ValueError, match="not a multiple"):
        net.run(0.05)
    net.run(0.0)
    assert net.step == 0


def test_unknown_state_names():
    net, a, b = small()
    with pytest.raises(ValueError, match="unknown state variable 'i_ex'"):
        net.record_state(a, "i_ex")
    with pytest.raises(ValueError, match="unknown state variable 'w'"):
        net.record_state(b, "w")
    with pytest.raises(ValueError, match="interval"):
        net.record_state(b, "v", interval=0.25)
    assert net.recorders == []


def test_other_network_rejected():
    net, a, b = small()
    other = es.Network(dt=0.1)
    c = other.population(3, es.LIF())
    with pytest.raises(ValueError, match="another Network"):
        net.connect(a, c, es.AllToAll(), weight=1.0)
    with pytest.raises(ValueError, match="another Network"):
        net.connect(c, a, es.AllToAll(), weight=1.0)
    with pytest.raises(ValueError, match="another Network"):
        net.record_spikes(c)
    with pytest.raises(ValueError, match="different Networks"):
        a | c
    assert net.projections == [] and net.recorders == []


def test_sources_validation():
    net, a, b = small()
    with pytest.raises(ValueError, match="rate"):
        net.poisson(3, rate=-1.0)
    with pytest.raises(ValueError, match="equal length"):
        net.spike_source([0, 1], [1.0])
    with pytest.raises(ValueError, match="times"):
        net.spike_source([0], [-1.0])
    with pytest.raises(ValueError, match="not a multiple"):
        net.spike_source([0], [1.05])
    with pytest.raises(ValueError, match="senders"):
        net.spike_source([0, 3], [1.0, 2.0], n=2)
    src = net.spike_source([0], [1.05], round_times=True)
    assert src.spike_steps.tolist() == [10] or src.spike_steps.tolist() == [11]
    with pytest.raises(ValueError, match="post"):
        net.connect(a, src, es.AllToAll(), weight=1.0)
    with pytest.raises(ValueError, match="cannot unite"):
        a | src


def test_additions_after_run():
    """Both engines take additions between runs (tests/test_live.py, tests/test_live_event.py)."""
    net, a, b = small()
    net.run(1.0)
    c = net.population(2, es.LIF())
    net.connect(a, c, es.AllToAll(), weight=1.0)
    net.run(1.0)
    assert net.n_neurons == len(a) + len(b) + 2
    ev = es.Network(engine="event")
    p = ev.population(2, es.LIF())
    ev.run(1.0)
    q = ev.population(2, es.LIF())
    ev.connect(p, q, es.AllToAll(), weight=1.0)
    ev.run(1.0)
    assert ev.t == 2.0 and ev.n_neurons == 4


def test_memory_guard_refuses_before_allocating(monkeypatch):
    import eventsim.network as nw

    net, a, b = small()
    monkeypatch.setattr(nw, "available_memory", lambda: 1000)
    with pytest.raises(MemoryError, match=r"about 50 connections.*GiB.*available"):
        net.connect(a, b, es.AllToAll(), weight=1.0)
    assert net.projections == []
    monkeypatch.setattr(nw, "available_memory", lambda: 2**30)
    big = es.Network()
    p = big.population(100_000, es.LIF())
    with pytest.raises(MemoryError, match="10,000,000,000 connections"):
        big.connect(p, p, es.AllToAll(), weight=1.0)
