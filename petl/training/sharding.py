"""petl's own FSDP2 sharding of the training step (`TrainConfig(sharding="fsdp")`).

Why petl wraps the model itself instead of going through Accelerate's FSDP plugin:
accelerate 1.16 only switches to FSDP for GPU-like devices (a CPU launch stays
MULTI_CPU, the plugin is silently ignored), and its wrapping is permanent (every
transformer block keeps FSDP hooks), while petl's strategies read and write parameters
between tasks (EWC anchors, O-LoRA folding, TaskAdapters swapping adapters).

What this module does, per task:
- `prepare`: wraps a fresh `TrainStep` (the model and its whole loss) with
  `torch.distributed.fsdp.fully_shard` as ONE shard unit over a 1-D device mesh. At rest
  every process holds 1/N of each backbone parameter, of its gradient and of AdamW's
  state; the root's forward all-gathers them, so inside the loss (EWC's penalty, O-LoRA's
  orthogonality, LwF's distillation) strategies see full tensors, unchanged. Gradients are
  reduce-scattered (mean over processes, as DDP). The task heads are kept out of FSDP
  (`ignored_params`): they are small, and per-task heads go unused on some processes,
  which a reduce-scatter cannot express; `sync_grads` all-reduces them as DDP would
  (mean; no gradient where no process used them).
- `release` (end of the task): gathers every shard back into plain full parameters, so
  that between tasks (evaluation, Fisher, anchors, merges, adapter swaps, checkpoints)
  the model is an ordinary module on every process, as under DDP. The next task shards
  the (possibly changed) weights afresh.
- Mid-task checkpoints gather the full model and optimizer state on every process
  (rank 0 writes them): the files are exactly those of an unsharded run, so a sharded run
  resumes on any number of processes, sharded or not.

One process: sharding is a no-op (nothing to shard across)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from petl.errors import ConfigError

if TYPE_CHECKING:
    from petl.training.seam import LearnerView, TrainingLearner

MODES = ("none", "fsdp")
_KEY = "_fsdp_run"  # learner.__dict__ key of the current task's `Run`


@dataclass
class Run:
    """One task's sharded training step and the replicated (ignored) parameters."""

    step: nn.Module
    replicated: list[nn.Parameter] = field(default_factory=list)


def launched_with_fsdp(acc: Any) -> bool:
    """True when the launcher asked for FSDP: Accelerate's FSDP type (GPUs), or
    `accelerate launch` with an FSDP config (ACCELERATE_USE_FSDP=true) on CPU processes,
    where Accelerate itself ignores the FSDP plugin."""
    if "FSDP" in str(getattr(acc, "distributed_type", "")):
        return True
    return os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true", "yes")


def enabled(learner: TrainingLearner) -> bool:
    """Whether this run trains sharded: several processes and sharding requested (by
    TrainConfig or by the launcher's FSDP config)."""
    acc = learner.accelerator
    if acc is None:
        return False
    if launched_with_fsdp(acc):  # also one GPU under an FSDP config: petl wraps, not accelerate
        import torch.distributed as dist

        return acc.num_processes > 1 or (dist.is_available() and dist.is_initialized())
    return acc.num_processes > 1 and getattr(learner.config, "sharding", "none") == "fsdp"


def check(learner: TrainingLearner) -> None:
    """Clear errors, before training, for what sharding does not support yet."""
    if not enabled(learner):
        return
    if learner.config.early_stopping_patience is not None:
        raise ConfigError(
            "early_stopping_patience is not supported with FSDP sharding yet (the best "
            "epoch's weights would be kept as shards). Train a fixed number of epochs, or "
            "use sharding='none' (DDP)."
        )
    # petl's own per-step hooks read gradients or weights, which are shards during a
    # sharded step. SI, A-GEM, GEM and AdaLoRA's budget gather them (`full`, `gathered`,
    # `assign_grad`, `full_parameters`) and say so with `shard_aware = True`; any other
    # is refused. A user's hook is the user's call.
    stepping = [
        getattr(s, "name", type(s).__name__)
        for s in [*learner.strategies, *learner.hooks.method]
        if type(s).__module__.startswith("petl.")
        and not getattr(s, "shard_aware", False)
        and (_overrides(s, "before_step") or _overrides(s, "after_step"))
    ]
    if stepping:
        raise ConfigError(
            f"{stepping} read gradients or parameters at every optimizer step, which are "
            "shards under FSDP; they are proven under DDP only. Use sharding='none' (DDP)."
        )


