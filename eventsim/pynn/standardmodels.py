"""PyNN standard model types for eventsim: cells, spike sources, synapses, current sources.

Supported, with PyNN's units converted to eventsim's (nA -> pA and nF -> pF
by a factor 1000; mV and ms unchanged):

============================  ==============================================
PyNN                          eventsim
============================  ==============================================
``IF_curr_exp``               ``es.LIF`` with ``tau_syn_ex``/``tau_syn_in``
                              (weights nA -> pA)
``IF_curr_alpha``             ``es.LIF(..., psc="alpha")``: alpha-shaped
                              currents peaking at the weight (nA -> pA)
``IF_curr_delta``             ``es.LIF`` with delta synapses (weights mV)
``SpikeSourceArray``          ``net.spike_source``
``SpikeSourcePoisson``        ``net.spike_source`` fed with Poisson spikes
                              drawn per run on the time grid (recordable)
``DCSource``                  ``net.dc`` (amplitude nA -> pA)
``StaticSynapse``             static connections (delay rounded to dt)
``STDPMechanism``             ``es.STDP`` (NEST's ``stdp_synapse``) with
  + ``SpikePairRule``         ``lam = A_plus``, ``alpha = A_minus / A_plus``,
  + ``Additive/Multiplicative ``mu_plus = mu_minus = 0`` (additive) or 1
  WeightDependence``          (multiplicative); ``AdditivePotentiation
                              MultiplicativeDepression``: 0 and 1;
                              ``GutigWeightDependence``: its mu_plus,
                              mu_minus; ``w_max`` scaled as the weights,
                              ``w_min`` must be 0
============================  ==============================================

Parameter names (PyNN -> eventsim): ``cm -> c_m``, ``tau_m -> tau_m``,
``v_rest -> v_rest``, ``v_thresh -> v_th``, ``v_reset -> v_reset``,
``tau_refrac -> t_ref``, ``i_offset -> i_e``, ``tau_syn_E -> tau_syn_ex``,
``tau_syn_I -> tau_syn_in``.

Every other PyNN standard cell type, synapse type and current source exists
under its PyNN name so that scripts import, but using it raises
:class:`UnsupportedError` naming it and listing the supported ones when the
population, projection or source is created.
"""

import numpy as np

from pyNN.standardmodels import build_translations, cells, electrodes, receptors, synapses
from pyNN.standardmodels.base import (StandardCellType, StandardCellTypeComponent, StandardCurrentSource,
                                      StandardPostSynapticResponse, StandardSynapseType)
from pyNN.parameters import ParameterSpace, Sequence

from .simulator import UnsupportedError, state

_NEURON_TRANSLATIONS = (
    ("v_rest", "v_rest"),
    ("v_reset", "v_reset"),
    ("cm", "c_m", 1000.0),          # nF -> pF
    ("tau_m", "tau_m"),
    ("tau_refrac", "t_ref"),
    ("v_thresh", "v_th"),
    ("i_offset", "i_e", 1000.0),    # nA -> pA
)


class IF_curr_exp(cells.IF_curr_exp):
    __doc__ = cells.IF_curr_exp.__doc__ + """
    eventsim: ``es.LIF`` with exponential current synapses, integrated
    exactly on the time grid (as NEST's ``iaf_psc_exp``); weights in nA are
    multiplied by 1000 (pA).
    """
    translations = build_translations(*_NEURON_TRANSLATIONS,
                                      ("tau_syn_E", "tau_syn_ex"), ("tau_syn_I", "tau_syn_in"))
    weight_factor = 1000.0  # nA -> pA


class IF_curr_alpha(cells.IF_curr_alpha):
    __doc__ = cells.IF_curr_alpha.__doc__ + """
    eventsim: ``es.LIF(..., psc="alpha")``, alpha-shaped current synapses
    integrated exactly (as NEST's ``iaf_psc_alpha``, and with
    ``spike_precision="off_grid"`` in continuous time as
    ``iaf_psc_alpha_ps``); a weight in nA is the current's peak, multiplied
    by 1000 (pA).
    """
    translations = build_translations(*_NEURON_TRANSLATIONS,
                                      ("tau_syn_E", "tau_syn_ex"), ("tau_syn_I", "tau_syn_in"))
    weight_factor = 1000.0  # nA -> pA
    psc = "alpha"


