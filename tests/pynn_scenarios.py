"""Run PyNN's own system-test scenarios against a PyNN backend and count the outcomes per file.

PyNN's source distribution ships simulator-independent scenarios
(``test/system/scenarios``), each marked with the backends it is meant for
(``run_with_simulators("nest", "neuron", "brian2")``).  This script fetches
that distribution from the package index (``pip download --no-binary``), or
takes an unpacked or packed copy, unpacks it into a scratch directory, and
runs every scenario that is marked for ``nest`` (the reference backend) with
the backend asked for.  Nothing of PyNN is stored in this repository.

For ``--backend eventsim`` a scenario that stops on
``eventsim.pynn.UnsupportedError`` (a cell type, synapse or source eventsim
does not have) is counted as *unsupported*, apart from passes, failures and
skips.

Usage::

    python tests/pynn_scenarios.py --backend eventsim [--sdist pynn-0.13.0.tar.gz] [-k EXPR]
    python tests/pynn_scenarios.py --backend nest      # in an environment with pyNN and NEST
"""

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PYNN_VERSION = "0.13.0"

# The conftest put beside the unpacked scenarios: selects the backend and counts outcomes.
_CONFTEST = '''
import json, os, sys
import pytest

# pytest imports the scenarios as "system.scenarios.<file>" (test/ is not a package): the same here
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "test"))

BACKEND = os.environ["PYNN_SCENARIO_BACKEND"]
if BACKEND == "eventsim":
    import eventsim.pynn  # registers pyNN.eventsim
    from eventsim.pynn import UnsupportedError
else:
    UnsupportedError = ()

import system.scenarios.fixtures as _fixtures


SUBSTITUTE = dict(pair.split("=") for pair in os.environ.get("PYNN_SCENARIO_SUBSTITUTE", "").split(",") if pair)


class _Substituting(_fixtures.LazySimulator):
    """The backend with some of its names answered by others (cell types it lacks)."""

    def __getattr__(self, name):
        return super().__getattr__(SUBSTITUTE.get(name, name))


def _run_with(*sim_names):
    if "nest" not in sim_names:
        return pytest.mark.skip(reason="scenario not marked for nest")
    simulator = _Substituting(BACKEND) if SUBSTITUTE else _fixtures.LazySimulator(BACKEND)
    return pytest.mark.parametrize("sim", [pytest.param(simulator, id=BACKEND)])


_fixtures.run_with_simulators = _run_with
_RESULTS = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if UnsupportedError and call.excinfo is not None and call.excinfo.errisinstance(UnsupportedError):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1], "unsupported: " + str(call.excinfo.value))
        report.eventsim_unsupported = True


def pytest_runtest_logreport(report):
    name = report.nodeid.split("::")[0].rsplit("/", 1)[-1]
    test = report.nodeid.split("::", 1)[-1]
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if getattr(report, "eventsim_unsupported", False):
            kind = "unsupported"
        elif report.skipped and "not marked for nest" in str(report.longrepr):
            return
        else:
            kind = report.outcome
        reason = ""
        if report.outcome != "passed":
            reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
            reason = reason.strip().splitlines()[-1][:300] if reason.strip() else ""
        _RESULTS.setdefault(name, {})[test] = [kind, reason]
    elif report.when == "teardown" and report.outcome == "failed":
        _RESULTS.setdefault(name, {})[test] = ["failed", "teardown"]


def pytest_sessionfinish(session):
    with open(os.environ["PYNN_SCENARIO_RESULTS"], "w") as f:
        json.dump(_RESULTS, f, indent=1, sort_keys=True)
'''


def fetch_sdist(dest):
    """Download PyNN's source distribution into ``dest``; returns its path (raises on failure)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    f"pynn=={PYNN_VERSION}", "-d", str(dest), "-q"], check=True, timeout=300)
    found = sorted(Path(dest).glob("[pP]y[nN][nN]-*.tar.gz"))
    if not found:
        raise FileNotFoundError(f"no PyNN source distribution in {dest}")
    return found[0]


def unpack(sdist, dest):
    """Unpack a PyNN source distribution; returns the directory that holds ``test/system/scenarios``."""
    sdist = Path(sdist)
    if sdist.is_dir():
        return sdist
    with tarfile.open(sdist) as tar:
        tar.extractall(dest, filter="data")
    roots = [p.parent.parent.parent for p in Path(dest).glob("*/test/system/scenarios")]
    if not roots:
        raise FileNotFoundError(f"{sdist} has no test/system/scenarios")
    return roots[0]


def run_scenarios(root, backend, python=sys.executable, select=None, timeout=1800, substitute=None):
    """Run the scenarios under ``root`` with ``backend``; returns ``{file: {test: [outcome, reason]}}``.

    ``substitute``: ``{name: other}``, names of the backend answered by others
    (e.g. ``{"IF_cond_exp": "IF_curr_exp"}``), to exercise connectors,
    parameter handling and recording in scenarios written for cell types the
    backend lacks; such runs are no longer PyNN's scenarios as written.
    """
    root = Path(root)
    (root / "conftest.py").write_text(_CONFTEST)
    results = root / f"results-{backend}.json"
    env = dict(os.environ, PYNN_SCENARIO_BACKEND=backend, PYNN_SCENARIO_RESULTS=str(results),
               MPLBACKEND="Agg", PYNN_SCENARIO_SUBSTITUTE=",".join(f"{k}={v}" for k, v in (substitute or {}).items()))
    cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(root),
           "-o", "addopts=", "test/system/scenarios"]
    if select:
        cmd += ["-k", select]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    if not results.exists():
        raise RuntimeError(f"the scenarios did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(results.read_text())


def summary(results):
    """``{file: {outcome: count}}`` and the totals."""
    per_file, total = {}, {}
    for name, tests in sorted(results.items()):
        counts = {}
        for kind, _ in tests.values():
            counts[kind] = counts.get(kind, 0) + 1
            total[kind] = total.get(kind, 0) + 1
        per_file[name] = counts
    return per_file, total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="eventsim", help="PyNN backend module name under pyNN (default eventsim)")
    parser.add_argument("--sdist", help="a PyNN source distribution (.tar.gz) or unpacked directory; "
                                        "default: download it")
    parser.add_argument("-k", dest="select", help="pytest -k expression")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every scenario's outcome")
    parser.add_argument("--substitute", default="", help="NAME=OTHER,... names of the backend answered by "
                                                          "others, e.g. IF_cond_exp=IF_curr_exp (not PyNN's "
                                                          "scenarios as written any more)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or fetch_sdist(tmp)
        root = unpack(sdist, tmp)
        substitute = dict(pair.split("=") for pair in args.substitute.split(",") if pair)
        results = run_scenarios(root, args.backend, select=args.select, substitute=substitute)
    per_file, total = summary(results)
    for name, counts in per_file.items():
        print(f"{name:40s} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if args.verbose:
            for test, (kind, reason) in sorted(results[name].items()):
                print(f"    {kind:12s} {test}  {reason}")
    print("total", ", ".join(f"{k} {v}" for k, v in sorted(total.items())))


if __name__ == "__main__":
    main()
