"""GPU benchmark of the clock engine: Brunel (2000) and a scaled Potjans & Diesmann (2014) microcircuit.

For each network prints the build time (network construction + engine plan +
upload + kernel compilation, i.e. the first 0.1 ms step), the simulate time
(the device is synchronised before each clock read), the real-time factor
(wall time / biological time), recurrent + external synaptic events per second
and the device memory in use.

Usage::

    python benchmarks/gpu.py                              # Brunel scale 1, microcircuit scale 0.1, 1 s each
    python benchmarks/gpu.py --brunel 0.5 --pd 0.2 --t-sim 500
    python benchmarks/gpu.py --backend cpu                # the same networks on the CPU engine, for ratios

This is a script, not an asv suite (nothing runs on import).  Without a CUDA
GPU it exits with status 2 and says why (under ``NUMBA_ENABLE_CUDASIM=1`` it
runs on numba-cuda's simulator, which is only useful with tiny ``--brunel`` /
``--pd`` scales and says nothing about speed).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import eventsim as es

# ---------------------------------------------------------------------- networks


def brunel(scale, backend, seed=1, dt=0.1):
    """NEST's brunel_delta_nest (as examples/brunel2000.py), on ``backend``."""
    order = int(round(2500 * scale))
    NE, NI = 4 * order, order
    CE, CI = int(0.1 * NE), int(0.1 * NI)
    J, g, eta, theta, tau_m, delay = 0.1, 5.0, 2.0, 20.0, 20.0, 1.5
    nu_th = theta / (J * CE * tau_m)
    p_rate = 1000.0 * eta * nu_th * CE
    model = es.LIF(tau_m=tau_m, c_m=1.0, v_rest=0.0, v_reset=0.0, v_th=theta, t_ref=2.0)
    net = es.Network(dt=dt, seed=seed, backend=backend)
    exc = net.population(NE, model, v_init=0.0, label="exc")
    inh = net.population(NI, model, v_init=0.0, label="inh")
    everyone = exc | inh
    net.connect(exc, everyone, rule=es.FixedInDegree(CE), weight=J, delay=delay)
    net.connect(inh, everyone, rule=es.FixedInDegree(CI), weight=-g * J, delay=delay)
    noise = net.poisson(NE + NI, rate=p_rate)
    net.connect(noise, everyone, rule=es.OneToOne(), weight=J, delay=delay)
    return net, [net.record_spikes(exc), net.record_spikes(inh)]


