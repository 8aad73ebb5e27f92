r"""The family-independent parts of the torch bridge's kernels.

The fused CPU kernels (:mod:`._cpu`) and the CUDA kernels (:mod:`._cuda`)
loop over time and elements; the arithmetic of one step is the family's,
declared in its :class:`~eventsim.models.family.TorchSteps` and reached
through the family's tag (a compile-time argument, bound when the call
is typed, in :mod:`eventsim.models.family`, so the kernels stay cached on
disk).  This module holds what every family shares:
the time loops of the generic family kernels, the threshold-component
loops of the point kernels, and the shapes of their coefficient rows.  It
states no neuron's arithmetic (``tests/test_structure.py`` checks it).

Point kernels (``kernel="point"``)
----------------------------------
The LIF / IF / ALIF layers (families ``iaf_psc_delta``, ``iaf_psc_exp``,
``alif``) run through the point kernels: feed-forward (SIMD blocks of
neurons on the CPU) and recurrent, forward and reverse.  Each step calls
:func:`eventsim.models.family.torch_point_forward` /
:func:`~eventsim.models.family.torch_point_backward` with the layer's
family tag, bound to the family's ``point_forward`` / ``point_backward``
(:mod:`eventsim.models.lif_torch`: the simulator's exact step and the peer
libraries' integrators, with the layout of the coefficient rows ``nat``
and ``aff``).  The kernels carry the membrane ``v``, the current ``i`` (a
layer with ``syn``), the refractory counter and ``K`` threshold
components, and pass the layer's flag vector (``LayerSpec.cfg``; the CPU
feed-forward kernels compile it as constants) to the step unread, apart
from what says which state exists (``syn``, ``adapt``, ``track``) and the
spike rule (``rule``, :func:`eventsim.models.family.spike_of`, with which
the reverse pass recomputes the spikes from the saved membrane).

Both coefficient arrays have :func:`n_rows` ``(K) = 8 + 2K`` rows: eight
read by the family's step (row 5 is its threshold ``v_th``, to which the
kernels add the components), then the decay ``p_k`` and the jump ``d_k`` of
each threshold component (a layer without adaptation has ``K = 1`` rows of
zeros).  The kernels carry the components out around the step
(:func:`decay_thresholds`, :func:`jump_thresholds`): before the threshold
test every component decays, :math:`\theta_k \leftarrow p_k \theta_k`, the
effective threshold is ``v_th + theta_0 + theta_1 + ...`` (summed in that
order, as the clock engine), and on a spike :math:`\theta_k \mathrel{+}= d_k z`.

Family kernels (``kernel="family"``)
------------------------------------
A family that declares ``forward`` / ``backward`` steps (e.g. the leaky
integrator of :mod:`eventsim.models.li`) runs through
:func:`family_run_forward` and :func:`family_run_backward`: the time loop
of one element, generic over the family's tag
(:func:`eventsim.models.family.torch_forward` binds the family's own step),
shared by the CPU kernels (a ``prange`` over the elements) and the CUDA
kernels (a grid-stride loop).  Their arrays: the input ``x[T, M]`` and
output ``y[T, M]`` (``M = B N`` elements, element ``j`` is neuron ``j mod
N``), the state ``s[S, M]`` and the coefficient rows ``c[R, N]``.
"""

from __future__ import annotations

from numba import njit

from ..models.dynamics import RESET_SUBTRACT, RESET_VALUE
from ..models.family import (SPIKE_GE, SPIKE_GT, SPIKE_MULTI, spike_of, torch_backward, torch_forward,
                             torch_point_backward, torch_point_forward)
from ..models.lif import TORCH_ROWS

_jit = njit(cache=True, error_model="numpy")

# spike rules (eventsim.models.family.spike_of)
GE = SPIKE_GE      # z = v >= thr
GT = SPIKE_GT      # z = v > thr
MULTI = SPIKE_MULTI  # sinabs MultiSpike: z = trunc(v / thr) for v > 0

# flag vector layout (cfg, int64)
CFG_MODE, CFG_SYN, CFG_RESET, CFG_RULE, CFG_ADAPT, CFG_DETACH, CFG_SURR, CFG_REF, CFG_TRACK = range(9)
N_CFG = 9
#: rows of the coefficient arrays before the threshold components
N_FIXED = len(TORCH_ROWS)
#: rows of ``nat`` and ``aff`` with one threshold component (a layer without adaptation)
N_NAT = N_AFF = 10
#: rows of ``aff`` and of the reverse pass's parameter gradient (``dpar``)
ROW_VTH, ROW_VRESET, ROW_THETA = 6, 7, 8

__all__ = ["torch_point_forward", "torch_point_backward", "spike_of", "decay_thresholds", "jump_thresholds",
           "family_run_forward", "family_run_backward", "n_rows", "n_components", "RESET_VALUE", "RESET_SUBTRACT"]


def n_rows(K):
    """Rows of ``nat`` / ``aff`` for ``K`` threshold components."""
    return N_FIXED + 2 * K


def n_components(rows):
    """``K`` of coefficient arrays with ``rows`` rows (ValueError unless ``rows = 8 + 2K``, ``K >= 1``)."""
    K, odd = divmod(int(rows) - N_FIXED, 2)
    if odd or K < 1:
        raise ValueError(f"coefficient arrays have {rows} rows; expected 8 + 2K (K >= 1 threshold components)")
    return K


@njit(inline="always", cache=True, error_model="numpy")
def decay_thresholds(th, j, p, q, K, vth):
    """Decay the ``K`` components ``th[k, j]`` by ``p[k, q]``; return ``vth + th[0, j] + th[1, j] + ...``.

    The sum runs in the clock engine's order, so the effective threshold is
    the simulator's bit for bit.
    """
    thr = vth
    for k in range(K):
        t = p[k, q] * th[k, j]
        th[k, j] = t
        thr += t
    return thr


@njit(inline="always", cache=True, error_model="numpy")
def jump_thresholds(th, j, d, q, K, z):
    """``th[k, j] += d[k, q] * z`` for every component (after a spike ``z > 0``)."""
    for k in range(K):
        th[k, j] = th[k, j] + d[k, q] * z


@_jit
def family_run_forward(fam, j, N, x, s, c, y):
    """All ``T`` steps of element ``j`` of a family layer: ``y[t, j]``; ``s[:, j]`` ends in the final state."""
    n = j % N
    for t in range(x.shape[0]):
        y[t, j] = torch_forward(fam, s, j, c, n, x[t, j])


@_jit
def family_run_backward(fam, j, N, x, s, c, gy, gs, gx, dc, traj):
    """Reverse pass of element ``j`` of a family layer.

    Recomputes the forward trajectory from the initial state ``s[:, j]``
    (overwritten) into ``traj[t, :, j]`` (the state before step ``t``), then
    runs the family's reverse step backwards in time: ``gx[t, j]``, the
    gradient on the initial state in ``gs[:, j]`` (on entry: on the final
    state) and the gradients on the coefficient rows added to ``dc[:, j]``.
    """
    n = j % N
    T = x.shape[0]
    S = s.shape[0]
    for t in range(T):
        for k in range(S):
            traj[t, k, j] = s[k, j]
        torch_forward(fam, s, j, c, n, x[t, j])
    for tt in range(T):
        t = T - 1 - tt
        gx[t, j] = torch_backward(fam, traj[t], j, c, n, x[t, j], gy[t, j], gs, dc)
