"""`petl train`: one PEFT method on one dataset, saved as an ordinary adapter folder.

Training goes through petl.Learner (one task, so no continual-learning strategy is
involved). The trained adapter and task head are then copied onto a fresh
`AutoModelForSequenceClassification` with the task's labels and saved with `petl.save`
(the peft/petl adapter layout plus petl_meta.json), or with `save_pretrained` for full
fine-tuning. Reload it with:

    base = AutoModelForSequenceClassification.from_pretrained(BASE, num_labels=N)
    model = petl.load(base, OUTPUT)          # adapters; a full fine-tune loads directly
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from petl.errors import ConfigError
from petl.heads import FINAL_LAYERS
from petl.stream import Stream

TRAIN_INFO = "petl_train.json"


def one_task_stream(
    data: str,
    task: str | None,
    max_train: int | None,
    max_test: int | None,
    seed: int,
    classes: list[str] | None = None,
    test: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
) -> Stream:
    """A one-task stream from `data`: "bbc" or "tweets" (offline packages), a data file
    (json/jsonl/csv/tsv/parquet; `test`: a separate test file, else an 80/20 split), a
    folder of such files (one per task, or NAME_train + NAME_test) or a folder in the
    cl_benchmark layout (with `task`). `text_column`/`label_column` name the columns."""
    from petl.bench.data import BBC_TOPICS, TWEET_LABELS, offline_stream
    from petl.datafiles import folder_tasks, has_data_files

    columns: dict[str, Any] = {"label_column": label_column or "label"}
    if text_column:
        columns["text_column"] = text_column
    sizes: dict[str, Any] = {"max_train": max_train, "max_test": max_test, "seed": seed}
    if test is not None and not os.path.isfile(data):
        raise ConfigError(f"--test needs --data to be a file too, got {data!r}.")

    if data in ("bbc", "tweets"):
        default = list(BBC_TOPICS) if data == "bbc" else [f"tweet {s}" for s in TWEET_LABELS]
        spec = [{"name": task or data, "classes": classes or default}]
        return offline_stream(spec, "class", max_train or 400, max_test or 200, seed=seed)
    if has_data_files(data):
        files = folder_tasks(data)
        if task is None and len(files) == 1:
            task = next(iter(files))
        if task not in files:
            raise ConfigError(
                f"--task must name a task in {data}: {', '.join(files)} (one per file)."
            )
        return Stream.from_files({task: files[task]}, **columns, **sizes, val_fraction=0.0)
    if os.path.isdir(data):
        if not task:
            tasks = sorted(d for d in os.listdir(data) if os.path.isdir(os.path.join(data, d)))
            raise ConfigError(
                f"--task is needed with a data folder; tasks in {data}: {', '.join(tasks)}."
            )
        return Stream.from_dir(data, [task], **sizes, val_fraction=0.0)
    if os.path.isfile(data):
        name = task or os.path.splitext(os.path.basename(data))[0]
        paths: str | dict[str, str] = data if test is None else {"train": data, "test": test}
        return Stream.from_files({name: paths}, **columns, **sizes, val_fraction=0.0)
    raise ConfigError(
        f"--data {data!r} is not 'bbc', 'tweets', a data file or a folder (relative paths are "
        f"from {os.getcwd()})."
    )


def final_layer_path(model: nn.Module) -> str:
    """Path of the last linear layer of a transformers classifier (as petl.heads finds it)."""
    for path in FINAL_LAYERS:
        try:
            layer = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(layer, nn.Linear):
            return path
    raise ConfigError(
        f"{type(model).__name__} has no classification layer ({', '.join(FINAL_LAYERS)})."
    )


def export(learner: Any, model_path: str, output: str) -> nn.Module:
    """Copies the learner's trained weights and head onto a fresh classifier and saves it."""
    from transformers import AutoModelForSequenceClassification

    from petl.api import apply, save

    labels = learner.stream.tasks[0].labels
    fresh = AutoModelForSequenceClassification.from_pretrained(
        model_path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    final = final_layer_path(fresh)
    if learner.method is not None:
        fresh = apply(fresh, learner.method, **learner.method_options)
    trained = dict(learner.model.backbone.named_parameters())
    head_w, head_b = learner.model.heads.weights[0], learner.model.heads.biases[0]
    with torch.no_grad():
        for name, param in fresh.named_parameters():
            module, _, kind = name.rpartition(".")
            is_head = param.requires_grad and (
                module.endswith(final) or module.endswith(f"{final}.modules_to_save.default")
            )
            if is_head:
                param.copy_(head_w if kind == "weight" else head_b)
            elif name in trained and trained[name].shape == param.shape:
                param.copy_(trained[name])
    os.makedirs(output, exist_ok=True)
    if learner.method is None:
        fresh.save_pretrained(output)
    else:
        save(fresh, output)
    learner.tokenizer.save_pretrained(output)
    return fresh


@torch.no_grad()
def exported_accuracy(model: nn.Module, learner: Any) -> float:
    """Test accuracy of the exported model, computed with its own forward."""
    from petl.training.data import iter_batches

    model.eval()
    rows = learner.rows(0, "test")
    correct = 0
    for batch in iter_batches(
        rows, 64, learner.pad_id, torch.device("cpu"), learner.family.collate
    ):
        inputs = {
            k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        correct += int((model(**inputs).logits.argmax(-1) == batch["labels"]).sum())
    return correct / max(len(rows), 1)


def train(
    data: str,
    output: str,
    model: str = "minilm",
    task: str | None = None,
    method: str | None = "lora",
    method_options: dict[str, Any] | None = None,
    train_options: dict[str, Any] | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    progress: bool = True,
    classes: list[str] | None = None,
    test: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Trains `method` on one dataset and saves the adapter in `output`; returns what it
    measured (also written to output/petl_train.json). With `dry_run`, reads the data and
    checks the model, and returns what would be trained."""
    from petl.bench.data import resolve_model
    from petl.bench.runner import quiet_libraries
    from petl.training.config import TrainConfig
    from petl.training.learner import Learner

    quiet_libraries()
    # petl.TrainConfig's defaults (lr by kind of method) for every setting not given
    config = TrainConfig.from_dict({**(train_options or {}), "progress": progress})
    config = config.for_method(method)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    stream = one_task_stream(
        data, task, max_train, max_test, config.seed, classes, test, text_column, label_column
    )
    path = resolve_model(model)
    if dry_run:
        from transformers import AutoConfig

        AutoConfig.from_pretrained(path)  # the model folder (or cached hub name) is usable
        first = stream.tasks[0]
        return {
            "task": first.name,
            "labels": first.labels,
            "train_examples": len(first.train),
            "test_examples": len(first.test),
            "model_path": path,
            "method": method,
            "method_options": method_options or {},
            "train_config": config.to_dict(),
            "output": output,
        }
    learner = Learner(path, method=method, method_options=method_options or {}, config=config)
    results = learner.fit(stream)
    exported = export(learner, path, output)
    accuracy = exported_accuracy(exported, learner)
    info = {
        "model": model,
        "model_path": path,
        "method": method,
        "method_options": method_options or {},
        "task": stream.tasks[0].name,
        "labels": stream.tasks[0].labels,
        "train_examples": len(stream.tasks[0].train),
        "test_examples": len(stream.tasks[0].test),
        "train_config": config.to_dict(),
        "test_accuracy": float(results.accuracy[-1, 0]),
        "exported_test_accuracy": accuracy,
        "trainable_params": results.info["trainable_params"],
        "wall_time_s": results.info["wall_time_s"],
    }
    if not np.isclose(accuracy, info["test_accuracy"], atol=0.02):
        info["warning"] = "the exported model scores differently from the trained one"
    with open(os.path.join(output, TRAIN_INFO), "w") as f:
        json.dump(info, f, indent=2)
    return info
