"""Compilation the user can see and avoid: a notice on the first compilation, and ahead-of-time warm-up.

eventsim's engines are Numba kernels, compiled on first use for the kind of
network at hand (neuron family, synapse type, weight and state dtypes) and
cached on disk, so only a cold cache pays the compilation (seconds to about
a minute per engine); later processes load the machine code in about a
second.

* A listener on Numba's compile events (:mod:`numba.core.event`) reports,
  once per process and per part of eventsim (clock engine, event engine,
  torch layers), the first time one of its kernels is actually compiled;
  loading from the cache triggers nothing.  The notice goes to the logger
  ``"eventsim.compile"`` at level WARNING (so it reaches stderr when logging
  is not configured); silence it with
  ``logging.getLogger("eventsim.compile").setLevel(logging.ERROR)``.  Each
  compiled kernel is also logged at level INFO with its compile time.
  Importing this module installs the listener (once per process); the
  engines and :mod:`eventsim.torch` import it.
* :func:`warmup` (and ``python -m eventsim warmup``) compiles the common
  kernels ahead of time by running tiny networks, so that a first real run
  loads them from the cache.
* :func:`compiles` records the kernels compiled inside a ``with`` block (for
  tests and benchmarks that count compilations).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import NamedTuple

from numba.core import event as _event

#: The logger of the notices.
logger = logging.getLogger("eventsim.compile")

#: What a kernel of each eventsim module belongs to, in the user's words (by module prefix, first match).
PARTS = (
    ("eventsim.engines.clock_cuda", "the clock engine's CUDA kernels"),
    ("eventsim.engines.event", "the event engine"),
    ("eventsim.engines", "the clock engine"),
    ("eventsim.torch", "the torch layers"),
)


class Compiled(NamedTuple):
    """One compiled eventsim kernel (see :func:`compiles`)."""

    name: str         #: module-qualified name of the Python function
    part: str         #: what it belongs to (see ``PARTS``); "" if none
    signature: str    #: the argument types it was compiled for
    seconds: float    #: wall time of the compilation (s), nested compilations included
    nested: bool      #: compiled while compiling another eventsim kernel


def part_of(module):
    """What a kernel of ``module`` belongs to (``PARTS``), or ``""``."""
    for prefix, part in PARTS:
        if module == prefix or module.startswith(prefix):
            return part
    return ""


def notice_text(part):
    """The notice for the first compilation of ``part`` in this process."""
    return (f"eventsim: compiling {part} (Numba; once for each kind of network or layer, typically 10-60 s). "
            "The compiled code is cached on disk and loads in about a second next time; "
            "`python -m eventsim warmup` compiles the common kernels ahead of time.")


class _Listener(_event.Listener):
    """Handles Numba's ``numba:compile`` events (sent only when a function is compiled, not loaded)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.announced = set()
        self.local = threading.local()
        self.recorders = []

    def _stack(self):
        st = getattr(self.local, "stack", None)
        if st is None:
            st = self.local.stack = []
        return st

    def on_start(self, ev):
        disp = ev.data.get("dispatcher") if isinstance(ev.data, dict) else None
        func = getattr(disp, "py_func", None)
        module = getattr(func, "__module__", "") or ""
        stack = self._stack()
        if not module.startswith("eventsim"):
            stack.append(None)
            return
        outer = next((f for f in reversed(stack) if f is not None), None)
        part = part_of(module) or (outer[1] if outer else "")
        stack.append((f"{module}.{func.__qualname__}", part, time.perf_counter(), outer is not None,
                      str(ev.data.get("args", ""))))
        if part and outer is None:
            with self.lock:
                first = part not in self.announced
                self.announced.add(part)
            if first:
                logger.warning(notice_text(part))

    def on_end(self, ev):
        stack = self._stack()
        if not stack:
            return
        frame = stack.pop()
        if frame is None:
            return
        name, part, t0, nested, sig = frame
        rec = Compiled(name, part, sig, time.perf_counter() - t0, nested)
        if not nested:
            logger.info("eventsim: compiled %s in %.1f s", name, rec.seconds)
        with self.lock:
            for r in self.recorders:
                r.append(rec)


