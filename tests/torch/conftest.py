"""Shared set-up of the torch bridge tests.

The tests run the generic (run-time flag) kernels, compiled once per dtype,
instead of one specialised kernel per kind of layer: the results are the
same bit for bit (``test_modules.py::test_specialized_kernels_match_generic``
checks it) and the suite starts much faster.
"""

import os
import sys

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))

from eventsim.torch import functional  # noqa: E402

functional.SPECIALIZE = False
torch.set_num_threads(min(2, torch.get_num_threads()))
