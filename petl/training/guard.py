"""The non-finite guard of the training loop: a NaN or infinite loss or gradient never
reaches the weights silently. Per `TrainConfig.nonfinite` it stops the task with a
`TrainingError` naming the step, or skips the optimizer step (and warns at task end).

Under fp16 mixed precision Accelerate's gradient scaler already skips steps whose scaled
gradients overflow (that is how loss scaling finds its scale), so there only the loss
is checked."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from petl.errors import TrainingError
from petl.training.sharding import all_finite, local_grad

if TYPE_CHECKING:
    from petl.training.learner import Learner


def step_is_finite(
    learner: Learner, loss: torch.Tensor, params: Sequence[torch.nn.Parameter], task: int
) -> bool:
    """True when the step may be taken; False when it must be skipped (policy "skip").

    Called after backward, before clipping and `optimizer.step()`.

    Raises:
        TrainingError: a non-finite loss or gradient under policy "error".
    """
    what = None
    # The loss differs between processes (their own rows): only one process checks it, as
    # a rank stopping alone would hang the others; gradients agree after DDP's all-reduce.
    if learner.accelerator.num_processes == 1 and not math.isfinite(float(loss.detach())):
        what = f"loss is {float(loss.detach())}"
    elif getattr(learner.accelerator, "scaler", None) is None:
        grads = [local_grad(p.grad).detach().float().norm() for p in params if p.grad is not None]
        finite = not grads or bool(torch.isfinite(torch.stack(grads)).all())
        if not all_finite(learner, finite):  # FSDP: each process checks its shards
            what = "a gradient is not finite"
    if what is None:
        return True
    step = learner.global_step + 1
    name = learner.stream.names[task]
    if learner.config.nonfinite == "skip":
        skipped = learner.__dict__.setdefault("_nonfinite_skipped", {})
        skipped[name] = skipped.get(name, 0) + 1
        return False
    raise TrainingError(
        f"Training stopped at optimizer step {step} (task {task} {name!r}): the {what}. "
        f"Nothing computed from these weights is reported. Try a lower lr (now "
        f"{learner.config.lr:g}) or max_grad_norm, full precision instead of "
        f"{learner.config.mixed_precision!r} (bf16 is safer than fp16), or "
        "TrainConfig(nonfinite='skip') to drop such steps."
    )


def after_task(learner: Learner, task: int) -> None:
    """Warns how many steps a task skipped; refuses weights that are no longer finite."""
    name = learner.stream.names[task]
    skipped = learner.__dict__.get("_nonfinite_skipped", {}).pop(name, 0)
    if skipped:
        warnings.warn(
            f"Task {task} {name!r}: {skipped} optimizer step(s) skipped because the loss or "
            "a gradient was not finite (TrainConfig.nonfinite='skip').",
            stacklevel=2,
        )
    bad = [n for n, p in learner.trainable_parameters().items() if not _finite(p)]
    if bad:
        raise TrainingError(
            f"After task {task} {name!r} the weights {bad[:3]} are not finite; nothing is "
            f"evaluated from them. Try a lower lr (now {learner.config.lr:g}) or "
            "max_grad_norm, or full precision."
        )


def _finite(tensor: Any) -> bool:
    return bool(torch.isfinite(tensor.detach()).all())
