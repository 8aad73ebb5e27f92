"""Single neurons against closed-form solutions."""

import math

import numpy as np
import pytest

import eventsim as es


@pytest.mark.parametrize("t_ref", [0.0, 2.0])
@pytest.mark.parametrize("i_e", [400.0, 500.0, 1000.0])
def test_constant_current_interspike_interval(i_e, t_ref):
    tau, c, th, dt = 10.0, 250.0, 15.0, 0.1
    net = es.Network(dt=dt)
    pop = net.population(1, es.LIF(tau_m=tau, c_m=c, v_rest=0.0, v_reset=0.0, v_th=th, t_ref=t_ref, i_e=i_e),
                         v_init=0.0)
    sp = net.record_spikes(pop)
    net.run(500.0)
    T = -tau * math.log(1.0 - th * c / (tau * i_e))   # time to threshold from rest (ms)
    k = math.ceil(T / dt - 1e-12)                      # first grid point at or above threshold
    ref = round(t_ref / dt)
    steps = sp.steps
    assert steps[0] == k
    np.testing.assert_array_equal(np.diff(steps), ref + k)


def test_if_neuron_constant_current():
    net = es.Network(dt=0.1)
    pop = net.population(1, es.IF(c_m=100.0, v_rest=0.0, v_reset=0.0, v_th=10.0, t_ref=1.0, i_e=50.0))
    sp = net.record_spikes(pop)
    vm = net.record_state(pop, "v")
    net.run(100.0)
    # v = I t / C reaches 10 mV after 20 ms exactly (200 steps), then 10 refractory steps
    np.testing.assert_array_equal(sp.steps, np.arange(200, 1001, 210))
    np.testing.assert_allclose(vm.values[:199, 0], 50.0 * vm.times[:199] / 100.0, rtol=1e-12)


@pytest.mark.parametrize("tau_s", [0.5, 2.0, 10.0, 10.0 * (1 + 1e-9)])
def test_exponential_psp_shape_and_peak(tau_s):
    tau_m, c, w, dt = 10.0, 250.0, 500.0, 0.01
    net = es.Network(dt=dt)
    pop = net.population(1, es.LIF(tau_m=tau_m, c_m=c, v_rest=0.0, v_th=100.0, tau_syn_ex=tau_s,
                                   tau_syn_in=1.0), v_init=0.0)
    src = net.spike_source([0], [1.0])
    net.connect(src, pop, es.OneToOne(), weight=w, delay=1.0)   # current jumps at t = 2 ms
    vm = net.record_state(pop, "v")
    ie = net.record_state(pop, "i_ex")
    net.run(60.0)
    t = vm.times - 2.0
    a = 1.0 / tau_s - 1.0 / tau_m
    # w/C (e^{-t/tau_m} - e^{-t/tau_s}) / a, written without cancellation near a = 0
    tt = np.maximum(t, 0.0)
    expect = w / c * np.exp(-tt / tau_m) * (tt if a == 0 else -np.expm1(-a * tt) / a)
    t_peak = tau_m if a == 0 else math.log(tau_m / tau_s) / a
    expect[t < 0] = 0.0
    np.testing.assert_allclose(vm.values[:, 0], expect, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ie.values[t >= -1e-9, 0], w * np.exp(-t[t >= -1e-9] / tau_s), rtol=1e-9)
    peak = np.argmax(vm.values[:, 0])
    assert abs(t[peak] - t_peak) <= dt
    v_peak = w / c * math.exp(-t_peak / tau_m) * (t_peak if a == 0 else -math.expm1(-a * t_peak) / a)
    assert vm.values[peak, 0] <= v_peak * (1 + 1e-12)
    assert vm.values[peak, 0] == pytest.approx(v_peak, rel=1e-4)


