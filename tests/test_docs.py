"""Every python code block in README.md and docs/**/*.md runs, so the docs cannot drift
from the code. The blocks of one page run in order in one namespace (as a reader runs
them), in a temporary folder. A block preceded by the line
`<!-- docs-test: skip: REASON -->` is not run (fragments that need your own model path or
the real data sets); the reason is required."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"<!-- docs-test: skip: (?P<reason>[^>]+?) -->[ \t]*$", re.M)


def pages() -> list[str]:
    found = [os.path.join(ROOT, "README.md")]
    for folder, _, files in os.walk(os.path.join(ROOT, "docs")):
        found += [os.path.join(folder, f) for f in files if f.endswith(".md")]
    return sorted(found)


def blocks(text: str) -> list[tuple[int, str, str | None]]:
    """(line, code, skip reason) of every python block of a page."""
    out = []
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = [s for s in text[: match.start()].rstrip("\n").splitlines()[-2:] if s.strip()]
        skip = SKIP.search(before[-1]) if before else None
        out.append((line, match.group(1), skip["reason"] if skip else None))
    return out


def test_skip_markers_are_few_and_give_a_reason() -> None:
    total = skipped = 0
    for page in pages():
        with open(page) as f:
            text = f.read()
        assert text.count("docs-test: skip") == len(SKIP.findall(text)), page
        found = blocks(text)
        total += len(found)
        skipped += sum(reason is not None for _, _, reason in found)
    assert total > 0 and skipped <= total // 2, (skipped, total)


def runnable(page: str) -> list[tuple[int, str]]:
    """The page's python blocks without a skip marker, with their line numbers."""
    with open(page) as f:
        return [(line, code) for line, code, reason in blocks(f.read()) if reason is None]


@pytest.mark.slow  # every page in a fresh interpreter; some train MiniLM
@pytest.mark.parametrize(
    "page", [p for p in pages() if runnable(p)], ids=lambda p: os.path.relpath(p, ROOT)
)
def test_python_blocks_run(page: str, tmp_path) -> None:
    found = runnable(page)
    # One script per page, run in a fresh interpreter: each block is marked so a failure
    # names its line in the page.
    script = ["import torch", "torch.set_num_threads(1)"]
    for line, code in found:
        if code[:1] in (" ", "\t") and len(script) > 2:  # more methods of the class above
            script[-1] += "\n" + code
        else:
            script += [f"print('--- block at line {line}', flush=True)", code]
    path = tmp_path / "page.py"
    path.write_text("\n".join(script))
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    last = [s for s in out.stdout.splitlines() if s.startswith("--- block at line")]
    assert out.returncode == 0, (
        f"{os.path.relpath(page, ROOT)}: {last[-1] if last else 'before the first block'} "
        f"failed:\n{out.stderr[-3000:]}"
    )
