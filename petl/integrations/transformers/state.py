"""petl's part of a Trainer checkpoint: strategy states, the accuracy rows so far and the
current task's training items, in safetensors and JSON (petl.training.checkpoint), inside
the Trainer's own `checkpoint-N` folders and in one `petl-task-done` folder per task.

Layout under the run's `output_dir`:
    task-<t>/checkpoint-<step>/...            the Trainer's checkpoint (model, optimizer, ...)
    task-<t>/checkpoint-<step>/petl/          petl's state at that step (mid-task)
    task-<t>/petl-task-done/                  after task t: state + trainable weights"""

from __future__ import annotations

import os
import re
from typing import Any

from petl.errors import CheckpointError
from petl.training import checkpoint as ckpt

PETL = "petl"
DONE = "petl-task-done"


def task_dir(root: str, t: int) -> str:
    return os.path.join(root, f"task-{t}")


def write(folder: str, parts: dict[str, dict[str, Any]]) -> None:
    ckpt.write(folder, parts)


def read(folder: str) -> dict[str, dict[str, Any]] | None:
    return ckpt.read(folder)


def last_trainer_checkpoint(folder: str) -> str | None:
    """The Trainer checkpoint of highest step under `folder` that holds petl's state."""
    if not os.path.isdir(folder):
        return None
    found = []
    for name in os.listdir(folder):
        match = re.fullmatch(r"checkpoint-(\d+)", name)
        if match and ckpt.read(os.path.join(folder, name, PETL)) is not None:
            found.append((int(match.group(1)), name))
    return os.path.join(folder, max(found)[1]) if found else None


def find_resume_point(root: str, num_tasks: int) -> tuple[int, str | None]:
    """(last finished task or -1, Trainer checkpoint of the task after it or None)."""
    done = -1
    for t in range(num_tasks):
        if ckpt.read(os.path.join(task_dir(root, t), DONE)) is not None:
            done = t
    nxt = done + 1
    mid = last_trainer_checkpoint(task_dir(root, nxt)) if nxt < num_tasks else None
    return done, mid


def check_same_run(saved: dict[str, Any], current: dict[str, Any], where: str) -> None:
    """Stream and strategies of a checkpoint must be those of the run resuming from it."""
    for key in ("tasks", "strategies"):
        if saved.get(key) != current.get(key):
            raise CheckpointError(
                f"The checkpoint in {where} was written for {key}={saved.get(key)!r}, but this "
                f"run has {key}={current.get(key)!r}. Resume with the same stream and "
                "strategies, or use a new output_dir."
            )
