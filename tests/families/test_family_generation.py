"""Generative tasks on causal LMs: instruction streams, prompt masking, exact match,
label-restricted decoding (cached = uncached), batched generation with left padding, and
end-to-end runs on tiny Llama- and GPT-2-style models."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import petl
from petl.errors import ConfigError, DataError
from petl.families.generation import (
    IGNORE,
    GenerationFamily,
    LMModel,
    LMRow,
    _left_pad,
    answer_ids,
    candidate_logprobs,
    collate_lm,
    default_instruction,
    encode_instructions,
    lm_loss,
    normalize,
    token_logprobs,
)
from tests.extras import need_path
from tests.families.family_data import causal_lm, gen_stream, word_tokenizer

CL_BENCHMARK = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cl_benchmark"
)


def ids_of(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def test_instruction_records_and_dir_layout(tmp_path) -> None:
    task = tmp_path / "agnews"
    task.mkdir()
    (task / "labels.json").write_text(json.dumps(["World", "Sports"]))
    rows = [{"sentence": f"text {i}", "label": ["World", "Sports"][i % 2]} for i in range(10)]
    (task / "train.json").write_text(json.dumps(rows))
    stream = petl.Stream.from_dir(str(tmp_path), family="generation", val_fraction=0.0)
    (t,) = stream.tasks
    assert stream.family == "generation" and stream.describe()["family"] == "generation"
    assert t.instruction == "What is the topic of the news article? Options: World, Sports."
    assert t.labels == ["World", "Sports"] and len(t.train) + len(t.test) == 10
    custom = petl.Stream.from_dir(
        str(tmp_path), family="generation", instructions={"agnews": "Topic?"}
    )
    assert custom.tasks[0].instruction == "Topic?"
    # records may carry input/output and their own instruction
    s = petl.Stream.from_records(
        {"x": {"train": [{"instruction": "Say hi.", "input": "a", "output": "hi"}] * 4}},
        family="generation",
    )
    assert s.tasks[0].train[0].text == "Say hi.\na" and s.tasks[0].train[0].label == "hi"
    with pytest.raises(DataError, match="needs an input"):
        petl.Stream.from_records({"x": {"train": [{"output": "hi"}]}}, family="generation")


def test_cl_benchmark_as_instruction_stream() -> None:
    need_path(CL_BENCHMARK, "the shared data folder ../shared/data/cl_benchmark")
    stream = petl.Stream.from_dir(
        CL_BENCHMARK, tasks=["sst-2", "agnews"], family="generation", max_train=8, max_test=4
    )
    assert stream.tasks[0].instruction == default_instruction("sst-2", ["Good", "Bad"])
    assert "Options: World, Sports, Business, Science or Technology." in stream.tasks[1].instruction
    assert stream.tasks[1].test[0].label in stream.tasks[1].labels


def test_prompt_tokens_are_masked() -> None:
    tok = word_tokenizer()
    task = petl.Task("topic", ["business", "sports"], train=[], test=[], instruction="what topic ?")
    examples = [
        petl.Example("ball goal", "sports"),
        petl.Example("it was very the bank", "business"),
    ]
    rows = encode_instructions(task, 0, examples, tok, max_length=32)
    prompt = ids_of(tok, "what topic ?\nball goal\nAnswer:")
    assert rows[0].input_ids == prompt + ids_of(tok, "sports") + [tok.eos_token_id]
    assert rows[0].labels == [IGNORE] * len(prompt) + ids_of(tok, "sports") + [tok.eos_token_id]
    assert rows[0].prompt_len == len(prompt) and rows[0].label == 1 and rows[0].answer == "sports"

    batch = collate_lm(rows, pad_id=tok.pad_token_id)
    n0 = len(rows[0].input_ids)
    assert batch["labels"][0, n0:].tolist() == [IGNORE] * (batch["labels"].shape[1] - n0)
    assert batch["attention_mask"][0].sum() == n0
    # the loss is next-token cross-entropy over the answer tokens only (2 per row here)
    logits = torch.randn(2, batch["input_ids"].shape[1], len(tok))
    by_hand = []
    for i, row in enumerate(rows):
        for pos in range(row.prompt_len, len(row.input_ids)):
            by_hand.append(
                F.cross_entropy(logits[i, pos - 1][None], torch.tensor([row.input_ids[pos]]))
            )
    assert lm_loss(logits, batch["labels"]) == pytest.approx(
        torch.stack(by_hand).mean().item(), abs=1e-5
    )

    # an input too long is cut; the tail of the template and the answer stay whole
    (cut,) = encode_instructions(task, 0, [examples[1]], tok, max_length=8)
    assert len(cut.input_ids) == 8
    assert cut.input_ids[-3:] == [*ids_of(tok, "Answer: business"), tok.eos_token_id]
    assert cut.input_ids[:3] == ids_of(tok, "what topic ?")
    with pytest.raises(DataError, match="max_length"):
        encode_instructions(task, 0, [examples[1]], tok, max_length=3)


def test_exact_match_hand_computed() -> None:
    assert normalize("  Science  or\nTechnology ") == "science or technology"
    rows = [LMRow([], [], 0, 0, 0, a) for a in ("World", "Sports", "Science or Technology")]
    learner = SimpleNamespace(
        rows=lambda t, split: rows,
        stream=SimpleNamespace(
            tasks=[SimpleNamespace(labels=["World", "Sports", "Science or Technology"])]
        ),
    )
    family = GenerationFamily()
    preds = [" world ", "Sports.", "science   or technology"]  # "Sports." is not an exact match
    assert family.score(learner, 0, "test", preds) == pytest.approx(2 / 3)
    assert family.details(learner, 0, "test", preds) == {
        "World": 1.0,
        "Sports": 0.0,
        "Science or Technology": 1.0,
    }
    with pytest.raises(ConfigError, match="decoding"):
        GenerationFamily(decoding="beam")


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_cached_candidate_scores_match_full_sequences(kind: str) -> None:
    tok = word_tokenizer()
    model = LMModel(causal_lm(kind)).eval()
    prompts = [
        ids_of(tok, "what topic ? ball goal Answer:"),
        ids_of(tok, "what mood ? it was very good so Answer:"),
    ]
    cands = [answer_ids(tok, w) for w in ("sports", "very good", "business")]
    sums, counts = candidate_logprobs(model, prompts, cands, tok.pad_token_id, torch.device("cpu"))
    full = [
        LMRow([*p, *c], [IGNORE] * len(p) + c, len(p), 0, -1, "") for p in prompts for c in cands
    ]
    batch = collate_lm(full, tok.pad_token_id)
    with torch.no_grad():
        expect, n = token_logprobs(model(batch), batch["labels"])
    assert torch.allclose(sums, expect.view(2, 3), atol=1e-4)
    assert counts.tolist() == n.view(2, 3).tolist() == [[2, 3, 2]] * 2


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_batched_greedy_generation_matches_one_by_one(kind: str) -> None:
    tok = word_tokenizer()
    model = causal_lm(kind, seed=3).eval()
    prompts = [
        ids_of(tok, "what topic ? ball Answer:"),
        ids_of(tok, "what mood ? it was very good so nice Answer:"),
    ]
    kw = {
        "max_new_tokens": 4,
        "do_sample": False,
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": -1,
    }
    ids, mask = _left_pad(prompts, tok.pad_token_id)
    together = model.generate(input_ids=ids, attention_mask=mask, **kw)[:, ids.shape[1] :]
    for i, p in enumerate(prompts):
        alone = model.generate(
            input_ids=torch.tensor([p]),
            attention_mask=torch.ones(1, len(p), dtype=torch.long),
            **kw,
        )
        assert together[i].tolist() == alone[0, len(p) :].tolist()


def _learner(
    kind: str = "llama",
    decoding: str = "greedy",
    strategies=(),
    method=None,
    epochs: int = 8,
    lr: float = 3e-3,
) -> petl.Learner:
    return petl.Learner(
        causal_lm(kind),
        word_tokenizer(),
        method=method,
        strategies=list(strategies),
        config=petl.TrainConfig(
            epochs=epochs,
            batch_size=8,
            lr=lr,
            warmup_ratio=0.0,
            progress=False,
            seed=0,
            max_length=32,
        ),
        family=GenerationFamily(decoding=decoding),
    )


# The tiny GPT-2 learns the mood task more slowly than the tiny Llama: more epochs.
@pytest.mark.slow  # trains to a target
@pytest.mark.parametrize(
    ("kind", "decoding", "epochs", "lr"),
    [("llama", "greedy", 8, 3e-3), ("gpt2", "labels", 30, 1e-2)],
)
def test_causal_lm_learns_each_task(kind: str, decoding: str, epochs: int, lr: float) -> None:
    results = _learner(kind, decoding, epochs=epochs, lr=lr).fit(gen_stream())
    R = results.accuracy
    assert results.metric == ["exact_match", "exact_match"]
    assert R[0, 0] >= 0.9 and R[1, 1] >= 0.9
    assert results.info["family"] == "generation"
    assert set(results.per_class["mood"]) == {"negative", "positive"}
    assert "topic (exact_match)" in results.table()


def test_family_must_match_the_stream() -> None:
    learner = petl.Learner(
        causal_lm(),
        word_tokenizer(),
        method=None,
        family="tokens",
        config=petl.TrainConfig(progress=False),
    )
    with pytest.raises(ConfigError, match="'generation' but family='tokens'"):
        learner.fit(gen_stream(n_train=4, n_test=2))


@pytest.mark.slow  # three runs
def test_generative_run_resumes_to_the_same_matrix(tmp_path) -> None:
    from petl.strategies.base import Strategy

    class Kill(Strategy):
        name = "kill"

        def __init__(self, step: int | None) -> None:
            self._step = step

        def after_step(self, learner) -> None:
            if learner.global_step == self._step:
                raise RuntimeError("killed")

    def run(kill: int | None, folder: str) -> petl.Results:
        learner = _learner(
            "gpt2",
            "labels",
            strategies=[petl.Replay(memory=8), Kill(kill)],
            method="lora",
            epochs=2,
            lr=1e-2,
        )
        learner.config.checkpoint_every = 2
        return learner.fit(gen_stream(n_train=16, n_test=6), checkpoint_dir=folder)

    whole = run(None, str(tmp_path / "a"))
    with pytest.raises(RuntimeError, match="killed"):
        run(7, str(tmp_path / "b"))  # task 1, mid-epoch
    resumed = run(None, str(tmp_path / "b"))
    assert resumed.accuracy.tolist() == whole.accuracy.tolist()
