"""The training examples run in quick mode without warnings, learn from the first epoch, write their
PNG, give the simulator's spikes, and repeat exactly for a seed."""

import os
import runpy
import warnings

import numpy as np
import pytest
import torch

import eventsim.torch as est

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

EX = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def _load(name):
    return runpy.run_path(os.path.join(EX, name))


@pytest.mark.parametrize("name", ["train_digits.py", "train_conv.py"])
def test_quick_run(name, tmp_path):
    mod = _load(name)
    png = tmp_path / "curves.png"
    threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = mod["main"](["--quick", "--plot", str(png)])
    finally:
        torch.set_num_threads(threads)
    assert out["identical"]
    test_acc = out["history"]["test"]
    assert test_acc[0] > 0.25, test_acc  # learns in the first epoch (chance: 0.1)
    assert test_acc[-1] > 0.5, test_acc
    assert png.stat().st_size > 5000


@pytest.mark.parametrize("name", ["train_digits.py", "train_conv.py"])
def test_training_repeats_for_a_seed(name):
    mod = _load(name)
    x_tr, y_tr, x_te, y_te = mod["load"](0)
    x_tr, y_tr = x_tr[:200], y_tr[:200]
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = mod["build"]()
        est.init_for_spikes(model, mod["encode"](x_tr[:64], np.random.default_rng(3)))
        hist = mod["train"](model, x_tr, y_tr, x_te[:, :50], y_te[:50], 1, seed=3)
        runs.append((hist, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
