"""Using a trained `Learner`: predictions on new inputs, and saving / loading the whole
continual model (backbone with its adapter, task heads, strategy state) in safe formats.

A saved learner is a folder:

    learner.json          what to rebuild: family, stream outline (task names, labels,
                          instructions, scenario), method, train config, strategies
    model.safetensors     every weight of the model (backbone, adapter, heads)
    base/                 the backbone's transformers config and the tokenizer
    strategy.<name>.safetensors / .json   each strategy's state (buffers, adapters, ...)

Loading builds the backbone from `base/config.json` (no download, no original model path
needed), runs the same construction as training (method, heads), then loads the weights;
nothing is unpickled."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import torch

from petl.errors import CheckpointError, ConfigError
from petl.families import family_from_config
from petl.stream import Stream, Task
from petl.training.checkpoint import split_state

META = "learner.json"
WEIGHTS = "model.safetensors"
BASE = "base"
FORMAT = 1
PREDICT_SPLIT = "predict"  # the transient split predict() puts new inputs in


def _require_built(learner: Any, what: str) -> None:
    if not getattr(learner, "_built", False):
        raise ConfigError(f"Learner.{what} needs a trained model: call fit(stream) first.")


def resolve_task(learner: Any, task: int | str | None) -> int:
    """A task index from an index, a task name or None (the last task trained)."""
    names = learner.stream.names
    if task is None:
        return max(min(learner.task_index, len(names) - 1), 0)
    if isinstance(task, str):
        if task not in names:
            from petl.errors import unknown_choice

            raise unknown_choice("task", task, names)
        return names.index(task)
    if not 0 <= int(task) < len(names):
        raise ConfigError(f"task={task} is out of range: the stream has {len(names)} tasks.")
    return int(task)


def predict(learner: Any, inputs: Sequence[Any] | None = None, task: int | str | None = None):
    """See `Learner.predict`."""
    from petl.training import routing

    _require_built(learner, "predict")
    if inputs is None and task is None:
        raise ConfigError("predict() needs inputs (a list of texts) or task= (its test split).")
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    if inputs is None and not learner.rows(resolve_task(learner, task), "test"):
        raise ConfigError(
            f"Task {learner.stream.names[resolve_task(learner, task)]!r} has no test data here "
            "(a loaded learner keeps no data): pass the inputs, e.g. "
            "learner.predict(texts, task=...)."
        )
    if routing.applies(learner):  # per-task heads: task= asks one task, else the surest
        return _predict_routed(learner, inputs, task)
    if learner.stream.scenario == "task" and task is None:
        raise ConfigError(
            "This task-incremental model predicts through a task's head (its strategies have "
            f"their own prediction rule): pass task= (an index or one of {learner.stream.names})."
        )
    t = resolve_task(learner, task)
    split = "test" if inputs is None else PREDICT_SPLIT
    if inputs is not None:
        rows = learner.family.encode(learner, t, _examples(learner, t, inputs))
        learner._rows[t][PREDICT_SPLIT] = rows
    try:
        preds = learner.predictions(t, split)
    finally:
        learner._rows[t].pop(PREDICT_SPLIT, None)
    return learner.family.answers(learner, t, preds)


def _examples(learner: Any, t: int, inputs: Sequence[Any]) -> list[Any]:
    """New inputs as the family's examples of task t (placeholder labels, never scored)."""
    return learner.family.input_examples(learner.stream.tasks[t], inputs)


def _predict_routed(learner: Any, inputs: Sequence[Any] | None, task: int | str | None) -> list:
    """Per-task heads: the answer of task `task`'s head, or of the most confident task's
    (petl.training.routing)."""
    from petl.training import routing

    trained = resolve_task(learner, None)
    asked = None if task is None else resolve_task(learner, task)
    if inputs is None:  # task asked, its test split

        def rows_of(k: int) -> list[Any]:
            return learner.rows(k, "test")
    else:
        texts = inputs

        def rows_of(k: int) -> list[Any]:
            return learner.family.encode(learner, k, _examples(learner, k, texts))

    return routing.predict(learner, rows_of, asked, trained)


# ---- save / load ------------------------------------------------------------------------
def _stream_outline(stream: Any) -> dict[str, Any]:
    return {
        "scenario": stream.scenario,
        "family": stream.family,
        "tasks": [
            {"name": t.name, "labels": list(t.labels), "instruction": t.instruction}
            for t in stream.tasks
        ],
    }


def _outline_stream(outline: dict[str, Any]) -> Any:
    """A stream with the saved tasks' names and labels and no examples (its label spaces,
    head sizes and instructions are all a trained model needs)."""
    stream = object.__new__(Stream)  # skips the checks that every task has examples
    stream.tasks = [
        Task(t["name"], list(t["labels"]), [], [], [], t.get("instruction", ""))
        for t in outline["tasks"]
    ]
    stream.scenario = outline["scenario"]
    stream.family = outline["family"]
    return stream


def _base_model(learner: Any) -> Any:
    backbone = learner.model.backbone
    get = getattr(backbone, "get_base_model", None)
    return get() if get is not None else backbone


