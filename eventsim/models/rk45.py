r"""Adaptive embedded Runge-Kutta integration for the neuron models whose dynamics are not linear.

Conductance-based synapses and AdEx's exponential spike current make the
subthreshold equations non-linear, so no exact propagator exists.  These
models are integrated, neuron by neuron, with the Runge-Kutta-Fehlberg 4(5)
pair (Fehlberg 1969; the method of NEST's ``iaf_cond_*`` and ``aeif_*``
models, through GSL's ``rkf45``) under per-neuron step-size control inside
each time step ``dt``:

* one :func:`evolve` call advances the state ``y`` from ``t`` by at most
  ``h`` (the neuron's current step size, kept between calls and between
  time steps) and never past ``t_end``.  It takes the fifth-order solution
  and estimates the local error as its difference from the embedded
  fourth-order one;
* the error is judged per component against
  :math:`D_i = \epsilon_{abs} + \epsilon_{rel} |y_i|` (control ``"y"``) or
  :math:`D_i = \epsilon_{abs} + \epsilon_{rel} h |y'_i|` (control ``"yp"``; each model
  chooses one, :func:`register_rhs`):
  with :math:`r = \max_i |e_i| / D_i`, a step with :math:`r > 1.1` is
  rejected and retried with :math:`h \cdot \max(0.2, 0.9 r^{-1/5})`; an
  accepted step with :math:`r < 0.5` lets the next one grow to
  :math:`h \cdot \min(5, \max(1, 0.9 r^{-1/6}))`.  These are the standard
  controls; NEST uses ``"y"`` with
  :math:`\epsilon_{abs} = 10^{-3}, \epsilon_{rel} = 0` (``iaf_cond_*``) and
  ``"yp"`` with :math:`\epsilon_{abs} = \epsilon_{rel} = 10^{-6}`
  (``aeif_*``, ``gsl_error_tol``), and so do the models of :mod:`.conductance`;
* a step never shrinks below :data:`H_MIN` ms (it is then accepted as it
  is: a neuron cannot stall the run);
* synaptic input, spikes and the refractory clamp act at step boundaries,
  as in NEST (see each model).

Accuracy: the error per accepted step is held to the tolerance above, so a
voltage trace follows the exact solution to roughly that tolerance per
step (accumulating at most linearly over a stretch without spikes); spike
times sit on the ``dt`` grid.  Against NEST 3.10 (the same method and
controls) the stored single-neuron traces of ``tests/nest_cond_reference``
agree to 1.4e-14 mV (``iaf_cond_exp``: the very same steps), 1.1e-5 mV
(``iaf_cond_alpha``), 4.5e-4 mV and 1.1e-3 mV (``aeif_cond_exp``,
``aeif_psc_exp``: the steps cut short at the end of a time step differ, and
the traces differ within the tolerance), with every spike on NEST's step
(``tests/test_conductance_math.py``, ``tests/test_cond_models.py``).

The state is a tuple of floats (``D`` of them, the model's state variables)
and every intermediate stage is a tuple too: the integrator lives in
registers, allocates nothing, and compiles unchanged as a CUDA device
function.  The model supplies its right-hand side through :func:`rhs`
(``rhs(fam, p, y, refractory, i_stim) -> dy/dt``, a tuple like ``y``), bound
per model at compile time by the type of its tag (a
:class:`typing.NamedTuple` instance of a class of its own, see
:func:`register_rhs`); :func:`evolve` is written out, component by
component, for the length of ``y`` when it is compiled.  Both are
generic functions: they are called from compiled code only.
:func:`full_step_for` writes out, for one model, the common case of a time
step that is a single accepted step (no loop, no exit: a loop over neurons
calling it vectorises); :func:`first_step_for` the same for a step size
between ``dt`` and ``5 dt`` too (with the step size's growth).  Both give
evolve's numbers to the last bit where they report success.
"""

from numba import njit
from numba.core import types
from numba.extending import overload

#: Shortest step (ms) the step-size control goes down to.
H_MIN = 1e-8

_RHS = {}
_CONTROL = {}


