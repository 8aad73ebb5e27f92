"""eventsim.nir: NIR export and import, round trips, graphs exported by snnTorch, norse and sinabs.

Round trips (eventsim -> NIR file -> eventsim) must give identical spikes,
in torch (float64) and in the clock engine.  The stored graphs in
tests/nir_reference/ were written by the peer libraries themselves
(generate_nir_reference.py, with each library's own output for fixed
inputs); sinabs integrates exactly, as eventsim, so its spikes must come
back identical; snnTorch and norse use forward Euler, checked through a
NumPy forward-Euler reading of NIR's equations (below) that reproduces the
library's output, and whose limit of small sub-steps is eventsim's exact
integration.
"""

import glob
import importlib.util
import os

import numpy as np
import pytest

nir = pytest.importorskip("nir", minversion="1.0.5")
torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import eventsim as es  # noqa: E402
import eventsim.torch as est  # noqa: E402
from eventsim.nir import LI_THRESHOLD, SUPPORTED, from_nir, to_nir  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "nir_reference")
TD = est.TimeDistributed


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def through_file(graph, tmp_path):
    path = str(tmp_path / "graph.nir")
    nir.write(path, graph)
    return nir.read(path)


def lif(**kw):
    return est.LIF(dt=1.0, return_state=False, **kw)


def models():
    torch.manual_seed(0)
    yield "linear", nn.Sequential(nn.Linear(12, 20), lif(tau_m=5.0, v_th=1.0, v_rest=0.1, v_reset=-0.2),
                                  nn.Linear(20, 6, bias=False), lif(tau_m=torch.linspace(4.0, 9.0, 6), tau_syn=3.0)), \
        (12,)
    yield "conv", nn.Sequential(TD(nn.Conv2d(1, 3, 3, padding=1)), lif(tau_m=6.0), TD(nn.AvgPool2d(2)),
                                TD(nn.Conv2d(3, 4, 3, stride=2, padding=1)), lif(tau_m=4.0), TD(nn.Flatten()),
                                nn.Linear(16, 5), lif(tau_m=5.0)), (1, 8, 8)
    yield "sumpool", nn.Sequential(TD(nn.Conv2d(1, 3, 3, padding=1, bias=False)), lif(tau_m=6.0),
                                   TD(nn.AvgPool2d(2, divisor_override=1)), TD(nn.Flatten()),
                                   nn.Linear(48, 5), lif(tau_m=5.0)), (1, 8, 8)
    yield "conv1d", nn.Sequential(TD(nn.Conv1d(2, 3, 3, padding="same")), lif(tau_m=6.0), TD(nn.Flatten()),
                                  nn.Linear(24, 4), lif(tau_m=5.0, tau_syn=2.0)), (2, 8)
    yield "recurrent", nn.Sequential(nn.Linear(12, 16),
                                     est.LIFRecurrent(16, 10, tau_m=6.0, dt=1.0, return_state=False),
                                     nn.Linear(10, 4), est.IF(v_th=0.5, dt=1.0, return_state=False)), (12,)


def spikes_in(shape, T=40, B=3, p=0.35, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B) + tuple(shape), generator=g) < p).double()


@pytest.mark.parametrize("name", ["linear", "conv", "sumpool", "conv1d", "recurrent"])
def test_torch_round_trip_identical_spikes(name, tmp_path):
    model, shape = {k: (m, s) for k, m, s in models()}[name]
    x = spikes_in(shape)
    est.init_for_spikes(model, x, fraction=0.5)
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(3.0)  # a busy output layer: many spikes to compare
        if name == "recurrent":
            model[0].weight.mul_(2.0)
    model = model.double()
    graph = through_file(to_nir(model, input_shape=shape), tmp_path)
    assert graph.metadata["time_unit"] == "ms" and float(graph.metadata["dt"]) == 1.0
    back = from_nir(graph, dt=1.0).double()
    with torch.no_grad():
        want = model(x)
        got = back(x)
    assert want.sum() > 15, "the test network must spike"
    assert torch.equal(got, want)
    net = from_nir(graph, dt=1.0, to="network", inputs=x)
    info = net.nir_import
    net.run(info.run_steps * net.dt)
    assert np.array_equal(info.spikes(), want.numpy())
    # and the torch bridge's own export agrees
    assert np.array_equal(est.simulate(model, x).numpy(), want.numpy())


