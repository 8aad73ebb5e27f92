"""Generate NEST "golden" reference data for eventsim's cross-simulator tests.

For each case in ``CASES`` this script

1. draws a small random spiking network with NumPy (fully seeded,
   ``numpy.random.default_rng(seed)``): heterogeneous per-neuron parameters,
   sparse recurrent connectivity (80 % excitatory / 20 % inhibitory senders by
   index, no autapses), heterogeneous grid-aligned delays, and ~20 input
   channels of grid-aligned spike times that project onto the neurons;
2. builds exactly that network in NEST (``nest.ResetKernel()``,
   ``nest.resolution = dt``, ``nest.local_num_threads = 1``) from the stored
   arrays, using ``spike_generator`` nodes for the input channels, a
   ``spike_recorder`` and a ``multimeter`` (``V_m`` every ``dt``);
3. runs ``nest.Simulate(t_sim)`` and saves the network description together
   with the recorded spikes and membrane potentials as
   ``<case>.npz`` next to this script (written to a temporary file first, then
   moved into place with ``os.replace``).

The key schema of the .npz files is documented in ``README.md`` in this
directory.  The reference files shipped with the repository were produced with
NEST 3.10.0 (``nest-simulator==3.10.0`` from PyPI) and NumPy 2.3.

Run from the repository root (needs ``nest-simulator`` and ``numpy``)::

    python tests/nest_reference/generate_nest_reference.py            # all cases
    python tests/nest_reference/generate_nest_reference.py delta_ref  # a subset

The script prints, per case, the number of spikes, the mean firing rate, the
number of neurons that never fire, and (for ``iaf_psc_delta``) how many input
spikes arrived while the target neuron was refractory (NEST discards those).
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

DT = 0.1  # ms
T_SIM = 200.0  # ms
N_GEN = 20  # number of input channels (spike generators)
P_CONN = 0.1  # recurrent connection probability per ordered pair
P_IN = 0.25  # probability that a given channel projects onto a given neuron
FRAC_EXC = 0.8  # first 80 % of neurons (by index) are excitatory senders
MAX_DELAY_STEPS = 30  # delays drawn uniformly from {1, ..., 30} * dt
GEN_RATE = (50.0, 100.0)  # Hz, per-channel rate drawn uniformly from this range
GEN_MARGIN = 5.0  # ms, no input spike at or after t_sim - GEN_MARGIN


@dataclass
class Case:
    name: str
    model: str  # "iaf_psc_delta", "iaf_psc_exp" or "iaf_psc_alpha"
    seed: int
    n: int = 60
    # Each per-neuron entry is either a scalar, a ("uniform", lo, hi) tuple or
    # a ("choice", values) tuple.
    tau_m: object = 10.0
    C_m: object = 250.0
    E_L: float = -65.0
    V_th: float = -50.0
    V_reset: float = -70.0
    t_ref: object = 2.0
    tau_syn_ex: object = None
    tau_syn_in: object = None
    # Stationary free membrane potential E_L + I_e * tau_m / C_m targeted by
    # the constant current; I_e is derived from it per neuron.
    V_inf: tuple = ("uniform", -54.0, -46.0)
    # Recurrent weights (mV for delta, pA for exp): magnitudes drawn uniformly.
    w_exc: tuple = (1.0, 3.0)
    w_inh: tuple = (3.0, 6.0)
    # Input weights: a fraction of the input synapses is inhibitory.
    w_in_exc: tuple = (0.5, 2.0)
    w_in_inh: tuple = (1.0, 3.0)
    frac_in_inh: float = 0.25
    # iaf_psc_exp only: if True, the w_* ranges are in mV and a weight J onto
    # neuron i is converted to the current amplitude J * C_m[i] / tau_syn[i]
    # (pA; tau_syn_ex or tau_syn_in by sign), i.e. to a synaptic current of
    # total charge J * C_m[i].  Keeps PSPs comparable across heterogeneous
    # C_m and tau_syn.
    w_in_mV: bool = False


CASES = [
    Case(
        name="delta_ref",
        model="iaf_psc_delta",
        seed=20240101,
        tau_m=("uniform", 10.0, 20.0),
        t_ref=2.0,
        V_inf=("uniform", -50.0, -46.0),
    ),
    Case(
        name="delta_noref",
        model="iaf_psc_delta",
        seed=20240202,
        tau_m=("uniform", 10.0, 20.0),
        t_ref=0.0,
        V_inf=("uniform", -50.0, -46.0),
    ),
    Case(
        name="exp_ref",
        model="iaf_psc_exp",
        seed=20240303,
        tau_m=10.0,
        tau_syn_ex=2.0,
        tau_syn_in=5.0,
        t_ref=2.0,
        V_inf=("uniform", -49.0, -43.0),
        w_exc=(100.0, 400.0),  # pA
        w_inh=(200.0, 800.0),
        w_in_exc=(100.0, 400.0),
        w_in_inh=(100.0, 400.0),
    ),
    Case(
        name="exp_equal_tau",
        model="iaf_psc_exp",
        seed=20240434,
        tau_m=10.0,
        tau_syn_ex=10.0,  # == tau_m: singular limit of the exact propagator
        tau_syn_in=5.0,
        t_ref=2.0,
        V_inf=("uniform", -51.0, -45.0),
        w_in_mV=True,  # exc 25..75 pA, inh -150..-300 pA (recurrent)
        w_exc=(1.0, 3.0),
        w_inh=(3.0, 6.0),
        w_in_exc=(0.5, 2.0),
        w_in_inh=(1.0, 3.0),
    ),
    Case(
        name="exp_hetero",
        model="iaf_psc_exp",
        seed=20240505,
        tau_m=("uniform", 5.0, 30.0),
        C_m=("uniform", 100.0, 300.0),
        tau_syn_ex=("uniform", 0.5, 5.0),
        tau_syn_in=("uniform", 1.0, 10.0),
        t_ref=("choice", (0.0, 0.5, 1.0, 2.0, 3.0)),
        V_inf=("uniform", -51.0, -45.0),
        w_in_mV=True,
        w_exc=(1.0, 3.0),
        w_inh=(3.0, 6.0),
        w_in_exc=(0.5, 2.0),
        w_in_inh=(1.0, 3.0),
    ),
    # iaf_psc_alpha: a weight is the peak of the alpha-shaped current (pA), reached tau_syn after the
    # spike; its charge is e * tau_syn * w, e times that of an exponential current of the same peak
    Case(
        name="alpha_ref",
        model="iaf_psc_alpha",
        seed=20240606,
        tau_m=10.0,
        tau_syn_ex=2.0,
        tau_syn_in=5.0,
        t_ref=2.0,
        V_inf=("uniform", -49.0, -43.0),
        w_exc=(40.0, 150.0),  # pA (peak)
        w_inh=(60.0, 250.0),
        w_in_exc=(40.0, 150.0),
        w_in_inh=(40.0, 150.0),
    ),
    Case(
        name="alpha_equal_tau",
        model="iaf_psc_alpha",
        seed=20240707,
        tau_m=10.0,
        tau_syn_ex=10.0,  # == tau_m: the singular limit of the exact propagator
        tau_syn_in=5.0,
        t_ref=2.0,
        V_inf=("uniform", -51.0, -45.0),
        w_exc=(10.0, 30.0),
        w_inh=(20.0, 60.0),
        w_in_exc=(10.0, 30.0),
        w_in_inh=(10.0, 40.0),
    ),
    Case(
        name="alpha_hetero",
        model="iaf_psc_alpha",
        seed=20240808,
        tau_m=("uniform", 5.0, 30.0),
        C_m=("uniform", 100.0, 300.0),
        tau_syn_ex=("uniform", 0.5, 5.0),
        tau_syn_in=("uniform", 1.0, 10.0),
        t_ref=("choice", (0.0, 0.5, 1.0, 2.0, 3.0)),
        V_inf=("uniform", -51.0, -45.0),
        w_exc=(30.0, 120.0),
        w_inh=(60.0, 200.0),
        w_in_exc=(30.0, 120.0),
        w_in_inh=(30.0, 120.0),
    ),
]


# ---------------------------------------------------------------------------
# Network generation (NumPy only)
# ---------------------------------------------------------------------------


def _grid(steps):
    """Convert integer step counts to ms values that are exact multiples of DT
    (rounded to the nearest double of the decimal value)."""
    return np.round(np.asarray(steps, dtype=np.int64) * DT, 10).astype(np.float64)


def _per_neuron(rng, spec, n):
    if spec is None:
        return np.full(n, np.nan)
    if isinstance(spec, tuple):
        if spec[0] == "uniform":
            return rng.uniform(spec[1], spec[2], size=n)
        if spec[0] == "choice":
            return rng.choice(np.asarray(spec[1], dtype=np.float64), size=n)
        raise ValueError(spec)
    return np.full(n, float(spec))


def _mV_to_pA(w, post, C_m, tau_syn_ex, tau_syn_in):
    tau = np.where(w >= 0, tau_syn_ex[post], tau_syn_in[post])
    return w * C_m[post] / tau


def generate_network(case: Case) -> dict:
    rng = np.random.default_rng(case.seed)
    n = case.n
    net = {
        "model": np.array(case.model),
        "dt": np.float64(DT),
        "t_sim": np.float64(T_SIM),
        "n": np.int64(n),
    }

    # --- per-neuron parameters
    tau_m = _per_neuron(rng, case.tau_m, n)
    C_m = _per_neuron(rng, case.C_m, n)
    t_ref = _per_neuron(rng, case.t_ref, n)
    if case.model in ("iaf_psc_exp", "iaf_psc_alpha"):
        tau_syn_ex = _per_neuron(rng, case.tau_syn_ex, n)
        tau_syn_in = _per_neuron(rng, case.tau_syn_in, n)
    else:
        tau_syn_ex = np.full(n, np.nan)
        tau_syn_in = np.full(n, np.nan)
    E_L = np.full(n, case.E_L)
    V_th = np.full(n, case.V_th)
    V_reset = np.full(n, case.V_reset)
    V_inf = _per_neuron(rng, case.V_inf, n)
    I_e = (V_inf - E_L) * C_m / tau_m
    V_init = rng.uniform(case.V_reset, case.V_th - 0.5, size=n)
    net.update(
        tau_m=tau_m, C_m=C_m, E_L=E_L, V_th=V_th, V_reset=V_reset, t_ref=t_ref,
        I_e=I_e, V_init=V_init, tau_syn_ex=tau_syn_ex, tau_syn_in=tau_syn_in,
    )

    # --- recurrent connectivity (row index = presynaptic neuron)
    mask = rng.random((n, n)) < P_CONN
    np.fill_diagonal(mask, False)
    pre, post = np.nonzero(mask)
    pre = pre.astype(np.int64)
    post = post.astype(np.int64)
    n_exc = int(round(FRAC_EXC * n))
    is_exc = pre < n_exc
    mag = np.where(
        is_exc,
        rng.uniform(*case.w_exc, size=pre.size),
        rng.uniform(*case.w_inh, size=pre.size),
    )
    weight = np.where(is_exc, mag, -mag)
    if case.w_in_mV:
        weight = _mV_to_pA(weight, post, C_m, tau_syn_ex, tau_syn_in)
    delay = _grid(rng.integers(1, MAX_DELAY_STEPS + 1, size=pre.size))
    net.update(conn_pre=pre, conn_post=post, conn_weight=weight, conn_delay=delay)

    # --- input channels: Bernoulli spikes on the grid, strictly inside
    # (0, t_sim - GEN_MARGIN)
    last_step = int(round((T_SIM - GEN_MARGIN) / DT)) - 1
    steps = np.arange(1, last_step + 1)
    rates = rng.uniform(*GEN_RATE, size=N_GEN)
    senders, times = [], []
    for ch in range(N_GEN):
        hit = rng.random(steps.size) < rates[ch] * DT * 1e-3
        senders.append(np.full(int(hit.sum()), ch, dtype=np.int64))
        times.append(_grid(steps[hit]))
    gen_sender = np.concatenate(senders)
    gen_time = np.concatenate(times)

    in_mask = rng.random((N_GEN, n)) < P_IN
    in_pre, in_post = np.nonzero(in_mask)
    in_pre = in_pre.astype(np.int64)
    in_post = in_post.astype(np.int64)
    inh = rng.random(in_pre.size) < case.frac_in_inh
    in_weight = np.where(
        inh,
        -rng.uniform(*case.w_in_inh, size=in_pre.size),
        rng.uniform(*case.w_in_exc, size=in_pre.size),
    )
    if case.w_in_mV:
        in_weight = _mV_to_pA(in_weight, in_post, C_m, tau_syn_ex, tau_syn_in)
    in_delay_steps = rng.integers(1, MAX_DELAY_STEPS + 1, size=in_pre.size)
    # Guarantee that the smallest delay in the network equals dt, so NEST's
    # min_delay is dt (this fixes which multimeter samples NEST reports).
    in_delay_steps[0] = 1
    in_delay = _grid(in_delay_steps)
    net.update(
        n_gen=np.int64(N_GEN), gen_sender=gen_sender, gen_time=gen_time,
        in_pre=in_pre, in_post=in_post, in_weight=in_weight, in_delay=in_delay,
    )
    return net


# ---------------------------------------------------------------------------
# NEST simulation
# ---------------------------------------------------------------------------


def _quiet_nest(nest):
    try:
        nest.verbosity = nest.VerbosityLevel.ERROR
    except AttributeError:  # older NEST 3.x
        nest.set_verbosity("M_ERROR")


def run_nest(net: dict) -> dict:
    import nest

    _quiet_nest(nest)
    model = str(net["model"])
    dt = float(net["dt"])
    t_sim = float(net["t_sim"])
    n = int(net["n"])

    nest.ResetKernel()
    nest.resolution = dt
    nest.local_num_threads = 1
    nest.rng_seed = 1  # NEST's own RNG is not used by anything here

    neurons = nest.Create(model, n)
    keys = ["tau_m", "C_m", "E_L", "V_th", "V_reset", "t_ref", "I_e"]
    if model in ("iaf_psc_exp", "iaf_psc_alpha"):
        keys += ["tau_syn_ex", "tau_syn_in"]
    # Set all parameters (including V_m) of a neuron in a single call:
    # NEST stores V_th, V_reset and V_m relative to E_L internally.
    params = []
    for i in range(n):
        d = {k: float(net[k][i]) for k in keys}
        d["V_m"] = float(net["V_init"][i])
        params.append(d)
    neurons.set(params)
    for k in keys:
        got = np.asarray(neurons.get(k), dtype=np.float64)
        assert np.allclose(got, net[k], rtol=0, atol=1e-12), k
    got = np.asarray(neurons.get("V_m"), dtype=np.float64)
    assert np.allclose(got, net["V_init"], rtol=0, atol=1e-12), "V_m"
    if model == "iaf_psc_delta":
        assert not any(neurons.get("refractory_input"))

    n_gen = int(net["n_gen"])
    gens = nest.Create("spike_generator", n_gen)
    for ch in range(n_gen):
        gens[ch].spike_times = net["gen_time"][net["gen_sender"] == ch].tolist()

    nid = np.asarray(neurons.tolist(), dtype=np.int64)
    gid = np.asarray(gens.tolist(), dtype=np.int64)
    # Array-based one-to-one connections (explicit source/target node ids).
    nest.Connect(
        nid[net["conn_pre"]], nid[net["conn_post"]], "one_to_one",
        syn_spec={"synapse_model": "static_synapse",
                  "weight": net["conn_weight"], "delay": net["conn_delay"]},
    )
    nest.Connect(
        gid[net["in_pre"]], nid[net["in_post"]], "one_to_one",
        syn_spec={"synapse_model": "static_synapse",
                  "weight": net["in_weight"], "delay": net["in_delay"]},
    )
    assert nest.num_connections == net["conn_pre"].size + net["in_pre"].size

    srec = nest.Create("spike_recorder")
    nest.Connect(neurons, srec)
    mm = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": dt})
    nest.Connect(mm, neurons)

    nest.Simulate(t_sim)
    assert abs(nest.min_delay - dt) < 1e-12, nest.min_delay

    ev = srec.get("events")
    senders = np.asarray(ev["senders"], dtype=np.int64) - nid[0]
    times = np.asarray(ev["times"], dtype=np.float64)
    order = np.lexsort((senders, times))
    spike_senders, spike_times = senders[order], times[order]
    assert np.all((spike_senders >= 0) & (spike_senders < n))

    ev = mm.get("events")
    m_senders = np.asarray(ev["senders"], dtype=np.int64) - nid[0]
    m_times = np.asarray(ev["times"], dtype=np.float64)
    m_vm = np.asarray(ev["V_m"], dtype=np.float64)
    vm_times = np.unique(m_times)
    row = np.searchsorted(vm_times, m_times)
    vm = np.full((vm_times.size, n), np.nan)
    vm[row, m_senders] = m_vm
    assert m_times.size == vm.size and not np.isnan(vm).any()
    steps = np.round(vm_times / dt)
    assert np.allclose(vm_times, steps * dt, rtol=0, atol=1e-9)
    assert np.all(np.diff(steps) == 1)

    return {
        "spike_senders": spike_senders,
        "spike_times": spike_times,
        "vm_times": vm_times,
        "vm": vm,
        "nest_version": np.array(str(nest.__version__)),
    }


# ---------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------


def refractory_arrivals(net: dict, res: dict) -> tuple[int, int]:
    """Count input events (recurrent + external) whose delivery step falls in a
    refractory period of the target neuron, i.e. arrival time t_a with
    t_s < t_a <= t_s + t_ref for some spike time t_s of the target neuron
    (NEST's iaf_psc_delta discards these).  Returns (refractory, total)."""
    dt = float(net["dt"])
    n_steps = int(round(float(net["t_sim"]) / dt))
    n = int(net["n"])
    sp_step = np.round(res["spike_times"] / dt).astype(np.int64)
    sp_send = res["spike_senders"]
    ref_steps = np.round(net["t_ref"] / dt).astype(np.int64)

    # arrival (target, step) of every event
    tgt, arr = [], []
    for j in range(n):  # recurrent
        s = sp_step[sp_send == j]
        sel = net["conn_pre"] == j
        d = np.round(net["conn_delay"][sel] / dt).astype(np.int64)
        tgt.append(np.repeat(net["conn_post"][sel], s.size))
        arr.append((d[:, None] + s[None, :]).ravel())
    g_step = np.round(net["gen_time"] / dt).astype(np.int64)
    for ch in range(int(net["n_gen"])):  # external
        s = g_step[net["gen_sender"] == ch]
        sel = net["in_pre"] == ch
        d = np.round(net["in_delay"][sel] / dt).astype(np.int64)
        tgt.append(np.repeat(net["in_post"][sel], s.size))
        arr.append((d[:, None] + s[None, :]).ravel())
    tgt = np.concatenate(tgt)
    arr = np.concatenate(arr)
    keep = arr <= n_steps
    tgt, arr = tgt[keep], arr[keep]

    refractory = np.zeros((n, n_steps + 1), dtype=bool)
    for s, j in zip(sp_step, sp_send):
        refractory[j, s + 1 : s + ref_steps[j] + 1] = True
    return int(refractory[tgt, arr].sum()), int(tgt.size)


def save_npz(path: str, arrays: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates files with mode 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def main(argv: list[str]) -> int:
    wanted = set(argv) if argv else None
    for case in CASES:
        if wanted is not None and case.name not in wanted:
            continue
        net = generate_network(case)
        res = run_nest(net)
        data = {**net, **res}
        n = int(net["n"])
        t_sim = float(net["t_sim"])
        n_spk = res["spike_times"].size
        rate = n_spk / (n * t_sim * 1e-3)
        counts = np.bincount(res["spike_senders"], minlength=n)
        msg = (f"{case.name:14s} {case.model:14s} spikes={n_spk:5d} "
               f"mean rate={rate:6.1f} Hz  (per-neuron min/max "
               f"{counts.min() / t_sim * 1e3:.0f}/{counts.max() / t_sim * 1e3:.0f} Hz, "
               f"silent={int((counts == 0).sum())})  "
               f"recurrent syn={net['conn_pre'].size} input spikes="
               f"{net['gen_time'].size} input syn={net['in_pre'].size}")
        if case.model == "iaf_psc_delta":
            nref, ntot = refractory_arrivals(net, res)
            msg += f"  arrivals at refractory neurons={nref}/{ntot}"
        print(msg, flush=True)
        save_npz(os.path.join(HERE, case.name + ".npz"), data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
