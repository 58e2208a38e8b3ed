"""What a `Learner` runs on: the backbone (loaded from a path as its family asks), the
Accelerator (made from TrainConfig or the user's own, checked against the launch),
activation checkpointing, and the teardown of a multi-process run."""

from __future__ import annotations

import gc
import os
import time
from typing import Any

import torch
from torch import nn

from petl.errors import ConfigError
from petl.families import Family
from petl.training import tracking
from petl.training.config import TrainConfig


def load_backbone(source: Any, tokenizer: Any, family: Family) -> tuple[nn.Module, Any]:
    """The backbone and tokenizer: `source` itself when it is a model object, else loaded
    from its path with the family's transformers Auto class."""
    if not isinstance(source, str):
        return source, tokenizer
    import transformers

    from petl.quiet import quiet_petl_calls

    if not os.path.exists(source) and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ConfigError(f"Model {source!r} is not a local path and the hub is offline.")
    tokenizer = tokenizer or transformers.AutoTokenizer.from_pretrained(source)
    auto = getattr(transformers, family.auto_class)
    with quiet_petl_calls():  # the classifier reported MISSING is replaced by heads
        return auto.from_pretrained(source, **family.auto_kwargs), tokenizer


def make_accelerator(given: Any, config: TrainConfig) -> Any:
    """`given` (a user-built Accelerator) or one made from `config`, checked against the
    processes launched."""
    acc = given
    if acc is None:
        from accelerate import Accelerator
        from accelerate.utils import DataLoaderConfiguration

        precision = _precision(config)
        acc = Accelerator(
            mixed_precision=precision,
            dataloader_config=DataLoaderConfiguration(split_batches=True),
            cpu=_use_cpu() or None,
            **tracking.accelerator_kwargs(config),  # TrainConfig.log_with
        )
    _check_processes(acc, config)
    if acc.num_processes > 1:
        _register_teardown()
    return acc


def _precision(config: TrainConfig) -> str:
    """The precision to build the Accelerator with: TrainConfig's, or for "no" (the default)
    the launcher's (`accelerate launch --mixed_precision` or its config file set
    ACCELERATE_MIXED_PRECISION), else "no".

    Accelerate keeps one process-wide state and silently hands a later `Accelerator()` the
    precision of the first one made; an earlier TRL or transformers Trainer in the same
    process (TRL's SFTConfig defaults to bf16) would make a petl run asked for fp32 train in
    bf16. In one process that state is reset to what petl was asked for, as transformers'
    TrainingArguments does; across launched processes a disagreement is an error."""
    from accelerate.state import AcceleratorState

    precision = config.mixed_precision
    if precision == "no":
        precision = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower()
    live = AcceleratorState._shared_state.get("_mixed_precision")
    deepspeed = "DEEPSPEED" in str(AcceleratorState._shared_state.get("distributed_type"))
    if live is None or live == precision or deepspeed:  # DeepSpeed's config owns precision
        return precision
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            f"An Accelerator made earlier in this process runs mixed_precision={live!r} but "
            f"TrainConfig asks for {precision!r}; set TrainConfig.mixed_precision={live!r} or "
            "pass that Accelerator as Learner(accelerator=...)."
        )
    import warnings

    warnings.warn(
        f"An Accelerator made earlier in this process (a Trainer's, or your own) left "
        f"accelerate's process-wide state at mixed_precision={live!r}; petl resets it to "
        f"{precision!r} as TrainConfig asks. To train under that Accelerator instead, pass it "
        "as Learner(accelerator=...).",
        stacklevel=4,
    )
    AcceleratorState._reset_state()
    return precision


def enable_checkpointing(model: nn.Module) -> None:
    """Activation (gradient) checkpointing, non-reentrant: the reentrant variant breaks
    DDP when some parameters go unused (per-task heads) and frozen-input PEFT models."""
    kwargs = {"use_reentrant": False}
    enable = getattr(model, "activation_checkpointing_enable", None)  # transformers >= 5
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    elif (legacy := getattr(model, "gradient_checkpointing_enable", None)) is not None:
        legacy(gradient_checkpointing_kwargs=kwargs)
    else:
        raise ConfigError(f"{type(model).__name__} does not support gradient checkpointing.")