def _overrides(obj: Any, hook: str) -> bool:
    # The Strategy base's no-op defaults carry the protocol's `petl_no_op` mark.
    method = getattr(type(obj), hook, None)
    return method is not None and not getattr(method, "petl_no_op", False)


def current(learner: LearnerView) -> Run | None:
    return learner.__dict__.get(_KEY)


def prepare(
    learner: TrainingLearner, optimizer: torch.optim.Optimizer, step: nn.Module
) -> tuple[nn.Module, Any]:
    """Shards `step` (a fresh `TrainStep` of petl.training.loop) and points `optimizer` (built over the plain parameters,
    still without state) at the sharded ones. Returns (step module, optimizer)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    check(learner)
    model = learner.model
    names = {id(p): n for n, p in model.named_parameters()}
    heads = {p for n, p in model.named_parameters() if n.startswith("heads.")}
    device = learner.accelerator.device
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    fully_shard(step, mesh=mesh, ignored_params=heads)
    now = dict(model.named_parameters())
    for group in optimizer.param_groups:  # no state yet: only the tensors change
        group["params"] = [now[names[id(p)]] for p in group["params"]]
    replicated = [p for n, p in now.items() if n.startswith("heads.") and p.requires_grad]
    learner.__dict__[_KEY] = Run(step, replicated)
    return step, optimizer


def sync_grads(learner: TrainingLearner) -> None:
    """All-reduces the replicated parameters' gradients (mean over processes, as DDP).
    A parameter no process used keeps no gradient (AdamW skips it, as in one process)."""
    run = current(learner)
    if run is None or not run.replicated:
        return
    import torch.distributed as dist

    world = dist.get_world_size()
    used = torch.tensor([float(p.grad is not None) for p in run.replicated])
    dist.all_reduce(used)
    params = [p for p, u in zip(run.replicated, used.tolist(), strict=True) if u]
    if not params:
        return
    flat = torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    )
    dist.all_reduce(flat)
    flat /= world
    start = 0
    for p in params:
        p.grad = flat[start : start + p.numel()].view_as(p).clone()
        start += p.numel()


def _local(t: torch.Tensor) -> torch.Tensor:
    from torch.distributed.tensor import DTensor

    return t.to_local() if isinstance(t, DTensor) else t


def grad_norm_sq(params: list[nn.Parameter]) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of squares of this process's gradient shards, of the replicated gradients)."""
    from torch.distributed.tensor import DTensor

    sharded, replicated = torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    for p in params:
        if p.grad is None:
            continue
        sq = _local(p.grad).detach().double().pow(2).sum()
        if isinstance(p.grad, DTensor):
            sharded = sharded + sq
        else:
            replicated = replicated + sq
    return sharded, replicated


