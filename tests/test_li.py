"""The leaky integrator (es.LI): one family module, run by the clock engine, the event engine and the CUDA
simulator."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import eventsim as es


def _network(model):
    net = es.Network(dt=0.1, seed=2)
    drive = net.population(3, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=2.0, i_e=400.0))
    out = net.population(2, model)
    stim = net.spike_source(senders=[0, 0], times=[1.0, 4.0])
    net.connect(stim, out, es.AllToAll(), weight=300.0, delay=1.0)
    net.connect(drive, out, es.AllToAll(), weight=es.Normal(50.0, 20.0), delay=1.5)
    net.connect(drive, out, es.AllToAll(), weight=-20.0, delay=0.5)
    spikes = net.record_spikes(out)
    drive_spikes = net.record_spikes(drive)
    v = net.record_state(out, "v")
    return net, spikes, drive_spikes, v


def test_li_parameters_are_validated():
    assert es.LI().synapse == "exp" and es.LI(tau_syn_ex=None, tau_syn_in=None).synapse == "delta"
    assert es.LI().state_names == ("v", "i_ex", "i_in")
    with pytest.raises(ValueError, match="tau_m"):
        es.LI(tau_m=0.0)
    with pytest.raises(ValueError, match="both be None"):
        es.LI(tau_syn_ex=None)
    with pytest.raises(TypeError, match="no threshold"):
        es.LI(v_th=10.0)


def test_li_psp_is_the_closed_form():
    """One input of w pA arriving at t0: v - v_rest = w tau_s / (C_m (1 - tau_s/tau_m)) (e^{-s/tau_m} -
    e^{-s/tau_s}) at s = t - t0, from the step after the arrival on; it never spikes."""
    tau_m, tau_s, c_m, w = 20.0, 4.0, 100.0, 5000.0
    net = es.Network(dt=0.1)
    li = net.population(1, es.LI(tau_m=tau_m, c_m=c_m, v_rest=-70.0, tau_syn_ex=tau_s, tau_syn_in=2.0),
                        v_init=-70.0)
    net.connect(net.spike_source(senders=[0], times=[1.0]), li, es.AllToAll(), weight=w, delay=1.0)
    v = net.record_state(li, "v")
    sp = net.record_spikes(li)
    net.run(40.0)
    s = v.times - 2.0
    expected = -70.0 + np.where(s > 0, w * tau_s / (c_m * (1 - tau_s / tau_m))
                                * (np.exp(-s / tau_m) - np.exp(-s / tau_s)), 0.0)
    assert np.allclose(v.values[:, 0], expected, rtol=0, atol=1e-10)
    assert v.values.max() > -60.0 and len(sp) == 0


@pytest.mark.parametrize("syn", [dict(tau_syn_ex=2.0, tau_syn_in=3.0), dict(tau_syn_ex=None, tau_syn_in=None)],
                         ids=["exp", "delta"])
def test_li_is_a_lif_that_never_reaches_threshold(syn):
    """Bit for bit the same v as a LIF with an unreachable threshold (the same exact step), no spike."""
    params = dict(tau_m=15.0, c_m=200.0, v_rest=-65.0, i_e=30.0, **syn)
    runs = []
    for model in (es.LI(**params), es.LIF(v_th=1e300, v_reset=-70.0, t_ref=0.0, **params)):
        net, spikes, drive, v = _network(model)
        net.run(60.0)
        runs.append((v.values.copy(), len(spikes), len(drive)))
    assert runs[0][2] > 5 and runs[0][1] == runs[1][1] == 0
    assert np.array_equal(runs[0][0], runs[1][0])
    assert np.ptp(runs[0][0]) > 1.0


def test_li_in_the_event_engine():
    """The event engine integrates the LI between events with the same propagator: with inputs on the grid
    its v at the samples equals the clock engine's to rounding, and it never spikes."""
    out = []
    for engine in ("clock", "event"):
        net = es.Network(dt=0.1, engine=engine)
        li = net.population(2, es.LI(tau_m=15.0, c_m=200.0, v_rest=-65.0, i_e=[0.0, 50.0], tau_syn_ex=2.0,
                                     tau_syn_in=3.0))
        stim = net.spike_source(senders=[0, 1, 0, 1, 0], times=[1.0, 2.5, 3.0, 7.2, 12.0])
        net.connect(stim, li, es.FromArrays(pre=[0, 1, 0, 1], post=[0, 0, 1, 1]), weight=[400.0, -250.0, 300.0, 90.0],
                    delay=[1.0, 0.5, 2.0, 1.0])
        v = net.record_state(li, "v")
        i_ex = net.record_state(li, "i_ex")
        sp = net.record_spikes(li)
        net.run(30.0)
        out.append((v.values.copy(), i_ex.values.copy(), len(sp)))
    (vc, ic, nc), (ve, ie, ne) = out
    assert nc == ne == 0
    assert vc.shape == ve.shape and np.ptp(vc) > 1.0
    assert np.allclose(vc, ve, rtol=0, atol=1e-9) and np.allclose(ic, ie, rtol=0, atol=1e-9)


SCRIPT = r"""
import numpy as np, eventsim as es
from eventsim import config
config.CUDA_THREADS_PER_BLOCK = 4
res = []
for backend in ("cpu", "cuda"):
    net = es.Network(dt=0.1, seed=2, backend=backend)
    drive = net.population(3, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=2.0, i_e=600.0))
    li = net.population(4, es.LI(tau_m=15.0, c_m=200.0, v_rest=-65.0, tau_syn_ex=2.0, tau_syn_in=3.0))
    net.connect(drive, li, es.AllToAll(), weight=es.Normal(50.0, 20.0), delay=1.5)
    net.connect(net.poisson(4, rate=2000.0), li, es.OneToOne(), weight=-30.0, delay=0.1)
    v = net.record_state(li, "v"); sp = net.record_spikes(li); dsp = net.record_spikes(drive)
    net.run(20.0)
    res.append((v.values.copy(), len(sp), dsp.senders.copy()))
assert np.array_equal(res[0][0], res[1][0]) and np.array_equal(res[0][2], res[1][2])
assert res[0][1] == res[1][1] == 0 and res[0][2].size > 0 and np.ptp(res[0][0]) > 1.0
print("ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda not installed")
def test_li_in_the_cuda_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout + out.stderr[-3000:]


def test_li_checkpoint_resumes_bit_for_bit(tmp_path):
    model = es.LI(tau_m=15.0, c_m=200.0, v_rest=-65.0, i_e=30.0, tau_syn_ex=2.0, tau_syn_in=3.0)
    net, spikes, drive, v = _network(model)
    net.run(30.0)
    net.save(str(tmp_path / "li.ckpt"))
    net.run(30.0)
    other = es.Network.load(str(tmp_path / "li.ckpt"))
    assert type(other.populations[1].model) is es.LI
    other.run(30.0)
    v2 = [r for r in other.recorders if isinstance(r, es.StateRecorder)][0]
    assert np.array_equal(v.values, v2.values)