def _use_cpu() -> bool:
    """True when Accelerate must be told `cpu=True`: ACCELERATE_USE_CPU is set, or several
    processes were launched (WORLD_SIZE > 1) on a machine without an accelerator. Without
    it, `Accelerator()` under `accelerate launch --multi_gpu` or `torchrun` on CPUs gives N
    independent single-process copies that each train on all the data."""
    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    available = getattr(torch, "accelerator", None)
    has_device = available.is_available() if available is not None else torch.cuda.is_available()
    return not has_device


def _check_processes(acc: Any, cfg: TrainConfig) -> None:
    """Clear errors, before training, for launches that would silently train wrongly."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    n = acc.num_processes
    if world > 1 and n != world:
        raise ConfigError(
            f"{world} processes were launched but the Accelerator runs {n}: each process would "
            "train its own copy on all the data. On CPUs set ACCELERATE_USE_CPU=true or pass "
            "Accelerator(cpu=True); on GPUs check the launch command."
        )
    if n > 1 and not getattr(acc, "split_batches", True):
        raise ConfigError(
            "petl needs Accelerator(dataloader_config=DataLoaderConfiguration(split_batches=True)): "
            "TrainConfig.batch_size is the global batch, split across processes."
        )
    kind = str(getattr(acc, "distributed_type", ""))
    if "DEEPSPEED" in kind:  # FSDP: petl shards itself (petl.training.sharding)
        import warnings

        warnings.warn(
            f"petl's loop was validated under DDP and FSDP; under {kind} parameters or "
            "optimizer state are partitioned by DeepSpeed, which EWC, OLoRA, TaskAdapters and "
            "petl's checkpoints do not handle yet. See docs/distributed.md.",
            stacklevel=3,
        )
    for name in ("batch_size", "eval_batch_size"):
        value = getattr(cfg, name)
        if n > 1 and value % n:
            raise ConfigError(
                f"TrainConfig.{name}={value} is the global batch and must be a multiple of the "
                f"{n} processes (e.g. {value + n - value % n})."
            )


_TEARDOWN_REGISTERED = False
TEARDOWN_DRAIN_S = 0.2  # seconds the main thread hands the GIL to gloo's worker threads
# How long a rank waits at exit for the others: room for the main process's end-of-run
# writes (report, plots, checkpoint); past it, the group is destroyed without the wait.
TEARDOWN_WAIT_S = 300


def _register_teardown() -> None:
    global _TEARDOWN_REGISTERED
    if not _TEARDOWN_REGISTERED:
        import atexit

        atexit.register(_destroy_process_group)
        _TEARDOWN_REGISTERED = True


def _destroy_process_group() -> None:
    """Ends the process group while the interpreter is still whole.

    A gloo worker thread marks a collective done, then frees it, and freeing its tensors
    takes the GIL; a thread that asks for the GIL once interpreter finalization has begun
    is ended by Python inside a destructor, which aborts the process (SIGABRT, "terminate
    called without an active exception", seen in a core dump) after a finished run and
    fails the launch: about once in 40 two-process FSDP launches on 2 oversubscribed
    cores, where a descheduled worker thread frees the last gather after the main thread
    has raced to exit. So at exit: wait until every rank has finished its collectives,
    destroy the group, and give the worker threads the GIL for a moment to free what they
    hold, before finalization starts."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return
    _wait_for_every_process()
    dist.destroy_process_group()
    let_collective_threads_finish()


def let_collective_threads_finish() -> None:
    """Frees what finished Learners left behind (modules, their last collectives' tensors)
    while the interpreter is whole, then releases the GIL for a moment to worker threads
    still freeing their last collective. The group's threads themselves may outlive this:
    handles held outside Python keep it alive, and gloo's shutdown does not join them."""
    gc.collect()
    time.sleep(TEARDOWN_DRAIN_S)


def _wait_for_every_process() -> None:
    """A bounded barrier (gloo's monitored barrier) unless this process is exiting on an
    uncaught exception: a rank that crashed never arrives, and its launcher stops the
    others anyway."""
    import sys
    from datetime import timedelta

    dist = torch.distributed
    if getattr(sys, "last_value", None) is not None or dist.get_backend() != "gloo":
        return
    try:
        dist.monitored_barrier(timeout=timedelta(seconds=TEARDOWN_WAIT_S))
    except RuntimeError as e:  # another rank left early: nothing left to wait for
        import warnings

        warnings.warn(f"petl: not every process reached the end of the run ({e}).", stacklevel=1)
