"""`petl train --tensorboard` and `petl bench --tensorboard`: event files in the output
folder (one folder per bench cell) whose accuracy matrix is the one the run reported."""

from __future__ import annotations

import json

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from petl.cli import main


def read(folder: str) -> EventAccumulator:
    events = EventAccumulator(folder)
    events.Reload()
    return events


def test_train_logs_next_to_the_adapter(tiny_model_dir, tiny_data_dir, tmp_path, capsys) -> None:
    out = tmp_path / "adapter"
    argv = ["train", "--data", tiny_data_dir, "--task", "topics", "--model", tiny_model_dir]
    argv += ["--epochs", "1", "--batch-size", "8", "--output", str(out), "--no-progress"]
    assert main([*argv, "--tensorboard"]) == 0, capsys.readouterr().err
    info = json.loads((out / "petl_train.json").read_text())
    events = read(str(out / "tensorboard"))
    losses = events.Scalars("train/loss")
    assert [p.step for p in losses] == list(range(len(losses))) and losses
    (point,) = events.Scalars("matrix/0_topics")
    np.testing.assert_allclose(point.value, info["test_accuracy"], atol=1e-6)


def test_bench_logs_one_folder_per_cell(write_config, tmp_path, capsys) -> None:
    path = write_config(runs='[[runs]]\nname = "SeqLoRA"\nmethod = "lora"\n')
    argv = ["bench", path, "--no-progress", "--tensorboard"]
    argv += ["--set", 'stream.tasks=["topics", "mood"]', "--set", "train.epochs=1"]
    assert main(argv) == 0, capsys.readouterr().err
    out = tmp_path / "out"
    (cell,) = (out / "cells").glob("*.json")
    accuracy = np.array(json.loads(cell.read_text())["results"]["accuracy"])
    events = read(str(out / "tensorboard" / cell.stem))
    for j, task in enumerate(["topics", "mood"]):
        column = [p.value for p in events.Scalars(f"matrix/{j}_{task}")]
        np.testing.assert_allclose(column, accuracy[:, j], atol=1e-6)
