"""asv benchmark suite of eventsim (see ``asv.conf.json`` at the repository root).

Run it from the repository root against the interpreter that has eventsim
installed (no environments are built)::

    asv machine --yes                    # once per machine
    asv run --quick -E existing:same     # every benchmark once (about 3.5 min)
    asv run -E existing:same             # the measurement, saved under .asv/results

The networks are the examples' own ``build`` functions (``examples/brunel2000.py``
and ``examples/cuba.py``), imported from the repository by path, so the
benchmarks measure exactly what the examples run.

Conventions (as scipy's suite): classes with ``params`` / ``param_names``;
everything random is seeded in ``setup``; Numba compilation (or cache
loading) happens in ``setup`` through a short warm-up run, never in the timed
region; compile cost is measured on its own by ``timeraw_`` benchmarks in a
fresh interpreter.

A warning on simulate benchmarks: asv may call a timed method several times
on the same network, so later samples continue the simulation from where the
previous one stopped (the networks are in a stationary regime, so every
sample does the same work on average).

Set ``EVENTSIM_BENCH_SMALL=1`` to drop the full-size Brunel network from the
parameters (a quick check of the suite in about a minute).
"""

import importlib.util
import os
from pathlib import Path

import numba

#: Root of the repository (the examples are loaded from here).
REPO = Path(__file__).resolve().parent.parent

#: Seed of every network in the suite.
SEED = 1

#: Time step (ms).
DT = 0.1

#: Steps run in ``setup`` to compile (or load) the engine before timing.
WARMUP_STEPS = 10

#: Brunel network scales (1.0 = 12,500 neurons, 15.6 M synapses).
BRUNEL_SCALES = [0.2] if os.environ.get("EVENTSIM_BENCH_SMALL") else [0.2, 1.0]

#: Thread counts: 1 and the most Numba allows here (NUMBA_NUM_THREADS).
THREADS = sorted({1, numba.config.NUMBA_NUM_THREADS})

_examples = {}


def example_path(name):
    """Path of ``examples/<name>.py``."""
    return REPO / "examples" / f"{name}.py"


def load_example(name):
    """The module ``examples/<name>.py`` (imported once per process)."""
    if name not in _examples:
        spec = importlib.util.spec_from_file_location(f"eventsim_example_{name}", example_path(name))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _examples[name] = mod
    return _examples[name]


def build_network(network, scale=1.0, seed=SEED):
    """``(net, recorders)`` for ``network`` in {"brunel", "cuba"}, built by the example's ``build``."""
    if network == "brunel":
        net, exc, inh, spikes_e, spikes_i = load_example("brunel2000").build(scale, seed, DT)
        return net, [spikes_e, spikes_i]
    net, exc, inh, spikes = load_example("cuba").build(seed, DT)
    return net, [spikes]


def set_threads(threads):
    """Use ``threads`` Numba threads in this process (before building the network)."""
    numba.set_num_threads(threads)


def warm_up(network):
    """Compile (or load from Numba's cache) everything ``network`` needs, on a small copy of it."""
    net, _ = build_network(network, scale=0.02)
    net.run(WARMUP_STEPS * DT)