def register_rhs(tag_class, fn, control):
    """Bind :func:`rhs` for tags of ``tag_class`` to ``fn(p, y, refractory, i_stim)`` (a compiled function
    returning dy/dt as a tuple like ``y``), and choose the error control of :func:`evolve` for it:
    ``"y"`` (:math:`D_i = \\epsilon_{abs} + \\epsilon_{rel} |y_i|`, GSL's ``control_y``) or ``"yp"``
    (:math:`D_i = \\epsilon_{abs} + \\epsilon_{rel} h |y'_i|`, ``control_yp``)."""
    if control not in ("y", "yp"):
        raise ValueError(f"control={control!r} must be 'y' or 'yp'")
    _RHS[tag_class] = fn
    _CONTROL[tag_class] = control


def rhs(fam, p, y, refractory, i_stim):
    """dy/dt of the model tagged ``fam`` (``p``: its parameter row; ``i_stim``: input current, pA)."""
    return _RHS[type(fam)](p, y, refractory, i_stim)


@overload(rhs)
def _rhs_compiled(fam, p, y, refractory, i_stim):
    fn = _RHS[fam.instance_class]

    def impl(fam, p, y, refractory, i_stim):
        return fn(p, y, refractory, i_stim)

    return impl


# Fehlberg's coefficients (c_i, a_ij; b: 5th order; e: 5th minus 4th order)
A21 = 1.0 / 4.0
A31, A32 = 3.0 / 32.0, 9.0 / 32.0
A41, A42, A43 = 1932.0 / 2197.0, -7200.0 / 2197.0, 7296.0 / 2197.0
A51, A52, A53, A54 = 439.0 / 216.0, -8.0, 3680.0 / 513.0, -845.0 / 4104.0
A61, A62, A63, A64, A65 = -8.0 / 27.0, 2.0, -3544.0 / 2565.0, 1859.0 / 4104.0, -11.0 / 40.0
B1, B3, B4, B5, B6 = 16.0 / 135.0, 6656.0 / 12825.0, 28561.0 / 56430.0, -9.0 / 50.0, 2.0 / 55.0
E1 = B1 - 25.0 / 216.0
E3 = B3 - 1408.0 / 2565.0
E4 = B4 - 2197.0 / 4104.0
E5 = B5 + 1.0 / 5.0
E6 = B6


def evolve(fam, p, y, refractory, i_stim, t, t_end, h, eps_abs, eps_rel):
    """One accepted Runge-Kutta-Fehlberg step of ``y`` from ``t`` towards ``t_end`` (ms).

    ``y``: the state, a tuple of floats; ``h``: the step size to try (ms;
    the neuron's, from its last step).  Returns ``(y_new, t_new, h_next)``:
    the new state, the time reached (``t_end`` if the step reached it) and
    the step size to try next.  Compiled code only (see the module
    docstring); the steps, in the order of the generated code:

    1. ``k1 = f(y)``; the step ``hs = h``, or ``t_end - t`` when ``t + h``
       reaches ``t_end``;
    2. the stages ``k2 .. k6`` at ``y + hs * sum_j a_ij k_j``;
    3. ``y5 = y + hs * sum b_i k_i``, error ``e = hs * sum e_i k_i``;
       (control ``"yp"``: ``f(y5)`` for the tolerance);
    4. ``r = max_i |e_i| / D_i``: rejected (``r > 1.1``, ``hs > H_MIN``):
       shrink ``h`` and go to 1 with the same ``k1``; accepted: grow (see
       the module docstring) and return.
    """
    raise TypeError("rk45.evolve is called from compiled code only")


