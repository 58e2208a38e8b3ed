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
per answer token, eos included: the adapter with the lowest answer perplexity wins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from petl.errors import ConfigError, DataError, IncompatibleModelError, unknown_choice
from petl.families.tokens import collate_tokens, masked_cross_entropy, sharded_predict
from petl.stream import PAIR_KEYS, TEXT_KEYS, Example

if TYPE_CHECKING:
    from petl.stream import Task

IGNORE = -100
DECODINGS = ("greedy", "labels")
TEMPLATE = "{instruction}\n{input}\nAnswer:"
INPUT_KEYS = ("input", *TEXT_KEYS)
ANSWER_KEYS = ("output", "answer", "label")

# Instructions for the ../shared/data/cl_benchmark tasks (after O-LoRA's); the options are
# appended by `default_instruction`.
INSTRUCTIONS = {
    "agnews": "What is the topic of the news article?",
    "amazon": "What is the sentiment of the review?",
    "yelp": "What is the sentiment of the review?",
    "dbpedia": "What is the category of the article?",
    "sst-2": "What is the sentiment of the sentence?",
    "mnli": "What is the logical relationship between sentence 1 and sentence 2?",
    "rte": "What is the logical relationship between sentence 1 and sentence 2?",
    "qqp": "Do the first and second sentence ask the same question?",
    "wic": "Is the word used with the same meaning in both sentences?",
}


def default_instruction(task_name: str, labels: Sequence[str]) -> str:
    """The built-in instruction of a cl_benchmark task (a generic one for others), with
    its answer options: "What is the topic of the news article? Options: World, ..."."""
    head = INSTRUCTIONS.get(task_name, "Classify the text.")
    return f"{head} Options: {', '.join(labels)}." if labels else head


def instruction_example(record: Mapping[str, Any] | Example, where: str) -> Example:
    """An instruction record as an `Example` (text = input, label = answer). Keys: an input
    ('input', 'text', 'sentence', ...), an answer ('output', 'answer' or 'label'), an
    optional second text, and an optional per-record 'instruction' (put before the input)."""
    if isinstance(record, Example):
        return record
    key = next((k for k in INPUT_KEYS if k in record), None)
    answer_key = next((k for k in ANSWER_KEYS if k in record and record[k] is not None), None)
    if key is None or answer_key is None:
        raise DataError(
            f"{where}: an instruction record needs an input (one of {INPUT_KEYS}) and an answer "
            f"(one of {ANSWER_KEYS}); keys: {sorted(record)}."
        )
    text = str(record[key])
    if record.get("instruction"):
        text = f"{record['instruction']}\n{text}"
    pair_key = next((k for k in PAIR_KEYS if k in record), None)
    return Example(text, str(record[answer_key]), str(record[pair_key]) if pair_key else None)


def normalize(text: str) -> str:
    """Exact-match normalisation: whitespace collapsed and stripped, lower case."""
    return " ".join(text.split()).lower()


@dataclass
class LMRow:
    """prompt + " " + answer + eos as token ids; labels are -100 on the prompt. `label` is
    the answer's index in the task's labels (-1 if absent), which class-balanced replay
    groups by."""

    input_ids: list[int]
    labels: list[int]
    prompt_len: int
    task: int
    label: int
    answer: str
    token_type_ids: None = None


def eos_id(tokenizer: Any) -> int:
    if tokenizer.eos_token_id is None:
        raise ConfigError(
            "Generative tasks need a tokenizer with an eos token (tokenizer.eos_token)."
        )
    return int(tokenizer.eos_token_id)


def answer_ids(tokenizer: Any, answer: str) -> list[int]:
    """Token ids of an answer as it follows the prompt: " " + answer, then eos."""
    return [*tokenizer(" " + answer, add_special_tokens=False)["input_ids"], eos_id(tokenizer)]


def encode_instructions(
    task: Task,
    t: int,
    examples: Sequence[Example],
    tokenizer: Any,
    max_length: int,
    template: str = TEMPLATE,
) -> list[LMRow]:
    """Rows of prompt + answer; an input too long for `max_length` is cut at its end (the
    text after "{input}" in the template is kept)."""
    if not examples:
        return []
    tail_ids = tokenizer(template.split("{input}")[-1], add_special_tokens=False)["input_ids"]
    index = {label: i for i, label in enumerate(task.labels)}
    rows = []
    for e in examples:
        text = e.text if e.text_pair is None else f"{e.text}\n{e.text_pair}"
        prompt = template.format(instruction=task.instruction, input=text).lstrip("\n")
        ids = tokenizer(prompt)["input_ids"]
        answer = answer_ids(tokenizer, e.label)
        budget = max_length - len(answer)
        if len(ids) > budget:
            if budget - len(tail_ids) < 1:
                raise DataError(
                    f"max_length={max_length} leaves no room for the prompt of task {task.name!r} "
                    f"(answer {len(answer)} tokens): raise TrainConfig.max_length."
                )
            ids = ids[: budget - len(tail_ids)] + tail_ids
        rows.append(
            LMRow(
                ids + answer,
                [IGNORE] * len(ids) + answer,
                len(ids),
                t,
                index.get(e.label, -1),
                e.label,
            )
        )
    return rows


