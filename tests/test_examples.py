"""The examples run (quick mode) and produce sensible numbers."""

import os
import runpy
import sys

import pytest

EX = os.path.join(os.path.dirname(__file__), "..", "examples")


def load(name):
    return runpy.run_path(os.path.join(EX, name))


def test_brunel_quick(tmp_path):
    mod = load("brunel2000.py")
    rate = mod["main"](["--quick", "--t-sim", "100", "--plot", str(tmp_path / "b.png")])
    assert 5.0 < rate < 100.0
    pytest.importorskip("matplotlib")
    assert (tmp_path / "b.png").stat().st_size > 1000


def test_cuba_quick():
    mod = load("cuba.py")
    rate = mod["main"](["--quick"])
    assert 1.0 < rate < 50.0
