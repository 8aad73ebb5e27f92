"""Generate NEST reference data for eventsim's event engine (precise spike times).

For each case in ``CASES`` this script

1. draws a network with NumPy (fully seeded, ``numpy.random.default_rng``):
   per-neuron parameters, input spike trains at off-grid times (float64 ms,
   not multiples of the resolution), input synapses with on-grid delays and,
   for the recurrent cases, random sparse recurrent synapses with on-grid
   delays;
2. builds exactly that network in NEST 3.10 with the precise-timing models
   ``iaf_psc_delta_ps`` / ``iaf_psc_exp_ps``, one ``spike_generator`` per input
   channel (``precise_times=True``) and a ``spike_recorder``, and runs
   ``nest.Simulate(t_sim)``;
3. checks the recorded spikes against the slow continuous-time reference in
   ``tests/naive_ps.py`` (an independent event-driven NumPy model) and
   against NEST itself at half the resolution, prints these diagnostics, and
   saves the network and NEST's spikes as
   ``tests/nest_ps_reference/<case>.npz`` (temporary file, then
   ``os.replace``).

Run from the repository root, in an environment with ``nest-simulator``
(3.10.0 was used) and ``numpy``::

    python tests/generate_nest_ps_reference.py                  # all cases
    python tests/generate_nest_ps_reference.py exp_ps_ff         # a subset

The key schema of the files is in ``tests/nest_ps_reference/README.md``.

How NEST 3.10's precise models behave
-------------------------------------
Read from NEST 3.10's sources (models/iaf_psc_delta_ps.cpp,
models/iaf_psc_exp_ps.cpp, libnestutil/regula_falsi.h,
nestkernel/slice_ring_buffer.h, models/spike_generator.cpp,
nestkernel/recording_backend_memory.cpp) and checked against the
continuous-time reference above.

*Units and defaults.*  NEST keeps V_th, V_reset, V_min and V_m relative to
E_L internally; its defaults are E_L = -70 mV, V_th = -55 mV, V_reset =
-70 mV, C_m = 250 pF, tau_m = 10 ms, t_ref = 2 ms, I_e = 0 pA and (exp_ps)
tau_syn_ex = tau_syn_in = 2 ms, which differ from eventsim's (v_rest = 0,
v_th = 15, ...).  The script therefore sets every parameter, V_m included,
explicitly in one call per neuron and reads them back.  V_min (the lower
bound of V_m) defaults to -inf in iaf_psc_exp_ps and to -DBL_MAX in
iaf_psc_delta_ps; the script sets it to -inf in both, i.e. no bound, which
is eventsim's ``v_min=None``.  t_ref must be at least one resolution step
in both models (NEST refuses 0), and is used as a whole number of steps
(the refractory period ends exactly ``t_ref`` after the precise spike time
when t_ref is a multiple of the resolution, as here).

*Time representation.*  A precise time is a grid stamp (end of a step,
``k*h``) and an offset in [0, h): t = k*h - offset.  A ``spike_generator``
with ``precise_times=True`` turns a time t into the stamp of the end of
the step that contains t and the offset ``stamp - t`` (offsets below
~2 eps are set to 0).  A spike sent with delay d (a whole number of steps)
arrives at t + d with the same offset.  The ``spike_recorder`` reports
``stamp - offset`` in ms (``time_in_steps=False``); the stored times are
these plain float64 ms.

*Threshold.*  Both models test ``V_m >= V_th``: a potential exactly at the
threshold fires.

*iaf_psc_delta_ps.*  Inputs of one step are processed in time order.  Before
an input at t the membrane is advanced to t in closed form (relaxation
towards E_L + I_e*tau_m/C_m); if it is then at or above threshold, the
crossing happened during the free relaxation and its time is solved in
closed form (t - tau_m*log((v_inf - V)/(v_inf - V_th)), i.e. the exact
crossing), the neuron spikes and the input at t is dropped (the neuron is
refractory).  Otherwise the weight is added; if V_m >= V_th the neuron spikes
at the arrival time t itself.  All inputs that arrive at exactly the same
time (same stamp and bit-identical offset) are summed before this test, so
+w and -w arriving together never fire.  At the end of a step without
further input the same closed-form crossing check is made, so the relaxation
crossing is always found and timed exactly.  After a spike V_m is set to
V_reset and held there (no leak, no I_e) until t_spike + t_ref; inputs that
arrive in between are DISCARDED (``refractory_input`` is false and cannot be
set in 3.10).  The end of refractoriness is a pseudo-event that is ordered
before any input at the same time, so an input that arrives exactly at
t_spike + t_ref is applied.

*iaf_psc_exp_ps.*  The step is split into mini-steps at the input arrival
times (and at the end of refractoriness).  At the end of each mini-step
(before the input at its end is added, and at the end of the step) the
model tests V_m >= V_th; if so, the crossing time inside that mini-step is
located by the Illinois variant of regula falsi on the exact trajectory from
the mini-step's start, until |V(t) - V_th| < 1e-14 mV (time error ~1e-14 mV
divided by dV/dt, far below 1e-9 ms for the crossings here).  Consequences:
(1) an excursion above threshold that starts and ends inside one mini-step
(at most one resolution step, shorter when inputs are dense) is MISSED, an
exact event-driven search can find spikes that NEST does not; (2) if the
trajectory crossed more than once inside a mini-step, regula falsi returns
one of the bracketed roots, not necessarily the first.  The input that ends
a mini-step in which the neuron fired is still added to the synaptic
current (currents are never blocked).  During refractoriness V_m is held at
V_reset while I_ex and I_in keep decaying and keep receiving input.  The
sign of each weight picks the current (>= 0: I_ex, < 0: I_in); coincident
inputs are applied one by one with no time in between, which for current
synapses is the same as summing them per sign.  tau_syn == tau_m is
handled by NEST's singular propagator (h/C_m * exp(-h/tau_m)).

*Start.*  Both models check V_m >= V_th at the start of every update
interval; a neuron initialised at or above threshold fires an "instant"
spike just after that start (offset h*(1 - eps)).  The networks here start
below threshold.

*A missed crossing, checked by hand.*  One iaf_psc_exp_ps neuron (tau_m 10,
tau_syn 2 ms, resolution 0.1 ms) receiving one input whose PSP peaks 1e-6 mV
above threshold does not fire in NEST (the excursion lies inside one step),
while the exact trajectory crosses; with a peak 1e-3 mV above threshold both
fire at the same time.  None of the stored cases contains such a crossing
(the exact NumPy model finds no spike that NEST lacks).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "nest_ps_reference")
sys.path.insert(0, HERE)

import naive_ps  # noqa: E402  (tests/naive_ps.py, NumPy only)

PARAM_KEYS = ("tau_m", "c_m", "v_rest", "v_reset", "v_th", "t_ref", "i_e",
              "tau_syn_ex", "tau_syn_in", "v_init")


@dataclass
class Case:
    name: str
    model: str  # "iaf_psc_delta_ps" or "iaf_psc_exp_ps"
    seed: int
    n: int = 20
    dt: float = 0.1  # NEST resolution (ms)
    t_sim: float = 200.0
    # per-neuron values: scalar, ("uniform", lo, hi) or ("choice", values)
    tau_m: object = 10.0
    c_m: object = 250.0
    v_rest: float = -65.0
    v_th: float = -50.0
    v_reset: float = -70.0
    t_ref: object = 2.0
    tau_syn_ex: object = None
    tau_syn_in: object = None
    v_inf: object = ("uniform", -56.0, -46.0)  # E_L + I_e tau_m / C_m, sets I_e
    v_init: object = ("uniform", -70.0, -51.0)
    # external input: n_gen Poisson channels at off-grid times
    n_gen: int = 40
    gen_rate: tuple = (20.0, 60.0)  # Hz, per channel, uniform
    k_in: int = 4  # channels per neuron (distinct); 0: one private channel per neuron
    w_in_exc: tuple = (1.0, 4.0)  # magnitudes, mV (delta) or pA (exp)
    w_in_inh: tuple = (2.0, 6.0)
    frac_in_inh: float = 0.25
    in_delay_steps: tuple = (1, 20)
    # recurrent synapses (p_conn = 0: feed-forward)
    p_conn: float = 0.0
    frac_exc: float = 0.8
    w_exc: float = 0.0
    w_inh: float = 0.0
    # recurrent delays, whole steps in [lo, hi]: excitatory senders use the
    # multiples of 3, inhibitory senders the values = 1 (mod 3); t_ref must
    # then be = 2 (mod 3) steps (see coincidence_free_delays)
    delay_steps: tuple = (15, 30)
    # pairs of channels with identical spike times onto one neuron
    coincident_pairs: list = field(default_factory=list)


CASES = [
    # (a) feed-forward, delta synapses: DC-driven crossings (v_inf above
    # threshold for about half the neurons), jump-driven spikes, inputs during
    # refractoriness, heterogeneous tau_m and t_ref
    Case(name="delta_ps_ff", model="iaf_psc_delta_ps", seed=51001,
         tau_m=("uniform", 8.0, 20.0), t_ref=("choice", (1.0, 2.0, 3.0))),
    # coincident inputs of opposite sign (NEST sums them before the threshold
    # test), on top of weak background input
    Case(name="delta_ps_coincident", model="iaf_psc_delta_ps", seed=51002, n=12,
         v_inf=("uniform", -51.0, -50.2), n_gen=12, gen_rate=(20.0, 40.0), k_in=2,
         w_in_exc=(0.2, 0.6), w_in_inh=(0.2, 0.6), frac_in_inh=0.3,
         coincident_pairs=[(1.4, -1.0), (1.0, -0.6), (0.8, -0.5), (0.5, 0.5)]),
    # (b) feed-forward, exponential currents with tau_syn_ex != tau_syn_in
    Case(name="exp_ps_ff", model="iaf_psc_exp_ps", seed=51003,
         tau_syn_ex=2.0, tau_syn_in=5.0, v_inf=("uniform", -58.0, -48.0), k_in=5,
         w_in_exc=(300.0, 900.0), w_in_inh=(300.0, 1200.0)),
    # (c) feed-forward, tau_syn_ex == tau_m (singular limit of the propagator)
    Case(name="exp_ps_equal_tau", model="iaf_psc_exp_ps", seed=51004,
         tau_m=10.0, tau_syn_ex=10.0, tau_syn_in=3.0, v_inf=("uniform", -58.0, -48.0), k_in=5,
         w_in_exc=(100.0, 300.0), w_in_inh=(300.0, 1000.0)),
    # (d) recurrent, delta synapses, 1 s.  Drive: I_e near threshold plus one
    # private off-grid Poisson channel per neuron; delays chosen so that no
    # two inputs of opposite sign, and no input and an end of refractoriness,
    # can coincide exactly (see coincidence_free_delays).
    Case(name="delta_ps_recurrent", model="iaf_psc_delta_ps", seed=51005, n=300, t_sim=1000.0,
         tau_m=("uniform", 15.0, 25.0), v_inf=("uniform", -52.0, -48.5),
         v_init=("uniform", -70.0, -51.0), n_gen=300, gen_rate=(40.0, 60.0), k_in=0,
         w_in_exc=(1.0, 2.0), w_in_inh=(1.0, 2.0), frac_in_inh=0.3, in_delay_steps=(1, 10),
         p_conn=0.1, w_exc=0.3, w_inh=-1.2),
    # (e) recurrent, exponential currents (tau_syn_ex != tau_syn_in), 1 s
    Case(name="exp_ps_recurrent", model="iaf_psc_exp_ps", seed=51006, n=300, t_sim=1000.0,
         tau_m=("uniform", 15.0, 25.0), tau_syn_ex=2.0, tau_syn_in=5.0,
         v_inf=("uniform", -52.0, -48.5), v_init=("uniform", -70.0, -51.0),
         n_gen=300, gen_rate=(40.0, 60.0), k_in=0,
         w_in_exc=(150.0, 300.0), w_in_inh=(60.0, 120.0), frac_in_inh=0.3, in_delay_steps=(1, 10),
         p_conn=0.1, w_exc=40.0, w_inh=-60.0),
]


# ---------------------------------------------------------------------------
# Network generation (NumPy only)
# ---------------------------------------------------------------------------


def _grid(steps, dt):
    """Whole numbers of steps as ms values NEST reads back as exactly those steps."""
    return np.round(np.asarray(steps, dtype=np.int64) * dt, 10).astype(np.float64)


def _per_neuron(rng, spec, n):
    if spec is None:
        return np.full(n, np.nan)
    if isinstance(spec, tuple):
        if spec[0] == "uniform":
            return rng.uniform(spec[1], spec[2], size=n)
        if spec[0] == "choice":
            return rng.choice(np.asarray(spec[1], dtype=np.float64), size=n)
        raise ValueError(spec)
    return np.full(n, float(spec))


def coincidence_free_delays():
    """Why the recurrent delays come in classes (documentation only).

    NEST adds a delay (whole steps) to the integer stamp of a spike and keeps
    its offset, so two paths from one spike with equal total delay arrive at
    bit-identical times and ``iaf_psc_delta_ps`` sums them before the threshold
    test.  In float64 ms, (t + d1) + d2 and (t + d3) + d4 can differ in the
    last bit, so an engine working in plain float64 may see two separate
    inputs.  With delta synapses every spike that is not driven by I_e alone
    fires at an input arrival, so chains of such spikes from one root spike
    are common.  Order matters only for inputs of opposite sign, and for an
    input that meets the end of refractoriness (t_spike + t_ref).

    A neuron that fires at an arrival was pushed over threshold by an
    excitatory input, so along any chain of such spikes every sender but the
    last is excitatory.  If excitatory delays are 0 (mod 3) steps and
    inhibitory ones 1 (mod 3), the total delay of a chain is 0 (mod 3) when
    its last sender is excitatory and 1 (mod 3) when it is inhibitory, so
    opposite-sign inputs from one root never coincide; the spike that starts
    a refractory period is itself 0 (mod 3) from its root, so with t_ref = 2
    (mod 3) no input of that root meets the end of refractoriness either.
    External channels are private (one target each) and their times are
    random, so they add no other exact coincidences.
    """


def _poisson_times(rng, rate, t0, t1):
    """Off-grid Poisson spike times (ms) in (t0, t1) at ``rate`` Hz."""
    mean_isi = 1000.0 / rate
    k = int((t1 - t0) / mean_isi * 1.5) + 20
    t = t0 + np.cumsum(rng.exponential(mean_isi, size=k))
    assert t[-1] > t1
    return t[t < t1]


def generate_network(case: Case) -> dict:
    rng = np.random.default_rng(case.seed)
    n, dt = case.n, case.dt
    net = {"model": np.array(case.model), "dt": np.float64(dt), "t_sim": np.float64(case.t_sim),
           "n": np.int64(n)}

    tau_m = _per_neuron(rng, case.tau_m, n)
    c_m = _per_neuron(rng, case.c_m, n)
    t_ref = _per_neuron(rng, case.t_ref, n)
    tau_syn_ex = _per_neuron(rng, case.tau_syn_ex, n)
    tau_syn_in = _per_neuron(rng, case.tau_syn_in, n)
    v_rest = np.full(n, case.v_rest)
    v_inf = _per_neuron(rng, case.v_inf, n)
    i_e = (v_inf - v_rest) * c_m / tau_m
    v_init = _per_neuron(rng, case.v_init, n)
    net.update(tau_m=tau_m, c_m=c_m, v_rest=v_rest, v_reset=np.full(n, case.v_reset),
               v_th=np.full(n, case.v_th), t_ref=t_ref, i_e=i_e, tau_syn_ex=tau_syn_ex,
               tau_syn_in=tau_syn_in, v_init=v_init, v_min=np.full(n, -np.inf))

    # --- input channels: off-grid Poisson trains in (0.5, t_sim - 1)
    senders, times = [], []
    rates = rng.uniform(*case.gen_rate, size=case.n_gen)
    for ch in range(case.n_gen):
        t = _poisson_times(rng, rates[ch], 0.5, case.t_sim - 1.0)
        senders.append(np.full(t.size, ch, dtype=np.int64))
        times.append(t)

    # --- input synapses
    if case.k_in == 0:
        assert case.n_gen == n
        pre = post = np.arange(n)
    else:
        pre = np.concatenate([rng.choice(case.n_gen, size=case.k_in, replace=False) for _ in range(n)])
        post = np.repeat(np.arange(n), case.k_in)
    pre, post = pre.astype(np.int64), post.astype(np.int64)
    inh = rng.random(pre.size) < case.frac_in_inh
    w = np.where(inh, -rng.uniform(*case.w_in_inh, size=pre.size),
                 rng.uniform(*case.w_in_exc, size=pre.size))
    d_steps = rng.integers(case.in_delay_steps[0], case.in_delay_steps[1] + 1, size=pre.size)
    in_pre, in_post, in_w, in_d = [pre], [post], [w], [d_steps]

    # --- coincident pairs: two extra channels with identical times onto the
    # same neuron with the same delay, one pair per neuron (cycling the list)
    n_gen = case.n_gen
    for i in range(n if case.coincident_pairs else 0):
        wa, wb = case.coincident_pairs[i % len(case.coincident_pairs)]
        t = _poisson_times(rng, 40.0, 0.5, case.t_sim - 1.0)
        d = int(rng.integers(case.in_delay_steps[0], case.in_delay_steps[1] + 1))
        for ch, wx in ((n_gen, wa), (n_gen + 1, wb)):
            senders.append(np.full(t.size, ch, dtype=np.int64))
            times.append(t.copy())
            in_pre.append(np.array([ch]))
            in_post.append(np.array([i]))
            in_w.append(np.array([wx]))
            in_d.append(np.array([d]))
        n_gen += 2

    gen_sender = np.concatenate(senders)
    gen_time = np.concatenate(times)
    net.update(n_gen=np.int64(n_gen), gen_sender=gen_sender, gen_time=gen_time,
               in_pre=np.concatenate(in_pre).astype(np.int64),
               in_post=np.concatenate(in_post).astype(np.int64),
               in_weight=np.concatenate(in_w).astype(np.float64),
               in_delay=_grid(np.concatenate(in_d), dt))

    # --- recurrent synapses (row = presynaptic neuron), no autapses
    if case.p_conn > 0:
        mask = rng.random((n, n)) < case.p_conn
        np.fill_diagonal(mask, False)
        pre, post = np.nonzero(mask)
        is_exc = pre < int(round(case.frac_exc * n))
        weight = np.where(is_exc, case.w_exc, case.w_inh).astype(np.float64)
        steps = np.arange(case.delay_steps[0], case.delay_steps[1] + 1)
        d_exc, d_inh = steps[steps % 3 == 0], steps[steps % 3 == 1]
        ref_steps = np.rint(t_ref / dt).astype(np.int64)
        assert np.all(ref_steps % 3 == 2), "t_ref must be 2 (mod 3) steps in recurrent cases"
        delay = _grid(np.where(is_exc, rng.choice(d_exc, size=pre.size),
                               rng.choice(d_inh, size=pre.size)), dt)
    else:
        pre = post = np.zeros(0, dtype=np.int64)
        weight = delay = np.zeros(0)
    net.update(conn_pre=pre.astype(np.int64), conn_post=post.astype(np.int64),
               conn_weight=weight, conn_delay=delay)
    return net


# ---------------------------------------------------------------------------
# NEST
# ---------------------------------------------------------------------------


def run_nest(net: dict, dt: float | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Simulate ``net`` in NEST at resolution ``dt`` (default the stored one).

    Returns (senders 0..n-1, times in ms, NEST version), sorted by (time, sender).
    """
    import nest

    try:
        nest.verbosity = nest.VerbosityLevel.ERROR
    except AttributeError:  # older NEST 3.x
        nest.set_verbosity("M_ERROR")
    model = str(net["model"])
    n = int(net["n"])
    exp = model in ("iaf_psc_exp_ps", "iaf_psc_alpha_ps")  # current synapses (tests/generate_nest_alpha_reference.py)
    nest.ResetKernel()
    nest.resolution = float(net["dt"]) if dt is None else dt
    nest.local_num_threads = 1
    nest.rng_seed = 1  # NEST's random numbers are not used

    neurons = nest.Create(model, n)
    # eventsim name -> NEST name; one set() per neuron with all values, since
    # NEST stores V_th, V_reset, V_min and V_m relative to E_L
    names = {"tau_m": "tau_m", "c_m": "C_m", "v_rest": "E_L", "v_th": "V_th",
             "v_reset": "V_reset", "t_ref": "t_ref", "i_e": "I_e", "v_min": "V_min",
             "v_init": "V_m"}
    if exp:
        names.update(tau_syn_ex="tau_syn_ex", tau_syn_in="tau_syn_in")
    neurons.set([{nk: float(net[ek][i]) for ek, nk in names.items()} for i in range(n)])
    for ek, nk in names.items():
        got = np.asarray(neurons.get(nk), dtype=np.float64)
        assert np.array_equal(got, net[ek]) or np.allclose(got, net[ek], rtol=0, atol=1e-12), nk
    if not exp:
        assert not any(neurons.get("refractory_input"))

    n_gen = int(net["n_gen"])
    gens = nest.Create("spike_generator", n_gen, params={"precise_times": True})
    for ch in range(n_gen):
        t = net["gen_time"][net["gen_sender"] == ch]
        gens[ch].spike_times = np.sort(t).tolist()

    nid = np.asarray(neurons.tolist(), dtype=np.int64)
    gid = np.asarray(gens.tolist(), dtype=np.int64)
    if net["conn_pre"].size:
        nest.Connect(nid[net["conn_pre"]], nid[net["conn_post"]], "one_to_one",
                     syn_spec={"synapse_model": "static_synapse", "weight": net["conn_weight"],
                               "delay": net["conn_delay"]})
    nest.Connect(gid[net["in_pre"]], nid[net["in_post"]], "one_to_one",
                 syn_spec={"synapse_model": "static_synapse", "weight": net["in_weight"],
                           "delay": net["in_delay"]})
    assert nest.num_connections == net["conn_pre"].size + net["in_pre"].size
    srec = nest.Create("spike_recorder")
    nest.Connect(neurons, srec)
    assert nest.GetKernelStatus("off_grid_spiking")

    nest.Simulate(float(net["t_sim"]))
    ev = srec.get("events")
    senders = np.asarray(ev["senders"], dtype=np.int64) - nid[0]
    times = np.asarray(ev["times"], dtype=np.float64)
    order = np.lexsort((senders, times))
    return senders[order], times[order], str(nest.__version__)


