"""DC sources and step currents with a delay (NEST's device delay): the targets receive the current the
source produces at t at t + delay; windows, scheduled changes and changes between runs alike."""

import numpy as np
import pytest

import eventsim as es

MODEL = es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, v_reset=0.0, t_ref=2.0, tau_syn_ex=2.0, tau_syn_in=5.0)


def _net(engine="clock"):
    net = es.Network(dt=0.1, seed=2, engine=engine)
    pop = net.population(4, MODEL, v_init=np.array([0.0, 3.0, 6.0, 9.0]))
    return net, pop


def _trace(net, pop, t=60.0, runs=1):
    vm = net.record_state(pop, "v") if net.engine == "clock" else None
    sp = net.record_spikes(pop)
    for _ in range(runs):
        net.run(t / runs)
    return (vm.values.copy() if vm is not None else None), sp.times.copy(), sp.senders.copy()


def _same(a, b):
    return all((x is None and y is None) or np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("engine", ["clock", "event"])
def test_delay_shifts_the_window(engine):
    """A DC window [10, 30) ms with a delay of 2.5 ms acts on the targets exactly as [12.5, 32.5) without."""
    a_net, a = _net(engine)
    a_net.connect(a_net.dc(1500.0, start=10.0, stop=30.0, delay=2.5), a, es.AllToAll(), weight=1.0)
    b_net, b = _net(engine)
    b_net.connect(b_net.dc(1500.0, start=12.5, stop=32.5), b, es.AllToAll(), weight=1.0)
    ra, rb = _trace(a_net, a), _trace(b_net, b)
    assert len(ra[1]) > 5 and _same(ra, rb)
    assert ra[1].min() > 12.5


def test_delayed_step_current_and_changes_between_runs():
    """A step current with a delay of 1.2 ms equals the same steps 1.2 ms later without delay; a delayed
    source's amplitude set between runs at t reaches the targets at t + delay, as a scheduled change at
    t + delay does."""
    a_net, a = _net()
    a_net.connect(a_net.step_current([5.0, 20.0, 35.0], [500.0, 0.0, 800.0], delay=1.2), a, es.AllToAll(), weight=1.0)
    b_net, b = _net()
    b_net.connect(b_net.step_current([6.2, 21.2, 36.2], [500.0, 0.0, 800.0]), b, es.AllToAll(), weight=1.0)
    ra, rb = _trace(a_net, a), _trace(b_net, b)
    assert len(ra[1]) > 5 and _same(ra, rb)

    c_net, c = _net()
    src = c_net.dc(300.0, delay=1.2)
    c_net.connect(src, c, es.AllToAll(), weight=2.0)
    vm = c_net.record_state(c, "v")
    sp = c_net.record_spikes(c)
    c_net.run(25.0)
    src.set(amplitude=700.0)
    assert src.amplitude[0] == 700.0   # the source's own value; the targets get it 1.2 ms later
    c_net.run(35.0)
    d_net, d = _net()
    d_net.connect(d_net.dc(300.0, start=1.2, amplitude_times=[26.2], amplitude_values=[700.0]), d, es.AllToAll(),
                  weight=2.0)
    rd = _trace(d_net, d)
    assert len(sp.times) > 5 and _same((vm.values, sp.times, sp.senders), rd)


def test_delayed_dc_checkpoint_resumes_exactly(tmp_path):
    def build():
        net, pop = _net()
        net.connect(net.step_current([5.0, 30.0], [600.0, 200.0], delay=0.7), pop, es.AllToAll(), weight=1.0)
        return net, pop

    full_net, full = build()
    ref = _trace(full_net, full)
    net, pop = build()
    vm, sp = net.record_state(pop, "v"), net.record_spikes(pop)
    net.run(29.5)
    net.save(tmp_path / "c.es")
    again = es.Network.load(tmp_path / "c.es")
    again.run(30.5)
    vm2, sp2 = again.recorders
    assert np.array_equal(vm2.values, ref[0]) and np.array_equal(sp2.times, ref[1])
    assert again.dc_sources[0].delay == 0.7


def test_delay_is_validated_and_refusals_change_nothing():
    net, pop = _net()
    for bad, match in ((-0.1, "delay"), (0.05, "delay"), (float("nan"), "delay"), ("x", "delay")):
        with pytest.raises((ValueError, TypeError), match=match):
            net.dc(100.0, delay=bad)
    assert net.dc_sources == []
    src = net.dc(100.0, delay=1.0)
    with pytest.raises(AttributeError, match=r"new net.dc\(\.\.\., delay=\.\.\.\)"):
        src.delay = 2.0
    with pytest.raises(TypeError, match="settable: amplitude, start, stop"):
        src.set(delay=2.0)
    assert src.delay == 1.0 and src.delay_steps == 10
    ev, pop = _net("event")
    src = ev.dc(100.0, delay=1.0)
    ev.connect(src, pop, es.AllToAll(), weight=1.0)
    ev.run(5.0)
    with pytest.raises(NotImplementedError, match="event engine"):
        src.set(amplitude=200.0)
    assert src.amplitude[0] == 100.0
    src.set(stop=20.0)   # windows can change (they shift by the delay)
    ev.run(5.0)
