"""Worker of tests/distributed/test_generation_processes.py: trains a tiny causal LM on the
2-task instruction stream (and a tiny BERT tagger on the 2-task NER stream) with LoRA, under
one process or `accelerate launch --num_processes 2`, and writes per rank
`<out>/<case>/rank<r>.json`: the score matrix, the test predictions of every task after
the last one, and how many rows this rank predicted itself (its share).

Cases: labels, greedy (generation decodings), tokens."""

from __future__ import annotations

import argparse
import json
import os

import torch

import petl
from petl.families.generation import GenerationFamily
from petl.families.tokens import TokenFamily
from tests.families.family_data import (
    bert_tagger,
    causal_lm,
    gen_stream,
    ner_stream,
    word_tokenizer,
    wordpiece_tokenizer,
)

CONFIG = {"epochs": 2, "batch_size": 8, "eval_batch_size": 4, "lr": 1e-2, "warmup_ratio": 0.0}


def learner_for(case: str) -> tuple[petl.Learner, petl.Stream]:
    config = petl.TrainConfig(**CONFIG, progress=False, seed=0, max_length=32)
    if case == "tokens":
        family: object = TokenFamily()
        model, tok = bert_tagger(), wordpiece_tokenizer()
        stream = ner_stream(n_train=21, n_test=7)
        options = {"r": 4, "target_modules": ["query", "value"]}
    else:
        family = GenerationFamily(decoding=case)
        model, tok = causal_lm("llama"), word_tokenizer()
        stream = gen_stream(n_train=21, n_test=7)
        options = {"r": 4}
    learner = petl.Learner(
        model, tok, method="lora", method_options=options, config=config, family=family
    )
    return learner, stream


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cases", nargs="+")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    learner = None
    for case in args.cases:
        learner, stream = learner_for(case)
        learner.setup(stream)
        counted = {"rows": 0}
        # count the rows this rank predicts itself: the family's own worker method
        own = (
            "_predict" if case == "tokens" else "_choose_label" if case == "labels" else "_generate"
        )
        base = getattr(learner.family, own)

        def share(*a, base=base, counted=counted):  # type: ignore[no-untyped-def]
            counted["rows"] += len(a[-1])
            return base(*a)

        setattr(learner.family, own, share)
        results = learner.fit(stream)
        preds = [learner.predictions(t) for t in range(len(stream))]
        rank = learner.accelerator.process_index
        folder = os.path.join(args.out, case)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"rank{rank}.json"), "w") as f:
            json.dump(
                {
                    "matrix": results.accuracy.tolist(),
                    "preds": preds,
                    "own_rows": counted["rows"],
                    "test_rows": sum(len(t.test) for t in stream.tasks),
                    "processes": learner.accelerator.num_processes,
                },
                f,
            )
    if learner is not None:  # once: it tears the process group down
        learner.close()


if __name__ == "__main__":
    main()