_listener = None
_install_lock = threading.Lock()


def install():
    """Install the compile listener (idempotent; importing this module does it)."""
    global _listener
    with _install_lock:
        if _listener is None:
            _listener = _Listener()
            _event.register("numba:compile", _listener)
    return _listener


@contextlib.contextmanager
def compiles():
    """Record the eventsim kernels compiled (not loaded from the cache) inside the block.

    Yields a list that fills with :class:`Compiled` entries, in the order the
    compilations end (nested ones before the kernel that needs them).
    """
    listener = install()
    out = []
    with listener.lock:
        listener.recorders.append(out)
    try:
        yield out
    finally:
        with listener.lock:
            listener.recorders.remove(out)


# ------------------------------------------------------------------ ahead of time
ENGINES = ("clock", "event")
SYNAPSES = ("delta", "exp", "alpha")
#: What ``warmup`` compiles when not told (alpha synapses only on request: one more compilation).
DEFAULT_SYNAPSES = ("delta", "exp")
DTYPES = ("float64", "float32")


def _as_choice(name, value, allowed):
    vals = (value,) if isinstance(value, str) else tuple(value)
    bad = [v for v in vals if v not in allowed]
    if bad or not vals:
        raise ValueError(f"{name}={value!r} must be one of {allowed!r} or a sequence of them")
    return vals


def _clock_networks(synapse, dtype):
    """Tiny clock-engine networks that need the kernels of the common networks of ``synapse`` and ``dtype``.

    One sender delay (the uint16 column form of the synapses, as the
    examples) and several delays (ring offsets); Poisson input both one to
    one and with several synapses per channel; spike sources, DC input,
    spike and state recorders.
    """
    from . import LIF, FixedInDegree, Network, OneToOne

    syn = dict(tau_syn_ex=2.0, tau_syn_in=5.0, psc=synapse) if synapse != "delta" else {}
    w = 20.0 if synapse != "delta" else 0.5
    for delays in ((1.5,), (1.0, 2.0)):
        net = Network(dt=0.1, seed=1, dtype=dtype)
        pop = net.population(20, LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, t_ref=2.0, **syn))
        for d in delays:
            net.connect(pop, pop, FixedInDegree(4), weight=w, delay=d)
        one = net.poisson(20, rate=8000.0)
        net.connect(one, pop, OneToOne(), weight=w, delay=0.1)
        multi = net.poisson(2, rate=8000.0)
        net.connect(multi, pop, FixedInDegree(1), weight=w, delay=0.1)
        stim = net.spike_source(senders=[0], times=[0.5])
        net.connect(stim, pop[:2], FixedInDegree(1), weight=w, delay=0.1)
        dc = net.dc(10.0, start=0.2, stop=0.6)
        net.connect(dc, pop[:2], FixedInDegree(1), weight=1.0)
        net.record_spikes(pop)
        net.record_state(pop[:2], "v")
        yield net


def _event_network(synapse):
    """A tiny event-engine network with delta, exponential or alpha synapses (the README's kind)."""
    from . import LIF, AllToAll, FixedInDegree, Network

    syn = dict(tau_syn_ex=2.0, tau_syn_in=5.0) if synapse != "delta" else {}
    if synapse == "alpha":
        syn["psc"] = "alpha"
    net = Network(dt=0.1, seed=1, engine="event")
    pop = net.population(10, LIF(tau_m=10.0, v_th=15.0, v_reset=0.0, t_ref=2.0, i_e=400.0, **syn))
    net.connect(pop, pop, FixedInDegree(2), weight=-1.0, delay=1.0)
    stim = net.spike_source(senders=[0, 0], times=[1.2345, 7.001])
    net.connect(stim, pop[:2], AllToAll(), weight=500.0, delay=0.75)
    noise = net.poisson(10, rate=100.0)
    net.connect(noise, pop, FixedInDegree(1), weight=1.0, delay=0.5)
    dc = net.dc(10.0, start=0.2, stop=5.0)
    net.connect(dc, pop[:2], FixedInDegree(1), weight=1.0)
    net.record_spikes(pop)
    net.record_state(pop[:2], "v")
    return net


