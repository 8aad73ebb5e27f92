"""Write the stored peer outputs ``peer_<case>.npz`` used by ``tests/torch/test_parity.py``.

Run it in an environment with torch and the peer libraries (norse,
snntorch, sinabs, spikingjelly) installed, from the repository root::

    python tests/torch/reference/generate_peer_reference.py [case ...]

Each file holds the case's inputs (``x, gs, gv``) and the peer's
``spikes``, ``v`` (membrane after every step) and ``grad_x`` (gradient of
``sum(spikes * gs) + sum(v * gv)``), all float32 ``[T, B, N]``, plus the
peer's name and version.  Cases whose library is missing are skipped.
"""

import importlib.metadata
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import peers  # noqa: E402

DIST = {"norse": "norse", "snntorch": "snntorch", "spikingjelly": "spikingjelly", "sinabs": "sinabs"}


def main(names):
    import torch

    torch.set_num_threads(1)
    for name in names or sorted(peers.CASES):
        peer = peers.CASES[name][0]
        if not peers.available(peer):
            print(f"skip {name}: {peer} is not installed")
            continue
        out = peers.run_peer(name)
        x, gs, gv = peers.inputs(name)
        version = importlib.metadata.version(DIST[peer])
        path = os.path.join(HERE, f"peer_{name}.npz")
        tmp = path + ".tmp.npz"
        np.savez_compressed(tmp, x=x, gs=gs, gv=gv, peer=np.array(peer), version=np.array(version),
                            torch_version=np.array(torch.__version__), **out)
        os.replace(tmp, path)
        rate = float(out["spikes"].astype(bool).mean())
        print(f"{name}: {peer} {version}, spike rate {rate:.3f} -> {os.path.basename(path)}")


if __name__ == "__main__":
    main(sys.argv[1:])
