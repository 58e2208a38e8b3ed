"""`Learner`: trains one model on a stream of tasks with a PEFT method and any strategies,
evaluates every task after every task, and checkpoints so that a killed run resumes."""

from __future__ import annotations

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
from petl.training import checks, launch, persist, tracking
from petl.training import run as run_state
from petl.training.config import TrainConfig
from petl.training.data import Item, iter_batches, make_loader
from petl.training.launch import enable_checkpointing, load_backbone, make_accelerator
from petl.training.loop import train_task
from petl.training.run import RunState

__all__ = ["HOOKS", "Learner"]


def _run_field(name: str, doc: str) -> Any:
    """A Learner attribute kept in its `RunState` (which checkpoints save)."""
    return property(
        lambda self: getattr(self.run, name), lambda self, v: setattr(self.run, name, v), doc=doc
    )


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
        self.stream: Stream
        self.family: Family
        self.run = RunState()
        self.checkpoint_dir: str | None = None
        self.started_at = time.perf_counter()  # minus earlier runs' time when resumed
        self.row_weight = 0.0  # each row's weight in the current batch's loss (the loop's)
        self._prepared_model: nn.Module | None = None
        self._built = False  # a model object is modified in place: it can be built on once
        self._ready_for: Stream | None = None  # the stream setup() last prepared, until fit

    # The run's position, as strategies read it.
    task_index = _run_field("task", "The task being trained (or last trained).")
    global_step = _run_field("global_step", "Optimizer steps so far, over all tasks.")
    global_step_in_task = _run_field("step_in_task", "Optimizer steps in the current task.")
    items = _run_field("items", "The current task's training items (task, example).")
    acc_rows = _run_field("acc_rows", "Scores of every task after each task trained.")

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

    @property
    def per_task_heads(self) -> bool:
        """Whether every task has its own head block, chosen by task id (the layout of the
        model the family built)."""
        heads = getattr(self.model, "heads", None)
        return heads is not None and heads.per_task

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

    def batches(self, rows: Sequence[Any], batch_size: int | None = None):
        return iter_batches(
            rows,
            batch_size or self.config.eval_batch_size,
            self.pad_id,
            self.device,
            collate_fn=self.family.collate,
        )

    @torch.no_grad()
    def logits_for(self, rows: Sequence[Any]) -> torch.Tensor:
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
    def close(self) -> None:
        """Ends a multi-process run: waits for every process, then destroys the process
        group. Call it after the last `fit` (and any evaluation after it); without it,
        petl destroys the group at interpreter exit, because a process group left alive
        at exit can abort a rank (and fail the launch) after training has finished."""
        acc = self._accelerator
        if acc is not None and acc.num_processes > 1 and torch.distributed.is_initialized():
            acc.wait_for_everyone()
            acc.end_training()
            launch.let_collective_threads_finish()  # the script may exit right after

    def apply_method(self, backbone: nn.Module) -> nn.Module:
        """Gradient checkpointing and the PEFT method on a backbone (families call this
        while building the model)."""
        if self.config.gradient_checkpointing:
            enable_checkpointing(backbone)
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
        self._accelerator = make_accelerator(self._accelerator, cfg)
        set_seed(cfg.seed)
        backbone, self.tokenizer = load_backbone(self.source, self.tokenizer, self.family)
        self.model = self.family.build_model(self, backbone).to(self.device)
        self._built = True
        self._prepared_model = None
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
        self.hooks.call("setup", self)
        self._ready_for = stream

    def use_training_model(self, model: nn.Module | None) -> None:
        """The prepared (Accelerate-wrapped) model that `logits_for` runs while a task
        trains; None after it (the loop sets it)."""
        self._prepared_model = model

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed (see petl.training.run)."""
        return run_state.fingerprint(self)

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
        self.checkpoint_dir = checkpoint_dir
        resumed = run_state.resume(self) if checkpoint_dir else None
        if resumed is None:  # global_step goes on counting over a second fit
            self.run.acc_rows, self.run.elapsed = [], 0.0
            self.run.initial = self._evaluate_all()
            first, mid_task = 0, None
        else:  # a checkpoint after task k, or inside it
            mid_task = resumed if resumed.phase == "training" else None
            first = self.run.task + (0 if mid_task else 1)
        self.started_at = start - self.run.elapsed
        tracking.start(self)
        for t in range(first, len(stream)):
            self.run.task = t
            self.activate_heads(t)
            if self.trains(t):
                train_task(self, t, mid_task.parts if mid_task and first == t else None)
            self.hooks.call("after_task", self, t)
            self.run.acc_rows.append(self._evaluate_all())
            tracking.log_task(self, t)
            run_state.save_checkpoint(self, phase="task_done")
        self.accelerator.wait_for_everyone()
        tracking.finish(self)
        return self.results()

    def trains(self, t: int) -> bool:
        """Whether task t is trained by gradient: not when a strategy declares
        `Capabilities(gradient_tasks=n)` (statistic heads: 0; APER: its adapt_tasks), t >= n."""
        n = self.hooks.gradient_tasks()
        return n is None or t < n

    def activate_heads(self, t: int) -> None:
        """Makes the head blocks of tasks 0..t live (a resumed or loaded learner too)."""
        # A strategy declaring `freeze_old_heads` trains only task t's head block; declared,
        # not done in a hook, so a resumed run gets the same trainable set.
        heads = getattr(self.model, "heads", None)
        if heads is not None:
            heads.activate(t, freeze_old=self.hooks.capability("freeze_old_heads"))

    _activate_heads = activate_heads  # the name tests and older code use

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
            return self.family.as_predictions(preds)
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
        return persist.predict(self, inputs, task)

    def save(self, directory: str) -> None:
        """Saves the whole continual model (backbone with adapter, heads, strategy state,
        settings) in safetensors + JSON; `Learner.load(directory)` restores it."""
        persist.save(self, directory)

    @classmethod
    def load(cls, directory: str, accelerator: Any = None) -> Learner:
        """A learner restored from `Learner.save`, ready to `predict` (no data or original
        model path needed)."""
        return persist.load(cls, directory, accelerator)

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
            "wall_time_s": time.perf_counter() - self.started_at,
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
            np.array(self.run.acc_rows, dtype=float),
            np.array(self.run.initial),
            [self.family.metric(task) for task in self.stream.tasks],
            per_class,
            info,
        )
