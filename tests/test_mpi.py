"""The clock engine over MPI ranks: the same results as one process, bit for bit; failures on one rank.

The tests under MPI start ``mpiexec -n 2`` and ``-n 3`` on tests/mpi_case.py (oversubscribed on a
two-core machine: each rank pays Numba's start-up, so there are only three such runs).  The others
check, without MPI, what makes the results rank-independent: connections drawn target block by
target block, and each rank keeping exactly its own targets' connections.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

import eventsim as es
from eventsim.connectivity import TARGET_BLOCK, block_values, draw
from eventsim.mpi import Ranks
from eventsim.record import read_spikes, read_state, read_weights
from eventsim.rng import generator

ROOT = Path(__file__).resolve().parent.parent
CASE = Path(__file__).resolve().parent / "mpi_case.py"


def _mpiexec():
    """mpiexec of the MPI installed with mpi4py (the `mpich` wheel puts it beside the interpreter)."""
    path = os.pathsep.join([sysconfig.get_path("scripts"), str(Path(sys.executable).parent),
                            os.environ.get("PATH", "")])
    return shutil.which("mpiexec", path=path)


def _run(n, *args, timeout=600, **env):
    pytest.importorskip("mpi4py", reason="the 'mpi' extra is not installed")
    exe = _mpiexec()
    assert exe is not None, "mpiexec not found (pip install 'eventsim[mpi]' installs MPICH with it)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **env)
    return subprocess.run([exe, "-n", str(n), sys.executable, str(CASE), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def single():
    sys.path.insert(0, str(CASE.parent))
    try:
        import mpi_case
    finally:
        sys.path.pop(0)
    net, recs = mpi_case.build(comm=None)
    w0 = np.asarray(next(p for p in net.projections if p.synapse is not None).weight, np.float64)
    return dict(mpi_case.run(net, recs), stdp_w0=w0)


@pytest.mark.parametrize("n, threads", [(2, 1), (3, 2)])
def test_ranks_give_the_single_process_results_bit_for_bit(n, threads, single, tmp_path):
    """A shortest delay of one step: ranks of one thread exchange after every step in the compiled loop
    (``MPI_Allgather`` from compiled code; from Python: the next test), ranks of two threads through the
    per-step path."""
    out = tmp_path / "out.npz"
    stream = tmp_path / "exc.h5"
    # (with 2 threads per rank the team tuner is on, as outside the tests: the ranks must still agree)
    res = _run(n, str(out), str(stream), str(tmp_path / "ckpt.bin"), NUMBA_NUM_THREADS=str(threads),
               EVENTSIM_TEAM_TUNING="1" if threads > 1 else "0")
    assert res.returncode == 0, res.stderr[-3000:]
    got = np.load(out)
    assert int(got["n_ranks"]) == n
    assert single["steps"].size > 1000 and single["v"].shape == (1000, 23)  # (the network is active)
    w = single["stdp_w"]  # the plastic weights moved
    assert w.size == 131 * 12 and not np.array_equal(np.sort(w), np.sort(single["stdp_w0"]))
    rel = single["ids"] >= 840  # the relay parrots: spikes of several in one step, recorded that many times
    _, k = np.unique(np.c_[single["ids"][rel], single["steps"][rel]], axis=0, return_counts=True)
    assert k.max() >= 3 and not np.array_equal(single["relay_w"], np.full(40, 0.2))
    # the plastic synapses made between runs learned
    assert single["late_w"].size == 190 * 3 and not np.array_equal(np.sort(single["late_w"]), single["late_w0"])
    for key, want in single.items():
        if key not in ("n_ranks", "stdp_w0"):
            assert got[key].dtype == want.dtype and np.array_equal(got[key], want), key
    # the excitatory spikes streamed to one file per rank, read back as one recording
    assert sorted(p.name for p in tmp_path.glob("exc.*.h5")) == [f"exc.rank{r}-of-{n}.h5" for r in range(n)]
    assert not stream.exists()
    data = read_spikes(stream)
    exc = single["ids"] < 700
    assert np.array_equal(data.steps, single["steps"][exc]) and np.array_equal(data.neuron_ids, single["ids"][exc])
    assert data.t_stop == pytest.approx(100.0) and data.group_ids.size == 700
    state = read_state(tmp_path / "v.h5")  # samples of v, one file per rank, read as one
    assert np.array_equal(state.values, single["v"]) and np.array_equal(state.steps, single["v_steps"])
    assert sorted(p.name for p in tmp_path.glob("v.*.h5")) == [f"v.rank{r}-of-{n}.h5" for r in range(n)]
    # the weights of chosen plastic connections (positions in the whole projection), one file per rank
    assert single["w_stdp"].shape == (20, 46) and single["w_arrays"].shape == (5, 6)
    wf = read_weights(tmp_path / "w.h5")
    assert np.array_equal(wf.values, single["w_stdp"]) and np.array_equal(wf.steps, single["w_stdp_steps"])
    assert np.array_equal(wf.post_ids, single["w_stdp_post"]) and wf.connection_index[0] == 1571
    assert sorted(p.name for p in tmp_path.glob("w.*.h5")) == [f"w.rank{r}-of-{n}.h5" for r in range(n)]
    # files of recorders whose columns all live on rank 0 (the others' files have no column)
    w0 = read_weights(tmp_path / "w0.h5")
    assert np.array_equal(w0.values, single["w_stdp"][:, [1, 44]]) and np.array_equal(w0.connection_index, [0, 5])
    assert np.array_equal(read_state(tmp_path / "v0.h5").values, single["v"][:, :2])
    assert read_weights(tmp_path / f"w0.rank1-of-{n}.h5").values.shape == (w0.steps.size, 0)
    assert read_state(tmp_path / f"v0.rank1-of-{n}.h5").values.shape == (1000, 0)
    # the checkpoint saved in the middle: one file per rank
    assert sorted(p.name for p in tmp_path.glob("ckpt.*")) == [f"ckpt.rank{r}-of-{n}.bin" for r in range(n)]


@pytest.mark.parametrize("native, shortest, interval, step", [("1", "0.5", 4, 7), ("0", "0.5", 4, 7),
                                                               ("0", "0.1", 0, 3)])
def test_ranks_of_one_thread_with_intervals_of_several_steps_give_the_single_process_results(native, shortest,
                                                                                             interval, step, tmp_path):
    """Delays of at least 0.5 ms (intervals of 4 steps between exchanges: the compiled interval loop of a
    rank of one thread, ``MPI_Allgather`` called from compiled code or, ``EVENTSIM_MPI_NATIVE=0``, from
    Python) or 0.1 ms (one step: an exchange after every step, in the compiled loop, here with mpi4py's
    ``Allgather``), with a volley that outgrows the exchange's first buffer (256 spikers per rank), a split
    run, a checkpoint and plastic synapses: 2 ranks == one process, bit for bit."""
    sys.path.insert(0, str(CASE.parent))
    try:
        import mpi_case
    finally:
        sys.path.pop(0)
    net, recs = mpi_case.build(comm=None, shortest=float(shortest))
    stdp = next(p for p in net.projections if p.synapse is not None)
    w0 = np.asarray(stdp.weight, np.float64)
    single = mpi_case.run(net, recs)
    assert int(net._plan.work.interval[0]) == interval
    volley = single["ids"][single["steps"] == step]  # the volley at 0.2 ms (+ shortest): each rank's 350 exc.
    assert (volley < 350).sum() > 256 and ((volley >= 350) & (volley < 700)).sum() > 256
    assert single["steps"].size > 2000 and not np.array_equal(np.sort(single["stdp_w"]), np.sort(w0))
    out = tmp_path / "out.npz"
    res = _run(2, str(out), str(tmp_path / "exc.h5"), str(tmp_path / "ckpt.bin"), NUMBA_NUM_THREADS="1",
               EVENTSIM_TEAM_TUNING="0", MPI_CASE_SHORTEST=shortest, EVENTSIM_MPI_NATIVE=native)
    assert res.returncode == 0, res.stderr[-3000:]
    got = np.load(out)
    assert int(got["n_ranks"]) == 2
    for key, want in single.items():
        if key != "n_ranks":
            assert got[key].dtype == want.dtype and np.array_equal(got[key], want), key


@pytest.mark.skipif(__import__("importlib").util.find_spec("numba_cuda") is None,
                    reason="numba-cuda is not installed")
def test_cuda_backend_one_device_per_rank_gives_the_cpu_results(tmp_path):
    """backend='cuda' under ``mpiexec -n 2`` (the CUDA simulator: one device per rank) == one CPU process,
    plastic synapses (onto both ranks' neurons, onto receptor ports, made between runs) included."""
    sys.path.insert(0, str(CASE.parent))
    try:
        import mpi_cuda_case
    finally:
        sys.path.pop(0)
    want = mpi_cuda_case.run(*mpi_cuda_case.build(comm=None, backend="cpu"))
    out = tmp_path / "cuda.npz"
    pytest.importorskip("mpi4py", reason="the 'mpi' extra is not installed")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               NUMBA_ENABLE_CUDASIM="1")
    res = subprocess.run([_mpiexec(), "-n", "2", sys.executable, str(CASE.parent / "mpi_cuda_case.py"), str(out)],
                         env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    got = np.load(out)
    assert int(got["n_ranks"]) == 2 and want["steps"].size > 300
    assert {"w0", "w1", "w2"} <= set(want)  # the plastic weights (those made between runs too) compared below
    for key, value in want.items():
        if key != "n_ranks":
            assert np.array_equal(got[key], value), key


def test_a_failure_on_one_rank_stops_every_rank(tmp_path):
    res = _run(2, "--failures", str(tmp_path), timeout=300)
    err = res.stderr
    out = "".join((tmp_path / f"rank{r}.txt").read_text() for r in (0, 1))
    # different builds: a ValueError on every rank, at the run
    for r in (0, 1):
        assert f"rank {r} digest: the MPI ranks built different networks" in out, out
    # the NaN guard on rank 1: FloatingPointError on both, both left at their last finite state
    assert "rank 1 nan: non-finite state in population" in out and "t=1.0" in out, out
    assert "rank 0 nan: on MPI rank 1: FloatingPointError: non-finite state" in out, out
    # a streaming file removed on rank 1: both raise and stay at the last committed chunk
    assert "rank 1 stream: RecordingError:" in out and "was removed during the run" in out, out
    assert "rank 0 stream: RankError: on MPI rank 1: RecordingError:" in out and out.count("t=50.0") >= 2, out
    # an uncaught error on rank 1 only: both stop, non-zero exit, the message shown
    assert res.returncode != 0 and "not stopped" not in res.stdout
    assert "ValueError: n=-5 must be an integer >= 1" in err and "stopping every rank" in err, err[-3000:]


# ------------------------------------------------------------------ without MPI


class _FakeComm:
    """Stands for rank ``rank`` of ``size`` while a network is built (no collective is called then)."""

    def __init__(self, rank, size):
        self.rank, self.size = rank, size

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def Allgatherv(self, *args):
        raise AssertionError("no collective while building")


def _build(comm, rule, weight, delay):
    net = es.Network(dt=0.1, seed=5, comm=comm)
    a = net.population(600, es.LIF())
    b = net.population(301, es.LIF(tau_syn_ex=1.0, tau_syn_in=1.0))
    src = net.poisson(701, rate=10.0)
    pre = src if isinstance(rule, es.OneToOne) else a[::2] | b
    proj = net.connect(pre, b | a[100:500], rule=rule, weight=weight, delay=delay)
    return net, proj


RULES = [(es.FixedInDegree(25), es.Normal(1.0, 0.3), es.Uniform(0.1, 2.0)),
         (es.FixedInDegree(60, allow_multapses=False), 0.5, 1.0),
         (es.FixedProbability(0.07), es.Uniform(-1.0, 1.0), 0.3),
         (es.AllToAll(allow_autapses=False), np.arange(701 * 601 - 501, dtype=float) * 1e-6, 0.2),
         (es.OneToOne(), es.Uniform(0.0, 1.0), np.arange(701) % 9 * 0.1 + 0.1),
         (es.FromArrays(pre=np.arange(2000) % 601, post=(np.arange(2000) * 7) % 701), np.linspace(0, 1, 2000),
          es.Uniform(0.2, 0.9))]


@pytest.mark.parametrize("rule, weight, delay", RULES, ids=lambda x: type(x).__name__)
def test_each_rank_keeps_exactly_its_targets_connections(rule, weight, delay):
    net, whole = _build(None, rule, weight, delay)
    post_ids = whole.target.ids[whole.post]
    kept = []
    for r in range(3):
        net_r, part = _build(_FakeComm(r, 3), rule, weight, delay)
        assert net_r.rank == r and net_r.n_ranks == 3
        owner = net_r._dist.owner([(p.offset, p.n) for p in net_r.populations], part.target.ids[part.post])
        assert np.all(owner == r) and 0 < len(part) < len(whole)
        kept.append(part)
    # each part is its targets' connections in the rule's order: together, the whole projection
    owner = Ranks(_FakeComm(0, 3)).owner([(p.offset, p.n) for p in net.populations], post_ids)
    idx = np.concatenate([np.flatnonzero(owner == r) for r in range(3)])
    for name in ("pre", "post", "weight", "delay_steps"):
        got = np.concatenate([getattr(p, name) for p in kept])
        assert np.array_equal(got, getattr(whole, name)[idx]), name
    # a rank's connections' places in the whole projection (what record_weights' index means there);
    # the one collective, the sum over the ranks of the connections per target, taken from the whole
    per_target = np.bincount(np.asarray(whole.post, np.int64), minlength=len(whole.target))
    places = []
    for part in kept:
        net_r = part.source.net
        net_r._dist.allsum = lambda x: per_target if np.array_equal(x.shape, per_target.shape) else None
        pos, n_all = net_r._global_positions(part)
        assert n_all == len(whole) and np.all(np.diff(pos) > 0)
        assert np.array_equal(whole.pre[pos], part.pre) and np.array_equal(whole.post[pos], part.post)
        places.append(pos)
    assert np.array_equal(np.sort(np.concatenate(places)), np.arange(len(whole)))


def test_ownership_is_contiguous_and_balanced():
    ranks = Ranks(_FakeComm(0, 4))
    pops = [(0, 10), (10, 3), (13, 1001)]
    owner = ranks.owner(pops, np.arange(1014))
    for off, n in pops:
        o = owner[off:off + n]
        assert np.all(np.diff(o) >= 0) and np.array_equal(np.unique(o), np.arange(min(n, 4)) if n >= 4 else
                                                         np.unique(o))
        sizes = np.bincount(o, minlength=4)
        assert sizes.max() - sizes.min() <= 1 and sizes.sum() == n
        for r in range(4):
            a, b = ranks.owned_range(n, r)
            assert np.array_equal(np.flatnonzero(o == r), np.arange(a, b))


def test_one_block_of_targets_draws_as_one_stream():
    """Groups of at most TARGET_BLOCK targets get the connections they got before the block streams."""
    pre_ids, post_ids = np.arange(500), np.arange(100, 100 + TARGET_BLOCK)
    for rule in (es.FixedInDegree(30), es.FixedInDegree(300, allow_multapses=False), es.FixedProbability(0.2)):
        d = draw(rule, pre_ids, post_ids, lambda b: generator(7, 2, 4, block=b))
        pre, post = rule.connections(pre_ids, post_ids, generator(7, 2, 4))
        assert np.array_equal(d.pre, pre) and np.array_equal(d.post, post)
        assert np.array_equal(block_values(es.Normal(0.0, 1.0), d, lambda b: generator(7, 3, 4, block=b)),
                              generator(7, 3, 4).normal(0.0, 1.0, pre.size))
    # a second block draws from another part of the stream
    d = draw(es.FixedInDegree(5), pre_ids, 1000 + np.arange(2 * TARGET_BLOCK), lambda b: generator(7, 2, 4, block=b))
    first, second = d.pre[: 5 * TARGET_BLOCK], d.pre[5 * TARGET_BLOCK:]
    assert np.array_equal(first, generator(7, 2, 4).integers(0, 500, 5 * TARGET_BLOCK))
    assert np.array_equal(second, generator(7, 2, 4, block=1).integers(0, 500, 5 * TARGET_BLOCK))
    assert not np.array_equal(first, second)


def test_generator_blocks():
    assert not np.array_equal(generator(1, 2, 3, block=1).random(4), generator(1, 2, 3).random(4))
    assert np.array_equal(generator(1, 2, 3, block=0).random(4), generator(1, 2, 3).random(4))
    for bad in (-1, 2**64, 1.5, True):
        with pytest.raises(ValueError, match="block"):
            generator(1, 2, 3, block=bad)


def test_comm_argument():
    net = es.Network()
    assert net.comm is None and net.rank == 0 and net.n_ranks == 1
    assert es.Network(comm=None).comm is None
    with pytest.raises(ValueError, match="comm='world'"):
        es.Network(comm="world")
    with pytest.raises(TypeError, match="mpi4py communicator"):
        es.Network(comm=object())
    with pytest.raises(NotImplementedError, match="engine='event'"):
        es.Network(engine="event", comm=_FakeComm(0, 2))
