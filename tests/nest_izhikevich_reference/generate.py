"""NEST 3.10 references for eventsim's Izhikevich neurons and parrot neurons.

``izhikevich.npz``
    Eight ``izhikevich`` neurons (NEST's defaults and variants: regular
    spiking, chattering, fast spiking, a lower bound ``V_min``, both
    settings of ``consistent_integration``, set initial ``V_m`` and
    ``U_m``).  Each receives excitatory and inhibitory input spikes (weights
    in mV; ``spike_generator``s, grid times drawn with NumPy from a fixed
    seed, connection delay ``DT``) and/or a piecewise-constant current from
    its own ``step_current_generator`` (connection delay ``in_dc_delay``).
    ``V_m`` and ``U_m`` are recorded every step, spikes all along.
``parrot.npz``
    ``parrot_neuron``s driven by ``spike_generator``s through connections
    with delays and weights of either sign (weights are ignored by the parrot),
    several connections of one generator onto one parrot (several spikes in
    one step), two generators whose spikes arrive in the same step, and a
    chain of two parrots.  Every spike of every parrot is recorded.

    python tests/nest_izhikevich_reference/generate.py     # needs nest-simulator (3.10) and numpy
"""

import os
import sys
import tempfile

import numpy as np

DT = 0.1
T_SIM = 300.0
HERE = os.path.dirname(os.path.abspath(__file__))
PARAMS = ("a", "b", "c", "d", "V_th", "V_min", "I_e", "consistent_integration")

#: Per neuron: parameters, initial state (None: NEST's defaults V_m = -65, U_m = -13), whether it
#: receives input spikes, and its step current (times ms, amplitudes pA, connection delay ms; None: none).
IZH = [
    ({"I_e": 2.0}, None, True, None),
    ({"I_e": 4.0}, None, True, ([50.0, 120.0, 200.0], [6.0, 0.0, 12.0], 0.1)),
    ({"c": -50.0, "d": 2.0}, {"V_m": -70.0, "U_m": -14.0}, False, ([20.0, 150.0], [10.0, 3.0], 1.0)),
    ({"a": 0.1, "d": 2.0, "consistent_integration": False}, None, True, ([30.0, 90.5, 240.0], [8.0, -2.0, 15.0], 0.5)),
    ({"a": 0.1, "d": 2.0, "consistent_integration": False, "I_e": 9.0}, None, True, None),
    ({"a": 0.02, "b": 0.25, "c": -55.0, "d": 0.05, "I_e": 0.5, "V_min": -72.0}, {"V_m": -64.0, "U_m": -16.0}, True,
     ([10.0, 60.0], [-20.0, 6.0], 0.2)),
    ({"consistent_integration": False, "c": -50.0, "d": 2.0}, None, False, ([5.0, 100.0, 160.0], [14.0, 0.0, 9.0], 0.1)),
    ({"V_th": 25.0, "I_e": 7.0}, None, True, ([80.0], [-5.0], 2.0)),
]


def izhikevich(seed):
    import nest

    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.resolution = DT
    nest.local_num_threads = 1
    rng = np.random.default_rng(seed)
    n = len(IZH)
    neurons = nest.Create("izhikevich", n)
    senders, times, weights = [], [], []
    dc_neuron, dc_time, dc_amp, dc_delay = [], [], [], []
    for i, (p, init, spikes, dc) in enumerate(IZH):
        neurons[i].set(p)
        if init:
            neurons[i].set(init)
        if spikes:
            for rate, w in ((800.0, 3.0), (300.0, -4.0)):
                steps = np.flatnonzero(rng.random(int(T_SIM / DT) - 20) < rate * DT * 1e-3) + 1
                wi = w * rng.uniform(0.5, 1.5, steps.size)
                senders += [i] * steps.size
                times += [round(s * DT, 10) for s in steps]
                weights += wi.tolist()
        if dc:
            t, a, d = dc
            g = nest.Create("step_current_generator", params={"amplitude_times": t, "amplitude_values": a})
            nest.Connect(g, neurons[i], syn_spec={"delay": d})
            dc_neuron += [i] * len(t)
            dc_time += t
            dc_amp += a
            dc_delay += [d] * len(t)
    senders, times, weights = np.array(senders), np.array(times), np.array(weights)
    for i in range(n):
        sel = np.flatnonzero(senders == i)
        sel = sel[np.argsort(times[sel], kind="stable")]
        if sel.size:
            g = nest.Create("spike_generator", params={"spike_times": times[sel].tolist(),
                                                       "spike_weights": weights[sel].tolist()})
            nest.Connect(g, neurons[i], syn_spec={"delay": DT, "weight": 1.0})
    out = {"dt": np.float64(DT), "t_sim": np.float64(T_SIM), "n": np.int64(n)}
    for k in PARAMS:
        out["p_" + k] = np.array([float(x) for x in neurons.get(k)])
    out["V_init"] = np.array([float(x) for x in neurons.get("V_m")])
    out["U_init"] = np.array([float(x) for x in neurons.get("U_m")])
    mm = nest.Create("multimeter", params={"record_from": ["V_m", "U_m"], "interval": DT})
    nest.Connect(mm, neurons)
    sr = nest.Create("spike_recorder")
    nest.Connect(neurons, sr)
    nest.Simulate(T_SIM)
    ev = mm.events
    order = np.lexsort((ev["senders"], ev["times"]))
    t = np.unique(ev["times"])
    out["vm_times"] = t
    out["vm"] = ev["V_m"][order].reshape(t.size, n)
    out["um"] = ev["U_m"][order].reshape(t.size, n)
    first = neurons.tolist()[0]
    out["spike_senders"] = ev_s = sr.events["senders"] - first
    out["spike_times"] = sr.events["times"]
    out["in_neuron"], out["in_time"], out["in_weight"] = senders, times, weights  # arrive at in_time + DT
    out["dc_neuron"], out["dc_time"] = np.array(dc_neuron, np.int64), np.array(dc_time)
    out["dc_amplitude"], out["dc_delay"] = np.array(dc_amp), np.array(dc_delay)
    out["nest_version"] = np.array(nest.__version__)
    print(f"izhikevich: spikes per neuron {np.bincount(ev_s, minlength=n)}")
    return out


