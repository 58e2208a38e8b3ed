"""Real kill -9 (SIGKILL) at random points of a 3-task EWC + Replay run, each resumed run
equal to the uninterrupted one: benchmarks/kill9_resume.py with a few points (its recorded
20-point run is benchmarks/results/kill9_resume.json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_sigkill_at_random_points_resumes_to_the_uninterrupted_result(tmp_path: Any) -> None:
    out = tmp_path / "kill9.json"
    script = os.path.join(ROOT, "benchmarks", "kill9_resume.py")
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run(
        [sys.executable, script, "--points", "3", "--seed", "11", "--jobs", "2", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["all_equal"] and len(report["points"]) == 3
    assert all(p["kill_returncode"] == -9 for p in report["points"])