def save(learner: Any, directory: str) -> None:
    """See `Learner.save`."""
    from safetensors.torch import save_file, save_model

    _require_built(learner, "save")
    if not (learner.method is None or isinstance(learner.method, str)):
        raise ConfigError(
            "Learner.save needs the method by name (e.g. method='lora', method_options={...}); "
            "a config object cannot be written as JSON."
        )
    learner.accelerator.wait_for_everyone()
    if not learner.accelerator.is_main_process:
        learner.accelerator.wait_for_everyone()
        return
    os.makedirs(os.path.join(directory, BASE), exist_ok=True)
    base = _base_model(learner)
    base.config.save_pretrained(os.path.join(directory, BASE))
    learner.tokenizer.save_pretrained(os.path.join(directory, BASE))
    # save_model handles tied weights (e.g. a causal LM's embeddings and LM head).
    save_model(learner.model, os.path.join(directory, WEIGHTS))
    strategies = []
    for s in learner.strategies:
        name = getattr(s, "name", type(s).__name__)
        config = s.config() if callable(getattr(s, "config", None)) else {}
        strategies.append({"name": name, "config": config})
        tensors, rest = split_state(s.state_dict())
        if tensors:
            save_file(tensors, os.path.join(directory, f"strategy.{name}.safetensors"))
        with open(os.path.join(directory, f"strategy.{name}.json"), "w") as f:
            json.dump(rest, f)
    heads = getattr(learner.model, "heads", None)
    meta = {
        "format": FORMAT,
        "source": learner.source if isinstance(learner.source, str) else None,
        "dtype": str(next(base.parameters()).dtype).removeprefix("torch."),
        "family": learner.family.saved_config(learner),
        "stream": _stream_outline(learner.stream),
        "method": learner.method,
        "method_options": learner.method_options,
        "strategies": strategies,
        # "auto" pooling was resolved from the original model folder, which a reload does
        # not see: save what the heads were trained on.
        "train_config": {
            **learner.config.to_dict(),
            **({"pooling": learner.model.pooling} if hasattr(learner.model, "pooling") else {}),
        },
        "task_index": learner.task_index,
        "active_heads": heads.active if heads is not None else None,
    }
    with open(os.path.join(directory, META), "w") as f:  # written last: marks a whole save
        json.dump(meta, f, indent=2, default=str)
    learner.accelerator.wait_for_everyone()


def _family(meta: dict[str, Any]) -> Any:
    config = dict(meta["family"])
    # Saves before the family wrote its own rebuild options kept the budget apart.
    if config.get("max_new_tokens", 0) is None and meta.get("answer_budget"):
        config["max_new_tokens"] = meta["answer_budget"]
    return family_from_config(config)


def _strategies(saved: list[dict[str, Any]]) -> list[Any]:
    from petl.strategies import STRATEGIES

    out = []
    for entry in saved:
        cls = STRATEGIES.get(entry["name"])
        if cls is None:
            raise CheckpointError(
                f"The saved learner uses strategy {entry['name']!r}, which this petl does not "
                f"know (known: {', '.join(sorted(STRATEGIES))})."
            )
        try:
            out.append(cls(**entry["config"]))
        except TypeError as err:
            raise CheckpointError(
                f"Cannot rebuild strategy {entry['name']!r} from {entry['config']}: {err}"
            ) from None
    return out


def load(learner_class: Any, directory: str, accelerator: Any = None) -> Any:
    """See `Learner.load` (`learner_class`: the `Learner` class to build)."""
    import dataclasses

    import transformers
    from safetensors.torch import load_file, load_model

    from petl.quiet import quiet_petl_calls
    from petl.training.config import TrainConfig

    path = os.path.join(directory, META)
    if not os.path.exists(path):
        raise CheckpointError(
            f"No {META} in {directory!r}: it is not a folder written by Learner.save "
            "(a checkpoint_dir of fit() is resumed with fit(stream, checkpoint_dir=...))."
        )
    with open(path) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{directory!r} has save format {meta.get('format')}, not {FORMAT}.")
    family = _family(meta)
    base_dir = os.path.join(directory, BASE)
    dtype = getattr(torch, meta.get("dtype") or "float32")
    with quiet_petl_calls():
        config = transformers.AutoConfig.from_pretrained(base_dir)
        backbone = getattr(transformers, family.auto_class).from_config(config, dtype=dtype)
        tokenizer = transformers.AutoTokenizer.from_pretrained(base_dir)
    train_config = TrainConfig.from_dict(meta["train_config"])
    learner = learner_class(
        backbone,
        tokenizer,
        method=meta["method"],
        method_options=meta["method_options"],
        strategies=_strategies(meta["strategies"]),
        # The outline has no validation data, which early stopping would ask for.
        config=dataclasses.replace(train_config, early_stopping_patience=None),
        accelerator=accelerator,
        family=family,
    )
    learner.setup(_outline_stream(meta["stream"]))
    learner.config = train_config
    learner.source = meta.get("source") or learner.source
    missing, unexpected = load_model(learner.model, os.path.join(directory, WEIGHTS), strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"The weights in {directory!r} do not fit the rebuilt model (missing "
            f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}): was it saved by "
            "another petl version?"
        )
    if meta.get("active_heads"):
        learner.activate_heads(meta["active_heads"] - 1)
    learner.task_index = meta["task_index"]
    for s in learner.strategies:
        name = getattr(s, "name", type(s).__name__)
        state: dict[str, Any] = {}
        with open(os.path.join(directory, f"strategy.{name}.json")) as f:
            state.update(json.load(f))
        tensors = os.path.join(directory, f"strategy.{name}.safetensors")
        if os.path.exists(tensors):
            state.update(load_file(tensors, device=str(learner.device)))
        s.load_state_dict(state)
    learner.model.eval()
    return learner
