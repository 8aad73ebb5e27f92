"""Brette et al. (2007) benchmark 2 (CUBA): 4,000 LIF neurons with exponential current synapses.

3,200 excitatory and 800 inhibitory neurons, connection probability 0.02,
tau_m = 20 ms, E_L = -49 mV, V_th = -50 mV, V_reset = -60 mV, refractory
period 5 ms, tau_syn_ex = 5 ms, tau_syn_in = 10 ms.  The benchmark's
synaptic jumps (+1.62 mV and -9 mV on the voltage-scaled currents) become
currents ``w = jump * C_m / tau_m`` in pA.  The activity is self-sustained:
E_L lies above threshold and the initial voltages are uniform in
[V_reset, V_th].  Delay 0.1 ms (one step), dt = 0.1 ms, 10 s.

Usage::

    python examples/cuba.py           # 10 s
    python examples/cuba.py --quick   # 1 s
"""

import argparse
import time

import eventsim as es

TAU_M, C_M = 20.0, 250.0


def build(seed=1, dt=0.1):
    """Build the CUBA network; returns (net, exc, inh, spikes)."""
    model = es.LIF(tau_m=TAU_M, c_m=C_M, v_rest=-49.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0,
                   tau_syn_ex=5.0, tau_syn_in=10.0)
    net = es.Network(dt=dt, seed=seed)
    exc = net.population(3200, model, v_init=es.Uniform(-60.0, -50.0), label="exc")
    inh = net.population(800, model, v_init=es.Uniform(-60.0, -50.0), label="inh")
    everyone = exc | inh
    w_e = 1.62 * C_M / TAU_M     # pA
    w_i = -9.0 * C_M / TAU_M     # pA
    net.connect(exc, everyone, es.FixedProbability(0.02), weight=w_e, delay=dt)
    net.connect(inh, everyone, es.FixedProbability(0.02), weight=w_i, delay=dt)
    spikes = net.record_spikes(everyone)
    return net, exc, inh, spikes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="simulate 1 s instead of 10 s")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    t_sim = 1000.0 if args.quick else 10000.0
    t0 = time.perf_counter()
    net, exc, inh, spikes = build(args.seed)
    net.run(0.1)
    t1 = time.perf_counter()
    net.run(t_sim - 0.1)
    t2 = time.perf_counter()
    rate = len(spikes) / net.n_neurons / (t_sim * 1e-3)
    events, _ = net.synaptic_events
    print(f"neurons: {net.n_neurons}, synapses: {net.n_synapses}")
    print(f"build + compile: {t1 - t0:.2f} s, simulate {t_sim / 1000:.0f} s: {t2 - t1:.2f} s")
    print(f"mean rate: {rate:.2f} Hz; synaptic events: {events:,d} ({events / (t2 - t1):.3e} per second)")
    return rate


if __name__ == "__main__":
    main()
