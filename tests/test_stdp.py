"""Plastic synapses: closed-form single pairs, bounds, thread counts, split runs, checkpoints, validation."""

import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import eventsim as es

RELAY = es.LIF(tau_m=10.0, v_th=1.0, v_reset=0.0, t_ref=1.0, c_m=1.0)  # spikes in the step its input arrives
POST = es.LIF(tau_m=10.0, v_th=100.0, v_reset=0.0, t_ref=1.0, c_m=1.0)  # a relay that plastic weights cannot fire


def pair(t_pre, t_post, rule, w0, d=1.0, t_end=None):
    """A plastic synapse from a relay neuron spiking at ``t_pre`` (a list) to one spiking at ``t_post``;
    returns its final weight.  Each relay spikes 0.1 ms after its source's spike."""
    net = es.Network(dt=0.1, seed=1)
    pre = net.population(1, RELAY)
    post = net.population(1, POST)
    src = net.spike_source([0] * len(t_pre) + [1] * len(t_post), [t - 0.1 for t in t_pre] + [t - 0.1 for t in t_post])
    net.connect(src[:1], pre, es.AllToAll(), weight=50.0, delay=0.1)
    net.connect(src[1:], post, es.AllToAll(), weight=500.0, delay=0.1)
    proj = net.connect(pre, post, es.AllToAll(), weight=w0, delay=d, synapse=rule)
    rp, rq = net.record_spikes(pre), net.record_spikes(post)
    net.run(t_end or max(t_pre + t_post) + 5.0)
    assert np.allclose(rp.times, t_pre) and np.allclose(rq.times, t_post)  # the relays fired as planned
    return float(proj.weight[0])


@pytest.mark.parametrize("delta", [-30.0, -5.0, -1.0, -0.1, 0.0, 0.1, 1.0, 5.0, 30.0])
def test_additive_pair_closed_form(delta):
    """Pre at 50 ms and again at 400 ms, post at 50 + delta: the closed form of NEST's additive rule
    (the post spike counts at t_post + d, the whole delay being dendritic)."""
    lam, alpha, w_max, tp, tm, d, w0 = 0.01, 1.2, 10.0, 16.8, 33.7, 1.0, 5.0
    rule = es.STDP(tau_plus=tp, tau_minus=tm, lam=lam, alpha=alpha, mu_plus=0.0, mu_minus=0.0, w_max=w_max)
    t1, t2, tq = 50.0, 400.0, 50.0 + delta
    w = pair([t1, t2], [tq], rule, w0, d)
    x = w0 / w_max
    # first pre spike: depression by the post trace at t1 - d (if the post spike came strictly before)
    if tq < t1 - d - 1e-9:
        x -= alpha * lam * math.exp(-(t1 - d - tq) / tm)
    # second pre spike: facilitation by the post spike if it lies in (t1 - d, t2 - d], then depression
    if tq > t1 - d + 1e-9:
        x += lam * math.exp(-(tq + d - t1) / tp)
    x -= alpha * lam * math.exp(-(t2 - d - tq) / tm)
    assert w == pytest.approx(x * w_max, rel=1e-12)


def test_multiplicative_and_power_law_pairs():
    tp, tm, d = 20.0, 20.0, 2.0
    rule = es.STDP(tau_plus=tp, tau_minus=tm, lam=0.05, alpha=1.0, mu_plus=1.0, mu_minus=1.0, w_max=4.0)
    w = pair([10.0, 300.0], [20.0], rule, 1.0, d)
    x = 0.25                       # pre at 10: no post spike before -> unchanged (multiplied back by w_max)
    x += 0.05 * (1 - x) * math.exp(-(20.0 + d - 10.0) / tp)
    x -= 1.0 * 0.05 * x * math.exp(-(300.0 - d - 20.0) / tm)
    assert w == pytest.approx(x * 4.0, rel=1e-12)
    pl = es.STDPPowerLaw(tau_plus=tp, tau_minus=tm, lam=0.1, alpha=1.5, mu=0.4)
    w = pair([10.0, 300.0], [20.0], pl, 2.0, d)
    y = 2.0 + 0.1 * 2.0 ** 0.4 * math.exp(-(20.0 + d - 10.0) / tp)
    y -= 0.1 * 1.5 * y * math.exp(-(300.0 - d - 20.0) / tm)
    assert w == pytest.approx(y, rel=1e-12)


