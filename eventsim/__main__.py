"""Command line of eventsim: ``python -m eventsim warmup [options]``.

``warmup`` compiles the kernels of the common networks ahead of time into
Numba's on-disk cache (see :func:`eventsim.warmup`), so that the first run of
a script starts without compiling.  Set ``NUMBA_CACHE_DIR`` the same way as
for the scripts that will use the cache.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv=None):
    """Run the command line; returns the exit status."""
    from ._compile import DEFAULT_SYNAPSES, DTYPES, ENGINES, SYNAPSES, warmup

    ap = argparse.ArgumentParser(prog="python -m eventsim", description="eventsim command line")
    sub = ap.add_subparsers(dest="command", required=True)
    w = sub.add_parser("warmup", help="compile the common kernels ahead of time (Numba's on-disk cache)",
                       description="Compile the kernels of the common networks ahead of time by running tiny "
                                   "networks; what is cached already is only loaded.")
    w.add_argument("--engine", nargs="+", choices=ENGINES + ("torch",), default=list(ENGINES),
                   help="engines to compile (default: clock event; torch needs PyTorch)")
    w.add_argument("--synapse", nargs="+", choices=SYNAPSES, default=list(DEFAULT_SYNAPSES),
                   help="synapse types (default: delta exp; alpha: psc='alpha')")
    w.add_argument("--dtype", nargs="+", choices=DTYPES, default=["float64"],
                   help="state dtypes of the clock engine and torch layers (default: float64)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = warmup(engine=args.engine, synapse=args.synapse, dtype=args.dtype, progress=True)
    n = sum(r[2] for r in rows)
    print(f"eventsim warmup: {n} kernels compiled, {sum(1 for r in rows if not r[2])} of "
          f"{len(rows)} parts already cached, {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
