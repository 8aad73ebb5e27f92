"""Every ```python block of README.md runs as written, in a fresh interpreter.

The blocks are read from README.md itself, so the README cannot rot. Markers
in the README source, an HTML comment on the line before a block's fence
(invisible on the rendered page):

* ``<!-- readme-test: skip (reason) -->``: not run, for blocks that need a
  CUDA GPU or an optional peer simulator; the reason is shown by pytest;
* ``<!-- readme-test: continues -->``: the block continues the previous
  one (they run together, in order).

Blocks that use ``eventsim.torch`` run when PyTorch is installed.
"""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
_MARKER = re.compile(r"<!--\s*readme-test:\s*(?P<what>skip|continues)\b\s*(?:\((?P<reason>[^)]*)\))?\s*-->")


class Block(NamedTuple):
    line: int          #: 1-based line of the opening fence of the first part
    code: str
    skip: str | None   #: the skip reason, or None


def extract(text):
    """The ```python blocks of ``text`` (markdown) with their markers, continuations joined."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```python":
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if j == len(lines):
            raise ValueError(f"README.md line {start + 1}: ```python block is not closed")
        code = "\n".join(lines[start + 1:j]) + "\n"
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = _MARKER.fullmatch(lines[k].strip()) if k >= 0 else None
        if k >= 0 and "readme-test" in lines[k] and marker is None:
            raise ValueError(f"README.md line {k + 1}: malformed marker {lines[k].strip()!r}")
        if marker and marker["what"] == "skip":
            if not (marker["reason"] or "").strip():
                raise ValueError(f"README.md line {k + 1}: a skipped block must say why: skip (reason)")
            blocks.append(Block(start + 1, code, marker["reason"].strip()))
        elif marker and marker["what"] == "continues":
            if not blocks:
                raise ValueError(f"README.md line {k + 1}: the first block cannot continue another")
            prev = blocks[-1]
            blocks[-1] = prev._replace(code=prev.code + code)
        else:
            blocks.append(Block(start + 1, code, None))
        i = j + 1
    return blocks


BLOCKS = extract(README.read_text())


def run_block(code, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line{b.line}" for b in BLOCKS])
def test_readme_block_runs(block, tmp_path):
    if block.skip:
        pytest.skip(f"README.md line {block.line}: {block.skip}")
    if "eventsim.torch" in block.code or re.search(r"^\s*import torch", block.code, re.M):
        pytest.importorskip("torch")
    out = run_block(block.code, tmp_path)
    assert out.returncode == 0, (f"README.md block at line {block.line} failed:\n{block.code}\n"
                                 f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-3000:]}")
    if 'engine="event"' in block.code:
        # the event-engine snippet shows spikes: "It prints about 33,000 spikes (33.4 Hz)"
        found = re.search(r"(\d+) spikes, ([\d.]+) Hz", out.stdout)
        assert found, out.stdout
        assert 30_000 < int(found[1]) < 37_000 and abs(float(found[2]) - 33.4) < 0.5, out.stdout


def test_the_readme_has_the_blocks_it_should():
    codes = [b.code for b in BLOCKS]
    assert len(BLOCKS) >= 3
    assert any("es.Network(dt=0.1, seed=1)" in c and "net.run(1000.0)" in c for c in codes)  # the tour
    assert any('engine="event"' in c for c in codes)
    assert any("eventsim.torch" in c for c in codes)
    for b in BLOCKS:  # skips only for what this machine may lack, never silently
        assert b.skip is None or b.skip.strip(), b


def test_extract_markers_and_continuations():
    text = "\n".join([
        "intro", "```python", "a = 1", "```", "",
        "<!-- readme-test: continues -->", "```python", "assert a == 1", "```",
        "<!-- readme-test: skip (needs a CUDA GPU) -->", "", "```python", "import cuda_thing", "```",
        "```bash", "echo no", "```",
        "```python", "b = 2", "```",
    ])
    blocks = extract(text)
    assert [b.code for b in blocks] == ["a = 1\nassert a == 1\n", "import cuda_thing\n", "b = 2\n"]
    assert [b.skip for b in blocks] == [None, "needs a CUDA GPU", None]
    assert [b.line for b in blocks] == [2, 12, 18]
    with pytest.raises(ValueError, match="must say why"):
        extract("<!-- readme-test: skip -->\n```python\nx\n```\n")
    with pytest.raises(ValueError, match="malformed marker"):
        extract("<!-- readme-test: skipp (x) -->\n```python\nx\n```\n")
    with pytest.raises(ValueError, match="not closed"):
        extract("```python\nx\n")


def test_a_failing_block_fails(tmp_path):
    """The runner reports a block's exception (so a rotten snippet cannot pass)."""
    out = run_block("import eventsim as es\nes.LIF(V_th=1.0)\n", tmp_path)
    assert out.returncode != 0 and "TypeError" in out.stderr
