"""The neuron-family declarations (eventsim.models.family) and the engines' dispatch over them."""

from typing import NamedTuple

import numpy as np
import pytest

import eventsim as es
from eventsim.models import family as fam
from eventsim.models.adaptive import ALIF_FAMILY
from eventsim.models.lif import IAF_DELTA, IAF_EXP


def test_models_name_their_family_and_pack_its_code():
    cases = [(es.LIF(), IAF_DELTA), (es.IF(), IAF_DELTA), (es.LIF(tau_syn_ex=2.0, tau_syn_in=3.0), IAF_EXP),
             (es.IF(tau_syn_ex=2.0, tau_syn_in=3.0), IAF_EXP), (es.ALIF(), ALIF_FAMILY),
             (es.ALIF(tau_syn_ex=2.0, tau_syn_in=3.0), ALIF_FAMILY)]
    for model, family in cases:
        assert model.family is family
        assert (model.pack(3, 0.1)["family"] == family.code).all()
        assert fam.by_code(family.code) is family
    assert [f.code for f in fam.families()] == sorted({f.code for f in fam.families()})
    assert {"LIF", "IF", "ALIF"} <= set(fam.model_classes())


def test_tags_of_the_families_present():
    codes = np.array([IAF_EXP.code, IAF_DELTA.code, IAF_EXP.code])
    assert fam.tags(codes) == (IAF_DELTA.tag, IAF_EXP.tag)
    assert [type(t) for t in fam.tags(codes)] == [type(IAF_DELTA.tag), type(IAF_EXP.tag)]
    assert fam.tags(np.zeros(0, np.int64)) == (fam.families()[0].tag,)   # no neuron: one stands in
    assert fam.tags() == tuple(f.tag for f in fam.families())


def test_register_refuses_a_taken_code_or_tag_class():
    class Tag(NamedTuple):
        code: int

    taken = fam.Family(name="x", code=IAF_DELTA.code, tag=Tag(IAF_DELTA.code), state=(), ports=(),
                       propagator=None, update_block=None)
    with pytest.raises(ValueError, match="code 0 is taken"):
        fam.register(taken)
    shared = fam.Family(name="y", code=999, tag=IAF_DELTA.tag._replace(code=999), state=(), ports=(),
                        propagator=None, update_block=None)
    with pytest.raises(ValueError, match="NamedTuple class of its own"):
        fam.register(shared)
    wrong = fam.Family(name="z", code=998, tag=Tag(997), state=(), ports=(), propagator=None, update_block=None)
    with pytest.raises(ValueError, match="differs"):
        fam.register(wrong)
    assert 997 not in [f.code for f in fam.families()] and 998 not in [f.code for f in fam.families()]


def _plan_args(model, n=4):
    from eventsim.engines.plan import build_plan

    net = es.Network(dt=0.1)
    net.population(n, model, v_init=np.linspace(10.0, 16.0, n))
    plan = build_plan(net)
    ring = np.zeros(plan.L * plan.C)
    ring[: n] = [0.0, 1.0, 2.0, 3.0][:n]
    return plan, ring


@pytest.mark.parametrize("model", [es.LIF(v_th=15.0), es.LIF(tau_syn_ex=2.0, tau_syn_in=2.0, v_th=15.0),
                                   es.ALIF(v_th=15.0)], ids=["delta", "exp", "alif"])