class IF_curr_delta(cells.IF_curr_delta):
    __doc__ = cells.IF_curr_delta.__doc__ + """
    eventsim: ``es.LIF`` with delta synapses (as NEST's ``iaf_psc_delta``);
    weights are jumps of the membrane potential in mV.
    """
    translations = build_translations(*_NEURON_TRANSLATIONS)
    weight_factor = 1.0  # mV


class SpikeSourceArray(cells.SpikeSourceArray):
    __doc__ = cells.SpikeSourceArray.__doc__ + """
    eventsim: a spike time between two grid points is emitted at the end of
    the step that contains it (NEST's rule for off-grid times); a spike at t
    reaches its targets at t + delay.  With ``spike_precision="off_grid"``
    the times are kept exactly.
    """
    translations = build_translations(("spike_times", "spike_times"))


class SpikeSourcePoisson(cells.SpikeSourcePoisson):
    __doc__ = cells.SpikeSourcePoisson.__doc__ + """
    eventsim: spike counts are drawn per time step (Poisson with mean
    ``rate * dt``) in ``[start, start + duration)``, at the start of each run,
    from a NumPy generator seeded by ``setup(rng_seed=...)``; several spikes
    of a channel in one step all reach the targets.
    """
    translations = build_translations(("rate", "rate"), ("start", "start"), ("duration", "duration"))


SUPPORTED_CELLS = (IF_curr_exp, IF_curr_delta, IF_curr_alpha, SpikeSourceArray, SpikeSourcePoisson)
#: The cell types that are eventsim LIF neurons.
LIF_CELLS = (IF_curr_exp, IF_curr_delta, IF_curr_alpha)


def check_cell_type(celltype):
    """Raise :class:`UnsupportedError` unless ``celltype`` is one eventsim simulates."""
    if not isinstance(celltype, SUPPORTED_CELLS):
        name = type(celltype).__name__
        if not celltype.injectable:
            reason = "eventsim has no such spike source"
        elif "_cond_" in name:
            reason = "eventsim has no conductance-based neuron models yet"
        else:
            reason = "eventsim has no such neuron model yet"
        raise UnsupportedError(
            f"cell type {type(celltype).__name__} is not supported by the eventsim backend ({reason}); "
            f"supported cell types: {', '.join(c.__name__ for c in SUPPORTED_CELLS)}")


# --- synapses -----------------------------------------------------------------

class StaticSynapse(synapses.StaticSynapse):
    __doc__ = synapses.StaticSynapse.__doc__
    translations = build_translations(("weight", "weight"), ("delay", "delay"))

    def _get_minimum_delay(self):
        return state.default_delay


class STDPMechanism(synapses.STDPMechanism):
    __doc__ = synapses.STDPMechanism.__doc__ + """
    eventsim: only ``SpikePairRule`` with ``AdditiveWeightDependence`` or
    ``MultiplicativeWeightDependence`` and ``dendritic_delay_fraction = 1``
    (the whole delay dendritic, NEST's convention), as ``es.STDP``.  The
    rule's parameters must be the same for every connection of a projection.
    """
    base_translations = build_translations(("weight", "weight"), ("delay", "delay"),
                                           ("dendritic_delay_fraction", "dendritic_delay_fraction"))

    def _build_translations(self):
        self.translations = dict(self.base_translations)
        for component in (self.timing_dependence, self.weight_dependence, self.voltage_dependence):
            if component:
                self.translations.update(component.translations)

    def _get_minimum_delay(self):
        return state.default_delay

    @property
    def possible_models(self):
        return {"es.STDP"}


class SpikePairRule(synapses.SpikePairRule):
    __doc__ = synapses.SpikePairRule.__doc__
    translations = build_translations(("tau_plus", "tau_plus"), ("tau_minus", "tau_minus"),
                                      ("A_plus", "A_plus"), ("A_minus", "A_minus"))
    possible_models = {"es.STDP"}


class AdditiveWeightDependence(synapses.AdditiveWeightDependence):
    __doc__ = synapses.AdditiveWeightDependence.__doc__
    translations = build_translations(("w_max", "w_max"), ("w_min", "w_min"))
    possible_models = {"es.STDP"}

    def mu(self, params):
        return 0.0, 0.0


