"""`ContinualCallback`: petl's continual-learning strategies and forgetting measurement in
a user's own `transformers.Trainer` (TRL's `SFTTrainer` and other subclasses included).

Why a callback plus `fit`, and not a Trainer subclass: a subclass would make the user
change the class they build (and could not be combined with SFTTrainer, DPOTrainer, or a
user's own subclass without a mixin per pair). Here the user's Trainer, arguments,
collator, model and loggers stay as they are:
- `fit(trainer)` runs the stream's tasks through that one Trainer: per task it sets the
  training set (the task's examples, plus what strategies add: Replay's buffer) and calls
  `trainer.train()`, then evaluates every task with petl's metrics and logs the accuracy
  row and summary with `trainer.log` (so `report_to` receives them);
- the events a callback gets drive the step hooks (`before_step`, `after_step`) and
  write petl's state into each Trainer checkpoint (`on_save`);
- the one thing a callback cannot reach is the loss: the strategies' loss terms (EWC's
  penalty, LwF's distillation, O-LoRA's orthogonality) are added by wrapping the
  instance's own `compute_loss` (the class is untouched, so a subclass's `compute_loss`,
  SFTTrainer's included, still computes the task loss)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from petl import metrics
from petl.errors import ConfigError
from petl.families import Family, get_family
from petl.integrations.transformers import state as st
from petl.integrations.transformers.view import TrainerLearner
from petl.results import Results
from petl.strategies.base import Naive
from petl.stream import Stream

# Strategies that need petl's own model (task heads, adapter routing) and so cannot run on
# a user's model; the names are the strategies' `name`.
UNSUPPORTED = {
    "task_adapters": "it swaps one adapter and head per task inside petl's Learner model",
}


class FeatureRows(torch.utils.data.Dataset):
    """A task's training rows as the feature dicts a Trainer collator pads: input_ids,
    attention_mask, token_type_ids (if any) and labels (an int, or per-token ids with -100
    where no loss is taken: a causal LM's prompt, a word's later sub-tokens)."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self.rows[i]
        out: dict[str, Any] = {
            "input_ids": list(row.input_ids),
            "attention_mask": [1] * len(row.input_ids),
        }
        if getattr(row, "token_type_ids", None) is not None:
            out["token_type_ids"] = list(row.token_type_ids)
        labels = getattr(row, "labels", None)  # per-token (tokens, generation) or one label
        out["labels"] = list(labels) if labels is not None else int(row.label)
        return out


