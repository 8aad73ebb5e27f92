r"""Neuron families as data: the one declaration per family that the engines are generic over.

A *family* is a set of neuron models that share one state layout and one
update rule (NEST's ``iaf_psc_delta``, ``iaf_psc_exp``, an adaptive-threshold
LIF, a leaky integrator...).  Each family is declared once, in its own module
of :mod:`eventsim.models`, by a :class:`Family` record:

``name``
    What the family is called (NEST's model name where one exists).
``code``
    Its number in the engines' parameter tables (``Params.family``, one value
    per parameter set; a model's ``pack`` writes it).
``tag``
    An instance of a :class:`typing.NamedTuple` class that belongs to this
    family alone.  Numba types the instance by its class, so passing the tags
    of the families present to a kernel (as a tuple) specialises the kernel
    at compile time, and the kernel stays cacheable on disk: there is no
    closure over a dispatcher, only argument types.
``state``
    Its state variables: ``(name, unit)`` pairs, stored by the engines in
    per-variable arrays (structure of arrays), plus the integer refractory
    counter where the family has one.
``ports``
    Its receptor ports: the ring-buffer column blocks its input arrives in
    (``("ex",)``: one block, the sum of every weight; ``("ex", "in")``: one
    block per sign of the weight).
``propagator``
    Its exact propagator for a step of any length ``h`` (ms): the clock
    engines use it with ``h = dt`` (computed once on the host by the
    model's ``pack``).
``models``
    The model classes of the family (their ``pack(n, dt)`` writes the
    engines' arrays: the common fields of the parameter tables, plus the
    family's own storage, ``"coef"`` (float64 ``[n, M]``: coefficients per
    neuron, kept per parameter set in ``Params.coef``) and ``"x_init"``
    (float64 ``[n, KX]``: the initial values of the family's own state
    columns ``State.x``); a model's ``state_columns`` maps its state names
    to fields of ``State`` or columns of ``x``, ``state_units`` gives their
    units).
``event``
    Its functions for the event engine (an :class:`EventFunctions`
    record), or None: the event engine refuses the family
    (``event_engine=False`` says so too).
``update_block``
    The update of a block ``a..b-1`` of neurons that share parameter set
    ``q`` for one step: exact subthreshold step, threshold test, reset and
    refractory rule, written once from the family's scalar functions and
    compiled for the CPU engines and, unchanged, as a CUDA device function.
    Signature (:func:`update_block`): ``(a, b, q, c0, rbase, ring, i_c,
    per_neuron, pr, st, flag)``; it writes ``flag[n] = 1`` for each neuron
    that spiked.
``torch``
    What the torch bridge needs to run the family as a layer (a
    :class:`TorchSteps`), or None (no torch layer); see "The torch
    contract" below.
``counts``
    True for a family whose neurons count their input spikes rather than
    sum weights (parrot neurons): the engines deliver 1 per spike onto it
    (times the spike's multiplicity) whatever the connection's weight; its
    block update leaves the count of a step in which it spikes in ``st.v``,
    and its spike then leaves with that multiplicity (weight x multiplicity
    at every target, recorded that many times), as NEST's ``parrot_neuron``.

The engines call the generic functions of this module with the tags of
the families present (:func:`update_family`) or a family's tag
(:func:`update_block`); :func:`numba.extending.overload` binds them to the
families' functions at compile time.  An engine never names a family, so a
new family is one module of :mod:`eventsim.models` that builds a
:class:`Family` and calls :func:`register`.

The torch contract
------------------
Every layer of :mod:`eventsim.torch` runs one family, the one the
simulator's own resolution gives for its options
(:func:`eventsim.models.lif.family_of`: ``LIF`` / ``IF`` with delta
synapses ``iaf_psc_delta``, with ``tau_syn`` ``iaf_psc_exp``,
``psc="alpha"`` ``iaf_psc_alpha``; ``ALIF`` and adaptive ``LIFRecurrent``
``alif``; ``LI`` the leaky integrator), and is set up in one way, from
that family's :class:`TorchSteps`: ``eventsim.torch.functional.layer_rows``
builds the coefficient rows with the declaration's ``coefficients`` from
the parameters it names (``params``), and
``eventsim.torch.functional.run_layer`` runs them on the kernels the
declaration names (``kernel``), launched through
``eventsim.torch.functional.run_kernel``.  The bridge never branches on
the kind of layer or family (``tests/test_structure.py`` checks it), only
on the declared kernel kind:

``kernel="family"`` (``LI``, ``iaf_psc_alpha``)
    The generic family kernels loop over time and elements and call
    :func:`torch_forward` and :func:`torch_backward` with the family's
    tag, bound here to the family's own scalar steps; the rows are one
    set, written once with ``xp`` for NumPy and torch.
``kernel="point"`` (``iaf_psc_delta``, ``iaf_psc_exp``, ``alif``)
    The bridge's point-neuron kernels (:mod:`eventsim.torch._core`,
    ``_cpu``, ``_cuda``: SIMD blocks of neurons on the CPU, a recurrent
    form, ``torch.library`` operators, ``torch.func`` rules) loop over
    time, neurons and threshold components, keep what the reverse pass
    reads, and call :func:`torch_point_forward` and
    :func:`torch_point_backward` with the family's tag, bound here to the
    family's declared step (:attr:`TorchSteps.point_forward`,
    :attr:`TorchSteps.point_backward`; for these three families
    :mod:`eventsim.models.lif_torch`: the clock engine's ``neuron_update``
    and ``reset_voltage``, and the peer libraries' integrators, which are
    options of the families' layers).  The layer's flag vector
    (``LayerSpec``: integrator, synapse, reset, spike rule, ...) goes to
    the step through the kernels, which read only the flags that say which
    state exists; the CPU feed-forward kernels compile the flags as
    constants, so the step's branches vanish and its loads stay
    unconditional (SIMD).  The families declare their rows
    (:func:`eventsim.models.lif.torch_coefficients`: forward rows in
    float64 or the peer's arithmetic, and the affine rows of the reverse
    pass) and the options (:func:`eventsim.models.lif_torch.torch_options`).
    The kernels are compiled once per family tag (and dtype, and on the
    CPU per flag values), cached on disk like the family kernels.

The clock engine's contract with ``update_block``
-------------------------------------------------
``pr`` (:class:`eventsim.engines.clock_cpu.Params`) holds one row per
parameter set of every field a model's ``pack`` returns; ``st``
(:class:`eventsim.engines.clock_cpu.State`) the state arrays (``v``,
``i_ex``, ``i_in``, ``refr``, ``theta``, ``i_dc``: the constant input
current in pA, the model's ``i_e`` plus DC sources).  Neuron ``n``'s input
of this step is in ``ring[c0 + n]`` (its first port) and
``ring[c0 + N + n]`` (second port, ``N`` neurons), which the update reads
and sets to 0; ``i_c`` is the constant input (pA) to add to ``st.i_dc[n]``
when ``per_neuron``, else the whole constant input of every neuron of the
block.  ``rbase`` is the ring offset of the step's slot (``c0 = rbase +
pr.col[a] - a``).

The event engine's contract with :class:`EventFunctions`
--------------------------------------------------------
The event engine (:mod:`eventsim.engines.event_cpu`) keeps every neuron's
state at the time ``SS[i, TL]`` of its last event and advances it lazily,
in continuous time, with the family's exact propagator.  Its arrays:

``PP[class, N_PARAMS]`` (float64)
    One row per distinct set of parameter values (a *class*; a neuron's
    class is ``int(SS[i, CM]) >> 1``).  Columns :data:`FAMILY` (the family
    code), :data:`RECORD` (1: spikes recorded) and :data:`T_REF` (ms: the
    refractory period started by a spike) are the engine's; columns
    :data:`FIRST` to ``N_PARAMS - 1`` are the family's own (its ``pack``
    chooses them).
``SS[N, W]`` (float64, one row per neuron)
    Columns ``0 .. k - 1``: the family's state variables (its ``slots``
    name them; ``k`` is the largest :func:`slot_count` of the families
    present, so ``W = k +`` :data:`ENGINE_COLUMNS`, :func:`state_width`:
    one 64-byte row with three slots); the engine's columns are the last
    :data:`ENGINE_COLUMNS`, named by negative indices, the same whatever
    ``W``: :data:`TL` the time of the last event (ms), :data:`TR` the end
    of the refractory period (ms; the engine sets it to ``t + PP[p,
    T_REF]`` at a spike at ``t``), :data:`IB` the constant input current
    (pA: the model's ``i_e`` plus the DC sources that are on), :data:`CM`
    and :data:`XPOS` (the engine's bookkeeping).
``TH``, ``ITH``, ``DTH`` (float64 ``[N, K]``)
    Threshold components that decay exponentially (values in mV, inverse
    time constants in 1/ms, increments at a spike in mV; zero columns for
    families without them).

Every function of :class:`EventFunctions` but ``pack`` is a Numba function
that takes the family's tag first (so one function can serve several
families, specialised by the tag's type at compile time), then the neuron
``i`` and its class ``p``:

``pack(model, n)``
    (Python) ``(P, ith, dth)``: ``P`` float64 ``[n, N_PARAMS]`` with
    :data:`T_REF` and the family's columns filled, ``ith``, ``dth`` float64
    ``[n, k]`` (``k >= 0`` threshold components).
``slots``
    ``{state key: column of SS}`` (Python; ``get_state``, ``set_state``):
    a key as :func:`state_key` gives it, the name of a state variable
    (``"v"``, ``"i_ex"``, ...) or, for the family's own variables, their
    column of the clock engine's ``State.x`` (an int).
``advance(fam, i, p, s, PP, SS, TH, ITH)``
    Replace the state by its value ``s > 0`` ms later without input (free
    evolution with the exact propagator for a step of any length,
    refractory clamp included); the engine then sets ``TL``.
``sample(fam, i, p, s, var, PP, SS, TH, ITH)``
    The value of recorded variable ``var`` (codes of
    :data:`eventsim.engines.clock_cpu.VAR_CODES`) ``s >= 0`` ms after
    ``TL``, without side effect.
``receive(fam, i, p, t, w, port, PP, SS)``
    Input of weight ``w`` arriving at ``t`` (the state is at ``t``) at
    receptor port ``port`` (``connect(..., receptor=port)``; -1 for a
    connection without one: the family chooses, e.g. by the weight's sign).
``fires(fam, i, p, t, PP, SS, TH)``
    Whether the neuron spikes at ``t`` after every input arriving at ``t``
    (a jump of the state across the threshold).
``reset(fam, i, p, t, PP, SS, TH, DTH)``
    The reset after a spike at ``t`` (state at ``t``): new state and
    threshold components; the engine then starts the refractory period.
``never_crosses(fam, i, p, PP, SS)``
    A cheap sufficient test that the free trajectory never reaches the
    threshold (False when unsure).
``next_crossing(fam, i, p, PP, SS, TH, ITH, stack)``
    The absolute time (ms) at which the free trajectory first reaches the
    threshold (inf: never), not before the end of the refractory period;
    ``stack`` (float64 ``[256, 2]``) is scratch space.
``distance``, ``slope``, ``bounds`` (optional)
    The distance to threshold at ``s`` ms after ``TL``
    (``distance(fam, i, p, s, PP, SS, TH, ITH)``, mV), with its time
    derivative (``slope``: ``(distance, d/ds)``), and on an interval
    ``[a, b]`` an upper bound of the distance and a lower bound of its
    derivative (``bounds(fam, i, p, a, b, PP, SS, TH, ITH)``): what
    :func:`eventsim.models.crossing.leftmost_crossing` needs to find the
    first crossing without missing one.

The engine calls :func:`event_advance`, :func:`event_receive`, ... with the
tuple of the tags of the families present and the neuron's family code (a
chain of tests of compile-time constants, none with one family, compiled
once per tuple of tags with each family's function inlined in its branch,
and the chain itself inlined by LLVM into the engine's loops, so that a
network of several families pays one branch per call, not a function call;
the families of the LIF kind declare their hot functions with
``numba.njit(inline="always")``); the crossing search calls
:func:`distance`, :func:`slope` and :func:`bounds` with a family's tag.
Families that share one set of functions (:mod:`eventsim.models.iaf_event`)
tell them apart by the tag's type, at compile time.  Everything is bound
through :func:`numba.extending.overload` by argument types, with no closure
over a dispatcher in the engine, so its kernels stay cached on disk.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
from numba import njit
from numba.core import types
from numba.core.typing.templates import infer, infer_global, make_intrinsic_template
from numba.extending import overload

#: Decorator of a family's block updates: compiled once per argument types, cached on disk, and
#: without Numba's reference counting (they never allocate; with it, every array taken from a tuple
#: costs an atomic increment and decrement per call).
block_kernel = njit(cache=True, _nrt=False)


@dataclass(frozen=True)
class Family:
    """The declaration of one neuron family (see the module docstring for each field)."""

    name: str
    code: int
    tag: tuple
    state: tuple
    ports: tuple
    propagator: Callable
    update_block: Callable
    models: tuple = ()
    #: Whether the event engine runs this family (else it refuses the network with NotImplementedError).
    event_engine: bool = True
    #: The torch bridge's declaration of the family (:class:`TorchSteps`), None if it has no torch layer.
    torch: object = None
    #: The family's functions for the event engine (None: it does not run there).
    event: object = None
    #: Whether the family counts its input spikes instead of summing weights (parrot neurons): every
    #: spike onto it adds 1 (times its multiplicity) whatever the connection's weight, its block update
    #: leaves the count of a step in which it spikes in ``st.v``, and the engines send that spike with
    #: this multiplicity (weight x multiplicity at its targets, recorded that many times).
    counts: bool = False


class TorchSteps(NamedTuple):
    r"""What the torch bridge needs to run a family as a layer (the ``torch`` field of :class:`Family`).

    A layer of ``N`` neurons carries ``S = len(state)`` float state
    variables per neuron and batch row, reads ``R = len(rows)`` coefficient
    rows per neuron and maps an input sequence ``x[T, B, N]`` to an output
    sequence ``y[T, B, N]``.  The bridge's kernels (CPU and CUDA, generic
    over the family's tag, see :func:`torch_forward`) loop over time and
    elements; the family states only one step, forward and reverse.

    Attributes
    ----------
    state : tuple of (str, str)
        ``(name, unit)`` of each carried state variable, in the order of the
        kernels' state array ``s[S, M]`` (``M = B N`` elements); a variable
        of unit ``"steps"`` (a refractory counter) is an integer outside
        the kernels.
    rows : tuple of str
        Names of the coefficient rows ``c[R, N]``, in order.
    coefficients : callable
        ``coefficients(xp, dt, **params) -> list of R arrays [N]``: the rows
        from the layer's parameters (float64 arrays of one value per neuron)
        and the step ``dt`` (ms), written with the array namespace ``xp``
        only (``numpy`` or ``torch``: the same expressions give the
        kernels' float64 rows and, through ``torch`` autograd, the
        parameters' gradients).
    params : tuple of str
        The keyword parameters ``coefficients`` takes (what a layer stores).
    forward : callable
        ``forward(s, j, c, n, x) -> y``: one step of element ``j`` (neuron
        ``n``) with input ``x``; updates ``s[:, j]`` in place and returns the
        step's output.  A Numba function (compiled for the CPU kernels and as
        a CUDA device function); no allocation.
    backward : callable
        ``backward(s, j, c, n, x, gy, gs, dc) -> gx``: the reverse of one step
        (vector-Jacobian product).  ``s[:, j]`` is the state before the step,
        ``gy`` the gradient on its output, ``gs[:, j]`` the gradient on the
        state after it, overwritten with the gradient on the state before;
        adds the gradients on the coefficient rows to ``dc[:, j]``; returns
        the gradient on ``x``.
    output : str
        What ``y`` is, with its unit (for the docstrings and messages).
    model : callable or None
        ``model(dt, **params) -> (model, gain)``: the simulator's model of a
        trained layer (float64 parameters, one value per neuron) and the
        factor per neuron that turns a weight of the layer's input into a
        synaptic weight (``eventsim.torch.to_network``); None: not exportable.
    kernel : {"family", "point"}
        Which fused kernels of the bridge run the layer.  ``"family"``: the
        generic family kernels over :attr:`forward` and :attr:`backward`
        (as above).  ``"point"``: the bridge's point-neuron kernels
        (:mod:`eventsim.torch._core`, ``_cpu``, ``_cuda``: SIMD blocks on
        the CPU, a recurrent form, ``torch.library`` operators), generic
        over the family's tag like the family kernels, over the scalar
        step :attr:`point_forward` / :attr:`point_backward` instead, for
        layers with a membrane ``v``, an optional current ``i``, a
        refractory counter and ``K`` threshold components (the kernels
        carry these, decay and jump the components, and keep what the
        reverse pass reads); :attr:`forward` and :attr:`backward` are
        None, and ``coefficients`` is ``coefficients(xp, dt, spec, native,
        dtype, norm_input, leaky, **params)`` (``xp`` is ``torch``;
        ``spec`` the layer's flags, an
        ``eventsim.torch.functional.LayerSpec``), returning the kernels'
        forward rows ``nat`` (``native=True``: the parameters are float64
        NumPy arrays, each threshold component an entry of a tuple, and
        the rows a CPU tensor of ``dtype`` holding the integrator's own
        arithmetic) or their differentiable affine rows ``aff``
        (``native=False``: float64 tensors in, a tensor of ``dtype`` out).
    positive : tuple of str
        The parameters that must be > 0 (time constants, ms); every other
        parameter must be finite.  ``eventsim.torch.functional.family_coefficients``
        checks the values against these rules (ValueError naming the parameter).
    point_forward : callable or None
        Kernel ``"point"`` only: ``point_forward(mode, syn, reset, rule,
        adapt, ref_steps, v, i, r, thr_a, x, nat, n, zero, one, ninf) ->
        (v_pre, v_post, i, r, z, thr, refr)``: one step of neuron ``n``
        from the carried membrane ``v``, current ``i`` and refractory
        counter ``r``, with the effective threshold ``thr_a`` of an
        adaptive layer and the input ``x``; the flags are the layer's
        (``LayerSpec``; the CPU kernels compile them as constants, so the
        step's branches on them vanish, and the step loads every
        coefficient unconditionally, which keeps the SIMD blocks
        branch-free).  Returns the membrane before and after the reset, the
        new current and counter, the spike, the threshold it was tested
        against and whether the step was refractory.  The LIF / IF / ALIF
        step: :func:`eventsim.models.lif_torch.point_forward`.
    point_backward : callable or None
        Kernel ``"point"`` only: ``point_backward(mode, syn, reset, rule,
        adapt, detach, code, alpha, vp, z, thr, refr, vpprev, vprev, x,
        iprev, go, gv, gi, gza, aff, nat, n) -> (gv_prev, gi_prev, gx,
        d0, ..., d7, gthr)``: the reverse of one step (the gradients on the
        state before it, on the input, on the affine rows 0-7, and on the
        effective threshold); see
        :func:`eventsim.models.lif_torch.point_backward`.
    """

    state: tuple
    rows: tuple
    coefficients: Callable
    params: tuple
    forward: Callable
    backward: Callable
    output: str = ""
    model: Callable = None
    kernel: str = "family"
    positive: tuple = ()
    point_forward: Callable = None
    point_backward: Callable = None


_BY_CODE = {}
_BY_TAG = {}


def register(family):
    """Make ``family`` known to the engines; returns it.  Its code and tag class must be new."""
    cls = type(family.tag)
    if family.code in _BY_CODE and _BY_CODE[family.code] is not family:
        raise ValueError(f"family code {family.code} is taken by {_BY_CODE[family.code].name}")
    if not (isinstance(family.tag, tuple) and hasattr(cls, "_fields")) or cls in _BY_TAG:
        raise ValueError(f"family {family.name}: its tag must be an instance of a NamedTuple class of its own")
    if family.tag.code != family.code:
        raise ValueError(f"family {family.name}: tag.code={family.tag.code} differs from code={family.code}")
    _BY_CODE[family.code] = family
    _BY_TAG[cls] = family
    return family


#: The common fields of the clock engine's parameter tables, with the values of a family that does not use
#: them (a model's ``pack`` gives the ones its family reads: :func:`pack_fields`).
_NEUTRAL = dict(p_vv=1.0, p_vi=0.0, p_ve=0.0, p_vn=0.0, p_ee=0.0, p_nn=0.0, v_rest=0.0, v_th=math.inf, v_reset=0.0,
                v_min=-math.inf, i_e=0.0, ref_steps=0, reset_mode=0, reset_m=0.0, reset_b=0.0)


def pack_fields(family, n, ports, **given):
    """The arrays of a model's ``pack(n, dt)`` for ``n`` neurons of ``family`` with ``ports`` receptor blocks
    chosen by the weight's sign (1 or 2): the fields ``given`` (scalars are broadcast; ``coef``, ``x_init`` as
    they are) and, for every other common field, a value the family does not read."""
    out = {"family": np.full(n, family.code, np.int64), "is_exp": np.full(n, int(ports == 2), np.int64),
           "p_theta": np.zeros((n, 0)), "d_theta": np.zeros((n, 0))}
    for name, default in _NEUTRAL.items():
        value = given.pop(name, default)
        kind = np.int64 if name in ("ref_steps", "reset_mode") else np.float64
        out[name] = np.array(np.broadcast_to(np.asarray(value, kind), (n,)))
    out.update(given)
    return out


def state_key(model, name):
    """Where the engines keep state variable ``name`` of ``model``'s neurons: a field of the clock
    engine's ``State`` (``"v"``, ``"i_ex"``, ...) or an int, a column of the family's own state ``x``.

    A model maps its names through its ``state_columns`` dict (absent: every name is a field).
    """
    return getattr(model, "state_columns", {}).get(name, name)


def state_unit(model, name):
    """The unit of state variable ``name`` of ``model`` (its ``state_units``; else by name; ``""`` unknown)."""
    unit = getattr(model, "state_units", {}).get(name)
    return unit if unit is not None else _UNITS.get(name, "")


_UNITS = {"v": "mV", "i_ex": "pA", "i_in": "pA", "theta": "mV", "v_th": "mV"}


def check_event_engine(model):
    """Raise NotImplementedError if the event engine does not run ``model``'s family, or its ``pack`` refuses
    the model (packed for one neuron here, so that a population is refused when it is made)."""
    fam = getattr(model, "family", None)
    if fam is not None and not (fam.event_engine and fam.event is not None):
        raise NotImplementedError(f"{model!r}: the {fam.name} family runs in the clock engine only; "
                                  "use Network(engine='clock')")
    if fam is not None:
        fam.event.pack(model, getattr(model, "n_values", None) or 1)


def families():
    """Every registered family, by code."""
    return tuple(_BY_CODE[c] for c in sorted(_BY_CODE))


def by_code(code):
    """The family of ``code`` (KeyError if none)."""
    return _BY_CODE[int(code)]


def model_classes():
    """``{class name: class}`` of every model class of the registered families."""
    return {cls.__name__: cls for f in families() for cls in f.models}


def tags(codes=None):
    """The tags of the families whose codes occur in ``codes`` (all families if None), by code.

    This tuple is the compile-time argument of the engines' neuron kernels:
    the update of a family absent from it is not compiled.  Never empty
    (with no neuron at all, the first family stands in; it updates nothing).
    """
    fams = families()
    if codes is not None:
        present = set(np.unique(np.asarray(codes)).tolist())
        fams = tuple(f for f in fams if f.code in present) or fams[:1]
    return tuple(f.tag for f in fams)


# ---------------------------------------------------------------- generic functions bound per family
def update_block(fam, a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """One step of neurons ``a..b-1`` (parameter set ``q``) of the family tagged ``fam``.

    In compiled code this is the family's own ``update_block``, chosen by
    the type of ``fam`` at compile time; called from Python it dispatches
    on the tag's class.
    """
    return _BY_TAG[type(fam)].update_block(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag)


@overload(update_block)
def _update_block_compiled(fam, a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    fn = _BY_TAG[fam.instance_class].update_block

    def impl(fam, a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
        fn(a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag)

    return impl


def update_family(fams, code, a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    """:func:`update_block` of the family among the tags ``fams`` whose code is ``code`` (none: nothing).

    In compiled code a chain of tests of ``code`` against the families'
    codes (compile-time constants), one per tag of ``fams``, each calling
    that family's ``update_block``: the engine's one call site covers every
    family present, and the families absent from ``fams`` are not compiled.
    (Written as a chain generated from the tuple's type rather than with
    ``numba.literal_unroll``, which numba-cuda does not take.)
    """
    for fam in fams:
        if fam.code == code:
            update_block(fam, a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag)


_ARGS = "a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag"


def _update_family_compiled(fams, code, a, b, q, c0, rbase, ring, i_c, per_neuron, pr, st, flag):
    if not isinstance(fams, types.BaseTuple):
        return None
    # one flat chain of tests, made from source text: the families' update functions and codes are globals
    # of the generated function (an overload's implementation is compiled into its caller, so the caller
    # stays cacheable)
    scope = {}
    lines = [f"def impl(fams, code, {_ARGS}):"]
    for k, t in enumerate(fams.types):
        family = _BY_TAG[t.instance_class]
        scope[f"_code{k}"] = family.code
        scope[f"_update{k}"] = family.update_block
        lines += [f"    {'if' if k == 0 else 'elif'} code == _code{k}:", f"        _update{k}({_ARGS})"]
    lines.append("    return None")
    exec("\n".join(lines), scope)  # noqa: S102 - source built above from fixed names only
    return scope["impl"]


def torch_families(kernel="family"):
    """Every registered family that declares a torch layer (``torch`` set) run by the bridge's ``kernel``
    kernels (:attr:`TorchSteps.kernel`: ``"family"``, the generic family kernels, or ``"point"``; None:
    every kernel), by code."""
    return tuple(f for f in families() if f.torch is not None and (kernel is None or f.torch.kernel == kernel))


def by_tag(tag):
    """The family of ``tag`` (a family's tag instance or its class; KeyError if none)."""
    return _BY_TAG[tag if isinstance(tag, type) else type(tag)]


# ---------------------------------------------------------------- the torch bridge's steps, bound per family
def _py(fn):
    """The plain-Python original of a Numba function (as the CUDA simulator runs kernels)."""
    return getattr(fn, "py_func", fn)


def torch_forward(fam, s, j, c, n, x):
    """:attr:`TorchSteps.forward` of the family tagged ``fam`` (compiled code: bound at compile time)."""
    return _py(_BY_TAG[type(fam)].torch.forward)(s, j, c, n, x)


@overload(torch_forward)
def _torch_forward_compiled(fam, s, j, c, n, x):
    fn = _BY_TAG[fam.instance_class].torch.forward

    def impl(fam, s, j, c, n, x):
        return fn(s, j, c, n, x)

    return impl


def torch_backward(fam, s, j, c, n, x, gy, gs, dc):
    """:attr:`TorchSteps.backward` of the family tagged ``fam`` (compiled code: bound at compile time)."""
    return _py(_BY_TAG[type(fam)].torch.backward)(s, j, c, n, x, gy, gs, dc)


@overload(torch_backward)
def _torch_backward_compiled(fam, s, j, c, n, x, gy, gs, dc):
    fn = _BY_TAG[fam.instance_class].torch.backward

    def impl(fam, s, j, c, n, x, gy, gs, dc):
        return fn(s, j, c, n, x, gy, gs, dc)

    return impl


def torch_point_forward(fam, mode, syn, reset, rule, adapt, ref_steps, v, i, r, thr_a, x, nat, n, zero, one, ninf):
    """:attr:`TorchSteps.point_forward` of the family tagged ``fam`` (compiled code: bound at compile time)."""
    return _py(_BY_TAG[type(fam)].torch.point_forward)(mode, syn, reset, rule, adapt, ref_steps, v, i, r, thr_a, x,
                                                       nat, n, zero, one, ninf)


def torch_point_backward(fam, mode, syn, reset, rule, adapt, detach, code, alpha, vp, z, thr, refr, vpprev, vprev, x,
                         iprev, go, gv, gi, gza, aff, nat, n):
    """:attr:`TorchSteps.point_backward` of the family tagged ``fam`` (compiled code: bound at compile time)."""
    return _py(_BY_TAG[type(fam)].torch.point_backward)(mode, syn, reset, rule, adapt, detach, code, alpha, vp, z, thr,
                                                        refr, vpprev, vprev, x, iprev, go, gv, gi, gza, aff, nat, n)


def _type_step(attr, typingctx, fam, *args):
    """The signature and code of a call of the step ``attr`` of the family tagged ``fam`` (see :func:`_bind_step`)."""
    if not isinstance(fam, types.BaseNamedTuple) or fam.instance_class not in _BY_TAG:
        return None
    fnty = typingctx.resolve_value_type(getattr(_BY_TAG[fam.instance_class].torch, attr))
    inner = typingctx.resolve_function_type(fnty, args, {})
    if inner is None:
        return None

    def codegen(context, builder, sig, llargs):
        return context.get_function(fnty, inner)(builder, llargs[1:])

    return inner.return_type(fam, *inner.args), codegen


def _bind_step(generic, attr):
    """Type the calls of ``generic(fam, *args)`` in compiled code as a direct call of the step ``attr`` of
    :class:`TorchSteps` that the family tagged ``fam`` declares (a Numba dispatcher).

    The step is compiled once per argument types (with the flags the kernels pass as literals, as
    constants) and called from every kernel, on the CPU and, resolved by the CUDA target, as a device
    function: no binding function of its own is compiled per calling kernel (as an ``overload``'s
    implementation is, once per kernel and per parfor body), so a cold first run compiles the step once.
    The kernels stay cached on disk: the call is typed by argument types, with no closure over a dispatcher.
    """

    # the typer's parameters are the generic function's (a typer with ``*args`` would have the call's arguments
    # folded into a tuple)
    names = ", ".join(inspect.signature(generic).parameters)
    scope = {"_type_step": _type_step, "_attr": attr}
    exec(f"def typer(typingctx, {names}):\n"  # noqa: S102 - source built from the generic's parameter names
         f"    return _type_step(_attr, typingctx, {names})\n", scope)
    typer = scope["typer"]
    template = make_intrinsic_template(generic, typer, generic.__name__, prefer_literal=True)
    infer(template)
    infer_global(generic, types.Function(template))


_bind_step(torch_point_forward, "point_forward")
_bind_step(torch_point_backward, "point_backward")


#: Spike rules of the torch layers (the point kernels' flag ``rule``, :func:`spike_of`).
SPIKE_GE = 0       # z = v >= thr
SPIKE_GT = 1       # z = v > thr
SPIKE_MULTI = 2    # sinabs' MultiSpike: z = trunc(v / thr) for v > 0


@njit(cache=True, error_model="numpy")
def spike_of(rule, vp, thr, zero, one):
    """Spike output for the pre-reset membrane ``vp`` and threshold ``thr``: 0/1, or a count (``SPIKE_MULTI``).

    The spike rule of the point kernels' layers, shared by the families'
    steps (:attr:`TorchSteps.point_forward`) and the kernels (which
    recompute the spikes of the reverse pass from the saved membrane).
    """
    if rule == SPIKE_GE:
        return one if vp >= thr else zero
    if rule == SPIKE_GT:
        return one if vp > thr else zero
    if vp > zero:
        return np.trunc(vp / thr)
    return zero


def like(u, value):
    """``value`` as a number of the floating type of ``u`` (typed constants in the scalar functions).

    Compiled (CPU and CUDA), a float32 ``u`` gives a float32 constant, so
    arithmetic on float32 data stays in float32 (a float64 literal would
    promote it, which keeps the loops from vectorising and costs float64
    throughput on GPUs).  In Python (the CUDA simulator) the type of ``u`` is used.
    """
    return type(u)(value)


@overload(like, inline="always", target="generic")
def _like(u, value):
    if isinstance(u, types.Float) and u.bitwidth == 32:
        return lambda u, value: np.float32(value)
    return lambda u, value: np.float64(value)


#: The torch bridge's surrogate derivative, bound by :mod:`eventsim.torch.surrogate` when it is imported (the
#: models never import torch); a list holding the plain-Python function.
_SPIKE_GRAD = []


def spike_grad(code, alpha, u):
    """Surrogate derivative ``dz/du`` of spiking at ``u = v - threshold`` (surrogate ``code``, parameter ``alpha``).

    For the reverse steps of spiking families (:attr:`TorchSteps.backward`):
    :func:`eventsim.torch.surrogate.surrogate_grad`, bound when the torch
    bridge is imported (it is the only caller).
    """
    return _SPIKE_GRAD[0](code, alpha, u)


# One implementation for every target, called rather than inlined: numba-cuda cannot inline an overload that
# calls other functions, and an overload registered per target (inlined on the CPU only) has its typing shared
# between the targets, so a CPU compilation followed by a CUDA one in the same process fails.  The call is once
# per run of neurons of one parameter set, not per neuron.
overload(update_family)(_update_family_compiled)


# ---------------------------------------------------------------- the event engine's interface
class EventFunctions(NamedTuple):
    """A family's functions for the event engine (see the module docstring for each)."""

    pack: Callable
    slots: dict
    advance: Callable
    sample: Callable
    receive: Callable
    fires: Callable
    reset: Callable
    never_crosses: Callable
    next_crossing: Callable
    distance: Callable = None
    slope: Callable = None
    bounds: Callable = None
    #: ``multiplicity(fam, i, p, PP, SS)``: the number of spikes neuron ``i`` sends at once when it fires (read
    #: before ``reset``); None: one (:func:`single_spike`).  A parrot's: the inputs of its arrival time.
    multiplicity: Callable = None


@njit(inline="always", cache=True)
def single_spike(fam, i, p, PP, SS):
    """``multiplicity`` of every family that sends one spike at a time."""
    return 1


#: The functions of the optional :class:`EventFunctions` fields a family leaves at None.
_EVENT_DEFAULTS = {"multiplicity": single_spike}


# ---------------------------------------------------------------- event functions of a family without threshold
# (it never spikes: no crossing to predict, nothing to reset); :class:`EventFunctions` fields of such families.
@njit(inline="always", cache=True)
def never_fires(fam, i, p, t, PP, SS, TH):
    """``fires`` of a family without threshold."""
    return False


@njit(inline="always", cache=True)
def no_reset(fam, i, p, t, PP, SS, TH, DTH):
    """``reset`` of a family without threshold (never called: it never fires)."""
    return None


@njit(inline="always", cache=True)
def never_crosses(fam, i, p, PP, SS):
    """``never_crosses`` of a family without threshold."""
    return True


@njit(inline="always", cache=True)
def no_crossing(fam, i, p, PP, SS, TH, ITH, stack):
    """``next_crossing`` of a family without threshold: never (inf)."""
    return math.inf


#: Columns of the event engine's parameter rows that the engine reads: the family code, whether the neuron's
#: spikes are recorded, the refractory period (ms).  A family's own columns are ``FIRST .. N_PARAMS - 1``.
FAMILY = 0
RECORD = 1
T_REF = 2
FIRST = 3
N_PARAMS = 24
#: Columns of the event engine's state rows: ``0 .. k - 1`` the family's state (``k``: :func:`slot_count`), and
#: the last ``ENGINE_COLUMNS``, counted from the end of the row, the engine's (the time of the last event, the end
#: of the refractory period (ms), the constant input current (pA), ``2 * class + mark``, the position in the
#: crossing heap): negative indices, valid whatever the row's width (:func:`state_width`).
TL = -5
TR = -4
IB = -3
CM = -2
XPOS = -1
ENGINE_COLUMNS = 5


def slot_count(family):
    """The number of state-row columns the event functions of ``family`` use (its largest slot + 1)."""
    return max(family.event.slots.values()) + 1


def state_width(fams):
    """The width of the event engine's state rows for the families tagged ``fams``: their largest
    :func:`slot_count` plus :data:`ENGINE_COLUMNS` (8, one 64-byte row, with three slots)."""
    return max(slot_count(by_tag(t)) for t in fams) + ENGINE_COLUMNS


def event_row(SS, i):
    """The parameter row (class) of neuron ``i`` in the event engine."""
    return np.int64(SS[i, CM]) >> 1


event_row = njit(cache=True, inline="always")(event_row)


def _per_family(name, args):
    """A function ``name(fam, *args)`` that calls the event function ``name`` of the family tagged ``fam``
    (bound at compile time by the tag's type: the call stays cacheable on disk)."""
    scope = {"_BY_TAG": _BY_TAG, "_impl": _single_impl, "_name": name}
    exec(f"def {name}(fam, {args}):\n"  # noqa: S102 - source built from fixed names only
         f"    return getattr(_BY_TAG[type(fam)].event, _name)(fam, {args})\n"
         f"def _typer(fam, {args}):\n"
         f"    return _impl(_name, {args!r}, fam)\n", scope)
    overload(scope[name])(scope["_typer"])
    return scope[name]


def _single_impl(name, args, fam):
    scope = {"_fn": getattr(_BY_TAG[fam.instance_class].event, name)}
    exec(f"def impl(fam, {args}):\n    return _fn(fam, {args})\n", scope)  # noqa: S102
    return scope["impl"]


def _over_families(name, args):
    """A function ``event_<name>(fams, code, *args)``: the event function ``name`` of the family among the
    tags ``fams`` whose code is ``code``, called with that family's tag first.  Compiled: a chain of tests of
    compile-time codes (the last family without a test, as ``code`` is always one of ``fams``: none at all
    with one family), each branch the family's function.  The chain is inlined into its caller by LLVM
    (``forceinline``: the ``alwaysinline`` attribute), not at Numba's IR level, which produced invalid-scope
    warnings in Numba's SSA pass; left to LLVM's cost model, the chain of two families' ``advance`` stayed a
    call per synaptic event (about 40 arguments: 25 % of the run time of a network of two families)."""
    scope = {"_BY_TAG": _BY_TAG, "_impl": _chain_impl, "_name": name, "_DEFAULTS": _EVENT_DEFAULTS}
    exec(f"def event_{name}(fams, code, {args}):\n"  # noqa: S102 - source built from fixed names only
         f"    for fam in fams:\n"
         f"        if fam.code == code or fam is fams[-1]:\n"
         f"            return (getattr(_BY_TAG[type(fam)].event, _name) or _DEFAULTS[_name])(fam, {args})\n"
         f"def _typer(fams, code, {args}):\n"
         f"    return _impl(_name, {args!r}, fams)\n", scope)
    overload(scope[f"event_{name}"], jit_options={"forceinline": True})(scope["_typer"])
    return scope[f"event_{name}"]


def _chain_impl(name, args, fams):
    if not isinstance(fams, types.BaseTuple):
        return None
    scope = {}
    lines = [f"def impl(fams, code, {args}):"]
    last = len(fams.types) - 1
    for k, t in enumerate(fams.types):
        family = _BY_TAG[t.instance_class]
        scope[f"_code{k}"] = family.code
        scope[f"_fn{k}"] = getattr(family.event, name) or _EVENT_DEFAULTS[name]
        call = f"return _fn{k}(fams[{k}], {args})"
        if k == 0 and k == last:
            lines.append(f"    {call}")
        elif k == last:
            lines += ["    else:", f"        {call}"]
        else:
            lines += [f"    {'if' if k == 0 else 'elif'} code == _code{k}:", f"        {call}"]
    exec("\n".join(lines), scope)  # noqa: S102 - source built from fixed names only
    return scope["impl"]


_ADV = "i, p, s, PP, SS, TH, ITH"
#: ``distance(fam, i, p, s, PP, SS, TH, ITH)``: the distance to threshold of the family tagged ``fam``.
distance = _per_family("distance", _ADV)
#: ``slope(fam, i, p, s, PP, SS, TH, ITH)``: ``(distance, its derivative)``.
slope = _per_family("slope", _ADV)
#: ``bounds(fam, i, p, a, b, PP, SS, TH, ITH)``: ``(upper bound of the distance, lower bound of its derivative)``
#: on ``[a, b]``.
bounds = _per_family("bounds", "i, p, a, b, PP, SS, TH, ITH")

#: The engine's calls: ``event_<name>(fams, code, ...)`` is the event function ``<name>`` of the family of code
#: ``code`` among the tags ``fams`` (see :class:`EventFunctions` for the arguments after ``fam``).
event_advance = _over_families("advance", _ADV)
event_sample = _over_families("sample", "i, p, s, var, PP, SS, TH, ITH")
event_receive = _over_families("receive", "i, p, t, w, port, PP, SS")
event_fires = _over_families("fires", "i, p, t, PP, SS, TH")
event_reset = _over_families("reset", "i, p, t, PP, SS, TH, DTH")
event_never_crosses = _over_families("never_crosses", "i, p, PP, SS")
event_next_crossing = _over_families("next_crossing", "i, p, PP, SS, TH, ITH, stack")
event_multiplicity = _over_families("multiplicity", "i, p, PP, SS")
