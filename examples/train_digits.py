"""Train a small spiking network on scikit-learn's digits, then run it in the simulator.

The 8x8 digit images (1,797 samples shipped with scikit-learn, no
download) are rate-coded: pixel ``p`` (0..16) spikes at each of ``T`` steps
with probability ``p / 16 * P_MAX`` (fresh draws every training epoch, one fixed
draw for the test set).  The network is an ordinary ``nn.Sequential``::

    Linear(64, 128) -> LIF -> Linear(128, 10) -> LIF

with the spikes-only layers (``return_state=False``) and the exact
integrator (dt = 1 ms, tau_m = 5 ms).  The exact integrator takes its input
as a current: one step moves the membrane by only ``(1 - exp(-dt/tau_m))``
times the input, so default ``nn.Linear`` weights leave the network silent;
:func:`eventsim.torch.init_for_spikes` rescales them on one batch so that
both layers fire, and the network learns from the first epoch.  The class
is the output neuron with the most spikes, trained with a cross-entropy
loss on the spike counts through SuperSpike surrogate gradients.

After training, the test set runs twice: in torch (float64) and, exported
with :func:`eventsim.torch.to_network`, in the clock engine, one network
copy per test image.  Both give the same spikes, hence the same accuracy.
The run is reproducible for a given ``--seed`` and writes the loss and
accuracy per epoch to a PNG.

Usage::

    python examples/train_digits.py           # full training (about 1 minute on 2 cores)
    python examples/train_digits.py --quick   # 3 epochs, to check it runs
"""

import argparse
import time

import numpy as np
import torch
from torch import nn

import eventsim.torch as est

T = 30          # steps per image
DT = 1.0        # ms
P_MAX = 0.5     # spike probability per step of a saturated pixel


def encode(rates, rng):
    """Spike trains [T, N, 64] (float32 0/1) for pixel rates [N, 64] in 0..1."""
    return torch.tensor((rng.random((T,) + rates.shape) < rates[None] * P_MAX).astype(np.float32))


def load(seed=0):
    """Digits: (train pixel rates [N, 64], y_train, test spike trains [T, N, 64], y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(data.data / 16.0, data.target, test_size=0.2,
                                              random_state=seed, stratify=data.target)
    return x_tr, torch.tensor(y_tr), encode(x_te, np.random.default_rng(seed)), torch.tensor(y_te)


def build(hidden=128):
    """The network: a plain nn.Sequential of nn.Linear and spikes-only LIF layers."""
    lif = dict(tau_m=5.0, v_th=1.0, v_reset=0.0, dt=DT, surrogate="superspike", alpha=2.0, return_state=False)
    return nn.Sequential(nn.Linear(64, hidden), est.LIF(**lif), nn.Linear(hidden, 10), est.LIF(**lif))


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).sum(0).argmax(1) == y).float().mean())


def train(model, rates, y, x_te, y_te, epochs, batch=64, lr=5e-3, seed=0):
    """Adam on cross-entropy of the output spike counts; fresh input spike trains every epoch.

    Returns the history: per epoch, mean training loss, training and test accuracy.
    """
    rng = np.random.default_rng(seed + 1)
    gen = torch.Generator().manual_seed(seed + 2)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    n = rates.shape[0]
    hist = {"loss": [], "train": [], "test": []}
    for epoch in range(epochs):
        x = encode(rates, rng)
        perm = torch.randperm(n, generator=gen)
        total, correct = 0.0, 0
        for k in range(0, n, batch):
            idx = perm[k:k + batch]
            counts = model(x[:, idx]).sum(0)
            loss = nn.functional.cross_entropy(counts * 0.5, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
            correct += int((counts.argmax(1) == y[idx]).sum())
        sched.step()
        hist["loss"].append(total / n)
        hist["train"].append(correct / n)
        hist["test"].append(accuracy(model, x_te, y_te))
        print(f"epoch {epoch + 1:2d}: loss {hist['loss'][-1]:.3f}, train accuracy {hist['train'][-1]:.3f}, "
              f"test accuracy {hist['test'][-1]:.3f}")
    return hist


def plot(hist, path, title):
    """Loss and accuracy per epoch, written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = np.arange(1, len(hist["loss"]) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    a.plot(ep, hist["loss"], "o-")
    a.set(xlabel="epoch", ylabel="training loss (cross-entropy)")
    b.plot(ep, hist["train"], "o-", label="train")
    b.plot(ep, hist["test"], "s-", label="test")
    b.axhline(0.1, color="0.6", ls=":", label="chance")
    b.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    b.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="train 3 epochs only")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default="train_digits.png", help="PNG file for loss and accuracy per epoch")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    x_tr, y_tr, x_te, y_te = load(args.seed)
    model = build()
    est.init_for_spikes(model, encode(x_tr[:256], np.random.default_rng(args.seed)))
    print(f"initial test accuracy: {accuracy(model, x_te, y_te):.3f}")
    hist = train(model, x_tr, y_tr, x_te, y_te, 3 if args.quick else args.epochs, seed=args.seed)
    t_train = time.perf_counter() - t0
    plot(hist, args.plot, "eventsim.torch: spiking MLP on digits")
    # ---- test: torch (float64, the engine's precision) and the clock engine
    model = model.double().eval()
    with torch.no_grad():
        counts_torch = model(x_te.double()).sum(0)
    acc_torch = float((counts_torch.argmax(1) == y_te).float().mean())
    t1 = time.perf_counter()
    out = est.simulate(model, x_te)              # [T, N, 10], aligned with torch's time axis
    counts_sim = out.sum(0)
    acc_sim = float((counts_sim.argmax(1) == y_te).float().mean())
    t_sim = time.perf_counter() - t1
    same = torch.equal(counts_sim, counts_torch)
    print(f"training: {t_train:.1f} s; loss and accuracy per epoch in {args.plot}")
    print(f"test accuracy, torch forward pass: {acc_torch:.4f}")
    print(f"test accuracy, eventsim clock engine: {acc_sim:.4f} ({t_sim:.1f} s for {x_te.shape[1]} network copies)")
    print(f"identical output spike counts: {same}")
    if not args.quick and acc_sim < 0.9:
        raise SystemExit("accuracy below 90%")
    if not same:
        raise SystemExit("the simulator's spikes differ from torch's")
    return dict(history=hist, test_accuracy=acc_sim, identical=same)


if __name__ == "__main__":
    main()
