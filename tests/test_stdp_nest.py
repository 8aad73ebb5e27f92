"""Plastic synapses against NEST 3.10 (stored references; tests/nest_stdp_reference/generate_stdp_reference.py).

Identical spike trains and final weights within 1e-12 relative, on networks where
plasticity changes the spikes.
"""

import glob
import os
import sys

import numpy as np
import pytest

import eventsim as es

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "nest_stdp_reference"))
from generate_stdp_reference import MULTAPSES, canonical  # noqa: E402

HERE = os.path.join(os.path.dirname(__file__), "nest_stdp_reference")
FILES = sorted(glob.glob(os.path.join(HERE, "stdp_*.npz")))


def rule_of(d, values):
    params = dict(zip(d["rule_names"].tolist(), values.tolist()))
    return {"stdp_synapse": es.STDP, "stdp_pl_synapse_hom": es.STDPPowerLaw,
            "stdp_triplet_synapse": es.TripletSTDP}[str(d["rule"])](**params)


def build(d, plastic=True, threads=None):
    """The network of ``d`` with its plastic connections made before the first run (all, or the early ones of
    a case with late ones: :func:`run`)."""
    syn = rule_of(d, d["rule_values"]) if plastic else None
    kind = str(d["model"])
    kw = dict(tau_syn_ex=float(d["tau_syn_ex"]), tau_syn_in=float(d["tau_syn_in"]),
              psc="alpha" if kind == "iaf_psc_alpha" else "exp") if kind != "iaf_psc_delta" else {}
    if "tau_syn" in d:  # receptor ports: one projection per port (ports(): the connections of each)
        kw = dict(tau_syn=d["tau_syn"].tolist())
    net = es.Network(dt=float(d["dt"]), seed=1)
    model = es.LIF(tau_m=float(d["tau_m"]), c_m=float(d["C_m"]), v_rest=float(d["E_L"]), v_th=float(d["V_th"]),
                   v_reset=float(d["V_reset"]), t_ref=float(d["t_ref"]), i_e=d["I_e"], **kw)
    pop = net.population(d["I_e"].size, model, v_init=d["V_m"])
    gen = net.spike_source(d["gen_sender"], d["gen_time"], n=int(d["gen_sender"].max()) + 1)
    for k, sel in ports(d, "gen_port", d["gen_pre"].size):
        net.connect(gen, pop, es.FromArrays(d["gen_pre"][sel], d["gen_post"][sel]), weight=d["gen_weight"][sel],
                    delay=d["gen_delay"][sel], receptor=k)
    for k, sel in ports(d, "s_port", d["s_pre"].size):
        net.connect(pop, pop, es.FromArrays(d["s_pre"][sel], d["s_post"][sel]), weight=d["s_weight"][sel],
                    delay=d["s_delay"][sel], receptor=k)
    early = ~d["late"] if "late" in d else np.ones(d["pre"].size, bool)
    projs = []
    for k, sel in ports(d, "port", d["pre"].size):
        sel = sel & early
        projs.append((sel, net.connect(pop, pop, es.FromArrays(d["pre"][sel], d["post"][sel]),
                                       weight=d["weight"][sel], delay=d["delay"][sel], synapse=syn, receptor=k)))
    rec = net.record_spikes(pop)
    return net, projs, rec


def ports(d, key, m):
    """``(receptor, mask)`` of the connections onto each receptor port (``(None, all)`` without ports)."""
    if key not in d:
        return [(None, np.ones(m, bool))]
    return [(k, d[key] == k) for k in range(d["tau_syn"].size)]


def run(d, net, projs, plastic=True):
    """Run ``net`` (from :func:`build`, its plastic projections ``projs``) for ``d``'s time, making its late
    connections after ``t_late`` ms; the final weights in the order of ``d["pre"]``."""
    if "late" in d:
        late = d["late"]
        pop = net.populations[0]
        net.run(float(d["t_late"]))
        projs = projs + [(late, net.connect(pop, pop, es.FromArrays(d["pre"][late], d["post"][late]),
                                            weight=d["weight"][late], delay=d["delay"][late],
                                            synapse=rule_of(d, d["late_rule_values"]) if plastic else None))]
        net.run(float(d["t_sim"] - d["t_late"]))
    else:
        net.run(float(d["t_sim"]))
    final = np.empty(d["pre"].size)
    for sel, proj in projs:
        final[sel] = proj.weight
    return final


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(f)[5:-4] for f in FILES])
def test_spikes_and_weights_equal_nest(path):
    d = dict(np.load(path))
    net, projs, rec = build(d)
    final = run(d, net, projs)
    assert np.array_equal(rec.times, d["spike_times"]) or np.allclose(rec.times, d["spike_times"], rtol=0, atol=1e-9)
    assert np.array_equal(rec.senders, d["spike_senders"])
    # 1e-12 relative, and 1e-12 of the weight scale for weights that the additive rule drives near 0 (NEST
    # computes spike times from integer tics, eventsim as steps * dt: the last bits of the time differences
    # differ, and a sum that cancels to 0.008 of w_max keeps that absolute error)
    scale = float(np.abs(d["weight"]).max())
    if "name" in d and str(d["name"]) in MULTAPSES:  # (NEST's multapses of one pair are told apart by order only)
        final = canonical(d["pre"], d["post"], np.rint(d["delay"] / d["dt"]).astype(np.int64), final)
    np.testing.assert_allclose(final, d["final_weight"], rtol=1e-12, atol=1e-12 * scale)
    assert not np.allclose(d["final_weight"], d["weight"])  # the weights did change
    # plasticity changes the spikes: the same network with static synapses fires differently
    static, sprojs, srec = build(d, plastic=False)
    run(d, static, sprojs, plastic=False)
    assert len(srec.times) != len(rec.times) or not np.array_equal(srec.senders, rec.senders)


def test_references_exist():
    names = {os.path.basename(f) for f in FILES}
    assert {"stdp_additive.npz", "stdp_multiplicative.npz", "stdp_guetig_exp.npz", "stdp_power_law.npz",
            "stdp_triplet.npz", "stdp_power_law_alpha.npz", "stdp_power_law_multapses.npz", "stdp_ports.npz",
            "stdp_late_guetig.npz", "stdp_late_power_law_alpha.npz", "stdp_late_triplet.npz",
            "stdp_guetig_multapses.npz"} <= names


@pytest.mark.parametrize("name", MULTAPSES)
def test_multapse_references_hold_both_kinds_of_multapse(name):
    """The multapse networks hold connections equal to another of their pair in weight and delay (whose
    update the engine takes from that one) and connections of one pair and delay with different weights
    (which share only the search of the postsynaptic history)."""
    d = dict(np.load(os.path.join(HERE, f"stdp_{name}.npz")))
    key = np.stack([d["pre"], d["post"], np.rint(d["delay"] / d["dt"]).astype(np.int64)], axis=1)
    _, count = np.unique(key, axis=0, return_counts=True)
    _, count_w = np.unique(np.column_stack([key, d["weight"].view(np.int64)]), axis=0, return_counts=True)
    assert (count_w > 1).sum() > 50  # equal in everything
    assert (count > 1).sum() > (count_w > 1).sum() + 50  # same pair and delay, another weight
