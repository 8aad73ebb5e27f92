"""A PyNN backend for eventsim: run PyNN 0.13 scripts on eventsim's exact clock engine.

Use it as any PyNN simulator module::

    import eventsim.pynn as sim

    sim.setup(timestep=0.1, rng_seed=1)
    cells = sim.Population(100, sim.IF_curr_exp(tau_m=20.0, i_offset=0.5))
    noise = sim.Population(100, sim.SpikeSourcePoisson(rate=50.0))
    sim.Projection(noise, cells, sim.OneToOneConnector(), sim.StaticSynapse(weight=0.5, delay=1.0))
    cells.record(["spikes", "v"])
    sim.run(1000.0)
    block = cells.get_data()          # a neo Block
    sim.end()

Importing ``eventsim.pynn`` also registers it as ``pyNN.eventsim`` (an entry
in ``sys.modules`` and an attribute of the ``pyNN`` package, as sPyNNaker
provides ``pyNN.spiNNaker``), so code that selects a backend by name,
``importlib.import_module("pyNN.eventsim")``, finds it once ``eventsim.pynn``
has been imported.

What is supported (anything else raises :class:`UnsupportedError`, a
``NotImplementedError``, naming the construct and the supported ones when
the population, projection or source is created):

* cells ``IF_curr_exp``, ``IF_curr_delta``, ``IF_curr_alpha``; sources ``SpikeSourceArray``,
  ``SpikeSourcePoisson``; current source ``DCSource``
  (units and names: :mod:`eventsim.pynn.standardmodels`);
* every PyNN connector (PyNN draws the connections; ``setup(rng_seed=...)``
  seeds eventsim's network, the connectors use their own ``rng``);
* ``StaticSynapse``; ``STDPMechanism`` with ``SpikePairRule`` and an
  additive, multiplicative, additive-potentiation/multiplicative-depression
  or Guetig weight dependence, as ``es.STDP`` (NEST's ``stdp_synapse``:
  ``lambda = A_plus``, ``alpha = A_minus / A_plus``, ``w_min = 0``);
* recording ``spikes`` and ``v`` to neo Blocks (``get_data()``,
  ``write_data()``), ``reset()`` (a new neo Segment; the network is rebuilt
  from t = 0 with the initial values, current parameters and weights),
  changes of parameters, weights and DC amplitudes between runs.

Semantics are NEST's on the grid: ``IF_curr_exp`` is ``iaf_psc_exp``,
``IF_curr_delta`` is ``iaf_psc_delta``, ``IF_curr_alpha`` is ``iaf_psc_alpha``, integrated exactly; spikes are
stamped at the end of the step that crosses the threshold; delays and
refractory periods are rounded to the time step.  Checked against pyNN.nest
(NEST 3.10, on the grid): PyNN's CUBA benchmark (VAbenchmarks.py, 4,000
cells, 1 s) and simpleRandomNetwork.py give identical spike trains, a
network of both cell types with spike arrays and a DC step gives identical
spikes, and STDP from spike arrays identical weights
(``tests/test_pynn.py``).

How it works: the PyNN objects keep the whole model; the eventsim Network
is built at the first ``run()`` (connections drawn by PyNN's connectors,
given to eventsim as ``es.FromArrays``) and receives later additions and
changes directly.  Spike sources are eventsim spike sources fed with their
spikes (Poisson spikes drawn per run), so their spikes can be recorded;
a source with plastic connections drives them through a relay of parrot
neurons (eventsim's plastic synapses connect neurons, as pyNN.nest does
with NEST's).

``setup()`` options: ``timestep`` (ms), ``min_delay`` (ms or "auto" = dt),
``max_delay`` (ms), ``rng_seed`` (int, default 1: eventsim's network seed
and the seed of the Poisson sources' spikes), ``spike_precision``:
``"on_grid"`` (default, eventsim's clock engine) or ``"off_grid"``
(eventsim's event engine: exact spike times, spike sources and DC
switching at their given times, as NEST's ``*_ps`` models; no plasticity).
"""

import sys

