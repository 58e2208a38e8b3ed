"""`petl bench` rows of statistic heads: they run from a config with their options, report
their cost columns (head forward passes per task, state in floats, optimizer steps)."""

from __future__ import annotations

import json

import pytest

from petl.cli import main

RUNS = """
[strategies.ranpac]
dims = 64

[[runs]]
name = "NCM (frozen)"
method = "lora"
strategies = ["ncm"]

[[runs]]
name = "RanPAC (frozen)"
method = "lora"
strategies = ["ranpac"]

[[runs]]
name = "APER (LoRA)"
method = "lora"
strategies = [{ name = "aper", head = "ncm" }]
"""


@pytest.mark.slow  # a whole bench
def test_statistic_head_rows_report_their_costs(write_config, tmp_path, capsys):
    path = write_config(runs=RUNS)
    assert main(["bench", path, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "head fwd" in printed and "state" in printed
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = {r["name"]: r for r in report["runs"]}
    assert rows["NCM (frozen)"]["optimizer_steps"] == 0
    assert rows["NCM (frozen)"]["head_passes_per_task"] == 1
    assert rows["RanPAC (frozen)"]["optimizer_steps"] == 0
    assert rows["APER (LoRA)"]["optimizer_steps"] > 0
    assert rows["APER (LoRA)"]["head_passes_per_task"] == 2  # adapted + pretrained features
    # A frozen backbone's LoRA requires grad but is never stepped: nothing was trained.
    assert rows["NCM (frozen)"]["trainable_params"] == 0
    assert rows["RanPAC (frozen)"]["trainable_params"] == 0
    assert rows["APER (LoRA)"]["trainable_params"] > 0  # its LoRA trained on task 1
    hidden = 32  # the tiny BERT's feature width
    classes = len({label for t in report["stream"]["tasks"] for label in t["labels"]})
    assert rows["NCM (frozen)"]["state_floats"] == classes * hidden + classes
    assert rows["RanPAC (frozen)"]["state_floats"] == 2 * (64 * 64 + 64 * classes) + classes + 1
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| head fwd | state |" in md
