"""Other simulators' parameter names (NEST, PyNN, Brian2) given to any eventsim model: the error names the
eventsim parameter, from one table (eventsim.models._params.PARAMETER_NAMES) shared by every model class,
and by net.set / net.get."""

import dataclasses

import numpy as np
import pytest

import eventsim as es
from eventsim.models._params import PARAMETER_NAMES, suggest
from eventsim.models.family import model_classes

# (foreign name, simulator, eventsim name)
CASES = [("V_th", "NEST", "v_th"), ("C_m", "NEST", "c_m"), ("E_L", "NEST", "v_rest"), ("V_reset", "NEST", "v_reset"),
         ("I_e", "NEST", "i_e"), ("tau_syn_E", "PyNN", "tau_syn_ex"), ("tau_syn_I", "PyNN", "tau_syn_in"),
         ("v_thresh", "PyNN", "v_th"), ("tau_refrac", "PyNN", "t_ref"), ("cm", "PyNN", "c_m"),
         ("i_offset", "PyNN", "i_e"), ("Vt", "Brian2", "v_th"), ("El", "Brian2", "v_rest"),
         ("taue", "Brian2", "tau_syn_ex"), ("tau_mem", "NIR", "tau_m"), ("U_m", "NEST", "u_init"),
         ("V_min", "NEST", "v_min"), ("tau", "Brian2", "tau_m")]

MODELS = sorted(model_classes().values(), key=lambda c: c.__name__)


def _fields(cls):
    return [f.name for f in dataclasses.fields(cls) if f.init]


def _error(cls, **kw):
    with pytest.raises(TypeError) as err:
        cls(**kw)
    return str(err.value)


def test_every_registered_model_is_covered():
    names = {c.__name__ for c in MODELS}
    assert {"LIF", "IF", "ALIF", "LI", "Izhikevich", "Parrot"} <= names


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("foreign,sim,ours", CASES)
def test_foreign_names_are_translated_for_every_model(cls, foreign, sim, ours):
    msg = _error(cls, **{foreign: 1.0})
    assert f"{cls.__name__}() got unknown parameter {foreign!r}" in msg
    if cls is es.Parrot:
        assert "no parameters" in msg
    elif ours in _fields(cls) and not (cls is es.LI and ours in ("v_th", "v_reset", "t_ref")):
        assert f"{sim}'s {foreign} is {ours} here" in msg
    elif ours in _fields(es.Izhikevich) + _fields(es.LIF) and ours not in _fields(cls):
        # the name another model has: that model is named, or the model's own explanation is given
        assert f"{ours}, a parameter of" in msg or f"has no {ours}" in msg or "has no" in msg, msg
    if cls is not es.Parrot:
        assert f"valid parameters of {cls.__name__}: " + ", ".join(sorted(_fields(cls))) in msg


def test_unit_changes_are_spelled_out():
    assert "nF" in _error(es.LIF, cm=0.25) and "multiply by 1000" in _error(es.LIF, cm=0.25)
    assert "nA" in _error(es.Izhikevich, i_offset=0.01)


def test_names_of_other_models_and_of_other_objects():
    assert "a parameter of Izhikevich; LIF has none" in _error(es.LIF, u_init=-13.0)
    assert "Izhikevich" in _error(es.ALIF, d=2.0)
    assert "es.STDP(..., tau_minus=...)" in _error(es.LIF, tau_minus=20.0)
    assert "net.population(n, model, v_init=...)" in _error(es.Izhikevich, V_m=-70.0)
    assert "NEST's g_L: this model takes the membrane time constant tau_m = C_m / g_L" in _error(es.LIF, g_L=16.7)
    assert "Brian2's gL" in _error(es.LI, gL=16.7)
    assert "Izhikevich neurons have no refractory period" in _error(es.Izhikevich, t_ref=2.0)
    # near misses still get the nearest valid name
    assert "did you mean consistent_integration?" in _error(es.Izhikevich, consistent_integraton=False)
    assert "did you mean tau_syn_ex?" in _error(es.LIF, tau_syn_exc=2.0)


def test_table_entries_are_well_formed():
    # (the names of the conductance-based and AdEx models, whether or not they are registered yet)
    valid = set().union(*(_fields(c) for c in MODELS)) | {"v_init", "e_ex", "e_in", "v_peak", "delta_t", "tau_w", "g_l"}
    for name, (target, sim, note) in PARAMETER_NAMES.items():
        assert sim in ("NEST", "PyNN", "Brian2", "NIR", "snnTorch", "eventsim")
        assert target is not None or note
        if target is not None:
            assert all(t in valid for t in target.split(" and ")), (name, target)
    # lookup ignores case when the spelling is not in the table
    assert suggest("v_TH", ["v_th"], "LIF") == "NEST's v_TH is v_th here"
    assert suggest("T_REF", ["t_ref"], "LIF") == "NEST's T_REF is t_ref here"


def test_net_set_and_get_suggest_names():
    net = es.Network(dt=0.1)
    pop = net.population(3, es.Izhikevich())
    with pytest.raises(TypeError, match="NEST's V_th is v_th here"):
        pop.set(V_th=25.0)
    with pytest.raises(ValueError, match="NEST's U_m"):
        pop.get("U_m")
    lif = net.population(2, es.LIF())
    with pytest.raises(TypeError, match="NEST's E_L is v_rest here"):
        lif.set(E_L=-70.0)
    assert np.array_equal(lif.get("v_rest"), [0.0, 0.0])
