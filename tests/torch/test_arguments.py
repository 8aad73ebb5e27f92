"""No silent acceptance: every documented argument of every layer changes the result or is refused,
and trainable time constants stay valid whatever the optimiser does."""

import inspect

import pytest
import torch

import eventsim.torch as est

f64 = torch.float64
LAYERS = {"LIF": est.LIF, "IF": est.IF, "ALIF": est.ALIF, "LIFRecurrent": est.LIFRecurrent, "LI": est.LI}

# one non-default value per documented argument
CHANGED = dict(tau_m=20.0, v_th=0.8, v_reset=-0.3, v_rest=0.2, dt=0.5, tau_syn=3.0, t_ref=2.0, reset="subtract",
               surrogate="atan", alpha=3.0, integrator="euler", trainable=True, batch_first=True,
               detach_reset=True, v_init=0.5, norm_input=False, spike_fn="multi", tau_theta=30.0, d_theta=0.5,
               return_state=False, keep_state=True, autapses=True, psc="alpha")
REQUIRED = dict(input_size=4, hidden_size=4)
# arguments that act only together with another one (both runs get it)
CONTEXT = {("IF", "dt"): dict(t_ref=2.0),  # IF adds x per step: dt sets the time unit of t_ref and tau_syn
           ("LIF", "psc"): dict(tau_syn=3.0)}  # the shape of the synaptic current


def _arguments(cls):
    names = [p for p in inspect.signature(cls).parameters if p not in ("kw", "kwargs")]
    return [n for n in names if n not in REQUIRED]


def _build(cls, **kw):
    torch.manual_seed(0)
    if cls is est.LIFRecurrent:
        kw = {**REQUIRED, **kw}
    layer = cls(**kw).double()
    if cls is est.LIFRecurrent:
        with torch.no_grad():
            layer.input_weights.mul_(3.0)
            layer.recurrent_weights.mul_(2.0)
    return layer


def _run(layer):
    """Everything a user can observe: output types, two consecutive calls' spikes and states, gradients."""
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(40, 2, 4, generator=g, dtype=f64) + 1.2).requires_grad_()
    outs = [layer(x), layer(x)]
    seen = [type(o).__name__ for o in outs]
    loss = 0.0
    for o in outs:
        s = o[0] if isinstance(o, tuple) else o
        seen.append(s.detach().clone())
        loss = loss + (s * torch.linspace(-1, 1, s.numel(), dtype=f64).reshape(s.shape)).sum()
        if isinstance(o, tuple):
            seen.append(o[1].v.detach().clone())
            loss = loss + o[1].v.sum()
    params = [p for p in layer.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [x] + params, allow_unused=True)
    seen.append(sorted(n for n, _ in layer.named_parameters()))
    seen += [None if q is None else q.detach().clone() for q in grads]
    return seen


def _same(a, b):
    if len(a) != len(b):
        return False
    for u, v in zip(a, b):
        if isinstance(u, torch.Tensor) or isinstance(v, torch.Tensor):
            if not (isinstance(u, torch.Tensor) and isinstance(v, torch.Tensor) and u.shape == v.shape
                    and torch.equal(u, v)):
                return False
        elif u != v:
            return False
    return True


CASES = [(name, arg) for name, cls in LAYERS.items() for arg in _arguments(cls)]


def test_every_documented_argument_has_a_case():
    missing = {arg for _, arg in CASES} - set(CHANGED)
    assert not missing, f"add a changed value for {sorted(missing)}"


@pytest.mark.parametrize("name, arg", CASES, ids=[f"{n}-{a}" for n, a in CASES])
def test_argument_changes_the_result_or_is_refused(name, arg):
    cls = LAYERS[name]
    ctx = CONTEXT.get((name, arg), {})
    base = _run(_build(cls, **ctx))
    try:
        layer = _build(cls, **ctx, **{arg: CHANGED[arg]})
    except (ValueError, TypeError) as e:
        assert arg in str(e), str(e)  # refused, naming the argument
        return
    assert not _same(_run(layer), base), f"{name}({arg}={CHANGED[arg]!r}) was accepted and changed nothing"


@pytest.mark.parametrize("kw", [dict(integrator="sinabs", norm_input=False),
                                dict(integrator="sinabs", reset="subtract", spike_fn="single", norm_input=False)])
def test_sinabs_options_change_the_result(kw):
    base = {k: v for k, v in kw.items() if k != list(kw)[-1]}
    assert not _same(_run(_build(est.LIF, **kw)), _run(_build(est.LIF, **base)))


def test_recurrent_adaptation_raises_the_threshold():
    plain = _build(est.LIFRecurrent)
    adaptive = _build(est.LIFRecurrent, tau_theta=50.0, d_theta=0.4)
    x = torch.full((60, 2, 4), 1.5, dtype=f64)
    s0, st0 = plain(x)
    s1, st1 = adaptive(x)
    assert st0.theta is None and st1.theta is not None and (st1.theta > 0).any()
    assert s1.sum() < s0.sum()


# ---------------------------------------------------------------------------------------------
# trainable time constants: tau = tau_min + softplus(p)
# ---------------------------------------------------------------------------------------------
def test_trainable_time_constants_keep_their_initial_values():
    """The raw p is computed in float64: built in float64, the time constants read back to 1e-12."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(f64)
    try:
        layer = est.LIF(tau_m=torch.tensor([2.0, 10.0, 500.0]), tau_syn=3.0, trainable=["tau_m", "tau_syn"])
        ref = est.LIF(tau_m=torch.tensor([2.0, 10.0, 500.0]), tau_syn=3.0)
    finally:
        torch.set_default_dtype(default)
    torch.testing.assert_close(layer.tau_m, torch.tensor([2.0, 10.0, 500.0], dtype=f64), rtol=1e-12, atol=0)
    torch.testing.assert_close(layer.tau_syn, torch.tensor(3.0, dtype=f64), rtol=1e-12, atol=0)
    # in float32 (the default dtype) to the float32 precision
    layer32 = est.LIF(tau_m=torch.tensor([2.0, 10.0, 500.0]), trainable="tau_m")
    torch.testing.assert_close(layer32.tau_m.detach(), torch.tensor([2.0, 10.0, 500.0]), rtol=1e-6, atol=0)
    x = torch.rand(30, 2, 3, dtype=f64) * 3
    assert torch.equal(layer(x)[0], ref(x)[0])


def test_trainable_time_constants_stay_valid_under_any_update():
    layer = est.LIF(tau_m=5.0, tau_syn=2.0, dt=1.0, trainable=True)
    opt = torch.optim.SGD(layer.parameters(), lr=1e4)
    x = torch.rand(20, 3, 4) * 4
    for _ in range(3):
        s, st = layer(x)
        loss = -(s.sum() + st.v.sum()) * 100  # pushes the time constants hard
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        raw = layer.parametrizations.tau_m.original
        raw.fill_(-1e4)  # the most negative raw value still gives tau = tau_min > 0
    assert float(layer.tau_m.detach()) == pytest.approx(est.TAU_MIN_STEPS * layer.dt)
    assert float(layer.tau_syn.detach()) > 0
    s, st = layer(x)
    assert torch.isfinite(st.v).all() and torch.isfinite(st.i).all()


@pytest.mark.parametrize("kw, name", [(dict(tau_m=1e-4), "tau_m"), (dict(tau_syn=1e-5, tau_m=3.0), "tau_syn"),
                                      (dict(tau_m=-2.0), "tau_m")])
def test_invalid_initial_time_constants_are_refused(kw, name):
    with pytest.raises(ValueError, match=name):
        est.LIF(trainable=True, **kw)