_EVOLVE_SRC = '''
def impl(fam, p, y, refractory, i_stim, t, t_end, h, eps_abs, eps_rel):
    k1 = rhs(fam, p, y, refractory, i_stim)
    while True:
        final = t + h >= t_end
        hs = t_end - t if final else h
        k2 = rhs(fam, p, ({s2}), refractory, i_stim)
        k3 = rhs(fam, p, ({s3}), refractory, i_stim)
        k4 = rhs(fam, p, ({s4}), refractory, i_stim)
        k5 = rhs(fam, p, ({s5}), refractory, i_stim)
        k6 = rhs(fam, p, ({s6}), refractory, i_stim)
        yn = ({yn})
        ye = ({ye})
{dn}
        r = 0.0
{err}
        if r > 1.1 and hs > H_MIN:
            h = max(hs * max(0.2, 0.9 * r ** -0.2), H_MIN)
            continue
        if final and hs * 5.0 <= h:
            # a step cut short to end on t_end keeps the longer size h for the next time step: here h is
            # at least the largest size the growth below can give (hs * 5), so it is not computed
            return yn, t_end, h
        if r < 0.5:
            grow = 5.0 if r < 1e-30 else min(5.0, max(1.0, 0.9 * r ** (-1.0 / 6.0)))
            h_next = hs * grow
        else:
            h_next = hs
        if final:
            return yn, t_end, max(h, h_next)
        return yn, t + hs, h_next
'''

_ERR_SRC = '''        q = abs(ye[{i}]) / (eps_abs + eps_rel * {scale})
        if not q <= r:  # (NaN too)
            r = q'''
_SCALE = {"y": "abs(yn[{i}])", "yp": "(hs * abs(dn[{i}]))"}
_DN = {"y": "", "yp": "        dn = rhs(fam, p, yn, refractory, i_stim)   # dy/dt at the new point"}


def _exprs(D, control):
    """The stages, the solution, the error estimate and the error test of a state of ``D`` components, as
    source text (the expressions of the array form, component by component, so every value is rounded as
    there)."""
    def tup(fmt):
        return ", ".join(fmt.format(i=i) for i in range(D)) + ("," if D == 1 else "")

    return dict(
        s2=tup("y[{i}] + hs * A21 * k1[{i}]"),
        s3=tup("y[{i}] + hs * (A31 * k1[{i}] + A32 * k2[{i}])"),
        s4=tup("y[{i}] + hs * (A41 * k1[{i}] + A42 * k2[{i}] + A43 * k3[{i}])"),
        s5=tup("y[{i}] + hs * (A51 * k1[{i}] + A52 * k2[{i}] + A53 * k3[{i}] + A54 * k4[{i}])"),
        s6=tup("y[{i}] + hs * (A61 * k1[{i}] + A62 * k2[{i}] + A63 * k3[{i}] + A64 * k4[{i}] + A65 * k5[{i}])"),
        yn=tup("y[{i}] + hs * (B1 * k1[{i}] + B3 * k3[{i}] + B4 * k4[{i}] + B5 * k5[{i}] + B6 * k6[{i}])"),
        ye=tup("hs * (E1 * k1[{i}] + E3 * k3[{i}] + E4 * k4[{i}] + E5 * k5[{i}] + E6 * k6[{i}])"),
        err="\n".join(_ERR_SRC.format(i=i, scale=_SCALE[control].format(i=i)) for i in range(D)),
        dn=_DN[control])


def _evolve_source(D, control):
    """The source of :func:`evolve` for a state of ``D`` components and the error control ``control``."""
    return _EVOLVE_SRC.format(**_exprs(D, control))


@overload(evolve)
def _evolve_compiled(fam, p, y, refractory, i_stim, t, t_end, h, eps_abs, eps_rel):
    if not isinstance(y, types.BaseTuple):
        return None
    scope = dict(globals())
    exec(_evolve_source(len(y), _CONTROL[fam.instance_class]), scope)  # noqa: S102 - source built above from fixed text only
    return scope["impl"]




#: The stages of one step of ``dt`` (``hs``) and its solution ``yn``, error estimate ``ye`` (and ``dn``), as
#: in :func:`evolve`: the body shared by :func:`full_step_for` and :func:`first_step_for`.
_STAGES_SRC = '''
    hs = dt - 0.0
    k1 = _f(p, y, refractory, i_stim)
    k2 = _f(p, ({s2}), refractory, i_stim)
    k3 = _f(p, ({s3}), refractory, i_stim)
    k4 = _f(p, ({s4}), refractory, i_stim)
    k5 = _f(p, ({s5}), refractory, i_stim)
    k6 = _f(p, ({s6}), refractory, i_stim)
    yn = ({yn})
    ye = ({ye})
{dn}'''

