"""Plastic synapses: the network of ``examples/stdp_network.py`` (additive STDP on E -> E), and the same
network with static synapses, so that the ratio is eventsim's own cost of plasticity.

Half size (1,000 excitatory and 250 inhibitory neurons, 100,000 plastic
synapses), 1 s of biological time per sample, dt = 0.1 ms.
"""

from . import DT, THREADS, WARMUP_STEPS, load_example, set_threads

T_SIM = 1000.0  # ms of biological time per simulate call


class PlasticSimulate:
    """1 s of biological time with plastic or static E -> E synapses, the engine compiled in ``setup``."""

    params = [THREADS, [True, False]]
    param_names = ["threads", "plastic"]
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, threads, plastic):
        import eventsim as es

        set_threads(threads)
        mod = load_example("stdp_network")
        if not plastic:  # the same network, its rule replaced by static synapses of the same weights
            original = es.Network.connect

            def connect(net, *args, synapse=None, **kw):
                return original(net, *args, **kw)

            es.Network.connect = connect
            try:
                self.net, _, self.ee, _, _ = mod.build(seed=1, scale=0.5)
            finally:
                es.Network.connect = original
        else:
            self.net, _, self.ee, _, _ = mod.build(seed=1, scale=0.5)
        self.net.run(WARMUP_STEPS * DT)

    def time_simulate(self, threads, plastic):
        self.net.run(T_SIM)

    def track_bytes_per_plastic_synapse(self, threads, plastic):
        """Engine bytes per plastic synapse (weight, target, delay, rule), 0 when static."""
        P = self.net._plan.plastic
        if P is None:
            return 0.0
        per = sum(getattr(P, nm).nbytes for nm in ("w", "tgt", "dly", "rule"))
        return per / P.w.size

    track_bytes_per_plastic_synapse.unit = "bytes"
