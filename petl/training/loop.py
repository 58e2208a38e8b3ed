"""petl's one training loop: AdamW, warmup schedule, gradient accumulation and clipping,
mixed precision and multi-process on Accelerate, early stopping, step checkpoints.

Every strategy and every method trains through `train_task`; strategies (and methods'
own hooks, such as AdaLoRA's budget step) act only through `learner.hooks`."""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from tqdm.auto import tqdm

from petl.progress import disabled as progress_disabled
from petl.training import checkpoint as ckpt
from petl.training import guard, sharding, tracking
from petl.training.data import make_loader
from petl.training.param_groups import param_groups
from petl.training.run import save_checkpoint

if TYPE_CHECKING:
    from petl.training.learner import Learner


def epoch_order(n: int, seed: int, task: int, epoch: int) -> list[int]:
    """The shuffle of an epoch: a pure function of (seed, task, epoch), so a resumed run
    sees exactly the batches the interrupted one would have."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + task * 1_009 + epoch)
    return torch.randperm(n, generator=gen).tolist()


def micro_seed(seed: int, task: int, epoch: int, micro: int) -> int:
    """The torch seed of one micro-batch (dropout masks): a pure function of its place in
    the run, so a resumed run draws the masks an uninterrupted one would, whatever else
    (data loaders, evaluations) drew random numbers in between."""
    return (((seed * 1_000_003 + task) * 1_009 + epoch) * 1_000_003 + micro) % 2**63


def batch_share(left: int, local: int, acc: Any) -> tuple[int, int]:
    """(real rows of this process's share, real rows of the global batch).

    With `split_batches`, every process gets `local` rows of each global batch, in rank
    order; an uneven last batch (`left` real examples) is padded by Accelerate with
    examples from the start of the epoch, which must not be trained on twice."""
    world = acc.num_processes
    real_global = min(left, local * world)
    return min(max(real_global - acc.process_index * local, 0), local), real_global


class TrainStep(nn.Module):
    """The model and its whole training loss, as one module: this is what Accelerate
    prepares (wraps in DDP). DDP expects every use of a parameter to happen inside the
    wrapped forward; strategy terms (EWC's penalty, LwF's distillation through old heads)
    use parameters too, so they are computed here, not after the forward.

    Called with `left=None` it returns the model's logits (evaluation)."""

    def __init__(self, learner: Learner) -> None:
        super().__init__()
        self.model = learner.model
        self.__dict__["learner"] = learner  # a plain attribute, not a submodule

    def forward(self, batch: dict[str, torch.Tensor], left: int | None = None) -> Any:
        learner = self.__dict__["learner"]
        if left is None:
            return self.model(batch)
        acc, local = learner.accelerator, len(batch["labels"])
        real, real_global = batch_share(left, local, acc)
        if real < local:  # drop padding rows; keep one (weighted 0) if all are padding
            batch = {k: v[: max(real, 1)] for k, v in batch.items()}
        logits = self.model(batch)
        logits = learner.hooks.train_logits(learner, batch, logits)  # e.g. MaskSeen
        family = learner.family  # cross-entropy over labels, tags or answer tokens
        if real_global == local * acc.num_processes:
            loss = family.loss(logits, batch)
            learner.row_weight = 1 / local  # each row's weight in `loss` (for ER-ACE)
        else:  # sum / real_global * world: DDP's mean over processes is the global mean
            loss = family.loss(logits, batch, reduction="sum")
            learner.row_weight = acc.num_processes / real_global if real else 0.0
            loss = loss * learner.row_weight
        return learner.hooks.loss(learner, batch, logits, loss)


def prepare(learner: Learner, optimizer: torch.optim.Optimizer) -> tuple[Any, Any]:
    """Wraps a fresh `TrainStep` and `optimizer` for this task (after freeing the last
    task's wrappers: heads and adapters change which parameters train).

    Per-task heads chosen by task id ("route" mode) leave the heads of tasks absent from
    a batch without gradient; DDP then needs `find_unused_parameters=True`, which petl sets
    when the accelerator has no DDP settings of its own."""
    acc = learner.accelerator
    acc.free_memory()
    if sharding.enabled(learner):  # petl's own FSDP2 wrapping (petl.training.sharding)
        return sharding.prepare(learner, optimizer, TrainStep(learner))
    heads = getattr(learner.model, "heads", None)  # causal LMs have none
    route = heads is not None and heads.mode == "route"
    if route and acc.num_processes > 1 and getattr(acc, "ddp_handler", "unset") is None:
        from accelerate.utils import DistributedDataParallelKwargs

        acc.ddp_handler = DistributedDataParallelKwargs(find_unused_parameters=True)
    return acc.prepare(TrainStep(learner), optimizer)


def _trainable_state(learner: Learner) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in learner.trainable_parameters().items()}


