"""Write NIR graphs exported by snnTorch, norse and sinabs, with each library's own output, for tests/test_nir.py.

For every model below the script builds the network in the peer library
with fixed random weights, exports it with the library's own NIR exporter,
runs the library's own forward pass on fixed random input spikes, and
stores

* ``<name>.nir``: the exported graph (``nir.write``);
* ``<name>.npz``: ``inputs [T, B, n_in]`` (float 0/1), ``outputs [T, B, n_out]``
  (the library's output: spikes, or the membrane of a leaky-integrator
  readout), ``dt`` (the library's step, in the graph's time unit) and
  ``time_unit`` (ms per unit of the graph).

The libraries are not test dependencies: run this script where they are
installed (``pip install snntorch norse sinabs`` next to torch) and commit
the files.  A library that is missing or fails to export is reported and
skipped; tests/nir_reference/README.md records what happened last time.

Parameters are given per neuron (NIR's type check needs the neuron
nodes' parameter shapes to match their input).  The models use each
library in the configuration whose NIR export states
its dynamics faithfully: reset to zero (snnTorch ``reset_mechanism="zero"``,
for ``RLeaky`` with ``reset_delay=False`` since its delayed zero reset also
drops the input of the step after a spike; sinabs ``MembraneReset``; NIR
has no subtractive reset) and single spikes
(sinabs ``SingleSpike``; NIR neurons emit one spike per step).

Usage::

    python tests/nir_reference/generate_nir_reference.py [snntorch] [norse] [sinabs]

(all three by default).  snnTorch 1.0 exports ``v_reset``, which needs
nir >= 1.0.5, while sinabs 3.1 pins nir <= 1.0.4: generate the snnTorch
files with the newer nir installed and the sinabs files with the older.
"""

import os
import sys
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
T, B = 40, 4


def spikes(rng, shape, p):
    return (rng.random(shape) < p).astype(np.float32)


def save(name, graph, inputs, outputs, dt, time_unit, note):
    import nir

    tmp = os.path.join(HERE, name + ".nir.tmp")
    nir.write(tmp, graph)
    os.replace(tmp, os.path.join(HERE, name + ".nir"))
    np.savez(os.path.join(HERE, name + ".npz"), inputs=np.asarray(inputs, np.float32),
             outputs=np.asarray(outputs, np.float64), dt=float(dt), time_unit=float(time_unit), note=note)
    print(f"{name}: wrote graph ({', '.join(type(n).__name__ for n in graph.nodes.values())}), "
          f"{float(np.asarray(outputs).sum()):.1f} summed output")


# ------------------------------------------------------------------------------------- snnTorch
def snntorch_models():
    import snntorch as snn
    import torch
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    # feed-forward Leaky (NIR LIF): beta = 0.95, i.e. tau = 20 steps
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 16),
        snn.Leaky(beta=torch.full((16,), 0.95), threshold=torch.ones(16), reset_mechanism="zero", init_hidden=True),
        torch.nn.Linear(16, 4),
        snn.Leaky(beta=torch.full((4,), 0.9), threshold=torch.ones(4), reset_mechanism="zero", init_hidden=True,
                  output=True))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(3.0)
    x = spikes(rng, (T, B, 12), 0.3)
    graph = export_to_nir(net, torch.zeros(12))  # an unbatched sample: the Input node gets shape (12,)
    out = []
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, snn.SpikingNeuron):
                m.reset_hidden()
        for t in range(T):
            spk, _ = net(torch.as_tensor(x[t]))
            out.append(spk.numpy())
    # snnTorch writes time constants in s with dt = 1e-4 s
    save("snntorch_leaky", graph, x, np.stack(out), 1e-4, 1000.0,
         "snnTorch 1.0 Leaky(reset_mechanism='zero'); forward Euler, tau = dt/(1-beta), r = tau/dt")

    # recurrent RLeaky (a nested NIR graph with a recurrent Linear)
    torch.manual_seed(2)
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 10),
        snn.RLeaky(beta=torch.full((10,), 0.95), threshold=torch.ones(10), linear_features=10,
                   reset_mechanism="zero", reset_delay=False, init_hidden=True, output=True))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
    graph = export_to_nir(net, torch.zeros(12))  # an unbatched sample: the Input node gets shape (12,)
    out = []
    with torch.no_grad():
        net[1].reset_hidden()
        for t in range(T):
            spk, _ = net(torch.as_tensor(x[t]))
            out.append(spk.numpy())
    save("snntorch_rleaky", graph, x, np.stack(out), 1e-4, 1000.0,
         "snnTorch 1.0 RLeaky(reset_mechanism='zero', reset_delay=False), recurrent Linear; forward Euler")