def test_bounds_are_hit_exactly():
    up = es.STDP(lam=5.0, alpha=0.0, mu_plus=0.0, mu_minus=0.0, w_max=3.0)  # (no depression after it)
    assert pair([10.0, 300.0], [15.0], up, 2.0) == 3.0          # facilitation clipped at w_max
    down = es.STDP(lam=5.0, alpha=1.0, mu_plus=0.0, mu_minus=0.0, w_max=3.0)
    assert pair([30.0], [10.0], down, 2.0) == 0.0               # depression clipped at 0
    neg = es.STDP(lam=5.0, alpha=0.0, mu_plus=0.0, mu_minus=0.0, w_max=-3.0)  # inhibitory: sign of w_max
    assert pair([10.0, 300.0], [15.0], neg, -2.0) == -3.0


def _network(threads_env=None):
    net = es.Network(dt=0.1, seed=7)
    exc = net.population(160, es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, c_m=1.0),
                         v_init=es.Uniform(0.0, 20.0))
    inh = net.population(40, es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=1.0, c_m=250.0, tau_syn_ex=2.0,
                                    tau_syn_in=5.0), v_init=es.Uniform(0.0, 15.0))
    noise = net.poisson(200, rate=15000.0)
    net.connect(noise, exc | inh, es.OneToOne(), weight=np.r_[np.full(160, 0.2), np.full(40, 30.0)], delay=0.1)
    e2e = net.connect(exc, exc, es.FixedInDegree(20), weight=es.Uniform(0.1, 1.0), delay=es.Uniform(0.5, 3.0),
                      synapse=es.STDP(lam=0.02, alpha=1.05, mu_plus=0.0, mu_minus=0.0, w_max=2.0))
    # (one weight and one delay: the multapses that FixedInDegree draws are equal, and share their updates)
    e2i = net.connect(exc, inh, es.FixedInDegree(20), weight=100.0, delay=1.5,
                      synapse=es.STDPPowerLaw(lam=0.5, alpha=1.1, mu=0.4, tau_minus=30.0))
    net.connect(inh, exc, es.FixedInDegree(10), weight=-1.0, delay=0.8)
    return net, [e2e, e2i], net.record_spikes(exc | inh)


def _late_connect(net):
    """A plastic projection made after a run: the rule of ``_network``'s e2e (a row of its own), onto
    excitatory and inhibitory neurons (inh had plastic input with tau_minus = 30 ms only: 20 ms is e2e's,
    followed on every neuron with plastic input since the start)."""
    exc, inh = net.populations[0], net.populations[1]
    return net.connect(exc, exc | inh, es.FixedInDegree(4), weight=es.Uniform(0.1, 1.0), delay=1.2,
                       synapse=es.STDP(lam=0.02, alpha=1.05, mu_plus=0.0, mu_minus=0.0, w_max=2.0))


def _digest(rec, projs):
    h = hashlib.sha256()
    for a in (rec.steps, rec.senders, *[p.weight for p in projs]):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


SCRIPT = r"""
import sys, numba
sys.path.insert(0, {here!r})
import test_stdp as t
net, projs, rec = t._network()
net.run(150.0); net.run(150.0)
print("DIGEST", t._digest(rec, projs), len(rec.steps))
net, projs, rec = t._network()
net.run(100.0); projs.append(t._late_connect(net)); net.run(150.0)
print("LATE", t._digest(rec, projs))
"""


def test_thread_counts_and_split_runs_give_the_same_spikes_and_weights():
    net, projs, rec = _network()
    w0 = [p.weight.copy() for p in projs]
    net.run(300.0)
    assert all(not np.array_equal(a, p.weight) for a, p in zip(w0, projs))
    ref = _digest(rec, projs)
    net, projs, rec = _network()
    net.run(100.0)
    projs.append(_late_connect(net))
    net.run(150.0)
    late = _digest(rec, projs)
    for threads in (1, 2, 3):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        out = subprocess.run([sys.executable, "-c", SCRIPT.format(here=os.path.dirname(__file__))], env=env,
                             capture_output=True, text=True, timeout=900)
        assert f"DIGEST {ref}" in out.stdout, (threads, out.stdout[-2000:], out.stderr[-3000:])
        assert f"LATE {late}" in out.stdout, (threads, out.stdout[-2000:], out.stderr[-3000:])


