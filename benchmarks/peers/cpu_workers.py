"""One measurement of one network in one simulator, in this process.

This is the worker behind ``cpu_networks.py``, which starts it once per
repeat in a fresh process pinned to the benchmark cores, under the
interpreter that has the simulator installed::

    python cpu_workers.py SIMULATOR NETWORK --scale 1 --t-sim 1000 --threads 1 --seed 1

``SIMULATOR`` is ``eventsim``, ``nest``, ``brian2-standalone``,
``brian2-runtime`` or ``scatter`` (the synaptic-scatter ceiling, see
``benchmarks/bench_scatter.py``); ``NETWORK`` is ``brunel``, ``cuba``,
``coba``, ``coba_alpha`` or ``coba_adex``.
The last line of output is ``RESULT {json}``.  Only the standard library is
imported at module level, so the file runs under any of the interpreters.

The networks
------------
``brunel``: Brunel (2000) as NEST's ``brunel_delta_nest`` example and
``examples/brunel2000.py``: ``NE = 4 * order``, ``NI = order`` with
``order = round(2500 * scale)``, ``CE = NE / 10``, ``CI = NI / 10`` (fixed
in-degree, no autapses, multapses allowed), ``iaf_psc_delta`` with
``C_m = 1``, ``tau_m = 20``, ``t_ref = 2``, ``E_L = V_reset = 0``,
``V_th = 20``, ``J = 0.1 mV``, ``g = 5``, one Poisson train of
``eta * nu_th * CE`` (20 kHz) per neuron with weight ``J``, delay 1.5 ms.

``cuba``: Brette et al. (2007) benchmark 2 as ``examples/cuba.py``:
3200 + 800 ``iaf_psc_exp`` neurons, ``p = 0.02`` (no autapses), ``tau_m = 20``,
``C_m = 250``, ``E_L = -49``, ``V_th = -50``, ``V_reset = -60``,
``t_ref = 5``, ``tau_syn_ex = 5``, ``tau_syn_in = 10``, weights 20.25 pA and
-112.5 pA, delay 0.1 ms, ``V_m`` uniform in [-60, -50] mV.

``coba``: Brette et al. (2007) benchmark 1 as ``examples/coba.py``:
3200 + 800 ``iaf_cond_exp`` neurons, ``p = 0.02`` (no autapses),
``C_m = 200``, ``g_L = 10`` (``tau_m = 20``), ``E_L = V_reset = -60``,
``V_th = -50``, ``t_ref = 5``, ``E_ex = 0``, ``E_in = -80``,
``tau_syn_ex = 5``, ``tau_syn_in = 10``, weights 6 nS and -67 nS, ``I_e =
200`` pA (Brian's version of the benchmark: 20 mV over ``g_L``), delay 0.1
ms, ``V_m`` uniform in [-60, -50] mV.  eventsim and NEST integrate it with
the Runge-Kutta-Fehlberg 4(5) method under NEST's error control; Brian2
with forward Euler (``method="euler"``, what Brian2 picks for these
equations and what its own COBA benchmark uses).

``coba_alpha``: the ``coba`` network with alpha-shaped conductances
(``iaf_cond_alpha``; ``examples/coba.py --alpha``) of peak ``w / e`` (the
charge of the exponential ones per spike): 2.21 nS and -24.65 nS.  eventsim
and NEST: as ``coba``; Brian2: forward Euler of ``dg/dt = x - g / tau``,
``dx/dt = -x / tau``, a spike adding ``w e / tau`` to ``x`` (NEST's
normalisation).

``coba_adex``: the same network of AdEx neurons (``aeif_cond_exp``;
``examples/coba.py --adex``): ``Delta_T = 2``, ``V_peak = 0``, ``a = 2``,
``b = 40``, ``tau_w = 100``, ``I_e = 250`` pA, the rest as ``coba``
(``V_th = -50`` the exponential's threshold, ``g_L = 10``).  eventsim and
NEST: Runge-Kutta-Fehlberg with NEST's ``gsl_error_tol = 1e-6``; Brian2:
forward Euler, spike at ``v >= v_peak``.

Matching Brian2 to NEST's (and eventsim's) step
------------------------------------------------
NEST stamps a spike at the end of the step whose update produced it;
Brian2 stamps the start of that step, so Brian2 times are ``dt`` earlier and
rates are unaffected.  In Brian2's default schedule a synaptic ``on_pre``
acts after the threshold of its step:

* voltage jumps (``brunel``): NEST adds a spike arriving at ``t`` before the
  threshold test of that step, so it can fire the neuron at ``t``.  The
  Brian2 network therefore runs its synaptic pathway and its Poisson input
  in the ``before_thresholds`` slot, with delay ``d - dt`` (the pathway
  reads the spikes of the previous step): the jump then lands on the same
  step as in NEST, before the threshold, undecayed.  ``(unless refractory)``
  makes Brian2 drop the jumps that arrive while the neuron is refractory, as
  ``iaf_psc_delta`` does.
* current and conductance jumps (``cuba``, ``coba``): NEST adds the jump
  to ``I`` (``g``) after the voltage update of the arrival step, so it moves
  ``V`` from the next step on; that is what Brian2's default order does,
  with the same delay ``d``.

Brian2's Poisson drive is ``PoissonInput(N=CE, rate=eta * nu_th)``, i.e. a
binomial count per step with the same mean (2 spikes per step) as NEST's
Poisson count; the variance differs by 0.1 %.

Timing
------
* build: network construction (eventsim: ``build`` + ``run(0)``, which
  builds the engine arrays; NEST: ``Create`` + ``Connect`` + the first
  ``Simulate`` of the warm-up, which finalises the connection tables;
  Brian2 runtime: the Python objects and ``connect``; Brian2 standalone: the
  Python objects plus the part of the binary's run before its main loop,
  where it creates the synapses).
* compile: eventsim: the warm-up ``run`` of a few steps (Numba compile or
  cache load); Brian2 runtime: the warm-up ``run`` (code generation, Cython
  compile or cache load); Brian2 standalone: code generation + ``make``.
* simulate: the rest of ``t_sim`` after the warm-up, timed alone (Brian2
  standalone: the binary's own main-loop time, ``device._last_run_time``,
  for all of ``t_sim``).
* peak RSS: ``ru_maxrss`` of the process that simulates (Brian2 standalone:
  the larger of the Python process and the binary), read before any
  post-processing.
* events: recurrent synaptic events delivered in the simulate phase
  (one spike of a neuron with ``k`` outgoing synapses = ``k`` events).
  eventsim counts them; Brian2 from the spike counts and its synapse
  indices; NEST as spikes x (recurrent synapses / neurons), its expectation
  (every neuron has the same expected out-degree in both networks): reading
  15.6 M connections back from NEST costs tens of GB.
"""

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