def test_torch_export_nodes_and_parameters():
    model = nn.Sequential(nn.Linear(3, 2), lif(tau_m=7.0, v_th=1.5, v_rest=0.25, v_reset=-0.5),
                          nn.Linear(2, 2), lif(tau_m=4.0, tau_syn=2.5),
                          nn.Linear(2, 2), est.IF(v_th=2.0, dt=0.5, return_state=False))
    g = to_nir(model, dt=1.0)
    kinds = {k: type(v).__name__ for k, v in g.nodes.items()}
    assert sorted(kinds.values()) == sorted(["Input", "Affine", "LIF", "Affine", "CubaLIF", "Affine", "IF",
                                             "Output"])
    node = {t: g.nodes[k] for k, t in kinds.items()}
    assert np.all(node["LIF"].tau == 7.0) and np.all(node["LIF"].r == 1.0)
    assert np.all(node["LIF"].v_leak == 0.25) and np.all(node["LIF"].v_threshold == 1.5)
    assert np.all(node["CubaLIF"].tau_mem == 4.0) and np.all(node["CubaLIF"].tau_syn == 2.5)
    assert np.all(node["CubaLIF"].w_in == 1.0)
    assert np.all(node["IF"].r == 2.0)  # v += x per step of 0.5 ms: dv/dt = x / dt
    if hasattr(node["LIF"], "v_reset"):
        assert np.all(node["LIF"].v_reset == -0.5)


def test_exact_integration_of_nir_lif():
    """One LIF node under a constant input: the membrane follows the closed form at every step."""
    tau, r, v_leak, I = 7.0, 2.0, -0.3, 0.4
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([1])),
                            "w": nir.Linear(np.array([[1.0]])),
                            "li": nir.LI(tau=np.array([tau]), r=np.array([r]), v_leak=np.array([v_leak])),
                            "output": nir.Output(output_type=np.array([1]))},
                     edges=[("input", "w"), ("w", "li"), ("li", "output")])
    dt, T = 0.5, 40
    x = torch.full((T, 1, 1), I)
    with torch.no_grad():
        v = from_nir(g, dt=dt)(x).numpy().reshape(-1)
    t = dt * np.arange(1, T + 1)
    want = v_leak + r * I * (1.0 - np.exp(-t / tau))  # v starts at v_leak
    assert np.allclose(v, want, rtol=1e-12, atol=1e-12)
    # the same graph in the simulator: LI is a neuron that never fires, its membrane is recorded
    with pytest.raises(ValueError, match="integer spike counts"):
        from_nir(g, dt=dt, to="network", inputs=x.numpy())
    net = from_nir(g, dt=dt, to="network", inputs=np.ones((T, 1, 1)))
    info = net.nir_import
    assert info.populations["li"].model.v_th == LI_THRESHOLD
    net.run(info.run_steps * dt)
    assert np.allclose(info.spikes().reshape(-1), v_leak + r * 1.0 * (1.0 - np.exp(-t / tau)), rtol=1e-12,
                       atol=1e-12)


def network_for_export():
    net = es.Network(dt=0.5, seed=3)
    src = net.spike_source(senders=np.arange(40) % 8, times=np.repeat(np.arange(20), 2) * 1.0, n=8)
    a = net.population(10, es.LIF(tau_m=8.0, c_m=8.0, v_th=1.0, v_reset=0.0, t_ref=0.0), label="exc")
    b = net.population(6, es.LIF(tau_m=10.0, c_m=37.0, tau_syn_ex=3.0, tau_syn_in=3.0, v_th=0.4, v_rest=-0.1,
                                 v_reset=-0.2, t_ref=0.0))
    c = net.population(4, es.IF(c_m=5.0, v_th=1.5, v_reset=0.0, t_ref=0.0))
    rng = np.random.default_rng(0)
    net.connect(src, a, rule=es.FixedProbability(0.6), weight=rng.uniform(0.2, 0.9), delay=0.5)
    net.connect(a, a, rule=es.FixedProbability(0.3), weight=-0.3, delay=1.5)
    net.connect(a, b, rule=es.AllToAll(), weight=es.Normal(8.0, 6.0),
                delay=1.0)
    net.connect(src[:3], b, rule=es.AllToAll(), weight=4.0, delay=0.5)
    net.connect(b, c, rule=es.AllToAll(), weight=0.7, delay=0.5)
    recs = [net.record_spikes(p) for p in (a, b, c)]
    return net, src, recs