#: Potjans & Diesmann (2014), Table 5: populations, sizes, connection probabilities, external in-degrees.
PD_NAMES = ["L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I"]
PD_N = np.array([20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948])
PD_P = np.array([
    [0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
    [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
    [0.0077, 0.0059, 0.0497, 0.1350, 0.0067, 0.0003, 0.0453, 0.0],
    [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
    [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
    [0.0548, 0.0269, 0.0257, 0.0022, 0.0600, 0.3158, 0.0086, 0.0],
    [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
    [0.0364, 0.0010, 0.0034, 0.0005, 0.0277, 0.0080, 0.0658, 0.1443],
])
PD_K_EXT = np.array([1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100])


def microcircuit(scale, backend, seed=1, dt=0.1):
    """Potjans & Diesmann microcircuit with ``scale`` times the neurons and in-degrees.

    iaf_psc_exp neurons (tau_m 10 ms, C_m 250 pF, E_L = V_reset = -65 mV,
    V_th = -50 mV, t_ref 2 ms, tau_syn 0.5 ms), w = 87.8 pA (x2 for
    L4E -> L23E), g = -4, delays 1.5 ms (E) / 0.8 ms (I; 0.75 rounded to the grid), Poisson background
    8 Hz per external synapse (one channel per neuron at K_ext * 8 Hz).
    In-degrees are the full-scale ones times ``scale`` (no DC compensation:
    rates differ from the full model; this is a load benchmark).
    """
    model = es.LIF(tau_m=10.0, c_m=250.0, v_rest=-65.0, v_reset=-65.0, v_th=-50.0, t_ref=2.0,
                   tau_syn_ex=0.5, tau_syn_in=0.5)
    net = es.Network(dt=dt, seed=seed, backend=backend)
    n = np.maximum(1, np.round(PD_N * scale).astype(int))
    pops = [net.population(int(k), model, v_init=es.Normal(-58.0, 10.0), label=nm) for k, nm in zip(n, PD_NAMES)]
    w = 87.8
    for i, post in enumerate(pops):
        for j, pre in enumerate(pops):
            k_full = PD_P[i, j] * PD_N[j]   # expected in-degree of the full model
            k = int(round(k_full * scale))
            if k == 0:
                continue
            exc = j % 2 == 0
            wij = w * (2.0 if (i, j) == (0, 2) else 1.0) if exc else -4.0 * w
            net.connect(pre, post, es.FixedInDegree(k, allow_autapses=(i != j)), weight=wij,
                        delay=1.5 if exc else 0.8)
    for post, kext in zip(pops, PD_K_EXT):
        bg = net.poisson(len(post), rate=8.0 * kext)
        net.connect(bg, post, es.OneToOne(), weight=w, delay=dt)
    return net, [net.record_spikes(p) for p in pops]


# ---------------------------------------------------------------------- timing


def _device_memory():
    from numba import cuda

    free, total = cuda.current_context().get_memory_info()
    return total - free, total


def bench(name, builder, scale, backend, t_sim):
    from eventsim.engines import clock_cuda

    sync = clock_cuda._sync if backend == "cuda" else (lambda: None)
    gpu = backend == "cuda" and not clock_cuda.simulator_enabled()
    mem0 = _device_memory()[0] if gpu else 0
    t0 = time.perf_counter()
    net, recs = builder(scale, backend)
    net.run(net.dt)  # builds the plan, uploads it, compiles the kernels
    sync()
    t1 = time.perf_counter()
    net.run(t_sim - net.dt)
    sync()
    t2 = time.perf_counter()
    n_spk = sum(len(r) for r in recs)
    ev = sum(net.synaptic_events)
    sim = t2 - t1
    bio = (t_sim - net.dt) * 1e-3
    print(f"{name} (scale {scale}, {backend}): {net.n_neurons} neurons, {net.n_synapses} synapses")
    print(f"  build + first step   {t1 - t0:9.2f} s")
    print(f"  simulate {t_sim - net.dt:8.1f} ms  {sim:9.2f} s   real-time factor {sim / bio:8.3f}")
    print(f"  mean rate            {n_spk / max(net.n_neurons, 1) / (t_sim * 1e-3):9.2f} Hz")
    print(f"  synaptic events/s    {ev / max(sim, 1e-12):9.3e}  ({ev} events)")
    if gpu:
        used, total = _device_memory()
        eng = clock_cuda.engine_of(net._plan)
        print(f"  device memory        {(used - mem0) / 2**20:9.1f} MiB used by this network "
              f"({eng.memory_bytes() / 2**20:.1f} MiB resident arrays; {used / 2**20:.0f} of "
              f"{total / 2**20:.0f} MiB in use on the device); {eng.T} partitions")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brunel", type=float, default=1.0, help="Brunel scale (1 = 12,500 neurons; 0 to skip)")
    ap.add_argument("--pd", type=float, default=0.1, help="microcircuit scale (1 = 77,169 neurons; 0 to skip)")
    ap.add_argument("--t-sim", type=float, default=1000.0, help="simulated time per network (ms)")
    ap.add_argument("--backend", choices=["cuda", "cpu"], default="cuda")
    args = ap.parse_args(argv)
    if args.backend == "cuda":
        from eventsim.engines import clock_cuda

        reason = clock_cuda.unavailable_reason()
        if reason is not None:
            print(f"benchmarks/gpu.py: cannot run on the GPU: {reason}", file=sys.stderr)
            return 2
        if clock_cuda.simulator_enabled():
            print("NUMBA_ENABLE_CUDASIM=1: running on numba-cuda's simulator; timings are meaningless",
                  file=sys.stderr)
    if args.brunel > 0:
        bench("Brunel (2000)", brunel, args.brunel, args.backend, args.t_sim)
    if args.pd > 0:
        bench("Potjans & Diesmann (2014) microcircuit", microcircuit, args.pd, args.backend, args.t_sim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