def train_task(learner: Learner, t: int, resume: dict[str, Any] | None) -> None:
    """Trains task `t`: from scratch, or from a mid-task checkpoint (`resume`: its parts;
    the place in the task is already in `learner.run`)."""
    from transformers import get_scheduler

    cfg, acc, run = learner.config, learner.accelerator, learner.run
    if resume is None:
        items = [(t, i) for i in range(len(learner.rows(t)))]
        run.start_task(t, learner.hooks.train_items(learner, t, items))
        learner.hooks.call("before_task", learner, t)
    rows = learner.item_rows(run.items)
    lr = cfg.for_method(learner.method).lr or 0.0
    groups = param_groups(learner, lr)  # per-group lr scales that strategies declare
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.weight_decay)
    del groups  # FSDP replaces the weights: no reference may keep the full ones
    micro_per_epoch = math.ceil(len(rows) / cfg.batch_size)
    steps = math.ceil(micro_per_epoch / cfg.grad_accum) * cfg.epochs
    scheduler = get_scheduler(
        cfg.scheduler,
        optimizer,
        num_warmup_steps=int(cfg.warmup_ratio * steps),
        num_training_steps=steps,
    )
    model, optimizer = prepare(learner, optimizer)
    params = [p for p in learner.model.parameters() if p.requires_grad]  # after FSDP swaps them
    learner.use_training_model(model)
    best_state = None
    if resume is not None:
        sharding.load_optimizer_state(learner, optimizer, resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        best_state = resume.get("best") or None
    left = len(rows)
    bar = tqdm(
        total=steps,
        initial=run.step_in_task,
        desc=f"task {t + 1}/{len(learner.stream)} {learner.stream.names[t]}",
        disable=progress_disabled(learner),  # no bar when not a terminal
        leave=False,
    )
    first_epoch, first_micro = run.epoch, run.micro
    for epoch in range(first_epoch, cfg.epochs):
        order = epoch_order(len(rows), cfg.seed, t, epoch)
        loader = acc.prepare_data_loader(
            make_loader(
                [rows[i] for i in order],
                cfg.batch_size,
                learner.pad_id,
                ids=order,
                collate_fn=learner.family.collate,
            )
        )
        skip = first_micro if epoch == first_epoch else 0
        if skip:
            loader = acc.skip_first_batches(loader, skip)
        model.train()
        for micro, batch in enumerate(loader, start=skip):
            is_step = (micro + 1) % cfg.grad_accum == 0 or micro + 1 == micro_per_epoch
            # + rank: processes draw different dropout masks for their different rows
            torch.manual_seed(micro_seed(cfg.seed, t, epoch, micro) + acc.process_index)
            with acc.no_sync(model) if not is_step else nullcontext():
                loss = model(batch, left=left - micro * cfg.batch_size)
                acc.backward(loss / cfg.grad_accum)
            if not is_step:
                continue
            sharding.sync_grads(learner)  # FSDP: the replicated heads' gradients
            if not guard.step_is_finite(learner, loss, params, t):  # NaN/inf: stop or skip
                optimizer.zero_grad(set_to_none=True)
                continue
            clip = acc.clip_grad_norm_  # unscales fp16 gradients, then clips
            if sharding.current(learner) is not None:
                clip = sharding.clip_grad_norm_
            if learner.hooks.has("before_step"):
                acc.unscale_gradients()  # hooks see true gradients; unscaling twice fails
                learner.hooks.call("before_step", learner)
                clip = torch.nn.utils.clip_grad_norm_
                if sharding.current(learner) is not None:
                    clip = sharding.clip_grad_norm_
            if cfg.max_grad_norm is not None:
                clip(params, cfg.max_grad_norm)
            optimizer.step()
            tracking.log_step(learner, loss, scheduler)  # before the scheduler moves the lr
            scheduler.step()
            run.global_step += 1
            run.step_in_task += 1
            learner.hooks.call("after_step", learner)  # gradients still there (AdaLoRA)
            optimizer.zero_grad(set_to_none=True)
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if cfg.checkpoint_every and run.global_step % cfg.checkpoint_every == 0:
                run.epoch, run.micro = epoch, micro + 1
                _checkpoint(learner, optimizer, scheduler, best_state)
        run.epoch, run.micro = epoch + 1, 0
        if cfg.early_stopping_patience is not None:
            val = learner.score(t, "val")
            if run.best is None or val > run.best:
                run.best, run.bad_epochs, best_state = val, 0, _trainable_state(learner)
            else:
                run.bad_epochs += 1
            if run.bad_epochs >= cfg.early_stopping_patience:
                break
    bar.close()
    if best_state is not None:
        own = learner.trainable_parameters()
        with torch.no_grad():
            for name, value in best_state.items():
                own[name].copy_(value)
    sharding.release(learner)  # FSDP: plain full parameters again between tasks
    guard.after_task(learner, t)
    learner.use_training_model(None)


def _checkpoint(
    learner: Learner,
    optimizer: Any,
    scheduler: Any,
    best_state: dict[str, torch.Tensor] | None,
) -> None:
    inner = getattr(optimizer, "optimizer", optimizer)
    extra = {
        "optimizer": ckpt.optimizer_state(inner),
        "scheduler": scheduler.state_dict(),
        "best": best_state or {},
    }
    extra.update(sharding.checkpoint_parts(learner, inner, extra["optimizer"]))  # FSDP: gathered
    save_checkpoint(learner, phase="training", extra=extra)
