"""The neuron update alone, per synapse shape: delta, exponential and alpha current synapses.

100,000 uncoupled LIF neurons driven by a constant current (about 33 Hz
each, so the reset and refractory paths run too), no synapses: the time per
step is the family's block update (``iaf_psc_delta``, ``iaf_psc_exp``,
``iaf_psc_alpha``) and the engine's fixed cost per step.
"""

from . import DT, WARMUP_STEPS, set_threads

N = 100_000
T_SIM = 100.0  # ms: 1,000 steps


class NeuronUpdate:
    """1,000 steps of 100,000 neurons, one thread; ``track_`` reports ns per neuron and step."""

    params = [["delta", "exp", "alpha"]]
    param_names = ["psc"]
    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0.0
    timeout = 300

    def setup(self, psc):
        import eventsim as es

        set_threads(1)
        syn = {} if psc == "delta" else dict(tau_syn_ex=0.5, tau_syn_in=2.0, psc=psc)
        self.net = es.Network(dt=DT, seed=1)
        self.net.population(N, es.LIF(tau_m=10.0, c_m=250.0, v_th=15.0, t_ref=2.0, i_e=400.0, **syn),
                            v_init=es.Uniform(0.0, 15.0))
        self.net.run(WARMUP_STEPS * DT)

    def time_simulate(self, psc):
        self.net.run(T_SIM)

    def track_ns_per_neuron_step(self, psc):
        import time

        t0 = time.perf_counter()
        self.net.run(T_SIM)
        return (time.perf_counter() - t0) / (N * round(T_SIM / DT)) * 1e9

    track_ns_per_neuron_step.unit = "ns"
