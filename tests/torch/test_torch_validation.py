"""Argument validation of the torch layers and functional entry points.

Every bad argument raises ValueError or TypeError at the public boundary
with a message naming the argument (and, for a bad value, the value); valid
lists, ndarrays and tensors keep working.
"""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsim.torch as est
from eventsim.torch import functional as F
from eventsim.torch import surrogate

NAN, INF = math.nan, math.inf


def _names(name):
    """Pattern of a message that names the argument ``name`` (as a whole word)."""
    return rf"(?<![\w.]){re.escape(name)}\b"


def _case(layer, kwargs, exc, name, shown=None, id=None):
    return pytest.param(layer, kwargs, exc, name, shown, id=id)


# (layer class, constructor arguments, exception, argument named, value shown in the message)
CONSTRUCTION = [
    # non-finite parameters (v_th=nan with a subtractive reset used to run with 0 spikes)
    *[_case(est.LIF, {n: v}, ValueError, n, repr(v), id=f"{n}={v}")
      for n in ("tau_m", "v_th", "v_rest", "v_reset", "tau_syn") for v in (NAN, INF, -INF)],
    *[_case(est.ALIF, {n: v}, ValueError, n, repr(v), id=f"alif-{n}={v}")
      for n in ("tau_theta", "d_theta") for v in (NAN, INF)],
    _case(est.LIF, dict(v_th=NAN, reset="subtract"), ValueError, "v_th", "nan", id="v_th=nan-subtract"),
    _case(est.IF, dict(v_th=NAN, reset="subtract"), ValueError, "v_th", "nan", id="if-v_th=nan-subtract"),
    _case(est.LIFRecurrent, dict(input_size=2, hidden_size=3, v_th=NAN), ValueError, "v_th", "nan",
          id="recurrent-v_th=nan"),
    _case(est.LIF, dict(tau_m=[5.0, NAN]), ValueError, "tau_m", id="tau_m-list-with-nan"),
    _case(est.LIF, dict(v_th=torch.tensor([1.0, INF])), ValueError, "v_th", id="v_th-tensor-with-inf"),
    _case(est.LIF, dict(tau_m=np.array([5.0, -1.0])), ValueError, "tau_m", "-1.0", id="tau_m-ndarray-negative"),
    _case(est.LIF, dict(t_ref=NAN), ValueError, "t_ref", "nan", id="t_ref=nan"),
    _case(est.LIF, dict(t_ref=INF), ValueError, "t_ref", "inf", id="t_ref=inf"),
    _case(est.LIF, dict(dt=NAN), ValueError, "dt", "nan", id="dt=nan"),
    _case(est.LIF, dict(v_init=NAN), ValueError, "v_init", "nan", id="v_init=nan"),
    _case(est.LIF, dict(alpha=INF), ValueError, "alpha", "inf", id="alpha=inf"),
    # wrong types
    _case(est.LIF, dict(tau_m="a"), ValueError, "tau_m", "'a'", id="tau_m='a'"),
    _case(est.LIF, dict(v_th="1"), ValueError, "v_th", "'1'", id="v_th='1'"),
    _case(est.LIF, dict(v_reset=None), ValueError, "v_reset", id="v_reset=None"),
    _case(est.LIF, dict(v_rest=True), ValueError, "v_rest", id="v_rest=True"),
    _case(est.LIF, dict(tau_syn="fast"), ValueError, "tau_syn", id="tau_syn='fast'"),
    _case(est.ALIF, dict(tau_theta="slow"), ValueError, "tau_theta", id="tau_theta='slow'"),
    _case(est.ALIF, dict(d_theta=[[0.1, 0.2]]), ValueError, "d_theta", id="d_theta-2d-list"),
    _case(est.LIF, dict(tau_m=torch.ones(2, 3)), ValueError, "tau_m", id="tau_m-2d-tensor"),
    _case(est.LIF, dict(tau_m=[]), ValueError, "tau_m", id="tau_m-empty"),
    _case(est.LIF, dict(v_th=torch.tensor([True])), ValueError, "v_th", id="v_th-bool-tensor"),
    _case(est.LIF, dict(t_ref="2"), ValueError, "t_ref", id="t_ref='2'"),
    _case(est.LIF, dict(t_ref=[1.0, 2.0]), ValueError, "t_ref", id="t_ref-list"),
    _case(est.LIF, dict(dt="1"), ValueError, "dt", id="dt='1'"),
    _case(est.LIF, dict(dt=[0.5]), ValueError, "dt", id="dt-list"),
    _case(est.LIF, dict(v_init="rest"), ValueError, "v_init", id="v_init='rest'"),
    _case(est.LIF, dict(alpha=True), ValueError, "alpha", id="alpha=True"),
    _case(est.LIF, dict(alpha=[1.0, 2.0]), ValueError, "alpha", id="alpha-list"),
    _case(est.LIF, dict(surrogate=["superspike"]), ValueError, "surrogate", id="surrogate-list"),
    _case(est.LIF, dict(surrogate=3), ValueError, "surrogate", id="surrogate=3"),
    _case(est.LIF, dict(integrator=["exact"]), ValueError, "integrator", id="integrator-list"),
    _case(est.LIF, dict(reset=["value"]), ValueError, "reset", id="reset-list"),
    _case(est.LIF, dict(trainable=3), TypeError, "trainable", id="trainable=3"),
    _case(est.LIF, dict(trainable=["v_th", 3]), ValueError, "trainable", id="trainable-non-name"),
    _case(est.LIF, dict(batch_first="yes"), TypeError, "batch_first", "'yes'", id="batch_first='yes'"),
    _case(est.LIF, dict(norm_input="no"), TypeError, "norm_input", id="norm_input='no'"),
    _case(est.LIF, dict(detach_reset="no"), TypeError, "detach_reset", id="detach_reset='no'"),
    # ranges and relations
    _case(est.LIF, dict(tau_m=0.0), ValueError, "tau_m", "0.0", id="tau_m=0"),
    _case(est.LIF, dict(t_ref=-1.0), ValueError, "t_ref", "-1.0", id="t_ref<0"),
    _case(est.LIF, dict(t_ref=1e30), ValueError, "t_ref", "1e+30", id="t_ref-beyond-int32-steps"),
    _case(est.LIF, dict(t_ref=2.0 ** 31, dt=1.0), ValueError, "t_ref", id="t_ref=2**31-steps"),
    _case(est.LIF, dict(v_reset=[0.0, 2.0], v_th=[1.0, 1.0]), ValueError, "v_reset", id="v_reset>=v_th-per-neuron"),
    _case(est.LIF, dict(tau_m=[5.0, 6.0], v_th=[1.0, 1.0, 1.0]), ValueError, "v_th", id="mismatched-lengths"),
    _case(est.LIF, dict(tau_theta=5.0), ValueError, "tau_theta", id="lif-has-no-tau_theta"),
    _case(est.LIF, dict(d_theta=0.1), ValueError, "d_theta", id="lif-has-no-d_theta"),
    # sizes of the recurrent layer
    _case(est.LIFRecurrent, dict(input_size=2, hidden_size=-1), ValueError, "hidden_size", "-1", id="hidden_size=-1"),
    _case(est.LIFRecurrent, dict(input_size=2, hidden_size=0), ValueError, "hidden_size", "0", id="hidden_size=0"),
    _case(est.LIFRecurrent, dict(input_size=0, hidden_size=3), ValueError, "input_size", "0", id="input_size=0"),
    _case(est.LIFRecurrent, dict(input_size=2, hidden_size=2.5), TypeError, "hidden_size", "2.5",
          id="hidden_size=2.5"),
    _case(est.LIFRecurrent, dict(input_size="2", hidden_size=3), TypeError, "input_size", id="input_size='2'"),
    _case(est.LIFRecurrent, dict(input_size=True, hidden_size=3), TypeError, "input_size", id="input_size=True"),
    _case(est.LIFRecurrent, dict(input_size=2, hidden_size=3, autapses="no"), TypeError, "autapses",
          id="autapses='no'"),
    _case(est.LIFRecurrent, dict(input_size=2, hidden_size=3, tau_m=[5.0, 6.0]), ValueError, "tau_m",
          id="recurrent-wrong-length-tau_m"),
]


