"""Task streams: the sequence of tasks a continual learner sees, and the scenario that says
how labels and task ids are used.

Scenarios:
    task:   task-incremental. Each task keeps its own label set and head; the task id is
            known at train and test time.
    class:  class-incremental. One label space grows with every task (labels seen before
            are reused, not duplicated); no task id at test time.
    domain: domain-incremental. Every task shares one label set; no task id at test time.

Families (what a task asks for; see petl.families and docs/task-families.md):
    classification: one label per text (`Example`); the default.
    tokens:         one BIO tag per word (`TokenExample`); a task's labels are its tags,
                    "O" plus B-/I- of each entity type it annotates.
    generation:     instruction + input -> answer text (`Example` whose label is the answer;
                    `Task.instruction` is prepended); a task's labels are its possible answers.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from petl import sources
from petl.errors import DataError, unknown_choice
from petl.families import FAMILY_NAMES, family_named
from petl.interop.experiences import LabelNames, TextPair, benchmark_records
from petl.tasks import PAIR_KEYS, TEXT_KEYS, Example, Task, TokenExample, example_labels

SCENARIOS = sources.SCENARIOS


def _stable_rng(*keys: object) -> np.random.Generator:
    # zlib.crc32 keeps splits identical across runs and Python versions (hash() is salted).
    return np.random.default_rng(zlib.crc32(repr(keys).encode()))


class Stream:
    """An ordered list of tasks under one scenario.

    Build one with `from_records`, `from_files`, `from_dir` (the cl_benchmark layout) or
    `from_hub`; all take `max_train`, `max_test`, `val_fraction` and `seed`.
    """

    def __init__(
        self, tasks: Sequence[Task], scenario: str = "class", family: str = "classification"
    ) -> None:
        if scenario not in SCENARIOS:
            raise unknown_choice("scenario", scenario, SCENARIOS)
        if family not in FAMILY_NAMES:
            raise unknown_choice("task family", family, FAMILY_NAMES)
        if not tasks:
            raise DataError("A stream needs at least one task.")
        self.tasks = list(tasks)
        self.scenario = scenario
        self.family = family
        self._validate()

    def _validate(self) -> None:
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise DataError(f"Task names must be unique, got {names}.")
        for task in self.tasks:
            if not task.train or not task.test:
                side = "train" if not task.train else "test"
                raise DataError(f"Task {task.name!r} has no {side} examples.")
            known = set(task.labels)
            for split in (task.train, task.val, task.test):
                bad = {label for ex in split for label in example_labels(ex)} - known
                if bad:
                    raise DataError(
                        f"Task {task.name!r} has label(s) {sorted(bad)[:5]} outside its label set "
                        f"{task.labels}. Fix the data or list every label in labels.json."
                    )
        if self.scenario == "domain":
            first = self.tasks[0].labels
            for task in self.tasks[1:]:
                if task.labels != first:
                    raise DataError(
                        f"domain-incremental needs one shared label set, but task {task.name!r} "
                        f"has {task.labels} and {self.tasks[0].name!r} has {first}. Use "
                        "scenario='class' (growing labels) or 'task' (task ids)."
                    )

    # ---- label spaces -------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def __len__(self) -> int:
        return len(self.tasks)

    def block_labels(self) -> list[list[str]]:
        """Label names each task adds to the head: new labels (class), its own (task), all
        of them once (domain: one block, then empty blocks)."""
        if self.scenario == "task":
            return [list(t.labels) for t in self.tasks]
        seen: list[str] = []
        blocks = []
        for task in self.tasks:
            new = [label for label in task.labels if label not in seen]
            seen += new
            blocks.append(new)
        return blocks

    def label_ids(self, task_index: int) -> dict[str, int]:
        """Label name -> index into the logits the model gives for this task."""
        if self.scenario == "task":
            return {label: i for i, label in enumerate(self.tasks[task_index].labels)}
        space = [label for block in self.block_labels() for label in block]
        return {label: space.index(label) for label in self.tasks[task_index].labels}

    def digest(self) -> str:
        """sha256 of every task's name, labels, instruction and examples (content, not only
        sizes): checkpoints of a stream whose data changed are not resumed."""
        import hashlib

        digest = hashlib.sha256(repr((self.scenario, self.family)).encode())
        for t in self.tasks:
            digest.update(repr((t.name, t.labels, t.instruction)).encode())
            for split in (t.train, t.val, t.test):
                digest.update(repr(split).encode())
        return digest.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "family": self.family,
            "tasks": [
                {
                    "name": t.name,
                    "labels": t.labels,
                    "train": len(t.train),
                    "val": len(t.val),
                    "test": len(t.test),
                }
                for t in self.tasks
            ],
        }

    # ---- builders -----------------------------------------------------------------------
    @classmethod
    def from_records(
        cls,
        tasks: Mapping[str, Mapping[str, Any]],
        scenario: str = "class",
        max_train: int | None = None,
        max_test: int | None = None,
        val_fraction: float = 0.0,
        seed: int = 0,
        family: str = "classification",
    ) -> Stream:
        """Builds a stream from `{task_name: {"train": [...], "test": [...], "labels": [...]}}`.

        Records are dicts with a text field ('text' or 'sentence'), 'label', and optionally a
        second text ('text_pair'). A missing 'test' (or 'train') side is split off the other
        one deterministically; 'val' is carved from train when absent and val_fraction > 0
        (default 0: nothing is held out unless asked); 'labels' defaults to
        the sorted label names found.

        Other families: "generation" records may also use 'input'/'output' (and a per-record
        'instruction'), and a task may carry an 'instruction'; "tokens" records are
        `{"tokens": [...], "tags": [...]}` and a task may list the entity 'types' it
        annotates (other types' tags become "O"). The family parses the records
        (`Family.parse_task`); see docs/task-families.md.
        """
        parser = family_named(family)
        built = []
        for name, spec in tasks.items():
            splits, labels = parser.parse_task(name, spec)
            if not splits["train"] and not splits["test"]:
                raise DataError(f"Task {name!r} is empty: it has neither train nor test examples.")
            task = _finish_task(name, labels, splits, max_train, max_test, val_fraction, seed)
            task.instruction = str(spec.get("instruction") or "")
            built.append(task)
        return cls(built, scenario, family)

    @classmethod
    def from_dir(
        cls,
        root: str,
        tasks: Sequence[str] | None = None,
        scenario: str = "class",
        family: str = "classification",
        instructions: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Stream:
        """Reads the cl_benchmark layout: `<root>/<task>/labels.json`, `train.json`, `test.json`.

        With `family="generation"` every task becomes an instruction task whose answers are
        the label strings (the O-LoRA setting): `instructions` maps a task name to its
        instruction; by default a built-in one for the cl_benchmark tasks, listing the
        options (`petl.families.generation.default_instruction`)."""
        records = sources.folder_records(root, tasks)
        reader = family_named(family)
        records = {
            name: reader.folder_spec(name, spec, (instructions or {}).get(name))
            for name, spec in records.items()
        }
        return cls.from_records(records, scenario, family=family, **kwargs)

    @classmethod
    def from_ner(
        cls,
        files: Mapping[str, str | Mapping[str, str]],
        types: Mapping[str, Sequence[str]] | None = None,
        scenario: str = "class",
        **kwargs: Any,
    ) -> Stream:
        """A token-classification (NER) stream from local files.

        `files` maps a task name to one file or to `{"train": path, "test": path}`. Files in
        CoNLL column format (word first, BIO tag last, blank line between sentences; any
        extension but .json/.jsonl) or JSON lines `{"tokens": [...], "tags": [...]}`.
        `types` maps a task to the entity types it annotates (default: those in its
        files); other types' tags become "O", so later tasks can add types
        (class-incremental NER). Same keyword arguments as `from_records`."""
        records = family_named("tokens").file_records(files, types=types)
        return cls.from_records(records, scenario, family="tokens", **kwargs)

    @classmethod
    def from_files(
        cls,
        files: Mapping[str, str | Mapping[str, str]],
        scenario: str = "class",
        text_column: str | None = None,
        label_column: str = "label",
        **kwargs: Any,
    ) -> Stream:
        """Reads local json/jsonl/csv/parquet files through `datasets`.

        `files` maps a task name to one file or to `{"train": path, "test": path}`.
        """
        records = sources.file_records(files, text_column, label_column)
        return cls.from_records(records, scenario, **kwargs)

    @classmethod
    def from_hub(
        cls,
        datasets_by_task: Mapping[str, str | tuple[str, str]],
        scenario: str = "class",
        text_column: str | None = None,
        label_column: str = "label",
        **kwargs: Any,
    ) -> Stream:
        """Loads Hugging Face hub datasets (`{"agnews": "ag_news", "sst2": ("glue", "sst2")}`)
        with `datasets.load_dataset`; integer labels become their ClassLabel names."""
        records = sources.hub_records(datasets_by_task, text_column, label_column)
        return cls.from_records(records, scenario, **kwargs)

    @classmethod
    def from_avalanche(
        cls,
        benchmark: Any,
        scenario: str = "class",
        to_text: Callable[[Any], str | TextPair] | None = None,
        label_names: LabelNames | None = None,
        **kwargs: Any,
    ) -> Stream:
        """An avalanche-lib benchmark: see petl.interop.avalanche.stream_from_benchmark
        (same arguments)."""
        return cls.from_records(
            benchmark_records(benchmark, to_text, label_names), scenario, **kwargs
        )

    @classmethod
    def from_table(
        cls,
        records: Sequence[Mapping[str, Any]],
        scenario: str = "class",
        task_column: str = "task",
        split_column: str = "split",
        classes_per_task: int | None = None,
        **kwargs: Any,
    ) -> Stream:
        """Builds a stream from one flat table of records (e.g. a whole benchmark in one file).

        Tasks come from `task_column`, in order of first appearance. Without task ids,
        `classes_per_task=k` cuts the sorted label set into consecutive tasks of k classes
        (the usual way to make a class-incremental stream from one dataset, as split MNIST
        does); task- and domain-incremental streams need the task column. Rows whose
        `split_column` is "test", "val" or "validation" go to that split, the rest to train.
        Other keyword arguments are those of `from_records`.

        Raises:
            DataError: no task ids where the scenario needs them, or neither task ids nor
                `classes_per_task`.
        """
        tasks = sources.table_records(
            records, scenario, task_column, split_column, classes_per_task
        )
        return cls.from_records(tasks, scenario, **kwargs)


# Readers kept importable from here (tests and older code use these names).
_records_from_datasetdict = sources._records_from_datasetdict
__all__ = [
    "PAIR_KEYS",
    "SCENARIOS",
    "TEXT_KEYS",
    "Example",
    "Stream",
    "Task",
    "TokenExample",
    "example_labels",
]


def _subsample(examples: list[Example], n: int | None, rng: np.random.Generator) -> list[Example]:
    if n is None or len(examples) <= n:
        return examples
    keep = sorted(rng.permutation(len(examples))[:n].tolist())
    return [examples[i] for i in keep]


def _finish_task(
    name: str,
    labels: list[str],
    splits: dict[str, list[Example]],
    max_train: int | None,
    max_test: int | None,
    val_fraction: float,
    seed: int,
) -> Task:
    train, val, test = splits["train"], splits["val"], splits["test"]
    if not test or not train:
        # One side missing: a fixed split (independent of the run's seed) of the other.
        whole = train or test
        order = _stable_rng("split", name).permutation(len(whole))
        cut = len(whole) // 2 if not train else int(len(whole) * 0.8)
        first, second = [whole[i] for i in order[:cut]], [whole[i] for i in order[cut:]]
        train, test = first, second
    rng = _stable_rng("sample", name, seed)
    if not val and val_fraction > 0 and len(train) > 1:
        order = rng.permutation(len(train))
        n_val = (
            max(1, int(len(train) * val_fraction))
            if max_train is None
            else max(1, int(min(len(train), max_train) * val_fraction))
        )
        val = [train[i] for i in order[:n_val]]
        train = [train[i] for i in sorted(order[n_val:].tolist())]
    return Task(
        name,
        labels,
        _subsample(train, max_train, rng),
        _subsample(test, max_test, rng),
        _subsample(val, max_test, rng),
    )


def iter_labels(examples: Iterable[Example]) -> list[str]:
    return [e.label for e in examples]