_FULL_SRC = '''
def full_step(p, y, refractory, i_stim, dt, h, eps_abs, eps_rel):''' + _STAGES_SRC + '''
{within}
    return yn, (hs * 5.0 <= h) & within
'''


def _step_source(template, tag_class, D):
    """``template`` (:data:`_FULL_SRC` or :data:`_FIRST_SRC`) filled in for ``tag_class`` with ``D`` state
    variables: the stages, the error test of :func:`evolve` (``err``: ``r``) and a conservative one
    (``within``: every component's error at most its tolerance, no division)."""
    control = _CONTROL[tag_class]
    parts = _exprs(D, control)
    parts["err"] = "\n".join(line[4:] for line in parts["err"].splitlines())
    parts["dn"] = parts["dn"][4:].replace("rhs(fam, p, ", "_f(p, ")
    parts["within"] = "    within = " + " & ".join(
        f"(abs(ye[{i}]) <= eps_abs + eps_rel * {_SCALE[control].format(i=i)})" for i in range(D))
    scope = dict(globals(), _f=_RHS[tag_class])
    exec(template.format(**parts), scope)  # noqa: S102 - source built above from fixed text only
    return njit(inline="always")(scope[template.split("(")[0].split()[-1]])


def full_step_for(tag_class, D):
    """``full_step(p, y, refractory, i_stim, dt, h, eps_abs, eps_rel) -> (y_new, ok)``: :func:`evolve`
    over a whole time step ``dt``, for the model of ``tag_class`` (``D`` state variables), where that is
    one accepted step that keeps ``h``.

    Where ``h >= 5 dt``, :func:`evolve` from ``t = 0`` to ``t_end = dt``
    tries one step of ``dt``; if that step is accepted it returns
    ``(y_new, dt, h)``.  ``ok`` is True where every component's error is
    within its tolerance (``|e_i| <= D_i``: evolve's ratio is then at most
    1, below its 1.1, so evolve accepts the step; tested without evolve's
    divisions), and ``y_new`` is then evolve's (the same operations in the
    same order).  Otherwise ``ok`` is False (a step evolve may still accept,
    with a ratio in (1, 1.1], or NaN), and the caller takes
    :func:`evolve`'s path, which decides.  The function has no loop and no
    early exit, and is inlined with the model's right-hand side, so that a
    loop over neurons calling it vectorises (written for one model rather
    than bound through an overload, which numba-cuda cannot inline).
    """
    return _step_source(_FULL_SRC, tag_class, D)


_FIRST_SRC = '''
def first_step(p, y, refractory, i_stim, dt, h, eps_abs, eps_rel):''' + _STAGES_SRC + '''
    r = 0.0
{err}
    ok = (0.0 + h >= dt) and not (r > 1.1 and hs > H_MIN)
    if hs * 5.0 <= h:
        h_next = h
    elif r < 0.5:
        h_next = max(h, hs * (5.0 if r < 1e-30 else min(5.0, max(1.0, 0.9 * r ** (-1.0 / 6.0)))))
    else:
        h_next = max(h, hs)
    return yn, ok, h_next
'''


def first_step_for(tag_class, D):
    """``first_step(p, y, refractory, i_stim, dt, h, eps_abs, eps_rel) -> (y_new, ok, h_next)``:
    :func:`evolve` over a whole time step ``dt``, for the model of ``tag_class`` (``D`` state variables),
    where that is one accepted step (``h >= dt``).

    Where ``h >= dt``, :func:`evolve` from ``t = 0`` to ``t_end = dt``
    first tries one step of ``dt``; if it is accepted, evolve returns
    ``(y_new, dt, h_next)``: then ``ok`` is True and ``y_new``, ``h_next``
    are the same (the same operations in the same order).  Otherwise ``ok``
    is False and the results are not to be used: the caller takes
    :func:`evolve`'s path.  Unlike :func:`full_step_for` it also serves
    neurons whose step size is below ``5 dt`` (it computes the growth of the
    step size), at the cost of a branch: for models whose right-hand side
    calls ``exp`` (a loop over them does not vectorise anyway).
    """
    return _step_source(_FIRST_SRC, tag_class, D)
