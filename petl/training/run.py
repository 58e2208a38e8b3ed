"""Where a `Learner.fit` stands (`RunState`), and the step checkpoints that save it.

A checkpoint folder holds parts (petl.training.checkpoint writes them atomically):
    state      `RunState` as JSON, with the run's fingerprint and phase
    model      trainable weights and every head
    rng        the random generators
    optimizer / scheduler / best   mid-task only (phase "training")
    strategy.<name>                each strategy's state
The "state" part's keys are those petl has always written, so older checkpoints resume."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from petl.training import checkpoint as ckpt
from petl.training.data import Item

if TYPE_CHECKING:
    from petl.training.learner import Learner

# TrainConfig fields that do not change what a run computes: a resume may change them.
UNFINGERPRINTED = ("progress", "checkpoint_every", "num_threads", "sharding", "log_with", "log_dir")
LOOP_KEYS = ("items", "epoch", "micro", "best", "bad_epochs", "step_in_task")


@dataclass
class RunState:
    """The run's position and results so far: what a resumed run needs besides weights,
    optimizer and strategies' state. `Learner.task_index`, `global_step`,
    `global_step_in_task` and `items` read and write it."""

    task: int = 0  # the task being trained (or last trained)
    global_step: int = 0
    step_in_task: int = 0
    items: list[Item] = field(default_factory=list)  # the current task's training items
    acc_rows: list[list[float]] = field(default_factory=list)  # one row per task trained
    initial: list[float] = field(default_factory=list)  # scores before any training
    elapsed: float = 0.0  # seconds of earlier (interrupted) runs
    # the place inside a task's training (phase "training")
    epoch: int = 0
    micro: int = 0
    best: float | None = None  # early stopping: best validation score, epochs without one
    bad_epochs: int = 0

    def start_task(self, t: int, items: list[Item]) -> None:
        self.task, self.items, self.step_in_task = t, items, 0
        self.epoch, self.micro, self.best, self.bad_epochs = 0, 0, None, 0

    def to_state(self, phase: str, fingerprint: dict[str, Any], elapsed: float) -> dict[str, Any]:
        """The checkpoint's "state" part (the loop's place only mid-task)."""
        state = {
            "fingerprint": fingerprint,
            "phase": phase,
            "task": self.task,
            "global_step": self.global_step,
            "acc_rows": self.acc_rows,
            "initial": self.initial,
            "elapsed": elapsed,
        }
        if phase == "training":
            state.update({k: getattr(self, k) for k in LOOP_KEYS})
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RunState:
        loop = {k: state[k] for k in LOOP_KEYS if k in state}
        loop["items"] = [tuple(x) for x in loop.get("items", [])]  # JSON gives lists
        fields = ("task", "global_step", "acc_rows", "initial", "elapsed")
        return cls(**{k: state[k] for k in fields}, **loop)


def fingerprint(learner: Learner) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed: model, method, strategies, family,
    training settings (except those in UNFINGERPRINTED) and the stream's content."""
    import json

    cfg = {k: v for k, v in learner.config.to_dict().items() if k not in UNFINGERPRINTED}
    base = learner.model.backbone
    base_cfg: dict[str, Any] = getattr(getattr(base, "config", None), "to_dict", lambda: {})()
    source, method = learner.source, learner.method
    return json.loads(
        json.dumps(
            {
                "model": source if isinstance(source, str) else type(source).__name__,
                "model_config": {
                    k: base_cfg.get(k)
                    for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")
                },
                "method": method if isinstance(method, str | None) else repr(method),
                "method_options": learner.method_options,
                "strategies": [
                    [getattr(s, "name", type(s).__name__), _strategy_config(s)]
                    for s in learner.strategies
                ],
                "family": learner.family.config(),
                "train": cfg,
                "stream": learner.stream.describe(),
                "stream_digest": learner.stream.digest(),
            },
            default=str,
        )
    )


def _strategy_config(strategy: Any) -> Any:
    config = getattr(strategy, "config", None)
    return config() if callable(config) else {}


def model_state(learner: Learner) -> dict[str, torch.Tensor]:
    """The weights a checkpoint keeps: trainable ones and every head."""
    return {
        n: p.detach()
        for n, p in learner.model.named_parameters()
        if p.requires_grad or n.startswith("heads.")
    }


def save_checkpoint(
    learner: Learner, phase: str, extra: dict[str, dict[str, Any]] | None = None
) -> None:
    """Writes the run's checkpoint (main process; every process waits for it). `phase`:
    "task_done" after a task, "training" mid-task (with the optimizer parts in `extra`)."""
    if not learner.checkpoint_dir:
        return
    acc = learner.accelerator
    acc.wait_for_everyone()
    if acc.is_main_process:
        elapsed = time.perf_counter() - learner.started_at
        parts: dict[str, dict[str, Any]] = {
            "state": learner.run.to_state(phase, fingerprint(learner), elapsed),
            "model": model_state(learner),
            "rng": ckpt.rng_state(),
            **(extra or {}),
        }
        parts.update(learner.hooks.state_dicts())
        ckpt.write(learner.checkpoint_dir, parts)
    acc.wait_for_everyone()


@dataclass
class Resumed:
    """A checkpoint read back: its phase, and its parts (optimizer, scheduler, best)."""

    phase: str
    parts: dict[str, dict[str, Any]] = dataclasses.field(repr=False)


def resume(learner: Learner) -> Resumed | None:
    """Restores the run from `learner.checkpoint_dir`, if it holds a checkpoint of the same
    fingerprint: `learner.run`, heads, strategies' state, weights and random generators.
    None when there is no checkpoint yet.

    Raises:
        CheckpointError: a broken checkpoint, or one of another configuration.
    """
    root = learner.checkpoint_dir
    assert root is not None
    parts = ckpt.read(root)
    if parts is None:
        return None
    ckpt.check_parts(parts, ["state", "model", "rng"], root)
    state = parts["state"]
    ckpt.check_fingerprint(state["fingerprint"], fingerprint(learner), root)
    learner.run = RunState.from_state(state)
    learner.activate_heads(learner.run.task)
    learner.hooks.load_state_dicts(parts)
    own = dict(learner.model.named_parameters())
    ckpt.check_names(parts["model"], model_state(learner), root)
    with torch.no_grad():
        for name, tensor in parts["model"].items():
            own[name].copy_(tensor)
    ckpt.load_rng_state(parts["rng"])
    return Resumed(state["phase"], parts)
