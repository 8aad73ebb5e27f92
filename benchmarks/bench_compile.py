"""Cost of the first run in a fresh interpreter: Numba compilation (cold cache) or cache loading (warm).

Each sample starts a new Python process (asv ``timeraw_``).  Untimed there:
importing NumPy and Numba, and for the cold case pointing
``NUMBA_CACHE_DIR`` at a new empty directory (removed at exit).  Timed:
importing eventsim, building a small copy of the network and running 10
steps, i.e. everything a user waits for before the first step completes.
The warm case uses Numba's default cache, filled by ``setup`` beforehand.
"""

from . import DT, WARMUP_STEPS, example_path, warm_up

_BUILD = {
    "brunel": ("brunel2000", "mod.build(0.02, 1, {dt})[0]"),
    "cuba": ("cuba", "mod.build(1, {dt})[0]"),
}


class FirstRun:
    """Import + small build + 10 steps in a fresh process, with a warm or a cold Numba cache."""

    params = [["brunel", "cuba"], ["warm", "cold"]]
    param_names = ["network", "cache"]
    number = 1
    repeat = (1, 3, 120.0)
    timeout = 600

    def setup(self, network, cache):
        if cache == "warm":
            warm_up(network)   # fills Numba's default cache for this interpreter and source tree

    def timeraw_first_run(self, network, cache):
        setup = "import os, shutil, tempfile, atexit\n"
        if cache == "cold":
            setup += ("cache_dir = tempfile.mkdtemp(prefix='eventsim-numba-cache-')\n"
                      "atexit.register(shutil.rmtree, cache_dir, True)\n"
                      "os.environ['NUMBA_CACHE_DIR'] = cache_dir\n")
        setup += "import importlib.util\nimport numpy\nimport numba\n"
        name, build = _BUILD[network]
        stmt = (f"spec = importlib.util.spec_from_file_location('example', {str(example_path(name))!r})\n"
                "mod = importlib.util.module_from_spec(spec)\n"
                "spec.loader.exec_module(mod)\n"            # imports eventsim
                f"net = {build.format(dt=DT)}\n"
                f"net.run({WARMUP_STEPS * DT!r})\n")
        return stmt, setup
