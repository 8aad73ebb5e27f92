r"""Spike-timing-dependent plasticity rules (pair-based and triplet, all-to-all, NEST's conventions).

A rule is data: a frozen dataclass of parameters (validated on construction)
that packs into one row of a float64 table, plus scalar functions of that
row compiled into the engine.  The engine (``engines/plastic.py``) names no
rule and no rule-specific column; the contract between the two is:

* the traces: a rule declares ``pre_taus`` and ``post_taus``, the time
  constants (ms) of its presynaptic and postsynaptic traces (1 to
  ``MAX_TRACES`` of each; the first of each is ``K_+`` and ``K_-`` below).
  :meth:`_Rule.pack` stores their counts and time constants in the row, and
  the engine keeps ``MAX_TRACES`` slots per rule, of which it updates and
  reads the declared ones only (:func:`n_pre`, :func:`n_post`);
* the trace dynamics: each trace decays exponentially between spikes and
  jumps by 1 at its neuron's spike: :func:`pre_decay`, :func:`post_decay`
  (the factor :math:`e^{\Delta t / \tau}` over ``dt_ms <= 0``) and
  :func:`pre_after_spike`, :func:`post_after_spike` (the value just after a
  spike, from the value just after the previous one);
* the weight updates: :func:`facilitate` at each postsynaptic spike (seen
  at the synapse), given ``K_+`` decayed to it and the second postsynaptic
  trace's value stored just after that spike (0 for a rule with one);
  :func:`depress` at each presynaptic spike, given ``K_-`` and the second
  presynaptic trace just before the spike (0 for a rule with one).

A new rule is a dataclass here, a new ``KIND`` and its branches in these
functions, in this file only.

Semantics (NEST 3.10's ``stdp_synapse`` and ``stdp_pl_synapse_hom``, the whole
delay dendritic, as NEST's default).  Times are spike stamps in ms; a synapse
from ``i`` to ``n`` has delay ``d`` (ms).  Each synapse keeps ``K_+`` (the
presynaptic trace, time constant ``tau_plus``) and ``t_last`` (its last
presynaptic spike; both start at 0).  Each neuron with plastic input keeps
the history of its spikes, each entry with ``K_-`` just after that spike
(``K_- <- K_- exp((t_prev - t) / tau_minus) + 1``).  When a presynaptic spike
stamped ``t`` is delivered through the synapse:

1. for every postsynaptic spike ``t_j`` with ``t_last - d < t_j <= t - d``,
   in time order: ``w <- facilitate(w, K_+ exp((t_last - (t_j + d)) / tau_plus))``;
2. ``w <- depress(w, K_-(t - d))``, with ``K_-(t')`` the trace of the last
   postsynaptic spike strictly before ``t'``, decayed to ``t'`` (0 if none);
3. the spike is delivered with the new weight ``w``;
4. ``K_+ <- K_+ exp((t_last - t) / tau_plus) + 1`` and ``t_last <- t``.

All synapses of one sender and one rule share ``K_+`` and ``t_last`` (they
are functions of the sender's spike train), so the engine keeps them per
sender.

Connections made between runs (NEST: ``Connect`` between two ``Simulate``
calls): a new synapse starts with ``K_+ = 0`` and ``t_last = 0``, so its
first presynaptic spike facilitates by 0 whatever the sender did before; the
engine gives the projection a rule row of its own (its ``generation``, the
step it was made at, is part of the row's key) with those traces.  On the
postsynaptic side NEST updates a neuron's ``K_-`` and history only while it
has STDP input (``ArchivingNode``: nothing before its first such
connection, so spikes before it never depress): eventsim keeps the traces
of every rule row on every neuron with plastic input from that moment on; a
new row takes them from the first row of the same time constant, and a time
constant first used after a neuron got plastic input is refused on that
neuron (its values would need spikes no longer kept).  Checked against
NEST 3.10 on three networks whose plastic connections are made in two
batches, 400 ms apart (``tests/nest_stdp_reference``: ``late_*``).

``STDP`` (Guetig et al. 2003), with normalised weights :math:`\tilde w = w / w_{max}`:

.. math:: \tilde w \leftarrow \min(1, \tilde w + \lambda (1 - \tilde w)^{\mu_+} K_+), \qquad
          \tilde w \leftarrow \max(0, \tilde w - \alpha \lambda \tilde w^{\mu_-} K_-)

(``mu = 0``: additive, ``mu = 1``: multiplicative).  ``STDPPowerLaw``
(Morrison et al. 2007, NEST's hpc_benchmark rule):

.. math:: w \leftarrow w + \lambda w^{\mu} K_+, \qquad w \leftarrow \max(0, w - \lambda \alpha w K_-)

with ``lambda`` in the weight's unit to the power ``1 - mu``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

import numpy as np
from numba import njit

#: Most presynaptic (and postsynaptic) traces a rule may declare: the engine keeps this many slots per rule.
MAX_TRACES = 2

#: Row layout of the packed rule table (float64 [n_rules, N_RULE_PARAMS]): the kind, the trace counts,
#: the presynaptic traces' time constants (``PRE_TAU + m``, ``TAU_PLUS`` the first, ``TAU_X`` the
#: triplet rule's second), the postsynaptic ones (``POST_TAU + m``: ``TAU_MINUS``, ``TAU_Y``), then the
#: rules' parameters.
(KIND, N_PRE, N_POST, TAU_PLUS, TAU_X, TAU_MINUS, TAU_Y, INV_TAU_PLUS, LAM, ALPHA, MU_PLUS, MU_MINUS, W_MAX,
 A2_PLUS, A2_MINUS, A3_PLUS, A3_MINUS) = range(17)
N_RULE_PARAMS = 17
PRE_TAU = TAU_PLUS
POST_TAU = TAU_MINUS

#: Rule kinds.
STDP_GUETIG = 0
STDP_POWER_LAW = 1
STDP_TRIPLET = 2


def _number(cls, name, value, rule):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{cls}: {name}={value!r} must be a finite number")
    if rule == "positive" and not value > 0:
        raise ValueError(f"{cls}: {name}={value!r} must be > 0")
    if rule == "nonnegative" and not value >= 0:
        raise ValueError(f"{cls}: {name}={value!r} must be >= 0")
    return float(value)


class _Rule:
    """Common parts of the plasticity rules (parameters are plain floats, validated once)."""

    _rules = {}

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, _number(type(self).__name__, f.name, getattr(self, f.name),
                                                     self._rules.get(f.name)))

    @property
    def tau_minus_ms(self):
        """Time constant of the postsynaptic trace this rule reads (ms)."""
        return self.tau_minus

    @property
    def pre_taus(self):
        """Time constants of the presynaptic traces (ms): ``K_+`` first."""
        return (self.tau_plus,)

    @property
    def post_taus(self):
        """Time constants of the postsynaptic traces (ms): ``K_-`` first."""
        return (self.tau_minus,)

    def pack(self):
        """This rule's row of the engine's rule table (the unused trace slots hold the first trace's time
        constant, which keeps them finite; the engine does not read them)."""
        pre, post = self.pre_taus, self.post_taus
        if not (1 <= len(pre) <= MAX_TRACES and 1 <= len(post) <= MAX_TRACES):
            raise ValueError(f"{type(self).__name__}: pre_taus={pre!r}, post_taus={post!r}: each must hold 1 to "
                             f"{MAX_TRACES} time constants")
        row = np.zeros(N_RULE_PARAMS)
        row[KIND] = self.kind
        row[N_PRE] = len(pre)
        row[N_POST] = len(post)
        for m in range(MAX_TRACES):
            row[PRE_TAU + m] = pre[m] if m < len(pre) else pre[0]
            row[POST_TAU + m] = post[m] if m < len(post) else post[0]
        row[INV_TAU_PLUS] = 1.0 / self.tau_plus
        for col, name in ((LAM, "lam"), (ALPHA, "alpha"), (MU_PLUS, "mu_plus"), (MU_MINUS, "mu_minus"),
                          (W_MAX, "w_max"), (A2_PLUS, "a2_plus"), (A2_MINUS, "a2_minus"), (A3_PLUS, "a3_plus"),
                          (A3_MINUS, "a3_minus")):
            row[col] = getattr(self, name, 0.0)
        if self.kind == STDP_POWER_LAW:
            row[MU_PLUS] = self.mu
        return row

    def check_weights(self, w):
        """Refuse initial weights outside the rule's bounds (ValueError naming ``weight``)."""
        raise NotImplementedError


