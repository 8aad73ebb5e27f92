"""Parity cases: how each peer library is run, and the matching eventsim.torch layer.

Used by ``generate_peer_reference.py`` (writes ``peer_<case>.npz`` from the
installed peers) and by ``tests/torch/test_parity.py`` (checks the stored
files, and the live libraries when they are importable).  Every case runs
float32 inputs ``x[T, B, N]`` through the peer's neuron, records spikes and
the membrane after every step, and differentiates
``loss = sum(spikes * gs) + sum(v * gv)`` with fixed random ``gs, gv``.
"""

import math

import numpy as np

T, B, N = 60, 4, 16
DT = 1.0  # ms

# name -> (peer, peer options, eventsim.torch.LIF keyword arguments, input scale, input offset)
CASES = {
    "norse_lifbox": ("norse", dict(kind="box"),
                     dict(tau_m=10.0, v_th=1.0, v_reset=0.0, v_rest=0.0, integrator="euler",
                          surrogate="superspike", alpha=1.0), 1.5, 1.2),
    "norse_lifbox_subtract": ("norse", dict(kind="box", subtract=True, v_leak=0.2, tau_mem_inv=50.0),
                              dict(tau_m=20.0, v_th=1.0, v_reset=0.0, v_rest=0.2, integrator="euler",
                                   reset="subtract", surrogate="superspike", alpha=1.0), 1.5, 1.2),
    "norse_lif": ("norse", dict(kind="lif"),
                  dict(tau_m=10.0, tau_syn=5.0, v_th=1.0, v_reset=0.0, v_rest=0.0, integrator="euler",
                       surrogate="superspike", alpha=1.0), 0.3, 0.2),
    "snntorch_leaky": ("snntorch", dict(beta=0.9, reset="subtract", grad="atan"),
                       dict(tau_m=-DT / math.log(0.9), v_th=1.0, integrator="snntorch", reset="subtract",
                            surrogate="atan", alpha=2.0), 0.5, 0.15),
    "snntorch_leaky_zero": ("snntorch", dict(beta=0.8, reset="zero", grad="fast_sigmoid"),
                            dict(tau_m=-DT / math.log(0.8), v_th=1.0, v_reset=0.0, integrator="snntorch",
                                 reset="value", surrogate="superspike", alpha=25.0), 0.5, 0.25),
    "spikingjelly_lif": ("spikingjelly", dict(tau=2.0, soft=False, detach=False),
                         dict(tau_m=2.0, v_th=1.0, v_reset=0.0, v_rest=0.0, integrator="spikingjelly",
                              reset="value", surrogate="sigmoid", alpha=4.0), 1.2, 1.0),
    "spikingjelly_lif_soft": ("spikingjelly", dict(tau=3.0, soft=True, detach=True),
                              dict(tau_m=3.0, v_th=1.0, v_reset=0.0, v_rest=0.0, integrator="spikingjelly",
                                   reset="subtract", detach_reset=True, surrogate="atan", alpha=2.0), 1.2, 1.0),
    "sinabs_lif": ("sinabs", dict(tau_mem=10.0),
                   dict(tau_m=10.0, v_th=1.0, v_rest=0.0, integrator="sinabs", reset="subtract",
                        surrogate="single_exponential", alpha=2.0, batch_first=True), 1.5, 1.5),
    "sinabs_lif_syn_nonorm": ("sinabs", dict(tau_mem=10.0, tau_syn=5.0, norm_input=False),
                              dict(tau_m=10.0, tau_syn=5.0, v_th=1.0, v_rest=0.0, integrator="sinabs",
                                   reset="subtract", norm_input=False, surrogate="single_exponential",
                                   alpha=2.0, batch_first=True), 0.1, 0.025),
    "sinabs_lif_syn_single": ("sinabs", dict(tau_mem=20.0, tau_syn=5.0, norm_input=True, single=True),
                              dict(tau_m=20.0, tau_syn=5.0, v_th=1.0, v_rest=0.0, integrator="sinabs",
                                   reset="subtract", spike_fn="single", surrogate="single_exponential",
                                   alpha=2.0, batch_first=True), 1.5, 1.5),
}


def inputs(name):
    """Deterministic float32 inputs ``x[T, B, N]`` and loss weights ``gs, gv`` of a case."""
    scale, offset = CASES[name][3], CASES[name][4]
    rng = np.random.default_rng(sorted(CASES).index(name) + 1)
    x = (rng.standard_normal((T, B, N)) * scale + offset).astype(np.float32)
    gs = rng.standard_normal((T, B, N)).astype(np.float32)
    gv = (0.1 * rng.standard_normal((T, B, N))).astype(np.float32)
    return x, gs, gv


