"""Store NEST's spikes for tests/pynn_reference_network.py (run with pyNN.nest, on the grid).

Needs PyNN and NEST (e.g. ``pip install pynn nest-simulator``) in the
environment that runs it::

    python tests/generate_pynn_nest_reference.py

writes ``tests/pynn_reference/nest_network.npz``: for each population
``<label>_ids`` (index in the population) and ``<label>_times`` (ms),
sorted by time then index, and the versions used; and
``tests/pynn_reference/nest_stdp.npz``: the weights (nA) after
``build_and_run_stdp`` (``add``, ``mul``) and the spike counts.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from pynn_reference_network import build_and_run, build_and_run_stdp  # noqa: E402


def main():
    import nest
    import pyNN
    import pyNN.nest as sim

    spikes = build_and_run(sim)
    arrays = {}
    for label, (ids, times) in spikes.items():
        arrays[f"{label}_ids"] = ids
        arrays[f"{label}_times"] = times
    out = Path(__file__).parent / "pynn_reference" / "nest_network.npz"
    np.savez(out, nest_version=str(nest.__version__), pynn_version=str(pyNN.__version__), **arrays)
    print(out, {k: len(v) for k, v in arrays.items() if k.endswith("_ids")})
    stdp = build_and_run_stdp(sim)
    out = Path(__file__).parent / "pynn_reference" / "nest_stdp.npz"
    np.savez(out, nest_version=str(nest.__version__), pynn_version=str(pyNN.__version__), **stdp)
    print(out, {k: v.shape for k, v in stdp.items()})


if __name__ == "__main__":
    main()
