"""The `petl` command line on a tiny BERT saved to disk: bench, --resume, report, train,
and the errors bad configs give (exit status 2, the key and the choices in the message)."""

from __future__ import annotations

import json
import os

import pytest

from petl.bench import runner
from petl.cli import main

ONE_RUN = '[[runs]]\nname = "SeqLoRA"\nmethod = "lora"\n'


def test_bad_configs_exit_2_naming_key_and_choices(write_config, capsys):
    path = write_config(runs='[[runs]]\nmethod = "lorra"\n')
    assert main(["bench", path, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "runs[0].method" in err and "Did you mean 'lora'" in err and "bitfit" in err

    path = write_config(runs='[[runs]]\nmethod = "lora"\nstrategies = ["replai"]\n', name="b.toml")
    assert main(["bench", path]) == 2
    err = capsys.readouterr().err
    assert "'replai'" in err and "task_adapters" in err and "olora" in err

    assert main(["bench", path, "--set", "stream.order=[1]"]) == 2
    err = capsys.readouterr().err
    assert "stream.order" in err and "data_dir" in err


def test_missing_data_dir_fails_before_training(write_config, capsys, tmp_path):
    path = write_config(runs=ONE_RUN)
    assert (
        main(["bench", path, "--set", f"stream.data_dir={json.dumps(str(tmp_path / 'nope'))}"]) == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out" / "cells" / "seqlora-seed0.json")


def test_dry_run_lists_cells(write_config, capsys):
    assert main(["bench", write_config(), "--dry-run", "--set", "seeds=2"]) == 0
    out = capsys.readouterr().out
    assert "4 cells" in out and "lora-replay-seed1" in out


@pytest.mark.slow  # a whole bench, twice
def test_bench_resume_and_report(write_config, tmp_path, capsys, monkeypatch):
    path = write_config()
    out = tmp_path / "out"
    real_run_cell = runner.run_cell
    calls, interrupts = [], []

    def interrupted(config, cell, *args, **kwargs):
        calls.append(cell.key)
        if cell.key == "lora-replay-seed0" and not interrupts:
            interrupts.append(cell.key)
            raise KeyboardInterrupt  # as if Ctrl-C hit during the second cell
        return real_run_cell(config, cell, *args, **kwargs)

    monkeypatch.setattr(runner, "run_cell", interrupted)
    assert main(["bench", path, "--no-progress"]) == 130
    assert f"petl bench --resume {out}" in capsys.readouterr().err
    first = out / "cells" / "seqlora-seed0.json"
    assert first.exists() and not (out / "cells" / "lora-replay-seed0.json").exists()
    stamp = first.stat().st_mtime_ns

    calls.clear()
    assert main(["bench", "--resume", str(out), "--no-progress"]) == 0
    assert calls == ["lora-replay-seed0"]  # the finished cell is skipped
    assert first.stat().st_mtime_ns == stamp
    printed = capsys.readouterr().out
    assert "SeqLoRA" in printed and "LoRA+Replay" in printed and "forgetting" in printed

    report = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in report["runs"]] == ["SeqLoRA", "LoRA+Replay"]
    for key in ("config", "environment", "cells", "stream"):
        assert report[key]
    cell = report["cells"][0]["results"]
    assert len(cell["accuracy"]) == 3 and cell["info"]["trainable_params"] > 0
    assert cell["info"]["wall_time_s"] > 0 and cell["info"]["peak_rss_mb"] > 0
    assert report["environment"]["versions"]["torch"]
    for plot in ("accuracy_matrices.png", "task_accuracy.png", "forgetting_vs_params.png"):
        assert (out / "plots" / plot).stat().st_size > 1000
    assert not (out / "checkpoints").exists()
    invocations = json.loads((out / "invocations.json").read_text())
    assert [i["cells_run"] for i in invocations] == [1]  # the interrupted call logs nothing
    assert invocations[0]["wall_time_s"] > 0 and invocations[0]["cpu_time_s"] > 0

    os.remove(out / "report.md")
    assert main(["report", str(out)]) == 0
    assert "LoRA+Replay" in (out / "report.md").read_text()

    # The same config again continues (nothing to do); another config is refused.
    assert main(["bench", path, "--no-progress"]) == 0
    assert main(["bench", path, "--set", "train.lr=0.5", "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_report_of_a_non_bench_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a petl bench output folder" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["lora", "none"])
def test_train_saves_a_loadable_adapter(method, tiny_model_dir, tiny_data_dir, tmp_path, capsys):
    import torch
    from transformers import AutoModelForSequenceClassification

    import petl
    from petl.bench.train import TRAIN_INFO

    out = tmp_path / "adapter"
    code = main(
        [
            "train",
            "--data",
            tiny_data_dir,
            "--task",
            "topics",
            "--model",
            tiny_model_dir,
            "--method",
            method,
            "--epochs",
            "3",
            "--lr",
            "1e-2",
            "--output",
            str(out),
            "--no-progress",
            "--set" if method == "lora" else "--max-length",
            "method.r=4" if method == "lora" else "16",
        ]
    )
    assert code == 0, capsys.readouterr().err
    info = json.loads((out / TRAIN_INFO).read_text())
    assert info["labels"] == ["sport", "money"]
    assert info["exported_test_accuracy"] == pytest.approx(info["test_accuracy"], abs=0.02)
    if method == "lora":
        assert (out / "adapter_config.json").exists()
        base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
        model = petl.load(base, str(out))
    else:
        model = AutoModelForSequenceClassification.from_pretrained(str(out))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(out))
    with open(os.path.join(tiny_data_dir, "topics", "test.json")) as f:
        rows = json.load(f)
    enc = tok([r["sentence"] for r in rows], padding=True, return_tensors="pt")
    with torch.no_grad():
        preds = model(**enc).logits.argmax(-1)
    labels = torch.tensor([info["labels"].index(r["label"]) for r in rows])
    assert (preds == labels).float().mean().item() == pytest.approx(
        info["exported_test_accuracy"], abs=1e-6
    )


def test_train_needs_a_task_for_a_folder(tiny_data_dir, tmp_path, capsys):
    assert main(["train", "--data", tiny_data_dir, "--output", str(tmp_path / "x")]) == 2
    assert "--task" in capsys.readouterr().err


def _train_dry_run(tiny_model_dir, tiny_data_dir, tmp_path, *extra):
    argv = ["train", "--data", tiny_data_dir, "--task", "topics", "--model", tiny_model_dir]
    return main([*argv, "--output", str(tmp_path / "x"), "--dry-run", "--no-progress", *extra])


def test_train_defaults_are_trainconfigs(tiny_model_dir, tiny_data_dir, tmp_path, capsys):
    from petl import TrainConfig

    assert _train_dry_run(tiny_model_dir, tiny_data_dir, tmp_path) == 0
    info = json.loads(capsys.readouterr().out)
    # lr: TrainConfig's default for a PEFT method, resolved as the Learner resolves it
    assert info["train_config"] == TrainConfig(progress=False).for_method("lora").to_dict()


def test_train_set_is_the_bench_override_syntax(tiny_model_dir, tiny_data_dir, tmp_path, capsys):
    args = ["--set", "method.r=4", "--set", "train.warmup_ratio=0.2", "--epochs", "1"]
    assert _train_dry_run(tiny_model_dir, tiny_data_dir, tmp_path, *args) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["method_options"] == {"r": 4}
    assert (info["train_config"]["warmup_ratio"], info["train_config"]["epochs"]) == (0.2, 1)
    for bad, fragments in (
        ("r=4", ["--set r", "method.OPTION=VALUE", "train.SETTING=VALUE"]),
        ("method.rank=4", ["method.rank", "lora_alpha"]),
        ("train.lrr=1", ["train.lrr", "Did you mean 'lr'"]),
        ("train.epochs=0", ["TrainConfig.epochs", "positive integer"]),
        ("nothing", ["KEY=VALUE"]),
    ):
        assert _train_dry_run(tiny_model_dir, tiny_data_dir, tmp_path, "--set", bad) == 2, bad
        err = capsys.readouterr().err
        for fragment in fragments:
            assert fragment in err, (bad, err)


@pytest.mark.slow  # a whole (tiny) bench
def test_a_crashing_cell_does_not_cost_the_others(write_config, tmp_path, capsys, monkeypatch):
    real_run_cell = runner.run_cell

    def crash_seqlora(config, cell, *args, **kwargs):
        if cell.key == "seqlora-seed0":
            raise RuntimeError("boom in a strategy")  # a bug, not a PetlError
        return real_run_cell(config, cell, *args, **kwargs)

    monkeypatch.setattr(runner, "run_cell", crash_seqlora)
    assert main(["bench", write_config(), "--no-progress"]) == 1  # the failure is not silent
    out = tmp_path / "out"
    assert (out / "cells" / "lora-replay-seed0.json").exists()  # the next cell still ran
    failed = json.loads((out / "cells" / "seqlora-seed0.failed.json").read_text())
    assert failed["error"] == "RuntimeError: boom in a strategy"
    assert "crash_seqlora" in failed["traceback"]  # where it happened, for the bug report
    assert "1 cell(s) failed" in capsys.readouterr().err