@pytest.mark.parametrize("layer, kwargs, exc, name, shown", CONSTRUCTION)
def test_bad_parameter_raises_naming_it(layer, kwargs, exc, name, shown):
    with pytest.raises(exc, match=_names(name)) as info:
        layer(**kwargs)
    if shown is not None:
        assert shown in str(info.value), str(info.value)


def test_trainable_parameters_are_validated():
    with pytest.raises(ValueError, match="v_th=nan"):
        est.LIF(v_th=NAN, reset="subtract", trainable=True)
    with pytest.raises(ValueError, match="tau_m"):
        est.LIF(tau_m=torch.tensor([5.0, -2.0], requires_grad=True), trainable=["tau_m"])


def _x(*shape, dtype=torch.float32):
    return torch.full(shape, 1.5, dtype=dtype)


# (layer, call arguments, exception, argument named)
CALLS = [
    pytest.param(est.LIF(), dict(x=[[1.0, 2.0]]), TypeError, "x", id="x-list"),
    pytest.param(est.LIF(), dict(x=np.ones((4, 2, 3))), TypeError, "x", id="x-ndarray"),
    pytest.param(est.LIF(batch_first=True), dict(x=_x(5)), ValueError, "x", id="1d-x-batch_first"),
    pytest.param(est.LIF(batch_first=True), dict(x=_x()), ValueError, "x", id="0d-x-batch_first"),
    pytest.param(est.LIF(), dict(x=_x(5)), ValueError, "x", id="1d-x"),
    pytest.param(est.LIF(), dict(x=_x(4, 2, 3, dtype=torch.complex64)), TypeError, "x", id="x-complex64"),
    pytest.param(est.LIF(tau_m=torch.tensor([5.0, 6.0, 7.0])), dict(x=_x(4, 2, 2)), ValueError, "tau_m",
                 id="wrong-length-tau_m"),
    pytest.param(est.LIF(v_th=[1.0, 2.0]), dict(x=_x(4, 2, 3)), ValueError, "v_th", id="wrong-length-v_th-list"),
    pytest.param(est.ALIF(d_theta=np.array([0.1, 0.2])), dict(x=_x(4, 2, 3)), ValueError, "d_theta",
                 id="wrong-length-d_theta"),
    pytest.param(est.LIF(v_init=[0.0, 0.1, 0.2]), dict(x=_x(4, 2, 2)), ValueError, "v_init",
                 id="wrong-length-v_init"),
    pytest.param(est.LIF(), dict(x=_x(4, 2, 3), state=(torch.zeros(2, 3),)), TypeError, "state",
                 id="state-tuple"),
    pytest.param(est.LIF(), dict(x=_x(4, 2, 3), state=F.NeuronState(v=np.zeros((2, 3)))), TypeError, "state.v",
                 id="state.v-ndarray"),
    pytest.param(est.LIF(), dict(x=_x(4, 2, 3), state=F.NeuronState(v=torch.tensor(0.0))), ValueError, "state.v",
                 id="state.v-0d"),
    pytest.param(est.LIF(t_ref=2.0), dict(x=_x(4, 2, 3), state=F.NeuronState(v=torch.zeros(2, 3),
                                                                            refr=torch.full((2, 3), 1.5))),
                 TypeError, "state.refr", id="state.refr-float"),
    pytest.param(est.LIF(), dict(x=_x(4, 2, 3), return_v="yes"), TypeError, "return_v", id="return_v='yes'"),
    pytest.param(est.LIFRecurrent(4, 3), dict(x=_x(4, 2, 5)), ValueError, "x", id="recurrent-x-wrong-features"),
    pytest.param(est.LIFRecurrent(4, 3, batch_first=True), dict(x=_x(4)), ValueError, "x",
                 id="recurrent-1d-x-batch_first"),
]


