"""What a stream is made of: examples (`Example`, `TokenExample`) and tasks (`Task`).

These plain records sit below everything else (families parse records into them, the
stream orders them, training encodes them), so this module imports nothing of petl."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Record keys read as the text of an example, in order of preference.
TEXT_KEYS = ("text", "sentence", "content", "review", "document")
#: Record keys read as the second text of a pair.
PAIR_KEYS = ("text_pair", "sentence2", "hypothesis")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Example:
    """One labelled input: a text (or text pair) and its label name."""

    text: str
    label: str
    text_pair: str | None = None


@dataclass(frozen=True)
class TokenExample:
    """One sentence for token classification: its words and one BIO tag per word."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass
class Task:
    """One task of a stream: its name, label names, and train/validation/test examples.

    Examples are `Example`s (classification, generation) or `TokenExample`s (tokens). For
    generation, `instruction` is the text put before every input of the task."""

    name: str
    labels: list[str]
    train: list[Any]
    test: list[Any]
    val: list[Any] = field(default_factory=list)
    instruction: str = ""


def example_labels(example: Any) -> tuple[str, ...]:
    """The label names an example uses: its label, or its tags."""
    return tuple(example.tags) if isinstance(example, TokenExample) else (example.label,)