@dataclass(frozen=True)
class STDP(_Rule):
    """NEST's ``stdp_synapse`` (Guetig et al. 2003): soft-bounded pair STDP on normalised weights.

    Parameters
    ----------
    tau_plus : float
        Time constant of the presynaptic trace (ms), > 0.
    tau_minus : float
        Time constant of the postsynaptic trace (ms), > 0 (NEST keeps it on
        the neuron; here it belongs to the rule, and a neuron keeps one trace
        per distinct value its incoming rules need).
    lam : float
        Learning rate (dimensionless), >= 0.
    alpha : float
        Ratio of depression to facilitation, >= 0.
    mu_plus, mu_minus : float
        Weight-dependence exponents, >= 0 (0: additive, 1: multiplicative).
    w_max : float
        Largest weight (the unit of the synapse: mV or pA), not 0; its sign is
        the sign of every weight of the projection, whose weights must lie
        between 0 and ``w_max``.
    """

    tau_plus: float = 20.0
    tau_minus: float = 20.0
    lam: float = 0.01
    alpha: float = 1.0
    mu_plus: float = 1.0
    mu_minus: float = 1.0
    w_max: float = 100.0

    kind = STDP_GUETIG
    _rules = {"tau_plus": "positive", "tau_minus": "positive", "lam": "nonnegative", "alpha": "nonnegative",
              "mu_plus": "nonnegative", "mu_minus": "nonnegative"}

    def __post_init__(self):
        super().__post_init__()
        if self.w_max == 0:
            raise ValueError("STDP: w_max=0.0 must not be 0 (its sign is the weights' sign)")

    def check_weights(self, w):
        lo, hi = sorted((0.0, self.w_max))
        bad = (w < lo) | (w > hi)
        if np.any(bad):
            raise ValueError(f"weight={float(w[bad][0])!r} lies outside [0, w_max={self.w_max}] (STDP weights "
                             "have the sign of w_max and at most its magnitude)")


