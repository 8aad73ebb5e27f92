"""Generate the NEST reference of the receptor-port tests (``iaf_psc_exp_multisynapse``).

A small random network of ``iaf_psc_exp_multisynapse`` neurons with three
receptor ports (tau_syn = 2, 100 and 5 ms; NEST refuses a tau_syn equal to
tau_m for this model, so that limit is tested against the closed form), drawn with NumPy
(``default_rng(SEED)``): per-neuron ``I_e`` and initial ``V_m``, recurrent
connections with a receptor port, a weight of either sign and a delay each,
and input channels (``spike_generator``) of grid-aligned spike times that
project onto the neurons through ports as well.  NEST numbers its ports from
1; the stored arrays use eventsim's numbering from 0 (``receptor=k`` is
NEST's ``receptor_type=k + 1``).

Run from the repository root with ``nest-simulator`` 3.10 installed::

    python tests/nest_multisynapse_reference/generate.py

It writes ``multisynapse.npz`` next to itself: the network (``tau_syn``,
``tau_m``, ``c_m``, ``e_l``, ``v_th``, ``v_reset``, ``t_ref``, ``i_e``,
``v_init``; recurrent ``pre``, ``post``, ``port``, ``weight``, ``delay``;
input ``in_ch``, ``in_post``, ``in_port``, ``in_weight``, ``in_delay``,
``in_times`` (concatenated), ``in_ptr`` (CSR over channels)) and NEST's
result (``spike_senders``, ``spike_times``, ``v_times``, ``v_m`` of shape
``[steps, n]``, sampled every dt).
"""

import os
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20261205
DT = 0.1
T_SIM = 300.0
N = 40
N_IN = 12
TAU_SYN = (2.0, 100.0, 5.0)
TAU_M = 10.0
C_M = 250.0
E_L = -65.0
V_TH = -50.0
V_RESET = -70.0
T_REF = 2.0


def draw():
    rng = np.random.default_rng(SEED)
    net = dict(tau_syn=np.array(TAU_SYN), tau_m=TAU_M, c_m=C_M, e_l=E_L, v_th=V_TH, v_reset=V_RESET, t_ref=T_REF)
    v_inf = rng.uniform(-56.0, -49.0, N)
    net["i_e"] = (v_inf - E_L) * C_M / TAU_M
    net["v_init"] = rng.uniform(-70.0, -52.0, N)
    mask = (rng.random((N, N)) < 0.15) & ~np.eye(N, dtype=bool)
    pre, post = np.nonzero(mask)
    m = pre.size
    net["pre"], net["post"] = pre.astype(np.int64), post.astype(np.int64)
    net["port"] = rng.integers(0, len(TAU_SYN), m).astype(np.int64)
    sign = np.where(rng.random(m) < 0.7, 1.0, -1.0)
    net["weight"] = sign * rng.uniform(50.0, 250.0, m) / np.array(TAU_SYN)[net["port"]] * 2.0
    net["delay"] = rng.integers(1, 21, m) * DT
    times, ptr = [], [0]
    for _ in range(N_IN):
        k = rng.poisson(80.0 * (T_SIM - 5.0) / 1000.0)
        t = np.unique(rng.integers(1, int((T_SIM - 5.0) / DT), k)) * DT
        times.append(np.round(t, 10))
        ptr.append(ptr[-1] + t.size)
    net["in_times"], net["in_ptr"] = np.concatenate(times), np.array(ptr, np.int64)
    cmask = rng.random((N_IN, N)) < 0.3
    ch, tgt = np.nonzero(cmask)
    net["in_ch"], net["in_post"] = ch.astype(np.int64), tgt.astype(np.int64)
    net["in_port"] = rng.integers(0, len(TAU_SYN), ch.size).astype(np.int64)
    net["in_weight"] = (np.where(rng.random(ch.size) < 0.8, 1.0, -1.0) * rng.uniform(100.0, 400.0, ch.size)
                        / np.array(TAU_SYN)[net["in_port"]] * 2.0)  # (the same charge on every port)
    net["in_delay"] = rng.integers(1, 11, ch.size) * DT
    return net


def simulate(net):
    import nest

    nest.ResetKernel()
    nest.resolution = DT
    nest.local_num_threads = 1
    nrn = nest.Create("iaf_psc_exp_multisynapse", N, params=dict(
        tau_syn=list(TAU_SYN), tau_m=TAU_M, C_m=C_M, E_L=E_L, V_th=V_TH, V_reset=V_RESET, t_ref=T_REF))
    for i in range(N):
        nrn[i].set(I_e=float(net["i_e"][i]), V_m=float(net["v_init"][i]))
    for a, b, p, w, d in zip(net["pre"], net["post"], net["port"], net["weight"], net["delay"]):
        nest.Connect(nrn[int(a)], nrn[int(b)], syn_spec=dict(weight=float(w), delay=float(d),
                                                            receptor_type=int(p) + 1))
    gens = nest.Create("spike_generator", N_IN)
    for c in range(N_IN):
        gens[c].set(spike_times=net["in_times"][net["in_ptr"][c]: net["in_ptr"][c + 1]].tolist())
    for c, b, p, w, d in zip(net["in_ch"], net["in_post"], net["in_port"], net["in_weight"], net["in_delay"]):
        nest.Connect(gens[int(c)], nrn[int(b)], syn_spec=dict(weight=float(w), delay=float(d),
                                                             receptor_type=int(p) + 1))
    sr = nest.Create("spike_recorder")
    nest.Connect(nrn, sr)
    mm = nest.Create("multimeter", params=dict(record_from=["V_m"], interval=DT))
    nest.Connect(mm, nrn)
    nest.Simulate(T_SIM)
    ev = sr.get("events")
    mv = mm.get("events")
    senders = np.asarray(mv["senders"]) - nrn[0].global_id
    times = np.asarray(mv["times"])
    steps = np.unique(times)
    v = np.empty((steps.size, N))
    v[np.searchsorted(steps, times), senders] = mv["V_m"]
    return dict(spike_senders=np.asarray(ev["senders"]) - nrn[0].global_id, spike_times=np.asarray(ev["times"]),
                v_times=steps, v_m=v)


def main():
    net = draw()
    out = {**net, **simulate(net)}
    path = os.path.join(HERE, "multisynapse.npz")
    fd, tmp = tempfile.mkstemp(dir=HERE, suffix=".npz")
    os.close(fd)
    np.savez_compressed(tmp, **out)
    os.replace(tmp, path)
    print(f"{path}: {out['spike_times'].size} spikes, {out['spike_times'].size / N / T_SIM * 1e3:.1f} Hz mean")


if __name__ == "__main__":
    main()