def test_network_round_trip_identical_spikes(tmp_path):
    net, src, recs = network_for_export()
    graph = through_file(to_nir(net), tmp_path)
    types = sorted(type(v).__name__ for v in graph.nodes.values())
    assert types.count("Delay") >= 2 and "CubaLIF" in types and "IF" in types and "LIF" in types
    T = 40
    net.run(T * net.dt)
    assert all(len(r) > 5 for r in recs), [len(r) for r in recs]
    inputs = np.zeros((T, 1, 8))
    np.add.at(inputs, (np.round(src.spike_times / net.dt).astype(int), 0, src.spike_senders), 1.0)
    back = from_nir(graph, dt=net.dt, to="network", inputs=inputs)
    info = back.nir_import
    back.run(T * net.dt)
    outs = sorted(info.outputs)
    assert len(outs) == 3
    for rec, pop in zip(recs, ["exc", "pop_1", "pop_2"]):
        got = info.recorders[f"output_{pop}"]
        assert np.array_equal(got.steps, rec.steps) and np.array_equal(got.senders, rec.senders)
    # weights come back bit for bit
    w0 = np.sort(np.concatenate([p.weight for p in net.projections]))
    w1 = np.sort(np.concatenate([p.weight for p in back.projections]))
    assert np.array_equal(w0, w1)


def test_network_to_torch_with_delay_nodes(tmp_path):
    """A graph with Delay nodes runs in torch (a time shift) and in the simulator alike."""
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([4])),
                            "d": nir.Delay(delay=np.array([0.0, 1.0, 2.0, 3.0])),
                            "w": nir.Affine(np.full((3, 4), 0.6), np.array([0.05, 0.0, 0.1])),
                            "lif": nir.LIF(tau=np.full(3, 4.0), r=np.full(3, 1.5), v_leak=np.zeros(3),
                                           v_threshold=np.ones(3)),
                            "output": nir.Output(output_type=np.array([3]))},
                     edges=[("input", "d"), ("d", "w"), ("w", "lif"), ("lif", "output")])
    x = spikes_in((4,), T=40, B=2, p=0.5)
    path = str(tmp_path / "delay.nir")
    nir.write(path, g)
    with torch.no_grad():
        want = from_nir(path, dt=1.0)(x)  # a file name is read with nir.read
    assert want.sum() > 10
    net = from_nir(g, dt=1.0, to="network", inputs=x)
    delays = np.unique(np.concatenate([p.delay_steps for p in net.projections]))
    assert set(delays.tolist()) == {1, 2, 3, 4}
    info = net.nir_import
    net.run(info.run_steps * net.dt)
    assert np.array_equal(info.spikes(), want.numpy())


def lif_node(n, tau=5.0, r=1.0, **kw):
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.zeros(n), v_threshold=np.ones(n), **kw)


def run_both(g, x, dt=1.0):
    with torch.no_grad():
        a = from_nir(g, dt=dt)(x).numpy()
    net = from_nir(g, dt=dt, to="network", inputs=x)
    net.run(net.nir_import.run_steps * dt)
    return a, net.nir_import.spikes()


