"""`TrainerLearner`: the public `Learner` interface that strategies and task families use
(model, stream, task_index, config, accelerator, trainable_parameters(), rows(),
batches(), logits_for(), ...), presented over a `transformers.Trainer`.

Strategies and families are petl's own objects, unchanged; this view is what lets them
run on the Trainer's model and accelerator instead of the `Learner`'s. The user's model
keeps its own output layer (no task heads): a classifier's columns are the stream's label
space, a causal LM's head is its output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from petl.errors import ConfigError
from petl.families import Family
from petl.families.classification import ClassifierView
from petl.stream import Stream
from petl.training.config import TrainConfig
from petl.training.data import iter_batches

__all__ = ["ClassifierView", "TrainerLearner"]


class TrainerLearner:
    """What a strategy hook or a family sees of a Trainer run (see `Strategy` in
    petl.strategies.base for the hooks and the attributes they may use).

    Args:
        trainer: The user's `transformers.Trainer` (or subclass, e.g. TRL's SFTTrainer).
        stream: The task stream.
        strategies: The strategy objects, as given to `petl.Learner`.
        family: The stream's task family object.
        max_length: Token limit per example when the stream is tokenized.
    """

    def __init__(
        self,
        trainer: Any,
        stream: Stream,
        strategies: Sequence[Any],
        family: Family,
        max_length: int,
    ) -> None:
        self.trainer = trainer
        self.stream = stream
        self.strategies = list(strategies)
        self.family = family
        tok = trainer.processing_class
        self.tokenizer = getattr(tok, "tokenizer", tok)  # a processor holds its tokenizer
        if self.tokenizer is None:
            raise ConfigError(
                "The Trainer has no tokenizer: pass processing_class=tokenizer to the Trainer "
                "(petl tokenizes the stream with it)."
            )
        args = trainer.args
        self.config = TrainConfig(
            batch_size=args.per_device_train_batch_size,
            eval_batch_size=args.per_device_eval_batch_size,
            lr=args.learning_rate,
            grad_accum=args.gradient_accumulation_steps,
            max_length=max_length,
            seed=args.seed,
            progress=False,
        )
        self.per_task_heads = False  # the user's own output layer: one label space
        self.source: Any = trainer.model
        self.task_index = 0
        self.global_step = 0
        self.global_step_in_task = 0
        self.row_weight = 0.0  # set per batch by ContinualCallback's compute_loss
        self.items: list[tuple[int, int]] = []
        tok = self.tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        self.model: nn.Module = family.wrap_model(self, trainer.model)  # checks it fits
        self.method = _method_name(trainer.model)
        self._rows = [
            {split: family.encode(self, t, getattr(task, split)) for split in ("train", "test")}
            for t, task in enumerate(stream.tasks)
        ]

    # ---- the Learner's public helpers -----------------------------------------------------
    @property
    def accelerator(self) -> Any:
        return self.trainer.accelerator

    @property
    def device(self) -> torch.device:
        return self.trainer.args.device

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """Trainable parameters by name, on the unwrapped model (stable under DDP)."""
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def label_ids(self, task: int) -> dict[str, int]:
        return self.stream.label_ids(task)

    def rows(self, task: int, split: str = "train") -> list[Any]:
        return self._rows[task][split]

    def item_rows(self, items: Sequence[tuple[int, int]]) -> list[Any]:
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
        """Logits of the current model for `rows`, on CPU. Every process computes all rows
        (the model is replicated), so no gather is needed and each rank gets the same."""
        was_training = self.model.training
        self.model.eval()
        out = [self.model(batch).float().cpu() for batch in self.batches(rows)]
        self.model.train(was_training)
        return torch.cat(out)

    def predictions(self, task: int, split: str = "test") -> Any:
        """As `Learner.predictions`: a strategy's own rule, else the family's."""

        for s in self.strategies:
            fn = getattr(s, "predict", None)
            preds = fn(self, task, split) if fn is not None else None
            if preds is not None:
                return self.family.as_predictions(preds)
        return self.family.predict(self, task, self.rows(task, split))[0]

    def score(self, task: int, split: str = "test") -> float:
        if not self.rows(task, split):
            return 0.0
        return self.family.score(self, task, split, self.predictions(task, split))

    def call(self, hook: str, *args: Any) -> None:
        for s in self.strategies:
            fn = getattr(s, hook, None)
            if fn is not None:
                fn(self, *args)


def _method_name(model: nn.Module) -> str | None:
    """The PEFT method of a peft model ("lora", ...), else None (full fine-tuning)."""
    config = getattr(model, "active_peft_config", None)
    kind = getattr(config, "peft_type", None)
    return str(getattr(kind, "value", kind)).lower() if kind is not None else None
