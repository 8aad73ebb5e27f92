"""Every GPU figure of eventsim in one prepared run: tests, networks and the torch layer, timed phase by phase.

Meant for a machine with one CUDA GPU that is lent for a few minutes and
starts cold: one command, no debugging.  Phases, in this order:

``install`` (``--install``)
    ``pip install -e '.[test,torch,cuda]'`` (``--peers`` adds SpikingJelly and
    CuPy for CUDA 12).
``env``
    Python, NumPy, Numba, numba-cuda, torch versions; the GPU's name and memory
    (``nvidia-smi``); CPU cores.
``tests``
    ``pytest -m gpu`` on the CUDA test files: float64 bit-identity of the clock
    engine on the GPU with the CPU engine, the float32 tolerance test, the
    interrupt test, and the torch CUDA kernels' parity and gradients.
``networks``
    Brunel (2000) and the full-scale Potjans & Diesmann (2014) microcircuit,
    1 s each, in float32 and float64 on the GPU: build time, first step
    (plan, upload, kernel compilation), wall time of the rest, real-time factor
    (wall / biological time), synaptic events per second and device memory.
``torch``
    One LIF layer, forward + backward, batch 16, 500 steps, n = 4,096 and
    16,384 on the GPU (``benchmarks/peers/torch_layer.py --device cuda``):
    eventsim against a pure-torch loop and SpikingJelly (torch backend, and
    its CuPy backend when CuPy is installed) in the same run.
``cpu``
    The same networks on this machine's CPU (all cores), for the ratios.

Every network run and every torch row runs in its own process with a time
limit, so a crash, a hang or an out-of-memory error costs that part only.  A
part whose optional dependency is missing (no GPU, no torch, no peer
library) is skipped with a message.  The run stops starting new parts when
``--budget`` seconds have passed.  The JSON file (``--out``) is rewritten
after every phase (a temporary file renamed over it), so an interrupted run
keeps what it measured; a short table is printed at the end, with the
issue's targets (microcircuit real-time factor <= 0.3 in float32, Brunel
1 s simulated in < 0.1 s, the eventsim layer at n = 16,384 no slower than
SpikingJelly's CuPy backend).

``--smoke`` runs every phase on numba-cuda's simulator
(``NUMBA_ENABLE_CUDASIM=1``) with tiny sizes, the torch layer on the CPU:
it checks that the script works (CI runs it so), not the speed.

Usage::

    python benchmarks/gpu_check.py                       # on the GPU machine (about 8 min budget)
    python benchmarks/gpu_check.py --install --peers     # install first (needs the package index)
    python benchmarks/gpu_check.py --parts networks torch --out figures.json
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu_check.py --smoke --out /tmp/smoke.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PARTS = ["install", "env", "tests", "networks", "torch", "cpu"]
#: test files that hold the ``gpu``-marked tests
GPU_TESTS = ["tests/test_cuda.py", "tests/test_float32.py", "tests/test_interrupt_cuda.py",
             "tests/torch/test_cuda_sim.py", "tests/test_gpu_check_smoke.py"]
#: (name in the JSON, builder in benchmarks/gpu.py, full scale, smoke scale)
NETWORKS = [("brunel", "brunel", 1.0, 0.004), ("microcircuit", "microcircuit", 1.0, 0.002)]
#: targets (H100/H200 class): microcircuit real-time factor in float32, Brunel 1 s simulated (s)
TARGET_RTF_MICROCIRCUIT_F32 = 0.3
TARGET_BRUNEL_SIM_S = 0.1


# ---------------------------------------------------------------------- processes
def run_limited(cmd, timeout, env=None):
    """Run ``cmd`` in its own process group; kill the group after ``timeout`` s.

    Returns
    -------
    rc : int or None
        Exit status, None on timeout.
    out : str
        stdout and stderr together.
    seconds : float
        Wall time (s).
    """
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=max(timeout, 1e-3))  # (no floor of 1 s: a fast child beat it)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        rc = None
    return rc, out, time.perf_counter() - t0


def last_json(out):
    """The last line of ``out`` that parses as a JSON object, else None."""
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def tail(out, n=6):
    return "\n".join(out.strip().splitlines()[-n:])


# ---------------------------------------------------------------------- children
def network_child(name, builder, scale, backend, dtype, t_sim):
    """Build one network, run it ``t_sim`` ms, print one JSON line of figures (times in s, memory in MiB)."""
    from eventsim.engines import clock_cuda

    gpu_py = runpy.run_path(os.path.join(HERE, "gpu.py"), run_name="gpu_benchmark")
    on_gpu = backend == "cuda" and not clock_cuda.simulator_enabled()
    sync = clock_cuda._sync if backend == "cuda" else (lambda: None)
    mem = None
    if on_gpu:
        from numba import cuda

        def mem():
            free, total = cuda.current_context().get_memory_info()
            return total - free, total
        used0 = mem()[0]
    t0 = time.perf_counter()
    net, recs = gpu_py[builder](scale, backend, dtype)
    t1 = time.perf_counter()
    net.run(net.dt)  # plan, upload, kernel compilation
    sync()
    t2 = time.perf_counter()
    net.run(t_sim - net.dt)
    sync()
    t3 = time.perf_counter()
    bio = (t_sim - net.dt) * 1e-3
    sim = t3 - t2
    ev = int(sum(net.synaptic_events))
    res = dict(network=name, scale=scale, backend=backend, dtype=dtype, t_sim_ms=t_sim,
               n_neurons=int(net.n_neurons), n_synapses=int(net.n_synapses), build_s=t1 - t0,
               first_step_s=t2 - t1, sim_s=sim, rtf=sim / bio, events=ev, events_per_s=ev / max(sim, 1e-12),
               rate_hz=sum(len(r) for r in recs) / max(net.n_neurons, 1) / (t_sim * 1e-3))
    if on_gpu:
        used, total = mem()
        eng = clock_cuda.engine_of(net._plan)
        res.update(device_mem_mib=(used - used0) / 2**20, device_arrays_mib=eng.memory_bytes() / 2**20,
                   device_total_mib=total / 2**20, partitions=int(eng.T))
    if backend == "cpu":
        import numba

        res["threads"] = numba.get_num_threads()
    print(json.dumps(res))


def torch_child(device, n, steps, batch, repeat, frameworks):
    """Measure one layer size with benchmarks/peers/torch_layer.py's ``measure``; print one JSON line."""
    tl = runpy.run_path(os.path.join(HERE, "peers", "torch_layer.py"), run_name="torch_layer")
    args = argparse.Namespace(steps=steps, batch=batch, repeat=repeat, device=device)
    rows, skipped = {}, []
    for fw in frameworks:
        if not tl["available"](fw, device):
            skipped.append(fw)
            continue
        rows[fw] = tl["measure"](fw, "layer", n, args)
    print(json.dumps(dict(n=n, device=device, steps=steps, batch=batch, rows=rows, skipped=skipped)))


