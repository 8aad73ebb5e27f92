"""eventsim against NEST and Brian2 on NEST's hpc_benchmark network with STDP, on the same CPU cores.

The network (NEST's ``pynest/examples/hpc_benchmark.py``): ``9000 * scale``
excitatory and ``2250 * scale`` inhibitory neurons, fixed in-degrees
``CE = 9000`` and ``CI = 2250`` (multapses allowed, so the in-degree does not
shrink with the scale), one delay of 1.5 ms, tau_m = 10 ms, C_m = 250 pF,
t_ref = 0.5 ms, V_th = 20 mV, V_reset = E_L = 0, initial V_m normal(5.7,
7.2) mV, an external Poisson drive of eta = 1.685 times the threshold rate,
inhibition g = -5, and ``stdp_pl_synapse_hom`` (alpha 0.0513, lambda 0.1,
mu 0.4, tau_plus 15 ms, the neurons' tau_minus 30 ms) on E -> E.  As in
NEST's benchmark, the neurons have alpha-shaped current synapses
(``iaf_psc_alpha``; eventsim ``LIF(..., psc="alpha")``; Brian2 the same
linear equations) with tau_syn = 0.3258 ms and weights scaled to an EPSP
peak of 0.14 mV; ``--psc exp`` runs every simulator with exponential
current synapses (``iaf_psc_exp``) instead, with the same tau_syn and EPSP
peak.

Simulators: ``eventsim`` (plastic), ``eventsim-static`` (the same network
with static E -> E synapses) and ``eventsim-frozen`` (the plastic synapses
with ``lam = 0``: every trace and weight update is computed but leaves the
weights unchanged, so the spikes are the static network's; frozen over
static is eventsim's own cost of plasticity at equal activity, whereas
plastic over static also carries the change of activity that learning
causes), ``nest``, ``nest-static`` and ``nest-frozen`` (the same three in NEST;
the frozen pair compares the two simulators' plasticity machinery at equal
activity, whether or not the learning network runs away), ``nest``
(``stdp_pl_synapse_hom``; ``nest-static``: E -> E static, compared with
eventsim-static), ``brian2-standalone`` (``cpp_standalone``; the
power-law rule written as Brian2 equations with the presynaptic pathway
for plasticity undelayed and the postsynaptic one delayed by the synaptic
delay, which is NEST's fully dendritic delay except that Brian2 delivers the
weight of the spike's arrival time rather than of its emission; the runs
of one network can therefore drift apart once the weights change), and
``brian2-frozen`` (the same with ``lam = 0``, a variable of the run: every
update computed, none changing a weight; compared with eventsim-frozen at
equal activity).  Each run
is its own process, pinned to the same cores (``taskset``), with the thread
count set everywhere; it prints build and simulate times, the rate and the
peak memory, then the ratios.  Rates must agree within 10 % of eventsim's.

Usage::

    python benchmarks/peers/plastic_networks.py --peer-python /path/to/peers/bin/python --scale 0.2
    python benchmarks/peers/plastic_networks.py --quick          # scale 0.05, 100 ms, eventsim only
    python benchmarks/peers/plastic_networks.py --psc exp ...    # exponential synapses everywhere
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cpu_networks import child_env, importable, pin_prefix  # noqa: E402

DT = 0.1
TAU_SYN = 0.32582722403722841
P = dict(tau_m=10.0, c_m=250.0, t_ref=0.5, v_th=20.0, v_reset=0.0, e_l=0.0, delay=1.5, JE=0.14, g=-5.0,
         eta=1.685, mean_v=5.7, sigma_v=7.2, alpha=0.0513, lam=0.1, mu=0.4, tau_plus=15.0, tau_minus=30.0)
PRESIM = 50.0  # ms before the timed part (NEST's hpc_benchmark presimulates 50 ms)


def sizes(scale):
    ne, ni = int(9000 * scale), int(2250 * scale)
    return ne, ni, 9000, 2250


#: Synapse shape of every simulator: "alpha" (NEST's hpc_benchmark, iaf_psc_alpha) or "exp" (iaf_psc_exp).
PSC = os.environ.get("PLASTIC_BENCH_PSC", "alpha")


def psp_per_pA(t, psc):
    """PSP (mV) at t ms after one input of 1 pA (exp: a jump of 1 pA; alpha: a current peaking at 1 pA)."""
    import math

    tm, ts, c = P["tau_m"], TAU_SYN, P["c_m"]
    a = 1.0 / tm - 1.0 / ts
    if psc == "exp":
        return ts * tm / (c * (tm - ts)) * (math.exp(-t / tm) - math.exp(-t / ts))
    return math.e / (ts * c) * math.exp(-t / tm) * (t * math.exp(a * t) / a - math.expm1(a * t) / a ** 2)


def weight_pA(psc=None):
    """Current (pA) of a synapse whose PSP peaks at JE mV (tau_m, tau_syn, C_m above; the PSP is unimodal,
    so its peak is found by golden-section search)."""
    psc = psc or PSC
    lo, hi = 0.0, 10.0 * P["tau_m"]
    g = (5 ** 0.5 - 1) / 2
    for _ in range(200):
        x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
        if psp_per_pA(x1, psc) < psp_per_pA(x2, psc):
            lo = x1
        else:
            hi = x2
    return P["JE"] / psp_per_pA(0.5 * (lo + hi), psc)


def drive_hz(scale, psc=None):
    """Rate (Hz) of each neuron's Poisson drive: eta times the rate that holds v at threshold on average
    (the charge of one input: w tau_syn for an exponential current, e w tau_syn for an alpha one)."""
    import math

    psc = psc or PSC
    _, _, ce, _ = sizes(scale)
    w = weight_pA(psc)
    charge = w * TAU_SYN * (math.e if psc == "alpha" else 1.0)
    nu_th = P["v_th"] / (ce * charge * P["tau_m"] / P["c_m"])  # spikes per ms per synapse
    return nu_th * P["eta"] * ce * 1000.0


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------------------------ workers
def run_eventsim(scale, t_sim, threads, seed, plastic, lam=P["lam"]):
    import numba

    import eventsim as es

    numba.set_num_threads(threads)
    ne, ni, ce, ci = sizes(scale)
    w = weight_pA()
    t0 = time.perf_counter()
    net = es.Network(dt=DT, seed=seed)
    model = es.LIF(tau_m=P["tau_m"], c_m=P["c_m"], t_ref=P["t_ref"], v_th=P["v_th"], v_reset=P["v_reset"],
                   v_rest=P["e_l"], tau_syn_ex=TAU_SYN, tau_syn_in=TAU_SYN, psc=PSC)
    v0 = es.Normal(P["mean_v"], P["sigma_v"])
    exc = net.population(ne, model, v_init=v0)
    inh = net.population(ni, model, v_init=v0)
    drive = net.poisson(ne + ni, rate=drive_hz(scale))
    net.connect(drive, exc | inh, es.OneToOne(), weight=w, delay=DT)
    syn = es.STDPPowerLaw(tau_plus=P["tau_plus"], tau_minus=P["tau_minus"], lam=lam, alpha=P["alpha"],
                          mu=P["mu"]) if plastic else None
    ee = net.connect(exc, exc, es.FixedInDegree(ce), weight=w, delay=P["delay"], synapse=syn)
    net.connect(inh, exc, es.FixedInDegree(ci), weight=P["g"] * w, delay=P["delay"])
    net.connect(exc, inh, es.FixedInDegree(ce), weight=w, delay=P["delay"])
    net.connect(inh, inh, es.FixedInDegree(ci), weight=P["g"] * w, delay=P["delay"])
    rec = net.record_spikes(exc)
    w0 = ee.weight.copy()
    net.run(DT)  # builds the engine and compiles (or loads) the kernels
    t1 = time.perf_counter()
    net.run(PRESIM - DT)
    n_pre = len(rec.steps)
    t2 = time.perf_counter()
    net.run(t_sim)
    t3 = time.perf_counter()
    spikes = len(rec.steps) - n_pre
    wts = ee.weight
    return dict(build_s=t1 - t0, simulate_s=t3 - t2, rate_hz=spikes / ne / (t_sim * 1e-3),
                peak_rss_mib=peak_rss_mib(), n_neurons=ne + ni, n_synapses=net.n_synapses,
                mean_ee_weight=float(wts.mean()), weights_changed=bool((wts != w0).any()), spikes=spikes,
                threads=threads)


def run_nest(scale, t_sim, threads, seed, plastic=True, lam=P["lam"]):
    os.environ.setdefault("PYNEST_QUIET", "1")
    import nest

    nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": DT, "local_num_threads": threads, "rng_seed": seed + 1})
    ne, ni, ce, ci = sizes(scale)
    w = weight_pA()
    t0 = time.perf_counter()
    params = {"E_L": P["e_l"], "C_m": P["c_m"], "tau_m": P["tau_m"], "t_ref": P["t_ref"], "V_th": P["v_th"],
              "V_reset": P["v_reset"], "tau_syn_ex": TAU_SYN, "tau_syn_in": TAU_SYN, "tau_minus": P["tau_minus"]}
    exc = nest.Create(f"iaf_psc_{PSC}", ne, params=params)
    inh = nest.Create(f"iaf_psc_{PSC}", ni, params=params)
    v0 = nest.random.normal(P["mean_v"], P["sigma_v"])
    exc.V_m = v0
    inh.V_m = v0
    drive = nest.Create("poisson_generator", params={"rate": drive_hz(scale)})
    rec = nest.Create("spike_recorder")
    nest.SetDefaults("stdp_pl_synapse_hom", {"alpha": P["alpha"], "lambda": lam, "mu": P["mu"],
                                             "tau_plus": P["tau_plus"]})
    nest.Connect(drive, exc + inh, "all_to_all", {"weight": w, "delay": DT})
    indeg = lambda k: {"rule": "fixed_indegree", "indegree": k, "allow_autapses": False,  # noqa: E731
                       "allow_multapses": True}
    nest.Connect(exc, exc, indeg(ce), {"synapse_model": "stdp_pl_synapse_hom" if plastic else "static_synapse",
                                       "weight": w, "delay": P["delay"]})
    nest.Connect(inh, exc, indeg(ci), {"weight": P["g"] * w, "delay": P["delay"]})
    nest.Connect(exc, inh, indeg(ce), {"weight": w, "delay": P["delay"]})
    nest.Connect(inh, inh, indeg(ci), {"weight": P["g"] * w, "delay": P["delay"]})
    nest.Connect(exc, rec)
    nest.Simulate(DT)
    t1 = time.perf_counter()
    nest.Simulate(PRESIM - DT)
    n_pre = rec.n_events
    t2 = time.perf_counter()
    nest.Simulate(t_sim)
    t3 = time.perf_counter()
    spikes = rec.n_events - n_pre
    # (reading every connection's weight back through PyNEST takes minutes and many GiB: a sample of
    # the first 10 excitatory senders' synapses)
    wts = nest.GetConnections(exc[:10], exc).get("weight")
    return dict(build_s=t1 - t0, simulate_s=t3 - t2, rate_hz=spikes / ne / (t_sim * 1e-3),
                peak_rss_mib=peak_rss_mib(), n_neurons=ne + ni, mean_ee_weight=float(sum(wts) / len(wts)),
                spikes=spikes, threads=threads)


def run_brian2(scale, t_sim, threads, seed, workdir, lam=P["lam"]):
    import numpy as np
    import brian2 as b2
    from brian2 import Hz, ms, mV, pA, pF

    b2.set_device("cpp_standalone", directory=workdir, build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0 if threads == 1 else threads
    b2.defaultclock.dt = DT * ms
    b2.seed(seed)
    ne, ni, ce, ci = sizes(scale)
    w = weight_pA()
    t0 = time.perf_counter()
    eqs = """dv/dt = (-(v - E_L) + (I_ex + I_in) / C_m * tau_m) / tau_m : volt (unless refractory)
             dI_ex/dt = -I_ex / tau_s : amp
             dI_in/dt = -I_in / tau_s : amp"""
    # alpha: I = w (t/tau) e^{1 - t/tau} from dI/dt = (x - I)/tau, dx/dt = -x/tau, x += e w at a spike
    target = dict(I_ex="I_ex", I_in="I_in")
    if PSC == "alpha":
        eqs = """dv/dt = (-(v - E_L) + (I_ex + I_in) / C_m * tau_m) / tau_m : volt (unless refractory)
                 dI_ex/dt = (x_ex - I_ex) / tau_s : amp
                 dx_ex/dt = -x_ex / tau_s : amp
                 dI_in/dt = (x_in - I_in) / tau_s : amp
                 dx_in/dt = -x_in / tau_s : amp"""
        target = dict(I_ex="x_ex", I_in="x_in")
    jump = 2.718281828459045 if PSC == "alpha" else 1.0
    ns = dict(E_L=P["e_l"] * mV, C_m=P["c_m"] * pF, tau_m=P["tau_m"] * ms, tau_s=TAU_SYN * ms)
    G = b2.NeuronGroup(ne + ni, eqs, threshold=f"v >= {P['v_th']}*mV", reset=f"v = {P['v_reset']}*mV",
                       refractory=P["t_ref"] * ms, method="exact", namespace=ns)
    G.v = f"{P['mean_v']}*mV + {P['sigma_v']}*mV*randn()"
    E, I = G[:ne], G[ne:]
    # the drive as ce inputs at the per-synapse rate (a single input would need more than one spike per step)
    drive = b2.PoissonInput(G, target["I_ex"], ce, drive_hz(scale) / ce * Hz, weight=jump * w * pA)
    # lam is a variable of the run, not a constant of the generated code, so that lam = 0 (brian2-frozen) computes
    # every update as NEST's and eventsim's frozen runs do (a literal 0 would let the compiler drop the arithmetic)
    stdp = b2.Synapses(E, E, """w : amp
                                lam : 1 (shared)
                                dKp/dt = -Kp / tau_plus : 1 (event-driven)
                                dKm/dt = -Km / tau_minus : 1 (event-driven)""",
                       on_pre={"pre": f"{target['I_ex']}_post += {jump} * w",
                               "plast": "w = clip(w - lam * alpha * w * Km, 0*pA, 1e9*pA); Kp += 1"},
                       on_post="w = w + lam * (w / pA) ** mu * pA * Kp; Km += 1",
                       namespace=dict(tau_plus=P["tau_plus"] * ms, tau_minus=P["tau_minus"] * ms,
                                      alpha=P["alpha"], mu=P["mu"]))
    rng = np.random.default_rng(seed)
    for syn, pre_n, post_n, k, first in ((stdp, ne, ne, ce, 0),):
        post = np.repeat(np.arange(post_n), k)
        pre = rng.integers(0, pre_n - 1, post.size)
        pre = pre + (pre >= post)  # no autapses
        syn.connect(i=pre, j=post)
    stdp.w = w * pA
    stdp.lam = lam
    stdp.pre.delay = P["delay"] * ms
    stdp.plast.delay = 0 * ms
    stdp.post.delay = P["delay"] * ms
    static = []
    for src, tgt, k, weight, name in ((I, E, ci, P["g"] * w, "I_ex" if P["g"] > 0 else "I_in"),
                                      (E, I, ce, w, "I_ex"), (I, I, ci, P["g"] * w, "I_in")):
        s = b2.Synapses(src, tgt, on_pre=f"{target[name]}_post += {jump * weight}*pA", delay=P["delay"] * ms)
        post = np.repeat(np.arange(len(tgt)), k)
        pre = rng.integers(0, len(src) - (1 if src is tgt else 0), post.size)
        if src is tgt:
            pre = pre + (pre >= post)
        s.connect(i=pre, j=post)
        static.append(s)
    mon = b2.SpikeMonitor(E)
    net = b2.Network(G, drive, stdp, *static, mon)
    net.run((PRESIM + t_sim) * ms, profile=True)
    b2.device.build(directory=workdir, compile=True, run=True, debug=False)
    t1 = time.perf_counter()
    times = np.asarray(mon.t / ms)
    # Brian2 reports the time of each code object; the run's simulate time is the last run's duration
    prof = b2.device._last_run_time if hasattr(b2.device, "_last_run_time") else None
    sim = float(prof) * (t_sim / (PRESIM + t_sim)) if prof else None
    return dict(build_s=t1 - t0 - (float(prof) if prof else 0.0), simulate_s=sim,
                rate_hz=float((times >= PRESIM).sum()) / ne / (t_sim * 1e-3), peak_rss_mib=peak_rss_mib(),
                n_neurons=ne + ni, mean_ee_weight=float(np.mean(stdp.w / pA)), threads=threads)


# ------------------------------------------------------------------------------------ driver
def worker(args):
    if args.worker == "eventsim":
        res = run_eventsim(args.scale, args.t_sim, args.threads, args.seed, plastic=True)
    elif args.worker == "eventsim-static":
        res = run_eventsim(args.scale, args.t_sim, args.threads, args.seed, plastic=False)
    elif args.worker == "eventsim-frozen":
        res = run_eventsim(args.scale, args.t_sim, args.threads, args.seed, plastic=True, lam=0.0)
    elif args.worker in ("nest", "nest-static"):
        res = run_nest(args.scale, args.t_sim, args.threads, args.seed, plastic=args.worker == "nest")
    elif args.worker == "nest-frozen":
        res = run_nest(args.scale, args.t_sim, args.threads, args.seed, plastic=True, lam=0.0)
    else:
        import tempfile

        res = run_brian2(args.scale, args.t_sim, args.threads, args.seed, tempfile.mkdtemp(prefix="b2_"),
                         lam=0.0 if args.worker == "brian2-frozen" else P["lam"])
    print("RESULT " + json.dumps(res), flush=True)


def run_one(python, sim, args, threads):
    cmd = pin_prefix(threads) + [python, str(Path(__file__).resolve()), "--worker", sim, "--scale", str(args.scale),
                                 "--t-sim", str(args.t_sim), "--threads", str(threads), "--seed", str(args.seed)]
    env = dict(child_env(threads), PLASTIC_BENCH_PSC=args.psc)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    print(f"  {sim}: failed (exit {proc.returncode})\n" + "\n".join((proc.stdout + proc.stderr).splitlines()[-12:]),
          file=sys.stderr)
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=0.2)
    ap.add_argument("--t-sim", type=float, default=250.0, help="timed biological time (ms), after 50 ms")
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--peer-python", default=None, help="interpreter with nest-simulator and brian2")
    ap.add_argument("--simulators", nargs="+",
                    default=["eventsim", "eventsim-static", "eventsim-frozen", "nest", "nest-static", "nest-frozen",
                             "brian2-standalone"])
    ap.add_argument("--quick", action="store_true", help="scale 0.05, 100 ms, eventsim only")
    ap.add_argument("--psc", choices=["alpha", "exp"], default="alpha",
                    help="synapse shape in every simulator: alpha (NEST's hpc_benchmark) or exp")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        args.threads = args.threads[0]
        worker(args)
        return None
    print(f"synapses: {args.psc} (iaf_psc_{args.psc}), weight {weight_pA(args.psc):.2f} pA, drive "
          f"{drive_hz(args.scale, args.psc):.0f} Hz per neuron", flush=True)
    if args.quick:
        args.scale, args.t_sim = 0.05, 100.0
        args.simulators = ["eventsim", "eventsim-static", "eventsim-frozen"]
    results = {}
    for threads in args.threads:
        for sim in args.simulators:
            python = sys.executable if sim.startswith("eventsim") else args.peer_python
            if python is None:
                print(f"  {sim}: skipped (no --peer-python)", file=sys.stderr)
                continue
            ok, why = importable(python, "eventsim" if sim.startswith("eventsim") else sim.split("-")[0])
            if not ok:
                print(f"  {sim}: skipped ({why})", file=sys.stderr)
                continue
            res = run_one(python, sim, args, threads)
            if res is not None:
                results[(sim, threads)] = res
                print(f"{sim:18s} threads={threads}  build {res['build_s']:7.2f} s  simulate "
                      f"{(res['simulate_s'] or float('nan')):8.2f} s  rate {res['rate_hz']:6.2f} Hz  "
                      f"mean E->E weight {res['mean_ee_weight']:7.2f} pA  peak {res['peak_rss_mib']:7.0f} MiB",
                      flush=True)
    for threads in args.threads:
        for sim in args.simulators:
            r = results.get((sim, threads))
            # static peers against eventsim's static run, the others against eventsim's plastic one
            base = results.get(("eventsim-static" if sim == "nest-static" else "eventsim", threads))
            if sim == "brian2-frozen":
                ours = results.get(("eventsim-frozen", threads))
                if r is not None and ours is not None and r.get("simulate_s"):
                    rel = abs(r["rate_hz"] - ours["rate_hz"]) / max(ours["rate_hz"], 1e-12)
                    print(f"threads={threads}: brian2-frozen: eventsim-frozen faster by "
                          f"{r['simulate_s'] / ours['simulate_s']:.2f}x (both learn nothing); rates differ by "
                          f"{100 * rel:.1f} % ({'within' if rel <= 0.10 else 'OUTSIDE'} 10 %)")
                continue
            if sim in ("eventsim-frozen", "nest-frozen"):
                name = sim.split("-")[0]
                static = results.get((f"{name}-static", threads))
                if r is not None and static is not None:
                    same = "same spikes" if r["spikes"] == static["spikes"] else \
                        f"DIFFERENT spike counts ({r['spikes']} vs {static['spikes']})"
                    print(f"threads={threads}: {sim} over {name}-static ({name}'s cost of plasticity at equal "
                          f"activity): {r['simulate_s'] / static['simulate_s']:.2f}x; {same}")
                ours = results.get(("eventsim-frozen", threads))
                if sim == "nest-frozen" and r is not None and ours is not None:
                    print(f"threads={threads}: nest-frozen: eventsim-frozen faster by "
                          f"{r['simulate_s'] / ours['simulate_s']:.2f}x (both learn nothing: same activity)")
                continue
            if r is None or base is None or sim == "eventsim" or not r.get("simulate_s"):
                continue
            rel = abs(r["rate_hz"] - base["rate_hz"]) / max(base["rate_hz"], 1e-12)
            what = "eventsim's cost of plasticity" if sim == "eventsim-static" else \
                "eventsim-static faster by" if sim == "nest-static" else "eventsim faster by"
            ratio = base["simulate_s"] / r["simulate_s"] if sim == "eventsim-static" else \
                r["simulate_s"] / base["simulate_s"]
            print(f"threads={threads}: {sim}: {what} {ratio:.2f}x; rates differ by {100 * rel:.1f} % "
                  f"({'within' if rel <= 0.10 else 'OUTSIDE'} 10 %)")
    if ("eventsim", 1) in results and ("eventsim", 2) in results:
        print(f"eventsim 2 threads over 1: {results[('eventsim', 1)]['simulate_s'] / results[('eventsim', 2)]['simulate_s']:.2f}x")
    return results


if __name__ == "__main__":
    main()
