"""Cost of the first run in a fresh interpreter: Numba compilation (cold cache) or cache loading (warm).

Each sample starts a new Python process (asv ``timeraw_``).  Untimed there:
importing NumPy and Numba, and for the cold case pointing
``NUMBA_CACHE_DIR`` at a new empty directory (removed at exit).  Timed:
importing eventsim, building a small copy of the network and running 10
steps, i.e. everything a user waits for before the first step completes.
The warm case uses Numba's default cache, filled by ``setup`` beforehand.

Networks: the examples' Brunel (delta synapses) and CUBA (exponential
synapses) networks on the clock engine; the README's event-engine snippet
(1,000 LIF neurons, exponential synapses, a spike source; 1,000 ms); and
the torch layers: the README's ``et.LIF`` layer, forward and backward on a
``[50, 8, 32]`` input (float32, the default dtype).  The same cold runs
by hand: ``NUMBA_CACHE_DIR=$(mktemp -d) python -c "..."``;
``python -m eventsim warmup`` fills the cache ahead of time.
"""

from . import DT, WARMUP_STEPS, example_path, warm_up

_BUILD = {
    "brunel": ("brunel2000", "mod.build(0.02, 1, {dt})[0]"),
    "cuba": ("cuba", "mod.build(1, {dt})[0]"),
}

#: The README's event-engine snippet (imports eventsim, builds, runs 1,000 ms).
EVENT = """\
import eventsim as es
net = es.Network(dt=0.1, seed=1, engine="event")
pop = net.population(1000, es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=2.0,
                                  tau_syn_ex=2.0, tau_syn_in=5.0, i_e=300.0))
stim = net.spike_source(senders=[0, 0], times=[1.2345, 7.001])
net.connect(stim, pop[:10], es.AllToAll(), weight=500.0, delay=0.75)
spikes = net.record_spikes(pop)
net.run(1000.0)
"""

#: The README's torch layer: the first forward and backward (imports eventsim.torch).
TORCH = """\
import torch
import eventsim.torch as et
layer = et.LIF(tau_m=10.0, v_th=1.0, v_reset=0.0, v_rest=0.0, dt=1.0, surrogate="superspike", alpha=10.0)
x = torch.rand(50, 8, 32, requires_grad=True)
spikes, state = layer(x)
spikes.sum().backward()
"""


class FirstRun:
    """A first run in a fresh process (import, build, run; see the module docstring), warm or cold cache."""

    params = [["brunel", "cuba", "event", "torch"], ["warm", "cold"]]
    param_names = ["network", "cache"]
    number = 1
    repeat = (1, 3, 120.0)
    timeout = 600

    def setup(self, network, cache):
        if network == "torch":
            try:
                import torch  # noqa: F401
            except ImportError:
                raise NotImplementedError("torch is not installed")  # asv skips the case
        if cache == "warm":
            if network in ("event", "torch"):
                exec(EVENT if network == "event" else TORCH, {})
            else:
                warm_up(network)   # fills Numba's default cache for this interpreter and source tree

    def timeraw_first_run(self, network, cache):
        setup = "import os, shutil, tempfile, atexit\n"
        if cache == "cold":
            setup += ("cache_dir = tempfile.mkdtemp(prefix='eventsim-numba-cache-')\n"
                      "atexit.register(shutil.rmtree, cache_dir, True)\n"
                      "os.environ['NUMBA_CACHE_DIR'] = cache_dir\n")
        setup += "import importlib.util\nimport numpy\nimport numba\n"
        if network == "torch":
            setup += "import torch\n"   # importing torch itself is not eventsim's cost
        if network in ("event", "torch"):
            return EVENT if network == "event" else TORCH, setup
        name, build = _BUILD[network]
        stmt = (f"spec = importlib.util.spec_from_file_location('example', {str(example_path(name))!r})\n"
                "mod = importlib.util.module_from_spec(spec)\n"
                "spec.loader.exec_module(mod)\n"            # imports eventsim
                f"net = {build.format(dt=DT)}\n"
                f"net.run({WARMUP_STEPS * DT!r})\n")
        return stmt, setup
