"""Train a small convolutional spiking network on scikit-learn's digits (8x8 images), then simulate it.

The images are rate-coded as in ``train_digits.py`` (pixel ``p`` in 0..16
spikes at each of ``T`` steps with probability ``p / 16 * P_MAX``) and kept
as images, ``x[T, B, 1, 8, 8]``.  The network is an ordinary
``nn.Sequential``; :class:`eventsim.torch.TimeDistributed` runs the
per-image modules over the time and batch axes::

    TimeDistributed(Conv2d(1, 16, 3, padding=1)) -> LIF     # 16 x 8 x 8 neurons
    TimeDistributed(AvgPool2d(2)) -> TimeDistributed(Flatten())
    Linear(256, 10) -> LIF

:func:`eventsim.torch.init_for_spikes` scales the convolution and the
linear layer so that about half of the neurons of both spiking layers
reach the threshold on a first batch.
After training, :func:`eventsim.torch.to_network` exports the whole stack
(the convolution as a sparse projection with one synapse per kernel tap,
the pooling folded into the next weights) to the clock engine, which gives
the same output spikes as the torch forward pass in float64.

Usage::

    python examples/train_conv.py            # full training (a few minutes on 2 cores)
    python examples/train_conv.py --quick    # 2 epochs, to check it runs
"""

import argparse
import time

import numpy as np
import torch
from torch import nn

import eventsim.torch as est

T = 25          # steps per image
DT = 1.0        # ms
P_MAX = 0.5     # spike probability per step of a saturated pixel


def encode(images, rng):
    """Spike trains [T, N, 1, 8, 8] (float32 0/1) for pixel rates [N, 8, 8] in 0..1."""
    s = rng.random((T,) + images.shape) < images[None] * P_MAX
    return torch.tensor(s[:, :, None].astype(np.float32))


def load(seed=0):
    """Digits as images: (train rates [N, 8, 8], y_train, test spike trains [T, N, 1, 8, 8], y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(data.images / 16.0, data.target, test_size=0.2,
                                              random_state=seed, stratify=data.target)
    return x_tr, torch.tensor(y_tr), encode(x_te, np.random.default_rng(seed)), torch.tensor(y_te)


def build(channels=16):
    lif = dict(tau_m=5.0, v_th=1.0, dt=DT, alpha=2.0, return_state=False)
    return nn.Sequential(
        est.TimeDistributed(nn.Conv2d(1, channels, 3, padding=1)), est.LIF(**lif),
        est.TimeDistributed(nn.AvgPool2d(2)), est.TimeDistributed(nn.Flatten()),
        nn.Linear(channels * 4 * 4, 10), est.LIF(**lif))


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).sum(0).argmax(1) == y).float().mean())


def train(model, images, y, x_te, y_te, epochs, batch=64, lr=2e-2, seed=0):
    """Adam on cross-entropy of the output spike counts; returns loss and accuracies per epoch."""
    rng = np.random.default_rng(seed + 1)
    gen = torch.Generator().manual_seed(seed + 2)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    n = images.shape[0]
    hist = {"loss": [], "train": [], "test": []}
    for epoch in range(epochs):
        x = encode(images, rng)
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
    ap.add_argument("--quick", action="store_true", help="train 2 epochs and simulate 60 test images")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default="train_conv.png", help="PNG file for loss and accuracy per epoch")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    x_tr, y_tr, x_te, y_te = load(args.seed)
    model = build()
    est.init_for_spikes(model, encode(x_tr[:256], np.random.default_rng(args.seed)), fraction=0.5)
    print(f"initial test accuracy: {accuracy(model, x_te, y_te):.3f}")
    hist = train(model, x_tr, y_tr, x_te, y_te, 2 if args.quick else args.epochs, seed=args.seed)
    t_train = time.perf_counter() - t0
    plot(hist, args.plot, "eventsim.torch: convolutional SNN on digits")
    # ---- test in torch (float64) and in the clock engine (the export expands the convolution)
    if args.quick:
        x_te, y_te = x_te[:, :60], y_te[:60]
    model = model.double().eval()
    with torch.no_grad():
        counts_torch = model(x_te.double()).sum(0)
    acc_torch = float((counts_torch.argmax(1) == y_te).float().mean())
    t1 = time.perf_counter()
    counts_sim = est.simulate(model, x_te).sum(0)
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
