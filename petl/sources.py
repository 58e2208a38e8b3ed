"""Where a stream's records come from: local tables (json, jsonl, csv, tsv, parquet), hub
datasets, one flat table of every task, a cl_benchmark folder. Each reader returns the
records `Stream.from_records` takes, `{task: {"train": [...], "test": [...], ...}}`; the
stream's family then parses them (petl.families)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from petl.errors import DataError, unknown_choice
from petl.records import label_list, read_json
from petl.tasks import SPLITS

SCENARIOS = ("task", "class", "domain")


def folder_records(root: str, tasks: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """The cl_benchmark layout: `<root>/<task>/labels.json`, `train.json`, `test.json`
    (and `val.json`); every task folder when `tasks` is None."""
    if not os.path.isdir(root):
        raise DataError(f"Data directory {root!r} does not exist.")
    available = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    names = list(tasks or available)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"Task name(s) {repeated} are listed more than once; list each once.")
    records: dict[str, dict[str, Any]] = {}
    for name in names:
        folder = os.path.join(root, name)
        if name not in available:
            raise unknown_choice(f"task in {root}", name, available)
        spec: dict[str, Any] = {"_source": folder}
        for split in (*SPLITS, "labels"):
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
            for split in SPLITS:
                if isinstance(spec.get(split), list):
                    spec[split] = [r for r in spec[split] if r.get("label") != "-"]
        records[name] = spec
    return records


def file_records(
    files: Mapping[str, str | Mapping[str, str]], text_column: str | None, label_column: str
) -> dict[str, dict[str, Any]]:
    """Local files through `datasets`: a task name -> one file or `{split: path}`."""
    records: dict[str, dict[str, Any]] = {}
    for name, paths in files.items():
        split_paths = {"train": paths} if isinstance(paths, str) else dict(paths)
        records[name] = {
            split: _read_table(path, text_column, label_column)
            for split, path in split_paths.items()
        }
    return records


def hub_records(
    datasets_by_task: Mapping[str, str | tuple[str, str]],
    text_column: str | None,
    label_column: str,
) -> dict[str, dict[str, Any]]:
    """Hugging Face hub datasets loaded with `datasets.load_dataset`."""
    import datasets

    records: dict[str, dict[str, Any]] = {}
    for name, ref in datasets_by_task.items():
        args = (ref,) if isinstance(ref, str) else tuple(ref)
        loaded = datasets.load_dataset(*args)
        records[name] = _records_from_datasetdict(loaded, text_column, label_column)
    return records


def table_records(
    records: Sequence[Mapping[str, Any]],
    scenario: str,
    task_column: str,
    split_column: str,
    classes_per_task: int | None,
) -> dict[str, dict[str, Any]]:
    """One flat table cut into tasks (see `Stream.from_table`)."""
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
        key: {"train": [], "val": [], "test": []} for key in (sorted(set(keys)) if missing else [])
    }
    for key, r in zip(keys, rows, strict=True):
        split = split_of.get(str(r.get(split_column, "train")).lower(), "train")
        tasks.setdefault(key, {"train": [], "val": [], "test": []})[split].append(r)
    return tasks


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
