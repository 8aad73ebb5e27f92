"""Interleaved A/B timing of the first run from an empty Numba cache: a git ref against the working tree.

Usage (from the repository root)::

    python benchmarks/ab_first_run.py --ref 9f261e1 --cases torch --rounds 3
    python benchmarks/ab_first_run.py --ref d6bcfd3 --cases brunel event torch

The cases are those of the asv benchmark ``bench_compile.FirstRun``
(cold cache): ``brunel`` (the example's network at scale 0.02, 10 steps,
delta synapses), ``cuba`` (exponential synapses), ``event`` (the README's
event-engine snippet) and ``torch`` (the README's torch layer, forward
and backward).  Each measurement is a fresh interpreter with
``NUMBA_CACHE_DIR`` set to a new empty directory and one Numba thread; the
figure is the CPU time of that process (user + system, which leaves out
the time it waited for a core, the steadier figure on a shared machine),
so it includes Python's start-up and the imports of NumPy and Numba on
both sides alike.  The sides alternate ``A B B A A B ...`` (each side
first in every other round); the script prints every run, the medians and
their ratio ``B / A``.  The ref's package is
exported as in ``benchmarks/ab_compare.py``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from ab_compare import export  # noqa: E402

_NETWORK = """\
import importlib.util
spec = importlib.util.spec_from_file_location("ex", {path!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
net = {build}
net.run(10 * 0.1)
"""
#: case -> (example, build expression) for the clock-engine cases
_EXAMPLES = {"brunel": ("brunel2000", "mod.build(0.02, 1, 0.1)[0]"), "cuba": ("cuba", "mod.build(1, 0.1)[0]")}
CASES = ("brunel", "cuba", "event", "torch")


def case_code(case):
    """The Python source of one first run (the asv FirstRun cases)."""
    if case in _EXAMPLES:
        name, build = _EXAMPLES[case]
        return _NETWORK.format(path=str(REPO / "examples" / f"{name}.py"), build=build)
    # (bench_compile imports its package's helpers: its two snippets are read as text, not imported)
    text = (HERE / "bench_compile.py").read_text()
    key = "EVENT" if case == "event" else "TORCH"
    start = text.index(f'{key} = """\\\n') + len(f'{key} = """\\\n')
    return text[start:text.index('"""', start)]


def cold_cpu_seconds(package_dir, code):
    """CPU seconds of a fresh interpreter running ``code`` with ``package_dir`` first on its path and an
    empty Numba cache."""
    cache = tempfile.mkdtemp(prefix="eventsim-cold-")
    env = dict(os.environ, PYTHONPATH=str(package_dir), NUMBA_CACHE_DIR=cache, NUMBA_NUM_THREADS="1",
               OMP_NUM_THREADS="1")
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             cwd=tempfile.gettempdir())
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if out.returncode != 0:
        raise RuntimeError(f"first run with {package_dir} failed:\n{out.stderr[-3000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", default="main", help="git ref of side A (default: main)")
    ap.add_argument("--cases", nargs="+", choices=CASES, default=["brunel", "torch"])
    ap.add_argument("--rounds", type=int, default=3, help="A/B pairs per case (default 3)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    a_dir, sha = export(args.ref)
    print(f"A = {args.ref} ({sha}), B = working tree; first run, empty Numba cache, CPU time of the process",
          flush=True)
    for case in args.cases:
        code = case_code(case)
        runs = {"A": [], "B": []}
        for r in range(args.rounds):
            # (A B, then B A, ...: a side that always ran second would carry any effect of the order)
            for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
                runs[side].append(cold_cpu_seconds(a_dir if side == "A" else REPO, code))
        ma, mb = statistics.median(runs["A"]), statistics.median(runs["B"])
        print(f"{case:7s} median A {ma:6.2f} s  B {mb:6.2f} s  B/A {mb / ma:.3f}  (A runs "
              + " ".join(f"{x:.2f}" for x in runs["A"]) + "; B runs " + " ".join(f"{x:.2f}" for x in runs["B"])
              + ")", flush=True)


if __name__ == "__main__":
    main()
