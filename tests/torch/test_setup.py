"""The one set-up path of the torch layers: each resolves its family and runs from that family's declaration."""

import pytest
import torch

import eventsim.torch as est
from eventsim.models import family as fam
from eventsim.models.adaptive import ALIF_FAMILY
from eventsim.models.li import LI_FAMILY
from eventsim.models.lif import IAF_DELTA, IAF_EXP, family_of
from eventsim.models.psc_alpha import IAF_ALPHA
from eventsim.torch import functional as F


@pytest.mark.parametrize("layer, family", [
    (lambda: est.LIF(), IAF_DELTA), (lambda: est.IF(tau_syn=2.0), IAF_EXP), (lambda: est.LIF(tau_syn=2.0), IAF_EXP),
    (lambda: est.ALIF(), ALIF_FAMILY), (lambda: est.ALIF(tau_syn=3.0), ALIF_FAMILY),
    (lambda: est.LIFRecurrent(2, 3), IAF_DELTA), (lambda: est.LIFRecurrent(2, 3, d_theta=0.2), ALIF_FAMILY),
    (lambda: est.LIF(tau_syn=2.0, psc="alpha"), IAF_ALPHA), (lambda: est.LI(), LI_FAMILY)])
def test_every_layer_resolves_its_family(layer, family):
    assert layer().family is family


def test_the_simulator_models_resolve_through_the_same_function():
    import eventsim as es

    assert es.LIF().family is family_of("delta") is IAF_DELTA
    assert es.LIF(tau_syn_ex=2.0, tau_syn_in=2.0).family is family_of("exp") is IAF_EXP
    assert es.ALIF().family is family_of("delta", adaptive=True) is ALIF_FAMILY


def test_kernel_kinds_are_declared_by_the_families():
    codes = lambda kernel: {f.code for f in fam.torch_families(kernel)}  # noqa: E731
    assert codes("point") == {0, 1, 2}
    assert {IAF_ALPHA.code, LI_FAMILY.code} <= codes("family") and not codes("point") & codes("family")
    assert codes(None) == codes("point") | codes("family") and codes("family") == {f.code for f in fam.torch_families()}


def test_the_point_step_is_the_families_declaration():
    # the point kernels call the step a family declares (TorchSteps.point_forward / point_backward), reached
    # through its tag; the generic family kernels' families declare forward / backward instead
    from eventsim.models import lif_torch

    for f in fam.torch_families("point"):
        assert f.torch.point_forward is lif_torch.point_forward, f.name
        assert f.torch.point_backward is lif_torch.point_backward, f.name
        assert f.torch.forward is None and f.torch.backward is None, f.name
    for f in fam.torch_families("family"):
        assert f.torch.point_forward is None and f.torch.point_backward is None, f.name
    # in Python (as the CUDA simulator runs the kernels) the tag dispatches to the family's step
    args = (lif_torch.TORCH_EXACT, 0, 0, fam.SPIKE_GE, 0, 2, 0.5, 0.0, 0, 0.0, 10.0,
            [[0.9], [0.1], [0.0], [0.0], [0.0], [1.0], [0.0], [0.0]], 0, 0.0, 1.0, -float("inf"))
    out = fam.torch_point_forward(IAF_DELTA.tag, *args)
    assert out == lif_torch.point_forward.py_func(*args) and out[4] == 1.0 and out[3] == 2


def test_the_point_step_is_compiled_once_with_the_flags_the_kernels_pass_as_literals():
    # the tag's binding calls the family's step itself: one compilation per argument types, shared by every
    # kernel that calls it, with the flags as literals (constants); not a binding compiled per calling kernel
    import numpy as np
    from numba import njit
    from numba.core import types

    from eventsim.models import lif_torch

    def caller(tag, ref, v, x, nat):
        return fam.torch_point_forward(tag, 1, 0, 0, 1, 0, ref, v, 0.0, 0, 0.0, x, nat, 0, 0.0, 1.0, -np.inf)

    # two kernels (compiled with different flags, as a kernel and its parfor body are)
    first, second = njit(caller), njit(error_model="numpy")(caller)
    nat = np.array([[0.1], [0.0], [0.0], [0.0], [0.5], [1.0], [0.0], [0.0]])
    before = set(lif_torch.point_forward.signatures)
    out = first(IAF_DELTA.tag, 3, 0.25, 8.0, nat)
    assert second(IAF_DELTA.tag, 3, 0.25, 8.0, nat) == out
    assert out == lif_torch.point_forward.py_func(1, 0, 0, 1, 0, 3, 0.25, 0.0, 0, 0.0, 8.0, nat, 0, 0.0, 1.0, -np.inf)
    assert out[4] == 1.0 and out[3] == 3   # euler step 0.25 + 0.1 * (8.5 - 0.25) > 1: a spike, refractory
    new = set(lif_torch.point_forward.signatures) - before
    compiled = [sig for sig in lif_torch.point_forward.signatures
                if sig[:5] == tuple(types.literal(k) for k in (1, 0, 0, 1, 0)) and sig[6] == types.float64]
    assert len(new) <= 1 and len(compiled) == 1, lif_torch.point_forward.signatures


def test_layer_rows_and_run_layer_equal_the_point_kernels_called_directly():
    layer = est.ALIF(tau_m=8.0, tau_syn=2.0, tau_theta=(20.0, 200.0), d_theta=(0.1, 0.05), t_ref=1.0)
    x = torch.rand(30, 2, 4, dtype=torch.float64) * 3
    nat, aff = F.coefficients(layer.spec, 4, 1.0, 8.0, 1.0, 0.0, 0.0, tau_syn=2.0, tau_theta=(20.0, 200.0),
                              d_theta=(0.1, 0.05), dtype=torch.float64)
    rows = F.layer_rows(ALIF_FAMILY, 4, 1.0, torch.float64, spec=layer.spec, tau_m=8.0, tau_syn=2.0, v_th=1.0,
                        v_reset=0.0, v_rest=0.0, tau_theta=(20.0, 200.0), d_theta=(0.1, 0.05))
    assert torch.equal(rows[0], nat) and torch.equal(rows[1], aff)
    s, st, v = F.run_layer(ALIF_FAMILY, x, None, nat, aff, layer.spec, record_v=True)
    s2, st2, v2 = F.neuron_layer(x, None, nat, aff, layer.spec, record_v=True)
    assert torch.equal(s, s2) and torch.equal(v, v2) and torch.equal(st.theta, st2.theta) and s.sum() > 5
    assert torch.equal(layer.double()(x)[0], s)


def test_run_layer_refuses_what_the_declared_kernels_lack():
    nat, aff = F.layer_rows(LI_FAMILY, 2, 1.0, torch.float32, tau_m=5.0, v_rest=0.0)
    assert torch.equal(nat, aff) and not nat.requires_grad
    with pytest.raises(ValueError, match="the li family's torch layer has no recurrent form"):
        F.run_layer(LI_FAMILY, torch.zeros(3, 1, 2), None, nat, aff, w_rec=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="return_v=True"):
        F.run_layer(LI_FAMILY, torch.zeros(3, 1, 2), None, nat, aff, record_v=True)
    with pytest.raises(ValueError, match="torch.kernel is 'point'"):
        F.family_coefficients(IAF_EXP, 2, 1.0, tau_m=5.0)
    with pytest.raises(TypeError, match="unexpected parameters"):
        F.layer_rows(IAF_DELTA, 2, 1.0, psc=1.0)
