"""GPU benchmark of the clock engine: Brunel (2000) and a scaled Potjans & Diesmann (2014) microcircuit.

For each network prints the build time (network construction + engine plan +
upload + kernel compilation, i.e. the first 0.1 ms step), the simulate time
(the device is synchronised before each clock read), the real-time factor
(wall time / biological time), recurrent + external synaptic events per second
and the device memory in use.

Usage::

    python benchmarks/gpu.py                              # Brunel scale 1, microcircuit scale 0.1, 1 s each
    python benchmarks/gpu.py --brunel 0.5 --pd 0.2 --t-sim 500
    python benchmarks/gpu.py --pd 1 --dtype float32       # the full-scale microcircuit in single precision
    python benchmarks/gpu.py --backend cpu                # the same networks on the CPU engine, for ratios

This is a script, not an asv suite (nothing runs on import).  Without a CUDA
GPU it exits with status 2 and says why (under ``NUMBA_ENABLE_CUDASIM=1`` it
runs on numba-cuda's simulator, which is only useful with tiny ``--brunel`` /
``--pd`` scales and says nothing about speed).
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import time

# ---------------------------------------------------------------------- networks


EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _example(name):
    return runpy.run_path(os.path.join(EXAMPLES, name + ".py"), run_name=name)


def brunel(scale, backend, dtype):
    """examples/brunel2000.py (NEST's brunel_delta_nest) on ``backend``."""
    net, _, _, spikes_e, spikes_i = _example("brunel2000")["build"](scale, backend=backend, dtype=dtype)
    return net, [spikes_e, spikes_i]


def microcircuit(scale, backend, dtype):
    """examples/microcircuit.py (Potjans & Diesmann 2014, Poisson background) on ``backend``."""
    net, _, spikes = _example("microcircuit")["build"](scale, backend=backend, dtype=dtype)
    return net, [spikes]


# ---------------------------------------------------------------------- timing


def _device_memory():
    from numba import cuda

    free, total = cuda.current_context().get_memory_info()
    return total - free, total


def bench(name, builder, scale, backend, t_sim, dtype):
    from eventsim.engines import clock_cuda

    sync = clock_cuda._sync if backend == "cuda" else (lambda: None)
    gpu = backend == "cuda" and not clock_cuda.simulator_enabled()
    mem0 = _device_memory()[0] if gpu else 0
    t0 = time.perf_counter()
    net, recs = builder(scale, backend, dtype)
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
    print(f"{name} (scale {scale}, {backend}, {dtype}): {net.n_neurons} neurons, {net.n_synapses} synapses")
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
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                    help="precision of state, parameters, ring buffers and weights")
    ap.add_argument("--threads-per-block", type=int, default=None,
                    help="threads per block of the CUDA kernels (default: eventsim.config's)")
    args = ap.parse_args(argv)
    if args.threads_per_block is not None:
        if args.threads_per_block < 1:
            ap.error("--threads-per-block must be at least 1")
        from eventsim import config

        config.CUDA_THREADS_PER_BLOCK = args.threads_per_block
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
        bench("Brunel (2000)", brunel, args.brunel, args.backend, args.t_sim, args.dtype)
    if args.pd > 0:
        bench("Potjans & Diesmann (2014) microcircuit", microcircuit, args.pd, args.backend, args.t_sim, args.dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