def _torch_layers(dtype):
    """Forward and backward of small torch layers (LIF, ALIF, recurrent) in ``dtype``."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError("warmup(engine='torch') needs PyTorch: pip install 'eventsim[torch]'") from exc

    import eventsim.torch as et

    dt = getattr(torch, dtype)
    x = torch.rand(4, 2, 3, dtype=dt, requires_grad=True)
    for layer in (et.LIF(dt=1.0), et.LIF(dt=1.0, tau_syn=5.0), et.ALIF(dt=1.0)):
        spikes, _ = layer.to(dt)(x)
        spikes.sum().backward()
    rec = et.LIFRecurrent(3, 3, dt=1.0).to(dt)
    spikes, _ = rec(x)
    spikes.sum().backward()


def warmup(engine=ENGINES, synapse=DEFAULT_SYNAPSES, dtype=("float64",), progress=False):
    """Compile the kernels of the common networks ahead of time (into Numba's on-disk cache).

    Runs tiny networks that need the same compiled kernels as the usual
    networks of each combination of ``engine``, ``synapse`` and ``dtype``
    (LIF neurons; spike, Poisson and DC sources; several delays or one;
    spike and state recorders), so that a later first run, in this process
    or another one that uses the same cache, starts without compiling.
    What is cached already is only loaded (about a second).

    Parameters
    ----------
    engine : str or sequence of str
        "clock" (CPU clock engine), "event" (event engine) and/or "torch"
        (forward and backward of the :mod:`eventsim.torch` layers; needs
        torch).  Default: ``("clock", "event")``.
    synapse : str or sequence of str
        "delta" (voltage jumps, weights in mV), "exp" (exponential current
        synapses, weights in pA) and/or "alpha" (alpha-shaped current
        synapses, ``psc="alpha"``).  Default: ``("delta", "exp")``.
    dtype : str or sequence of str
        "float64" and/or "float32": the clock engine's state dtype (the
        event engine is float64 only) and the torch layers' dtype.
        Default: ``("float64",)``.
    progress : bool
        Print one line per compiled part to stderr.

    Returns
    -------
    list of tuple
        ``(what, seconds, n_compiled)`` per part run: a description, the
        wall time (s) and the number of kernels compiled (0: all were
        loaded from the cache).
    """
    import sys

    engines = _as_choice("engine", engine, ENGINES + ("torch",))
    synapses = _as_choice("synapse", synapse, SYNAPSES)
    dtypes = _as_choice("dtype", dtype, DTYPES)
    if not isinstance(progress, bool):
        raise ValueError(f"progress={progress!r} must be True or False")
    jobs = []
    for eng in engines:
        if eng == "clock":
            for syn in synapses:
                for dt in dtypes:
                    jobs.append((f"clock engine, {syn} synapses, {dt}",
                                 lambda syn=syn, dt=dt: [net.run(1.0) for net in _clock_networks(syn, dt)]))
        elif eng == "event":
            for syn in synapses:
                jobs.append((f"event engine, {syn} synapses, float64", lambda syn=syn: _event_network(syn).run(10.0)))
        else:
            for dt in dtypes:
                jobs.append((f"torch layers, {dt}", lambda dt=dt: _torch_layers(dt)))
    out = []
    for what, job in jobs:
        t0 = time.perf_counter()
        with compiles() as done:
            job()
        row = (what, time.perf_counter() - t0, sum(1 for c in done if not c.nested))
        out.append(row)
        if progress:
            print(f"{what}: {row[1]:.1f} s, {row[2]} kernels compiled", file=sys.stderr, flush=True)
    return out


install()