# ---------------------------------------------------------------------- the check
class Check:
    """State of one run: the JSON document, the clock and the budget."""

    def __init__(self, args):
        self.args = args
        self.t0 = time.perf_counter()
        self.env = dict(os.environ)
        if args.smoke:
            self.env["NUMBA_ENABLE_CUDASIM"] = "1"
        self.doc = dict(smoke=bool(args.smoke), started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), budget_s=args.budget,
                        phases={}, env={}, tests={}, networks=[], torch_layer=[], targets=[])

    def left(self):
        return self.args.budget - (time.perf_counter() - self.t0)

    def save(self):
        out = os.path.abspath(self.args.out)
        fd, tmp = tempfile.mkstemp(prefix=".gpu_check.", suffix=".json", dir=os.path.dirname(out) or ".")
        with os.fdopen(fd, "w") as f:
            json.dump(self.doc, f, indent=1)
        os.replace(tmp, out)

    def phase(self, name, fn):
        """Run phase ``name`` (skipped if not asked for or out of time); record status, message and time."""
        if name not in self.args.parts:
            return
        if self.left() <= 0:
            self.doc["phases"][name] = dict(status="skipped", seconds=0.0,
                                            message=f"out of time (--budget {self.args.budget:.0f} s)")
            print(f"[{name}] skipped: out of time", flush=True)
            self.save()
            return
        print(f"[{name}] ...", flush=True)
        t = time.perf_counter()
        try:
            status, message = fn()
        except Exception as exc:  # noqa: BLE001 - a failing phase must not stop the others
            status, message = "failed", f"{type(exc).__name__}: {exc}"
        dt = time.perf_counter() - t
        self.doc["phases"][name] = dict(status=status, seconds=dt, message=message)
        print(f"[{name}] {status} in {dt:.1f} s{': ' + message if message else ''}", flush=True)
        self.save()

    # -------------------------------------------------------------- phases
    def install(self):
        cmd = [sys.executable, "-m", "pip", "install", "-q", "-e", ".[test,torch,cuda]"]
        rc, out, _ = run_limited(cmd, min(300, self.left()), self.env)
        msg = "eventsim[test,torch,cuda]: " + ("installed" if rc == 0 else f"failed ({tail(out, 2)})")
        if self.args.peers:
            rc2, out2, _ = run_limited([sys.executable, "-m", "pip", "install", "-q", "spikingjelly", "cupy-cuda12x"],
                                       min(180, self.left()), self.env)
            msg += "; peers: " + ("installed" if rc2 == 0 else f"not installed ({tail(out2, 1)})")
        return ("ok" if rc == 0 else "failed"), msg

    def environment(self):
        code = ("import json, sys, platform, importlib.metadata as m\n"
                "v = {}\n"
                "for p in ('numpy', 'numba', 'numba-cuda', 'torch', 'spikingjelly', 'cupy-cuda12x', 'cuda-bindings'):\n"
                "    try:\n        v[p] = m.version(p)\n    except m.PackageNotFoundError:\n        v[p] = None\n"
                "g = None\n"
                "try:\n"
                "    from eventsim.engines import clock_cuda\n"
                "    g = clock_cuda.unavailable_reason()\n"
                "except Exception as e:\n    g = repr(e)\n"
                "print(json.dumps(dict(python=sys.version.split()[0], packages=v, cuda_unusable=g)))\n")
        rc, out, _ = run_limited([sys.executable, "-c", code], min(120, self.left()), self.env)
        env = last_json(out) or dict(error=tail(out))
        env.update(machine=platform.machine(), cpu_count=os.cpu_count(), simulator=bool(self.args.smoke))
        smi = shutil.which("nvidia-smi")
        if smi:
            rc2, out2, _ = run_limited([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                                       30)
            env["gpu"] = out2.strip() if rc2 == 0 else None
        else:
            env["gpu"] = None
        self.doc["env"] = env
        gpu = env.get("gpu") or ("numba-cuda simulator" if self.args.smoke else "none")
        return "ok", f"GPU: {gpu}; CUDA backend: {env.get('cuda_unusable') or 'usable'}"

    def tests(self):
        cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-rs", "-p", "no:cacheprovider", *GPU_TESTS]
        rc, out, dt = run_limited(cmd, min(240, self.left()), self.env)
        counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?)\b",
                                                   tail(out, 1))}
        self.doc["tests"] = dict(rc=rc, counts=counts, tail=tail(out, 15))
        if rc is None:
            return "failed", f"timed out after {dt:.0f} s"
        if rc not in (0, 5):
            return "failed", tail(out, 1)
        if counts.get("passed", 0) == 0:
            return "skipped", f"no gpu test ran ({tail(out, 1)})"
        return "ok", tail(out, 1)

    def networks(self, backend):
        a = self.args
        t_sim = 1.0 if a.smoke else a.t_sim
        if backend == "cuda" and not a.smoke:
            reason = self.doc["env"].get("cuda_unusable") if self.doc["env"] else None
            if reason:
                return "skipped", f"no GPU: {reason}"
        done = failed = 0
        for name, builder, full, tiny in NETWORKS:
            scale = tiny if a.smoke else full
            for dtype in a.dtypes:
                if self.left() <= 0:
                    return "failed" if failed else "ok", f"{done} runs; out of time before {name} {dtype}"
                cmd = [sys.executable, os.path.abspath(__file__), "--network-child", name, builder, str(scale),
                       backend, dtype, str(t_sim)]
                rc, out, dt = run_limited(cmd, min(a.run_timeout, self.left()), self.env)
                res = last_json(out) if rc == 0 else None
                if res is None:
                    failed += 1
                    why = f"timed out after {dt:.0f} s" if rc is None else tail(out, 3)
                    res = dict(network=name, scale=scale, backend=backend, dtype=dtype, error=why)
                    print(f"  {name} {backend} {dtype}: FAILED: {why}", flush=True)
                else:
                    done += 1
                    print(f"  {name} {backend} {dtype}: sim {res['sim_s']:.3f} s, real-time factor "
                          f"{res['rtf']:.3f} ({dt:.1f} s in all)", flush=True)
                res["wall_s"] = dt
                self.doc["networks"].append(res)
                self.save()
        return ("failed" if failed else "ok"), f"{done} runs, {failed} failed"

    def torch_layer(self):
        a = self.args
        if importlib_missing("torch"):
            return "skipped", "torch is not installed"
        device = "cpu" if a.smoke else "cuda"
        if device == "cuda":
            code = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
            rc, _, _ = run_limited([sys.executable, "-c", code], 120, self.env)
            if rc != 0:
                return "skipped", "torch has no CUDA device (torch.cuda.is_available() is False)"
        sizes = [32] if a.smoke else a.torch_sizes
        steps, repeat = (5, 1) if a.smoke else (a.torch_steps, a.torch_repeat)
        failed = 0
        for n in sizes:
            if self.left() <= 0:
                return "failed" if failed else "ok", f"out of time before n = {n}"
            cmd = [sys.executable, os.path.abspath(__file__), "--torch-child", device, str(n), str(steps), "16",
                   str(repeat), *a.torch_frameworks]
            rc, out, dt = run_limited(cmd, min(a.run_timeout, self.left()), self.env)
            res = last_json(out) if rc == 0 else None
            if res is None:
                failed += 1
                res = dict(n=n, device=device, error=f"timed out after {dt:.0f} s" if rc is None else tail(out, 3))
            res["wall_s"] = dt
            for fw, r in res.get("rows", {}).items():
                shown = f"{r['median']:.4f} s" if "median" in r else f"error: {r.get('error')}"
                print(f"  n = {n} {fw}: {shown}", flush=True)
            self.doc["torch_layer"].append(res)
            self.save()
        skipped = sorted({fw for r in self.doc["torch_layer"] for fw in r.get("skipped", [])})
        return ("failed" if failed else "ok"), (f"not installed / not for {device}: {', '.join(skipped)}"
                                                if skipped else "")

    # -------------------------------------------------------------- summary
    def targets(self):
        def net(name, backend, dtype):
            for r in self.doc["networks"]:
                if (r["network"], r["backend"], r["dtype"]) == (name, backend, dtype) and "sim_s" in r:
                    return r
            return None

        out = []
        mc = net("microcircuit", "cuda", "float32")
        out.append(dict(target="microcircuit real-time factor, float32, GPU", limit=TARGET_RTF_MICROCIRCUIT_F32,
                        value=mc["rtf"] if mc else None,
                        met=(mc["rtf"] <= TARGET_RTF_MICROCIRCUIT_F32) if mc else None))
        for dtype in self.args.dtypes:
            br = net("brunel", "cuda", dtype)
            out.append(dict(target=f"Brunel 1 s simulated, {dtype}, GPU (s)", limit=TARGET_BRUNEL_SIM_S,
                            value=br["sim_s"] if br else None, met=(br["sim_s"] < TARGET_BRUNEL_SIM_S) if br else None))
        big = [r for r in self.doc["torch_layer"] if r.get("n") == max(self.args.torch_sizes)]
        rows = big[0].get("rows", {}) if big else {}
        es, sj = rows.get("eventsim", {}).get("median"), rows.get("spikingjelly-cupy", {}).get("median")
        out.append(dict(target=f"torch layer n = {max(self.args.torch_sizes)}: eventsim / SpikingJelly CuPy",
                        limit=1.0, value=(es / sj) if (es and sj) else None,
                        met=(es <= sj) if (es and sj) else None))
        if self.args.smoke:  # tiny sizes on the simulator: the figures say nothing
            for t in out:
                t["met"] = None
        self.doc["targets"] = out
        self.save()

    def table(self):
        print("\nphase       status      time (s)")
        for name, p in self.doc["phases"].items():
            print(f"{name:11s} {p['status']:10s} {p['seconds']:9.1f}")
        if self.doc["networks"]:
            print(f"\n{'network':13s} {'backend':7s} {'dtype':8s} {'neurons':>8s} {'sim (s)':>9s} {'RTF':>8s} "
                  f"{'events/s':>10s} {'dev MiB':>8s}")
            for r in self.doc["networks"]:
                if "sim_s" not in r:
                    print(f"{r['network']:13s} {r['backend']:7s} {r['dtype']:8s} error: {r['error'].splitlines()[-1]}")
                    continue
                mem = f"{r['device_mem_mib']:8.0f}" if "device_mem_mib" in r else f"{'-':>8s}"
                print(f"{r['network']:13s} {r['backend']:7s} {r['dtype']:8s} {r['n_neurons']:8d} {r['sim_s']:9.3f} "
                      f"{r['rtf']:8.3f} {r['events_per_s']:10.3e} {mem}")
        for res in self.doc["torch_layer"]:
            rows = res.get("rows", {})
            if not rows:
                continue
            print(f"\ntorch layer n = {res['n']} ({res['device']}): {'time (s)':>9s} {'peak MB':>8s}")
            for fw, r in rows.items():
                if "median" in r:
                    print(f"  {fw:18s} {r['median']:9.4f} {r['peak_mb']:8.0f}")
                else:
                    print(f"  {fw:18s} error: {r.get('error')}")
        print("\ntarget                                                  value     limit  met")
        for t in self.doc["targets"]:
            v = "-" if t["value"] is None else f"{t['value']:.3f}"
            met = {True: "yes", False: "NO", None: "-"}[t["met"]]
            print(f"{t['target']:52s} {v:>9s} {t['limit']:9.2f}  {met}")
        print(f"\nfigures written to {os.path.abspath(self.args.out)}; "
              f"{time.perf_counter() - self.t0:.1f} s in all")


