"""A tiny benchmark end to end through `petl bench`: every kind of run the default config
compares (full fine-tuning, LoRA, EWC, Replay, TaskAdapters, O-LoRA, Joint), two seeds,
two worker processes, then the report files: JSON, Markdown and the three plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from petl.cli import main

ALL_RUNS = """
[[runs]]
name = "SeqFT (full)"
method = "none"

[[runs]]
name = "SeqLoRA"
method = "lora"

[[runs]]
name = "LoRA+EWC"
method = "lora"
strategies = [{ name = "ewc", lam = 100.0, fisher_samples = 8 }]

[[runs]]
name = "LoRA+Replay"
method = "lora"
strategies = ["replay"]

[[runs]]
name = "TaskAdapters"
method = "lora"
strategies = ["task_adapters"]

[[runs]]
name = "O-LoRA"
method = "lora"
strategies = ["olora"]

[[runs]]
name = "Joint (LoRA)"
method = "lora"
strategies = ["joint"]
"""


@pytest.mark.slow
def test_tiny_benchmark_end_to_end(write_config, tmp_path, capsys):
    path = write_config(runs=ALL_RUNS, seeds="[0, 1]", extra="workers = 2")
    out = tmp_path / "out"
    assert main(["bench", path, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for name in (
        "SeqFT (full)",
        "SeqLoRA",
        "LoRA+EWC",
        "LoRA+Replay",
        "TaskAdapters",
        "O-LoRA",
        "Joint (LoRA)",
    ):
        assert name in printed

    report = json.loads((out / "results.json").read_text())
    assert report["cells_finished"] == report["cells_total"] == 14 and not report["failed"]
    assert report["config"]["workers"] == 2 and report["seeds"] == [0, 1]
    assert {"torch", "transformers", "peft"} <= set(report["environment"]["versions"])
    by_name = {r["name"]: r for r in report["runs"]}
    for row in by_name.values():
        assert np.array(row["accuracy"]).shape == (3, 3)
        assert row["seeds"] == [0, 1] and row["forgetting_std"] is not None
        assert row["trainable_params"] > 0 and row["wall_time_s"] > 0 and row["cpu_time_s"] > 0
    # Full fine-tuning trains every weight; LoRA a small fraction of them.
    assert by_name["SeqFT (full)"]["trainable_params"] > 5 * by_name["SeqLoRA"]["trainable_params"]

    md = (out / "report.md").read_text()
    for heading in (
        "## Results",
        "## Accuracy right after each task (diagonal)",
        "## Accuracy matrices",
        "plots/forgetting_vs_params.png",
    ):
        assert heading in md
    for plot in ("accuracy_matrices.png", "task_accuracy.png", "forgetting_vs_params.png"):
        data = (out / "plots" / plot).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