@pytest.mark.parametrize("layer, kwargs, exc, name", CALLS)
def test_bad_call_raises_naming_the_argument(layer, kwargs, exc, name):
    with pytest.raises(exc, match=_names(name)):
        layer(**kwargs)


def test_per_neuron_lists_ndarrays_and_tensors_agree():
    """Lists and ndarrays are converted as the equivalent tensor, with the same spikes."""
    x = torch.linspace(0.0, 3.0, 2 * 3 * 4).reshape(2, 3, 4).repeat(10, 1, 1)
    tau = [4.0, 8.0, 16.0, 32.0]
    ref, _ = est.LIF(tau_m=torch.tensor(tau))(x)
    assert ref.sum() > 0
    for value in (tau, np.array(tau), tuple(tau)):
        s, _ = est.LIF(tau_m=value)(x)
        assert torch.equal(s, ref)


# ---------------------------------------------------------------------------------------------
# functional entry points
# ---------------------------------------------------------------------------------------------
SPEC = F.make_spec()
SPEC_SYN = F.make_spec(synapse=True)
SPEC_ADAPT = F.make_spec(adaptive=True)


def _coef(**kw):
    args = dict(spec=SPEC, n=3, dt=1.0, tau_m=10.0, v_th=1.0, v_reset=0.0, v_rest=0.0)
    args.update(kw)
    return F.coefficients(**args)


