"""Run a PyNN script unchanged with a backend chosen by name, eventsim's included.

PyNN's example scripts pick their simulator with ``pyNN.utility.get_simulator``,
which imports ``pyNN.<name>``; ``pyNN.eventsim`` exists once ``eventsim.pynn``
has been imported, which this runner does first.  ``--spike-precision``
sets the default of ``setup(spike_precision=...)`` for the run (pyNN.nest
defaults to "off_grid", eventsim.pynn to "on_grid"), so that two backends
can be compared on the same footing without editing the script.

Usage::

    python tests/pynn_run_example.py [--spike-precision on_grid|off_grid] path/to/VAbenchmarks.py eventsim CUBA
"""

import functools
import importlib
import runpy
import sys


def main():
    args = sys.argv[1:]
    precision = None
    if args[:1] == ["--spike-precision"]:
        precision, args = args[1], args[2:]
    if len(args) < 2:
        raise SystemExit(__doc__)
    script, backend = args[0], args[1]
    if backend == "eventsim":
        import eventsim.pynn  # noqa: F401 - registers pyNN.eventsim
    if precision is not None:
        module = importlib.import_module(f"pyNN.{backend}")
        setup = module.setup

        @functools.wraps(setup)
        def setup_with_precision(*a, **kw):
            kw.setdefault("spike_precision", precision)
            return setup(*a, **kw)

        module.setup = setup_with_precision
    sys.argv = args
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