def test_nested_graph_and_scale_node():
    """A nested NIRGraph (as snnTorch writes recurrent layers) is inlined; Scale and r scale the input."""
    rng = np.random.default_rng(2)
    w_in, w_rec = rng.normal(0.6, 0.5, (6, 5)), rng.normal(0.0, 0.4, (6, 6))
    scale = np.linspace(0.5, 2.0, 6)
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([6])), "lif": lif_node(6, r=1.5),
                              "rec": nir.Linear(w_rec), "output": nir.Output(output_type=np.array([6]))},
                       edges=[("input", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")])
    nested = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([5])), "w": nir.Linear(w_in),
                                 "s": nir.Scale(scale), "layer": sub,
                                 "output": nir.Output(output_type=np.array([6]))},
                          edges=[("input", "w"), ("w", "s"), ("s", "layer"), ("layer", "output")])
    # the same network written flat: the scale and r folded into the weights
    flat = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([5])),
                               "w": nir.Linear(1.5 * scale[:, None] * w_in), "lif": lif_node(6),
                               "rec": nir.Linear(1.5 * w_rec), "output": nir.Output(output_type=np.array([6]))},
                        edges=[("input", "w"), ("w", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")])
    x = spikes_in((5,), T=40, B=2, p=0.4)
    a, b = run_both(nested, x)
    c, d = run_both(flat, x)
    assert a.sum() > 20
    assert np.array_equal(a, b) and np.allclose(a, c) and np.array_equal(c, d)


# ------------------------------------------------------------------------------------- refusals
def test_unsupported_node_refused_before_anything_is_built(monkeypatch):
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2])),
                            "w": nir.Linear(np.eye(2)),
                            "thr": nir.Threshold(threshold=np.ones(2)),
                            "output": nir.Output(output_type=np.array([2]))},
                     edges=[("input", "w"), ("w", "thr"), ("thr", "output")])

    def built(*a, **k):
        raise AssertionError("a Network was built")
    monkeypatch.setattr(es.network.Network, "__init__", built)
    for kw in ({"to": "torch"}, {"to": "network", "steps": 5}):
        with pytest.raises(ValueError, match=r"'thr' of type Threshold is not supported.*LIF, CubaLIF"):
            from_nir(g, dt=1.0, **kw)
    assert "CubaLI" in SUPPORTED and "Threshold" not in SUPPORTED


def test_bad_parameters_and_shapes_refused():
    def graph(**lif):
        p = dict(tau=np.full(2, 5.0), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2))
        p.update(lif)
        return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2])), "w": nir.Linear(np.eye(2)),
                                   "n": nir.LIF(**p), "output": nir.Output(output_type=np.array([2]))},
                            edges=[("input", "w"), ("w", "n"), ("n", "output")], **(
                                {"type_check": False} if "type_check" in nir.NIRGraph.__init__.__code__.co_varnames
                                else {}))
    with pytest.raises(ValueError, match="'n'.*tau must be > 0"):
        from_nir(graph(tau=np.array([5.0, -1.0])), dt=1.0)
    with pytest.raises(ValueError, match="'n'.*v_threshold must be finite"):
        from_nir(graph(v_threshold=np.array([1.0, np.nan])), dt=1.0)
    with pytest.raises(ValueError, match="time_unit"):
        from_nir(graph(), dt=1.0, time_unit=0.0)
    with pytest.raises(ValueError, match="dt"):
        from_nir(graph(), dt=-1.0)
    with pytest.raises(ValueError, match="to="):
        from_nir(graph(), dt=1.0, to="nest")
    with pytest.raises(ValueError, match="pass inputs or steps"):
        from_nir(graph(), dt=1.0, to="network")
    with pytest.raises(ValueError, match="arguments of to='network'"):
        from_nir(graph(), dt=1.0, steps=3)
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2])),
                            "d": nir.Delay(delay=np.array([0.5, 1.0])),
                            "n": nir.LIF(tau=np.full(2, 5.0), r=np.ones(2), v_leak=np.zeros(2),
                                         v_threshold=np.ones(2)),
                            "output": nir.Output(output_type=np.array([2]))},
                     edges=[("input", "d"), ("d", "n"), ("n", "output")])
    with pytest.raises(ValueError, match="'d' \\(Delay\\).*multiples of dt=1.0"):
        from_nir(g, dt=1.0, to="network", steps=3)