@pytest.mark.parametrize("kwargs, exc, name", [
    pytest.param(dict(spec="exact"), TypeError, "spec", id="spec-str"),
    pytest.param(dict(n=0), ValueError, "n", id="n=0"),
    pytest.param(dict(n=2.0), TypeError, "n", id="n-float"),
    pytest.param(dict(dt=NAN), ValueError, "dt", id="dt=nan"),
    pytest.param(dict(dt=-1.0), ValueError, "dt", id="dt<0"),
    pytest.param(dict(tau_m=torch.tensor([1.0, NAN, 2.0])), ValueError, "tau_m", id="tau_m-nan"),
    pytest.param(dict(tau_m=torch.ones(2)), ValueError, "tau_m", id="tau_m-wrong-length"),
    pytest.param(dict(v_th=INF), ValueError, "v_th", id="v_th=inf"),
    pytest.param(dict(v_reset="a"), ValueError, "v_reset", id="v_reset='a'"),
    pytest.param(dict(v_rest=NAN), ValueError, "v_rest", id="v_rest=nan"),
    pytest.param(dict(spec=SPEC_SYN), ValueError, "tau_syn", id="tau_syn-missing"),
    pytest.param(dict(spec=SPEC_SYN, tau_syn=0.0), ValueError, "tau_syn", id="tau_syn=0"),
    pytest.param(dict(spec=SPEC_ADAPT, d_theta=0.1), ValueError, "tau_theta", id="tau_theta-missing"),
    pytest.param(dict(spec=SPEC_ADAPT, tau_theta=10.0, d_theta=NAN), ValueError, "d_theta", id="d_theta=nan"),
    pytest.param(dict(dtype=torch.int32), TypeError, "dtype", id="dtype-int"),
    pytest.param(dict(leaky="no"), TypeError, "leaky", id="leaky='no'"),
])
def test_coefficients_validate(kwargs, exc, name):
    with pytest.raises(exc, match=_names(name)):
        _coef(**kwargs)


@pytest.mark.parametrize("kwargs, exc, name", [
    pytest.param(dict(integrator=["exact"]), ValueError, "integrator", id="integrator-list"),
    pytest.param(dict(reset=None), ValueError, "reset", id="reset=None"),
    pytest.param(dict(ref_steps=-1), ValueError, "ref_steps", id="ref_steps<0"),
    pytest.param(dict(ref_steps=1.5), TypeError, "ref_steps", id="ref_steps-float"),
    pytest.param(dict(synapse="yes"), TypeError, "synapse", id="synapse='yes'"),
    pytest.param(dict(surrogate=None), ValueError, "surrogate", id="surrogate=None"),
])
def test_make_spec_validates(kwargs, exc, name):
    with pytest.raises(exc, match=_names(name)):
        F.make_spec(**kwargs)


