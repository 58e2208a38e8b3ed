"""An avalanche-lib benchmark as a petl `Stream`.

Avalanche (https://avalanche.continualai.org) describes a benchmark as a train stream and a
test stream of *experiences*; each experience has a dataset whose items are
`(x, y, t, ...)`: input, class id, task label. `stream_from_benchmark` turns experience i
into petl task i (the reading is petl.interop.experiences). avalanche itself is imported
only when the function is called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from petl.interop.experiences import LabelNames, TextPair
from petl.stream import Stream


def stream_from_benchmark(
    benchmark: Any,
    scenario: str = "class",
    to_text: Callable[[Any], str | TextPair] | None = None,
    label_names: LabelNames | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
    val_fraction: float = 0.0,
) -> Stream:
    """Builds a petl `Stream` from an avalanche-lib benchmark.

    Experience i of `benchmark.train_stream` and of `benchmark.test_stream` become task i,
    named by the experience's `name` when it has one, else `f"exp{i}"`. Every item
    `(x, y, t, ...)` of an experience's dataset becomes an `Example`: x through `to_text`
    (default: x itself when it is a str; a `(text, text_pair)` tuple gives a pair), y (the
    class id) through `label_names`. A task's label set is the classes of its experience
    (`benchmark.classes_in_experience["train"][i]` or the experience's
    `classes_in_this_experience` when avalanche gives them, plus any found in the data),
    ordered by class id. A benchmark with a single test experience (one whole test set)
    has its test data split among the tasks by class.

    Args:
        benchmark: an avalanche benchmark (anything with `train_stream` and `test_stream`).
        scenario: petl's scenario, "class", "task" or "domain" (avalanche's task labels
            are not used: task i is experience i).
        to_text: function x -> str (or (str, str)); needed when x is not already a string.
        label_names: names of the class ids: a list indexed by class id, a mapping, or a
            callable; default `str(class id)`.
        max_train, max_test, seed, val_fraction: as in `Stream.from_records`.

    Raises:
        ConfigError: avalanche-lib is not installed.
        DataError: x is not text and no `to_text` was given; a target is not an integer
            class id; a class has no name in `label_names`; train and test streams do not
            match.
    """
    return Stream.from_avalanche(
        benchmark,
        scenario,
        to_text=to_text,
        label_names=label_names,
        max_train=max_train,
        max_test=max_test,
        val_fraction=val_fraction,
        seed=seed,
    )
