"""SLCA under `accelerate launch` (2 processes) or plain `python` (1), run by
tests/distributed/test_slca_two_processes.py. Reuses cl_worker.py's tiny BERT, tokenizer
and class-incremental stream (uneven splits for 2 processes x batch 4); writes per rank
`rank<r>.json` (accuracy, process count) and `rank<r>.safetensors` (SLCA's class
statistics `slca.*`, the final heads and trainable weights `model.*`)."""

from __future__ import annotations

import json
import os
import sys

import torch

import petl
from tests.distributed.cl_worker import make_model, make_stream, make_tokenizer, save


def main(out: str, sharding: str = "none") -> int:
    torch.set_num_threads(1)
    learner = petl.Learner(
        make_model(),
        tokenizer=make_tokenizer(),
        method="lora",
        method_options={"r": 4, "target_modules": ["query", "value"]},
        strategies=[petl.SLCA(lr_scale=0.1, ca_epochs=2, ca_samples=16)],
        config=petl.TrainConfig(
            epochs=2,
            batch_size=8,
            eval_batch_size=8,
            lr=3e-2,
            seed=0,
            num_threads=1,
            progress=False,
            warmup_ratio=0.0,
            sharding=sharding,  # "fsdp": tests/distributed/test_fsdp_steps.py
        ),
    )
    results = learner.fit(make_stream("class"))
    rank = learner.accelerator.process_index
    os.makedirs(out, exist_ok=True)
    slca = learner.strategies[0]
    tensors = {f"slca.{k}": v.contiguous() for k, v in slca.state_dict().items()}
    tensors.update(
        {
            f"model.{n}": p.detach().contiguous()
            for n, p in learner.model.named_parameters()
            if p.requires_grad or n.startswith("heads.")
        }
    )
    save(tensors, os.path.join(out, f"rank{rank}.safetensors"))
    info = {
        "num_processes": learner.accelerator.num_processes,
        "accuracy": results.accuracy.tolist(),
    }
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(info, f)
    learner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