DT = 0.1            # ms
WARMUP_STEPS = 10   # steps run before the timed simulate (compile, first-call set-up)

# Brunel (2000), NEST brunel_delta_nest
BRUNEL = dict(J=0.1, g=5.0, eta=2.0, theta=20.0, tau_m=20.0, c_m=1.0, t_ref=2.0, v_reset=0.0,
              e_l=0.0, delay=1.5)
# Brette et al. (2007) CUBA
CUBA = dict(ne=3200, ni=800, p=0.02, tau_m=20.0, c_m=250.0, e_l=-49.0, v_th=-50.0, v_reset=-60.0,
            t_ref=5.0, tau_ex=5.0, tau_in=10.0, delay=0.1)
CUBA["w_e"] = 1.62 * CUBA["c_m"] / CUBA["tau_m"]    # 20.25 pA
CUBA["w_i"] = -9.0 * CUBA["c_m"] / CUBA["tau_m"]    # -112.5 pA
# Brette et al. (2007) COBA (ms, pF, mV, nS, pA), as examples/coba.py
COBA = dict(ne=3200, ni=800, p=0.02, tau_m=20.0, c_m=200.0, v_rest=-60.0, v_reset=-60.0, v_th=-50.0, t_ref=5.0,
            e_ex=0.0, e_in=-80.0, tau_syn_ex=5.0, tau_syn_in=10.0, w_ex=6.0, w_in=-67.0, i_e=200.0, delay=0.1)
# its AdEx version (examples/coba.py --adex)
ADEX = dict(delta_t=2.0, v_peak=0.0, a=2.0, b=40.0, tau_w=100.0, i_e=250.0)
# its version with alpha-shaped conductances of peak w / e (examples/coba.py --alpha)
ALPHA_SCALE = 1.0 / math.e


