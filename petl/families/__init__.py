"""Task families: what kind of output a stream's tasks ask for, and everything that depends
on it.

A family owns five things, and the rest of petl (stream, loop, strategies, checkpoints,
metrics) is shared:

- the model: how a transformers backbone becomes the model petl trains (task heads or
  the LM head itself);
- the rows: how a task's examples are tokenized, and how rows are collated into batches;
- the training loss from the model's output and a batch;
- predictions (with a per-example confidence, for routing rules without task ids);
- the task score in the T x T matrix and its name, plus per-class (per-type) details.

Families:
    classification  one label per text (accuracy); `ClassificationFamily`
    tokens          one BIO tag per word, class-incremental NER (entity-level F1, seqeval);
                    `TokenFamily`
    generation      instruction + input -> answer text on a causal LM (exact match);
                    `GenerationFamily`

A `Stream` names its family (`stream.family`); the `Learner` builds the default family
object for it, or takes one with options (`Learner(..., family=GenerationFamily(
decoding="labels"))`). See docs/task-families.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from petl.errors import ConfigError, unknown_choice

if TYPE_CHECKING:
    from petl.tasks import Task
    from petl.training.seam import LearnerView, TrainingLearner

#: (student, teacher) logits that LwF compares with a temperature-scaled KL divergence.
DistillPairs = list[tuple[torch.Tensor, torch.Tensor]]


@runtime_checkable
class Family(Protocol):
    """The interface of a task family. Hooks receive the learner as a `LearnerView`
    (petl.training.seam: `rows`, `batches`, `label_ids`, `stream`, `model`, `config`,
    `tokenizer`, ...), never its private state."""

    name: str
    #: transformers Auto class used when the Learner is given a model path.
    auto_class: str
    #: keyword arguments of `auto_class.from_pretrained` (a classifier's size is free).
    auto_kwargs: Mapping[str, Any]
    #: Each row has one label id, a logit column ("labels" of shape [batch]): what
    #: strategies that mask, average or distil classes per example need (iCaRL, ER-ACE).
    label_per_row: bool

    def config(self) -> dict[str, Any]:
        """The family's options (echoed into checkpoint fingerprints)."""
        ...

    def saved_config(self, learner: LearnerView) -> dict[str, Any]:
        """The options written by `Learner.save`: with them `family_from_config` rebuilds
        this family without any data (generation: the measured answer budget)."""
        ...

    # ---- records -> examples ------------------------------------------------------------
    def parse_task(
        self, name: str, spec: Mapping[str, Any]
    ) -> tuple[dict[str, list[Any]], list[str]]:
        """A task's records `{"train": [...], "val": [...], "test": [...], ...}` as
        examples per split, and the task's label names (see `Stream.from_records`)."""
        ...

    def file_records(
        self,
        files: Mapping[str, Any],
        *,
        text_column: str | None = None,
        label_column: str | None = None,
        instructions: Mapping[str, str] | None = None,
        types: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Records of local files, a task name -> one file or `{split: path}`, in this
        family's file format (`Stream.from_records` input; `petl bench`'s files source)."""
        ...

    def folder_spec(
        self, name: str, spec: dict[str, Any], instruction: str | None
    ) -> dict[str, Any]:
        """A task read by `Stream.from_dir`, completed as this family needs it (generation:
        its instruction, by default a built-in one)."""
        ...

    def input_examples(self, task: Task, inputs: Sequence[Any]) -> list[Any]:
        """New inputs given to `Learner.predict` as examples of `task` (placeholder labels,
        never scored)."""
        ...

    # ---- model, rows, loss --------------------------------------------------------------
    def metric(self, task: Task) -> str:
        """Name of the score of `task` in the results matrix."""
        ...

    def build_model(self, learner: TrainingLearner, backbone: nn.Module) -> nn.Module:
        """Turns the loaded backbone into the trained model; applies the PEFT method
        through `learner.apply_method(backbone)`. The head layout is the model's
        (`model.heads.per_task`), never set on the learner."""
        ...

    def wrap_model(self, learner: LearnerView, model: nn.Module) -> nn.Module:
        """A model trained elsewhere (a transformers Trainer's, with its own output layer)
        as petl calls it, `forward(batch) -> logits`; refuses one that does not fit the
        stream."""
        ...

    def encode(self, learner: LearnerView, t: int, examples: Sequence[Any]) -> list[Any]:
        """Tokenizes examples of task t into rows (each with `.task` and `.label`)."""
        ...

    def collate(self, rows: Sequence[Any], pad_id: int) -> dict[str, torch.Tensor]:
        """Pads rows into a batch (with "labels" and "task_ids")."""
        ...

    def loss(
        self, logits: torch.Tensor, batch: dict[str, torch.Tensor], reduction: str = "mean"
    ) -> torch.Tensor:
        """The training loss of the model's output on a batch: the mean over its targets
        (examples, tags or answer tokens), or with "sum" the sum over examples of each
        example's loss (the loop rescales an uneven last batch of a multi-process run)."""
        ...

    # ---- predictions --------------------------------------------------------------------
    def predict(
        self, learner: LearnerView, t: int, rows: Sequence[Any], head: int | None = None
    ) -> tuple[Any, np.ndarray]:
        """Predictions for rows of task t, and a confidence per row (higher = surer),
        comparable across heads of different sizes (routing picks the surest task).
        `head` routes through another task's head (per-task heads only)."""
        ...

    def as_predictions(self, preds: Any) -> Any:
        """A strategy's own predictions in this family's type (label ids: an array)."""
        ...

    def answers(self, learner: LearnerView, t: int, preds: Any) -> list[Any]:
        """Predictions of task t's model as a user reads them: label names (None for a
        column outside the head), tag lists, answer strings."""
        ...

    def in_task(self, learner: LearnerView, t: int, answers: list[Any]) -> Any:
        """Answers (as `answers` gives them) as predictions of task t (label ids of t's
        own labels, -1 when not one of them; other families keep the answers)."""
        ...

    def score(self, learner: LearnerView, t: int, split: str, preds: Any) -> float:
        """The task score in [0, 1] of predictions on task t's split."""
        ...

    def details(self, learner: LearnerView, t: int, split: str, preds: Any) -> dict[str, float]:
        """Per-class accuracy / per-type F1 / per-answer exact match."""
        ...

    # ---- what strategies need -----------------------------------------------------------
    def distill_targets(
        self, learner: LearnerView, rows: Sequence[Any], t: int
    ) -> torch.Tensor | None:
        """LwF's teacher outputs on `rows`, recorded before task t; None when the family
        distils from a copy of the trainable parameters instead (outputs too big to store)."""
        ...

    def distill_pairs(
        self,
        learner: LearnerView,
        batch: dict[str, torch.Tensor],
        logits: torch.Tensor,
        t: int,
        teacher: torch.Tensor | dict[str, torch.Tensor],
    ) -> DistillPairs:
        """(student, teacher) logits to distil while training task t: `teacher` is this
        batch's rows of `distill_targets`, or the parameters as they were before t."""
        ...


def _classification() -> Family:
    from petl.families.classification import ClassificationFamily

    return ClassificationFamily()


def _tokens() -> Family:
    from petl.families.tokens import TokenFamily

    return TokenFamily()


def _generation() -> Family:
    from petl.families.generation import GenerationFamily

    return GenerationFamily()


# Imported when asked for: the generation family pulls in more of transformers.
_DEFAULTS: dict[str, Callable[[], Family]] = {
    "classification": _classification,
    "tokens": _tokens,
    "generation": _generation,
}
FAMILY_NAMES = tuple(_DEFAULTS)


def family_named(name: str) -> Family:
    """The default family object of a name in `FAMILY_NAMES`.

    Raises:
        ConfigError: an unknown name (the known ones are listed).
    """
    make = _DEFAULTS.get(name)
    if make is None:
        raise unknown_choice("task family", name, FAMILY_NAMES)
    return make()


def family_from_config(config: Mapping[str, Any]) -> Family:
    """The family that `saved_config` describes (a saved learner's)."""
    options = {k: v for k, v in config.items() if k != "name"}
    family = family_named(config["name"])
    return type(family)(**options) if options else family


def get_family(family: str | Family | None, stream_family: str = "classification") -> Family:
    """The family object for a stream: `family` itself when given (its name must match the
    stream's), else the default object of `stream_family`."""
    if family is None or isinstance(family, str):
        name = family or stream_family
        if name != stream_family:
            raise ConfigError(
                f"The stream's tasks are {stream_family!r} but family={name!r} was given."
            )
        return family_named(name)
    if not isinstance(family, Family):
        raise ConfigError(f"family must be a name or a family object, got {type(family).__name__}.")
    if family.name != stream_family:
        raise ConfigError(
            f"The stream's tasks are {stream_family!r} but a {family.name!r} family was given."
        )
    return family


__all__ = [
    "FAMILY_NAMES",
    "DistillPairs",
    "Family",
    "family_from_config",
    "family_named",
    "get_family",
]
