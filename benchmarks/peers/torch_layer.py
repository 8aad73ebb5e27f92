"""Training speed of one LIF layer: eventsim.torch against norse, snnTorch, SpikingJelly, sinabs, pure torch.

Two cases, float32, batch 16, 500 steps, forward + backward:

(a) ``end_to_end``: ``Linear(n, n)`` applied to input spike trains (10 %
    per step) then one LIF layer; ``loss = output.sum()``;
(b) ``layer``: the neuron layer alone on an input current that makes 5-25 %
    of the neurons spike per step (rate printed), gradient of
    ``output.sum()``, n = 512 and 4096.

Each framework runs in its own child process (one thread: torch, Numba and
OpenMP), with one warm-up run (JIT compilation) and the median of 5 timed
runs; peak memory is the child's peak resident set size above its level
before the first run.  Every library is optional; missing ones are listed
as skipped.  Each peer runs its fastest idiomatic form: norse
``LIFBoxCell`` and snnTorch ``Leaky`` in a loop over ``x.unbind(0)``,
SpikingJelly's multi-step ``LIFNode``, sinabs ``LIF`` on ``[B, T, n]``, and a
pure-torch loop over ``x.unbind(0)`` with a SuperSpike autograd function.
Two more rows give the forms these libraries document, as the public Open
Neuromorphic table runs them: ``norse-lift`` (``norse.torch.Lift`` over
``LIFBoxCell``) and ``snntorch-index`` (the tutorials' loop over ``x[step]``);
both index the input per step, which makes autograd write a full-size
gradient of the input at every step.  ``eventsim-seq`` is eventsim's
composed form: the spikes-only layer (``return_state=False``) inside an
``nn.Sequential``, as a model is written (the ``end_to_end`` case applies
the ``Linear`` in front of it in every row).

``--device cuda`` runs every framework on the GPU instead (one process per
framework as above): the device is synchronised (``torch.cuda.synchronize``)
before every clock read, and peak memory is ``torch.cuda.max_memory_allocated``
above the allocation before the first run.  One more row is then possible,
``spikingjelly-cupy`` (SpikingJelly's fused CuPy kernels), when CuPy is
installed.  Without a usable CUDA device the script says so and exits with
status 2.

Usage::

    python benchmarks/peers/torch_layer.py                  # both cases, n = 512 and 4096
    python benchmarks/peers/torch_layer.py --quick          # n = 512, 100 steps
    python benchmarks/peers/torch_layer.py --frameworks eventsim torch
    python benchmarks/peers/torch_layer.py --device cuda --sizes 4096 16384 --cases layer
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

FRAMEWORKS = ["eventsim", "eventsim-seq", "norse", "snntorch", "spikingjelly", "sinabs", "torch", "norse-lift",
              "snntorch-index", "spikingjelly-cupy"]
OURS = ("eventsim", "eventsim-seq")
MODULES = {"eventsim": "eventsim.torch", "eventsim-seq": "eventsim.torch", "norse": "norse", "snntorch": "snntorch",
           "spikingjelly": "spikingjelly", "sinabs": "sinabs", "torch": "torch", "norse-lift": "norse",
           "snntorch-index": "snntorch", "spikingjelly-cupy": "spikingjelly"}
CUDA_ONLY = {"spikingjelly-cupy": "cupy"}  # rows that exist on a CUDA device only (and the module they need)
TAU_STEPS = 10.0  # membrane time constant in steps (dt = 1 ms, tau_m = 10 ms)


# ------------------------------------------------------------------------------------------- layers
def make_layer(fw, device="cpu"):
    """Return f(x [T, B, n]) -> spikes [T, B, n] for one framework (same LIF: tau 10 steps, thr 1, reset 0).

    Modules are moved to ``device`` ("cpu" or "cuda").
    """
    import math

    import torch

    beta = math.exp(-1.0 / TAU_STEPS)
    if fw == "eventsim":
        import eventsim.torch as est

        layer = est.LIF(tau_m=TAU_STEPS, v_th=1.0, v_reset=0.0, dt=1.0).to(device)
        return lambda x: layer(x)[0]
    if fw == "eventsim-seq":  # the composed form: a spikes-only layer in nn.Sequential
        import eventsim.torch as est

        return torch.nn.Sequential(est.LIF(tau_m=TAU_STEPS, v_th=1.0, v_reset=0.0, dt=1.0,
                                           return_state=False)).to(device)
    if fw == "norse":
        from norse.torch.module.lif_box import LIFBoxCell, LIFBoxParameters

        cell = LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.as_tensor(1000.0 / TAU_STEPS, device=device),
                                           method="super")).to(device)

        def run(x):
            state, out = None, []
            for xt in x.unbind(0):
                z, state = cell(xt, state)
                out.append(z)
            return torch.stack(out)
        return run
    if fw == "norse-lift":  # norse's own way to run a cell over time (Lift indexes x[t] per step)
        from norse.torch import Lift
        from norse.torch.module.lif_box import LIFBoxCell, LIFBoxParameters

        seq = Lift(LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.as_tensor(1000.0 / TAU_STEPS, device=device),
                                               method="super"))).to(device)

        def run(x):
            out = seq(x)
            return out[0] if isinstance(out, tuple) else out
        return run
    if fw == "snntorch-index":  # the loop of snnTorch's tutorials, indexing x[step]
        import snntorch

        lif = snntorch.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero").to(device)

        def run(x):
            x = x * (1 - beta)
            mem, out = torch.zeros_like(x[0]), []
            for step in range(x.shape[0]):
                z, mem = lif(x[step], mem)
                out.append(z)
            return torch.stack(out)
        return run
    if fw == "snntorch":
        import snntorch

        lif = snntorch.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero").to(device)

        def run(x):
            mem, out = torch.zeros_like(x[0]), []
            for xt in (x * (1 - beta)).unbind(0):
                z, mem = lif(xt, mem)
                out.append(z)
            return torch.stack(out)
        return run
    if fw in ("spikingjelly", "spikingjelly-cupy"):
        from spikingjelly.activation_based import functional, neuron

        import inspect

        backend = "cupy" if fw == "spikingjelly-cupy" else "torch"
        if "backend" in inspect.signature(neuron.LIFNode.__init__).parameters:
            node = neuron.LIFNode(tau=TAU_STEPS, step_mode="m", backend=backend).to(device)
        elif backend == "torch":  # SpikingJelly >= 2.0: no backend argument, multi-step in torch
            node = neuron.LIFNode(tau=TAU_STEPS, step_mode="m").to(device)
        else:
            raise RuntimeError("this SpikingJelly version has no backend argument (no CuPy backend to select)")

        def run(x):
            functional.reset_net(node)
            return node(x)
        return run
    if fw == "sinabs":
        from sinabs.activation import MembraneReset, SingleSpike
        from sinabs.layers import LIF

        layer = LIF(tau_mem=TAU_STEPS, spike_fn=SingleSpike, reset_fn=MembraneReset()).to(device)

        def run(x):
            layer.reset_states()
            return layer(x.transpose(0, 1)).transpose(0, 1)
        return run

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u >= 0).to(u.dtype)

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            return g / (u.abs() + 1.0) ** 2

    def run(x):  # pure torch, exact LIF with the same arithmetic as eventsim's
        v, out = torch.zeros_like(x[0]), []
        for xt in x.unbind(0):
            v = beta * v + (1 - beta) * xt
            z = Spike.apply(v - 1.0)
            v = v * (1 - z)
            out.append(z)
        return torch.stack(out)
    return run


# ------------------------------------------------------------------------------------------- child
def child(fw, case, n, steps, batch, repeat, device="cpu"):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cuda = device == "cuda"
    layer = make_layer(fw, device)
    g = torch.Generator().manual_seed(0)
    if case == "layer":
        x0 = (torch.randn(steps, batch, n, generator=g) + 1.2).to(device)
        lin = None
    else:
        x0 = (torch.rand(steps, batch, n, generator=g) < 0.1).float().to(device)
        lin = torch.nn.Linear(n, n).to(device)
        with torch.no_grad():
            lin.weight.mul_(8.0)
            lin.bias.fill_(0.5)
    sync = torch.cuda.synchronize if cuda else (lambda: None)  # kernels are asynchronous: wait before a clock

    x = x0.requires_grad_(lin is None)  # the input is made once: its allocation is not part of the layer

    def once():
        x.grad = None
        h = lin(x) if lin is not None else x
        out = layer(h)
        out.sum().backward()
        if lin is not None:
            lin.zero_grad(set_to_none=True)
        return float(out.detach().mean())

    if cuda:
        sync()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sync()
    t = time.perf_counter()
    rate = once()  # warm-up (JIT)
    sync()
    warm = time.perf_counter() - t
    times = []
    for _ in range(repeat):
        sync()
        t = time.perf_counter()
        once()
        sync()
        times.append(time.perf_counter() - t)
    if cuda:
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024.0
    print(json.dumps(dict(median=float(np.median(times)), best=float(np.min(times)), warmup=warm, rate=rate,
                          peak_mb=peak)))


def measure(fw, case, n, args):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", fw, case, str(n), str(args.steps),
           str(args.batch), str(args.repeat), getattr(args, "device", "cpu")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return dict(error=(out.stderr.strip().splitlines() or ["failed"])[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def combine(results):
    """One row from the rounds of a framework: median over rounds of the time, peak memory and warm-up;
    the best single run (the first error if every round failed)."""
    import numpy as np

    ok = [r for r in results if "error" not in r]
    if not ok:
        return results[0]
    return dict(median=float(np.median([r["median"] for r in ok])),
                best=float(min(r.get("best", r["median"]) for r in ok)),
                peak_mb=float(np.median([r["peak_mb"] for r in ok])), rate=ok[0]["rate"],
                warmup=float(np.median([r["warmup"] for r in ok])))


def available(fw, device="cpu"):
    import importlib.util

    if fw in CUDA_ONLY and (device != "cuda" or importlib.util.find_spec(CUDA_ONLY[fw]) is None):
        return False
    return importlib.util.find_spec(MODULES[fw].split(".")[0]) is not None


def cuda_unavailable_reason():
    """``None`` if torch can use a CUDA device here, else why not (one sentence)."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (no CUDA device, no driver, or a CPU-only torch build)"
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="n = 512 and 100 steps only")
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 4096])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every framework this many times, interleaved (a fresh child each time), and "
                         "report the median over rounds: spreads the load of a shared machine evenly")
    ap.add_argument("--cases", nargs="+", default=["layer", "end_to_end"], choices=["layer", "end_to_end"])
    ap.add_argument("--frameworks", nargs="+", default=FRAMEWORKS, choices=FRAMEWORKS)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where the layers run (cuda: synchronised timings, peak torch.cuda memory)")
    args = ap.parse_args(argv)
    if args.child:
        fw, case, n, steps, batch, repeat, device = args.child
        child(fw, case, int(n), int(steps), int(batch), int(repeat), device)
        return 0
    if args.device == "cuda":
        reason = cuda_unavailable_reason()
        if reason is not None:
            print(f"torch_layer.py --device cuda: no GPU to run on: {reason}", file=sys.stderr)
            return 2
    if args.quick:
        args.sizes, args.steps = [512], 100
    fws = [f for f in args.frameworks if available(f, args.device)]
    skipped = [f for f in args.frameworks if f not in fws and not (f in CUDA_ONLY and args.device == "cpu")]
    where = "1 thread" if args.device == "cpu" else "CUDA, synchronised, peak MB = torch.cuda.max_memory_allocated"
    rounds = f", median over {args.rounds} interleaved rounds" if args.rounds > 1 else ""
    print(f"batch {args.batch}, {args.steps} steps, float32, {where}; median of {args.repeat} after warm-up{rounds}; "
          "best: fastest single run")
    if skipped:
        print(f"skipped (not installed, or not for --device {args.device}):", ", ".join(skipped))
    for case in args.cases:
        for n in args.sizes:
            print(f"\n{case}, n = {n}")
            print(f"{'framework':14s} {'time (s)':>9s} {'vs eventsim':>12s} {'best (s)':>9s} {'peak MB':>9s} "
                  f"{'rate':>6s} {'warm-up (s)':>12s}")
            runs = {fw: [] for fw in fws}
            for _ in range(max(1, args.rounds)):
                for fw in fws:
                    runs[fw].append(measure(fw, case, n, args))
            res = {fw: combine(rs) for fw, rs in runs.items()}
            ref = res.get("eventsim", {}).get("median")
            for fw, r in res.items():
                if "error" in r:
                    print(f"{fw:14s} error: {r['error']}")
                    continue
                ratio = f"{r['median'] / ref:11.1f}x" if ref else "-"
                print(f"{fw:14s} {r['median']:9.3f} {ratio:>12s} {r.get('best', r['median']):9.3f} "
                      f"{r['peak_mb']:9.0f} {r['rate']:6.3f} {r['warmup']:12.2f}")
            peers = {fw: r for fw, r in res.items() if fw not in OURS and "median" in r}
            for ours in OURS:
                r = res.get(ours, {})
                if "median" in r and peers:
                    fast = min(peers, key=lambda f: peers[f]["median"])
                    low = min(peers, key=lambda f: peers[f]["peak_mb"])
                    print(f"fastest peer ({fast}) / {ours}: {peers[fast]['median'] / r['median']:.1f}x; "
                          f"peak memory {r['peak_mb']:.0f} MB against the lowest peer's {peers[low]['peak_mb']:.0f} "
                          f"MB ({low})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
