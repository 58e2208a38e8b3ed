"""One Trainer + ContinualCallback run (EWC + Replay, tiny BERT with LoRA) on 1 process, or
on several under `accelerate launch`; each rank writes its accuracy matrix (JSON) and its
trainable weights and EWC state (safetensors) to `--out`. Used by test_trainer_distributed.

Usage: python trainer_worker.py --out DIR   (the global batch is 8 for any process count)"""

from __future__ import annotations

import argparse
import json
import os

import torch
from safetensors.torch import save_file

torch.set_num_threads(1)

GLOBAL_BATCH = 8


def main() -> None:
    import petl
    from petl.integrations.transformers import ContinualCallback
    from tests.cl.cl_data import make_tokenizer
    from tests.integrations.trainer_data import bert_trainer, domain_stream, train_args

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    out = parser.parse_args().out
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cfg = petl.TrainConfig(batch_size=GLOBAL_BATCH // world, epochs=2, lr=1e-2, seed=0)
    tok = make_tokenizer()
    # The Trainer's default average_tokens_across_devices=True made a 2-process run of this
    # sequence classifier differ from 1 process already in task 0, before petl adds any
    # term (measured; see docs/trainer.md); with False the Trainer's own loss matches.
    args = train_args(os.path.join(out, "run"), cfg, average_tokens_across_devices=False)
    trainer = bert_trainer(args, tok)
    ewc = petl.EWC(lam=100.0)
    # Task sizes (32, then 32 + 16 replayed) are multiples of the global batch: no batch is
    # padded with repeated examples, so 1 and 2 processes see exactly the same batches.
    stream = domain_stream(n_first=32, n_later=32, n_test=40)
    results = ContinualCallback(stream, [ewc, petl.Replay(memory=16)]).fit(trainer)
    rank = trainer.accelerator.process_index
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"accuracy": results.accuracy.tolist(), "world": world}, f)
    tensors = {
        f"param.{n}": p.detach() for n, p in trainer.model.named_parameters() if p.requires_grad
    }
    tensors.update({f"ewc.{k}": v for k, v in ewc.state_dict().items() if torch.is_tensor(v)})
    save_file(
        {k: v.contiguous() for k, v in tensors.items()},
        os.path.join(out, f"rank{rank}.safetensors"),
    )
    if world > 1:
        trainer.accelerator.wait_for_everyone()
        torch.distributed.destroy_process_group()  # a group left alive can abort a rank at exit


if __name__ == "__main__":
    main()