class MultiplicativeWeightDependence(synapses.MultiplicativeWeightDependence):
    __doc__ = synapses.MultiplicativeWeightDependence.__doc__
    translations = build_translations(("w_max", "w_max"), ("w_min", "w_min"))
    possible_models = {"es.STDP"}

    def mu(self, params):
        return 1.0, 1.0


class AdditivePotentiationMultiplicativeDepression(synapses.AdditivePotentiationMultiplicativeDepression):
    __doc__ = synapses.AdditivePotentiationMultiplicativeDepression.__doc__
    translations = build_translations(("w_max", "w_max"), ("w_min", "w_min"))
    possible_models = {"es.STDP"}

    def mu(self, params):
        return 0.0, 1.0


class GutigWeightDependence(synapses.GutigWeightDependence):
    __doc__ = synapses.GutigWeightDependence.__doc__
    translations = build_translations(("w_max", "w_max"), ("w_min", "w_min"),
                                      ("mu_plus", "mu_plus"), ("mu_minus", "mu_minus"))
    possible_models = {"es.STDP"}

    def mu(self, params):
        return float(params["mu_plus"]), float(params["mu_minus"])


SUPPORTED_SYNAPSES = (StaticSynapse, STDPMechanism)
_WEIGHT_DEPENDENCES = (AdditiveWeightDependence, MultiplicativeWeightDependence,
                       AdditivePotentiationMultiplicativeDepression, GutigWeightDependence)
SUPPORTED_STDP = ("STDPMechanism(SpikePairRule, AdditiveWeightDependence | MultiplicativeWeightDependence | "
                  "AdditivePotentiationMultiplicativeDepression | GutigWeightDependence)")


def check_synapse_type(synapse_type):
    """Raise :class:`UnsupportedError` unless eventsim can simulate ``synapse_type``."""
    name = type(synapse_type).__name__
    if not isinstance(synapse_type, SUPPORTED_SYNAPSES):
        raise UnsupportedError(f"synapse type {name} is not supported by the eventsim backend; "
                               f"supported: StaticSynapse, {SUPPORTED_STDP}")
    if isinstance(synapse_type, STDPMechanism):
        td, wd = synapse_type.timing_dependence, synapse_type.weight_dependence
        if not isinstance(td, SpikePairRule) or not isinstance(wd, _WEIGHT_DEPENDENCES):
            raise UnsupportedError(
                f"STDPMechanism({type(td).__name__}, {type(wd).__name__}) is not supported by the eventsim "
                f"backend; supported: {SUPPORTED_STDP}")
        if synapse_type.voltage_dependence is not None:
            raise UnsupportedError("voltage-dependent STDP is not supported by the eventsim backend")
        if synapse_type.dendritic_delay_fraction != 1:
            raise UnsupportedError(
                f"dendritic_delay_fraction={synapse_type.dendritic_delay_fraction} is not supported by the "
                "eventsim backend (its STDP takes the whole delay as dendritic: dendritic_delay_fraction=1)")


# --- current sources ----------------------------------------------------------

