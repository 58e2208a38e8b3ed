"""Tasks never learned (diagonal at chance) are named in a warning: in Results and in the
benchmark report."""

from __future__ import annotations

import numpy as np

from petl.bench.report import _chance_section
from petl.chance import chance_warnings
from petl.results import Results


def test_chance_warnings_name_unlearned_tasks_only() -> None:
    found = chance_warnings(
        ["a", "b", "c"],
        [0.26, 0.9, 0.5],
        [["w", "x", "y", "z"], ["p", "q"], ["p", "q"]],
        ["accuracy"] * 3,
    )
    assert len(found) == 2
    assert "'a' scored 0.260" in found[0] and "0.250 for 4 labels" in found[0]
    assert "'c'" in found[1]
    assert chance_warnings(["t"], [0.0], [["O", "B-X"]], ["f1"]) == []  # no chance level


def test_results_and_report_warn() -> None:
    stream = {
        "scenario": "class",
        "family": "classification",
        "tasks": [{"name": "a", "labels": ["x", "y"]}, {"name": "b", "labels": ["u", "v"]}],
    }
    results = Results(
        ["a", "b"],
        np.array([[0.5, 0.0], [0.5, 0.95]]),
        np.array([0.5, 0.5]),
        ["accuracy", "accuracy"],
        info={"stream": stream},
    )
    (warning,) = results.warnings()
    assert "'a'" in warning
    section = _chance_section([{"name": "SeqLoRA", "diagonal": [0.5, 0.95]}], stream)
    assert section[0] == "## Warnings" and "SeqLoRA: task 'a'" in section[2]
    assert _chance_section([{"name": "ok", "diagonal": [0.9, 0.95]}], stream) == []