# ---------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------


def arrivals(net: dict, senders: np.ndarray, times: np.ndarray):
    """All synaptic arrivals (post, time, weight): external and, given the spikes, recurrent."""
    gs, gt = net["gen_sender"], net["gen_time"]
    by_ch = [gt[gs == ch] for ch in range(int(net["n_gen"]))]
    post, t, w = [], [], []
    for k in range(net["in_pre"].size):
        tt = by_ch[net["in_pre"][k]] + net["in_delay"][k]
        post.append(np.full(tt.size, net["in_post"][k]))
        t.append(tt)
        w.append(np.full(tt.size, net["in_weight"][k]))
    for k in range(net["conn_pre"].size):
        tt = times[senders == net["conn_pre"][k]] + net["conn_delay"][k]
        post.append(np.full(tt.size, net["conn_post"][k]))
        t.append(tt)
        w.append(np.full(tt.size, net["conn_weight"][k]))
    return np.concatenate(post), np.concatenate(t), np.concatenate(w)


def refractory_arrivals(net, senders, times):
    """Arrivals at t_s < t_a < t_s + t_ref of a spike t_s of the target, and the total."""
    post, ta, _ = arrivals(net, senders, times)
    keep = ta <= float(net["t_sim"])
    post, ta = post[keep], ta[keep]
    count = 0
    for i in range(int(net["n"])):
        s = times[senders == i]
        a = ta[post == i]
        if s.size == 0 or a.size == 0:
            continue
        k = np.searchsorted(s, a, side="left") - 1  # last spike strictly before a
        ok = k >= 0
        count += int(np.sum(a[ok] < s[k[ok]] + net["t_ref"][i]))
    return count, int(ta.size)


