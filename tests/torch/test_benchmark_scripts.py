"""The torch benchmark scripts run: the composed (nn.Sequential) row of torch_layer.py and the
training-epoch benchmark torch_training.py (tiny sizes; the figures are in the README)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = os.path.join(ROOT, "benchmarks", "peers")


def _run(args, timeout=600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    return subprocess.run([sys.executable] + args, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("fw", ["eventsim", "eventsim-seq"])
def test_torch_layer_composed_row(fw):
    out = _run([os.path.join(PEERS, "torch_layer.py"), "--child", fw, "layer", "32", "20", "2", "2", "cpu"])
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["median"] > 0 and res["best"] <= res["median"] and res["rate"] > 0


def test_torch_layer_rounds_are_combined():
    import runpy

    mod = runpy.run_path(os.path.join(PEERS, "torch_layer.py"), run_name="torch_layer")
    rows = [dict(median=2.0, best=1.5, peak_mb=10.0, rate=0.1, warmup=1.0),
            dict(median=1.0, best=0.9, peak_mb=12.0, rate=0.1, warmup=3.0), dict(error="x")]
    r = mod["combine"](rows)
    assert r["median"] == 1.5 and r["best"] == 0.9 and r["peak_mb"] == 11.0 and r["warmup"] == 2.0
    assert mod["combine"]([dict(error="x")]) == dict(error="x")


def test_torch_training_epoch_benchmark():
    pytest.importorskip("sklearn")
    out = _run([os.path.join(PEERS, "torch_training.py"), "--frameworks", "eventsim", "--epochs", "1"])
    assert out.returncode == 0, out.stderr
    row = [line for line in out.stdout.splitlines() if line.startswith("eventsim")]
    assert row and "error" not in row[0], out.stdout
    s_epoch, acc = float(row[0].split()[1]), float(row[0].split()[-1])
    assert s_epoch > 0 and 0.3 < acc <= 1.0  # two epochs on the digits train well above chance (0.1)