def importlib_missing(name):
    import importlib.util

    return importlib.util.find_spec(name) is None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true",
                    help="numba-cuda simulator, tiny sizes, torch layer on the CPU: checks the script, not the speed")
    ap.add_argument("--out", default="gpu_check.json", help="JSON file of all figures (default: gpu_check.json)")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=[p for p in PARTS if p != "install"],
                    help="phases to run (default: all but install)")
    ap.add_argument("--install", action="store_true", help="run the install phase first")
    ap.add_argument("--peers", action="store_true", help="with --install: also install SpikingJelly and CuPy")
    ap.add_argument("--budget", type=float, default=480.0, help="start no new part after this many seconds")
    ap.add_argument("--run-timeout", type=float, default=240.0, help="time limit of each network / layer run (s)")
    ap.add_argument("--t-sim", type=float, default=1000.0, help="simulated time per network (ms)")
    ap.add_argument("--dtypes", nargs="+", choices=["float32", "float64"], default=["float32", "float64"])
    ap.add_argument("--torch-sizes", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--torch-steps", type=int, default=500)
    ap.add_argument("--torch-repeat", type=int, default=5)
    ap.add_argument("--torch-frameworks", nargs="+", default=["eventsim", "torch", "spikingjelly", "spikingjelly-cupy"])
    ap.add_argument("--network-child", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--torch-child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.network_child:
        name, builder, scale, backend, dtype, t_sim = a.network_child
        network_child(name, builder, float(scale), backend, dtype, float(t_sim))
        return 0
    if a.torch_child:
        device, n, steps, batch, repeat, *fws = a.torch_child
        torch_child(device, int(n), int(steps), int(batch), int(repeat), fws)
        return 0
    if a.install and "install" not in a.parts:
        a.parts = ["install", *a.parts]
    if a.budget <= 0 or a.run_timeout <= 0 or a.t_sim <= 0.2:
        ap.error("--budget and --run-timeout must be > 0 s and --t-sim > 0.2 ms")
    check = Check(a)
    print(f"gpu_check: {'smoke run on the numba-cuda simulator' if a.smoke else 'GPU run'}, budget {a.budget:.0f} s, "
          f"parts {' '.join(a.parts)}", flush=True)
    check.phase("install", check.install)
    check.phase("env", check.environment)
    check.phase("tests", check.tests)
    check.phase("networks", lambda: check.networks("cuda"))
    check.phase("torch", check.torch_layer)
    check.phase("cpu", lambda: check.networks("cpu"))
    check.targets()
    check.table()
    failed = [n for n, p in check.doc["phases"].items() if p["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