def run_peer(name):
    """Run the installed peer: returns dict(spikes, v, grad_x) as float32 [T, B, N] arrays."""
    import torch

    peer, opt, _, _, _ = CASES[name]
    x_np, gs_np, gv_np = inputs(name)
    x = torch.tensor(x_np, requires_grad=True)
    gs, gv = torch.tensor(gs_np), torch.tensor(gv_np)
    if peer == "norse":
        spikes, v = _norse(x, opt)
    elif peer == "snntorch":
        spikes, v = _snntorch(x, opt)
    elif peer == "spikingjelly":
        spikes, v = _spikingjelly(x, opt)
    else:
        spikes, v = _sinabs(x, opt)
    loss = (spikes * gs).sum() + (v * gv).sum()
    (gx,) = torch.autograd.grad(loss, x)
    return dict(spikes=spikes.detach().numpy(), v=v.detach().numpy(), grad_x=gx.numpy())


def _norse(x, opt):
    import torch
    from norse.torch.functional.reset import reset_subtract, reset_value
    from norse.torch.module.lif import LIFCell, LIFParameters
    from norse.torch.module.lif_box import LIFBoxCell, LIFBoxParameters

    reset = reset_subtract if opt.get("subtract") else reset_value
    if opt["kind"] == "box":
        p = LIFBoxParameters(tau_mem_inv=torch.as_tensor(opt.get("tau_mem_inv", 100.0)),
                             v_leak=torch.as_tensor(opt.get("v_leak", 0.0)), method="super",
                             reset_method=reset)
        cell = LIFBoxCell(p)
    else:
        cell = LIFCell(LIFParameters(method="super"))
    state = None
    zs, vs = [], []
    for xt in x.unbind(0):
        z, state = cell(xt, state)
        zs.append(z)
        vs.append(state.v)
    return torch.stack(zs), torch.stack(vs)


def _snntorch(x, opt):
    import snntorch
    import torch
    from snntorch import surrogate

    grad = surrogate.atan(alpha=2.0) if opt["grad"] == "atan" else surrogate.fast_sigmoid(slope=25)
    lif = snntorch.Leaky(beta=opt["beta"], threshold=1.0, reset_mechanism=opt["reset"], spike_grad=grad)
    mem = torch.zeros_like(x[0])
    zs, vs = [], []
    for xt in x.unbind(0):
        z, mem = lif(xt, mem)
        zs.append(z)
        vs.append(mem)
    return torch.stack(zs), torch.stack(vs)


def _spikingjelly(x, opt):
    from spikingjelly.activation_based import neuron, surrogate

    sg = surrogate.ATan() if opt["soft"] else surrogate.Sigmoid()
    node = neuron.LIFNode(tau=opt["tau"], v_reset=None if opt["soft"] else 0.0, surrogate_function=sg,
                          detach_reset=opt["detach"], step_mode="m", store_v_seq=True)
    z = node(x)
    return z, node.v_seq


def _sinabs(x, opt):
    from sinabs.activation import SingleSpike
    from sinabs.layers import LIF

    kw = dict(tau_mem=opt["tau_mem"], tau_syn=opt.get("tau_syn"), norm_input=opt.get("norm_input", True),
              record_states=True)
    if opt.get("single"):
        kw["spike_fn"] = SingleSpike
    layer = LIF(**kw)
    xb = x.transpose(0, 1)
    z = layer(xb)
    return z.transpose(0, 1), layer.recordings["v_mem"].transpose(0, 1)


def run_ours(name, dtype=None):
    """Run the matching eventsim.torch layer on the case's inputs; same outputs as :func:`run_peer`."""
    import torch

    import eventsim.torch as est

    kw = dict(CASES[name][2])
    kw.setdefault("dt", DT)
    layer = est.LIF(**kw)
    x_np, gs_np, gv_np = inputs(name)
    x = torch.tensor(x_np, requires_grad=True)
    gs, gv = torch.tensor(gs_np), torch.tensor(gv_np)
    xin = x.transpose(0, 1) if kw.get("batch_first") else x
    spikes, _, v = layer(xin, return_v=True)
    if kw.get("batch_first"):
        spikes, v = spikes.transpose(0, 1), v.transpose(0, 1)
    loss = (spikes * gs).sum() + (v * gv).sum()
    (gx,) = torch.autograd.grad(loss, x)
    return dict(spikes=spikes.detach().numpy(), v=v.detach().numpy(), grad_x=gx.numpy())


def available(peer):
    """Whether the peer library can be imported here."""
    import importlib.util

    return importlib.util.find_spec(peer) is not None
