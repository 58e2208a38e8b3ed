"""Helpers of the fault-injection tests: a small 3-task EWC + Replay run and its
uninterrupted reference, in-process kills, and the faults themselves (delete, truncate,
flip bytes, read-only folder, full disk)."""

from __future__ import annotations

import builtins
import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch

import petl
from petl.training import checkpoint as ckpt
from tests.cl.cl_data import make_bert, split_records


class Killed(BaseException):
    """Stops a run where a kill would; BaseException so no `except Exception` cleans up."""


class Kill(petl.Strategy):
    """Raises Killed at a given optimizer step. Its settings are private, so armed and
    disarmed runs share a checkpoint fingerprint."""

    name = "kill"

    def __init__(self, step: int | None = None) -> None:
        self._step = step

    def after_step(self, learner: Any) -> None:
        if learner.global_step == self._step:
            raise Killed(f"step {self._step}")


# 3 tasks x 16 examples, batch 8, 2 epochs: 4 optimizer steps per task, 12 in all.
CONFIG = {"epochs": 2, "batch_size": 8, "lr": 3e-2, "progress": False, "seed": 3}


def learner(tok: Any, kill: Kill | None = None, **config: Any) -> petl.Learner:
    return petl.Learner(
        make_bert(seed=2),
        tok,
        method="lora",
        method_options={"r": 2},
        strategies=[petl.EWC(lam=50.0, fisher_samples=8), petl.Replay(memory=6), kill or Kill()],
        config=petl.TrainConfig(**{**CONFIG, **config}),
    )


def stream() -> petl.Stream:
    records = split_records([[0, 1], [2, 3], [4, 5]], n_train=16, n_test=8, seed=4)
    return petl.Stream.from_records(records, val_fraction=0)


def weights(lrn: petl.Learner) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in lrn.model.named_parameters()}


_REFERENCE: dict[str, tuple[Any, dict[str, torch.Tensor]]] = {}


def reference(tok: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """The uninterrupted run (computed once; read-only afterwards)."""
    if "run" not in _REFERENCE:
        lrn = learner(tok)
        _REFERENCE["run"] = (lrn.fit(stream()), weights(lrn))
    return _REFERENCE["run"]


def resume(tok: Any, folder: str, **config: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    lrn = learner(tok, **config)  # a fresh process would start like this
    return lrn.fit(stream(), checkpoint_dir=folder), weights(lrn)


def killed_at(tok: Any, folder: str, step: int) -> None:
    """Trains with a checkpoint after every step and stops at `step` (before its checkpoint)."""
    with pytest.raises(Killed):
        learner(tok, Kill(step), checkpoint_every=1).fit(stream(), checkpoint_dir=folder)


def assert_same(got: tuple[Any, Any], want: tuple[Any, Any]) -> None:
    # Bit identity is the property: the resumed run repeats the same computations on the
    # same shapes as the uninterrupted one.
    (res, w), (ref, ref_w) = got, want
    assert res.accuracy.tolist() == ref.accuracy.tolist()
    assert res.initial.tolist() == ref.initial.tolist()
    assert w.keys() == ref_w.keys()
    for name in w:  # resumed == uninterrupted: same computations, same shapes, same bits
        assert torch.equal(w[name], ref_w[name]), name


def live(folder: str, file: str = "model.safetensors") -> str:
    return os.path.join(folder, ckpt.LIVE, file)


# ---- faults -------------------------------------------------------------------------------
def delete(path: str) -> None:
    os.remove(path)


def truncate(path: str) -> None:
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def flip(path: str, seed: int = 0) -> None:
    """Overwrites 16 bytes in the second half of a file (its data, past any header)."""
    size = os.path.getsize(path)
    offset = size // 2 + (seed * 7919) % max(size // 2 - 16, 1)
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(16)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


@contextmanager
def read_only(folder: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Makes `folder` unwritable: chmod where that binds, else (running as root, where
    chmod does not stop writes) a patched `open` that refuses writes under it."""
    os.makedirs(folder, exist_ok=True)
    if os.geteuid() != 0:
        os.chmod(folder, 0o500)
        try:
            yield
        finally:
            os.chmod(folder, 0o700)
        return
    real_open = builtins.open
    prefix = os.path.abspath(folder) + os.sep

    def guarded(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        path = os.path.abspath(os.fspath(file)) if isinstance(file, str | os.PathLike) else ""
        if path.startswith(prefix) and any(c in mode for c in "wax+"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(file, mode, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", guarded)
        yield


def full_disk_after(monkeypatch: pytest.MonkeyPatch, writes: int) -> None:
    """The disk fills up after `writes` safetensors files of checkpoints: the next one gets
    half its bytes written, then ENOSPC, as a real full disk would."""
    real = ckpt.save_file
    count = [0]

    def save_file(tensors: Any, path: str, *args: Any, **kwargs: Any) -> None:
        count[0] += 1
        if count[0] > writes:
            real(tensors, path, *args, **kwargs)
            truncate(path)
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real(tensors, path, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", save_file)