@dataclass(frozen=True)
class STDPPowerLaw(_Rule):
    """NEST's ``stdp_pl_synapse_hom`` (Morrison et al. 2007): power-law facilitation, linear depression.

    Parameters
    ----------
    tau_plus, tau_minus : float
        Trace time constants (ms), > 0.
    lam : float
        Learning rate, >= 0 (weight unit to the power ``1 - mu``).
    alpha : float
        Ratio of depression to facilitation, >= 0.
    mu : float
        Exponent of the weight dependence of facilitation, >= 0.

    Weights must be >= 0 (excitatory synapses, as in NEST's model).
    """

    tau_plus: float = 20.0
    tau_minus: float = 20.0
    lam: float = 0.1
    alpha: float = 1.0
    mu: float = 0.4

    kind = STDP_POWER_LAW
    _rules = {"tau_plus": "positive", "tau_minus": "positive", "lam": "nonnegative", "alpha": "nonnegative",
              "mu": "nonnegative"}

    def check_weights(self, w):
        if np.any(w < 0):
            raise ValueError(f"weight={float(w[w < 0][0])!r} must be >= 0 for STDPPowerLaw synapses")


@dataclass(frozen=True)
class TripletSTDP(_Rule):
    r"""NEST's ``stdp_triplet_synapse`` (Pfister & Gerstner 2006, all-to-all interactions).

    Two presynaptic traces (``r_1``: ``tau_plus``, ``r_2``: ``tau_x``) and
    two postsynaptic ones (``o_1``: ``tau_minus``, ``o_2``: ``tau_y``).  At a
    postsynaptic spike (seen at the synapse ``d`` later) :math:`|w| \leftarrow
    \min(|w_{max}|, |w| + r_1 (A_2^+ + A_3^+ o_2))`, with ``o_2`` just before
    that spike; at a presynaptic spike :math:`|w| \leftarrow \max(0, |w| - o_1
    (A_2^- + A_3^- r_2))`, with ``r_2`` just before it; weights keep the sign
    of ``w_max``.

    Parameters
    ----------
    tau_plus, tau_x : float
        Presynaptic trace time constants (ms), > 0 (NEST: ``tau_plus``, ``tau_plus_triplet``).
    tau_minus, tau_y : float
        Postsynaptic trace time constants (ms), > 0 (NEST keeps them on the
        neuron: ``tau_minus``, ``tau_minus_triplet``).
    a2_plus, a2_minus, a3_plus, a3_minus : float
        Pair and triplet amplitudes (weight unit), >= 0 (NEST: ``Aplus``,
        ``Aminus``, ``Aplus_triplet``, ``Aminus_triplet``).
    w_max : float
        Bound of ``|w|``, not 0; its sign is the weights' sign.
    """

    tau_plus: float = 16.8
    tau_x: float = 101.0
    tau_minus: float = 33.7
    tau_y: float = 125.0
    a2_plus: float = 5e-10
    a2_minus: float = 7e-3
    a3_plus: float = 6.2e-3
    a3_minus: float = 2.3e-4
    w_max: float = 100.0

    kind = STDP_TRIPLET
    _rules = {"tau_plus": "positive", "tau_x": "positive", "tau_minus": "positive", "tau_y": "positive",
              "a2_plus": "nonnegative", "a2_minus": "nonnegative", "a3_plus": "nonnegative",
              "a3_minus": "nonnegative"}

    @property
    def pre_taus(self):
        return (self.tau_plus, self.tau_x)

    @property
    def post_taus(self):
        return (self.tau_minus, self.tau_y)

    def __post_init__(self):
        super().__post_init__()
        if self.w_max == 0:
            raise ValueError("TripletSTDP: w_max=0.0 must not be 0 (its sign is the weights' sign)")

    def check_weights(self, w):
        bad = (np.abs(w) > abs(self.w_max)) | (w * self.w_max < 0)
        if np.any(bad):
            raise ValueError(f"weight={float(w[bad][0])!r} lies outside [0, w_max={self.w_max}] (TripletSTDP weights "
                             "have the sign of w_max and at most its magnitude)")