def test_checkpoint_resumes_weights_traces_and_histories(tmp_path):
    net, projs, rec = _network()
    net.run(120.0)
    net.save(tmp_path / "p.ckpt")
    net.run(180.0)
    ref = _digest(rec, projs)
    net.close()
    back = es.Network.load(tmp_path / "p.ckpt")
    back.run(180.0)
    bprojs = [p for p in back.projections if p.synapse is not None]
    assert [type(p.synapse) for p in bprojs] == [es.STDP, es.STDPPowerLaw]
    assert _digest(back.recorders[0], bprojs) == ref


def test_an_interrupted_chunk_leaves_the_weights_of_the_last_commit_and_resumes_exactly(monkeypatch):
    """A KeyboardInterrupt inside a later chunk: the weights, traces and histories are those of the last
    committed chunk (restored from the snapshot buffers, reused from chunk to chunk), and the run resumes
    as if uninterrupted."""
    from eventsim import config
    from eventsim.engines import plastic as pl

    monkeypatch.setattr(config, "CHUNK_STEPS", 100)
    net, projs, rec = _network()
    net.run(300.0)
    ref = _digest(rec, projs)
    net.close()

    net, projs, rec = _network()
    state = net.record_state(net.populations[0][:3], "v", interval=1.0)
    real, calls = type(state)._commit, [0]

    def failing(self, step):
        calls[0] += 1
        if calls[0] == 6:
            raise KeyboardInterrupt
        real(self, step)

    monkeypatch.setattr(type(state), "_commit", failing)
    with pytest.raises(KeyboardInterrupt):
        net.run(300.0)
    monkeypatch.setattr(type(state), "_commit", real)
    step = net.step
    assert 0 < step < 3000
    # the same network run to that step in one go has the same weights and plastic state
    other, oprojs, _ = _network()
    other.run(step * 0.1)
    assert all(np.array_equal(a.weight, b.weight) for a, b in zip(projs, oprojs))
    for nm in pl.MUTABLE:
        a, b = getattr(net._plan.plastic, nm), getattr(other._plan.plastic, nm)
        if nm in ("hs", "hk"):  # (the rings may have grown differently: compare the entries in use)
            assert a.shape[0] == b.shape[0]
            continue
        assert np.array_equal(a, b), nm
    other.close()
    net.run((3000 - step) * 0.1)
    assert _digest(rec, projs) == ref


def test_weights_assigned_between_runs_and_static_additions():
    net, (e2e, _), rec = _network()
    net.run(50.0)
    w = np.clip(e2e.weight * 0.5, 0.0, 2.0)
    e2e.weight = w
    assert np.array_equal(e2e.weight, w)  # before the next run: the assigned ones
    extra = net.population(5, RELAY)
    net.connect(extra, net.populations[0][:5], es.OneToOne(), weight=1.0, delay=2.0)  # static, after a run
    net.run(50.0)
    assert not np.array_equal(e2e.weight, w)  # plasticity went on from the assigned weights
    with pytest.raises(ValueError, match="outside"):
        e2e.weight = np.full(len(e2e), 3.0)


