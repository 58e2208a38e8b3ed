"""Optional experiment tracking (`TrainConfig.log_with="tensorboard"`) through Accelerate's
tracker API: `Accelerator(log_with=..., project_dir=...)`, `init_trackers`, `log`.

What is logged (TensorBoard scalars):

    train/loss, train/lr        every optimizer step; step s = the run's s-th optimizer step,
                                counted from 0 across tasks (and across a resume). The loss
                                is the step's last micro-batch's, averaged over processes;
                                lr is the one the step used (the largest, with lr groups).
    matrix/<j>_<task name>      after task t (step t): R[t, j], row t of the accuracy matrix
    cl/average_accuracy         after task t: mean of R[t, 0..t] (tasks trained so far)
    cl/forgetting               after task t: petl.metrics.forgetting of R[0..t, 0..t]

Trackers run on the main process only (Accelerate's rule). The event files of one `fit` go
to `TrainConfig.log_dir` (default runs/<date>-<time>-<pid>), or, with an Accelerator you
built yourself, to its logging_dir/<basename of log_dir>. Each `fit` starts the trackers
and closes them at its end (not `Accelerator.end_training`, which would also end a
multi-process group that a later `fit` still needs); a run that stops early keeps what
was written up to its last log call (each call flushes)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from petl.errors import ConfigError

if TYPE_CHECKING:
    from petl.training.config import TrainConfig
    from petl.training.learner import Learner

INSTALL = {"tensorboard": "pip install tensorboard (or: pip install 'petl[tensorboard]')"}


def _check_installed(name: str) -> None:
    try:
        __import__(name)
    except ImportError as err:
        raise ConfigError(
            f"TrainConfig.log_with={name!r} needs the {name} package, which is not installed "
            f"({err}). Install it with: {INSTALL[name]}; or set log_with=None."
        ) from None


def _log_dir(cfg: TrainConfig) -> str:
    if cfg.log_dir is not None:
        return os.path.abspath(cfg.log_dir)
    return os.path.abspath(os.path.join("runs", f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"))


def accelerator_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """Keyword arguments that make petl's Accelerator log to `cfg.log_dir`: its parent
    folder is the project_dir, its last part the run name given to `init_trackers`."""
    if cfg.log_with is None:
        return {}
    _check_installed(cfg.log_with)
    return {"log_with": cfg.log_with, "project_dir": os.path.dirname(_log_dir(cfg))}


def start(learner: Learner) -> None:
    """Starts the configured trackers for one `fit` (nothing when log_with is None)."""
    cfg, acc = learner.config, learner.accelerator
    if cfg.log_with is None:
        return
    _check_installed(cfg.log_with)
    from accelerate.tracking import GeneralTracker

    # acc.log_with holds LoggerType enums ("tensorboard" as .value) or tracker objects
    names = {
        t.name if isinstance(t, GeneralTracker) else str(getattr(t, "value", t))
        for t in acc.log_with
    }
    if cfg.log_with not in names:
        raise ConfigError(
            f"TrainConfig.log_with={cfg.log_with!r}, but the Accelerator passed to the Learner "
            f"was built without it. Build it with Accelerator(log_with={cfg.log_with!r}, "
            "project_dir=DIR), or let petl build it (no accelerator argument)."
        )
    acc.trackers = []  # a second fit starts afresh (its trackers were closed by finish)
    acc.init_trackers(os.path.basename(_log_dir(cfg)))


def log_step(learner: Learner, loss: Any, scheduler: Any) -> None:
    """Logs one optimizer step's loss and learning rate. Call it after `optimizer.step()`
    and before `scheduler.step()` (so the lr is the step's); every process must call it
    (the loss is averaged over processes)."""
    acc = learner.accelerator
    if learner.config.log_with is None:
        return
    value = loss.detach()
    if acc.num_processes > 1:
        value = acc.reduce(value, reduction="mean")
    lr = max(scheduler.get_last_lr())
    acc.log({"train/loss": float(value), "train/lr": float(lr)}, step=learner.global_step)


def log_task(learner: Learner, t: int) -> None:
    """Logs row t of the accuracy matrix, and average accuracy and forgetting so far."""
    from petl import metrics

    if learner.config.log_with is None:
        return
    rows = learner.acc_rows
    square = [row[: t + 1] for row in rows[: t + 1]]
    values = {
        f"matrix/{j}_{name}": float(rows[t][j]) for j, name in enumerate(learner.stream.names)
    }
    values["cl/average_accuracy"] = float(sum(rows[t][: t + 1]) / (t + 1))
    values["cl/forgetting"] = metrics.forgetting(square)
    learner.accelerator.log(values, step=t)


def finish(learner: Learner) -> None:
    """Closes the trackers this fit started (flushes the event files)."""
    acc = learner.accelerator
    if learner.config.log_with is None:
        return
    for tracker in acc.trackers:
        tracker.finish()
    acc.trackers = []