def test_update_family_runs_the_family_of_the_code_only(model):
    """The compiled chain (the engine's call) and the Python dispatch give the family's own block update; a
    code of a family not among the tags updates nothing."""
    from numba import njit

    @njit
    def compiled(fams, code, a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
        fam.update_family(fams, code, a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag)

    results = []
    for call in (compiled, fam.update_family, None):
        plan, ring = _plan_args(model)
        st, pr = plan.state, plan.params
        flag = np.zeros(4, np.uint8)
        code = int(pr.family[0])
        args = (0, 4, 0, 0, 0, ring, 0.0, True, pr, st, flag)
        if call is None:  # the family's own function
            model.family.update_block(*args)
        else:
            call(fam.tags(), code, *args)
        results.append((st.v.copy(), st.refr.copy(), flag.copy(), ring.copy()))
        if call is compiled:  # a code absent from the tags: nothing happens
            v0 = st.v.copy()
            others = tuple(t for t in fam.tags() if t.code != code)
            compiled(others, code, *args)
            assert np.array_equal(st.v, v0)
    for r in results[1:]:
        for x, y in zip(results[0], r):
            assert np.array_equal(x, y)
    v, refr, flag, ring = results[0]
    assert flag.tolist() == [0, 0, 1, 1] if model.synapse == "delta" else flag.sum() >= 1
    assert (ring[:4] == 0).all()   # the input was consumed


def test_the_event_engine_imports_no_family():
    """The event engine's modules reach the families only through eventsim.models.family (no model module, no
    family's column or function)."""
    import ast
    import pathlib

    engines = pathlib.Path(es.__file__).parent / "engines"
    for name in ("event_cpu.py", "event_plan.py", "event_live.py"):
        tree = ast.parse((engines / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and "models" in node.module:
                assert node.module == "models.family", (name, node.module)
            if isinstance(node, ast.Import):
                assert not any("models" in a.name for a in node.names), name


def test_event_families_declare_every_event_function():
    """A family runs in the event engine iff it declares its event functions; the others are refused."""
    needed = ("pack", "slots", "advance", "sample", "receive", "fires", "reset", "never_crosses", "next_crossing")
    runs = []
    for family in fam.families():
        if family.event is None or not family.event_engine:
            for model in family.models:
                with pytest.raises(NotImplementedError, match="clock engine only"):
                    fam.check_event_engine(type("M", (), {"family": family})())
            continue
        runs.append(family.name)
        assert isinstance(family.event, fam.EventFunctions)
        assert all(getattr(family.event, n) is not None for n in needed), family.name
        assert 0 <= family.event.slots["v"] < fam.slot_count(family)
        assert fam.state_width((family.tag,)) == fam.slot_count(family) + fam.ENGINE_COLUMNS
    assert {"iaf_psc_delta", "iaf_psc_exp", "alif", "li", "iaf_psc_alpha"} <= set(runs)


def test_the_leaky_integrator_declares_its_event_functions_in_its_own_module():
    from eventsim.models.li import LI_FAMILY

    ev = LI_FAMILY.event
    for name in ("advance", "sample", "receive"):
        assert getattr(ev, name).py_func.__module__ == "eventsim.models.li", name
    assert ev.pack.__module__ == "eventsim.models.li"
    # a family without threshold takes the shared ones of the interface module (never an engine's)
    for name in ("fires", "reset", "never_crosses", "next_crossing"):
        assert getattr(ev, name).py_func.__module__ in ("eventsim.models.li", "eventsim.models.family"), name


def test_the_event_chain_of_two_families_compiles_into_its_caller():
    """With two families, event_advance and event_receive become a branch on the family code inside the caller
    (no function call per synaptic event), and each neuron gets its own family's functions."""
    import re

    from numba import njit

    @njit(_nrt=False)
    def deliver(fams, i, t, w, PP, SS, TH, ITH):
        p = fam.event_row(SS, i)
        code = PP[p, fam.FAMILY]
        fam.event_advance(fams, code, i, p, t - SS[i, fam.TL], PP, SS, TH, ITH)
        SS[i, fam.TL] = t
        fam.event_receive(fams, code, i, p, t, w, -1, PP, SS)

    fams = (IAF_DELTA.tag, IAF_EXP.tag)
    models = (es.LIF(), es.LIF(tau_syn_ex=2.0, tau_syn_in=3.0))
    PP = np.vstack([f.event.pack(m, 1)[0] for f, m in zip((IAF_DELTA, IAF_EXP), models)])
    PP[:, fam.FAMILY] = [IAF_DELTA.code, IAF_EXP.code]
    SS = np.zeros((2, fam.state_width(fams)))
    SS[:, 0] = 5.0                 # v (mV)
    SS[1, 1:3] = [30.0, -10.0]     # i_ex, i_in (pA) of the neuron on current synapses
    SS[:, fam.TR] = -1.0
    SS[:, fam.CM] = [0.0, 2.0]     # classes 0 and 1
    TH = np.zeros((2, 0))
    expected = SS.copy()
    for i, f in enumerate((IAF_DELTA, IAF_EXP)):
        f.event.advance(f.tag, i, i, 1.5, PP, expected, TH, TH)
        expected[i, fam.TL] = 1.5
        f.event.receive(f.tag, i, i, 1.5, 2.0, -1, PP, expected)
    for i in range(2):
        deliver(fams, i, 1.5, 2.0, PP, SS, TH, TH)
    assert np.array_equal(SS, expected)
    assert SS[0, 0] != SS[1, 0] and SS[1, 1] != 30.0

    ir = deliver.inspect_llvm(deliver.signatures[0])
    body = next(m.group(0) for m in re.finditer(r"^define [^\n]*@(_ZN[^\n]*)\n.*?^}", ir, re.S | re.M)
                if "deliver" in m.group(1) and not m.group(1).startswith("_ZN7cpython"))
    callees = set(re.findall(r"call [^@\n]*@\"?([\w.$]+)", body))
    assert callees and all(c.startswith("llvm.") or c in ("exp", "expm1") for c in callees), callees
