"""Slow, obviously-correct float64 reference of the clock engine, for tests only.

It follows the documented order of one step literally, neuron by neuron,
with a dict of pending deliveries instead of ring buffers, and the
propagators written out with plain exponentials (no expm1 forms).
"""

import math
from collections import defaultdict

import numpy as np


def coefficients(tau_m, c_m, tau_ex, tau_in, h):
    """(p_vv, p_vi, p_ve, p_vn, p_ee, p_nn) from the textbook formulas (tau_m may be inf)."""
    p_vv = 0.0 if False else math.exp(-h / tau_m)
    p_vi = h / c_m if math.isinf(tau_m) else tau_m / c_m * (1.0 - p_vv)

    def p_vx(tau_x):
        if tau_x is None:
            return 0.0
        if math.isinf(tau_m):
            return tau_x / c_m * (1.0 - math.exp(-h / tau_x))
        if tau_x == tau_m:
            return h / c_m * math.exp(-h / tau_m)
        return (math.exp(-h / tau_m) - math.exp(-h / tau_x)) / (c_m * (1.0 / tau_x - 1.0 / tau_m))

    p_ee = 0.0 if tau_ex is None else math.exp(-h / tau_ex)
    p_nn = 0.0 if tau_in is None else math.exp(-h / tau_in)
    return p_vv, p_vi, p_vx(tau_ex), p_vx(tau_in), p_ee, p_nn


def alpha_coefficients(tau_m, c_m, tau_x, h):
    """(p21, p_v1, jump) of an alpha synapse from the textbook integrals (tau_m may be inf):
    y2(s) = s y1 e^{-s/tau_x} over the step, p_v1 = e^{-h/tau_m}/C_m int_0^h s e^{a s} ds, a = 1/tau_m - 1/tau_x."""
    a = (0.0 if math.isinf(tau_m) else 1.0 / tau_m) - 1.0 / tau_x
    decay = 1.0 if math.isinf(tau_m) else math.exp(-h / tau_m)
    if tau_x == tau_m:
        integral = h * h / 2.0
    else:
        integral = h * math.exp(a * h) / a - (math.exp(a * h) - 1.0) / (a * a)
    return h * math.exp(-h / tau_x), decay * integral / c_m, math.e / tau_x


def simulate(neurons, synapses, inputs, n_steps, dt):
    """Simulate and return (spikes [(step, neuron)], v trace [n_steps, N]).

    neurons : list of dicts with keys tau_m (inf for IF), c_m, v_rest, v_reset, v_th,
        ref_steps, i_e, tau_ex, tau_in (None for delta), v_min, reset ('value' |
        'subtract' | 'affine'), m, b, tau_theta (list), d_theta (list), v0, and optionally
        psc ('exp' default | 'alpha': alpha-shaped currents, NEST iaf_psc_alpha's order)
    synapses : list of (pre, post, weight, delay_steps) among the neurons
    inputs : list of (stamp_step, post, weight, delay_steps) external events
    """
    N = len(neurons)
    pending = defaultdict(lambda: np.zeros((N, 2)))  # arrival step -> [N, (ex, in)]

    def add(arrival, post, w):
        nd = neurons[post]
        ch = 1 if (nd["tau_ex"] is not None and w < 0) else 0
        pending[arrival][post, ch] += w

    v = np.array([nd["v0"] for nd in neurons], dtype=float)
    i_ex = np.zeros(N)
    i_in = np.zeros(N)
    refr = np.zeros(N, dtype=int)
    theta = [np.zeros(len(nd["tau_theta"])) for nd in neurons]
    coef = [coefficients(nd["tau_m"], nd["c_m"], nd["tau_ex"], nd["tau_in"], dt) for nd in neurons]
    alpha = [nd.get("psc", "exp") == "alpha" for nd in neurons]
    acoef = [alpha_coefficients(nd["tau_m"], nd["c_m"], nd["tau_ex"], dt)
             + alpha_coefficients(nd["tau_m"], nd["c_m"], nd["tau_in"], dt) if alpha[n] else None
             for n, nd in enumerate(neurons)]
    di_ex = np.zeros(N)  # alpha synapses: d i_ex / dt (pA/ms)
    di_in = np.zeros(N)
    out = defaultdict(list)
    for pre, post, w, d in synapses:
        out[pre].append((post, w, d))
    by_stamp = defaultdict(list)
    for s, post, w, d in inputs:
        by_stamp[s].append((post, w, d))
    spikes, trace = [], np.zeros((n_steps, N))
    for s in range(n_steps):
        for post, w, d in by_stamp.get(s, []):
            add(s + d, post, w)
        arriving = pending.pop(s + 1, np.zeros((N, 2)))
        fired = []
        for n, nd in enumerate(neurons):
            p_vv, p_vi, p_ve, p_vn, p_ee, p_nn = coef[n]
            if alpha[n]:
                p21e, pv1e, jump_e, p21i, pv1i, jump_i = acoef[n]
                if refr[n] == 0:
                    v[n] = nd["v_rest"] + p_vv * (v[n] - nd["v_rest"]) + p_vi * nd["i_e"] \
                        + pv1e * di_ex[n] + p_ve * i_ex[n] + pv1i * di_in[n] + p_vn * i_in[n]
                    v[n] = max(v[n], nd["v_min"])
                else:
                    refr[n] -= 1
                i_ex[n] = p21e * di_ex[n] + p_ee * i_ex[n]
                di_ex[n] = p_ee * di_ex[n] + jump_e * arriving[n, 0]
                i_in[n] = p21i * di_in[n] + p_nn * i_in[n]
                di_in[n] = p_nn * di_in[n] + jump_i * arriving[n, 1]
            elif nd["tau_ex"] is not None:
                if refr[n] == 0:
                    v[n] = nd["v_rest"] + p_vv * (v[n] - nd["v_rest"]) + p_vi * nd["i_e"] \
                        + p_ve * i_ex[n] + p_vn * i_in[n]
                    v[n] = max(v[n], nd["v_min"])
                else:
                    refr[n] -= 1
                i_ex[n] = p_ee * i_ex[n] + arriving[n, 0]
                i_in[n] = p_nn * i_in[n] + arriving[n, 1]
            else:
                if refr[n] == 0:
                    v[n] = nd["v_rest"] + p_vv * (v[n] - nd["v_rest"]) + p_vi * nd["i_e"] + arriving[n, 0]
                    v[n] = max(v[n], nd["v_min"])
                else:
                    refr[n] -= 1
            thr = nd["v_th"]
            for k, tau in enumerate(nd["tau_theta"]):
                theta[n][k] *= math.exp(-dt / tau)
                thr += theta[n][k]
            if v[n] >= thr:
                if nd["reset"] == "value":
                    v[n] = nd["v_reset"]
                elif nd["reset"] == "subtract":
                    v[n] = v[n] - (thr - nd["v_rest"])
                else:
                    v[n] = nd["v_rest"] + nd["m"] * (v[n] - nd["v_rest"]) - nd["b"]
                refr[n] = nd["ref_steps"]
                for k, dk in enumerate(nd["d_theta"]):
                    theta[n][k] += dk
                fired.append(n)
                spikes.append((s + 1, n))
        for n in fired:
            for post, w, d in out[n]:
                add(s + 1 + d, post, w)
        trace[s] = v
    return spikes, trace