def test_to_nir_refusals():
    with pytest.raises(ValueError, match="ALIF"):
        to_nir(nn.Sequential(nn.Linear(2, 2), est.ALIF(return_state=False)))
    with pytest.raises(ValueError, match="t_ref"):
        to_nir(nn.Sequential(nn.Linear(2, 2), est.LIF(t_ref=2.0, return_state=False)))
    with pytest.raises(ValueError, match="subtract"):
        to_nir(nn.Sequential(nn.Linear(2, 2), est.LIF(reset="subtract", return_state=False)))
    with pytest.raises(ValueError, match="MaxPool"):
        to_nir(nn.Sequential(TD(nn.MaxPool2d(2)), est.LIF(return_state=False)), input_shape=(1, 4, 4))
    with pytest.raises(ValueError, match="BatchNorm1d"):
        to_nir(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2).eval(), est.LIF(return_state=False)))
    net = es.Network(dt=0.1)
    net.poisson(3, rate=10.0)
    net.population(2, es.LIF(t_ref=0.0))
    with pytest.raises(ValueError, match="Poisson"):
        to_nir(net)
    net = es.Network(dt=0.1)
    net.population(2, es.LIF())  # t_ref = 2 ms by default
    with pytest.raises(ValueError, match="refractory"):
        to_nir(net)


