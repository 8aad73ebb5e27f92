"""The torch bridge's family kernels (generic over a family's tag) compile to PTX with numba-cuda's real
pipeline, for every family that declares torch steps and both precisions (no GPU needed, NVVM only)."""

import importlib.util
import os
import types as pytypes

import numba
import pytest
from numba.core import types

from eventsim.models import family as fam

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda is not installed"),
    pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"),
                       reason="NUMBA_ENABLE_CUDASIM is set: the simulator cannot compile to PTX"),
]


def _ptx(pyfunc, sig, monkeypatch):
    from numba import cuda
    from numba.cuda import dispatcher

    # numba-cuda asks the current device for its compute capability when it compiles a device function
    # (a CPU dispatcher called from a kernel); there may be no GPU here, so the answer is supplied
    monkeypatch.setattr(dispatcher, "get_current_device", lambda: pytypes.SimpleNamespace(compute_capability=(8, 0)))

    try:
        return cuda.compile_ptx(pyfunc, sig, cc=(8, 0))[0]
    except numba.core.errors.TypingError:
        raise
    except Exception as exc:  # noqa: BLE001 - a missing toolchain, not a defect of the kernels
        if "NVVM" in type(exc).__name__ or "nvvm" in str(exc).lower() or "libdevice" in str(exc).lower():
            pytest.skip(f"numba-cuda cannot compile to PTX here ({type(exc).__name__})")
        raise


@pytest.mark.parametrize("dtype", [types.float32, types.float64], ids=str)
@pytest.mark.parametrize("family", fam.torch_families(), ids=lambda f: f.name)
def test_family_kernels_compile(family, dtype, monkeypatch):
    from eventsim.torch import _cuda

    a2 = types.Array(dtype, 2, "C")
    a3 = types.Array(dtype, 3, "C")
    tag = numba.typeof(family.tag)
    fwd = _ptx(_cuda.family_forward_k.py_func, (tag, a2, a2, a2, types.int64, a2), monkeypatch)
    bwd = _ptx(_cuda.family_backward_k.py_func, (tag, a2, a2, a2, types.int64, a2, a2, a2, a2, a3),
               monkeypatch)
    for ptx in (fwd, bwd):
        assert ".target sm_80" in ptx and ".entry" in ptx
        assert ".local" not in ptx.split(".entry", 1)[1]  # no stack frame: nothing allocated per thread