def test_delta_psp_jump_and_decay():
    net = es.Network(dt=0.1)
    pop = net.population(1, es.LIF(tau_m=20.0, v_rest=-70.0, v_reset=-75.0, v_th=-50.0), v_init=-70.0)
    src = net.spike_source([0], [3.0])
    net.connect(src, pop, es.OneToOne(), weight=2.0, delay=1.5)
    vm = net.record_state(pop, "v")
    net.run(50.0)
    t = vm.times
    expect = np.where(t >= 4.5 - 1e-9, -70.0 + 2.0 * np.exp(-(t - 4.5) / 20.0), -70.0)
    np.testing.assert_allclose(vm.values[:, 0], expect, atol=1e-12)


def test_refractory_clamp_and_subtract_reset():
    net = es.Network(dt=0.1)
    a = net.population(1, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, v_reset=5.0, t_ref=1.0, i_e=1000.0))
    b = net.population(1, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=0.0, i_e=1000.0, reset="subtract"))
    vm_a = net.record_state(a, "v")
    vm_b = net.record_state(b, "v")
    sa = net.record_spikes(a)
    sb = net.record_spikes(b)
    net.run(20.0)
    first = sa.steps[0]
    assert np.all(vm_a.values[first - 1: first + 10, 0] == 5.0)   # clamped for t_ref = 10 steps
    assert vm_a.values[first + 10, 0] > 5.0
    kb = sb.steps[0]
    before = vm_b.values[kb - 2, 0]
    # one more exact step from `before`, then subtract the threshold distance
    p = es.propagator(es.LIF(tau_m=10.0, c_m=250.0), 0.1)
    crossed = p.p_vv * before + p.p_vi * 1000.0
    assert crossed >= 15.0
    assert vm_b.values[kb - 1, 0] == pytest.approx(crossed - 15.0, abs=1e-12)


def test_v_min_bounds_voltage():
    net = es.Network(dt=0.1)
    pop = net.population(1, es.LIF(tau_m=10.0, v_th=15.0, v_min=-2.0), v_init=0.0)
    src = net.spike_source([0, 0], [1.0, 2.0])
    net.connect(src, pop, es.OneToOne(), weight=-5.0, delay=0.1)
    vm = net.record_state(pop, "v")
    net.run(5.0)
    assert vm.values.min() == -2.0


def test_adaptive_threshold_increments_and_decays():
    dt = 0.1
    net = es.Network(dt=dt)
    model = es.ALIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=0.0, i_e=1000.0,
                    tau_theta=(5.0, 50.0), d_theta=(1.0, 0.5))
    pop = net.population(1, model)
    sp = net.record_spikes(pop)
    th = net.record_state(pop, "theta")
    vth = net.record_state(pop, "v_th")
    net.run(100.0)
    steps = sp.steps
    assert len(steps) > 5
    isi = np.diff(steps)
    assert isi[-1] > isi[0]                         # adaptation lengthens the interval
    # reconstruct theta from the spike train: sum_k d_k sum_spikes exp(-(t - t_s)/tau_k)
    t = th.steps
    expect = np.zeros(t.size)
    for tau, d in ((5.0, 1.0), (50.0, 0.5)):
        for s in steps:
            m = t >= s
            expect[m] += d * np.exp(-(t[m] - s) * dt / tau)
    np.testing.assert_allclose(th.values[:, 0], expect, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(vth.values[:, 0], 15.0 + expect, rtol=1e-12)


def test_glif2_affine_reset():
    net = es.Network(dt=0.1)
    model = es.ALIF(tau_m=10.0, c_m=250.0, v_rest=-70.0, v_th=-55.0, t_ref=0.0, i_e=1000.0, tau_theta=(20.0,),
                    d_theta=(0.0,), reset="affine", reset_mult=0.5, reset_offset=3.0)
    pop = net.population(1, model, v_init=-70.0)
    vm = net.record_state(pop, "v")
    sp = net.record_spikes(pop)
    net.run(30.0)
    k = sp.steps[0]
    p = es.propagator(es.LIF(tau_m=10.0, c_m=250.0), 0.1)
    crossed = -70.0 + p.p_vv * (vm.values[k - 2, 0] + 70.0) + p.p_vi * 1000.0
    assert vm.values[k - 1, 0] == pytest.approx(-70.0 + 0.5 * (crossed + 70.0) - 3.0, abs=1e-12)