# ------------------------------------------------------------------------------------- peer graphs
def euler(graph, x, dt, substeps=1):
    """Forward Euler of NIR's equations, ``substeps`` sub-steps per step, threshold and reset at the step's end.

    For a chain of Affine/Linear and LIF/LI nodes, a LIF node may feed itself
    back through an Affine/Linear node (one step later).  ``substeps=1`` is
    snnTorch's and norse's own step; many sub-steps converge to the exact
    integration of the step's (held) input.
    """
    nodes = graph.nodes
    succ, pred = {}, {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    k = next(n for n, v in nodes.items() if isinstance(v, nir.Input))
    chain, loops = [], {}
    while not isinstance(nodes[k], nir.Output):
        back = [b for b in succ[k] if succ.get(b) == [k] and pred.get(b) == [k]]
        if back:
            loops[k] = back[0]
        k = next(b for b in succ[k] if b not in back)
        chain.append(k)
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    h = f64(x).reshape(x.shape[0], x.shape[1], -1)
    for k in chain[:-1]:
        nd = nodes[k]
        if isinstance(nd, (nir.Affine, nir.Linear)):
            h = h @ f64(nd.weight).T + (f64(nd.bias) if isinstance(nd, nir.Affine) else 0.0)
            continue
        tau, r, vl = f64(nd.tau), f64(nd.r), f64(nd.v_leak)
        fires = isinstance(nd, nir.LIF)
        v = np.broadcast_to(vl, h.shape[1:]).copy()
        z = np.zeros(h.shape[1:])
        out = np.zeros(h.shape)
        for t in range(h.shape[0]):
            inp = h[t]
            if k in loops:
                w = nodes[loops[k]]
                inp = inp + z @ f64(w.weight).T + (f64(w.bias) if isinstance(w, nir.Affine) else 0.0)
            for _ in range(substeps):
                v = v + dt / substeps / tau * (vl - v + r * inp)
            if fires:
                z = (v > f64(nd.v_threshold)).astype(np.float64)
                v = np.where(z > 0, f64(getattr(nd, "v_reset", None) if getattr(nd, "v_reset", None) is not None
                                        else 0.0), v)
            out[t] = z if fires else v
        h = out
    return h


REFERENCES = sorted(os.path.basename(f)[:-4] for f in glob.glob(os.path.join(REF, "*.nir")))


def load(name):
    data = np.load(os.path.join(REF, name + ".npz"))
    return nir.read(os.path.join(REF, name + ".nir")), data


def imported(graph, data, to):
    tu = float(data["time_unit"])
    dt_ms = float(data["dt"]) * tu
    x = data["inputs"].astype(np.float64)
    if to == "torch":
        with torch.no_grad():
            return from_nir(graph, dt=dt_ms, time_unit=tu)(torch.as_tensor(x)).numpy()
    net = from_nir(graph, dt=dt_ms, time_unit=tu, to="network", inputs=x)
    net.run(net.nir_import.run_steps * dt_ms)
    return net.nir_import.spikes()


def test_reference_files_present():
    """The generator's files are committed (tests/nir_reference/README.md says which libraries wrote them)."""
    assert {"sinabs_lif_iaf", "sinabs_conv", "snntorch_leaky", "snntorch_rleaky", "norse_lif_li"} <= set(REFERENCES)


@pytest.mark.parametrize("name", [n for n in REFERENCES if n.startswith("sinabs")])
@pytest.mark.parametrize("to", ["torch", "network"])
def test_sinabs_graphs_give_sinabs_spikes(name, to):
    """sinabs' LIF (norm_input) and IAF integrate exactly: the same discretisation, the same spikes."""
    graph, data = load(name)
    out = imported(graph, data, to)
    assert data["outputs"].sum() > 20
    assert np.array_equal(out, data["outputs"])


@pytest.mark.parametrize("name", [n for n in REFERENCES if n.startswith(("snntorch", "norse"))])
def test_euler_graphs(name):
    """snnTorch and norse graphs: the library's step is forward Euler, eventsim's is exact.

    (1) A forward-Euler reading of NIR's equations at the library's step
    reproduces the library's stored output (spikes exactly, norse's float32
    membrane to 1e-6): the graph means what eventsim reads.  (2) eventsim's
    import (torch and simulator) equals the limit of that Euler scheme with
    200 sub-steps per step: spikes identical, membranes within 2e-4
    (the Euler error, O(dt / 200 tau)).  (3) Against the library itself the
    two discretisations differ by O(dt/tau) per step (dt/tau = 0.05 to 0.1
    here): per neuron and sequence, spike counts within 3 of the library's,
    and a leaky-integrator readout within 20% of its range.
    """
    graph, data = load(name)
    dt = float(data["dt"])
    x, lib = data["inputs"].astype(np.float64), data["outputs"]
    assert np.allclose(euler(graph, x, dt), lib, rtol=0, atol=1e-6)
    fine = euler(graph, x, dt, substeps=200)
    for to in ("torch", "network"):
        out = imported(graph, data, to)
        if name.startswith("norse"):  # an LI readout: membranes
            assert np.abs(out - fine).max() < 2e-4
            assert np.abs(out - lib).max() < 0.2 * np.ptp(lib)
        else:
            assert lib.sum() > 30
            assert np.array_equal(out, fine)
            assert np.abs(out.sum(0) - lib.sum(0)).max() <= 3
            assert abs(out.sum() - lib.sum()) <= 0.15 * lib.sum()


# ------------------------------------------------------------------------------------- a trained model
def test_trained_digits_model_exported_and_run_in_the_simulator():
    """examples/train_digits.py with its --quick settings: NIR -> Network gives torch's accuracy exactly."""
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("train_digits",
                                                  os.path.join(HERE, "..", "examples", "train_digits.py"))
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    torch.set_default_dtype(torch.float32)  # trained as the example trains it
    torch.manual_seed(0)
    x_tr, y_tr, x_te, y_te = ex.load(0)
    model = ex.build()
    est.init_for_spikes(model, ex.encode(x_tr[:256], np.random.default_rng(0)))
    ex.train(model, x_tr, y_tr, x_te[:, :100], y_te[:100], epochs=3, seed=0)
    model = model.double().eval()
    x = x_te[:, :200].double()
    y = y_te[:200]
    with torch.no_grad():
        counts = model(x).sum(0)
    acc_torch = float((counts.argmax(1) == y).double().mean())
    assert acc_torch > 0.5, "the quick training must learn something"
    graph = to_nir(model)
    net = from_nir(graph, dt=ex.DT, to="network", inputs=x)
    info = net.nir_import
    net.run(info.run_steps * net.dt)
    sim = torch.as_tensor(info.spikes()).sum(0)
    acc_sim = float((sim.argmax(1) == y).double().mean())
    assert torch.equal(sim, counts)
    assert acc_sim == acc_torch
