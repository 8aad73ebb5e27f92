"""benchmarks/gpu_check.py and benchmarks/peers/torch_layer.py --device: runnable, robust, honest about skips.

``gpu_check.py --smoke`` runs every phase on numba-cuda's simulator with tiny
sizes, so the script that is run once on a lent GPU cannot rot unnoticed.
"""

import argparse
import importlib.util
import json
import os
import runpy
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPU_CHECK = os.path.join(ROOT, "benchmarks", "gpu_check.py")
TORCH_LAYER = os.path.join(ROOT, "benchmarks", "peers", "torch_layer.py")
HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _run(args, env_extra=None, timeout=600):
    # the pytest that gpu_check.py runs (its "tests" phase) in this process rather than on one worker per core
    env = dict(os.environ, PYTEST_ADDOPTS="-n 0", **(env_extra or {}))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
def test_gpu_check_smoke_on_the_simulator(tmp_path):
    out_json = tmp_path / "figures.json"
    out = _run([GPU_CHECK, "--smoke", "--dtypes", "float64", "--out", str(out_json)], {"NUMBA_ENABLE_CUDASIM": "1"})
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out_json.read_text())
    assert doc["smoke"] is True
    phases = doc["phases"]
    assert list(phases) == ["env", "tests", "networks", "torch", "cpu"], phases
    for name, p in phases.items():
        assert p["status"] in ("ok", "skipped"), (name, p)
        assert f"[{name}] {p['status']} in " in out.stdout  # each phase's time is printed
    # the gpu-marked tests were collected and skipped (no real GPU), not broken
    assert doc["tests"]["rc"] == 0 and doc["tests"]["counts"].get("skipped", 0) >= 5, doc["tests"]
    runs = {(r["network"], r["backend"], r["dtype"]): r for r in doc["networks"]}
    assert set(runs) == {(n, b, "float64") for n in ("brunel", "microcircuit") for b in ("cuda", "cpu")}, runs
    for key, r in runs.items():
        assert r["n_neurons"] > 0 and r["events"] > 0 and r["sim_s"] > 0, (key, r)
        assert r["rtf"] == pytest.approx(r["sim_s"] / ((r["t_sim_ms"] - 0.1) * 1e-3)), (key, r)
    if HAS_TORCH:
        rows = doc["torch_layer"][0]["rows"]
        assert rows["eventsim"]["median"] > 0 and rows["torch"]["median"] > 0, rows
    else:
        assert phases["torch"]["status"] == "skipped"
    # targets are reported, never judged on the simulator
    assert len(doc["targets"]) == 3 and all(t["met"] is None for t in doc["targets"]), doc["targets"]
    assert "target" in out.stdout and "real-time factor" in out.stdout


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
def test_gpu_check_failed_runs_do_not_stop_the_others(tmp_path):
    """Every run that exceeds its time limit is killed and recorded; later phases still run; exit status 1."""
    out_json = tmp_path / "figures.json"
    out = _run([GPU_CHECK, "--smoke", "--parts", "networks", "env", "--dtypes", "float32", "--run-timeout", "0.01",
                "--out", str(out_json)], {"NUMBA_ENABLE_CUDASIM": "1"})
    assert out.returncode == 1, out.stdout + out.stderr
    doc = json.loads(out_json.read_text())
    assert doc["phases"]["networks"]["status"] == "failed"
    assert doc["phases"]["env"]["status"] == "ok"
    assert len(doc["networks"]) == 2 and all("timed out" in r["error"] for r in doc["networks"]), doc["networks"]
    assert "error: timed out" in out.stdout  # the table still shows them


def test_gpu_check_phase_isolation_and_budget(tmp_path):
    """A phase that raises is recorded as failed with its message; a phase past the budget is skipped."""
    mod = runpy.run_path(GPU_CHECK, run_name="gpu_check")
    args = argparse.Namespace(smoke=True, budget=1e6, out=str(tmp_path / "x.json"), parts=["env", "tests"])
    check = mod["Check"](args)

    def boom():
        raise RuntimeError("driver exploded")

    check.phase("env", boom)
    check.phase("tests", lambda: ("ok", "fine"))
    check.phase("cpu", lambda: ("ok", ""))  # not asked for: not run
    doc = json.loads((tmp_path / "x.json").read_text())
    assert doc["phases"]["env"] == dict(status="failed", seconds=doc["phases"]["env"]["seconds"],
                                        message="RuntimeError: driver exploded")
    assert doc["phases"]["tests"]["status"] == "ok" and "cpu" not in doc["phases"]
    args.budget = 0.0
    check.phase("tests", lambda: ("ok", "must not run"))
    assert check.doc["phases"]["tests"]["status"] == "skipped" and "out of time" in check.doc["phases"]["tests"][
        "message"]


def test_gpu_check_rejects_bad_arguments():
    out = _run([GPU_CHECK, "--parts", "networks", "gpu"])
    assert out.returncode == 2 and "invalid choice" in out.stderr
    out = _run([GPU_CHECK, "--t-sim", "0"])
    assert out.returncode == 2 and "--t-sim" in out.stderr


# ---------------------------------------------------------------------- torch_layer.py --device
def test_torch_layer_device_argument():
    out = _run([TORCH_LAYER, "--device", "gpu"])
    assert out.returncode == 2 and "invalid choice: 'gpu'" in out.stderr


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_torch_layer_without_gpu_exits_cleanly():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    out = _run([TORCH_LAYER, "--device", "cuda", "--sizes", "64", "--steps", "5", "--repeat", "1"])
    assert out.returncode == 2, out.stdout + out.stderr
    assert "no GPU to run on" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""  # nothing measured, nothing half-printed


def test_torch_layer_passes_the_device_to_each_child(monkeypatch):
    mod = runpy.run_path(TORCH_LAYER, run_name="torch_layer")
    seen = []

    def fake_run(cmd, **kw):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout='{"median": 1.0}\n', stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    args = argparse.Namespace(steps=7, batch=3, repeat=2, device="cuda")
    assert mod["measure"]("eventsim", "layer", 128, args) == {"median": 1.0}
    assert seen[0][-8:] == ["--child", "eventsim", "layer", "128", "7", "3", "2", "cuda"], seen
    # SpikingJelly's CuPy backend is a GPU-only row
    assert not mod["available"]("spikingjelly-cupy", "cpu")


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_torch_layer_child_on_cpu():
    out = _run([TORCH_LAYER, "--child", "torch", "layer", "32", "4", "2", "1", "cpu"], timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["median"] > 0 and 0.0 <= res["rate"] <= 1.0 and res["peak_mb"] >= 0, res


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_torch_layer_on_gpu():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    out = _run([TORCH_LAYER, "--device", "cuda", "--frameworks", "eventsim", "torch", "--sizes", "256", "--steps",
                "20", "--repeat", "1", "--cases", "layer"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "synchronised" in out.stdout and "error" not in out.stdout, out.stdout