def collate_lm(rows: Sequence[LMRow], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels -100 on prompt and padding."""
    return collate_tokens(rows, pad_id)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy over positions whose target is not -100 (the answer
    tokens): their mean, or ("sum") the sum over sequences of each sequence's mean."""
    return masked_cross_entropy(logits[:, :-1], labels[:, 1:], reduction)


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence sum of log p(target) over positions whose target is not -100, and the
    number of such positions."""
    targets = labels[:, 1:]
    mask = targets != IGNORE
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1), mask.sum(-1)


class LMModel(nn.Module):
    """A (PEFT-adapted) causal LM; `forward(batch)` gives next-token logits aligned with
    `batch["input_ids"]` (virtual tokens of prompt-learning methods cut off)."""

    heads = None

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["input_ids"]
        logits = self.backbone(input_ids=ids, attention_mask=batch["attention_mask"]).logits
        return logits[:, -ids.shape[1] :]


def is_prompt_learning(backbone: nn.Module) -> bool:
    config = getattr(backbone, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def _last_logit_only(model: LMModel) -> dict[str, int]:
    """`logits_to_keep=1` where the model takes it: the prompt pass needs only the last
    position's logits (the LM head over the vocabulary is a fifth of a small LM's compute)."""
    import inspect

    backbone: Any = model.backbone
    base = backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone
    return (
        {"logits_to_keep": 1}
        if "logits_to_keep" in inspect.signature(base.forward).parameters
        else {}
    )


def _left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s) :] = torch.tensor(list(s))
        mask[i, width - len(s) :] = 1
    return ids, mask


@torch.no_grad()
def candidate_logprobs(
    model: LMModel,
    prompts: Sequence[Sequence[int]],
    candidates: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(candidate | prompt) for every prompt x candidate pair, summed over the
    candidate's tokens: (len(prompts), len(candidates)) sums and token counts.

    The prompts run once (left-padded, explicit position ids) and their key/value cache is
    repeated for the candidates; prompt-learning methods, whose virtual tokens live in the
    cache, take the plain path (every pair as one sequence)."""
    K = len(candidates)
    counts = torch.tensor([len(c) for c in candidates]).repeat(len(prompts), 1)
    if is_prompt_learning(model.backbone):
        rows = [
            LMRow([*p, *c], [IGNORE] * len(p) + list(c), len(p), 0, -1, "")
            for p in prompts
            for c in candidates
        ]
        batch = {k: v.to(device) for k, v in collate_lm(rows, pad_id).items()}
        sums, _ = token_logprobs(model(batch), batch["labels"])
        return sums.view(len(prompts), K).cpu(), counts
    ids, mask = _left_pad(prompts, pad_id)
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model.backbone(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        **_last_logit_only(model),
    )
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (B, V)
    # transformers 5 names the cache `cache`; 4.x `past_key_values`.
    cache = out["cache"] if "cache" in out else out["past_key_values"]
    cache_arg = "cache" if "cache" in out else "past_key_values"
    cache.batch_repeat_interleave(K)
    width = max(len(c) for c in candidates)
    cand = torch.full((K, width), pad_id, dtype=torch.long)
    cand_mask = torch.zeros((K, width), dtype=torch.long)
    for k, c in enumerate(candidates):
        cand[k, : len(c)] = torch.tensor(list(c))
        cand_mask[k, : len(c)] = 1
    B = len(prompts)
    cand, cand_mask = cand.repeat(B, 1).to(device), cand_mask.repeat(B, 1).to(device)
    full_mask = torch.cat([mask.repeat_interleave(K, 0), cand_mask], dim=1)
    start = mask.sum(-1).repeat_interleave(K)[:, None]
    cand_pos = start + torch.arange(width, device=device)[None]
    out = model.backbone(
        input_ids=cand,
        attention_mask=full_mask,
        position_ids=cand_pos,
        use_cache=True,
        **{cache_arg: cache},
    )
    logp = torch.log_softmax(out.logits.float(), dim=-1)  # (B*K, width, V)
    total = first.repeat_interleave(K, 0).gather(-1, cand[:, :1]).squeeze(-1)
    if width > 1:
        rest = logp[:, :-1].gather(-1, cand[:, 1:].unsqueeze(-1)).squeeze(-1)
        total = total + (rest * cand_mask[:, 1:]).sum(-1)
    return total.view(B, K).cpu(), counts


class GenerationFamily:
    """Instruction tasks on a causal LM; exact match.

    Args:
        decoding: "greedy" (generate) or "labels" (pick the most likely label string).
        template: Prompt template with {instruction} and {input}.
        max_new_tokens: Generation budget; default: the longest answer of the stream + 1.
    """

    name = "generation"
    auto_class = "AutoModelForCausalLM"

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

    def metric(self, task: Task) -> str:
        return "exact_match"

    def build_model(self, learner: Any, backbone: nn.Module) -> nn.Module:
        config = getattr(backbone, "config", None)
        if not hasattr(backbone, "generate") or getattr(config, "is_encoder_decoder", False):
            raise IncompatibleModelError(
                f"Generative streams need a causal LM (AutoModelForCausalLM), got "
                f"{type(backbone).__name__}."
            )
        learner.per_task_heads = False
        return LMModel(learner.apply_method(backbone))

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
        budget = self.max_new_tokens or 1 + max(
            len(r.input_ids) - r.prompt_len
            for k in range(len(learner.stream))
            for split in ("train", "val", "test")
            for r in learner.rows(k, split)
        )
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
