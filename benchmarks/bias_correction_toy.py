"""The head-bias corrections (MaskSeen, WA) and SLCA on the constructed class-incremental
stream of the tests (tests/cl: a bag-of-words model whose frozen random features separate
the classes; 4 tasks x 2 classes, 32 training / 16 test examples per task, LoRA r=4 on the
projection, 3 epochs, lr 3e-2). Prints a Markdown table of final average accuracy.

    PYTHONPATH=$PWD python benchmarks/bias_correction_toy.py
"""

from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # tests.cl.cl_data

import petl

ROWS = {
    "Naive": lambda: [petl.Naive()],
    "MaskSeen": lambda: [petl.MaskSeen()],
    "WA": lambda: [petl.WA()],
    "MaskSeen+WA": lambda: [petl.MaskSeen(), petl.WA()],
    "EWC": lambda: [petl.EWC(lam=1e3, fisher_samples=32)],
    "EWC+MaskSeen": lambda: [petl.EWC(lam=1e3, fisher_samples=32), petl.MaskSeen()],
    "EWC+WA": lambda: [petl.EWC(lam=1e3, fisher_samples=32), petl.WA()],
    "LwF": lambda: [petl.LwF()],
    "LwF+MaskSeen": lambda: [petl.LwF(), petl.MaskSeen()],
    "LwF+WA": lambda: [petl.LwF(), petl.WA()],
    "LwF+MaskSeen+WA": lambda: [petl.LwF(), petl.MaskSeen(), petl.WA()],
    "SLCA": lambda: [petl.SLCA()],
    "SLCA without alignment": lambda: [petl.SLCA(ca_epochs=0)],
}


def main() -> None:
    from tests.cl.bag_model import BagClassifier
    from tests.cl.cl_data import make_tokenizer
    from tests.cl.test_slca import CONFIG, stream

    torch.set_num_threads(1)
    tok = make_tokenizer()
    print("| strategies | final average accuracy | wall s |\n|---|---|---|")
    for name, make in ROWS.items():
        start = time.perf_counter()
        learner = petl.Learner(
            BagClassifier(seed=0),
            tok,
            method="lora",
            method_options={"r": 4, "target_modules": ["proj"]},
            strategies=make(),
            config=petl.TrainConfig(**CONFIG),
        )
        acc = learner.fit(stream()).accuracy[-1].mean()
        print(f"| {name} | {acc:.3f} | {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
