"""Checkpoints under faults: a damaged newest checkpoint falls back to the previous good one
(with a warning naming the damage) and still ends in the uninterrupted result; no usable
checkpoint, an unwritable folder, a full disk or another run's data is a CheckpointError."""

from __future__ import annotations

import json
import os
import random
import shutil
from typing import Any

import pytest
from safetensors.torch import load_file, save_file

import petl
from petl import CheckpointError
from petl.training import checkpoint as ckpt
from tests.faults.fault_kit import (
    Killed,
    assert_same,
    delete,
    flip,
    full_disk_after,
    killed_at,
    learner,
    live,
    read_only,
    reference,
    resume,
    stream,
    truncate,
)

FAULTS = {"delete": delete, "truncate": truncate, "flip": flip}


@pytest.mark.parametrize(
    ("fault", "file"),
    [
        ("delete", "model.safetensors"),
        ("truncate", "model.safetensors"),
        ("flip", "model.safetensors"),
        ("delete", "state.json"),
        ("flip", "manifest.json"),
        ("truncate", "manifest.json"),
    ],
)
def test_damaged_newest_checkpoint_falls_back_to_previous(
    tok: Any, tmp_path: Any, fault: str, file: str
) -> None:
    folder = str(tmp_path / "run")
    killed_at(tok, folder, step=7)  # live: step 6, previous: step 5
    FAULTS[fault](live(folder, file))
    with pytest.warns(UserWarning, match=rf"damaged \(.*{file}.*previous good checkpoint"):
        got = resume(tok, folder)
    assert_same(got, reference(tok))


def test_no_usable_checkpoint_is_an_error_naming_the_file(tok: Any, tmp_path: Any) -> None:
    folder = str(tmp_path / "run")
    killed_at(tok, folder, step=3)
    flip(live(folder))
    truncate(os.path.join(folder, ckpt.OLD, "optimizer.safetensors"))
    with pytest.raises(CheckpointError, match=r"No usable checkpoint.*model\.safetensors.*sha256"):
        resume(tok, folder)


def test_checkpoint_without_hashes_is_refused(tok: Any, tmp_path: Any) -> None:
    folder = str(tmp_path / "run")
    killed_at(tok, folder, step=3)
    for name in (ckpt.LIVE, ckpt.OLD):  # the manifest of an older petl: part names only
        with open(os.path.join(folder, name, ckpt.MANIFEST), "w") as f:
            json.dump({"parts": ["model", "state"]}, f)
    with pytest.raises(CheckpointError, match="no file hashes"):
        resume(tok, folder)


def test_consistent_checkpoint_missing_weights_is_refused(tok: Any, tmp_path: Any) -> None:
    # Hand-edited but self-consistent (manifest rewritten): the weight names are checked.
    folder = str(tmp_path / "run")
    killed_at(tok, folder, step=3)
    shutil.rmtree(os.path.join(folder, ckpt.OLD))
    path = live(folder)
    tensors = load_file(path)
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, path)
    manifest_path = live(folder, ckpt.MANIFEST)
    with open(manifest_path) as f:
        manifest = json.load(f)
    manifest["files"]["model.safetensors"] = {
        "size": os.path.getsize(path),
        "sha256": ckpt.sha256_file(path),
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    with pytest.raises(CheckpointError, match="does not hold this model's weights"):
        resume(tok, folder)


@pytest.mark.slow  # two runs each
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_killed_at_a_random_step_resumes_to_the_same_result(
    tok: Any, tmp_path: Any, seed: int
) -> None:
    step = random.Random(seed).randrange(1, 13)  # any of the 12 optimizer steps
    folder = str(tmp_path / "run")
    killed_at(tok, folder, step)
    assert_same(resume(tok, folder), reference(tok))


@pytest.mark.slow  # two runs each
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_killed_inside_a_checkpoint_write_resumes_to_the_same_result(
    tok: Any, tmp_path: Any, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A kill between any two file operations of a write (a safetensors file, a rename, a
    # delete) leaves the disk as the run left it: Killed is a BaseException, so no cleanup.
    rng = random.Random(seed)
    target = rng.randrange(1, 60)
    calls = [0]

    def counted(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == target:
                raise Killed(f"file operation {target}")
            return fn(*args, **kwargs)

        return wrapper

    folder = str(tmp_path / "run")
    with monkeypatch.context() as m:
        m.setattr(ckpt, "save_file", counted(ckpt.save_file))
        m.setattr(ckpt.os, "replace", counted(os.replace))
        m.setattr(ckpt.shutil, "rmtree", counted(shutil.rmtree))
        with pytest.raises(Killed):
            learner(tok, checkpoint_every=1).fit(stream(), checkpoint_dir=folder)
    assert_same(resume(tok, folder), reference(tok))


def test_unwritable_checkpoint_dir_fails_before_training(
    tok: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = str(tmp_path / "locked")
    lrn = learner(tok)
    with read_only(folder, monkeypatch), pytest.raises(CheckpointError, match="cannot be written"):
        lrn.fit(stream(), checkpoint_dir=folder)
    assert lrn.global_step == 0  # refused before the first step, not after a task


def test_full_disk_keeps_the_previous_checkpoint_and_resumes(
    tok: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = str(tmp_path / "run")
    with monkeypatch.context() as m:
        full_disk_after(m, writes=9)  # 3 safetensors per step checkpoint: fails at the 4th
        with pytest.raises(CheckpointError, match=r"No space left.*previous checkpoint is kept"):
            learner(tok, checkpoint_every=1).fit(stream(), checkpoint_dir=folder)
    assert ckpt.verify(os.path.join(folder, ckpt.LIVE)) is None
    assert not os.path.exists(os.path.join(folder, ckpt.NEW))  # the partial write is gone
    assert_same(resume(tok, folder), reference(tok))


def test_changed_example_content_is_another_run(tok: Any, tmp_path: Any) -> None:
    folder = str(tmp_path / "run")
    killed_at(tok, folder, step=3)
    changed = stream()
    first = changed.tasks[0].train[0]
    # same sizes, same labels: only the content differs
    changed.tasks[0].train[0] = petl.Example(first.text + " n1", first.label)
    with pytest.raises(CheckpointError, match="differs in: stream_digest"):
        learner(tok).fit(changed, checkpoint_dir=folder)