import pyNN
from pyNN import common
from pyNN import errors, random, space  # noqa: F401
from pyNN.connectors import *  # noqa: F401,F403
from pyNN.network import Network  # noqa: F401
from pyNN.random import GSLRNG, NumpyRNG, RandomDistribution  # noqa: F401
from pyNN.recording import *  # noqa: F401,F403
from pyNN.recording import get_io
from pyNN.space import Space  # noqa: F401
from pyNN.standardmodels import StandardCellType

from . import simulator
from .populations import Assembly, Population, PopulationView
from .projections import Projection
from .simulator import UnsupportedError
from .standardmodels import *  # noqa: F401,F403
from .standardmodels import UNSUPPORTED, StaticSynapse
from pyNN.connectors import FixedProbabilityConnector

__all__ = ["setup", "end", "run", "run_until", "run_for", "reset", "initialize", "get_current_time",
           "get_time_step", "get_min_delay", "get_max_delay", "num_processes", "rank",
           "Population", "PopulationView", "Assembly", "Projection", "UnsupportedError",
           "create", "connect", "record", "set", "list_standard_models"]


def setup(timestep=0.1, min_delay="auto", max_delay=10.0, **extra_params):
    """Start a new simulation: forget every object and set the time step.

    Parameters
    ----------
    timestep : float
        Time step dt (ms), > 0.
    min_delay : float or "auto"
        Smallest synaptic delay (ms) and the default delay of synapses; with
        "auto" the default delay is dt and ``get_min_delay()`` reports the
        smallest delay of the model's connections.
    max_delay : float
        Largest synaptic delay (ms), reported by ``get_max_delay()``.
    rng_seed : int, optional
        Seed of eventsim's network and of the Poisson sources (default 1).

    Returns
    -------
    int
        The MPI rank (always 0).
    """
    precision = extra_params.get("spike_precision", "on_grid")
    if precision not in ("on_grid", "off_grid"):
        raise ValueError(f"spike_precision={precision!r} must be 'on_grid' or 'off_grid'")
    common.setup(timestep, min_delay, **extra_params)
    state = simulator.state
    state.clear()
    state.dt = float(timestep)
    state.auto_min_delay = min_delay == "auto"
    state.default_delay = state.dt if min_delay == "auto" else float(min_delay)
    state.max_delay = float(max_delay)
    if state.default_delay < state.dt - 1e-12:
        raise ValueError(f"min_delay={min_delay} ms must be >= timestep={timestep} ms")
    state.seed = int(extra_params.get("rng_seed", 1))
    state.engine = "event" if precision == "off_grid" else "clock"
    return 0


def end(compatible_output=True):
    """Finish: write the files asked for with ``record(..., filename)``.

    Recorded data stay readable (``get_data()``) until the next ``setup()``.
    """
    state = simulator.state
    for population, variables, filename in state.write_on_end:
        population.write_data(get_io(filename), variables)
    state.write_on_end = []


run, run_until = common.build_run(simulator)
run_for = run
reset = common.build_reset(simulator)
initialize = common.initialize
get_current_time, get_time_step, get_min_delay, get_max_delay, num_processes, rank = \
    common.build_state_queries(simulator)

create = common.build_create(Population)
connect = common.build_connect(Projection, FixedProbabilityConnector, StaticSynapse)
record = common.build_record(simulator)
set = common.set  # noqa: A001 - PyNN's procedural name


def record_v(source, filename):
    """Record the membrane potential of ``source`` to ``filename`` at ``end()``."""
    return record(["v"], source, filename)


def record_gsyn(source, filename):
    """Refused: eventsim's PyNN cells have no synaptic conductances."""
    raise UnsupportedError("gsyn cannot be recorded: the eventsim backend has current-based cells only")


def list_standard_models():
    """Names of the standard cell types this backend simulates."""
    return [obj.__name__ for name, obj in globals().items()
            if isinstance(obj, type) and issubclass(obj, StandardCellType) and obj is not StandardCellType
            and name not in UNSUPPORTED]


sys.modules.setdefault("pyNN.eventsim", sys.modules[__name__])
pyNN.eventsim = sys.modules[__name__]