class DCSource(electrodes.DCSource):
    __doc__ = electrodes.DCSource.__doc__ + """
    eventsim: ``net.dc`` with the amplitude in pA (nA x 1000), on in
    ``[start, stop)`` with both times rounded to the time grid.
    """
    translations = build_translations(("amplitude", "amplitude", 1000.0), ("start", "start"), ("stop", "stop"))

    def __init__(self, **parameters):
        object.__setattr__(self, "_targets", [])
        object.__setattr__(self, "_es", None)
        object.__setattr__(self, "_native", {})
        super().__init__(**parameters)
        ps = ParameterSpace(dict(self.default_parameters), self.get_schema(), shape=(1,))
        ps.update(**parameters)
        self._store(self.translate(ps))
        state.register(self)

    def _store(self, parameters):
        parameters.evaluate(simplify=True)
        for key, value in parameters.items():
            self._native[key] = float(value)

    def get_native_parameters(self):
        return ParameterSpace(dict(self._native), shape=(1,))

    def set_native_parameters(self, parameters):
        self._store(parameters)
        if self._es is not None:
            start, stop = self._window()
            self._es.set(amplitude=self._native["amplitude"], start=start, stop=stop)

    def _window(self):
        dt = state.dt
        start = round(self._native["start"] / dt) * dt
        stop = max(round(self._native["stop"] / dt) * dt, start + dt)
        return start, stop

    def inject_into(self, cells):
        """Inject this current into ``cells`` (a Population, PopulationView, Assembly or list of IDs)."""
        cells = list(cells)
        for cell in cells:
            if not cell.celltype.injectable:
                raise TypeError(f"cannot inject a current into a {type(cell.celltype).__name__}")
        self._targets.extend(cells)
        if self._es is not None:
            self._connect(cells)

    def _connect(self, cells):
        by_parent = {}
        for cell in cells:
            by_parent.setdefault(cell.parent, []).append(cell.parent.id_to_index(cell))
        for pop, idx in by_parent.items():
            self._es.net.connect(self._es, pop._es[np.asarray(idx, dtype=np.int64)], _all_to_all(), weight=1.0)

    def _build(self, net):
        start, stop = self._window()
        object.__setattr__(self, "_es", net.dc(self._native["amplitude"], start=start, stop=stop))
        if self._targets:
            self._connect(self._targets)

    def _unbuild(self):
        object.__setattr__(self, "_es", None)

    def _get_data(self):
        raise UnsupportedError("recording the current of a current source is not supported by the eventsim backend")

    def record(self):
        raise UnsupportedError("recording the current of a current source is not supported by the eventsim backend")


def _all_to_all():
    import eventsim as es
    return es.AllToAll()


# --- everything else: importable, refused when used ---------------------------

def _unsupported(base, kind, supported):
    def __init__(self, *args, **kwargs):
        raise UnsupportedError(f"{kind} {base.__name__} is not supported by the eventsim backend; "
                               f"supported {kind}s: {supported}")
    return type(base.__name__, (base,), {"__init__": __init__, "__module__": __name__,
                                          "__doc__": f"Not supported by eventsim: raises UnsupportedError.\n\n"
                                                     f"{base.__doc__ or ''}"})


def _unsupported_cell(base):
    """A cell type class that can be instantiated (PyNN scripts do so) but not used in a Population."""
    return type(base.__name__, (base,), {"__module__": __name__, "translations": {},
                                          "__doc__": "Not supported by eventsim: a Population of it raises "
                                                     f"UnsupportedError.\n\n{base.__doc__ or ''}"})


def _subclasses(module, base):
    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, base) and obj.__module__ == module.__name__]


_defined = {c.__name__ for c in SUPPORTED_CELLS} | {"StaticSynapse", "STDPMechanism", "SpikePairRule",
                                                    "AdditiveWeightDependence",
                                                    "MultiplicativeWeightDependence", "DCSource",
                                                    "AdditivePotentiationMultiplicativeDepression",
                                                    "GutigWeightDependence"}
UNSUPPORTED = {}
for _cls in _subclasses(cells, StandardCellType):
    if _cls.__name__ not in _defined:
        UNSUPPORTED[_cls.__name__] = _unsupported_cell(_cls)
for _cls in _subclasses(synapses, StandardSynapseType):
    if _cls.__name__ not in _defined:
        UNSUPPORTED[_cls.__name__] = _unsupported(_cls, "synapse type", f"StaticSynapse, {SUPPORTED_STDP}")
for _cls in _subclasses(synapses, synapses.STDPTimingDependence) + _subclasses(synapses, synapses.STDPWeightDependence):
    if _cls.__name__ not in _defined:
        UNSUPPORTED[_cls.__name__] = _unsupported(_cls, "STDP component", SUPPORTED_STDP)
for _cls in _subclasses(cells, StandardCellTypeComponent) + _subclasses(receptors, StandardPostSynapticResponse):
    UNSUPPORTED[_cls.__name__] = _unsupported(_cls, "composed-neuron component",
                                              "none (use IF_curr_exp or IF_curr_delta)")
for _cls in _subclasses(electrodes, StandardCurrentSource):
    if _cls.__name__ not in _defined:
        UNSUPPORTED[_cls.__name__] = _unsupported(_cls, "current source", "DCSource")
globals().update(UNSUPPORTED)
del _cls