# ------------------------------------------------------------------------------------- norse
def norse_models():
    import norse.torch as norse
    import torch

    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    dt = 1e-3
    p1 = norse.LIFBoxParameters(tau_mem_inv=torch.full((16,), 50.0), v_th=torch.ones(16), v_leak=torch.zeros(16))
    p2 = norse.LIBoxParameters(tau_mem_inv=torch.full((4,), 100.0), v_leak=torch.zeros(4))
    net = norse.SequentialState(torch.nn.Linear(12, 16), norse.LIFBoxCell(p1, dt=dt),
                                torch.nn.Linear(16, 4), norse.LIBoxCell(p2, dt=dt))
    with torch.no_grad():
        net[0].weight.mul_(20.0)
    x = spikes(rng, (T, B, 12), 0.3)
    # norse 1.1 writes tau = dt / tau_mem_inv: with dt=1 the exported tau is 1 / tau_mem_inv (s), which is
    # what norse's own from_nir reads back; its default dt=0.001 would write time constants 1000x too small
    graph = norse.to_nir(net, torch.zeros(12), dt=1.0)
    out, state = [], None
    with torch.no_grad():
        for t in range(T):
            y, state = net(torch.as_tensor(x[t]), state)
            out.append(y.numpy())
    save("norse_lif_li", graph, x, np.stack(out), dt, 1000.0,
         "norse 1.1 LIFBoxCell + LIBoxCell readout (membrane); forward Euler v += dt/tau (v_leak - v + x); "
         "exported with to_nir(..., dt=1.0) so that tau = 1/tau_mem_inv")


# ------------------------------------------------------------------------------------- sinabs
def run_double(net, x):
    """``net`` layer by layer in float64 (sinabs' spike functions return float32 0/1 values)."""
    import torch

    h = x.to(torch.float64)
    for m in net:
        h = m(h).to(torch.float64)
    return h


def fixed_io(graph, shape_in, shape_out):
    """The graph with Input and Output nodes of one sample's shape (sinabs keeps its sample's time axis there)."""
    import nir

    graph.nodes["input"] = nir.Input(input_type=np.array(shape_in))
    graph.nodes["output"] = nir.Output(output_type=np.array(shape_out))
    return graph


def reset(net):
    """Forget the states sinabs kept from the export's forward pass."""
    import sinabs.layers as sl

    for m in net.modules():
        if isinstance(m, sl.StatefulLayer):
            m.reset_states()


def sinabs_models():
    import sinabs
    import sinabs.layers as sl
    import torch
    from sinabs.activation import MembraneReset, SingleSpike

    torch.manual_seed(4)
    rng = np.random.default_rng(4)
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 16, bias=False),
        sl.LIF(tau_mem=torch.full((16,), 8.0), spike_threshold=torch.ones(16), spike_fn=SingleSpike,
               reset_fn=MembraneReset(), norm_input=True),
        torch.nn.Linear(16, 4, bias=False),
        sl.IAF(spike_fn=SingleSpike, reset_fn=MembraneReset()))
    with torch.no_grad():
        net[0].weight.mul_(12.0)
        net[2].weight.mul_(25.0)
    x = spikes(rng, (T, B, 12), 0.3)
    graph = sinabs.to_nir(net, torch.zeros(B, 1, 12))  # exported first, in float32 (the weights are float32)
    graph = fixed_io(graph, (12,), (4,))
    reset(net)
    net = net.double()
    with torch.no_grad():
        y = run_double(net, torch.as_tensor(x).transpose(0, 1)).transpose(0, 1).numpy()  # sinabs: [B, T, ...]
    save("sinabs_lif_iaf", graph, x, y, 1.0, 1.0,
         "sinabs 3.1 LIF(norm_input=True, SingleSpike, MembraneReset) and IAF; exact: v = a v + (1-a) x, "
         "a = exp(-1/tau) per step (float64)")

    # a convolutional stack with sum pooling (the squeeze layers take [B*T, ...])
    torch.manual_seed(5)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1, bias=False),
        sl.IAFSqueeze(batch_size=B, spike_fn=SingleSpike, reset_fn=MembraneReset()),
        sl.SumPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(3 * 4 * 4, 5, bias=False),
        sl.IAFSqueeze(batch_size=B, spike_fn=SingleSpike, reset_fn=MembraneReset()))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
    xc = spikes(rng, (T, B, 1, 8, 8), 0.3)
    with torch.no_grad():
        net(torch.zeros(B * T, 1, 8, 8))  # sinabs' exporter reads the layer shapes from the states
    graph = sinabs.to_nir(net, torch.zeros(B * T, 1, 8, 8))
    # left None by the exporter; nir.write needs them
    graph.nodes["0"].input_shape = (8, 8)
    graph.nodes["3"].input_type = {"input": np.array([3, 4, 4])}
    graph = fixed_io(graph, (1, 8, 8), (5,))
    reset(net)
    net = net.double()
    with torch.no_grad():
        h = run_double(net, torch.as_tensor(xc).transpose(0, 1).reshape(B * T, 1, 8, 8))
    save("sinabs_conv", graph, xc, h.reshape(B, T, 5).transpose(0, 1).numpy(), 1.0, 1.0,
         "sinabs 3.1 Conv2d, IAFSqueeze, SumPool2d, Flatten, Linear, IAFSqueeze (SingleSpike, MembraneReset), "
         "float64")


def main(argv):
    failed = []
    libs = {"snntorch": snntorch_models, "norse": norse_models, "sinabs": sinabs_models}
    unknown = [a for a in argv if a not in libs]
    if unknown:
        print(f"unknown libraries {unknown}; choose among {sorted(libs)}", file=sys.stderr)
        return 2
    for name, fn in libs.items():
        if argv and name not in argv:
            continue
        try:
            fn()
        except ImportError as e:
            print(f"{name}: not installed ({e}); its reference files were not written", file=sys.stderr)
            failed.append(name)
        except Exception:  # noqa: BLE001 - report and go on with the other libraries
            traceback.print_exc()
            print(f"{name}: FAILED (see the traceback above); its reference files were not written", file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