def test_a_plastic_connection_made_after_a_run_starts_as_a_new_nest_synapse():
    """NEST's new synapse: K_+ = 0 and no last presynaptic spike (its first spike only depresses, whatever the
    sender did before), and a target without plastic input so far has kept no K_- (spikes before the
    connection do not depress).  Pre spikes at 10, 50 and 90 ms, post at 30 and 70 ms; the sender's early
    synapse onto another neuron has the same rule (one rule row would share its K_+); the late one is made at
    40 ms: the 50 ms spike leaves it unchanged, the 90 ms spike facilitates by the 70 ms post spike with
    K_+ = 1 (the 50 ms spike alone) and depresses by K_- of the 70 ms spike alone."""
    lam, alpha, w_max, tp, tm, d, w0 = 0.05, 1.2, 10.0, 16.8, 33.7, 1.0, 5.0
    rule = es.STDP(tau_plus=tp, tau_minus=tm, lam=lam, alpha=alpha, mu_plus=0.0, mu_minus=0.0, w_max=w_max)
    net = es.Network(dt=0.1, seed=1)
    pre, post, other = net.population(1, RELAY), net.population(1, POST), net.population(1, POST)
    src = net.spike_source([0, 0, 0, 1, 1, 2], [9.9, 49.9, 89.9, 29.9, 69.9, 29.9])
    net.connect(src[:1], pre, es.AllToAll(), weight=50.0, delay=0.1)
    net.connect(src[1:2], post, es.AllToAll(), weight=500.0, delay=0.1)
    net.connect(src[2:], other, es.AllToAll(), weight=500.0, delay=0.1)
    early = net.connect(pre, other, es.AllToAll(), weight=w0, delay=d, synapse=rule)
    net.run(40.0)
    late = net.connect(pre, post, es.AllToAll(), weight=w0, delay=d, synapse=rule)
    assert late.generation == 400 and early.generation == 0
    assert late.weight[0] == w0  # (before the next run: the initial weight)
    net.run(55.0)
    assert net._plan.plastic.rp.shape[0] == 2  # one rule, two rows (generations 0 and 400)
    x = w0 / w_max + lam * math.exp((50.0 - (70.0 + d)) / tp) - alpha * lam * math.exp((70.0 - (90.0 - d)) / tm)
    assert late.weight[0] == pytest.approx(x * w_max, rel=1e-12)
    # the early synapse onto `other` (post spike at 30 ms only): facilitated at 50 ms with K_+ of the 10 ms
    # spike, depressed by the 30 ms spike's K_- at 50 and 90 ms
    y = w0 / w_max + lam * math.exp((10.0 - (30.0 + d)) / tp) - alpha * lam * math.exp((30.0 - (50.0 - d)) / tm)
    y -= alpha * lam * math.exp((30.0 - (90.0 - d)) / tm)
    assert early.weight[0] == pytest.approx(y * w_max, rel=1e-12)


def test_late_plastic_connections_need_a_kept_postsynaptic_trace():
    """A new time constant of K_- onto neurons that already had plastic input is refused (nothing is added);
    onto neurons without plastic input it starts from 0; a row made later with a time constant that an early
    row already had takes that row's traces."""
    net, (e2e, e2i), rec = _network()
    exc, inh = net.populations[0], net.populations[1]
    fresh = net.population(20, es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, c_m=1.0),
                           v_init=es.Uniform(0.0, 20.0))
    net.connect(net.poisson(20, rate=15000.0), fresh, es.OneToOne(), weight=0.2, delay=0.1)
    net.run(50.0)
    n_proj = len(net.projections)
    with pytest.raises(NotImplementedError, match=r"time constant.*\[20\.0, 30\.0\]"):
        net.connect(exc, exc[:40], es.FixedInDegree(3), weight=0.5, delay=1.0, synapse=es.STDP(tau_minus=25.0))
    assert len(net.projections) == n_proj
    # tau_minus = 30 ms, e2i's: a row since the first run, whose trace has followed every neuron with plastic
    # input (exc too, though no 30 ms synapse reaches them): accepted, its trace copied
    x30 = net.connect(inh, exc, es.FixedInDegree(2), weight=0.5, delay=1.0,
                      synapse=es.STDPPowerLaw(lam=0.1, tau_minus=30.0))
    # onto the fresh neurons any time constant: their traces start at 0
    new = net.connect(exc, fresh, es.FixedInDegree(10), weight=0.5, delay=1.0,
                      synapse=es.STDP(tau_minus=25.0, lam=0.02, w_max=2.0))
    same = net.connect(exc, exc, es.FixedInDegree(3), weight=0.5, delay=1.0,
                       synapse=es.STDP(tau_minus=20.0, lam=0.01, w_max=2.0))
    net.run(100.0)
    assert all(not np.array_equal(p.weight, 0.5) for p in (new, same, x30))
    P = net._plan.plastic
    assert P.rp.shape[0] == 5  # two rows from the start, three made at step 500
    # once the fresh neurons have plastic input, a time constant new to the network is refused on them; 20 ms
    # (a row since the start: followed from their first plastic input on, as NEST's K_-) and 25 ms (first
    # used by their first plastic input) are accepted
    with pytest.raises(NotImplementedError):
        net.connect(exc, fresh, es.FixedInDegree(2), weight=0.5, delay=1.0, synapse=es.STDP(tau_minus=40.0))
    for tau in (20.0, 25.0):
        net.connect(exc, fresh, es.FixedInDegree(2), weight=0.5, delay=1.0, synapse=es.STDP(tau_minus=tau, w_max=2.0))
    net.run(20.0)