class ContinualCallback(TrainerCallback):
    """Runs a task stream through a Trainer with petl's strategies.

    Args:
        stream: The tasks, in order (`petl.Stream`).
        strategies: The same strategy objects `petl.Learner` takes (EWC, Replay, LwF for
            causal LMs, OLoRA on a peft LoRA model, Joint, Naive).
        family: The task family with options (e.g. `GenerationFamily(decoding="labels")`);
            default: the stream's.
        max_length: Token limit per example when the stream is tokenized.

    Example:
        >>> cl = ContinualCallback(stream, strategies=[petl.EWC(lam=100)])
        >>> results = cl.fit(trainer)   # trainer: any transformers.Trainer
    """

    def __init__(
        self,
        stream: Stream,
        strategies: Sequence[Any] | None = None,
        family: str | Family | None = None,
        max_length: int = 128,
    ) -> None:
        self.stream = stream
        self.strategies = list(strategies) if strategies else [Naive()]
        names = [getattr(s, "name", type(s).__name__) for s in self.strategies]
        if len(set(names)) != len(names):
            raise ConfigError(f"Each strategy may appear once; got {names}.")
        for name in names:
            if name in UNSUPPORTED:
                raise ConfigError(
                    f"Strategy {name!r} does not run inside a Trainer: {UNSUPPORTED[name]}. "
                    "Use petl.Learner for it."
                )
        self.names = names
        self._family = family
        self.max_length = max_length
        self.learner: TrainerLearner | None = None
        self.acc_rows: list[list[float]] = []
        self.initial: list[float] = []

    def task_dataset(self, tokenizer: Any, task: int = 0) -> Any:
        """A task's training examples, tokenized as `fit` feeds them, as a `datasets.Dataset`
        (input_ids, attention_mask, labels). For Trainers that demand a `train_dataset` when
        built (TRL's SFTTrainer): pass this one; `fit` sets each task's own."""
        import datasets

        family = get_family(self._family, getattr(self.stream, "family", "classification"))
        encoder = SimpleNamespace(
            stream=self.stream,
            tokenizer=getattr(tokenizer, "tokenizer", tokenizer),
            config=SimpleNamespace(max_length=self.max_length),
            label_ids=self.stream.label_ids,
        )
        rows = family.encode(encoder, task, self.stream.tasks[task].train)
        features = FeatureRows(rows)
        return datasets.Dataset.from_list([features[i] for i in range(len(features))])

    # ---- Trainer events ---------------------------------------------------------------------
    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.learner is not None:
            self.learner.call("before_step")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.learner is not None:
            self.learner.global_step += 1
            self.learner.global_step_in_task += 1
            self.learner.call("after_step")

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.learner is None or not state.is_world_process_zero:
            return
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        st.write(os.path.join(folder, st.PETL), self._parts(phase="training"))

    # ---- the run ------------------------------------------------------------------------
    def fit(self, trainer: Any, resume_from_checkpoint: bool = False) -> Results:
        """Trains every task of the stream with `trainer`, in order.

        Args:
            trainer: The user's Trainer. Each task gets a fresh optimizer and schedule made
                from its arguments; checkpoints go to `output_dir/task-<t>/`.
            resume_from_checkpoint: Continue a run killed mid-task or between tasks from
                the checkpoints under `trainer.args.output_dir`.

        Returns:
            The accuracy matrix and summary as a `petl.Results` (also written to
            `output_dir/petl_results.json`).
        """
        if getattr(trainer, "optimizer", None) is not None or trainer.lr_scheduler is not None:
            raise ConfigError(
                "ContinualCallback makes a fresh optimizer and scheduler for every task, so the "
                "Trainer must not be given optimizers=(...). Choose them with "
                "TrainingArguments (optim=, lr_scheduler_type=) or optimizer_cls_and_kwargs."
            )
        start = time.perf_counter()
        family = get_family(self._family, getattr(self.stream, "family", "classification"))
        view = TrainerLearner(trainer, self.stream, self.strategies, family, self.max_length)
        self.learner = view
        view.call("setup")
        self._attach(trainer)
        root = trainer.args.output_dir
        first, mid = 0, None
        if resume_from_checkpoint:
            first, mid = self._resume(root)
        else:
            self.acc_rows, self.initial = [], self._evaluate_all()
        try:
            for t in range(first, len(self.stream)):
                self._train_task(trainer, root, t, mid if t == first else None)
                view.call("after_task", t)
                self.acc_rows.append(self._evaluate_all())
                self._log(trainer, t)
                self._save_done(root, t)
        finally:
            trainer.args.output_dir = root
        results = self.results(time.perf_counter() - start)
        if trainer.is_world_process_zero():
            results.save(os.path.join(root, "petl_results.json"))
        return results

    def _train_task(self, trainer: Any, root: str, t: int, resume: str | None) -> None:
        view = self.learner
        assert view is not None
        view.task_index, view.global_step_in_task = t, 0
        if resume is None:
            items = [(t, i) for i in range(len(view.rows(t)))]
            for s in self.strategies:
                fn = getattr(s, "train_items", None)
                if fn is not None:
                    items = fn(view, t, items)
            view.items = items
            view.call("before_task", t)
        trainer.train_dataset = FeatureRows(view.item_rows(view.items))
        trainer.args.output_dir = st.task_dir(root, t)
        trainer.optimizer, trainer.lr_scheduler = None, None
        trainer.train(resume_from_checkpoint=resume)

    def _attach(self, trainer: Any) -> None:
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)
        if getattr(trainer.compute_loss, "_petl", None) is self:
            return
        inner = trainer.compute_loss  # the instance's bound method: a subclass's own loss

        def compute_loss(
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
            **kwargs: Any,
        ) -> Any:
            if not model.training or self.learner is None:
                return inner(model, inputs, return_outputs, num_items_in_batch, **kwargs)
            loss, outputs = inner(model, inputs, True, num_items_in_batch, **kwargs)
            logits = outputs["logits"] if isinstance(outputs, dict) else outputs[1]
            self.learner.row_weight = 1 / len(logits)  # the task loss is a mean over rows
            total = loss
            for s in self.strategies:
                fn = getattr(s, "loss", None)
                if fn is not None:
                    total = fn(self.learner, inputs, logits, total)
            if total is not loss:
                # The task loss may be normalised over the whole accumulated batch (then
                # the Trainer does not divide by the accumulation steps): the strategies'
                # terms, added to every micro-batch, must then be divided here, so that an
                # optimizer step sees each term once, as in petl's own loop.
                extra = total - loss
                if _loss_scaled_for_ga(trainer, num_items_in_batch):
                    extra = extra / trainer.current_gradient_accumulation_steps
                loss = loss + extra
            return (loss, outputs) if return_outputs else loss

        compute_loss._petl = self  # type: ignore[attr-defined]
        trainer.compute_loss = compute_loss

    # ---- evaluation and logging ---------------------------------------------------------
    def _evaluate_all(self) -> list[float]:
        view = self.learner
        assert view is not None
        return [view.score(t) for t in range(len(self.stream))]

    def _log(self, trainer: Any, t: int) -> None:
        """The accuracy row after task t and the summary so far, through `trainer.log`."""
        names = self.stream.names
        logs: dict[str, float] = {"petl/task": float(t)}
        logs.update(
            {f"petl/accuracy/{n}": float(v) for n, v in zip(names, self.acc_rows[-1], strict=True)}
        )
        k = len(self.acc_rows)
        square = np.array(self.acc_rows)[:, :k]  # tasks trained so far
        summary = metrics.summarize(square, np.array(self.initial[:k]))
        logs.update({f"petl/{key}": float(v) for key, v in summary.items() if _is_number(v)})
        trainer.log(logs)

    def results(self, wall_time_s: float = 0.0) -> Results:
        """The run's `Results` (matrix of the tasks trained so far)."""
        view = self.learner
        assert view is not None
        from petl.param_summary import summary

        preds = [view.predictions(t) for t in range(len(self.stream))]
        counts = summary(view.trainer.model)
        info = {
            "scenario": self.stream.scenario,
            "family": view.family.name,
            "method": view.method,
            "strategies": self.names,
            "trainer": type(view.trainer).__name__,
            "trainable_params": counts.trainable,
            "total_params": counts.total,
            "wall_time_s": wall_time_s,
            "stream": self.stream.describe(),
            "num_processes": view.accelerator.num_processes,
        }
        return Results(
            self.stream.names,
            np.array(self.acc_rows, dtype=float),
            np.array(self.initial),
            [view.family.metric(task) for task in self.stream.tasks],
            {
                task.name: view.family.details(view, t, "test", preds[t])
                for t, task in enumerate(self.stream.tasks)
            },
            info,
        )

    # ---- petl's checkpoint parts --------------------------------------------------------
    def _parts(self, phase: str) -> dict[str, dict[str, Any]]:
        view = self.learner
        assert view is not None
        parts: dict[str, dict[str, Any]] = {
            "state": {
                "phase": phase,
                "task": view.task_index,
                "items": [list(x) for x in view.items],
                "acc_rows": self.acc_rows,
                "initial": self.initial,
                "tasks": self.stream.names,
                "strategies": self.names,
            }
        }
        for s, name in zip(self.strategies, self.names, strict=True):
            parts[f"strategy.{name}"] = s.state_dict()
        return parts

    def _save_done(self, root: str, t: int) -> None:
        view = self.learner
        assert view is not None
        acc = view.accelerator
        acc.wait_for_everyone()
        if acc.is_main_process:
            parts = self._parts(phase="task_done")
            parts["model"] = {n: p.detach() for n, p in view.trainable_parameters().items()}
            st.write(os.path.join(st.task_dir(root, t), st.DONE), parts)
        acc.wait_for_everyone()

    def _resume(self, root: str) -> tuple[int, str | None]:
        """Loads petl's state of the last checkpoint; returns (first task to train, the
        Trainer checkpoint to resume it from, or None to start it afresh)."""
        view = self.learner
        assert view is not None
        done, mid = st.find_resume_point(root, len(self.stream))
        if done < 0 and mid is None:
            self.acc_rows, self.initial = [], self._evaluate_all()
            return 0, None
        folder = (
            os.path.join(mid, st.PETL) if mid else os.path.join(st.task_dir(root, done), st.DONE)
        )
        parts = st.read(folder)
        assert parts is not None
        saved = parts["state"]
        st.check_same_run(saved, {"tasks": self.stream.names, "strategies": self.names}, folder)
        self.acc_rows, self.initial = saved["acc_rows"], saved["initial"]
        for s, name in zip(self.strategies, self.names, strict=True):
            s.load_state_dict(parts.get(f"strategy.{name}", {}))
        if mid is None:  # between tasks: the model as it was after the last finished one
            own = dict(view.model.named_parameters())
            with torch.no_grad():
                for name, tensor in parts["model"].items():
                    own[name].copy_(tensor)
            return done + 1, None
        view.items = [(int(a), int(b)) for a, b in saved["items"]]
        return int(saved["task"]), mid


def _loss_scaled_for_ga(trainer: Any, num_items_in_batch: Any) -> bool:
    """Whether the Trainer treats its loss as already normalised over the accumulated
    batch (the rule of `Trainer.training_step`)."""
    flag = getattr(trainer, "loss_is_scaled_for_ga", None)
    if flag is not None:
        return bool(flag)
    return bool(
        (getattr(trainer, "model_accepts_loss_kwargs", False) and num_items_in_batch is not None)
        or getattr(trainer, "compute_loss_func", None) is not None
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
