"""Tasks from a folder of data files: one task per file (`news.csv`), or per pair of files
(`news_train.csv` + `news_test.csv`, also `-train`/`.train`), in csv, tsv, json, jsonl or
parquet. Used by `petl train --data FOLDER` and by benchmark streams with `source = "dir"`
whose folder holds files instead of the cl_benchmark task folders."""

from __future__ import annotations

import os
import re

from petl.errors import DataError

EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
_SPLIT = re.compile(r"^(?P<task>.+?)[_.-](?P<split>train|test|val|validation|dev)$")


def has_data_files(folder: str) -> bool:
    """True when `folder` holds data files directly (not cl_benchmark task folders)."""
    return os.path.isdir(folder) and any(f.lower().endswith(EXTENSIONS) for f in os.listdir(folder))


def folder_tasks(folder: str) -> dict[str, str | dict[str, str]]:
    """`{task: path}` or `{task: {"train": path, "test": path}}` for the data files in
    `folder`, in sorted file order (the task order of the stream).

    Raises:
        DataError: the folder does not exist or holds no data file.
    """
    if not os.path.isdir(folder):
        raise DataError(f"Data folder {folder!r} does not exist (relative to {os.getcwd()}).")
    tasks: dict[str, dict[str, str]] = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in EXTENSIONS:
            continue
        match = _SPLIT.match(stem)
        task, split = (match["task"], match["split"]) if match else (stem, "train")
        split = {"validation": "val", "dev": "val"}.get(split, split)
        tasks.setdefault(task, {})[split] = os.path.join(folder, name)
    if not tasks:
        raise DataError(
            f"{folder!r} holds no data file ({', '.join(EXTENSIONS)}): put one file per task "
            "(news.csv) or a train/test pair per task (news_train.csv, news_test.csv)."
        )
    return {k: v["train"] if list(v) == ["train"] else v for k, v in tasks.items()}
