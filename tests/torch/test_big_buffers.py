"""Large CPU buffers (spikes, traces, input gradients) come from a pool of reused memory maps.

The pool keeps at most the high-water mark of the bytes in use at once, so a
training loop's resident memory stays at its working set instead of growing
call after call (glibc keeps freed large blocks in its heap); outputs that
are alive are never reused.
"""

import gc

import pytest
import torch

import eventsim.torch as est
from eventsim.torch import functional as F


@pytest.fixture
def pool(monkeypatch):
    monkeypatch.setattr(F, "HUGE_PAGE_BYTES", 1024)  # small tensors go through the pool too
    p = F.BigBuffers()
    monkeypatch.setattr(F, "BIG_BUFFERS", p)
    return p


def test_live_outputs_are_distinct_and_freed_ones_reused(pool):
    layer = est.LIF(tau_m=5.0)
    x = (torch.randn(30, 4, 20) + 1.5).requires_grad_()
    s1, _ = layer(x)
    s2, _ = layer(x * 1.1)
    assert s1.data_ptr() != s2.data_ptr() and s1.sum() > 0 and not torch.equal(s1, s2)
    ref1, ref2 = s1.clone(), s2.clone()
    (g,) = torch.autograd.grad(s1.sum() + s2.sum(), x)
    assert torch.equal(s1, ref1) and torch.equal(s2, ref2)  # the gradients' buffers did not overwrite them
    del s1, g
    gc.collect()
    kept, mapped = pool.kept, pool.in_use + pool.kept
    assert kept > 0
    with torch.no_grad():
        s3, _ = layer(x)
    nbytes = s3.numel() * s3.element_size()
    assert pool.kept == kept - nbytes and pool.in_use + pool.kept == mapped  # a kept map reused, none added
    assert torch.equal(s3, ref1)  # and fully rewritten


def test_memory_stays_at_the_high_water_mark(pool):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), est.LIF(return_state=False),
                                torch.nn.Linear(16, 4), est.LIF(return_state=False))
    x = torch.rand(40, 3, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    marks = []
    for _ in range(6):
        loss = model(x * 4).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        del loss
        gc.collect()
        marks.append((pool.in_use, pool.kept, pool.high_water))
    assert marks[0][2] > 0 and all(m[2] == marks[0][2] for m in marks)  # the working set does not grow
    assert all(m[0] == 0 and 0 < m[1] <= m[2] for m in marks)
    pool.clear()
    assert pool.kept == 0
