import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

# The tests that compare thread counts must run on the threads they ask for: the clock engine's team
# tuner (which may run a small network on fewer threads) is off unless a test turns it on
# (tests/test_team_tuner.py).  Subprocesses started by tests inherit this.
os.environ.setdefault("EVENTSIM_TEAM_TUNING", "0")


# ---------------------------------------------------------------------- parallel runs (pytest-xdist)
# pyproject.toml's addopts run the suite on one worker process per core with ``--dist loadgroup``.  Numba
# compiles in the process that first calls a kernel, so where tests go decides how often a kernel is
# compiled: a whole test file is one unit of work (its tests compile the same kernels, and its module
# fixtures are built once), unless its tests name their own groups (``pytest.mark.xdist_group``: long
# parts of a file that share nothing); a test marked ``slow`` (a long subprocess of its own, or a long
# single run) is a unit of its own.  The units are handed out in the order they first appear
# (``--no-loadscope-reorder``: not the largest number of tests first), so the long
# ones are put first (named groups, then slow tests, then files): the workers then finish together
# instead of one of them running a long test at the end while the other is idle.  A slow test marked
# ``after_files`` comes last instead: it calls kernels that the files' tests compile, and loads them from
# Numba's cache there (the torch CUDA-simulator check: 150 s from an empty cache, 33 s after the torch files).
def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per CPU that this process may run on (pytest-xdist would count physical cores
    when psutil is installed: one worker on a machine of two hyperthreads)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own answer: the number asked for
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        return os.cpu_count() or 1


def _xdist_unit(item):
    """``(name, rank)`` of the unit of work of ``item``; the units of lower rank are handed out first."""
    own = item.get_closest_marker("xdist_group")
    if own is not None:
        return own.args[0] if own.args else own.kwargs.get("name", "default"), 0
    if item.get_closest_marker("slow") is not None:
        return item.nodeid, 3 if item.get_closest_marker("after_files") is not None else 1
    return item.nodeid.split("::", 1)[0], 2


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the groups
def pytest_collection_modifyitems(config, items):
    if not getattr(config.option, "loadgroup", False):  # set on the workers of a --dist loadgroup run
        return
    units = {}
    for item in items:
        name, rank = _xdist_unit(item)
        if rank:
            item.add_marker(pytest.mark.xdist_group(name))
        units.setdefault(name, rank)
    order = {name: (rank, i) for i, (name, rank) in enumerate(units.items())}
    items.sort(key=lambda item: order[_xdist_unit(item)[0]])
