"""The report's "General-ability drift" section, written against the contract of
petl/bench/drift.py with fabricated cell results: `results.info["ability"]` maps a measure
to [base model, after task 1, ..., after task T]; per run the report gives, for each task,
the value (mean over seeds) and its drift from the base, in report.md, results.json and a
PNG plot."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from petl.bench import config as bc
from petl.bench.folder import _write_json, cell_path, environment, prepare
from petl.bench.report import write_report
from petl.errors import DataError
from petl.results import Results

# run -> seed -> measure -> [base, after T1, after T2]
ABILITY = {
    "SeqLoRA": {
        0: {"lm_loss": [3.0, 3.5, 4.0], "heldout_em": [0.5, 0.4, 0.2]},
        1: {"lm_loss": [3.0, 3.3, 3.8], "heldout_em": [0.5, 0.4, 0.2]},
    },
    "O-LoRA": {
        0: {"lm_loss": [3.0, 3.1, 3.2], "heldout_em": [0.5, 0.5, 0.45]},
        1: {"lm_loss": [3.0, 3.1, 3.2], "heldout_em": [0.5, 0.5, 0.45]},
    },
    "Joint": {0: None, 1: None},  # a run that did not measure general ability
}


def _folder(tmp_path, ability=ABILITY) -> str:
    runs = [{"name": n, "method": "lora"} for n in ability]
    config = bc.validate({"name": "fab", "seeds": [0, 1], "runs": runs})
    out = str(tmp_path / "bench")
    prepare(config, out, resume=False)
    for cell in config.cells():
        tasks = [{"name": n, "labels": ["x", "y"], "train": 8, "test": 8} for n in ("a", "b")]
        stream = {"scenario": "class", "family": "generation", "tasks": tasks}
        info = {"wall_time_s": 1.0, "trainable_params": 10, "stream": stream}
        if ability[cell.run.name][cell.seed] is not None:
            info["ability"] = ability[cell.run.name][cell.seed]
        accuracy = np.array([[0.9, 0.0], [0.5, 0.8]])
        results = Results(["a", "b"], accuracy, np.zeros(2), ["exact_match"] * 2, {}, info)
        record = {
            "key": cell.key,
            "run": {"name": cell.run.name, "method": "lora", "method_options": {}},
            "seed": cell.seed,
            "results": results.to_dict(),
            "environment": environment(1),
        }
        record["run"].update(strategies=[], train={})
        _write_json(cell_path(out, cell), record)
    return out


def test_drift_section_in_markdown_json_and_plot(tmp_path):
    out = _folder(tmp_path)
    report = write_report(out)

    rows = {r["name"]: r for r in report["runs"]}
    seq = rows["SeqLoRA"]["ability"]
    # mean over the two seeds, then drift = after task i minus base (by hand)
    np.testing.assert_allclose(seq["lm_loss"]["values"], [3.0, 3.4, 3.9], atol=1e-12)
    np.testing.assert_allclose(seq["lm_loss"]["drift"], [0.4, 0.9], atol=1e-12)
    np.testing.assert_allclose(seq["heldout_em"]["drift"], [-0.1, -0.3], atol=1e-12)
    np.testing.assert_allclose(
        rows["O-LoRA"]["ability"]["lm_loss"]["drift"], [0.1, 0.2], atol=1e-12
    )
    assert "ability" not in rows["Joint"]
    with open(os.path.join(out, "results.json")) as f:
        saved = json.load(f)
    assert saved["runs"][0]["ability"] == seq  # the JSON carries the same figures

    md = (tmp_path / "bench" / "report.md").read_text()
    section = md.split("## General-ability drift")[1].split("\n## ")[0]
    assert "|  | lm_loss | drift lm_loss | heldout_em | drift heldout_em |" in section
    assert "| base | 3.000 |  | 0.500 |  |" in section
    assert "| after T2 | 3.900 | +0.900 | 0.200 | -0.300 |" in section
    assert "| after T1 | 3.100 | +0.100 | 0.500 | +0.000 |" in section  # O-LoRA
    assert "### Joint" not in section
    assert report["plots"]["ability_drift"] == os.path.join("plots", "ability_drift.png")
    assert os.path.getsize(os.path.join(out, "plots", "ability_drift.png")) > 1000
    assert "![General-ability drift from the base model](plots/ability_drift.png)" in md


def test_no_ability_means_no_section(tmp_path):
    out = _folder(tmp_path, {"SeqLoRA": {0: None, 1: None}})
    report = write_report(out)
    assert "ability_drift" not in report["plots"]
    assert "General-ability" not in (tmp_path / "bench" / "report.md").read_text()


def test_a_measure_without_one_value_per_task_is_refused(tmp_path):
    bad = {"SeqLoRA": {0: {"lm_loss": [3.0, 3.5]}, 1: None}}  # base + 1 value, 2 tasks
    out = _folder(tmp_path, bad)
    with pytest.raises(DataError, match=r"'lm_loss'.*3 values.*2 tasks"):
        write_report(out)
