"""Peer-parity integrators against norse, snnTorch, SpikingJelly and sinabs.

Stored outputs (``reference/peer_<case>.npz``, written by
``reference/generate_peer_reference.py`` from the installed libraries) are
checked always; the live libraries too where they are importable.
Criteria: identical spikes, membrane within 1e-5, input gradient within
1e-4 relative; norse (forward Euler) must also match its voltages bit for bit.
"""

import os

import numpy as np
import peers
import pytest

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")


def _check(name, ref, ours):
    np.testing.assert_array_equal(ours["spikes"], ref["spikes"], err_msg=f"{name}: spikes")
    assert ref["spikes"].sum() > 0
    np.testing.assert_allclose(ours["v"], ref["v"], rtol=0, atol=1e-5, err_msg=f"{name}: membrane")
    if peers.CASES[name][0] == "norse":
        np.testing.assert_array_equal(ours["v"], ref["v"], err_msg=f"{name}: norse membrane bit for bit")
    g, gr = ours["grad_x"], ref["grad_x"]
    scale = float(np.abs(gr).max())
    assert scale > 0
    np.testing.assert_allclose(g, gr, rtol=1e-4, atol=1e-4 * scale, err_msg=f"{name}: input gradient")


@pytest.mark.parametrize("name", sorted(peers.CASES))
def test_stored_peer_outputs(name):
    path = os.path.join(HERE, f"peer_{name}.npz")
    ref = dict(np.load(path))
    x, gs, gv = peers.inputs(name)
    np.testing.assert_array_equal(ref["x"], x)  # the case definition has not drifted
    _check(name, ref, peers.run_ours(name))


@pytest.mark.parametrize("name", sorted(peers.CASES))
def test_live_peer(name):
    peer = peers.CASES[name][0]
    if not peers.available(peer):
        pytest.skip(f"{peer} is not installed")
    _check(name, peers.run_peer(name), peers.run_ours(name))
