"""Train a small spiking network on scikit-learn's digits, then run it in the simulator.

The 8x8 digit images (1,797 samples shipped with scikit-learn, no
download) are rate-coded: pixel ``p`` (0..16) spikes at each of ``T`` steps
with probability ``p / 16 * P_MAX`` (fresh draws every training epoch, one fixed
draw for the test set).  The network is
``Linear(64, 128) -> LIF -> Linear(128, 10) -> LIF`` with the exact
integrator (dt = 1 ms, tau_m = 5 ms); the class is the output neuron with the
most spikes, trained with a cross-entropy loss on the spike counts through
SuperSpike surrogate gradients.

After training, the test set runs twice: in torch (float64) and, exported
with :func:`eventsim.torch.to_network`, in the clock engine, one network
copy per test image.  Both give the same spikes, hence the same accuracy.

Usage::

    python examples/train_digits.py           # full training (about 1 minute on 2 cores)
    python examples/train_digits.py --quick   # a few epochs, to check it runs
"""

import argparse
import time

import numpy as np
import torch

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
    lif = dict(tau_m=5.0, v_th=1.0, v_reset=0.0, dt=DT, surrogate="superspike", alpha=2.0)
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), est.LIF(**lif),
                               torch.nn.Linear(hidden, 10), est.LIF(**lif))


def run(model, x):
    """Spike counts of the output layer, [N, 10]."""
    h = x
    for layer in model:
        h = layer(h)[0] if isinstance(layer, est.LIF) else layer(h)
    return h.sum(0)


def train(model, rates, y, epochs, batch=64, lr=5e-3, seed=0):
    """Adam on cross-entropy of the output spike counts; fresh input spike trains every epoch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    n = rates.shape[0]
    for epoch in range(epochs):
        x = encode(rates, rng)
        perm = torch.randperm(n)
        total, correct = 0.0, 0
        for k in range(0, n, batch):
            idx = perm[k:k + batch]
            counts = run(model, x[:, idx])
            loss = torch.nn.functional.cross_entropy(counts * 0.5, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * idx.numel()
            correct += int((counts.argmax(1) == y[idx]).sum())
        sched.step()
        print(f"epoch {epoch + 1:2d}: loss {total / n:.3f}, train accuracy {correct / n:.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="train 8 epochs only")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    x_tr, y_tr, x_te, y_te = load()
    model = build()
    train(model, x_tr, y_tr, 8 if args.quick else args.epochs)
    t_train = time.perf_counter() - t0
    # ---- test: torch (float64, the engine's precision) and the clock engine
    model = model.double().eval()
    with torch.no_grad():
        counts_torch = run(model, x_te.double())
    acc_torch = float((counts_torch.argmax(1) == y_te).float().mean())
    t1 = time.perf_counter()
    out = est.simulate(model, x_te)              # [T, N, 10], aligned with torch's time axis
    counts_sim = out.sum(0)
    acc_sim = float((counts_sim.argmax(1) == y_te).float().mean())
    t_sim = time.perf_counter() - t1
    same = torch.equal(counts_sim, counts_torch)
    print(f"training: {t_train:.1f} s")
    print(f"test accuracy, torch forward pass: {acc_torch:.4f}")
    print(f"test accuracy, eventsim clock engine: {acc_sim:.4f} ({t_sim:.1f} s for {x_te.shape[1]} network copies)")
    print(f"identical output spike counts: {same}")
    if not args.quick and acc_sim < 0.9:
        raise SystemExit("accuracy below 90%")
    if not same:
        raise SystemExit("the simulator's spikes differ from torch's")


if __name__ == "__main__":
    main()