def ambiguous_coincidences(net, senders, times, tol=1e-9):
    """Ties where exact-time order decides: (arrivals within ``tol`` ms of an
    opposite-sign arrival at the same neuron, arrivals within ``tol`` ms of the
    end of one of its refractory periods)."""
    post, ta, w = arrivals(net, senders, times)
    keep = ta <= float(net["t_sim"])
    post, ta, w = post[keep], ta[keep], w[keep]
    opposite = at_end = 0
    for i in range(int(net["n"])):
        sel = post == i
        a, ws = ta[sel], w[sel]
        o = np.argsort(a, kind="stable")
        a, ws = a[o], ws[o]
        close = np.diff(a) <= tol
        opposite += int(np.sum(close & (np.sign(ws[1:]) != np.sign(ws[:-1]))))
        ends = np.sort(times[senders == i] + net["t_ref"][i])
        if ends.size and a.size:
            k = np.clip(np.searchsorted(ends, a), 1, ends.size) - 1
            k2 = np.clip(k + 1, 0, ends.size - 1)
            at_end += int(np.sum((np.abs(a - ends[k]) <= tol) | (np.abs(a - ends[k2]) <= tol)))
    return opposite, at_end


def reference_params(net):
    return {k: net[k] for k in PARAM_KEYS}


