"""The alpha-synapse propagator (eventsim.models.psc_alpha): closed forms, the tau_m == tau_syn limit, and
NEST 3.10's iaf_psc_alpha networks (tests/nest_reference/alpha_*.npz) reproduced step by step with it."""

import math
from pathlib import Path

import mpmath
import numpy as np
import pytest

from eventsim.models.psc_alpha import alpha_initial, alpha_propagators, psi

REF = Path(__file__).parent / "nest_reference"


@pytest.mark.parametrize("z", [0.0, 1e-12, -1e-8, 1e-4, -0.3, -0.49, -0.5, -0.51, -0.7, -1.5, -3.0, -20.0, -700.0,
                               0.49, 0.7, 1.0, 1.99, 2.0, 2.01, 3.0, 50.0])
def test_psi_is_the_integral_within_a_few_roundings(z):
    exact = mpmath.quad(lambda u: u * mpmath.exp(z * u), [0, 1], maxdegree=12)
    assert psi(z) == pytest.approx(float(exact), rel=1e-15, abs=0)
    assert psi.py_func(z) == pytest.approx(float(exact), rel=1e-15, abs=0)


def _psp(t, tau_m, tau_s, c_m, w):
    """Closed-form PSP (mV) of an alpha current of peak w pA at time t after the spike (tau_m != tau_s),
    in 40-digit arithmetic (the form cancels badly for tau_m close to tau_s)."""
    with mpmath.workdps(40):
        t, tau_m, tau_s, c_m, w = (mpmath.mpf(x) for x in (t, tau_m, tau_s, c_m, w))
        a = 1 / tau_m - 1 / tau_s
        # v(t) = (w e / (tau_s C)) e^{-t/tau_m} int_0^t s e^{a s} ds
        return float(w * mpmath.e / (tau_s * c_m) * mpmath.exp(-t / tau_m)
                     * (t * mpmath.exp(a * t) / a - mpmath.expm1(a * t) / a ** 2))


@pytest.mark.parametrize("tau_m, tau_s", [(10.0, 2.0), (20.0, 0.5), (5.0, 8.0), (10.0, 10.0), (10.0, 10.0 + 1e-9)])
def test_steps_follow_the_closed_form_psp(tau_m, tau_s):
    """A spike at t = 0 of weight w: the state stepped with h = 0.1 ms follows the closed form at every step
    (tau_m == tau_s: the limit t^2 e^{1 - t/tau} w / (2 tau C)); the current peaks at w at t = tau_s."""
    c_m, w, h = 250.0, 100.0, 0.1
    p11, p21, pv1, pv2 = alpha_propagators(h, 1.0 / tau_m, c_m, 1.0 / tau_s)
    y1, y2, v = w * alpha_initial(1.0 / tau_s), 0.0, 0.0
    for k in range(1, 601):
        v = math.exp(-h / tau_m) * v + pv1 * y1 + pv2 * y2
        y1, y2 = p11 * y1, p21 * y1 + p11 * y2
        t = k * h
        if tau_m == tau_s:
            expect = w * math.e * t * t * math.exp(-t / tau_s) / (2.0 * tau_s * c_m)
        else:
            expect = _psp(t, tau_m, tau_s, c_m, w)
        assert v == pytest.approx(expect, rel=1e-12, abs=1e-15)
        assert y2 == pytest.approx(w * t / tau_s * math.exp(1.0 - t / tau_s), rel=1e-12)
    if tau_s * 10 == round(tau_s * 10):
        y1, y2 = w * alpha_initial(1.0 / tau_s), 0.0
        for _ in range(int(round(tau_s / h))):
            y1, y2 = p11 * y1, p21 * y1 + p11 * y2
        assert y2 == pytest.approx(w, rel=1e-13)   # the peak: w pA at tau_s


