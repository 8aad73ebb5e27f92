"""Training epoch on scikit-learn's digits: eventsim.torch against snnTorch, norse and SpikingJelly.

The same network in each framework, as ``examples/train_digits.py`` trains it::

    Linear(64, 128) -> LIF -> Linear(128, 10) -> LIF      (tau_m = 5 steps, threshold 1, reset to 0)

on the 1,437 training images of the 8x8 digits, rate-coded over ``T = 30``
steps (fresh spike trains each epoch, drawn before the clock starts),
mini-batches of 64, Adam (lr 5e-3) on the cross-entropy of the output spike
counts, float32.  One epoch is 23 forward and backward passes and optimiser
steps.  Each framework runs its idiomatic multi-step form: eventsim an
``nn.Sequential`` of ``nn.Linear`` and spikes-only ``LIF`` layers
(``return_state=False``, weights scaled once by ``init_for_spikes``);
snnTorch ``Leaky`` and norse ``LIFBoxCell`` in a loop over ``x.unbind(0)``
after a ``Linear`` over the whole sequence (their fastest forms, as in
``torch_layer.py``); SpikingJelly ``layer.Linear`` and ``neuron.LIFNode`` in
multi-step mode (``step_mode="m"``, torch backend).  The peers keep their
default initialisation and surrogates.

Each framework runs in its own child process (``--threads`` threads for
torch, Numba and OpenMP; default 1) with one warm-up epoch (JIT
compilation), then ``--epochs`` timed epochs; the table gives the median
time per epoch, the test accuracy after all epochs (a check that the
network trains, not a comparison of the models) and the child's peak
resident memory above its level before training.  Missing libraries are
listed as skipped (``pip install 'eventsim[torch-peers]'``).

Usage::

    python benchmarks/peers/torch_training.py
    python benchmarks/peers/torch_training.py --epochs 5 --threads 2
    python benchmarks/peers/torch_training.py --frameworks eventsim snntorch
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

FRAMEWORKS = ["eventsim", "snntorch", "norse", "spikingjelly"]
MODULES = {"eventsim": "eventsim", "snntorch": "snntorch", "norse": "norse", "spikingjelly": "spikingjelly"}
T = 30            # steps per image
P_MAX = 0.5       # spike probability per step of a saturated pixel
TAU = 5.0         # membrane time constant (steps; dt = 1 ms)
HIDDEN = 128
BATCH = 64


def load(seed=0):
    """(train pixel rates [N, 64] in 0..1, train labels, test pixel rates, test labels) as NumPy arrays."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    return train_test_split(data.data / 16.0, data.target, test_size=0.2, random_state=seed, stratify=data.target)


def encode(rates, rng):
    import numpy as np
    import torch

    return torch.tensor((rng.random((T,) + rates.shape) < rates[None] * P_MAX).astype(np.float32))


def make_model(fw, x_sample):
    """``model(x [T, B, 64]) -> output spikes [T, B, 10]`` for one framework (an nn.Module)."""
    import math

    import torch
    from torch import nn

    beta = math.exp(-1.0 / TAU)
    if fw == "eventsim":
        import eventsim.torch as est

        lif = dict(tau_m=TAU, v_th=1.0, v_reset=0.0, dt=1.0, surrogate="superspike", alpha=2.0, return_state=False)
        model = nn.Sequential(nn.Linear(64, HIDDEN), est.LIF(**lif), nn.Linear(HIDDEN, 10), est.LIF(**lif))
        est.init_for_spikes(model, x_sample)
        return model
    if fw == "spikingjelly":
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        net = nn.Sequential(layer.Linear(64, HIDDEN), neuron.LIFNode(tau=TAU, surrogate_function=surrogate.Sigmoid()),
                            layer.Linear(HIDDEN, 10), neuron.LIFNode(tau=TAU, surrogate_function=surrogate.Sigmoid()))
        functional.set_step_mode(net, "m")

        class Reset(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, x):
                functional.reset_net(self.net)
                return self.net(x)
        return Reset()

    class Loop(nn.Module):
        """Linear over the whole sequence, then the neuron cell in a loop over ``unbind(0)``."""

        def __init__(self, cells):
            super().__init__()
            self.fc = nn.ModuleList([nn.Linear(64, HIDDEN), nn.Linear(HIDDEN, 10)])
            self.cells = nn.ModuleList(cells)

        def forward(self, x):
            for fc, cell in zip(self.fc, self.cells):
                h = fc(x)
                out = []
                if fw == "snntorch":
                    mem = torch.zeros_like(h[0])
                    for ht in h.unbind(0):
                        z, mem = cell(ht, mem)
                        out.append(z)
                else:
                    state = None
                    for ht in h.unbind(0):
                        z, state = cell(ht, state)
                        out.append(z)
                x = torch.stack(out)
            return x

    if fw == "snntorch":
        import snntorch

        return Loop([snntorch.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero") for _ in range(2)])
    from norse.torch.module.lif_box import LIFBoxCell, LIFBoxParameters

    return Loop([LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.as_tensor(1000.0 / TAU), method="super"))
                 for _ in range(2)])