def naive(net, jitter=0.0, **kw):
    """Spikes of the continuous-time NumPy model; ``jitter`` (ms) perturbs each input arrival."""
    post, ta, w = arrivals(net, np.zeros(0, np.int64), np.zeros(0))
    if jitter:
        ta = ta + np.random.default_rng(0).uniform(-jitter, jitter, size=ta.size)
    conn = None
    if net["conn_pre"].size:
        conn = (net["conn_pre"], net["conn_post"], net["conn_weight"], net["conn_delay"])
    return naive_ps.simulate(reference_params(net), float(net["t_sim"]),
                             (post, ta, w), conn, **kw)


def describe(tag, ref, got):
    m6, worst6 = naive_ps.match_spikes(ref[0], ref[1], got[0], got[1], 1e-6)
    m9, _ = naive_ps.match_spikes(ref[0], ref[1], got[0], got[1], 1e-9)
    return (f"{tag}: {got[0].size} spikes, matched {m6} within 1e-6 ms ({m9} within 1e-9 ms, "
            f"max |dt| {worst6:.1e} ms), NEST-only {ref[0].size - m6}, extra {got[0].size - m6}")


def save(path, data):
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=os.path.dirname(path))
    os.close(fd)
    try:
        np.savez_compressed(tmp, **data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv):
    names = argv or [c.name for c in CASES]
    unknown = set(names) - {c.name for c in CASES}
    if unknown:
        raise SystemExit(f"unknown case(s): {', '.join(sorted(unknown))}")
    os.makedirs(OUT, exist_ok=True)
    for case in CASES:
        if case.name not in names:
            continue
        net = generate_network(case)
        senders, times, version = run_nest(net)
        n, t_sim = case.n, case.t_sim
        print(f"{case.name}: {case.model}, n={n}, {t_sim:g} ms, {senders.size} spikes "
              f"({senders.size / n / t_sim * 1e3:.1f} Hz), silent {n - np.unique(senders).size}, "
              f"{net['gen_time'].size} input spikes")
        ref = (senders, times)
        t0 = time.perf_counter()
        exact = naive(net)
        print("  " + describe(f"exact NumPy model ({time.perf_counter() - t0:.0f} s)", ref, exact))
        if case.model == "iaf_psc_delta_ps":
            r, tot = refractory_arrivals(net, senders, times)
            print(f"  arrivals during refractoriness (discarded): {r} of {tot}")
            opp, end = ambiguous_coincidences(net, senders, times)
            print(f"  exact ties (within 1e-9 ms): opposite-sign inputs {opp}, input at the end of "
                  f"refractoriness {end}")
            seq = naive(net, sum_coincident=False)
            if not np.array_equal(seq[0], exact[0]) or not np.allclose(seq[1], exact[1], atol=1e-9):
                m, _ = naive_ps.match_spikes(exact[0], exact[1], seq[0], seq[1], 1e-6)
                print(f"  coincident inputs applied one by one instead of summed: {seq[0].size} "
                      f"spikes, {exact[0].size - m} differ")
        if case.p_conn > 0:
            jit = naive(net, jitter=1e-11)
            print("  " + describe("exact NumPy model, input arrivals jittered by 1e-11 ms", ref, jit))
        half = run_nest(net, dt=case.dt / 2)
        print("  " + describe(f"NEST at resolution {case.dt / 2:g} ms", ref, half[:2]))
        data = dict(net)
        data.update(spike_senders=senders, spike_times=times, nest_version=np.array(version))
        path = os.path.join(OUT, case.name + ".npz")
        save(path, data)
        print(f"  wrote {os.path.relpath(path)} ({os.path.getsize(path) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main(sys.argv[1:])
