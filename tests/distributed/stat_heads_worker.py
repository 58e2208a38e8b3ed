"""Statistic-head worker, run by tests/distributed/test_stat_heads_two_processes.py under
`accelerate launch` (2 processes) or plain `python` (one process).

Runs NCM, FeCAM, RanPAC and APER (LoRA on the first task, then RanPAC, or at its
defaults FeCAM, on adapted + pretrained features) on cl_worker's tiny BERT and stream (class-incremental, splits that
do not divide by 2 processes x batch), and every process writes its strategies' state
(`<out>/rank<r>.safetensors`) and accuracy matrices (`<out>/rank<r>.json`)."""

from __future__ import annotations

import argparse
import json
import os

import torch
from safetensors.torch import save_file

import petl
from tests.distributed.cl_worker import make_model, make_stream, make_tokenizer

CASES = {
    "ncm": lambda: petl.NCM(),
    "fecam": lambda: petl.FeCAM(covariance="class"),
    "ranpac": lambda: petl.RanPAC(dims=64),
    "aper": lambda: petl.APER(head="ranpac", head_options={"dims": 64}),
    "aper_default": lambda: petl.APER(),  # FeCAM, one covariance per source
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sharding", default="none", help="TrainConfig.sharding")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tensors: dict[str, torch.Tensor] = {}
    accuracy = {}
    learner = None
    for case, make in CASES.items():
        strategy = make()
        config = petl.TrainConfig(
            epochs=2,
            batch_size=8,
            eval_batch_size=8,
            lr=1e-2,
            progress=False,
            pooling="mean",
            sharding=args.sharding,
        )
        learner = petl.Learner(make_model(), make_tokenizer(), strategies=[strategy], config=config)
        results = learner.fit(make_stream("class"))
        accuracy[case] = results.accuracy.tolist()
        for name, value in strategy.state_dict().items():
            if isinstance(value, torch.Tensor):
                tensors[f"{case}.{name}"] = value
    assert learner is not None
    rank = learner.accelerator.process_index
    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, f"rank{rank}.safetensors"))
    with open(os.path.join(args.out, f"rank{rank}.json"), "w") as f:
        json.dump(accuracy, f)
    learner.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
