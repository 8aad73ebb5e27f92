r"""Adaptive embedded Runge-Kutta integration for the neuron models whose dynamics are not linear.

Conductance-based synapses and AdEx's exponential spike current make the
subthreshold equations non-linear, so no exact propagator exists.  These
models are integrated, neuron by neuron, with the Runge-Kutta-Fehlberg 4(5)
pair (Fehlberg 1969; the method of NEST's ``iaf_cond_*`` and ``aeif_*``
models, through GSL's ``rkf45``) under per-neuron step-size control inside
each time step ``dt``:

* one :func:`evolve` call advances ``y`` from ``t`` by at most ``h`` (the
  neuron's current step size, kept between calls and between time steps)
  and never past ``t_end``.  It takes the fifth-order solution and
  estimates the local error as its difference from the embedded
  fourth-order one;
* the error is judged per component against
  :math:`D_i = \epsilon_{abs} + \epsilon_{rel}(a_y |y_i| + a_{dy} h |y'_i|)`:
  with :math:`r = \max_i |e_i| / D_i`, a step with :math:`r > 1.1` is
  rejected and retried with :math:`h \cdot \max(0.2, 0.9 r^{-1/5})`; an
  accepted step with :math:`r < 0.5` lets the next one grow to
  :math:`h \cdot \min(5, \max(1, 0.9 r^{-1/6}))`.  These are the standard
  controls; NEST uses :math:`a_y = 1, a_{dy} = 0` with
  :math:`\epsilon_{abs} = 10^{-3}` (``iaf_cond_*``) and
  :math:`a_y = 0, a_{dy} = 1` with
  :math:`\epsilon_{abs} = \epsilon_{rel} = 10^{-6}` (``aeif_*``,
  ``gsl_error_tol``), and so do the models of :mod:`.conductance`;
* a step never shrinks below :data:`H_MIN` ms (it is then accepted as it
  is: a neuron cannot stall the run);
* synaptic input, spikes and the refractory clamp act at step boundaries,
  as in NEST (see each model).

Accuracy: the error per accepted step is held to the tolerance above, so a
voltage trace follows the exact solution to roughly that tolerance per
step (accumulating at most linearly over a stretch without spikes); spike
times sit on the ``dt`` grid.  Against NEST 3.10 the stored single-neuron
traces agree to the figures given in ``tests/test_conductance_math.py``.

The model supplies its right-hand side through :func:`rhs`, bound per model
at compile time by the type of its tag (a :class:`typing.NamedTuple`
instance of a class of its own, see :func:`register_rhs`), so the
integrator is compiled once per model and cached on disk.  Work arrays:
``ws`` of shape ``(8, D)`` float64 per thread (``D`` state variables).
"""

from numba import njit
from numba.extending import overload

_jit = njit(inline="always", cache=True)

#: Shortest step (ms) the step-size control goes down to.
H_MIN = 1e-8

_RHS = {}


def register_rhs(tag_class, fn):
    """Bind :func:`rhs` for tags of ``tag_class`` to ``fn(p, y, refractory, i_stim, f)`` (a compiled function
    that writes dy/dt into ``f``)."""
    _RHS[tag_class] = fn


def rhs(fam, p, y, refractory, i_stim, f):
    """dy/dt of the model tagged ``fam`` into ``f`` (``p``: its parameters; ``i_stim``: input current, pA)."""
    return _RHS[type(fam)](p, y, refractory, i_stim, f)


@overload(rhs)
def _rhs_compiled(fam, p, y, refractory, i_stim, f):
    fn = _RHS[fam.instance_class]

    def impl(fam, p, y, refractory, i_stim, f):
        fn(p, y, refractory, i_stim, f)

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


@_jit
def evolve(fam, p, y, refractory, i_stim, t, t_end, h, ws, eps_abs, eps_rel, a_y, a_dy):
    """One accepted Runge-Kutta-Fehlberg step of ``y`` (updated in place) from ``t`` towards ``t_end`` (ms).

    ``h``: the step size to try (ms; the neuron's, from its last step).
    Returns ``(t_new, h_next)``: the time reached (``t_end`` if the step
    reached it) and the step size to try next.  ``ws``: float64 work array
    ``(8, D)``.
    """
    D = y.shape[0]
    k1, k2, k3, k4, k5, k6, yt, ye = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6], ws[7]
    rhs(fam, p, y, refractory, i_stim, k1)
    while True:
        final = t + h >= t_end
        hs = t_end - t if final else h
        for i in range(D):
            yt[i] = y[i] + hs * A21 * k1[i]
        rhs(fam, p, yt, refractory, i_stim, k2)
        for i in range(D):
            yt[i] = y[i] + hs * (A31 * k1[i] + A32 * k2[i])
        rhs(fam, p, yt, refractory, i_stim, k3)
        for i in range(D):
            yt[i] = y[i] + hs * (A41 * k1[i] + A42 * k2[i] + A43 * k3[i])
        rhs(fam, p, yt, refractory, i_stim, k4)
        for i in range(D):
            yt[i] = y[i] + hs * (A51 * k1[i] + A52 * k2[i] + A53 * k3[i] + A54 * k4[i])
        rhs(fam, p, yt, refractory, i_stim, k5)
        for i in range(D):
            yt[i] = y[i] + hs * (A61 * k1[i] + A62 * k2[i] + A63 * k3[i] + A64 * k4[i] + A65 * k5[i])
        rhs(fam, p, yt, refractory, i_stim, k6)
        for i in range(D):
            yt[i] = y[i] + hs * (B1 * k1[i] + B3 * k3[i] + B4 * k4[i] + B5 * k5[i] + B6 * k6[i])
            ye[i] = hs * (E1 * k1[i] + E3 * k3[i] + E4 * k4[i] + E5 * k5[i] + E6 * k6[i])
        if a_dy != 0.0:
            rhs(fam, p, yt, refractory, i_stim, k2)  # dy/dt at the new point
        r = 0.0
        for i in range(D):
            tol = eps_abs + eps_rel * (a_y * abs(yt[i]) + (a_dy * hs * abs(k2[i]) if a_dy != 0.0 else 0.0))
            q = abs(ye[i]) / tol
            if not q <= r:  # (NaN too)
                r = q
        if r > 1.1 and hs > H_MIN:
            h = max(hs * max(0.2, 0.9 * r ** -0.2), H_MIN)
            continue
        for i in range(D):
            y[i] = yt[i]
        if r < 0.5:
            grow = 5.0 if r < 1e-30 else min(5.0, max(1.0, 0.9 * r ** (-1.0 / 6.0)))
            h_next = hs * grow
        else:
            h_next = hs
        if final:
            # a step cut short to end on t_end keeps the longer size for the next time step
            return t_end, max(h, h_next)
        return t + hs, h_next
