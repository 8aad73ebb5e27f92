"""NEST 3.10 single-neuron references for eventsim's conductance-based, AdEx and Izhikevich models.

For each model in ``MODELS``, three neurons (NEST's defaults and two variants) each receive their own
excitatory and inhibitory input spikes (``spike_generator``s; grid times drawn with NumPy from a fixed
seed) and a constant current; the script records ``V_m`` (and ``w`` or ``U_m``) every step and every
spike for ``T_SIM`` ms and writes ``<model>.npz`` next to itself (keys: see ``run``).

    python tests/nest_cond_reference/generate.py          # needs nest-simulator (3.10) and numpy
"""

import os
import sys
import tempfile

import numpy as np

DT = 0.1
T_SIM = 400.0
HERE = os.path.dirname(os.path.abspath(__file__))
#: Parameters stored per neuron (as ``p_<name>``) where the model has them.
PARAMS = ("V_th", "V_reset", "t_ref", "g_L", "C_m", "E_ex", "E_in", "E_L", "tau_syn_ex", "tau_syn_in", "I_e",
          "Delta_T", "V_peak", "a", "b", "c", "d", "tau_w", "gsl_error_tol", "V_min", "consistent_integration")

# per model: (parameter sets, weight scale of the excitatory and inhibitory inputs, input rates Hz)
MODELS = {
    "iaf_cond_exp": ([{"I_e": 400.0}, {"I_e": 500.0, "t_ref": 0.0}, {"tau_syn_ex": 5.0, "tau_syn_in": 10.0, "t_ref": 5.0,
                                                         "C_m": 200.0, "g_L": 10.0, "E_L": -60.0, "V_reset": -60.0,
                                                         "V_th": -50.0, "E_in": -80.0}],
                     (6.0, 20.0), (1500.0, 400.0)),
    "iaf_cond_alpha": ([{"I_e": 400.0}, {"I_e": 500.0, "t_ref": 0.0}, {"tau_syn_ex": 5.0, "tau_syn_in": 10.0, "t_ref": 5.0}],
                       (3.0, 8.0), (1500.0, 400.0)),
    "aeif_cond_exp": ([{"I_e": 800.0}, {"a": 0.0, "b": 60.0, "tau_w": 30.0, "t_ref": 2.0, "I_e": 900.0},
                       {"Delta_T": 0.5, "V_peak": -40.0, "tau_syn_ex": 2.0, "I_e": 200.0}],
                      (6.0, 15.0), (2500.0, 500.0)),
    "aeif_psc_exp": ([{"I_e": 800.0}, {"a": 0.0, "b": 60.0, "tau_w": 30.0, "t_ref": 2.0, "I_e": 900.0},
                      {"Delta_T": 0.5, "V_peak": -40.0, "tau_syn_ex": 2.0, "I_e": 200.0}],
                     (300.0, 600.0), (2500.0, 500.0)),
    "izhikevich": ([{"I_e": 5.0}, {"a": 0.02, "b": 0.2, "c": -50.0, "d": 2.0, "I_e": 10.0},
                    {"a": 0.1, "b": 0.2, "c": -65.0, "d": 2.0, "consistent_integration": False, "I_e": 4.0}],
                   (4.0, 4.0), (1500.0, 400.0)),
}


def run(model, seed):
    import nest

    nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.resolution = DT
    nest.local_num_threads = 1
    params, (w_ex, w_in), (r_ex, r_in) = MODELS[model]
    rng = np.random.default_rng(seed)
    n = len(params)
    neurons = nest.Create(model, n)
    for i, p in enumerate(params):
        neurons[i].set(p)
    names = list(nest.GetDefaults(model)["recordables"])
    extra = "w" if "w" in names else ("U_m" if "U_m" in names else None)
    out = {"model": np.array(model), "dt": np.float64(DT), "t_sim": np.float64(T_SIM), "n": np.int64(n)}
    defaults = nest.GetDefaults(model)
    for k in PARAMS:
        if k in defaults:
            out["p_" + k] = np.array([float(x) for x in neurons.get(k)])
    out["V_init"] = np.array([float(x) for x in neurons.get("V_m")])
    senders, times, weights = [], [], []
    for i in range(n):
        for rate, w in ((r_ex, w_ex), (r_in, -w_in)):
            steps = np.flatnonzero(rng.random(int(T_SIM / DT) - 20) < rate * DT * 1e-3) + 1
            wi = w * rng.uniform(0.5, 1.5, steps.size)
            for s, ww in zip(steps, wi):
                senders.append(i)
                times.append(round(s * DT, 10))
                weights.append(ww)
    senders, times, weights = np.array(senders), np.array(times), np.array(weights)
    for i in range(n):
        for sign in (1, -1):
            sel = (senders == i) & (np.sign(weights) == sign)
            g = nest.Create("spike_generator", params={"spike_times": times[sel].tolist(),
                                                       "spike_weights": weights[sel].tolist()})
            nest.Connect(g, neurons[i], syn_spec={"delay": DT, "weight": 1.0})
    rec = ["V_m"] + ([extra] if extra else [])
    mm = nest.Create("multimeter", params={"record_from": rec, "interval": DT})
    nest.Connect(mm, neurons)
    sr = nest.Create("spike_recorder")
    nest.Connect(neurons, sr)
    nest.Simulate(T_SIM)
    ev = mm.events
    order = np.lexsort((ev["senders"], ev["times"]))
    first = neurons.tolist()[0]
    t = np.unique(ev["times"])
    out["vm_times"] = t
    out["vm"] = ev["V_m"][order].reshape(t.size, n)
    if extra:
        out["extra_name"] = np.array(extra)
        out["extra"] = ev[extra][order].reshape(t.size, n)
    sp = sr.events
    out["spike_senders"] = sp["senders"] - first
    out["spike_times"] = sp["times"]
    out["in_neuron"], out["in_time"], out["in_weight"] = senders, times, weights   # arrive at in_time + DT
    out["nest_version"] = np.array(nest.__version__)
    return out


def main(argv):
    for k, model in enumerate(argv or list(MODELS)):
        out = run(model, 1000 + list(MODELS).index(model))
        fd, tmp = tempfile.mkstemp(dir=HERE, suffix=".npz")
        os.close(fd)
        np.savez(tmp, **out)
        os.replace(tmp, os.path.join(HERE, f"{model}.npz"))
        rates = np.bincount(out["spike_senders"], minlength=int(out["n"])) / (T_SIM * 1e-3)
        print(f"{model:16s} spikes per neuron {np.bincount(out['spike_senders'], minlength=int(out['n']))}"
              f"  rates {np.round(rates, 1)} Hz")


if __name__ == "__main__":
    main(sys.argv[1:])
