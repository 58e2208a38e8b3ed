"""One continual-learning worker, run by tests/distributed/test_two_processes.py under
`accelerate launch`, `torchrun` or plain `python` (one process).

It builds a tiny BERT from a config (dropout off, so runs are deterministic), a word-level
tokenizer in code and a small synthetic stream, then runs the cases named on the command
line with `petl.Learner.fit`. Every process writes, per case, under `<out>/<case>/`:
    rank<r>.json          accuracy matrix, prediction counts, replay buffer, checkpoint writes
    rank<r>.safetensors   final trainable weights + heads (model.*) and EWC state (ewc.*)

Cases (names on the command line):
    class        class-incremental, LoRA, EWC + Replay (concat heads)
    task         task-incremental, LoRA, Replay (per-task heads chosen by task id: old heads
                 are used only by some batches, so DDP must allow unused parameters)
    adapters     class-incremental, LoRA, TaskAdapters (a fresh adapter and head per task)
    lwf          task-incremental, LoRA, LwF + Replay (old heads in the distillation term)
    lwf@K=V,..   the same with LwF's alpha/temperature, scenario=class, or TrainConfig
                 fields (lr=...)
    olora        class-incremental, O-LoRA (penalty on LoRA weights; merges after each task)
    fisher       EWC's empirical Fisher of task 0 on the initial weights (nothing trained)
    naive        class-incremental, LoRA, no strategy
    full         class-incremental, full fine-tuning (method=None), no strategy
    ewc_full     class-incremental, full fine-tuning, EWC (Fisher and anchors of every weight)
    si, mas, agem, gem, der, er_ace, icarl, gdumb, cumulative
                 class-incremental, LoRA, one strategy of the catalog (CATALOG below)
    adalora      class-incremental, AdaLoRA (its rank budget step after every step)
    stop@T.S:D   the "class" case checkpointing every 2 steps into <checkpoint-root>/D,
                 killed at task T after S optimizer steps of it (S=0: before it starts)
    resume:D     the "class" case resumed from <checkpoint-root>/D
The sizes are chosen so that no split divides evenly by 2 processes x batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys

import numpy as np
import torch

import petl
from petl.training import checkpoint as ckpt
from tests.tiny_models import bert_tokenizer, tiny_bert

# task -> {label: words that signal it}
TASKS = {
    "sentiment": {"good": ["good", "great", "loved"], "bad": ["bad", "awful", "hated"]},
    "animals": {"cat": ["cat", "mat", "sat"], "dog": ["dog", "ran", "fast"]},
    "weather": {"hot": ["sun", "hot", "red"], "cold": ["rain", "cold", "blue"]},
}
N_TRAIN, N_TEST = 29, 13  # per task; not multiples of the global batch (8 = 2 processes x 4)
FILLER = ["the", "a", "on", "it", "this", "that", "and", "but", "is", "was", "very", "not"]
WORDS = FILLER + [w for words in TASKS.values() for ws in words.values() for w in ws]


def make_tokenizer():
    return bert_tokenizer(WORDS)


def make_model():
    # dropout off: runs on 1 and 2 processes are compared; a livelier init (0.1): tasks are
    # learned in few steps
    return tiny_bert(64, num_labels=2, dropout=0.0, init=0.1)


def make_stream(scenario: str) -> petl.Stream:
    rng = random.Random(0)

    def sentence(words: list[str]) -> str:
        length = rng.randint(3, 9)  # uneven lengths: padding differs between batches
        return " ".join(
            rng.choice(words) if i % 3 == 0 else rng.choice(FILLER) for i in range(length)
        )

    records = {}
    for name, labels in TASKS.items():

        def split(n: int, labels: dict[str, list[str]] = labels) -> list[dict[str, str]]:
            keys = sorted(labels)
            return [{"text": sentence(labels[keys[i % 2]]), "label": keys[i % 2]} for i in range(n)]

        records[name] = {"train": split(N_TRAIN), "test": split(N_TEST), "labels": sorted(labels)}
    return petl.Stream.from_records(records, scenario=scenario, val_fraction=0.0)


# the catalog's cases: small memories, so that replayed batches and reference gradients
# are drawn from a buffer that does not hold every example
CATALOG = {
    "si": lambda: [petl.SI(lam=1.0)],
    "mas": lambda: [petl.MAS(lam=1.0, samples=21)],
    "agem": lambda: [petl.AGEM(memory=10, sample_size=6)],
    "gem": lambda: [petl.GEM(patterns_per_task=6)],
    "der": lambda: [petl.DER(memory=10, batch_size=8)],
    "er_ace": lambda: [petl.ERACE(memory=10, batch_size=8)],
    "icarl": lambda: [petl.ICaRL(memory=10)],
    "gdumb": lambda: [petl.GDumb(memory=20)],
    "cumulative": lambda: [petl.Cumulative()],
}


class Stop(petl.Strategy):
    """Simulates a kill: raises once task `task` has run `steps` optimizer steps. No
    settings are public, so checkpoint fingerprints match runs without it."""

    name = "stop"

    def __init__(self, task: int, steps: int) -> None:
        self._task, self._steps = task, steps

    def config(self) -> dict:
        return {}

    def before_task(self, learner, t: int) -> None:
        if t == self._task and self._steps == 0:
            raise Killed

    def after_step(self, learner) -> None:
        if learner.task_index == self._task and learner.global_step_in_task == self._steps:
            raise Killed


class Killed(Exception):
    pass


def build(case: str, sharding: str = "none", epochs: int = 4) -> tuple[petl.Learner, petl.Stream]:
    config = dict(
        sharding=sharding,
        epochs=epochs,
        batch_size=8,
        eval_batch_size=8,
        lr=3e-2,
        seed=0,
        num_threads=1,
        progress=False,
        warmup_ratio=0.0,
    )
    options = {"r": 4, "target_modules": ["query", "value"]}
    scenario, strategies = "class", [petl.EWC(lam=100.0, fisher_samples=21), petl.Replay(memory=10)]
    if case == "task":
        scenario, strategies = "task", [petl.Replay(memory=10)]
    elif case == "adapters":
        strategies = [petl.TaskAdapters()]
    elif case == "lwf" or case.startswith("lwf@"):  # old heads: only in the distillation
        given = dict(kv.split("=") for kv in case[4:].split(",")) if "@" in case else {}
        lwf = {k: float(given.pop(k)) for k in ("alpha", "temperature") if k in given}
        scenario = given.pop("scenario", "task")
        config.update({k: float(v) for k, v in given.items()})  # e.g. lr
        strategies = [petl.LwF(**lwf), petl.Replay(memory=10)]
    elif case == "olora":
        strategies = [petl.OLoRA(lam_orth=0.5, lam_l2=0.01)]
    elif case in ("naive", "full"):
        strategies = []
    elif case == "ewc_full":
        strategies = [petl.EWC(lam=100.0, fisher_samples=21)]
    elif case in CATALOG:
        strategies = CATALOG[case]()
    elif case == "adalora":  # the method's budget step edits weights after every step
        strategies = []
        options = {"init_r": 4, "target_r": 2, "tinit": 1, "tfinal": 1, "deltaT": 1}
        options["target_modules"] = ["query", "value"]
    elif case.startswith(("stop@", "resume")):
        config["checkpoint_every"] = 2
        if case.startswith("stop@"):
            task, steps = case[5:].split(":")[0].split(".")
            strategies.append(Stop(int(task), int(steps)))
        else:
            strategies.append(Stop(-1, -1))
    full = case in ("full", "ewc_full")
    model = make_model()
    if full:
        config["lr"] = 3e-3
        # The attention key bias has an exactly zero true gradient (softmax ignores a
        # shift shared by every key): its gradient is float noise, which AdamW scales to
        # full steps, differently for every summation order. Frozen, so that 1 and 2
        # processes are compared on weights that learn.
        for name, p in model.named_parameters():
            if name.endswith("attention.self.key.bias"):
                p.requires_grad_(False)
    learner = petl.Learner(
        model,
        tokenizer=make_tokenizer(),
        method=None if full else ("adalora" if case == "adalora" else "lora"),
        method_options=None if full else options,
        strategies=strategies,
        config=petl.TrainConfig(**config),
    )
    return learner, make_stream(scenario)


def run(
    case: str, out: str, checkpoint_root: str | None, sharding: str = "none", epochs: int = 4
) -> None:
    learner, stream = build(case, sharding, epochs)
    folder = os.path.join(out, case.replace(":", "_"))
    os.makedirs(folder, exist_ok=True)
    if case == "fisher":
        return fisher(learner, stream, folder)
    checkpoint_dir = None
    if ":" in case:
        checkpoint_dir = os.path.join(checkpoint_root or out, case.split(":")[1])
    writes: list[str] = []
    original = ckpt.write

    def counting_write(root: str, parts: dict) -> None:
        writes.append(parts["state"]["phase"])
        original(root, parts)

    from petl.training import sharding as shard_mod

    held: list[float] = []  # fraction of the trainable weights this process holds, per task
    original_prepare = shard_mod.prepare

    def recording_prepare(learner, optimizer, *rest):
        out = original_prepare(learner, optimizer, *rest)
        trainable = [p for p in learner.model.parameters() if p.requires_grad]
        held.append(shard_mod.shard_fraction(trainable))
        return out

    ckpt.write = counting_write
    shard_mod.prepare = recording_prepare
    try:
        results = learner.fit(stream, checkpoint_dir=checkpoint_dir)
        killed = False
    except Killed:
        results, killed = None, True
    finally:
        ckpt.write = original
        shard_mod.prepare = original_prepare
    acc = learner.accelerator
    rank = acc.process_index
    info: dict = {
        "num_processes": acc.num_processes,
        "checkpoint_writes": writes,
        "killed": killed,
        "held_fraction": held,
        "mixed_precision": str(acc.mixed_precision),
    }
    if results is not None:
        info["accuracy"] = results.accuracy.tolist()
        info["initial"] = results.initial.tolist()
        info["prediction_counts"] = [len(learner.predictions(t)) for t in range(len(stream))]
        info["test_sizes"] = [len(task.test) for task in stream.tasks]
        for s in learner.strategies:
            if isinstance(s, petl.Replay):
                info["replay_buffer"] = [list(x) for x in s.buffer]
        tensors = {
            f"model.{n}": p.detach().contiguous()
            for n, p in learner.model.named_parameters()
            if p.requires_grad or n.startswith("heads.")
        }
        for s in learner.strategies:
            if isinstance(s, petl.EWC):
                tensors.update(
                    {
                        f"ewc.{k}": v.contiguous()
                        for k, v in s.state_dict().items()
                        if isinstance(v, torch.Tensor)
                    }
                )
        # gathered logits of every test split, in row order (none duplicated or dropped)
        for t in range(len(stream)):
            tensors[f"logits.{t}"] = learner.logits_for(learner.rows(t, "test")).contiguous()
        save(tensors, os.path.join(folder, f"rank{rank}.safetensors"))
    with open(os.path.join(folder, f"rank{rank}.json"), "w") as f:
        json.dump(info, f)


def fisher(learner: petl.Learner, stream: petl.Stream, folder: str) -> None:
    from petl.strategies.ewc import empirical_fisher

    learner.setup(stream)
    learner.model.heads.activate(0)
    values = empirical_fisher(learner, 0, 21)
    rank = learner.accelerator.process_index
    save(
        {f"fisher.{n}": v.contiguous() for n, v in values.items()},
        os.path.join(folder, f"rank{rank}.safetensors"),
    )
    with open(os.path.join(folder, f"rank{rank}.json"), "w") as f:
        json.dump({"num_processes": learner.accelerator.num_processes}, f)


def save(tensors: dict[str, torch.Tensor], path: str) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu() for k, v in tensors.items()}, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cases", nargs="+")
    parser.add_argument("--out", required=True)
    parser.add_argument("--checkpoint-root", default=None, help="default: --out")
    parser.add_argument("--sharding", default="none", help="TrainConfig.sharding")
    parser.add_argument("--epochs", type=int, default=4, help="TrainConfig.epochs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    np.random.seed(0)
    for case in args.cases:
        run(case, args.out, args.checkpoint_root, args.sharding, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