def brunel_sizes(scale):
    """(NE, NI, CE, CI, rate of the Poisson train per neuron in Hz), as examples/brunel2000.py."""
    order = int(round(2500 * scale))
    ne, ni = 4 * order, order
    ce, ci = int(0.1 * ne), int(0.1 * ni)
    nu_th = BRUNEL["theta"] / (BRUNEL["J"] * ce * BRUNEL["tau_m"])   # 1/ms
    p_rate = 1000.0 * BRUNEL["eta"] * nu_th * ce                     # Hz
    return ne, ni, ce, ci, p_rate


def peak_rss_mib():
    """Peak resident set size of this process (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_example(name):
    """Import ``examples/<name>.py`` of this repository as a module."""
    import importlib.util

    path = REPO / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"eventsim_example_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------- eventsim
def run_eventsim(network, scale, t_sim, threads, seed):
    import numba

    if numba.get_num_threads() != threads:
        numba.set_num_threads(threads)
    warm = WARMUP_STEPS * DT
    name = {"brunel": "brunel2000", "coba_adex": "coba", "coba_alpha": "coba"}.get(network, network)
    example = load_example(name)  # imports eventsim
    t0 = time.perf_counter()
    if network == "brunel":
        net, exc, inh, spikes_e, spikes_i = example.build(scale, seed, DT)
        recorders = [spikes_e, spikes_i]
    elif network in ("coba_adex", "coba_alpha"):
        net, exc, inh, spikes = example.build(seed, DT, adex=network == "coba_adex", alpha=network == "coba_alpha")
        recorders = [spikes]
    else:
        net, exc, inh, spikes = example.build(seed, DT)
        recorders = [spikes]
    net.run(0.0)                  # builds the engine's arrays (the plan) without stepping
    t1 = time.perf_counter()
    net.run(warm)                 # compiles (or loads from Numba's cache) and runs a few steps
    t2 = time.perf_counter()
    ev0 = net.synaptic_events[0]
    net.run(t_sim - warm)
    t3 = time.perf_counter()
    rss = peak_rss_mib()
    n_spikes = sum(len(r) for r in recorders)
    return dict(build_s=t1 - t0, compile_s=t2 - t1, simulate_s=t3 - t2, spikes=n_spikes,
                n_neurons=net.n_neurons, n_synapses=net.n_synapses,
                events=net.synaptic_events[0] - ev0, events_exact=True, peak_rss_mib=rss,
                threads=numba.get_num_threads(), **connectivity_bytes(net))


def connectivity_bytes(net):
    """Bytes of eventsim's connectivity: the engine's per-synapse and per-sender arrays, and the projections."""
    import numpy as np

    plan = net._plan
    per_synapse = plan._syn_off.nbytes + plan._syn_w.nbytes
    per_sender = sum(np.asarray(x).nbytes for x in plan.conn if x is not None) - per_synapse
    projections = sum(np.asarray(x).nbytes for p in net.projections for x in (p.pre, p.post, p.weight, p.delay_steps))
    return dict(engine_synapse_bytes=per_synapse, engine_sender_bytes=per_sender, projection_bytes=projections)


# ---------------------------------------------------------------------------------- NEST
def run_nest(network, scale, t_sim, threads, seed):
    os.environ.setdefault("PYNEST_QUIET", "1")
    import nest

    if hasattr(nest, "VerbosityLevel"):
        nest.verbosity = nest.VerbosityLevel.ERROR
    else:
        nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": DT, "local_num_threads": threads, "rng_seed": seed,
                          "print_time": False})
    t0 = time.perf_counter()
    if network == "brunel":
        ne, ni, ce, ci, p_rate = brunel_sizes(scale)
        b = BRUNEL
        params = {"C_m": b["c_m"], "tau_m": b["tau_m"], "t_ref": b["t_ref"], "E_L": b["e_l"],
                  "V_reset": b["v_reset"], "V_th": b["theta"], "V_m": 0.0}
        exc = nest.Create("iaf_psc_delta", ne, params=params)
        inh = nest.Create("iaf_psc_delta", ni, params=params)
        everyone = exc + inh
        noise = nest.Create("poisson_generator", params={"rate": p_rate})
        recorder = nest.Create("spike_recorder")
        syn_e = {"synapse_model": "static_synapse", "weight": b["J"], "delay": b["delay"]}
        syn_i = {"synapse_model": "static_synapse", "weight": -b["g"] * b["J"], "delay": b["delay"]}
        nest.Connect(noise, everyone, syn_spec=syn_e)
        nest.Connect(exc, everyone, {"rule": "fixed_indegree", "indegree": ce, "allow_autapses": False,
                                     "allow_multapses": True}, syn_e)
        nest.Connect(inh, everyone, {"rule": "fixed_indegree", "indegree": ci, "allow_autapses": False,
                                     "allow_multapses": True}, syn_i)
        nest.Connect(everyone, recorder)
        n = ne + ni
        n_recurrent = n * (ce + ci)
    elif network in ("coba", "coba_alpha", "coba_adex"):
        c = COBA
        n = c["ne"] + c["ni"]
        params = {"C_m": c["c_m"], "g_L": c["c_m"] / c["tau_m"], "E_L": c["v_rest"], "V_th": c["v_th"],
                  "V_reset": c["v_reset"], "t_ref": c["t_ref"], "E_ex": c["e_ex"], "E_in": c["e_in"],
                  "tau_syn_ex": c["tau_syn_ex"], "tau_syn_in": c["tau_syn_in"], "I_e": c["i_e"]}
        if network == "coba_adex":
            x = ADEX
            params.update({"Delta_T": x["delta_t"], "V_peak": x["v_peak"], "a": x["a"], "b": x["b"],
                           "tau_w": x["tau_w"], "I_e": x["i_e"]})
        model = {"coba": "iaf_cond_exp", "coba_alpha": "iaf_cond_alpha", "coba_adex": "aeif_cond_exp"}[network]
        everyone = nest.Create(model, n, params=params)
        scale = ALPHA_SCALE if network == "coba_alpha" else 1.0
        everyone.V_m = nest.random.uniform(c["v_reset"], c["v_th"])
        exc, inh = everyone[:c["ne"]], everyone[c["ne"]:]
        recorder = nest.Create("spike_recorder")
        rule = {"rule": "pairwise_bernoulli", "p": c["p"], "allow_autapses": False}
        nest.Connect(exc, everyone, rule, {"weight": c["w_ex"] * scale, "delay": c["delay"]})
        nest.Connect(inh, everyone, rule, {"weight": c["w_in"] * scale, "delay": c["delay"]})
        nest.Connect(everyone, recorder)
        n_recurrent = nest.GetKernelStatus("num_connections") - n   # minus the recorder's
    else:
        c = CUBA
        n = c["ne"] + c["ni"]
        params = {"C_m": c["c_m"], "tau_m": c["tau_m"], "E_L": c["e_l"], "V_th": c["v_th"],
                  "V_reset": c["v_reset"], "t_ref": c["t_ref"], "tau_syn_ex": c["tau_ex"],
                  "tau_syn_in": c["tau_in"], "I_e": 0.0}
        everyone = nest.Create("iaf_psc_exp", n, params=params)
        everyone.V_m = nest.random.uniform(c["v_reset"], c["v_th"])
        exc, inh = everyone[:c["ne"]], everyone[c["ne"]:]
        recorder = nest.Create("spike_recorder")
        rule = {"rule": "pairwise_bernoulli", "p": c["p"], "allow_autapses": False}
        nest.Connect(exc, everyone, rule, {"weight": c["w_e"], "delay": c["delay"]})
        nest.Connect(inh, everyone, rule, {"weight": c["w_i"], "delay": c["delay"]})
        nest.Connect(everyone, recorder)
        n_recurrent = nest.GetKernelStatus("num_connections") - n   # minus the recorder's
    warm = WARMUP_STEPS * DT
    nest.Simulate(warm)           # first Simulate: NEST finalises its connection tables here
    t1 = time.perf_counter()
    spikes_warm = recorder.n_events
    nest.Simulate(t_sim - warm)
    t2 = time.perf_counter()
    rss = peak_rss_mib()
    n_spikes = recorder.n_events
    events = (n_spikes - spikes_warm) * n_recurrent / n
    return dict(build_s=t1 - t0, compile_s=None, simulate_s=t2 - t1, spikes=int(n_spikes),
                n_neurons=n, n_synapses=int(n_recurrent), events=events, events_exact=False,
                peak_rss_mib=rss, threads=nest.GetKernelStatus("local_num_threads"))


# ---------------------------------------------------------------------------------- Brian2
_RSS_WRAPPER = """\
import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, ru = os.wait4(p.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(ru.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_brian2(network, scale, t_sim, threads, seed, standalone):
    import numpy as np
    import brian2 as b2
    from brian2 import Hz, ms, mV, nS, pA, pF

    workdir = tempfile.mkdtemp(prefix="eventsim-bench-brian2-")
    try:
        if standalone:
            b2.set_device("cpp_standalone", directory=os.path.join(workdir, "project"), build_on_run=False)
            # openmp_threads = 0: no OpenMP at all, the fair single-thread setting
            b2.prefs.devices.cpp_standalone.openmp_threads = threads if threads > 1 else 0
            rss_file = os.path.join(workdir, "binary_maxrss")
            b2.prefs.devices.cpp_standalone.run_cmd_unix = [sys.executable, "-c", _RSS_WRAPPER, rss_file,
                                                            "./main"]
        else:
            b2.prefs.codegen.target = "cython"
        b2.prefs.logging.console_log_level = "ERROR"
        b2.defaultclock.dt = DT * ms
        b2.seed(seed)
        rng = np.random.default_rng(seed)

        t0 = time.perf_counter()
        if network == "brunel":
            ne, ni, ce, ci, p_rate = brunel_sizes(scale)
            b = BRUNEL
            n = ne + ni
            ns = dict(tau_m=b["tau_m"] * ms, theta=b["theta"] * mV, v_reset=b["v_reset"] * mV,
                      J=b["J"] * mV, J_i=-b["g"] * b["J"] * mV)
            group = b2.NeuronGroup(n, "dv/dt = -v / tau_m : volt (unless refractory)",
                                   threshold="v >= theta", reset="v = v_reset", refractory=b["t_ref"] * ms,
                                   method="exact", namespace=ns)
            group.v = 0 * mV
            # fixed in-degree, no autapses, multapses allowed: for every target draw its sources
            pre_e = _fixed_indegree(rng, 0, ne, n, ce)
            pre_i = _fixed_indegree(rng, ne, ni, n, ci)
            post_e = np.repeat(np.arange(n, dtype=np.int32), ce)
            post_i = np.repeat(np.arange(n, dtype=np.int32), ci)
            delay = (b["delay"] - DT) * ms       # + the one-step read of the pathway = NEST's delay
            syn_e = b2.Synapses(group[:ne], group, on_pre="v_post += J", delay=delay, namespace=ns)
            syn_e.connect(i=pre_e, j=post_e)
            syn_i = b2.Synapses(group[ne:], group, on_pre="v_post += J_i", delay=delay, namespace=ns)
            syn_i.connect(i=pre_i - ne, j=post_i)
            for s in (syn_e, syn_i):
                s.pre.when = "before_thresholds"
            noise = b2.PoissonInput(group, "v", N=ce, rate=(p_rate / ce) * Hz, weight=b["J"] * mV,
                                    when="before_thresholds")
            outdeg = np.bincount(np.concatenate([pre_e, pre_i]), minlength=n)
            del pre_e, pre_i, post_e, post_i
            objects = [group, syn_e, syn_i, noise]
            synapses = None
        elif network in ("coba", "coba_alpha", "coba_adex"):
            c = COBA
            n = c["ne"] + c["ni"]
            ns = dict(g_l=c["c_m"] / c["tau_m"] * nS, c_m=c["c_m"] * pF, e_l=c["v_rest"] * mV, v_th=c["v_th"] * mV,
                      v_reset=c["v_reset"] * mV, e_ex=c["e_ex"] * mV, e_in=c["e_in"] * mV,
                      tau_ex=c["tau_syn_ex"] * ms, tau_in=c["tau_syn_in"] * ms, i_e=c["i_e"] * pA,
                      w_e=c["w_ex"] * nS, w_i=-c["w_in"] * nS, offset=c["ne"])
            if network == "coba":
                eqs = """
                dv/dt = (g_l * (e_l - v) + g_ex * (e_ex - v) + g_in * (e_in - v) + i_e) / c_m : volt (unless refractory)
                dg_ex/dt = -g_ex / tau_ex : siemens
                dg_in/dt = -g_in / tau_in : siemens
                """
                threshold, reset = "v >= v_th", "v = v_reset"
                on_pre = "g_ex_post += w_e", "g_in_post += w_i"
            elif network == "coba_alpha":
                eqs = """
                dv/dt = (g_l * (e_l - v) + g_ex * (e_ex - v) + g_in * (e_in - v) + i_e) / c_m : volt (unless refractory)
                dg_ex/dt = x_ex - g_ex / tau_ex : siemens
                dx_ex/dt = -x_ex / tau_ex : siemens / second
                dg_in/dt = x_in - g_in / tau_in : siemens
                dx_in/dt = -x_in / tau_in : siemens / second
                """
                threshold, reset = "v >= v_th", "v = v_reset"
                ns.update(w_e=c["w_ex"] * ALPHA_SCALE * nS, w_i=-c["w_in"] * ALPHA_SCALE * nS)
                on_pre = "x_ex_post += w_e * exp(1.0) / tau_ex", "x_in_post += w_i * exp(1.0) / tau_in"
            else:
                x = ADEX
                ns.update(delta_t=x["delta_t"] * mV, v_peak=x["v_peak"] * mV, a=x["a"] * nS, b=x["b"] * pA,
                          tau_w=x["tau_w"] * ms, i_e=x["i_e"] * pA)
                eqs = """
                dv/dt = (g_l * (e_l - v) + g_l * delta_t * exp((v - v_th) / delta_t) + g_ex * (e_ex - v)
                         + g_in * (e_in - v) - w + i_e) / c_m : volt (unless refractory)
                dw/dt = (a * (v - e_l) - w) / tau_w : amp
                dg_ex/dt = -g_ex / tau_ex : siemens
                dg_in/dt = -g_in / tau_in : siemens
                """
                threshold, reset = "v >= v_peak", "v = v_reset; w += b"
                on_pre = "g_ex_post += w_e", "g_in_post += w_i"
            group = b2.NeuronGroup(n, eqs, threshold=threshold, reset=reset,
                                   refractory=c["t_ref"] * ms, method="euler", namespace=ns)
            group.v = "v_reset + rand() * (v_th - v_reset)"
            syn_e = b2.Synapses(group[:c["ne"]], group, on_pre=on_pre[0], delay=c["delay"] * ms, namespace=ns)
            syn_e.connect(condition="i != j", p=c["p"])
            syn_i = b2.Synapses(group[c["ne"]:], group, on_pre=on_pre[1], delay=c["delay"] * ms, namespace=ns)
            syn_i.connect(condition="i + offset != j", p=c["p"])
            objects = [group, syn_e, syn_i]
            synapses = (syn_e, syn_i)
            outdeg = None
        else:
            c = CUBA
            n = c["ne"] + c["ni"]
            ns = dict(tau_m=c["tau_m"] * ms, c_m=c["c_m"] * pF, e_l=c["e_l"] * mV, v_th=c["v_th"] * mV,
                      v_reset=c["v_reset"] * mV, tau_ex=c["tau_ex"] * ms, tau_in=c["tau_in"] * ms,
                      w_e=c["w_e"] * pA, w_i=c["w_i"] * pA, offset=c["ne"])
            eqs = """
            dv/dt = (e_l - v) / tau_m + (i_ex + i_in) / c_m : volt (unless refractory)
            di_ex/dt = -i_ex / tau_ex : amp
            di_in/dt = -i_in / tau_in : amp
            """
            group = b2.NeuronGroup(n, eqs, threshold="v >= v_th", reset="v = v_reset",
                                   refractory=c["t_ref"] * ms, method="exact", namespace=ns)
            group.v = "v_reset + rand() * (v_th - v_reset)"
            syn_e = b2.Synapses(group[:c["ne"]], group, on_pre="i_ex_post += w_e", delay=c["delay"] * ms,
                                namespace=ns)
            syn_e.connect(condition="i != j", p=c["p"])
            syn_i = b2.Synapses(group[c["ne"]:], group, on_pre="i_in_post += w_i", delay=c["delay"] * ms,
                                namespace=ns)
            # subgroup indices are relative: i + offset is the global index of the source
            syn_i.connect(condition="i + offset != j", p=c["p"])
            objects = [group, syn_e, syn_i]
            synapses = (syn_e, syn_i)
            outdeg = None
        monitor = b2.SpikeMonitor(group)
        net = b2.Network(*objects, monitor)
        warm = WARMUP_STEPS * DT
        if standalone:
            net.run(t_sim * ms)
            t1 = time.perf_counter()
            b2.device.build(directory=os.path.join(workdir, "project"), compile=True, run=False,
                            with_output=False)
            t2 = time.perf_counter()
            b2.device.run(with_output=False)
            t3 = time.perf_counter()
            simulate_s = b2.device._last_run_time
            build_s = (t1 - t0) + (t3 - t2 - simulate_s)
            compile_s = t2 - t1
            with open(rss_file) as f:
                rss = max(peak_rss_mib(), int(f.read()) / 1024.0)
            counts_warm = np.zeros(n, np.int64)
        else:
            t1 = time.perf_counter()
            net.run(warm * ms)
            t2 = time.perf_counter()
            counts_warm = np.asarray(monitor.count[:], np.int64).copy()
            net.run((t_sim - warm) * ms)
            t3 = time.perf_counter()
            rss = peak_rss_mib()
            build_s, compile_s, simulate_s = t1 - t0, t2 - t1, t3 - t2
        counts = np.asarray(monitor.count[:], np.int64)
        if outdeg is None:
            ne = CUBA["ne"]
            outdeg = (np.bincount(np.asarray(synapses[0].i[:]), minlength=n)
                      + np.bincount(np.asarray(synapses[1].i[:]) + ne, minlength=n))
        n_syn = int(outdeg.sum())
        events = int(((counts - counts_warm) * outdeg).sum())
        return dict(build_s=build_s, compile_s=compile_s, simulate_s=simulate_s, spikes=int(counts.sum()),
                    n_neurons=n, n_synapses=n_syn, events=events, events_exact=True, peak_rss_mib=rss,
                    threads=threads if standalone else 1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _fixed_indegree(rng, first, n_pre, n_post, k):
    """Sources (global indices, int32) of ``k`` synapses onto each of ``n_post`` targets.

    Sources are drawn uniformly from ``first .. first + n_pre - 1`` with
    replacement (multapses allowed), excluding the target itself.
    """
    import numpy as np

    post = np.arange(n_post, dtype=np.int64)[:, None]
    own = (post >= first) & (post < first + n_pre)          # targets inside the source population
    draw = rng.integers(0, n_pre - 1, size=(n_post, k))
    full = rng.integers(0, n_pre, size=(n_post, k))
    local = post - first
    # inside: draw among the n_pre - 1 others (skip the target's own index); outside: among all
    pre = np.where(own, draw + (draw >= local), full) + first
    return pre.astype(np.int32).ravel()


# ---------------------------------------------------------------------------------- scatter ceiling
def run_scatter(n_events, seed):
    import importlib.util

    spec = importlib.util.spec_from_file_location("eventsim_bench_scatter", HERE.parent / "bench_scatter.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = {}
    for label, n_targets in mod.TARGET_SIZES.items():
        out[label] = mod.scatter_events_per_second(n_targets, n_events, seed=seed)
        out[label + "_w"] = mod.scatter_events_per_second(n_targets, n_events, seed=seed, weights=True)
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("simulator", choices=["eventsim", "nest", "brian2-standalone", "brian2-runtime", "scatter"])
    ap.add_argument("network", choices=["brunel", "cuba", "coba", "coba_alpha", "coba_adex"], nargs="?",
                    default="brunel")
    ap.add_argument("--scale", type=float, default=1.0, help="Brunel network scale (1 = 12,500 neurons)")
    ap.add_argument("--t-sim", type=float, default=1000.0, help="simulated time (ms)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scatter-events", type=int, default=1 << 24)
    args = ap.parse_args(argv)
    if args.simulator == "scatter":
        res = run_scatter(args.scatter_events, args.seed)
    elif args.simulator == "eventsim":
        res = run_eventsim(args.network, args.scale, args.t_sim, args.threads, args.seed)
    elif args.simulator == "nest":
        res = run_nest(args.network, args.scale, args.t_sim, args.threads, args.seed)
    else:
        res = run_brian2(args.network, args.scale, args.t_sim, args.threads, args.seed,
                         standalone=args.simulator == "brian2-standalone")
    res.update(simulator=args.simulator, network=args.network, t_sim_ms=args.t_sim,
               python=sys.executable)
    sys.stdout.flush()
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