#: Parrot cases: (generator spike times ms, [(parrot, delay ms, weight), ...]); parrots 0..P-1.
PARROT_GENERATORS = [
    ([1.0, 3.0, 3.1, 10.0], [(0, 0.2, 1.0), (1, 1.5, -2.0), (2, 0.1, 0.25)]),
    ([2.5, 3.0, 7.7], [(2, 0.1, 5.0), (2, 0.1, 1.0), (3, 1.0, 1.0)]),   # two connections onto parrot 2
    ([3.0, 9.9], [(1, 1.5, 0.5), (3, 2.0, -1.0)]),   # spikes arriving with generator 0's at parrot 1
]
#: Parrot to parrot connections: (pre, post, delay ms, weight).
PARROT_CHAIN = [(0, 4, 1.0, 3.0), (2, 4, 0.3, -1.0)]
N_PARROTS = 5


def parrot():
    import nest

    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.resolution = DT
    nest.local_num_threads = 1
    parrots = nest.Create("parrot_neuron", N_PARROTS)
    conn = []
    for g, (times, targets) in enumerate(PARROT_GENERATORS):
        gen = nest.Create("spike_generator", params={"spike_times": times})
        for post, d, w in targets:
            nest.Connect(gen, parrots[post], syn_spec={"delay": d, "weight": w})
            conn.append((g, post, d, w))
    for pre, post, d, w in PARROT_CHAIN:
        nest.Connect(parrots[pre], parrots[post], syn_spec={"delay": d, "weight": w})
    sr = nest.Create("spike_recorder")
    nest.Connect(parrots, sr)
    nest.Simulate(20.0)
    first = parrots.tolist()[0]
    ev = sr.events
    order = np.lexsort((ev["senders"], ev["times"]))
    gt = [np.array(t) for t, _ in PARROT_GENERATORS]
    out = {"dt": np.float64(DT), "t_sim": np.float64(20.0), "n": np.int64(N_PARROTS),
           "gen_ptr": np.cumsum([0] + [len(t) for t in gt]), "gen_times": np.concatenate(gt),
           "conn": np.array(conn, np.float64), "chain": np.array(PARROT_CHAIN, np.float64),
           "spike_senders": (ev["senders"] - first)[order], "spike_times": ev["times"][order],
           "nest_version": np.array(nest.__version__)}
    print(f"parrot: spikes per parrot {np.bincount(out['spike_senders'], minlength=N_PARROTS)}")
    return out


def _save(name, out):
    fd, tmp = tempfile.mkstemp(dir=HERE, suffix=".npz")
    os.close(fd)
    np.savez(tmp, **out)
    os.chmod(tmp, 0o644)
    os.replace(tmp, os.path.join(HERE, f"{name}.npz"))


def main(argv):
    which = argv or ["izhikevich", "parrot"]
    if "izhikevich" in which:
        _save("izhikevich", izhikevich(2500))
    if "parrot" in which:
        _save("parrot", parrot())


if __name__ == "__main__":
    main(sys.argv[1:])
