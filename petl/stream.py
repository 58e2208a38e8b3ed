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

import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from petl.errors import DataError, unknown_choice
from petl.records import check_label_kinds, label_list, label_name, read_json, text_value

SCENARIOS = ("task", "class", "domain")
FAMILIES = ("classification", "tokens", "generation")
TEXT_KEYS = ("text", "sentence", "content", "review", "document")
PAIR_KEYS = ("text_pair", "sentence2", "hypothesis")


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


def _stable_rng(*keys: object) -> np.random.Generator:
    # zlib.crc32 keeps splits identical across runs and Python versions (hash() is salted).
    return np.random.default_rng(zlib.crc32(repr(keys).encode()))


def to_example(record: Mapping[str, Any] | Example, where: str) -> Example:
    if isinstance(record, Example):
        return record
    text_key = next((k for k in TEXT_KEYS if k in record), None)
    if text_key is None:
        raise DataError(
            f"{where}: record has no text field (one of {TEXT_KEYS}); keys: {sorted(record)}."
        )
    if "label" not in record or record["label"] is None:
        raise DataError(
            f"{where}: record has no 'label'. Every scenario of petl needs labelled examples."
        )
    pair_key = next((k for k in PAIR_KEYS if k in record), None)
    return Example(
        text_value(record[text_key], where, text_key),
        label_name(record["label"], where),  # the rule of petl.records: 1, 1.0, "1" -> "1"
        text_value(record[pair_key], where, pair_key) if pair_key else None,
    )


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
        if family not in FAMILIES:
            raise unknown_choice("task family", family, FAMILIES)
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
        annotates (other types' tags become "O"). See docs/task-families.md.
        """
        if family not in FAMILIES:
            raise unknown_choice("task family", family, FAMILIES)
        built = []
        for name, spec in tasks.items():
            if family == "tokens":
                from petl.families.tokens import token_splits

                splits, labels = token_splits(name, spec)
            else:
                convert = to_example
                if family == "generation":
                    from petl.families.generation import instruction_example as convert
                where = f"task {name!r}" + (f" ({spec['_source']})" if "_source" in spec else "")
                raw = [r for k in ("train", "val", "test") for r in spec.get(k) or []]
                check_label_kinds((r.get("label") for r in raw if isinstance(r, Mapping)), where)
                splits = {
                    k: [convert(r, f"{where} {k}[{i}]") for i, r in enumerate(spec.get(k) or [])]
                    for k in ("train", "val", "test")
                }
                given = spec.get("labels")
                labels = (
                    sorted({e.label for s in splits.values() for e in s})
                    if given is None or (isinstance(given, list | tuple) and not given)
                    else label_list(given, f"{where} labels")
                )
                unseen = {e.label for e in splits["test"]} - {e.label for e in splits["train"]}
                if family == "classification" and splits["train"] and unseen:
                    raise DataError(
                        f"{where}: test label(s) {sorted(unseen)[:5]} never occur in its training "
                        "data, so no model can learn them. Add training examples of them or "
                        "drop them from the test data."
                    )
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
        if not os.path.isdir(root):
            raise DataError(f"Data directory {root!r} does not exist.")
        available = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        tasks = list(tasks or available)
        repeated = sorted({n for n in tasks if tasks.count(n) > 1})
        if repeated:
            raise DataError(f"Task name(s) {repeated} are listed more than once; list each once.")
        records: dict[str, dict[str, Any]] = {}
        for name in tasks:
            folder = os.path.join(root, name)
            if name not in available:
                raise unknown_choice(f"task in {root}", name, available)
            spec: dict[str, Any] = {"_source": folder}
            for split in ("train", "val", "test", "labels"):
                path = os.path.join(folder, f"{split}.json")
                if os.path.exists(path):
                    spec[split] = read_json(path)
                    if split == "labels":
                        spec[split] = label_list(spec[split], path)
                    elif not isinstance(spec[split], list):
                        raise DataError(
                            f"{path} must hold a JSON list of records, got "
                            f"{type(spec[split]).__name__}."
                        )
            if "-" not in spec.get("labels", ["-"]):  # GLUE's "-": no gold label (MNLI test)
                for split in ("train", "val", "test"):
                    if isinstance(spec.get(split), list):
                        spec[split] = [r for r in spec[split] if r.get("label") != "-"]
            records[name] = spec
        if family == "generation":
            from petl.families.generation import default_instruction

            for name, spec in records.items():
                labels = spec.get("labels") or sorted(
                    {
                        label_name(r["label"], name)
                        for k in ("train", "test")
                        for r in spec.get(k) or []
                    }
                )
                spec["instruction"] = (instructions or {}).get(name) or default_instruction(
                    name, labels
                )
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
        from petl.families.tokens import read_token_file

        records: dict[str, dict[str, Any]] = {}
        for name, paths in files.items():
            split_paths = {"train": paths} if isinstance(paths, str) else dict(paths)
            records[name] = {split: read_token_file(path) for split, path in split_paths.items()}
            if types and name in types:
                records[name]["types"] = list(types[name])
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
        records: dict[str, dict[str, Any]] = {}
        for name, paths in files.items():
            split_paths = {"train": paths} if isinstance(paths, str) else dict(paths)
            records[name] = {
                split: _read_table(path, text_column, label_column)
                for split, path in split_paths.items()
            }
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
        import datasets

        records: dict[str, dict[str, Any]] = {}
        for name, ref in datasets_by_task.items():
            args = (ref,) if isinstance(ref, str) else tuple(ref)
            loaded = datasets.load_dataset(*args)
            records[name] = _records_from_datasetdict(loaded, text_column, label_column)
        return cls.from_records(records, scenario, **kwargs)

    @classmethod
    def from_avalanche(cls, benchmark: Any, **kwargs: Any) -> Stream:
        """An avalanche-lib benchmark: see petl.interop.avalanche.stream_from_benchmark."""
        from petl.interop.avalanche import stream_from_benchmark

        return stream_from_benchmark(benchmark, **kwargs)

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
        if scenario not in SCENARIOS:
            raise unknown_choice("scenario", scenario, SCENARIOS)
        rows = list(records)
        if not rows:
            raise DataError("from_table got no records.")
        missing = [i for i, r in enumerate(rows) if r.get(task_column) is None]
        if missing and (scenario != "class" or classes_per_task is None):
            need = (
                "task-incremental learning needs the task id of every example"
                if scenario == "task"
                else f"a {scenario}-incremental stream needs task ids"
            )
            raise DataError(
                f"{need}, but record {missing[0]} has no {task_column!r} column. Add it, or "
                "build a class-incremental stream with classes_per_task=k to cut the labels "
                "into tasks."
            )
        if missing:
            assert classes_per_task is not None
            if classes_per_task < 1:
                raise DataError(f"classes_per_task must be >= 1, got {classes_per_task}.")
            for i, r in enumerate(rows):
                if r.get("label") is None:
                    raise DataError(
                        f"record {i} has no 'label': class-incremental streams need labels."
                    )
            names = sorted({str(r["label"]) for r in rows})
            width = len(str((len(names) - 1) // classes_per_task))
            group = {n: f"classes_{k // classes_per_task:0{width}d}" for k, n in enumerate(names)}
            keys = [group[str(r["label"])] for r in rows]
        else:
            keys = [str(r[task_column]) for r in rows]
        split_of = {"test": "test", "val": "val", "validation": "val", "dev": "val"}
        # Tasks cut from the label set follow label order; named tasks, first appearance.
        tasks: dict[str, dict[str, Any]] = {
            key: {"train": [], "val": [], "test": []}
            for key in (sorted(set(keys)) if missing else [])
        }
        for key, r in zip(keys, rows, strict=True):
            split = split_of.get(str(r.get(split_column, "train")).lower(), "train")
            tasks.setdefault(key, {"train": [], "val": [], "test": []})[split].append(r)
        return cls.from_records(tasks, scenario, **kwargs)


def _records_from_datasetdict(
    loaded: Any, text_column: str | None, label_column: str
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for split, ds in loaded.items():
        key = {"validation": "val", "dev": "val"}.get(split, split)
        if key not in ("train", "val", "test"):
            continue
        feature = ds.features.get(label_column)
        names = getattr(feature, "names", None)
        spec[key] = [_row(r, text_column, label_column, names) for r in ds]
        if names:
            spec["labels"] = list(names)
    return spec


def _row(
    row: Mapping[str, Any], text_column: str | None, label_column: str, names: list[str] | None
) -> dict[str, Any]:
    if label_column not in row:
        raise DataError(
            f"Column {label_column!r} not found; columns: {sorted(row)}. Pass label_column=."
        )
    label = row[label_column]
    out = dict(row)
    out["label"] = names[label] if names and isinstance(label, int) else label
    if text_column:
        if text_column not in row:
            raise DataError(
                f"Column {text_column!r} not found; columns: {sorted(row)}. Pass text_column=."
            )
        out["text"] = row[text_column]
    return out


def _read_table(path: str, text_column: str | None, label_column: str) -> list[dict[str, Any]]:
    import datasets

    ext = os.path.splitext(path)[1].lstrip(".").lower()
    builder = {
        "jsonl": "json",
        "json": "json",
        "csv": "csv",
        "parquet": "parquet",
        "tsv": "csv",
    }.get(ext)
    if builder is None:
        raise DataError(f"Cannot read {path!r}: use .json, .jsonl, .csv, .tsv or .parquet.")
    if not os.path.exists(path):
        raise DataError(f"Data file {path!r} does not exist.")
    extra = {"delimiter": "\t"} if ext == "tsv" else {}
    try:
        ds = datasets.load_dataset(builder, data_files=path, split="train", **extra)
    except Exception as err:  # datasets wraps decode errors in its own types; name the file
        raise DataError(f"Cannot read {path}: {type(err).__name__}: {str(err)[:300]}") from None
    feature = ds.features.get(label_column)
    names = getattr(feature, "names", None)
    return [_row(r, text_column, label_column, names) for r in ds]


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