def test_at_most_256_rule_rows():
    """One byte per synapse names its rule row: the 257th distinct (rule, generation) is refused, nothing added."""
    net = es.Network()
    pop = net.population(2, RELAY)
    for k in range(256):
        net.connect(pop[:1], pop[1:], es.AllToAll(), weight=0.5, synapse=es.STDP(lam=0.001 * (k + 1), w_max=1.0))
    with pytest.raises(ValueError, match="at most 256"):
        net.connect(pop[:1], pop[1:], es.AllToAll(), weight=0.5, synapse=es.STDP(lam=1.0, w_max=1.0))
    assert len(net.projections) == 256
    net.connect(pop[:1], pop[1:], es.AllToAll(), weight=0.5, synapse=es.STDP(lam=0.001, w_max=1.0))  # a known row
    net.run(1.0)
    assert net._plan.plastic.rp.shape[0] == 256


def test_a_plastic_connection_made_after_a_run_survives_checkpoints_and_thread_counts(tmp_path):
    """Checkpoints taken before and after the late connection resume exactly (the rows' generations are
    saved); the thread counts' digests are in SCRIPT's LATE line (test_thread_counts_...)."""
    net, projs, rec = _network()
    net.run(100.0)
    net.save(tmp_path / "before.ckpt")
    late = _late_connect(net)
    net.run(60.0)
    net.save(tmp_path / "after.ckpt")
    net.run(90.0)
    ref = _digest(rec, projs + [late])
    for name, connect in (("before", True), ("after", False)):
        back = es.Network.load(tmp_path / f"{name}.ckpt")
        if connect:
            _late_connect(back)
            back.run(60.0)
        back.run(90.0)
        bp = [p for p in back.projections if p.synapse is not None]
        assert [p.generation for p in bp] == [0, 0, 1000]
        assert _digest(back.recorders[0], bp) == ref, name


def test_bad_rules_and_connections_are_refused():
    with pytest.raises(ValueError, match="tau_plus"):
        es.STDP(tau_plus=0.0)
    with pytest.raises(ValueError, match="lam"):
        es.STDPPowerLaw(lam=-1.0)
    with pytest.raises(ValueError, match="w_max"):
        es.STDP(w_max=0.0)
    with pytest.raises(ValueError, match="alpha"):
        es.STDP(alpha=float("nan"))
    net = es.Network()
    pop = net.population(3, RELAY)
    src = net.poisson(3, rate=10.0)
    with pytest.raises(ValueError, match="outside"):
        net.connect(pop, pop, es.AllToAll(), weight=5.0, synapse=es.STDP(w_max=2.0))
    with pytest.raises(ValueError, match="neurons to neurons"):
        net.connect(src, pop, es.OneToOne(), weight=1.0, synapse=es.STDP())
    with pytest.raises(TypeError, match="plasticity rule"):
        net.connect(pop, pop, es.AllToAll(), weight=1.0, synapse="stdp")
    with pytest.raises(ValueError, match=">= 0"):
        net.connect(pop, pop, es.AllToAll(), weight=-1.0, synapse=es.STDPPowerLaw())
    assert net.projections == []
    with pytest.raises(NotImplementedError, match="clock engine"):
        ev = es.Network(engine="event")
        p = ev.population(2, RELAY)
        ev.connect(p, p, es.AllToAll(), weight=1.0, synapse=es.STDP())


def test_static_networks_are_unchanged_by_the_plastic_path():
    """Without synapse=, no plastic arrays exist (same memory, same kernels)."""
    net = es.Network(dt=0.1, seed=1)
    pop = net.population(10, RELAY)
    net.connect(pop, pop, es.AllToAll(), weight=0.1)
    net.run(1.0)
    assert net._plan.plastic is None


