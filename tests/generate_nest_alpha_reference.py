"""Generate NEST reference data for alpha-shaped current synapses in eventsim's event engine.

For each case in ``CASES`` this script draws a network exactly as
``tests/generate_nest_ps_reference.py`` does (its ``Case``,
``generate_network``: seeded NumPy draws of per-neuron parameters, input
spike trains at off-grid times, on-grid delays, recurrent synapses), runs it
in NEST 3.10 with the precise-timing model ``iaf_psc_alpha_ps`` (that
script's ``run_nest``: every parameter set explicitly, one
``spike_generator`` per channel with ``precise_times=True``), checks NEST's
spikes against NEST itself at half the resolution, and saves the network and
NEST's spikes as ``tests/nest_alpha_reference/<case>.npz`` (same key schema
as ``tests/nest_ps_reference/README.md``; ``tau_syn_ex`` / ``tau_syn_in``
are the alpha time constants: a weight w pA gives the current
:math:`w (t/\\tau) e^{1 - t/\\tau}`, peaking at w).  ``tests/test_event_alpha.py``
rebuilds each network with ``psc="alpha"`` and ``engine="event"``.

Run from the repository root, in an environment with ``nest-simulator``
(3.10.0 was used) and ``numpy``::

    python tests/generate_nest_alpha_reference.py                 # all cases
    python tests/generate_nest_alpha_reference.py alpha_ps_ff      # a subset

What NEST's ``iaf_psc_alpha_ps`` does (read from its source,
models/iaf_psc_alpha_ps.cpp and libnestutil/regula_falsi.h): within each
step it propagates the state exactly from one incoming spike (or the end of
the refractory period) to the next and to the end of the step, tests
``V_m >= V_th`` at the end of each such sub-interval and, when the test
holds, finds the crossing inside the sub-interval by Illinois regula falsi
(to a distance below 1e-14 mV); an input of weight w adds
:math:`(e/\\tau) w` to the drive ``dI`` of its receptor (the sign of the
weight picks it); ``V_m`` is held at ``V_reset`` for ``t_ref`` after the
precise spike time while the currents evolve.  A crossing that goes up and
back down within one sub-interval is not seen there; eventsim's event
engine predicts the first crossing of the free trajectory instead (see
eventsim/models/psc_alpha.py), so the cases' weights keep such grazing
crossings unlikely, and the script reports how NEST at half the resolution
(shorter sub-intervals) agrees.
"""

from __future__ import annotations

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "nest_alpha_reference")
sys.path.insert(0, HERE)

import generate_nest_ps_reference as ps  # noqa: E402  (the network draws and the NEST run)
import naive_ps  # noqa: E402

CASES = [
    # feed-forward, tau_syn_ex != tau_syn_in; the alpha current carries e tau w, so the weights are about
    # 1/e of exp_ps_ff's
    ps.Case(name="alpha_ps_ff", model="iaf_psc_alpha_ps", seed=52001, tau_syn_ex=2.0, tau_syn_in=5.0,
            v_inf=("uniform", -58.0, -48.0), k_in=5, w_in_exc=(110.0, 330.0), w_in_inh=(110.0, 440.0)),
    # tau_syn_ex == tau_m (the propagator's singular limit), heterogeneous t_ref
    ps.Case(name="alpha_ps_equal_tau", model="iaf_psc_alpha_ps", seed=52002, tau_m=10.0, tau_syn_ex=10.0,
            tau_syn_in=3.0, t_ref=("choice", (1.0, 2.0, 3.0)), v_inf=("uniform", -58.0, -48.0), k_in=5,
            w_in_exc=(40.0, 110.0), w_in_inh=(110.0, 370.0)),
    # recurrent, 1 s (as exp_ps_recurrent, weights scaled by about 1/e)
    ps.Case(name="alpha_ps_recurrent", model="iaf_psc_alpha_ps", seed=52003, n=300, t_sim=1000.0,
            tau_m=("uniform", 15.0, 25.0), tau_syn_ex=2.0, tau_syn_in=5.0,
            v_inf=("uniform", -52.0, -48.5), v_init=("uniform", -70.0, -51.0),
            n_gen=300, gen_rate=(40.0, 60.0), k_in=0,
            w_in_exc=(55.0, 110.0), w_in_inh=(22.0, 44.0), frac_in_inh=0.3, in_delay_steps=(1, 10),
            p_conn=0.1, w_exc=15.0, w_inh=-22.0),
]


def main(argv):
    names = argv or [c.name for c in CASES]
    unknown = set(names) - {c.name for c in CASES}
    if unknown:
        raise SystemExit(f"unknown case(s): {', '.join(sorted(unknown))}")
    os.makedirs(OUT, exist_ok=True)
    for case in CASES:
        if case.name not in names:
            continue
        net = ps.generate_network(case)
        senders, times, version = ps.run_nest(net)
        n, t_sim = case.n, case.t_sim
        print(f"{case.name}: {case.model}, n={n}, {t_sim:g} ms, {senders.size} spikes "
              f"({senders.size / n / t_sim * 1e3:.1f} Hz), silent {n - np.unique(senders).size}, "
              f"{net['gen_time'].size} input spikes")
        half = ps.run_nest(net, dt=case.dt / 2)
        m9, worst = naive_ps.match_spikes(senders, times, half[0], half[1], 1e-9)
        print(f"  NEST at resolution {case.dt / 2:g} ms: {half[0].size} spikes, {m9} within 1e-9 ms "
              f"(max |dt| {worst:.1e} ms)")
        data = dict(net)
        data.update(spike_senders=senders, spike_times=times, nest_version=np.array(version))
        path = os.path.join(OUT, case.name + ".npz")
        ps.save(path, data)
        print(f"  wrote {os.path.relpath(path)} ({os.path.getsize(path) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main(sys.argv[1:])
