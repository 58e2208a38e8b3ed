"""AdaLoRA inside petl's loop: the rank budget update runs after every optimizer step."""

from __future__ import annotations

import petl
from tests.cl.cl_data import make_bert


def test_adalora_budget_updates_inside_the_loop(tok, records) -> None:
    stream = petl.Stream.from_records(records, scenario="class")
    learner = petl.Learner(
        make_bert(),
        tok,
        method="adalora",
        method_options={"init_r": 4, "target_r": 2, "tinit": 1, "tfinal": 1, "deltaT": 1},
        config=petl.TrainConfig(epochs=2, batch_size=8, progress=False),
    )
    results = learner.fit(stream)
    assert results.accuracy.shape == (2, 2)
    adalora = learner.model.backbone.base_model
    # update_and_allocate masks ranks once the schedule passes tinit: some E entries are zero.
    ranks = [m.lora_E["default"] for m in adalora.model.modules() if hasattr(m, "lora_E")]
    assert ranks and any((e == 0).any() for e in ranks)