def test_resolve_rejects_unhashable_names_and_bool_alpha():
    with pytest.raises(ValueError, match="surrogate"):
        surrogate.resolve(["atan"])
    with pytest.raises(ValueError, match="alpha"):
        surrogate.resolve("atan", alpha=True)


@pytest.mark.parametrize("call, exc, name", [
    pytest.param(lambda nat, aff: F.neuron_layer([[1.0]], None, nat, aff, SPEC), TypeError, "x", id="x-list"),
    pytest.param(lambda nat, aff: F.neuron_layer(_x(4, 2, 2), None, nat, aff, SPEC), ValueError, "nat",
                 id="nat-wrong-n"),
    pytest.param(lambda nat, aff: F.neuron_layer(_x(4, 2, 3), None, nat.numpy(), aff, SPEC), TypeError, "nat",
                 id="nat-ndarray"),
    pytest.param(lambda nat, aff: F.neuron_layer(_x(4, 2, 3), None, nat, aff, "exact"), TypeError, "spec",
                 id="spec-str"),
    pytest.param(lambda nat, aff: F.neuron_layer(_x(4, 2, 3), None, nat, aff, SPEC, v_init="a"), ValueError,
                 "v_init", id="v_init='a'"),
    pytest.param(lambda nat, aff: F.neuron_layer(_x(4, 2, 3), None, nat, aff, SPEC, v_init=torch.zeros(2)),
                 ValueError, "v_init", id="v_init-wrong-length"),
    pytest.param(lambda nat, aff: F.neuron_layer(_x(4, 2, 3), (1,), nat, aff, SPEC), TypeError, "state",
                 id="state-tuple"),
    pytest.param(lambda nat, aff: F.recurrent_layer(_x(4, 2, 3), np.zeros((3, 3)), None, nat, aff, SPEC),
                 TypeError, "w_rec", id="w_rec-ndarray"),
    pytest.param(lambda nat, aff: F.recurrent_layer(_x(4, 3), torch.zeros(3, 3), None, nat, aff, SPEC),
                 ValueError, "x", id="recurrent-2d-x"),
])
def test_layer_functions_validate(call, exc, name):
    nat, aff = _coef()
    with pytest.raises(exc, match=_names(name)):
        call(nat, aff)


# ---------------------------------------------------------------------------------------------
# export to the simulator
# ---------------------------------------------------------------------------------------------
def _model():
    return torch.nn.Sequential(torch.nn.Linear(3, 2), est.LIF(), torch.nn.Linear(2, 2), est.LIF())


SPIKES = np.zeros((4, 1, 3))


@pytest.mark.parametrize("call, exc, name", [
    pytest.param(lambda m: est.to_network("model", steps=3), TypeError, "model", id="model-str"),
    pytest.param(lambda m: est.to_network(m, steps=2.5), TypeError, "steps", id="steps-float"),
    pytest.param(lambda m: est.to_network(m, steps=0), ValueError, "steps", id="steps=0"),
    pytest.param(lambda m: est.to_network(m, dt=NAN, steps=3), ValueError, "dt", id="dt=nan"),
    pytest.param(lambda m: est.to_network(m, dt="1", steps=3), ValueError, "dt", id="dt='1'"),
    pytest.param(lambda m: est.to_network(m, steps=3, record="no"), TypeError, "record", id="record='no'"),
    pytest.param(lambda m: est.to_network(m, inputs=[[["a", "b", "c"]]]), TypeError, "inputs", id="inputs-str"),
    pytest.param(lambda m: est.to_network(m, inputs=np.full((2, 1, 3), INF)), ValueError, "inputs",
                 id="inputs-inf"),
    pytest.param(lambda m: est.to_network(m, inputs=np.zeros((0, 1, 3))), ValueError, "inputs", id="inputs-T=0"),
    pytest.param(lambda m: est.simulate(m, SPIKES, layer=2), ValueError, "layer", id="simulate-layer=2"),
    pytest.param(lambda m: est.simulate(m, SPIKES, layer=-3), ValueError, "layer", id="simulate-layer=-3"),
    pytest.param(lambda m: est.simulate(m, SPIKES, layer=1.0), TypeError, "layer", id="simulate-layer-float"),
    pytest.param(lambda m: est.to_network(m, inputs=SPIKES).torch_export.spikes(5), ValueError, "layer",
                 id="spikes-layer=5"),
])
def test_export_validates(call, exc, name):
    with pytest.raises(exc, match=_names(name)):
        call(_model())


