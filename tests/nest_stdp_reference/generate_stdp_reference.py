"""Generate NEST reference data for eventsim's plastic synapses (STDP).

For each case in ``CASES`` this script draws a small recurrent network with
NumPy (fully seeded): ``iaf_psc_delta``, ``iaf_psc_exp`` or ``iaf_psc_alpha`` neurons with
per-neuron ``I_e`` and ``V_m``, excitatory plastic connections between
distinct neurons (no multapses, except in the cases named in ``MULTAPSES``; delays on the grid from 0.1 to 3.0 ms), a
few static inhibitory connections, and input spike trains (grid-aligned
times) from spike generators.  It builds exactly that network in NEST
(one thread, ``resolution = dt``), simulates it and stores the network
together with every spike and every plastic connection's final weight in
``stdp_<case>.npz`` beside this script (temporary file, then ``os.replace``).

Run from the repository root with ``nest-simulator`` (3.10.0 was used) and
NumPy installed::

    python tests/nest_stdp_reference/generate_stdp_reference.py          # all cases
    python tests/nest_stdp_reference/generate_stdp_reference.py additive  # one case

Keys of each file: ``model`` (str), ``rule`` (``stdp_synapse`` or
``stdp_pl_synapse_hom`` or ``stdp_triplet_synapse``), ``rule_names`` / ``rule_values`` (names and values as two arrays),
``dt``, ``t_sim`` (ms), neuron parameters ``E_L, V_th, V_reset, tau_m, C_m,
t_ref, tau_syn_ex, tau_syn_in`` (scalars), ``I_e``, ``V_m`` (per neuron),
``pre, post, weight, delay`` (plastic connections, 0-based, initial weight,
delay in ms), ``s_pre, s_post, s_weight, s_delay`` (static ones),
``gen_sender, gen_time`` (input spikes: channel and time in ms),
``gen_pre, gen_post, gen_weight, gen_delay`` (input connections),
``spike_senders, spike_times`` (NEST's spikes, 0-based senders) and
``final_weight`` (NEST's weight of each plastic connection at ``t_sim``,
in the order of ``pre``/``post``; for the cases with multapses, ``MULTAPSES``,
in the order of :func:`canonical`).  The cases of ``LATE`` also hold ``late`` (per plastic connection: made
after the first run), ``t_late`` (ms: the first run's length) and ``late_rule_values`` (the late
connections' rule parameters, in the order of ``rule_names``).  The receptor-port case (``ports``) holds
``tau_syn`` and the ports ``port``, ``s_port``, ``gen_port`` of the plastic, static and input connections.
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DT = 0.1
T_SIM = 1000.0

CASES = {
    # name: (neuron model, rule, rule parameters, seed)
    "additive": ("iaf_psc_delta", "stdp_synapse",
                 dict(tau_plus=20.0, tau_minus=20.0, lam=0.05, alpha=1.1, mu_plus=0.0, mu_minus=0.0, w_max=4.0), 1),
    "multiplicative": ("iaf_psc_delta", "stdp_synapse",
                       dict(tau_plus=15.0, tau_minus=30.0, lam=0.1, alpha=0.9, mu_plus=1.0, mu_minus=1.0,
                            w_max=4.0), 2),
    "guetig_exp": ("iaf_psc_exp", "stdp_synapse",
                   dict(tau_plus=20.0, tau_minus=25.0, lam=0.08, alpha=1.0, mu_plus=0.4, mu_minus=0.6,
                        w_max=500.0), 3),
    "power_law": ("iaf_psc_delta", "stdp_pl_synapse_hom",
                  dict(tau_plus=20.0, tau_minus=20.0, lam=0.05, alpha=1.2, mu=0.4), 4),
    "triplet": ("iaf_psc_delta", "stdp_triplet_synapse",
                dict(tau_plus=16.8, tau_x=101.0, tau_minus=33.7, tau_y=125.0, a2_plus=0.05, a2_minus=0.07,
                     a3_plus=0.062, a3_minus=0.023, w_max=4.0), 5),
    # the rule and synapse shape of NEST's hpc_benchmark (iaf_psc_alpha: weights are the current's peak, pA)
    "power_law_alpha": ("iaf_psc_alpha", "stdp_pl_synapse_hom",
                        dict(tau_plus=15.0, tau_minus=30.0, lam=0.1, alpha=0.0513, mu=0.4), 6),
    # multapses (1 to 4 plastic connections per pair, some equal in weight and delay, some not), as in the
    # hpc_benchmark's fixed in-degrees at small scales
    "power_law_multapses": ("iaf_psc_alpha", "stdp_pl_synapse_hom",
                            dict(tau_plus=15.0, tau_minus=30.0, lam=0.1, alpha=0.0513, mu=0.4), 7),
    "guetig_multapses": ("iaf_psc_exp", "stdp_synapse",
                         dict(tau_plus=20.0, tau_minus=25.0, lam=0.08, alpha=1.0, mu_plus=0.4, mu_minus=0.6,
                              w_max=500.0), 8),
    # plastic connections made between two runs (Simulate(T_LATE), Connect, Simulate the rest): the late ones
    # reach neurons with and without plastic input so far, from senders with and without plastic synapses;
    # their rule parameters are LATE's (the same time constants: NEST keeps tau_minus on the neuron)
    "late_guetig": ("iaf_psc_exp", "stdp_synapse",
                    dict(tau_plus=20.0, tau_minus=25.0, lam=0.08, alpha=1.0, mu_plus=0.4, mu_minus=0.6,
                         w_max=500.0), 9),
    "late_power_law_alpha": ("iaf_psc_alpha", "stdp_pl_synapse_hom",
                             dict(tau_plus=15.0, tau_minus=30.0, lam=0.1, alpha=0.0513, mu=0.4), 10),
    "late_triplet": ("iaf_psc_delta", "stdp_triplet_synapse",
                     dict(tau_plus=16.8, tau_x=101.0, tau_minus=33.7, tau_y=125.0, a2_plus=0.05, a2_minus=0.07,
                          a3_plus=0.062, a3_minus=0.023, w_max=4.0), 11),
    # receptor ports (iaf_psc_exp_multisynapse, TAU_SYN): every connection reaches a port of its own choosing
    # (``port``, ``s_port``, ``gen_port``: eventsim's numbering from 0, NEST's receptor_type - 1)
    "ports": ("iaf_psc_exp_multisynapse", "stdp_synapse",
              dict(tau_plus=20.0, tau_minus=25.0, lam=0.08, alpha=1.0, mu_plus=0.4, mu_minus=0.6, w_max=500.0), 12),
}

#: Time constants of the receptor ports of the multisynapse case (ms).
TAU_SYN = (2.0, 8.0, 0.5)

#: The cases with connections made between two runs: the time of the second run's start (ms) and the late
#: connections' rule parameters (stdp_pl_synapse_hom's are homogeneous: the same).
LATE = {"late_guetig": (400.0, dict(lam=0.05, alpha=1.2, mu_plus=0.2, mu_minus=0.8)),
        "late_power_law_alpha": (400.0, {}),
        "late_triplet": (400.0, dict(a2_plus=0.08, a3_minus=0.03))}

#: Cases whose plastic connections include multapses: their ``final_weight`` is stored in the order of
#: :func:`canonical` (NEST's connections of one pair cannot be told apart by source and target).
MULTAPSES = ("power_law_multapses", "guetig_multapses")


def canonical(pre, post, delay_steps, weight):
    """``weight`` ordered by pre, post, delay (steps) and the weight itself."""
    return np.asarray(weight)[np.lexsort((weight, delay_steps, post, pre))]

N = 50
P_CONN = 0.15
N_GEN = 20


def draw(name):
    model, rule, params, seed = CASES[name]
    rng = np.random.default_rng(seed)
    exp = model in ("iaf_psc_exp", "iaf_psc_alpha", "iaf_psc_exp_multisynapse")  # current synapses (pA)
    d = dict(name=name, model=model, rule=rule, dt=DT, t_sim=T_SIM, E_L=-65.0, V_th=-50.0, V_reset=-70.0, tau_m=15.0,
             C_m=250.0 if exp else 1.0, t_ref=2.0, tau_syn_ex=2.0, tau_syn_in=5.0)
    d["I_e"] = rng.uniform(100.0, 300.0, N) if exp else rng.uniform(0.3, 0.9, N)
    d["V_m"] = rng.uniform(-70.0, -51.0, N)
    mask = (rng.random((N, N)) < P_CONN) & ~np.eye(N, dtype=bool)
    pre, post = np.nonzero(mask)
    w_hi = params.get("w_max", 4.0 if not exp else 500.0)
    weight = rng.uniform(0.2, 0.7, pre.size) * w_hi
    delay = rng.integers(1, 31, pre.size)
    if name in MULTAPSES:  # 1 to 4 connections per pair: equal to the pair's first, or with their own weight/delay
        m = rng.integers(1, 5, pre.size)
        pre, post, weight, delay = (np.repeat(a, m) for a in (pre, post, weight, delay))
        own_w = rng.random(pre.size) < 0.3
        own_d = rng.random(pre.size) < 0.2
        weight = np.where(own_w, rng.uniform(0.2, 0.7, pre.size) * w_hi, weight)
        delay = np.where(own_d, rng.integers(1, 31, pre.size), delay)
    d["pre"], d["post"] = pre.astype(np.int64), post.astype(np.int64)
    d["weight"] = weight
    d["delay"] = delay * DT
    smask = (rng.random((N, N)) < 0.05) & ~np.eye(N, dtype=bool)
    s_pre, s_post = np.nonzero(smask)
    d["s_pre"], d["s_post"] = s_pre.astype(np.int64), s_post.astype(np.int64)
    d["s_weight"] = -rng.uniform(0.5, 1.5, s_pre.size) * (200.0 if exp else 1.0)
    d["s_delay"] = rng.integers(1, 31, s_pre.size) * DT
    times, senders = [], []
    for ch in range(N_GEN):
        k = np.unique(rng.integers(1, int(T_SIM / DT) - 50, rng.integers(20, 60)))
        times.append(k * DT)
        senders.append(np.full(k.size, ch))
    d["gen_time"], d["gen_sender"] = np.concatenate(times), np.concatenate(senders).astype(np.int64)
    gmask = rng.random((N_GEN, N)) < 0.3
    g_pre, g_post = np.nonzero(gmask)
    d["gen_pre"], d["gen_post"] = g_pre.astype(np.int64), g_post.astype(np.int64)
    d["gen_weight"] = rng.uniform(1.0, 5.0, g_pre.size) * (100.0 if exp else 1.0)
    d["gen_delay"] = rng.integers(1, 21, g_pre.size) * DT
    d["rule_names"] = np.array(list(params))
    d["rule_values"] = np.array(list(params.values()), dtype=np.float64)
    if model == "iaf_psc_exp_multisynapse":
        d["tau_syn"] = np.array(TAU_SYN)
        for key, pre in (("port", "pre"), ("s_port", "s_pre"), ("gen_port", "gen_pre")):
            d[key] = rng.integers(0, len(TAU_SYN), d[pre].size)
    if name in LATE:  # targets 0-34 get early connections (70 %) and late ones, targets 35-49 late ones only
        t_late, change = LATE[name]
        d["late"] = (d["post"] >= 35) | (rng.random(d["pre"].size) >= 0.7)
        d["t_late"] = t_late
        d["late_rule_values"] = np.array([change.get(k, v) for k, v in params.items()], dtype=np.float64)
    return d


def connect_plastic(d, params, ids, sel):
    """The plastic connections ``sel`` of ``d`` with the rule parameters ``params``."""
    import nest

    m = int(sel.sum())
    weight, delay = d["weight"][sel], d["delay"][sel]
    if d["rule"] == "stdp_synapse":
        syn = {"synapse_model": "stdp_synapse", "weight": weight, "delay": delay,
               "tau_plus": np.full(m, params["tau_plus"]), "lambda": np.full(m, params["lam"]),
               "alpha": np.full(m, params["alpha"]), "mu_plus": np.full(m, params["mu_plus"]),
               "mu_minus": np.full(m, params["mu_minus"]), "Wmax": np.full(m, params["w_max"])}
    elif d["rule"] == "stdp_triplet_synapse":
        syn = {"synapse_model": "stdp_triplet_synapse", "weight": weight, "delay": delay,
               "tau_plus": np.full(m, params["tau_plus"]), "tau_plus_triplet": np.full(m, params["tau_x"]),
               "Aplus": np.full(m, params["a2_plus"]), "Aminus": np.full(m, params["a2_minus"]),
               "Aplus_triplet": np.full(m, params["a3_plus"]), "Aminus_triplet": np.full(m, params["a3_minus"]),
               "Wmax": np.full(m, params["w_max"])}
    else:
        nest.SetDefaults("stdp_pl_synapse_hom", {"tau_plus": params["tau_plus"], "lambda": params["lam"],
                                                 "alpha": params["alpha"], "mu": params["mu"]})
        syn = {"synapse_model": "stdp_pl_synapse_hom", "weight": weight, "delay": delay}
    if "port" in d:
        syn["receptor_type"] = d["port"][sel] + 1
    nest.Connect(ids[d["pre"][sel]], ids[d["post"][sel]], "one_to_one", syn)


def simulate(d):
    import nest

    nest.ResetKernel()
    nest.set_verbosity("M_ERROR")
    nest.resolution = d["dt"]
    nest.local_num_threads = 1
    params = dict(zip(d["rule_names"].tolist(), d["rule_values"].tolist()))
    neuron = dict(E_L=d["E_L"], V_th=d["V_th"], V_reset=d["V_reset"], tau_m=d["tau_m"], C_m=d["C_m"],
                  t_ref=d["t_ref"], tau_minus=params["tau_minus"])
    if "tau_y" in params:
        neuron["tau_minus_triplet"] = params["tau_y"]
    if d["model"] in ("iaf_psc_exp", "iaf_psc_alpha"):
        neuron.update(tau_syn_ex=d["tau_syn_ex"], tau_syn_in=d["tau_syn_in"])
    ports = "tau_syn" in d
    if ports:
        neuron["tau_syn"] = d["tau_syn"].tolist()
    pop = nest.Create(d["model"], N, params=neuron)
    pop.set(I_e=d["I_e"].tolist(), V_m=d["V_m"].tolist())
    gens = nest.Create("spike_generator", N_GEN)
    for ch in range(N_GEN):
        gens[ch].spike_times = d["gen_time"][d["gen_sender"] == ch].tolist()
    ids = np.asarray(pop.tolist())
    gids = np.asarray(gens.tolist())
    def port(key):
        return {"receptor_type": d[key] + 1} if ports else {}

    nest.Connect(gids[d["gen_pre"]], ids[d["gen_post"]], "one_to_one",
                 {"synapse_model": "static_synapse", "weight": d["gen_weight"], "delay": d["gen_delay"],
                  **port("gen_port")})
    nest.Connect(ids[d["s_pre"]], ids[d["s_post"]], "one_to_one",
                 {"synapse_model": "static_synapse", "weight": d["s_weight"], "delay": d["s_delay"], **port("s_port")})
    rec = nest.Create("spike_recorder")
    nest.Connect(pop, rec)
    late = d.get("late", np.zeros(d["pre"].size, bool))
    connect_plastic(d, params, ids, ~late)
    if late.any():
        nest.Simulate(float(d["t_late"]))
        connect_plastic(d, dict(zip(d["rule_names"].tolist(), d["late_rule_values"].tolist())), ids, late)
        nest.Simulate(float(d["t_sim"] - d["t_late"]))
    else:
        nest.Simulate(d["t_sim"])
    ev = rec.events
    order = np.lexsort((ev["senders"], ev["times"]))
    out = dict(d)
    out["spike_senders"] = (np.asarray(ev["senders"])[order] - ids[0]).astype(np.int64)
    out["spike_times"] = np.asarray(ev["times"])[order]
    conns = nest.GetConnections(pop, pop, synapse_model=d["rule"]).get(["source", "target", "weight", "delay"])
    if d["name"] in MULTAPSES:
        out["final_weight"] = canonical(np.asarray(conns["source"]) - ids[0], np.asarray(conns["target"]) - ids[0],
                                        np.rint(np.asarray(conns["delay"]) / d["dt"]).astype(np.int64),
                                        np.asarray(conns["weight"]))
        return out
    lookup = {(s - ids[0], t - ids[0]): w for s, t, w in zip(conns["source"], conns["target"], conns["weight"])}
    out["final_weight"] = np.array([lookup[(a, b)] for a, b in zip(d["pre"], d["post"])])
    return out


def main(names):
    for name in names or list(CASES):
        out = simulate(draw(name))
        path = os.path.join(HERE, f"stdp_{name}.npz")
        fd, tmp = tempfile.mkstemp(dir=HERE, suffix=".npz")
        os.close(fd)
        np.savez(tmp, **out)
        os.replace(tmp, path)
        w0, w1 = out["weight"], out["final_weight"]
        print(f"{name}: {out['spike_times'].size} spikes, {w0.size} plastic connections, mean weight "
              f"{w0.mean():.4g} -> {w1.mean():.4g}")


if __name__ == "__main__":
    main(sys.argv[1:])
