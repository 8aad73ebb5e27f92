"""Recorders to neo: SpikeTrains and AnalogSignals with units, usable by elephant."""

import numpy as np
import pytest

neo = pytest.importorskip("neo")
pq = pytest.importorskip("quantities")

import eventsim as es  # noqa: E402


def driven(engine="clock", exp=False):
    net = es.Network(dt=0.1, seed=4, engine=engine)
    syn = dict(tau_syn_ex=2.0, tau_syn_in=2.0) if exp else {}
    pop = net.population(6, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, v_reset=0.0, t_ref=2.0, **syn),
                         v_init=np.linspace(0.0, 10.0, 6))
    src = net.poisson(30, rate=np.linspace(200.0, 900.0, 30))
    net.connect(src, pop, rule=es.FixedInDegree(12), weight=40.0 if exp else 1.2)
    return net, pop


@pytest.mark.parametrize("engine", ["clock", "event"])
def test_spike_trains_one_per_neuron_in_group_order(engine):
    net, pop = driven(engine)
    view = pop[np.array([4, 1, 5])]
    rec = net.record_spikes(view)
    net.run(300.0)
    trains = rec.to_neo()
    assert len(trains) == 3 and len(rec) > 30
    for j, tr in enumerate(trains):
        assert isinstance(tr, neo.SpikeTrain)
        assert tr.units == pq.ms and float(tr.t_start) == 0.0 and float(tr.t_stop) == net.t
        assert tr.annotations["neuron_id"] == view.ids[j] and tr.annotations["position"] == j
        want = rec.times[rec.senders == j]
        assert np.array_equal(tr.magnitude, want) and np.all(np.diff(want) >= 0)
    assert sum(len(t) for t in trains) == len(rec)
    # rates in Hz from the trains agree with the recorder's
    rates = np.array([len(t) / float(t.duration.rescale("s")) for t in trains])
    assert np.allclose(rates, rec.rates())


def test_windows_and_refusals():
    net, pop = driven()
    rec = net.record_spikes(pop)
    with pytest.raises(ValueError, match="run the network first"):
        rec.to_neo()
    net.run(200.0)
    win = rec.to_neo(t_start=50.0, t_stop=120.0)
    keep = (rec.times >= 50.0) & (rec.times <= 120.0)
    assert sum(len(t) for t in win) == keep.sum() > 0
    assert all(float(t.t_start) == 50.0 and float(t.t_stop) == 120.0 for t in win)
    with pytest.raises(ValueError, match="t_start"):
        rec.to_neo(t_start=-1.0)
    with pytest.raises(ValueError, match="t_stop"):
        rec.to_neo(t_start=20.0, t_stop=10.0)


def test_analog_signals_with_units():
    net, pop = driven(exp=True)
    v = net.record_state(pop[::-1], "v", interval=0.5)
    i = net.record_state(pop[:2], "i_ex")
    net.run(50.0)
    sv, si = v.to_neo(), i.to_neo()
    assert isinstance(sv, neo.AnalogSignal)
    assert sv.units == pq.mV and si.units == pq.pA
    assert sv.shape == v.values.shape and np.array_equal(sv.magnitude, v.values)
    assert float(sv.sampling_period) == 0.5 and sv.sampling_period.units == pq.ms
    assert float(sv.t_start) == v.times[0] and np.allclose(sv.times.magnitude, v.times)
    assert np.array_equal(sv.array_annotations["neuron_id"], pop.ids[::-1])
    assert sv.name == "v" and si.name == "i_ex"
    assert np.array_equal(si.magnitude, i.values) and float(si.sampling_period) == net.dt
    assert np.abs(si.magnitude).max() > 0


def test_streaming_recorders(tmp_path):
    net, pop = driven()
    rec = net.record_spikes(pop, to=str(tmp_path / "s.h5"))
    v = net.record_state(pop[:2], "v", to=str(tmp_path / "v.h5"))
    net.run(100.0)
    trains = rec.to_neo()
    assert sum(len(t) for t in trains) == len(rec) > 0
    assert np.array_equal(v.to_neo().magnitude, v.values)


def test_elephant_statistics_apply():
    elephant = pytest.importorskip("elephant")
    from elephant.statistics import cv, isi, mean_firing_rate

    net, pop = driven()
    rec = net.record_spikes(pop)
    net.run(500.0)
    trains = rec.to_neo()
    rate = [float(mean_firing_rate(t).rescale("Hz")) for t in trains]
    assert np.allclose(rate, rec.rates())
    j = int(np.argmax(rec.rates()))
    want = np.diff(rec.times[rec.senders == j])
    assert np.allclose(isi(trains[j]).magnitude, want)
    assert np.isclose(cv(isi(trains[j])), want.std() / want.mean())
    assert elephant.__version__


def test_example_with_and_without_elephant(tmp_path, monkeypatch):
    """examples/neo_statistics.py --quick: elephant's statistics and the NumPy fallback agree."""
    import os
    import runpy
    import sys

    pytest.importorskip("matplotlib")
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "neo_statistics.py")
    main = runpy.run_path(path)["main"]
    out = main(["--quick", "--plot", str(tmp_path / "a.png")])
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 5.0 < out["rate"] < 100.0 and 0.3 < out["cv"] < 1.5 and abs(out["correlation"]) < 0.3
    if out["source"] == "elephant":
        for name in [m for m in sys.modules if m == "elephant" or m.startswith("elephant.")]:
            monkeypatch.setitem(sys.modules, name, None)  # importing elephant now fails
        plain = main(["--quick", "--plot", ""])
        assert plain["source"].startswith("neo + NumPy")
        assert np.isclose(plain["rate"], out["rate"]) and np.isclose(plain["cv"], out["cv"])
        assert np.isclose(plain["correlation"], out["correlation"], atol=1e-3)
