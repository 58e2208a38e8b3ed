"""petl against Avalanche on the same continual-learning job, strategy by strategy.

The job (model, stream, settings) and what one run measures are in
benchmarks/vs_avalanche_job.py; this script schedules the runs and summarises them.

Timing on a shared machine: every run is its own fresh process with 1 torch thread (both
libraries), petl and Avalanche runs are interleaved (petl, Avalanche, petl, Avalanche...
round after round, so a load spike hits both alike), each (strategy, library) runs
`--repeats` times, and the table gives the MIN training time over the repeats (the run
least slowed by other jobs) beside the median; each run's 1-minute load average is kept
in the JSON. Accuracy and stored state are deterministic (1 thread, seed 0): the repeats
must agree, and the JSON says whether they did.

Run from the repository root (`--resume` continues an interrupted measurement from the
runs already in --json; `--head fixed` measures petl on Avalanche's head layout, written
under "petl_fixed_head"; `--fresh-optimizer` resets Avalanche's AdamW at each experience
as petl does, under "avalanche_fresh_optimizer"):

    python benchmarks/vs_avalanche.py --repeats 3 --json benchmarks/results/vs_avalanche.json
    python benchmarks/vs_avalanche.py --head fixed --fresh-optimizer --repeats 1 --resume
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_avalanche_job import DATA, STRATEGIES, job

JOB_SCRIPT = Path(__file__).resolve().parent / "vs_avalanche_job.py"
ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONWARNINGS": "ignore",
    "HF_HUB_OFFLINE": "1",
}


def variant(library: str, head: str, fresh_optimizer: bool) -> tuple[str, list[str]]:
    """The results key and job options of a library's run: petl, petl_fixed_head,
    avalanche or avalanche_fresh_optimizer."""
    if library == "petl":
        return ("petl", []) if head == "growing" else (f"petl_{head}_head", ["--head", head])
    if fresh_optimizer:
        return "avalanche_fresh_optimizer", ["--fresh-optimizer"]
    return "avalanche", []


def run_one(library: str, name: str, options: list[str], data: Path, tmp: Path) -> dict[str, Any]:
    """One run in a fresh process; the parent's wall time and load average are added."""
    cmd = [sys.executable, str(JOB_SCRIPT), library, name, str(tmp), "--data", str(data)]
    cmd += options
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, **ENV}, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr[-3000:], "load_avg_1min_parent": load}
    result = json.loads(tmp.read_text())
    tmp.unlink()
    result["process_wall_s"] = time.perf_counter() - start
    result["load_avg_1min_parent"] = load
    return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows of one (strategy, library): min/median time, deterministic figures."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[-1]["error"], "runs": len(runs)}
    times = [r["train_time_s"] for r in ok]
    cpu = [r["train_cpu_s"] for r in ok if "train_cpu_s" in r]  # runs since CPU was timed
    first = ok[0]
    return {
        "train_cpu_s_min": min(cpu) if cpu else None,
        "train_cpu_s_median": statistics.median(cpu) if cpu else None,
        "train_cpu_s_all": cpu,
        "train_time_s_min": min(times),
        "train_time_s_median": statistics.median(times),
        "train_time_s_all": times,
        "load_avg_1min": [r["load_avg_1min"] for r in ok],
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in ok),
        "peak_rss_mb_all": [r["peak_rss_mb"] for r in ok],
        "repeats_agree": all(
            r["accuracy"] == first["accuracy"] and r["stored_numbers"] == first["stored_numbers"]
            for r in ok
        ),
        **{
            k: first[k]
            for k in (
                "accuracy",
                "final_avg_accuracy",
                "forgetting",
                "stored_numbers",
                "trainable_params",
            )
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES, choices=STRATEGIES)
    parser.add_argument(
        "--libraries", nargs="+", default=["petl", "avalanche"], choices=["petl", "avalanche"]
    )
    parser.add_argument("--head", choices=["growing", "fixed"], default="growing")
    parser.add_argument(
        "--fresh-optimizer", action="store_true", help="Avalanche resets AdamW per experience"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/vs_avalanche.json"))
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --json")
    parser.add_argument("--table", action="store_true", help="print the table of --json, run none")
    parser.add_argument(
        "--merge", nargs="+", type=Path, help="write the runs of these files, together, to --json"
    )
    args = parser.parse_args()
    from tqdm import tqdm

    if args.merge:
        write(args.json, [r for f in args.merge for r in json.loads(f.read_text())["runs"]])
        print(table(json.loads(args.json.read_text())["results"]))
        return 0
    saved = json.loads(args.json.read_text()) if args.json.exists() else {}
    if args.table:  # the summary rewritten from the runs (and its .md), then printed
        write(args.json, saved["runs"])
        print(table(json.loads(args.json.read_text())["results"]))
        return 0
    runs: list[dict[str, Any]] = saved.get("runs", []) if args.resume else []
    runs = [r for r in runs if "error" not in r]  # failed runs are run again
    done = {(r["library"], r["strategy"], r["repeat"]) for r in runs}
    todo = [
        (rep, name, *variant(lib, args.head, args.fresh_optimizer), lib)
        for rep in range(args.repeats)
        for name in args.strategies
        for lib in args.libraries  # interleaved: petl, avalanche, petl, avalanche...
    ]
    todo = [t for t in todo if (t[2], t[1], t[0]) not in done]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for rep, name, label, options, lib in tqdm(todo, desc="runs"):
        tmp = args.json.with_suffix(f".{label}.{name}.tmp")
        result = run_one(lib, name, options, args.data, tmp)
        if "error" in result:
            print(f"{label} {name} failed:\n{result['error']}", file=sys.stderr)
        runs.append({"library": label, "strategy": name, "repeat": rep, **result})
        write(args.json, runs)
    print(table(json.loads(args.json.read_text())["results"]))
    return 0


def write(path: Path, runs: list[dict[str, Any]]) -> None:
    """Raw runs and their summary per (strategy, library); rewritten after every run."""
    results: dict[str, dict[str, Any]] = {}
    order = ["petl", "avalanche", "petl_fixed_head", "avalanche_fresh_optimizer"]
    for name in STRATEGIES:
        for label in sorted({r["library"] for r in runs}, key=order.index):
            mine = [r for r in runs if r["strategy"] == name and r["library"] == label]
            if mine:
                results.setdefault(name, {})[label] = summarise(mine)
    summary = {"job": job(), "results": results, "runs": runs}
    path.write_text(json.dumps(summary, indent=1))
    path.with_suffix(".md").write_text(table(results) + "\n")


def table(rows: dict[str, dict[str, Any]]) -> str:
    head = (
        "| strategy | library | final avg acc | forgetting | runs | train s (min) | "
        "train s (median) | train CPU s (min) | peak RSS MB | stored numbers | "
        "petl/Avalanche wall (min) | petl/Avalanche CPU (min) | load avg (1 min) |"
    )
    lines = [head, "|" + "---|" * 13]
    for name, pair in rows.items():
        a = pair.get("avalanche", {})
        for label, r in pair.items():
            if "error" in r:
                lines.append(f"| {name} | {label} | failed: see JSON |" + " |" * 7)
                continue
            ratio = cpu_ratio = ""
            if label.startswith("petl") and "train_time_s_min" in a:
                ratio = f"{r['train_time_s_min'] / a['train_time_s_min']:.2f}"
                if r["train_cpu_s_min"] and a["train_cpu_s_min"]:
                    cpu_ratio = f"{r['train_cpu_s_min'] / a['train_cpu_s_min']:.2f}"
            loads = ", ".join(f"{x[0]:.1f}" for x in r["load_avg_1min"])
            cpu = f"{r['train_cpu_s_min']:.1f}" if r["train_cpu_s_min"] else "-"
            lines.append(
                f"| {name} | {label} | {r['final_avg_accuracy']:.3f} | {r['forgetting']:.3f} | "
                f"{len(r['train_time_s_all'])} | {r['train_time_s_min']:.1f} | "
                f"{r['train_time_s_median']:.1f} | {cpu} | {r['peak_rss_mb']:.0f} | "
                f"{r['stored_numbers']:,} | {ratio} | {cpu_ratio} | {loads} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