def child(fw, epochs, threads, seed=0):
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x_tr, x_te, y_tr, y_te = load(seed)
    y_tr, y_te = torch.tensor(y_tr), torch.tensor(y_te)
    rng = np.random.default_rng(seed + 1)
    gen = torch.Generator().manual_seed(seed + 2)
    test = encode(x_te, np.random.default_rng(seed))
    model = make_model(fw, encode(x_tr[:BATCH], np.random.default_rng(seed + 3)))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    n = x_tr.shape[0]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def epoch():
        x = encode(x_tr, rng)  # drawn before the clock starts
        perm = torch.randperm(n, generator=gen)
        t0 = time.perf_counter()
        total = 0.0
        for k in range(0, n, BATCH):
            idx = perm[k:k + BATCH]
            counts = model(x[:, idx]).sum(0)
            loss = nn.functional.cross_entropy(counts * 0.5, y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
        return time.perf_counter() - t0, total / n

    warm, loss0 = epoch()
    times, losses = [], [loss0]
    for _ in range(epochs):
        t, loss = epoch()
        times.append(t)
        losses.append(loss)
    with torch.no_grad():
        acc = float((model(test).sum(0).argmax(1) == y_te).float().mean())
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024.0
    print(json.dumps(dict(median=float(np.median(times)), times=times, warmup=warm, losses=losses, accuracy=acc,
                          peak_mb=peak)))


def measure(fw, args):
    t = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=t, MKL_NUM_THREADS=t, NUMBA_NUM_THREADS=t)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", fw, str(args.epochs), t]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return dict(error=(out.stderr.strip().splitlines() or ["failed"])[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def combine(results):
    """One row from the rounds of a framework: medians over rounds, the fastest single epoch, the first
    round's test accuracy (every round trains from the same seed)."""
    import numpy as np

    ok = [r for r in results if "error" not in r]
    if not ok:
        return results[0]
    return dict(median=float(np.median([r["median"] for r in ok])), best=float(min(min(r["times"]) for r in ok)),
                warmup=float(np.median([r["warmup"] for r in ok])),
                peak_mb=float(np.median([r["peak_mb"] for r in ok])), accuracy=ok[0]["accuracy"])


def available(fw):
    import importlib.util

    return importlib.util.find_spec(MODULES[fw]) is not None and importlib.util.find_spec("sklearn") is not None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every framework this many times, interleaved (a fresh child each time), and report "
                         "the median over rounds: spreads the load of a shared machine evenly")
    ap.add_argument("--frameworks", nargs="+", default=FRAMEWORKS, choices=FRAMEWORKS)
    args = ap.parse_args(argv)
    if args.child:
        fw, epochs, threads = args.child
        child(fw, int(epochs), int(threads))
        return 0
    fws = [f for f in args.frameworks if available(f)]
    skipped = [f for f in args.frameworks if f not in fws]
    rounds = f", median over {args.rounds} interleaved rounds" if args.rounds > 1 else ""
    print(f"digits MLP 64-{HIDDEN}-10, T = {T}, batch {BATCH}, 23 batches per epoch, float32, {args.threads} "
          f"thread(s); median of {args.epochs} epochs after a warm-up epoch{rounds}; best: fastest single epoch")
    if skipped:
        print("skipped (not installed):", ", ".join(skipped))
    print(f"{'framework':14s} {'s / epoch':>10s} {'vs eventsim':>12s} {'best (s)':>9s} {'warm-up (s)':>12s} "
          f"{'peak MB':>8s} {'test acc.':>10s}")
    runs = {fw: [] for fw in fws}
    for _ in range(max(1, args.rounds)):
        for fw in fws:
            runs[fw].append(measure(fw, args))
    res = {fw: combine(rs) for fw, rs in runs.items()}
    ref = res.get("eventsim", {}).get("median")
    for fw, r in res.items():
        if "error" in r:
            print(f"{fw:14s} error: {r['error']}")
            continue
        ratio = f"{r['median'] / ref:11.1f}x" if ref else "-"
        print(f"{fw:14s} {r['median']:10.3f} {ratio:>12s} {r['best']:9.3f} {r['warmup']:12.2f} {r['peak_mb']:8.0f} "
              f"{r['accuracy']:10.3f}")
    peers = [r["median"] for fw, r in res.items() if fw != "eventsim" and "median" in r]
    if ref and peers:
        print(f"fastest peer / eventsim: {min(peers) / ref:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