def test_weight_recorder_samples_in_memory_and_on_disk(tmp_path):
    net, (e2e, e2i), rec = _network()
    wr = net.record_weights(e2e, index=[0, 5, 7], interval=10.0)
    wf = net.record_weights(e2i, interval=25.0, to=tmp_path / "w.h5")
    net.run(60.0)
    assert np.array_equal(wr.steps, [100, 200, 300, 400, 500, 600]) and wr.values.shape == (6, 3)
    assert np.array_equal(wr.values[-1], e2e.weight[[0, 5, 7]])
    assert not np.array_equal(wr.values[0], wr.values[-1])
    net.save(tmp_path / "c.ckpt")
    net.run(40.0)
    assert np.array_equal(wf.steps, [250, 500, 750, 1000]) and np.array_equal(wf.values[-1], e2i.weight)
    import h5py

    with h5py.File(tmp_path / "w.h5", "r", swmr=True) as f:
        assert f.attrs["format"] == "eventsim-weights" and f.attrs["unit"] == "pA"
        assert np.array_equal(f["post_ids"][:], e2i.target.ids[e2i.post])
    from eventsim.record import read_weights

    data = read_weights(tmp_path / "w.h5")
    assert np.array_equal(data.values, wf.values) and np.array_equal(data.steps, wf.steps)
    assert np.array_equal(data.connection_index, np.arange(len(e2i))) and data.unit == "pA"
    assert np.array_equal(data.pre_ids, e2i.source.ids[e2i.pre]) and data.interval == 25.0
    # a checkpoint resumes the weight recorders too, and recording does not change the run
    net.close()
    back = es.Network.load(tmp_path / "c.ckpt")
    back.run(40.0)
    assert np.array_equal(back.recorders[1].values, wr.values)
    plain, projs, prec = _network()
    plain.run(100.0)
    assert _digest(prec, projs) == _digest(rec, (e2e, e2i))
    with pytest.raises(ValueError, match="index"):
        net.record_weights(e2e, index=[len(e2e)])


CUDA_SCRIPT = r"""
import sys, numpy as np
sys.path.insert(0, {here!r})
import eventsim as es
from eventsim import config
import test_stdp as t
config.CUDA_THREADS_PER_BLOCK = 32


def run(backend):
    net = es.Network(dt=0.1, seed=7, backend=backend)
    exc = net.population(60, es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, c_m=1.0),
                         v_init=es.Uniform(0.0, 20.0))
    inh = net.population(15, es.LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=1.0, c_m=250.0, tau_syn_ex=2.0,
                                    tau_syn_in=5.0), v_init=es.Uniform(0.0, 15.0))
    noise = net.poisson(75, rate=15000.0)
    net.connect(noise, exc | inh, es.OneToOne(), weight=np.r_[np.full(60, 0.2), np.full(15, 30.0)], delay=0.1)
    e2e = net.connect(exc, exc, es.FixedInDegree(10), weight=es.Uniform(0.1, 1.0), delay=es.Uniform(0.5, 3.0),
                      synapse=es.STDP(lam=0.02, alpha=1.05, mu_plus=0.0, mu_minus=0.0, w_max=2.0))
    e2i = net.connect(exc, inh, es.FixedInDegree(10), weight=es.Uniform(50.0, 150.0), delay=1.5,
                      synapse=es.TripletSTDP(a2_plus=1.0, a2_minus=1.0, a3_plus=0.5, a3_minus=0.1, w_max=300.0))
    i2e = net.connect(inh, exc, es.FixedInDegree(5), weight=0.3, delay=0.8, synapse=es.STDPPowerLaw(lam=0.05))
    rec = net.record_spikes(exc | inh)
    net.run(60.0)
    # made after a run (a rule row of its own, e2e's rule; onto neurons with and without 20 ms input so far)
    late = net.connect(exc, exc | inh, es.FixedInDegree(3), weight=es.Uniform(0.1, 1.0), delay=1.2,
                       synapse=es.STDP(lam=0.02, alpha=1.05, mu_plus=0.0, mu_minus=0.0, w_max=2.0))
    net.run(40.0)
    assert not np.array_equal(late.weight, np.asarray(late._weight))
    return np.r_[rec.steps, rec.senders], e2e.weight, e2i.weight, i2e.weight, late.weight


a, b = run("cpu"), run("cuda")
same = all(np.array_equal(x, y) for x, y in zip(a, b))
print("SAME" if same and a[0].size > 100 else "DIFF", a[0].size)
"""


