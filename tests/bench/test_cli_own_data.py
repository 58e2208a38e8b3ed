"""Own data through the CLI: named text/label columns, a separate test file, a folder of
one file per task, --dry-run that checks data and model without training or writing,
--version, and helps that list the methods and strategies."""

from __future__ import annotations

import csv
import json
import os
import random

import pytest

import petl
from petl.cli import METHOD_NAMES, STRATEGY_NAMES, main
from petl.training.config import PEFT_LR
from tests.bench.conftest import _sentence


def write_csv(path: str, labels: list[str], n: int, seed: int) -> str:
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "body", "topic"])  # not the default text/label names
        for i in range(n):
            label = labels[i % len(labels)]
            writer.writerow([i, _sentence(rng, label), label])
    return path


def test_help_lists_what_exists_and_version(capsys) -> None:
    assert set(METHOD_NAMES) == set(petl.METHODS)
    assert set(STRATEGY_NAMES) == set(petl.STRATEGIES)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--text-column" in out and "task_adapters" in out and "bottleneck" in out
    assert "docs/" in out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("petl ")


def test_train_with_own_columns_and_a_test_file(tiny_model_dir, tmp_path, capsys) -> None:
    train = write_csv(str(tmp_path / "train.csv"), ["sport", "money"], 32, seed=0)
    test = write_csv(str(tmp_path / "test.csv"), ["sport", "money"], 10, seed=1)
    common = ["train", "--data", train, "--test", test, "--model", tiny_model_dir]
    columns = ["--text-column", "body", "--label-column", "topic"]
    out = str(tmp_path / "out")
    assert main([*common, *columns, "--output", out, "--dry-run"]) == 0
    info = json.loads(capsys.readouterr().out)
    # every training row is trained on (no hidden split), the test file is the test set
    assert (info["train_examples"], info["test_examples"]) == (32, 10)
    assert info["labels"] == ["money", "sport"] and not os.path.exists(out)

    assert main([*common, "--output", out, "--dry-run"]) == 2  # default column "label"
    assert "topic" in capsys.readouterr().err  # the error lists the columns

    args = [*common, *columns, "--output", out, "--epochs", "1", "--threads", "1"]
    assert main([*args, "--no-progress"]) == 0
    with open(os.path.join(out, "petl_train.json")) as f:
        saved = json.load(f)
    assert saved["test_examples"] == 10 and saved["train_config"]["lr"] == PEFT_LR


def test_folder_of_task_files(tiny_model_dir, tmp_path, capsys) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    write_csv(str(folder / "news_train.csv"), ["sport", "money"], 20, seed=0)
    write_csv(str(folder / "news_test.csv"), ["sport", "money"], 6, seed=1)
    write_csv(str(folder / "pets.csv"), ["cat", "dog"], 20, seed=2)
    base = ["train", "--data", str(folder), "--model", tiny_model_dir, "-o", str(tmp_path / "o")]
    columns = ["--text-column", "body", "--label-column", "topic", "--dry-run"]
    assert main([*base, *columns, "--task", "news"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["task"], info["train_examples"], info["test_examples"]) == ("news", 20, 6)
    assert main([*base, *columns]) == 2
    assert "news, pets" in capsys.readouterr().err


def test_bench_dry_run_checks_data_and_model(write_config, tmp_path, capsys) -> None:
    path = write_config(runs='[[runs]]\nname = "SeqLoRA"\nmethod = "lora"\n')
    missing = json.dumps(str(tmp_path / "nope"))
    assert main(["bench", path, "--dry-run", "--set", f"stream.data_dir={missing}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["bench", path, "--dry-run", "--set", 'model.path="./no/model"']) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["bench", path, "--dry-run"]) == 0
    assert "model:" in capsys.readouterr().out


def test_bench_reads_a_folder_of_files(write_config, tmp_path, capsys) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    write_csv(str(folder / "a.csv"), ["sport", "money"], 20, seed=0)
    write_csv(str(folder / "b.csv"), ["cat", "dog"], 20, seed=1)
    path = write_config(runs='[[runs]]\nname = "SeqLoRA"\nmethod = "lora"\n')
    sets = [
        f"stream.data_dir={json.dumps(str(folder))}",
        'stream.text_column="body"',
        'stream.label_column="topic"',
        'stream.tasks=["a", "b"]',
    ]
    argv = ["bench", path, "--dry-run"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    assert "a (16 train/4 test), b (16 train/4 test)" in capsys.readouterr().out
