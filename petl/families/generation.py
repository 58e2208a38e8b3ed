"""Generative tasks on causal LMs: instruction + input -> answer text, scored by exact match.

Each example becomes the prompt `template.format(instruction=..., input=...)` (default
"{instruction}\\n{input}\\nAnswer:") followed by " " + answer + eos. Training is plain
next-token loss on the answer tokens only: prompt and padding positions carry label -100.
There are no task heads: the LM head is the output, so a model trained on a stream is
one model answering every task, and no task id is needed at test time.

Evaluation, per `GenerationFamily(decoding=...)`:
    "greedy"  `model.generate` without sampling, at most as many new tokens as the longest
              answer of the stream (+ eos); the text is stripped and compared to the gold
              answer after normalisation (whitespace collapsed, lower case).
    "labels"  restricted to the task's label strings: each candidate's log-likelihood
              log p(" " + label + eos | prompt) is computed (one pass over the prompt, its
              key/value cache shared by all candidates) and the most likely label is the
              answer. Deterministic, and cheaper than generating.
Confidence of an answer (for TaskAdapters without task ids) is its mean log-probability
per answer token, eos included: the adapter with the lowest answer perplexity wins.

The prompt rows live in petl.families.prompts, answer scoring in petl.families.lm_scoring;
their names are re-exported here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from petl.errors import ConfigError, IncompatibleModelError, unknown_choice
from petl.families.classification import parse_label_task, text_examples
from petl.families.lm_scoring import (
    LMModel,
    _last_logit_only,
    _left_pad,
    candidate_logprobs,
    is_prompt_learning,
    token_logprobs,
)
from petl.families.prompts import (
    ANSWER_KEYS,
    IGNORE,
    INPUT_KEYS,
    INSTRUCTIONS,
    TEMPLATE,
    LMRow,
    answer_ids,
    collate_lm,
    default_instruction,
    encode_instructions,
    eos_id,
    instruction_example,
    lm_loss,
    normalize,
)
from petl.families.shares import sharded_predict

if TYPE_CHECKING:
    from petl.families import DistillPairs
    from petl.tasks import Task

DECODINGS = ("greedy", "labels")


class GenerationFamily:
    """Instruction tasks on a causal LM; exact match.

    Args:
        decoding: "greedy" (generate) or "labels" (pick the most likely label string).
        template: Prompt template with {instruction} and {input}.
        max_new_tokens: Generation budget; default: the longest answer of the stream + 1.
    """

    name = "generation"
    auto_class = "AutoModelForCausalLM"
    auto_kwargs: Mapping[str, Any] = {}
    label_per_row = False  # answer tokens

    def __init__(
        self, decoding: str = "greedy", template: str = TEMPLATE, max_new_tokens: int | None = None
    ) -> None:
        if decoding not in DECODINGS:
            raise unknown_choice("decoding", decoding, DECODINGS)
        if "{input}" not in template:
            raise ConfigError(f"The prompt template needs an {{input}} field, got {template!r}.")
        self.decoding, self.template, self.max_new_tokens = decoding, template, max_new_tokens

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "decoding": self.decoding,
            "template": self.template,
            "max_new_tokens": self.max_new_tokens,
        }

    def saved_config(self, learner: Any) -> dict[str, Any]:
        """With the generation budget measured now: a loaded learner has no data."""
        return {**self.config(), "max_new_tokens": self.max_new_tokens or _budget(learner)}

    def parse_task(
        self, name: str, spec: Mapping[str, Any]
    ) -> tuple[dict[str, list[Any]], list[str]]:
        return parse_label_task(name, spec, instruction_example, seen_labels_only=False)

    def file_records(
        self,
        files: Mapping[str, Any],
        *,
        text_column: str | None = None,
        label_column: str | None = None,
        instructions: Mapping[str, str] | None = None,
        types: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """JSON / JSON-lines records `{instruction, input, output}`; `instructions` gives a
        task-wide instruction."""
        from petl.records import read_records

        records: dict[str, dict[str, Any]] = {}
        for name, paths in files.items():
            split_paths = {"train": paths} if isinstance(paths, str) else dict(paths)
            records[name] = {k: read_records(p) for k, p in split_paths.items()}
            records[name]["instruction"] = (instructions or {}).get(name, "")
        return records

    def folder_spec(
        self, name: str, spec: dict[str, Any], instruction: str | None
    ) -> dict[str, Any]:
        """The task's instruction: `instruction`, else the built-in one for its name."""
        from petl.records import label_name

        labels = spec.get("labels") or sorted(
            {label_name(r["label"], name) for k in ("train", "test") for r in spec.get(k) or []}
        )
        return {**spec, "instruction": instruction or default_instruction(name, labels)}

    def input_examples(self, task: Task, inputs: Sequence[Any]) -> list[Any]:
        return text_examples(task, inputs)

    def as_predictions(self, preds: Any) -> Any:
        return preds

    def answers(self, learner: Any, t: int, preds: Any) -> list[Any]:
        return list(preds)

    def in_task(self, learner: Any, t: int, answers: list[Any]) -> Any:
        return answers

    def distill_targets(self, learner: Any, rows: Sequence[Any], t: int) -> torch.Tensor | None:
        return None  # vocabulary-sized outputs would not fit: distil from a snapshot

    def distill_pairs(
        self,
        learner: Any,
        batch: dict[str, torch.Tensor],
        logits: torch.Tensor,
        t: int,
        teacher: torch.Tensor | dict[str, torch.Tensor],
    ) -> DistillPairs:
        """The full next-token distribution at every answer position, now and under the
        parameters `teacher` had before task t."""
        assert isinstance(teacher, dict)
        model = learner.model
        at = (batch["labels"] != IGNORE)[:, 1:]  # positions whose next token is an answer's
        with torch.no_grad():
            was = model.training
            model.eval()
            old = torch.func.functional_call(model, teacher, (batch,))[:, :-1][at]
            model.train(was)
        return [(logits[:, :-1][at], old)]

    def metric(self, task: Task) -> str:
        return "exact_match"

    def build_model(self, learner: Any, backbone: nn.Module) -> nn.Module:
        config = getattr(backbone, "config", None)
        if not hasattr(backbone, "generate") or getattr(config, "is_encoder_decoder", False):
            raise IncompatibleModelError(
                f"Generative streams need a causal LM (AutoModelForCausalLM), got "
                f"{type(backbone).__name__}."
            )
        return LMModel(learner.apply_method(backbone))

    def wrap_model(self, learner: Any, model: nn.Module) -> nn.Module:
        return LMModel(model)

    def encode(self, learner: Any, t: int, examples: Sequence[Any]) -> list[LMRow]:
        return encode_instructions(
            learner.stream.tasks[t],
            t,
            examples,
            learner.tokenizer,
            learner.config.max_length,
            self.template,
        )

    def collate(self, rows: Sequence[Any], pad_id: int) -> dict[str, torch.Tensor]:
        return collate_lm(rows, pad_id)

    def loss(
        self, logits: torch.Tensor, batch: dict[str, torch.Tensor], reduction: str = "mean"
    ) -> torch.Tensor:
        return lm_loss(logits, batch["labels"], reduction)

    def predict(
        self, learner: Any, t: int, rows: Sequence[Any], head: int | None = None
    ) -> tuple[list[str], np.ndarray]:
        """Answers for rows of task t and their mean log-probability per token (each
        process answers its share of the rows; every process gets all answers)."""
        model = learner.model
        was_training = model.training
        model.eval()
        try:
            if self.decoding == "labels":
                return sharded_predict(learner, rows, lambda s: self._choose_label(learner, t, s))
            return sharded_predict(learner, rows, lambda s: self._generate(learner, s))
        finally:
            model.train(was_training)

    def _choose_label(
        self, learner: Any, t: int, rows: Sequence[LMRow]
    ) -> tuple[list[str], np.ndarray]:
        labels = learner.stream.tasks[t].labels
        if not labels:
            raise ConfigError(
                f"decoding='labels' needs the label strings of task {t}; it has none."
            )
        cands = [answer_ids(learner.tokenizer, label) for label in labels]
        size = max(1, learner.config.eval_batch_size // len(cands))
        answers: list[str] = []
        conf: list[float] = []
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            sums, counts = candidate_logprobs(
                learner.model,
                [r.input_ids[: r.prompt_len] for r in chunk],
                cands,
                learner.pad_id,
                learner.device,
            )
            best = sums.argmax(-1)
            answers += [labels[i] for i in best.tolist()]
            conf += (
                (sums.gather(1, best[:, None]) / counts.gather(1, best[:, None]))
                .squeeze(1)
                .tolist()
            )
        return answers, np.array(conf)

    @torch.no_grad()
    def _generate(self, learner: Any, rows: Sequence[LMRow]) -> tuple[list[str], np.ndarray]:
        from transformers import GenerationConfig

        tok = learner.tokenizer
        eos = eos_id(tok)
        budget = self.max_new_tokens or _budget(learner)
        gen_config = GenerationConfig(
            max_new_tokens=budget,
            do_sample=False,
            num_beams=1,
            pad_token_id=learner.pad_id,
            eos_token_id=eos,
            return_dict_in_generate=True,
            output_logits=True,
        )
        answers: list[str] = []
        conf: list[float] = []
        size = learner.config.eval_batch_size
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            ids, mask = _left_pad([r.input_ids[: r.prompt_len] for r in chunk], learner.pad_id)
            out = learner.model.backbone.generate(
                input_ids=ids.to(learner.device),
                attention_mask=mask.to(learner.device),
                generation_config=gen_config,
            )
            new = out.sequences[:, ids.shape[1] :].cpu()
            logp = torch.log_softmax(torch.stack(out.logits, dim=1).float().cpu(), dim=-1)
            picked = logp.gather(-1, new.unsqueeze(-1)).squeeze(-1)
            for i in range(len(chunk)):
                seq = new[i].tolist()
                n = seq.index(eos) + 1 if eos in seq else len(seq)
                answers.append(tok.decode(seq[:n], skip_special_tokens=True).strip())
                conf.append(float(picked[i, :n].mean()) if n else float("-inf"))
        return answers, np.array(conf)

    def score(self, learner: Any, t: int, split: str, preds: Any) -> float:
        rows = learner.rows(t, split)
        hits = [normalize(p) == normalize(r.answer) for p, r in zip(preds, rows, strict=True)]
        return float(np.mean(hits)) if hits else 0.0

    def details(self, learner: Any, t: int, split: str, preds: Any) -> dict[str, float]:
        """Exact match per gold answer, for tasks with at most 100 label strings."""
        labels = learner.stream.tasks[t].labels
        if not labels or len(labels) > 100:
            return {}
        rows = learner.rows(t, split)
        out = {}
        for label in labels:
            hits = [
                normalize(p) == normalize(r.answer)
                for p, r in zip(preds, rows, strict=True)
                if r.answer == label
            ]
            if hits:
                out[label] = float(np.mean(hits))
        return out


def _budget(learner: Any) -> int | None:
    """Longest answer of the stream in tokens (+1 for eos): greedy generation's budget."""
    lengths = [
        len(r.input_ids) - r.prompt_len
        for k in range(len(learner.stream))
        for split in ("train", "val", "test")
        for r in learner.rows(k, split)
    ]
    return 1 + max(lengths) if lengths else None


__all__ = [
    "ANSWER_KEYS",
    "DECODINGS",
    "IGNORE",
    "INPUT_KEYS",
    "INSTRUCTIONS",
    "TEMPLATE",
    "GenerationFamily",
    "LMModel",
    "LMRow",
    "_last_logit_only",
    "_left_pad",
    "answer_ids",
    "candidate_logprobs",
    "collate_lm",
    "default_instruction",
    "encode_instructions",
    "eos_id",
    "instruction_example",
    "is_prompt_learning",
    "lm_loss",
    "normalize",
    "token_logprobs",
]