def clip_grad_norm_(params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    """`torch.nn.utils.clip_grad_norm_` over sharded (DTensor) and replicated gradients:
    the global norm from every process's shards, the same scale on every process."""
    import torch.distributed as dist

    sharded, replicated = grad_norm_sq(params)
    dist.all_reduce(sharded)
    total = (sharded + replicated).sqrt().float()
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                _local(p.grad).mul_(coef)
    return total


def all_finite(learner: TrainingLearner, finite: bool) -> bool:
    """`finite` agreed by every process (a rank that stops alone would hang the others)."""
    if current(learner) is None:
        return finite
    import torch.distributed as dist

    flag = torch.tensor([0.0 if finite else 1.0])
    dist.all_reduce(flag)
    return flag.item() == 0


def local_grad(grad: torch.Tensor) -> torch.Tensor:
    """This process's part of a gradient (its shard under FSDP)."""
    return _local(grad)


def _full(t: torch.Tensor) -> torch.Tensor:
    from torch.distributed.tensor import DTensor

    return t.full_tensor() if isinstance(t, DTensor) else t


def full(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a sharded parameter or gradient (a collective: every process
    calls it, in the same order); a plain tensor as it is."""
    return _full(t)


@contextmanager
def gathered(learner: LearnerView) -> Iterator[None]:
    """Within it, the model holds full (all-gathered) plain parameters, e.g. for a forward
    and `torch.autograd.grad` on remembered examples in a per-step hook (A-GEM, GEM);
    resharded on exit. Nothing happens when not sharded. A collective."""
    run = current(learner)
    if run is None:
        yield
        return
    step: Any = run.step  # an FSDPModule since `prepare`
    step.unshard()  # FSDP2 sets the full parameters on the modules
    try:
        yield
    finally:
        step.reshard()


def assign_grad(p: nn.Parameter, grad: torch.Tensor) -> None:
    """Sets `p.grad` from a FULL gradient that every process holds identically: a sharded
    parameter keeps only its own shard of it."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    grad = grad.detach().to(p.dtype).view(p.shape)
    if isinstance(p, DTensor):
        # every process holds the same full tensor: slice locally, no communication
        grad = distribute_tensor(grad, p.device_mesh, p.placements, src_data_rank=None)
    if p.grad is None:
        p.grad = grad.clone()
    else:
        _local(p.grad).copy_(_local(grad))


@contextmanager
def full_parameters(learner: LearnerView, wanted: Callable[[str], bool]) -> Iterator[None]:
    """Within it, the sharded parameters whose name `wanted` accepts are plain full
    Parameters carrying their full gradients (for code that reads and edits weights and
    gradients in place, e.g. peft's AdaLoRA budget); on exit each process writes its
    shard of the (possibly edited) weights back. Nothing happens when not sharded. A
    collective: every process calls it, in the same order."""
    if current(learner) is None:
        yield
        return
    from torch.distributed.tensor import DTensor, distribute_tensor

    swapped = []
    for mod_name, module in learner.model.named_modules():
        for name, p in list(module._parameters.items()):
            full_name = f"{mod_name}.{name}" if mod_name else name
            if not isinstance(p, DTensor) or not wanted(full_name):
                continue
            plain = nn.Parameter(p.full_tensor().detach().clone(), requires_grad=p.requires_grad)
            if p.grad is not None:
                plain.grad = _full(p.grad)
            module._parameters[name] = plain
            swapped.append((module, name, p, plain))
    try:
        yield
    finally:
        with torch.no_grad():
            for module, name, p, plain in swapped:
                mine = distribute_tensor(plain, p.device_mesh, p.placements, src_data_rank=None)
                _local(p).copy_(mine.to_local())
                module._parameters[name] = p


def release(learner: TrainingLearner) -> None:
    """Ends the task's sharding: every parameter becomes a plain full tensor again (a
    collective: every process calls it, in the same parameter order)."""
    run = learner.__dict__.pop(_KEY, None)
    if run is None:
        return
    from torch.distributed.tensor import DTensor

    run.step.reshard()  # an evaluation forward may have left it unsharded
    done: dict[int, nn.Parameter] = {}  # tied weights stay tied
    for module in learner.model.modules():
        for name, p in list(module._parameters.items()):
            if p is None or not isinstance(p, DTensor):
                continue
            if id(p) not in done:
                full = p.full_tensor().detach().clone()
                done[id(p)] = nn.Parameter(full, requires_grad=p.requires_grad)
            module._parameters[name] = done[id(p)]


def checkpoint_parts(
    learner: TrainingLearner, optimizer: torch.optim.Optimizer, flat_optimizer: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Full (gathered) model weights and optimizer state for a mid-task checkpoint, in
    the unsharded format; {} when not sharded. Every process calls it (collectives)."""
    if current(learner) is None:
        return {}
    model = {
        n: _full(p.detach())
        for n, p in learner.model.named_parameters()
        if p.requires_grad or n.startswith("heads.")
    }
    opt = {k: _full(v) if isinstance(v, torch.Tensor) else v for k, v in flat_optimizer.items()}
    return {"model": model, "optimizer": opt}


def load_optimizer_state(
    learner: TrainingLearner, optimizer: torch.optim.Optimizer, flat: dict[str, Any]
) -> None:
    """Loads a full (unsharded-format) optimizer state, then shards the state of sharded
    parameters like the parameters themselves."""
    from petl.training import checkpoint as ckpt

    ckpt.load_optimizer_state(optimizer, flat)
    if current(learner) is None:
        return
    from torch.distributed.tensor import DTensor, distribute_tensor

    for group in optimizer.param_groups:
        for p in group["params"]:
            if not isinstance(p, DTensor):
                continue
            for key, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape:
                    optimizer.state[p][key] = distribute_tensor(
                        value.to(p.dtype), p.device_mesh, p.placements
                    )


def shard_fraction(params: list[nn.Parameter]) -> float:
    """Elements this process holds / elements of the full parameters (1.0 unsharded)."""
    held = sum(_local(p.detach()).numel() for p in params)
    total = sum(p.numel() for p in params)
    return held / total if total else 1.0


__all__ = [
    "MODES",
    "assign_grad",
    "check",
    "checkpoint_parts",
    "clip_grad_norm_",
    "enabled",
    "full",
    "full_parameters",
    "gathered",
    "launched_with_fsdp",
    "load_optimizer_state",
    "prepare",
    "release",
    "sync_grads",
]
