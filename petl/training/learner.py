"""`Learner`: trains one model on a stream of tasks with a PEFT method and any strategies,
evaluates every task after every task, and checkpoints so that a killed run resumes."""

from __future__ import annotations

import json
import math
import os
import resource
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from petl.errors import ConfigError, DataError
from petl.families import Family, get_family
from petl.integrity import check_writable
from petl.results import Results
from petl.strategies.protocol import HOOKS, Hooks, method_hooks
from petl.stream import Stream
from petl.training import checkpoint as ckpt
from petl.training import checks, tracking
from petl.training.config import TrainConfig
from petl.training.data import Encoded, Item, iter_batches, make_loader
from petl.training.loop import train_task

__all__ = ["HOOKS", "Learner"]


class Learner:
    """Continual learner over a task stream.

    Args:
        model: A transformers sequence-classification model, or a path / hub name loaded
            with `AutoModelForSequenceClassification`, or a built-in offline name
            ("minilm", "smollm2"; see petl.models.resolve_model). Its last linear layer is replaced
            by petl's task heads (the model object is modified in place).
        tokenizer: The tokenizer; loaded from `model` when it is a path.
        method: A PEFT method name, a peft/petl config, or None for full fine-tuning.
        method_options: Options of the method, e.g. `{"r": 8}`.
        strategies: Continual-learning strategies, applied together (default: Naive): a
            list of instances, one instance, or names of `petl.STRATEGIES`.
        config: Training settings.
        accelerator: A user-built `accelerate.Accelerator` (else one is made from config).
        family: The task family with options, e.g. `GenerationFamily(decoding="labels")`;
            default: the stream's family (`stream.family`) with default options. The model
            type follows the family: sequence classification, token classification (both
            get petl's task heads) or a causal LM (see petl.families).
    """

    def __init__(
        self,
        model: nn.Module | str,
        tokenizer: Any = None,
        method: Any = "lora",
        method_options: dict[str, Any] | None = None,
        strategies: Sequence[Any] | None = None,
        config: TrainConfig | None = None,
        accelerator: Any = None,
        family: str | Family | None = None,
    ) -> None:
        if isinstance(model, os.PathLike):
            model = os.fspath(model)
        if isinstance(model, str):  # "minilm" etc., checked now rather than at fit
            from petl.models import resolve_model

            model = resolve_model(model)
        self.source = model
        self.tokenizer = tokenizer
        self.method = method
        self.method_options = dict(method_options or {})
        self.strategies = checks.strategies(strategies)
        self.config = checks.train_config(config)
        self._accelerator = accelerator
        self._family = family
        if isinstance(method, str):
            from petl.methods import get_method

            get_method(method)
        self.hooks = Hooks(self.strategies)  # checks hook names; the one dispatcher
        if not isinstance(self.source, str) and tokenizer is None:
            raise ConfigError("Pass tokenizer= with a model object (or pass a model path).")
        self.model: Any  # ClassifierModel (task heads) or LMModel, built by the family
        self.per_task_heads = False
        self.stream: Stream
        self.family: Family
        self.task_index = 0
        self.global_step = 0
        self.global_step_in_task = 0
        self.items: list[Item] = []
        self._built = False  # a model object is modified in place: it can be built on once
        self._ready_for: Stream | None = None  # the stream setup() last prepared, until fit

    # ---- public helpers for strategies --------------------------------------------------
    @property
    def accelerator(self) -> Any:
        return self._accelerator

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """Trainable parameters by name, on the unwrapped model (stable under DDP)."""
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def label_ids(self, task: int) -> dict[str, int]:
        """Label name -> logit column for a task: its own head's order with per-task heads,
        else the stream's (growing or shared) label space."""
        if self.per_task_heads:
            return {label: i for i, label in enumerate(self.stream.tasks[task].labels)}
        return self.stream.label_ids(task)

    def rows(self, task: int, split: str = "train") -> list[Any]:
        """Encoded rows of a task's split (`Encoded`, or the family's row type)."""
        return self._rows[task][split]

    def item_rows(self, items: Sequence[Item]) -> list[Any]:
        return [self._rows[t]["train"][i] for t, i in items]

    def batches(self, rows: Sequence[Encoded], batch_size: int | None = None):
        return iter_batches(
            rows,
            batch_size or self.config.eval_batch_size,
            self.pad_id,
            self.device,
            collate_fn=self.family.collate,
        )

    @torch.no_grad()
    def logits_for(self, rows: Sequence[Encoded]) -> torch.Tensor:
        """Logits of the current model for `rows`, gathered across processes, on CPU."""
        model = self._prepared_model or self.model
        was_training = model.training
        model.eval()
        loader = self.accelerator.prepare_data_loader(
            make_loader(
                rows, self.config.eval_batch_size, self.pad_id, collate_fn=self.family.collate
            )
        )
        out = []
        for batch in loader:
            with self.accelerator.autocast():
                logits = model(batch)
            out.append(self.accelerator.gather_for_metrics(logits.float().contiguous()).cpu())
        model.train(was_training)
        return torch.cat(out)

    # ---- setup --------------------------------------------------------------------------
    def _make_accelerator(self) -> Any:
        if self._accelerator is None:
            from accelerate import Accelerator
            from accelerate.utils import DataLoaderConfiguration

            # "no" (the default) defers to the launcher (--mixed_precision, config file)
            precision = None if self.config.mixed_precision == "no" else self.config.mixed_precision
            self._accelerator = Accelerator(
                mixed_precision=precision,
                dataloader_config=DataLoaderConfiguration(split_batches=True),
                cpu=_use_cpu() or None,
                **tracking.accelerator_kwargs(self.config),  # TrainConfig.log_with
            )
        _check_processes(self._accelerator, self.config)
        if self._accelerator.num_processes > 1:
            _register_teardown()
        return self._accelerator

    def close(self) -> None:
        """Ends a multi-process run: waits for every process, then destroys the process
        group. Call it after the last `fit` (and any evaluation after it); without it,
        petl destroys the group at interpreter exit, because a process group left alive
        at exit can abort a rank (and fail the launch) after training has finished."""
        acc = self._accelerator
        if acc is not None and acc.num_processes > 1 and torch.distributed.is_initialized():
            acc.wait_for_everyone()
            acc.end_training()

    def _build_backbone(self, stream: Stream) -> nn.Module:
        if isinstance(self.source, str):
            import transformers
            from transformers import AutoTokenizer

            if not os.path.exists(self.source) and os.environ.get("HF_HUB_OFFLINE") == "1":
                raise ConfigError(
                    f"Model {self.source!r} is not a local path and the hub is offline."
                )
            self.tokenizer = self.tokenizer or AutoTokenizer.from_pretrained(self.source)
            auto = getattr(transformers, self.family.auto_class)
            # The checkpoint's own classifier (of any size, e.g. a 9-tag NER model) is
            # replaced by petl's heads, so a size mismatch there is expected.
            kwargs = (
                {"num_labels": 2, "ignore_mismatched_sizes": True}
                if self.family.name != "generation"
                else {}
            )
            from petl.quiet import quiet_petl_calls

            with quiet_petl_calls():  # the classifier reported MISSING is replaced by heads
                return auto.from_pretrained(self.source, **kwargs)
        return self.source

    def apply_method(self, backbone: nn.Module) -> nn.Module:
        """Gradient checkpointing and the PEFT method on a backbone (families call this
        while building the model)."""
        if self.config.gradient_checkpointing:
            _enable_checkpointing(backbone)
        if self.method is not None:
            from petl.api import apply

            options = dict(self.method_options)
            if isinstance(self.method, str):  # e.g. AdaLoRA's total_step (the registry's hooks)
                from petl.methods import training_options

                steps = self._steps_estimate(self.stream)
                options = {**training_options(self.method, steps), **options}
            backbone = apply(backbone, self.method, **options)
        return backbone

    def _steps_estimate(self, stream: Stream) -> int:
        batch = self.config.batch_size * self.config.grad_accum
        per_task = [math.ceil(2 * len(t.train) / batch) * self.config.epochs for t in stream.tasks]
        return max(sum(per_task), 1)

    def setup(self, stream: Stream) -> None:
        """Builds model, heads, data and accelerator for `stream` (fit calls it unless
        setup was just called for the same stream)."""
        from accelerate.utils import set_seed

        if self._built and not isinstance(self.source, str):
            raise ConfigError(
                "This Learner already built its model: a model object is changed in place "
                "(its classifier replaced, the method applied), so it can be set up once. "
                "Make a new Learner with a fresh model, or pass a model path."
            )
        cfg = self.config = self.config.for_method(self.method)  # lr=None: the method's default
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        if cfg.early_stopping_patience is not None and any(not t.val for t in stream.tasks):
            raise DataError("early_stopping_patience needs validation data: set val_fraction > 0.")
        self.stream = stream
        self.family = get_family(self._family, getattr(stream, "family", "classification"))
        self._make_accelerator()
        set_seed(cfg.seed)
        backbone = self._build_backbone(stream)
        self.model = self.family.build_model(self, backbone).to(self.device)
        self._built = True
        self._prepared_model: nn.Module | None = None
        self._test_preds: list[Any] = []
        tok = self.tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        self._rows = [
            {
                split: self.family.encode(self, t, getattr(task, split))
                for split in ("train", "val", "test")
            }
            for t, task in enumerate(stream.tasks)
        ]
        self.hooks.method = method_hooks(self.model)
        checks.max_length(backbone, cfg, self._rows)
        self._call("setup")
        self._ready_for = stream

    def _call(self, hook: str, *args: Any) -> None:
        self.hooks.call(hook, self, *args)

    def fingerprint(self) -> dict[str, Any]:
        cfg = {
            k: v
            for k, v in self.config.to_dict().items()
            if k
            not in (
                "progress",
                "checkpoint_every",
                "num_threads",
                "sharding",
                "log_with",
                "log_dir",
            )
        }
        base = self.model.backbone
        base_cfg: dict[str, Any] = getattr(getattr(base, "config", None), "to_dict", lambda: {})()
        return json.loads(
            json.dumps(
                {
                    "model": self.source
                    if isinstance(self.source, str)
                    else type(self.source).__name__,
                    "model_config": {
                        k: base_cfg.get(k)
                        for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")
                    },
                    "method": self.method
                    if isinstance(self.method, str | None)
                    else repr(self.method),
                    "method_options": self.method_options,
                    "strategies": [
                        [getattr(s, "name", type(s).__name__), _safe(s)] for s in self.strategies
                    ],
                    "family": self.family.config(),
                    "train": cfg,
                    "stream": self.stream.describe(),
                    "stream_digest": self.stream.digest(),
                },
                default=str,
            )
        )

    # ---- fit ----------------------------------------------------------------------------
    def fit(self, stream: Stream, checkpoint_dir: str | None = None) -> Results:
        """Trains on every task of `stream` in order; resumes from `checkpoint_dir` if it holds
        a checkpoint of the same configuration. Returns the accuracy matrix and more."""
        start = time.perf_counter()
        if checkpoint_dir:
            check_writable(checkpoint_dir)  # before training, not after the first task
        if self._ready_for is not stream:
            self.setup(stream)
        self._ready_for = None  # a second fit builds afresh
        T = len(stream)
        self.checkpoint_dir = checkpoint_dir
        state = self._resume() if checkpoint_dir else None
        if state is None:
            self.acc_rows: list[list[float]] = []
            self.initial = self._evaluate_all()
            self.elapsed = 0.0
            first, resume_task = 0, None
        else:
            first = state["task"] + (1 if state["phase"] == "task_done" else 0)
            resume_task = state if state["phase"] == "training" else None
        self._start = start - self.elapsed
        tracking.start(self)
        for t in range(first, T):
            self.task_index = t
            self._activate_heads(t)
            if self.trains(t):
                train_task(
                    self, t, resume_task if resume_task and resume_task["task"] == t else None
                )
            self._call("after_task", t)
            self.acc_rows.append(self._evaluate_all())
            tracking.log_task(self, t)
            self._save_checkpoint(phase="task_done")
        self.accelerator.wait_for_everyone()
        tracking.finish(self)
        return self.results()

    def trains(self, t: int) -> bool:
        """Whether task t is trained by gradient: not when a strategy declares
        `Capabilities(gradient_tasks=n)` (statistic heads: 0; APER: its adapt_tasks), t >= n."""
        n = self.hooks.gradient_tasks()
        return n is None or t < n

    def _activate_heads(self, t: int) -> None:
        # A strategy declaring `freeze_old_heads` trains only task t's head block; declared,
        # not done in a hook, so a resumed run gets the same trainable set.
        heads = getattr(self.model, "heads", None)
        if heads is not None:
            heads.activate(t, freeze_old=self.hooks.capability("freeze_old_heads"))

    def _evaluate_all(self) -> list[float]:
        # The last evaluation's predictions are kept for results() (generation is costly).
        from petl.progress import bar

        tasks = bar(self, range(len(self.stream)), desc="evaluating", unit="task")
        self._test_preds = [self.predictions(t) for t in tasks]
        return [
            self.family.score(self, t, "test", p) if self.rows(t, "test") else 0.0
            for t, p in enumerate(self._test_preds)
        ]

    def predictions(self, task: int, split: str = "test") -> Any:
        """Predictions for a task's split (strategies may override the rule): label ids
        (classification), word tags per sentence (tokens), answer strings (generation)."""
        preds = self.hooks.predict(self, task, split)
        if preds is not None:
            return np.asarray(preds) if self.family.name == "classification" else preds
        return self.family.predict(self, task, self.rows(task, split))[0]

    def predict(self, inputs: Sequence[Any] | None = None, task: int | str | None = None) -> list:
        """Predictions of the trained model for new inputs, or for a task's test split.

        With per-task heads (task-incremental streams, TaskAdapters), `task=` asks that
        task's head (and adapter) only; without it, every task trained so far answers and
        each input gets the answer of the most confident task (top softmax probability
        rescaled by head size; petl.training.routing), as one of that task's labels.

        Args:
            inputs: Texts (or `(text, text_pair)` pairs; for token tasks, word lists or
                whitespace-separated sentences). None: the test split of `task`.
            task: Task index or name. None: the last task trained, or with per-task heads
                the most confident task per input.

        Returns:
            Label names (classification), a tag list per sentence (tokens) or answer
            strings (generation), one per input.
        """
        from petl.training.persist import predict

        return predict(self, inputs, task)

    def save(self, directory: str) -> None:
        """Saves the whole continual model (backbone with adapter, heads, strategy state,
        settings) in safetensors + JSON; `Learner.load(directory)` restores it."""
        from petl.training.persist import save

        save(self, directory)

    @classmethod
    def load(cls, directory: str, accelerator: Any = None) -> Learner:
        """A learner restored from `Learner.save`, ready to `predict` (no data or original
        model path needed)."""
        from petl.training.persist import load

        return load(directory, accelerator)

    def score(self, task: int, split: str = "test") -> float:
        """The task's own metric (accuracy, entity F1, exact match) on a split."""
        if not self.rows(task, split):
            return 0.0
        return self.family.score(self, task, split, self.predictions(task, split))

    def results(self) -> Results:
        from petl.param_summary import summary

        preds = self._test_preds or [self.predictions(t) for t in range(len(self.stream))]
        per_class = {
            task.name: self.family.details(self, t, "test", preds[t])
            for t, task in enumerate(self.stream.tasks)
        }
        counts = summary(self.model)
        info = {
            "scenario": self.stream.scenario,
            "family": self.family.name,
            "method": self.method if isinstance(self.method, str | None) else repr(self.method),
            "method_options": self.method_options,
            "strategies": [getattr(s, "name", type(s).__name__) for s in self.strategies],
            "trainable_params": counts.trainable,
            "total_params": counts.total,
            "wall_time_s": time.perf_counter() - self._start,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "train_config": self.config.to_dict(),
            "stream": self.stream.describe(),
            "num_processes": self.accelerator.num_processes,
            "mixed_precision": str(self.accelerator.mixed_precision),
        }
        for s in self.strategies:  # monitors' measures (petl.ability: info["ability"])
            if callable(getattr(s, "results_info", None)):
                info.update(s.results_info())
        return Results(
            self.stream.names,
            np.array(self.acc_rows, dtype=float),
            np.array(self.initial),
            [self.family.metric(task) for task in self.stream.tasks],
            per_class,
            info,
        )

    # ---- checkpoints --------------------------------------------------------------------
    def _model_state(self) -> dict[str, torch.Tensor]:
        return {
            n: p.detach()
            for n, p in self.model.named_parameters()
            if p.requires_grad or n.startswith("heads.")
        }

    def _save_checkpoint(
        self,
        phase: str,
        loop_state: dict[str, Any] | None = None,
        extra: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        if not self.checkpoint_dir:
            return
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            state = {
                "fingerprint": self.fingerprint(),
                "phase": phase,
                "task": self.task_index,
                "global_step": self.global_step,
                "acc_rows": self.acc_rows,
                "initial": self.initial,
                "elapsed": time.perf_counter() - self._start,
                **(loop_state or {}),
            }
            parts: dict[str, dict[str, Any]] = {
                "state": state,
                "model": self._model_state(),
                "rng": ckpt.rng_state(),
                **(extra or {}),
            }
            parts.update(self.hooks.state_dicts())
            ckpt.write(self.checkpoint_dir, parts)
        self.accelerator.wait_for_everyone()

    def _resume(self) -> dict[str, Any] | None:
        assert self.checkpoint_dir is not None
        parts = ckpt.read(self.checkpoint_dir)
        if parts is None:
            return None
        ckpt.check_parts(parts, ["state", "model", "rng"], self.checkpoint_dir)
        state = parts["state"]
        ckpt.check_fingerprint(state["fingerprint"], self.fingerprint(), self.checkpoint_dir)
        self.acc_rows, self.initial = state["acc_rows"], state["initial"]
        self.elapsed, self.global_step = state["elapsed"], state["global_step"]
        self._activate_heads(state["task"])
        self.hooks.load_state_dicts(parts)
        own = dict(self.model.named_parameters())
        ckpt.check_names(parts["model"], self._model_state(), self.checkpoint_dir)
        with torch.no_grad():
            for name, tensor in parts["model"].items():
                own[name].copy_(tensor)
        ckpt.load_rng_state(parts["rng"])
        state["parts"] = parts
        return state


def _enable_checkpointing(model: nn.Module) -> None:
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


def _register_teardown() -> None:
    global _TEARDOWN_REGISTERED
    if not _TEARDOWN_REGISTERED:
        import atexit

        atexit.register(_destroy_process_group)
        _TEARDOWN_REGISTERED = True


def _destroy_process_group() -> None:
    # No barrier here: if another rank crashed, a barrier would hang the exit.
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _safe(strategy: Any) -> Any:
    config = getattr(strategy, "config", None)
    return config() if callable(config) else {}