def test_equal_time_constants_need_no_branch():
    """tau_m -> tau_s: the propagator is continuous (no division by zero, no loss of digits)."""
    h, c_m = 0.1, 250.0
    at = alpha_propagators(h, 0.1, c_m, 0.1)
    near = alpha_propagators(h, 0.1, c_m, 0.1 * (1 + 1e-10))
    assert all(math.isfinite(x) for x in at)
    assert np.allclose(at, near, rtol=1e-9, atol=0)
    assert at[2] == pytest.approx(math.exp(-h * 0.1) * h * h / (2 * c_m), rel=1e-15)   # psi(0) = 1/2
    leaky = alpha_propagators(h, 0.0, c_m, 0.5)  # IF neuron: no leak
    assert all(math.isfinite(x) for x in leaky)


@pytest.mark.parametrize("case", ["alpha_ref", "alpha_equal_tau", "alpha_hetero"])
def test_stepping_reproduces_nest_iaf_psc_alpha(case):
    """NEST's iaf_psc_alpha networks (recurrent connections, spike inputs, refractoriness, per-neuron
    parameters incl. tau_m == tau_syn_ex), stepped in NumPy in NEST's order with this propagator: every
    spike on the same step, V_m within 1e-9 mV at every step."""
    d = np.load(REF / f"{case}.npz")
    dt, n, steps = float(d["dt"]), int(d["n"]), int(round(float(d["t_sim"]) / float(d["dt"])))
    tau_m, c_m, e_l = d["tau_m"], d["C_m"], d["E_L"]
    co = {}
    for port, tau_s in (("ex", d["tau_syn_ex"]), ("in", d["tau_syn_in"])):
        co[port] = np.array([alpha_propagators(dt, 1.0 / tm, cm, 1.0 / ts) for tm, cm, ts in zip(tau_m, c_m, tau_s)]).T
        co[port + "0"] = np.array([alpha_initial(1.0 / ts) for ts in tau_s])
    p_vv = np.exp(-dt / tau_m)
    p_vi = -tau_m / c_m * np.expm1(-dt / tau_m)
    ref_steps = np.round(d["t_ref"] / dt).astype(int)
    # arrivals: (step, neuron, weight); recurrent ones are added as spikes happen
    pending = np.zeros((steps + 64, 2, n))
    gen_step = np.round(d["gen_time"] / dt).astype(int)
    for ch, s in zip(d["gen_sender"], gen_step):
        sel = d["in_pre"] == ch
        for post, w, dl in zip(d["in_post"][sel], d["in_weight"][sel], d["in_delay"][sel]):
            pending[s + int(round(dl / dt)), 0 if w >= 0 else 1, post] += w
    out = [np.flatnonzero(d["conn_pre"] == i) for i in range(n)]
    v = d["V_init"].astype(float).copy()
    y = {p: np.zeros((2, n)) for p in ("ex", "in")}
    refr = np.zeros(n, int)
    vm = np.zeros((steps, n))
    spikes = []
    for s in range(steps):
        free = refr == 0
        v_new = e_l + p_vv * (v - e_l) + p_vi * d["I_e"]
        for p in ("ex", "in"):
            v_new += co[p][2] * y[p][0] + co[p][3] * y[p][1]
        v = np.where(free, v_new, v)
        refr = np.where(free, refr, refr - 1)
        for i, p in enumerate(("ex", "in")):
            y1, y2 = y[p]
            y[p] = np.array([co[p][0] * y1 + co[p + "0"] * pending[s + 1, i], co[p][1] * y1 + co[p][0] * y2])
        fired = np.flatnonzero(v >= d["V_th"])
        v[fired] = d["V_reset"][fired]
        refr[fired] = ref_steps[fired]
        for i in fired:
            spikes.append((s + 1, i))
            for c in out[i]:
                w = d["conn_weight"][c]
                pending[s + 1 + int(round(d["conn_delay"][c] / dt)), 0 if w >= 0 else 1, d["conn_post"][c]] += w
        vm[s] = v
    got_t = np.array([a for a, _ in spikes])
    got_i = np.array([b for _, b in spikes])
    ref_t = np.round(d["spike_times"] / dt).astype(int)
    order = np.lexsort((d["spike_senders"], ref_t))
    assert len(spikes) > 500
    assert np.array_equal(got_t, ref_t[order]) and np.array_equal(got_i, d["spike_senders"][order])
    k = np.round(d["vm_times"] / dt).astype(int) - 1
    assert np.abs(vm[k] - d["vm"]).max() < 1e-9
