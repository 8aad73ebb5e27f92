"""The neuron update alone, for the models integrated by the adaptive Runge-Kutta-Fehlberg pair.

Uncoupled neurons driven by a constant current (they fire, so the reset,
refractory and short-step paths run too), no synapses: the time per step is
the family's block update (``iaf_cond_exp``, ``iaf_cond_alpha``: a
vectorised pass for the steps that are one accepted Runge-Kutta step;
``aeif_cond_exp``: one such step without the integrator's loops) and the
engine's fixed cost per step.  The parameters are the COBA network's
(``examples/coba.py``).
"""

from . import DT, WARMUP_STEPS, set_threads

#: Neurons and simulated time (ms) per model: the AdEx update costs about 15 times the others'.
SIZES = {"cond_exp": (100_000, 100.0), "cond_alpha": (100_000, 100.0), "adex": (20_000, 50.0)}


class ConductanceUpdate:
    """The update of ``N`` neurons for ``T_SIM`` ms, one thread; ``track_`` reports ns per neuron and step."""

    params = [list(SIZES)]
    param_names = ["model"]
    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0.0
    timeout = 300

    def setup(self, model):
        import eventsim as es

        set_threads(1)
        common = dict(c_m=200.0, v_rest=-60.0, v_reset=-60.0, v_th=-50.0, t_ref=5.0, e_ex=0.0, e_in=-80.0,
                      tau_syn_ex=5.0, tau_syn_in=10.0)
        if model == "adex":
            neuron = es.AdEx(g_l=10.0, delta_t=2.0, v_peak=0.0, a=2.0, b=40.0, tau_w=100.0, i_e=260.0, **common)
        else:
            neuron = es.CondLIF(tau_m=20.0, i_e=210.0, psc="exp" if model == "cond_exp" else "alpha", **common)
        self.n, self.t_sim = SIZES[model]
        self.net = es.Network(dt=DT, seed=1)
        self.net.population(self.n, neuron, v_init=es.Uniform(-60.0, -50.0))
        self.net.run(WARMUP_STEPS * DT)

    def time_simulate(self, model):
        self.net.run(self.t_sim)

    def track_ns_per_neuron_step(self, model):
        import time

        t0 = time.perf_counter()
        self.net.run(self.t_sim)
        return (time.perf_counter() - t0) / (self.n * round(self.t_sim / DT)) * 1e9

    track_ns_per_neuron_step.unit = "ns"