RULES = (STDP, STDPPowerLaw, TripletSTDP)


# ---------------------------------------------------------------------------- the rules' dynamics
@njit(cache=True, inline="always")
def n_pre(p):
    """Number of presynaptic traces of rule row ``p``."""
    return np.int64(p[N_PRE])


@njit(cache=True, inline="always")
def n_post(p):
    """Number of postsynaptic traces of rule row ``p``."""
    return np.int64(p[N_POST])


@njit(cache=True, inline="always")
def pre_decay(dt_ms, m, p):
    """``exp(dt_ms / tau)`` of presynaptic trace ``m`` of rule row ``p`` as the rule computes it
    (``dt_ms <= 0``; ``STDPPowerLaw``'s ``K_+``: by its stored inverse, as NEST)."""
    if m == 0 and p[KIND] == STDP_POWER_LAW:
        return math.exp(dt_ms * p[INV_TAU_PLUS])
    return math.exp(dt_ms / p[PRE_TAU + m])


@njit(cache=True, inline="always")
def post_decay(dt_ms, m, p):
    """``exp(dt_ms / tau)`` of postsynaptic trace ``m`` of rule row ``p`` (``dt_ms <= 0``), computed as
    ``exp(dt_ms * (1 / tau))``."""
    return math.exp(dt_ms * (1.0 / p[POST_TAU + m]))


@njit(cache=True, inline="always")
def pre_after_spike(value, dt_ms, m, p):
    """Presynaptic trace ``m`` just after a spike: ``value`` (just after the previous spike, ``-dt_ms``
    earlier) decayed, plus 1."""
    return value * pre_decay(dt_ms, m, p) + 1.0


@njit(cache=True, inline="always")
def post_after_spike(value, dt_ms, m, p):
    """Postsynaptic trace ``m`` just after a spike: ``value`` (just after the previous spike, ``-dt_ms``
    earlier) decayed, plus 1."""
    return value * post_decay(dt_ms, m, p) + 1.0


@njit(cache=True, inline="always")
def _pow(x, mu):
    """``x ** mu`` as ``pow`` computes it, without the call for the exponents 0 and 1 (``pow(x, 1) = x``
    and ``pow(x, 0) = 1`` exactly, for every ``x``: the additive and multiplicative rules)."""
    if mu == 1.0:
        return x
    if mu == 0.0:
        return 1.0
    return math.pow(x, mu)


@njit(cache=True, inline="always")
def facilitate(w, kplus, post2, p):
    """Weight after facilitation by the presynaptic trace value ``kplus`` (rule row ``p``); ``post2``: the
    second postsynaptic trace stored just after the postsynaptic spike (the triplet rule's ``o_2``, which
    reads it just before the spike: the stored value minus 1, as NEST), 0 for a rule with one."""
    if p[KIND] == STDP_TRIPLET:
        new_w = abs(w) + kplus * (p[A2_PLUS] + p[A3_PLUS] * (post2 - 1.0))
        return math.copysign(new_w if new_w < abs(p[W_MAX]) else p[W_MAX], p[W_MAX])
    if p[KIND] == STDP_POWER_LAW:
        return w + (p[LAM] * _pow(w, p[MU_PLUS]) * kplus)
    norm_w = (w / p[W_MAX]) + (p[LAM] * _pow(1.0 - (w / p[W_MAX]), p[MU_PLUS]) * kplus)
    return norm_w * p[W_MAX] if norm_w < 1.0 else p[W_MAX]


@njit(cache=True, inline="always")
def depress(w, kminus, pre2, p):
    """Weight after depression by the postsynaptic trace value ``kminus`` (rule row ``p``); ``pre2``: the
    second presynaptic trace just before the presynaptic spike (the triplet rule's ``r_2``), 0 for a rule
    with one."""
    if p[KIND] == STDP_TRIPLET:
        new_w = abs(w) - kminus * (p[A2_MINUS] + p[A3_MINUS] * pre2)
        return math.copysign(new_w if new_w > 0.0 else 0.0, p[W_MAX])
    if p[KIND] == STDP_POWER_LAW:
        new_w = w - (p[LAM] * p[ALPHA] * w * kminus)
        return new_w if new_w > 0.0 else 0.0
    norm_w = (w / p[W_MAX]) - (p[ALPHA] * p[LAM] * _pow(w / p[W_MAX], p[MU_MINUS]) * kminus)
    return norm_w * p[W_MAX] if norm_w > 0.0 else 0.0