def test_cuda_simulator_is_bit_identical_to_the_cpu():
    pytest.importorskip("numba_cuda")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-c", CUDA_SCRIPT.format(here=os.path.dirname(__file__))], env=env,
                         capture_output=True, text=True, timeout=1200)
    assert "SAME" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]


def test_history_beyond_the_horizon_is_not_kept():
    """A presynaptic neuron that never fires does not make its target keep every spike: the rings stay
    bounded by the spikes within the horizon (50 times the longest trace time constant)."""
    from eventsim.engines import plastic

    net = es.Network(dt=0.1, seed=3)
    post = net.population(1, es.LIF(tau_m=10.0, v_th=1.0, v_reset=0.0, t_ref=2.0, c_m=1.0))
    silent = net.population(1, RELAY)
    drive = net.poisson(1, rate=2000.0)
    net.connect(drive, post, es.OneToOne(), weight=5.0, delay=0.1)  # post fires at about 300 Hz
    rule = es.STDP(tau_plus=1.0, tau_minus=1.0, lam=0.01, w_max=1.0)  # horizon 50 ms
    net.connect(silent, post, es.AllToAll(), weight=0.5, delay=1.0, synapse=rule)
    rec = net.record_spikes(post)
    net.run(3000.0)
    P = net._plan.plastic
    assert P.hz[0] == plastic.horizon_steps([rule], 0.1) == 500
    assert len(rec.steps) > 500 and P.hs.shape[1] <= 256  # (without the horizon: every spike, > 500)


def test_a_chunk_adds_at_most_history_chunk_entries_to_a_ring():
    """A short refractory period does not make the rings as long as the spikes a neuron could fire in the
    engine's default chunk (1,001 with t_ref = 0.1 ms): the chunks of a plastic network are shortened so that
    a ring grows by at most ``HISTORY_CHUNK`` entries beyond the ones still needed."""
    from eventsim.engines import plastic

    net = es.Network(dt=0.1, seed=3)
    post = net.population(1, es.LIF(tau_m=10.0, v_th=1.0, v_reset=0.0, t_ref=0.1, c_m=1.0))
    pre = net.population(1, RELAY)
    drive = net.poisson(2, rate=2000.0)
    net.connect(drive[:1], post, es.OneToOne(), weight=5.0, delay=0.1)
    net.connect(drive[1:], pre, es.OneToOne(), weight=0.2, delay=0.1)
    net.connect(pre, post, es.AllToAll(), weight=0.5, delay=1.0,
                synapse=es.STDP(tau_plus=1.0, tau_minus=1.0, lam=0.01, w_max=1.0))  # horizon 50 ms
    rec = net.record_spikes(post)
    net.run(1000.0)
    assert len(rec.steps) > 300 and net._plan.plastic.hs.shape[1] <= 2 * plastic.HISTORY_CHUNK


def test_plastic_layout_order_is_lexsort_by_sender_then_target():
    """The plastic layout's O(n) ordering (two counting sorts) is ``np.lexsort((tgt, pre))``, ties in the
    given order, with each sender's first position; empty and single-synapse inputs too."""
    from eventsim.engines.plastic import sender_target_order

    rng = np.random.default_rng(11)
    for n, n_pre, n_tgt in ((0, 3, 4), (1, 1, 1), (1000, 7, 5), (50000, 300, 40)):
        pre = rng.integers(0, n_pre, n).astype(np.int64)
        tgt = rng.integers(0, n_tgt, n).astype(np.int64)
        order, ptr = sender_target_order(pre, tgt, n_pre, n_tgt)
        assert np.array_equal(order, np.lexsort((tgt, pre)))
        assert np.array_equal(ptr, np.concatenate([[0], np.cumsum(np.bincount(pre, minlength=n_pre))]))