def test_export_accepts_lists_and_bool_tensors_as_spike_counts():
    """Inputs given as a nested list or a bool tensor build the same source as the float array."""
    counts = np.zeros((4, 1, 3))
    counts[[0, 2, 3], 0, [1, 0, 2]] = 1.0
    m = _model()
    ref = est.to_network(m, inputs=counts).torch_export.source
    for inputs in (counts.tolist(), torch.as_tensor(counts > 0)):
        src = est.to_network(m, inputs=inputs).torch_export.source
        assert np.array_equal(src.spike_senders, ref.spike_senders)
        assert np.array_equal(src.spike_steps, ref.spike_steps)


def test_values_beyond_the_default_dtype_are_refused():
    """A finite float64 value that would be infinite in the float32 buffers is an error, not an inf."""
    with pytest.raises(ValueError, match=_names("v_th")):
        est.LIF(v_th=1e39, reset="subtract")
    with pytest.raises(ValueError, match=_names("tau_m")):
        est.LIF(tau_m=[5.0, 1e40])
    with pytest.raises(ValueError, match=_names("v_reset")):  # distinct in float64, equal in float32
        est.LIF(v_reset=1.0 - 1e-9, v_th=1.0)


# ---------------------------------------------------------------------------------------------
# property: any parameters either build a layer with finite dynamics or raise naming one of them
# ---------------------------------------------------------------------------------------------
_NUMBER = st.one_of(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
                    st.sampled_from([NAN, INF, -INF, 0.0]))
_NAMES = ("tau_m", "v_th", "v_reset", "v_rest", "t_ref", "tau_syn", "d_theta", "tau_theta")


@settings(max_examples=60, deadline=None)
@given(tau_m=_NUMBER, v_th=_NUMBER, v_reset=_NUMBER, v_rest=_NUMBER,
       t_ref=st.sampled_from([0.0, 1.0, 2.0, 0.5, -1.0, NAN, INF]),
       tau_syn=st.one_of(st.none(), _NUMBER), adaptive=st.booleans(), d_theta=_NUMBER, tau_theta=_NUMBER,
       reset=st.sampled_from(["value", "subtract"]))
def test_any_parameters_build_finite_dynamics_or_raise_naming_one(tau_m, v_th, v_reset, v_rest, t_ref, tau_syn,
                                                                  adaptive, d_theta, tau_theta, reset):
    kw = dict(tau_m=tau_m, v_th=v_th, v_reset=v_reset, v_rest=v_rest, t_ref=t_ref, tau_syn=tau_syn, reset=reset)
    if adaptive:
        kw.update(d_theta=d_theta, tau_theta=tau_theta)
    try:
        layer = (est.ALIF if adaptive else est.LIF)(**kw)
    except ValueError as e:
        assert re.search("|".join(_names(n) for n in _NAMES), str(e)), str(e)
        return
    x = torch.linspace(-2.0, 4.0, 8 * 2 * 3, dtype=torch.float64).reshape(8, 2, 3)
    s, state, v = layer.double()(x, return_v=True)
    assert torch.isfinite(v).all() and torch.isfinite(state.v).all()
    assert set(s.unique().tolist()) <= {0.0, 1.0}
