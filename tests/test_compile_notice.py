"""Compilation the user can see and avoid: the notice on the first compilation, warmup, the command line."""

import logging
import os
import subprocess
import sys

import numba
import pytest

import eventsim
from eventsim import _compile

NOTICE = "eventsim: compiling the clock engine"

# a network like the README's tour (delta synapses, one delay, one-to-one Poisson input), run twice,
# then a second network of the same kind
SCRIPT = r"""
import eventsim as es
from eventsim._compile import compiles

def build():
    net = es.Network(dt=0.1, seed=1)
    exc = net.population(80, es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0))
    inh = net.population(20, es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0))
    net.connect(exc, exc | inh, rule=es.FixedInDegree(8), weight=0.1, delay=1.5)
    net.connect(inh, exc | inh, rule=es.FixedInDegree(2), weight=-0.5, delay=1.5)
    noise = net.poisson(100, rate=20000.0)
    net.connect(noise, exc | inh, rule=es.OneToOne(), weight=0.1, delay=0.1)
    net.record_spikes(exc)
    return net

with compiles() as done:
    net = build()
    net.run(5.0)
    net.run(5.0)
    build().run(5.0)
print("compiled:", sum(1 for c in done if not c.nested))
"""


def _run(args, cache_dir, **kw):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=900, **kw)


def test_first_compilation_is_announced_once_and_not_when_cached(tmp_path):
    """An empty cache: one notice on stderr for the whole process (two networks, three runs); a second
    process with the now warm cache compiles nothing and says nothing."""
    cold = _run(["-c", SCRIPT], tmp_path)
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.count(NOTICE) == 1, cold.stderr
    assert "cached on disk" in cold.stderr and "python -m eventsim warmup" in cold.stderr
    assert int(cold.stdout.split("compiled:")[1]) > 0
    warm = _run(["-c", SCRIPT], tmp_path)
    assert warm.returncode == 0, warm.stderr
    assert "eventsim: compiling" not in warm.stderr, warm.stderr
    assert int(warm.stdout.split("compiled:")[1]) == 0


def test_warmup_command_compiles_ahead_of_time(tmp_path):
    """``python -m eventsim warmup`` in one process fills an empty cache; a first run in another process
    then compiles nothing and prints no notice."""
    w = _run(["-m", "eventsim", "warmup", "--engine", "clock", "--synapse", "delta"], tmp_path)
    assert w.returncode == 0, w.stderr
    assert w.stderr.count(NOTICE) == 1, w.stderr
    assert "clock engine, delta synapses, float64" in w.stderr
    assert "kernels compiled" in w.stdout
    run = _run(["-c", SCRIPT], tmp_path)
    assert run.returncode == 0, run.stderr
    assert "eventsim: compiling" not in run.stderr, run.stderr
    assert int(run.stdout.split("compiled:")[1]) == 0
    again = _run(["-m", "eventsim", "warmup", "--engine", "clock", "--synapse", "delta"], tmp_path)
    assert again.returncode == 0 and "eventsim: compiling" not in again.stderr, again.stderr
    assert "0 kernels compiled" in again.stdout


def test_command_line_refuses_unknown_choices():
    out = subprocess.run([sys.executable, "-m", "eventsim", "warmup", "--engine", "gpu"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2 and "invalid choice: 'gpu'" in out.stderr
    out = subprocess.run([sys.executable, "-m", "eventsim"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "warmup" in out.stderr


@pytest.mark.parametrize("kw, name", [(dict(engine="gpu"), "engine"), (dict(engine=()), "engine"),
                                      (dict(synapse="beta"), "synapse"), (dict(dtype="float16"), "dtype"),
                                      (dict(progress=1), "progress")])
def test_warmup_refuses_unknown_choices(kw, name):
    with pytest.raises(ValueError, match=f"^{name}="):
        eventsim.warmup(**kw)


def test_listener_announces_each_part_once_and_records_compilations(monkeypatch, caplog):
    """In-process: the first compilation of a kernel of each part is announced once; later compilations
    (other signatures, other kernels of the same part) only go to the INFO log and to ``compiles()``;
    functions outside eventsim are ignored."""
    monkeypatch.setattr(_compile._listener, "announced", set())

    def clock_kernel(x):
        return x + 1

    def torch_kernel(x):
        return x * 2

    def foreign(x):
        return x - 1

    clock_kernel.__module__ = "eventsim.engines.clock_cpu"
    torch_kernel.__module__ = "eventsim.torch._cpu"
    a, b, c = numba.njit(clock_kernel), numba.njit(torch_kernel), numba.njit(foreign)
    caplog.set_level(logging.INFO, logger="eventsim.compile")
    with _compile.compiles() as done:
        a(1)
        a(1.5)
        b(1)
        c(1)
        a(2)  # compiled already: nothing
    notices = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert notices == [_compile.notice_text("the clock engine"), _compile.notice_text("the torch layers")]
    assert [(x.name.rsplit(".", 1)[1], x.part) for x in done] == [
        ("clock_kernel", "the clock engine"), ("clock_kernel", "the clock engine"),
        ("torch_kernel", "the torch layers")]
    assert all(x.seconds > 0 and not x.nested for x in done)
    assert "float64" in done[1].signature
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 3 and all("clock_kernel" in m or "torch_kernel" in m for m in infos)


@pytest.mark.parametrize("module, part", [
    ("eventsim.engines.clock_cpu", "the clock engine"), ("eventsim.engines.csr", "the clock engine"),
    ("eventsim.engines.event_cpu", "the event engine"), ("eventsim.engines.event_plan", "the event engine"),
    ("eventsim.engines.clock_cuda", "the clock engine's CUDA kernels"), ("eventsim.torch._cpu", "the torch layers"),
    ("eventsim.rng", ""), ("eventsim.models.dynamics", "")])
def test_parts_named_in_the_users_words(module, part):
    assert _compile.part_of(module) == part


def test_importing_eventsim_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, eventsim; eventsim.warmup; print('torch' in sys.modules)"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
