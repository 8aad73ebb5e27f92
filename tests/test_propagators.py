"""Propagators against scipy.linalg.expm of the system matrix."""

import math

import mpmath
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsim as es


def expm_row(tau_m, c_m, tau_ex, tau_in, i_e, h):
    """First row of expm(A h) for the state (v - v_rest, I_ex, I_in, 1)."""
    inv_m = 0.0 if math.isinf(tau_m) else 1.0 / tau_m
    A = np.array([[-inv_m, 1 / c_m, 1 / c_m, i_e / c_m],
                  [0.0, -1 / tau_ex, 0.0, 0.0],
                  [0.0, 0.0, -1 / tau_in, 0.0],
                  [0.0, 0.0, 0.0, 0.0]])
    E = scipy.linalg.expm(A * h)
    return E[0], E[1, 1], E[2, 2]


def expm_row_mp(tau_m, c_m, tau_ex, tau_in, i_e, h):
    """The same in 60-digit arithmetic: scipy's expm loses digits near tau_m == tau_syn
    (a nearly defective matrix), so it cannot judge that limit."""
    mpmath.mp.dps = 60
    mpf = mpmath.mpf
    inv_m = mpf(0) if math.isinf(tau_m) else 1 / mpf(tau_m)
    A = mpmath.matrix([[-inv_m, 1 / mpf(c_m), 1 / mpf(c_m), mpf(i_e) / mpf(c_m)],
                       [0, -1 / mpf(tau_ex), 0, 0],
                       [0, 0, -1 / mpf(tau_in), 0],
                       [0, 0, 0, 0]])
    E = mpmath.expm(A * mpf(h))
    return np.array([float(E[0, j]) for j in range(4)]), float(E[1, 1]), float(E[2, 2])


def check(model, i_e, h, judge=None):
    """Compare with scipy's expm (or the 60-digit judge, which is held to 1e-12)."""
    p = es.propagator(model, h)
    row, e_ex, e_in = (judge or expm_row)(getattr(model, "tau_m", math.inf), model.c_m, model.tau_syn_ex,
                                          model.tau_syn_in, i_e, h)
    # scipy's Pade approximant carries absolute, not relative, error on entries far below 1
    rtol, atol = (1e-12, 0.0) if judge else (1e-10, 1e-14 * h / model.c_m)
    np.testing.assert_allclose(p.p_vv, row[0], rtol=1e-12, atol=atol)
    np.testing.assert_allclose(p.p_ve, row[1], rtol=rtol, atol=atol)
    np.testing.assert_allclose(p.p_vn, row[2], rtol=rtol, atol=atol)
    np.testing.assert_allclose(p.p_vi * i_e, row[3], rtol=rtol, atol=atol * abs(i_e) + 1e-300)
    np.testing.assert_allclose(p.p_ee, e_ex, rtol=1e-12)
    np.testing.assert_allclose(p.p_nn, e_in, rtol=1e-12)
    for x in p:
        assert np.all(np.isfinite(x))


taus = st.floats(0.05, 200.0)


@settings(max_examples=200, deadline=None)
@given(tau_m=taus, tau_ex=taus, tau_in=taus, c_m=st.floats(1.0, 1000.0), h=st.floats(0.001, 5.0),
       i_e=st.floats(-1000, 1000).filter(lambda x: abs(x) > 1e-3))
def test_lif_exp_propagator_matches_expm(tau_m, tau_ex, tau_in, c_m, h, i_e):
    # scipy's expm is a reliable judge while the eigenvalues are well separated
    if min(abs(tau_m - tau_ex) / tau_m, abs(tau_m - tau_in) / tau_m) < 1e-2:
        check(es.LIF(tau_m=tau_m, c_m=c_m, tau_syn_ex=tau_ex, tau_syn_in=tau_in), i_e, h, expm_row_mp)
        return
    model = es.LIF(tau_m=tau_m, c_m=c_m, tau_syn_ex=tau_ex, tau_syn_in=tau_in)
    check(model, i_e, h)
    check(model, i_e, h, expm_row_mp)


@settings(max_examples=100, deadline=None)
@given(tau=taus, h=st.floats(0.001, 5.0), rel=st.sampled_from([0.0, 1e-15, 1e-12, 1e-9, -1e-9, 1e-6]))
def test_equal_and_nearly_equal_time_constants(tau, h, rel):
    """tau_m == tau_syn and values 1e-9 apart: finite and exact (expm is the judge)."""
    check(es.LIF(tau_m=tau, tau_syn_ex=tau * (1 + rel), tau_syn_in=tau, c_m=250.0), 100.0, h, expm_row_mp)


@pytest.mark.parametrize("tau_m", [10.0, 20.0])
def test_exact_limit_value(tau_m):
    p = es.propagator(es.LIF(tau_m=tau_m, tau_syn_ex=tau_m, tau_syn_in=tau_m, c_m=250.0), 0.1)
    assert p.p_ve == pytest.approx(0.1 / 250.0 * math.exp(-0.1 / tau_m), rel=1e-15)


@settings(max_examples=100, deadline=None)
@given(tau_ex=taus, tau_in=taus, c_m=st.floats(1.0, 1000.0), h=st.floats(0.001, 5.0))
def test_if_propagator_matches_expm(tau_ex, tau_in, c_m, h):
    check(es.IF(c_m=c_m, tau_syn_ex=tau_ex, tau_syn_in=tau_in), 10.0, h)


def test_delta_propagator():
    p = es.propagator(es.LIF(tau_m=20.0, c_m=1.0), 0.1)
    assert p.p_vv == pytest.approx(math.exp(-0.005), rel=1e-15)
    assert p.p_vi == pytest.approx(20.0 * (1 - math.exp(-0.005)), rel=1e-14)
    assert p.p_ve == p.p_vn == p.p_ee == p.p_nn == 0.0


def test_array_parameters_give_arrays():
    p = es.propagator(es.LIF(tau_m=np.array([10.0, 20.0]), tau_syn_ex=2.0, tau_syn_in=np.array([2.0, 20.0])), 0.1)
    assert p.p_vv.shape == (2,) and p.p_vn.shape == (2,)
    check(es.LIF(tau_m=20.0, tau_syn_ex=2.0, tau_syn_in=20.0), 0.0 + 1.0, 0.1)


@settings(max_examples=100, deadline=None)
@given(tau_m=taus, tau_ex=taus, tau_in=taus, h1=st.floats(0.01, 3.0), h2=st.floats(0.01, 3.0))
def test_exact_stepping_composes(tau_m, tau_ex, tau_in, h1, h2):
    """Advancing h1 then h2 equals advancing h1 + h2."""
    model = es.LIF(tau_m=tau_m, c_m=200.0, tau_syn_ex=tau_ex, tau_syn_in=tau_in, i_e=50.0)

    def step(x, h):
        p = es.propagator(model, h)
        v, ie, ii = x
        return (p.p_vv * v + p.p_vi * 50.0 + p.p_ve * ie + p.p_vn * ii, p.p_ee * ie, p.p_nn * ii)

    x0 = (3.0, 120.0, -80.0)
    a = step(step(x0, h1), h2)
    b = step(x0, h1 + h2)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
