"""Differential tests against stored NEST 3.10 results (tests/nest_reference/*.npz).

The reference files were produced by tests/nest_reference/generate_nest_reference.py
(iaf_psc_delta / iaf_psc_exp / iaf_psc_alpha networks with random sparse connectivity,
heterogeneous delays, explicit input spike trains and refractoriness).  The
same networks rebuilt in eventsim must give identical spike trains (same
sender, same step) and voltages within 1e-9 mV.
"""

import glob
import os

import numpy as np
import pytest

import eventsim as es

HERE = os.path.join(os.path.dirname(__file__), "nest_reference")
# iaf_psc_delta, iaf_psc_exp and iaf_psc_alpha (es.LIF(..., psc="alpha"))
CASES = sorted(c for pattern in ("delta_*.npz", "exp_*.npz", "alpha_*.npz")
               for c in glob.glob(os.path.join(HERE, pattern)))


def build_from_reference(d):
    dt = float(d["dt"])
    n = int(d["n"])
    kind = str(d["model"])
    current = kind in ("iaf_psc_exp", "iaf_psc_alpha")
    model = es.LIF(
        tau_m=d["tau_m"], c_m=d["C_m"], v_rest=d["E_L"], v_reset=d["V_reset"], v_th=d["V_th"],
        t_ref=d["t_ref"], i_e=d["I_e"],
        tau_syn_ex=d["tau_syn_ex"] if current else None, tau_syn_in=d["tau_syn_in"] if current else None,
        psc="alpha" if kind == "iaf_psc_alpha" else "exp")
    net = es.Network(dt=dt, seed=0)
    pop = net.population(n, model, v_init=d["V_init"])
    net.connect(pop, pop, es.FromArrays(d["conn_pre"], d["conn_post"]),
                weight=d["conn_weight"], delay=d["conn_delay"])
    gen = net.spike_source(d["gen_sender"], d["gen_time"], n=int(d["n_gen"]))
    net.connect(gen, pop, es.FromArrays(d["in_pre"], d["in_post"]), weight=d["in_weight"],
                delay=d["in_delay"])
    return net, pop


def test_reference_files_present():
    assert len(CASES) >= 8
    assert sum("alpha_" in os.path.basename(c) for c in CASES) == 3


@pytest.mark.parametrize("path", CASES, ids=[os.path.basename(c)[:-4] for c in CASES])
def test_same_spikes_and_voltages_as_nest(path):
    d = np.load(path)
    dt = float(d["dt"])
    net, pop = build_from_reference(d)
    spikes = net.record_spikes(pop)
    vm = net.record_state(pop, "v")
    net.run(float(d["t_sim"]))

    ref_steps = np.rint(d["spike_times"] / dt).astype(np.int64)
    ref = sorted(zip(ref_steps.tolist(), d["spike_senders"].tolist()))
    got = sorted(zip(spikes.steps.tolist(), spikes.senders.tolist()))
    assert len(ref) > 100
    assert got == ref

    sample_steps = np.rint(d["vm_times"] / dt).astype(np.int64)
    np.testing.assert_allclose(vm.values[sample_steps - 1], d["vm"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(vm.steps[sample_steps - 1], sample_steps)
