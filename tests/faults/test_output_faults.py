"""Output folders under faults: petl bench deletes or writes only into folders it made (a
marker file), validates data and model before touching the disk, keeps report names plain;
`petl report` and `petl bench --resume` refuse folders petl bench did not write."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import pytest

from petl.bench import config as bench_config
from petl.bench import folder, runner
from petl.cli import main

ONE_RUN = '[[runs]]\nname = "SeqLoRA"\nmethod = "lora"\n'


def snapshot(folder: Any) -> dict[str, bytes]:
    return {
        os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
        for d, _, files in os.walk(folder)
        for f in files
    }


@pytest.fixture
def model_folder(tmp_path: Any, tiny_model_dir: str) -> Any:
    """A copy of a Hugging Face model folder (config.json and weights) plus a user's file."""
    folder = tmp_path / "my_model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "notes.txt").write_text("mine")
    return folder


def test_overwrite_never_deletes_a_folder_petl_did_not_make(
    write_config: Any, model_folder: Any, capsys: Any
) -> None:
    before = snapshot(model_folder)
    path = write_config(runs=ONE_RUN)
    assert main(["bench", path, "--output", str(model_folder), "--overwrite"]) == 2
    assert "deletes only folders petl bench created" in capsys.readouterr().err
    assert snapshot(model_folder) == before
    assert main(["bench", path, "--output", str(model_folder)]) == 2  # no --overwrite
    assert "not a petl bench output folder" in capsys.readouterr().err
    assert snapshot(model_folder) == before


def test_foreign_non_empty_folder_is_not_written_into(
    write_config: Any, tmp_path: Any, capsys: Any
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8")
    assert main(["bench", write_config(runs=ONE_RUN), "--output", str(folder)]) == 2
    assert "already holds other files" in capsys.readouterr().err
    assert snapshot(folder) == {"cat.jpg": b"\xff\xd8"}


def test_own_folder_is_overwritten_only_after_data_and_model_check(
    write_config: Any, tmp_path: Any, capsys: Any
) -> None:
    path = write_config(runs=ONE_RUN)
    out = str(tmp_path / "out")
    runner.prepare(bench_config.load(path), out, resume=False)  # an earlier report
    (tmp_path / "out" / "cells" / "old.json").write_text("{}")
    before = snapshot(out)
    for override in (
        f"stream.data_dir={json.dumps(str(tmp_path / 'missing'))}",
        f"model.path={json.dumps(str(tmp_path / 'no_model'))}",
    ):
        assert main(["bench", path, "--overwrite", "--set", override]) == 2
        err = capsys.readouterr().err
        assert any(m in err for m in ("does not exist", "not a local folder", "no such folder")), (
            err
        )
        assert snapshot(out) == before
    config = bench_config.load(path)
    runner.prepare(config, out, resume=False, overwrite=True)  # petl's own: replaced
    assert not os.path.exists(os.path.join(out, "cells", "old.json"))
    assert os.path.exists(os.path.join(out, folder.MARKER))


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden", "/abs"])
def test_report_names_stay_inside_the_reports_folder(name: str) -> None:
    with pytest.raises(bench_config.ConfigError, match="must be a plain folder name"):
        bench_config.validate({"name": name})


@pytest.mark.parametrize("kind", ["model", "empty", "missing"])
def test_report_on_a_folder_that_is_not_a_report_writes_nothing(
    kind: str, model_folder: Any, tmp_path: Any, capsys: Any
) -> None:
    folder = {"model": model_folder, "empty": tmp_path / "empty", "missing": tmp_path / "no"}[kind]
    if kind == "empty":
        folder.mkdir()
    before = snapshot(folder) if os.path.exists(folder) else None
    assert main(["report", str(folder)]) == 2
    assert "not a petl bench output folder" in capsys.readouterr().err
    assert (snapshot(folder) if os.path.exists(folder) else None) == before


def test_resume_on_a_model_folder_is_a_clear_error(model_folder: Any, capsys: Any) -> None:
    before = snapshot(model_folder)
    assert main(["bench", "--resume", str(model_folder)]) == 2
    err = capsys.readouterr().err
    assert "was not written by petl bench (a model's config.json?)" in err
    assert snapshot(model_folder) == before
