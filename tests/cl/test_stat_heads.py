"""Statistic-head strategies (NCM, FeCAM, RanPAC) and APER on a tiny seeded BERT.

The constructed stream gives every class its own tokens, so the mean-pooled features of a
frozen random BERT separate the classes: a head fitted from statistics should solve the
class-incremental stream where sequential training (Naive) forgets."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import petl
from petl.features import features_for
from petl.strategies.base import Strategy
from petl.strategies.stat_heads import StatisticHead
from tests.cl.cl_data import make_bert, split_records

GROUPS = [[0, 1], [2, 3], [4, 5]]
HEADS = {
    "ncm": lambda: petl.NCM(),
    "fecam": lambda: petl.FeCAM(),
    "fecam_class": lambda: petl.FeCAM(covariance="class"),
    "ranpac": lambda: petl.RanPAC(dims=256),
}
CONFIG = {"epochs": 3, "batch_size": 8, "lr": 3e-2, "progress": False, "seed": 3}


def stream(scenario: str = "class") -> petl.Stream:
    records = split_records(GROUPS, n_train=30, n_test=12, seed=4)
    return petl.Stream.from_records(records, scenario=scenario, val_fraction=0)


def learner(tok: Any, strategies: list[Any], **config: Any) -> petl.Learner:
    return petl.Learner(
        make_bert(seed=3),
        tok,
        method="lora",
        method_options={"r": 2},
        strategies=strategies,
        config=petl.TrainConfig(**{**CONFIG, "pooling": "mean", **config}),
    )


@pytest.mark.parametrize("kind", list(HEADS))
def test_incremental_statistics_equal_the_one_shot_fit(tok: Any, kind: str) -> None:
    head = HEADS[kind]()
    lrn = learner(tok, [head])
    lrn.fit(stream())
    # The one-shot fit: every task's rows at once, through the same (frozen) backbone.
    once = HEADS[kind]()
    once.setup(lrn)
    xs, keys, held = [], [], []
    for t in range(len(lrn.stream)):
        rows = lrn.rows(t, "train")
        x = features_for(lrn, rows, layers=once.layers).double()
        if x.dim() == 3:  # [N, layers, H]: each layer unit-norm, then the concatenation
            x = torch.nn.functional.normalize(x, dim=-1).flatten(1)
        xs.append(torch.nn.functional.normalize(x, dim=-1))
        keys.append(torch.tensor([r.label for r in rows]))
        held.append(once.held_out(lrn, t, len(rows)))
    once.add_features(torch.cat(xs), torch.cat(keys), torch.cat(held))
    once.solve()
    got, want = head.state_dict(), once.state_dict()
    assert sorted(got) == sorted(want)
    for name in want:
        if isinstance(want[name], torch.Tensor):  # float64 sums in another order
            torch.testing.assert_close(got[name], want[name], rtol=1e-9, atol=1e-9)
    x = torch.cat(xs)
    torch.testing.assert_close(head._scores(x), once._scores(x), rtol=1e-6, atol=1e-6)
    if kind == "ranpac":
        assert head.ridge == once.ridge


def test_statistic_heads_skip_gradient_training(tok: Any) -> None:
    lrn, data = learner(tok, [petl.NCM()]), stream()
    lrn.setup(data)
    before = {n: p.detach().clone() for n, p in lrn.model.named_parameters()}
    lrn.fit(data)
    assert lrn.global_step == 0
    for name, p in lrn.model.named_parameters():
        assert torch.equal(p, before[name]), name  # untouched: bit-identity is the property


def final_accuracy(res: petl.Results) -> float:
    return float(res.accuracy[-1].mean())


@pytest.mark.slow  # trains Naive and each head
@pytest.mark.parametrize("kind", [*HEADS, "aper"])
def test_each_strategy_beats_naive_class_incremental(tok: Any, kind: str) -> None:
    naive = final_accuracy(learner(tok, [petl.Naive()]).fit(stream()))
    strategy = petl.APER() if kind == "aper" else HEADS[kind]()  # APER at its defaults
    got = final_accuracy(learner(tok, [strategy]).fit(stream()))
    assert naive < 0.6, naive  # sequential training forgets the first tasks
    assert got > 0.9, got
    assert got > naive + 0.3


@pytest.mark.parametrize("scenario", ["task", "domain"])
def test_task_id_restricts_candidates(tok: Any, scenario: str) -> None:
    if scenario == "domain":
        records = split_records([[0, 1], [0, 1]], n_train=30, n_test=12, seed=4)
        data = petl.Stream.from_records(records, scenario="domain", val_fraction=0)
    else:
        data = stream("task")
    lrn = learner(tok, [petl.NCM()])
    res = lrn.fit(data)
    for t, task in enumerate(data.tasks):
        preds = lrn.predictions(t)
        assert set(preds.tolist()) <= set(range(len(task.labels)))  # the task's own labels
    assert final_accuracy(res) > 0.9


class KillAfterTask(Strategy):
    """Raises in after_task of a given task (after the heads updated, before the
    checkpoint), like a kill there. Private settings: armed and disarmed runs share a
    fingerprint."""

    name = "kill"

    def __init__(self, task: int | None = None, step: int | None = None) -> None:
        self._task, self._step = task, step

    def after_step(self, learner: Any) -> None:
        if learner.global_step == self._step:
            raise RuntimeError("killed")

    def after_task(self, learner: Any, t: int) -> None:
        if t == self._task:
            raise RuntimeError("killed")


RESUMABLE = {
    "ncm": lambda: petl.NCM(),
    "ranpac": lambda: petl.RanPAC(dims=128),
    "aper": lambda: petl.APER(head="fecam"),
}


@pytest.mark.parametrize(
    ("kind", "kill"),
    [("ncm", {"task": 1}), ("ranpac", {"task": 2}), ("aper", {"step": 5}), ("aper", {"task": 1})],
)
def test_resume_after_kill_equals_uninterrupted(
    tok: Any, tmp_path: Any, kind: str, kill: dict[str, int]
) -> None:
    ref_head = RESUMABLE[kind]()
    ref = learner(tok, [ref_head, KillAfterTask()], checkpoint_every=2).fit(stream())
    ckpt = str(tmp_path / "run")
    with pytest.raises(RuntimeError, match="killed"):
        armed = learner(tok, [RESUMABLE[kind](), KillAfterTask(**kill)], checkpoint_every=2)
        armed.fit(stream(), checkpoint_dir=ckpt)
    head = RESUMABLE[kind]()
    got = learner(tok, [head, KillAfterTask()], checkpoint_every=2).fit(
        stream(), checkpoint_dir=ckpt
    )
    # Same computation on the same shapes in both runs: bit-identity is the property.
    assert got.accuracy.tolist() == ref.accuracy.tolist()
    want_state, got_state = ref_head.state_dict(), head.state_dict()
    assert want_state["seen"] == got_state["seen"]
    for name, value in want_state.items():
        if isinstance(value, torch.Tensor):
            # resumed == uninterrupted: the same sums over the same rows, bit for bit
            assert torch.equal(got_state[name], value), name


def test_aper_trains_only_its_adaptation_tasks(tok: Any) -> None:
    lrn = learner(tok, [petl.APER(head="ncm", adapt_tasks=1)])
    lrn.fit(stream())
    steps_per_task = 3 * 4  # 3 epochs x ceil(30 / 8) batches
    assert lrn.global_step == steps_per_task
    assert [lrn.trains(t) for t in range(3)] == [True, False, False]


def test_aper_pretrained_features_need_switchable_adapters(tok: Any) -> None:
    lrn = petl.Learner(
        make_bert(seed=3),
        tok,
        method=None,
        strategies=[petl.APER()],
        config=petl.TrainConfig(**CONFIG),
    )
    with pytest.raises(petl.ConfigError, match="pretrained_features=False"):
        lrn.fit(stream())


def test_bad_options_are_clear_errors() -> None:
    with pytest.raises(petl.ConfigError, match="covariance"):
        petl.FeCAM(covariance="diag")
    with pytest.raises(petl.ConfigError, match="dims"):
        petl.RanPAC(dims=0)
    with pytest.raises(petl.ConfigError, match="head must be one of"):
        petl.APER(head="lda")
    with pytest.raises(petl.ConfigError, match="head_options"):
        petl.APER(head="ncm", head_options={"dims": 3})


def test_state_size_does_not_grow_with_examples(tok: Any) -> None:
    head = petl.RanPAC(dims=64)
    lrn = learner(tok, [head])
    lrn.fit(stream())
    assert isinstance(head, StatisticHead)
    classes = sum(len(t.labels) for t in lrn.stream.tasks)
    assert head.state_floats() == 2 * (64 * 64 + 64 * classes) + classes + 1


@pytest.mark.parametrize("make", [petl.FeCAM, petl.RanPAC])
def test_statistics_refuse_features_of_another_width(tok: Any, make: Any) -> None:
    head = make(layers="all")
    lrn = learner(tok, [head])
    lrn.fit(stream())
    other = make(layers="last")  # e.g. a state saved by a run that read every layer
    other.setup(lrn)
    other.load_state_dict(head.state_dict())
    with pytest.raises(petl.ConfigError, match="64-wide features, but these features are 32"):
        other.predict(lrn, 0, "test")


def _source_features(lrn: petl.Learner, pretrained: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Every task's training features of one source (adapted or pretrained), normalised
    as a head normalises them, and their labels."""
    xs, ys = [], []
    for t in range(len(lrn.stream)):
        rows = lrn.rows(t, "train")
        x = features_for(lrn, rows, pretrained=pretrained, layers="all").double()
        x = torch.nn.functional.normalize(x, dim=-1).flatten(1)
        xs.append(torch.nn.functional.normalize(x, dim=-1))
        ys.append(torch.tensor([r.label for r in rows]))
    return torch.cat(xs), torch.cat(ys)


def test_aper_fecam_scores_each_source_with_its_own_covariance(tok: Any) -> None:
    aper = petl.APER()  # FeCAM head on adapted + pretrained features, per-source covariance
    lrn = learner(tok, [aper])
    lrn.fit(stream())
    head = aper._head
    assert head._stats["moments"].shape == (2, 32 * 2, 32 * 2)  # 2 sources x 2 layers x 32
    parts = []
    for pretrained in (False, True):  # block-diagonal LDA = one LDA per source, summed
        one = petl.FeCAM()
        one.setup(lrn)
        x, y = _source_features(lrn, pretrained)
        one.add_features(x, y, torch.zeros(len(y), dtype=torch.bool))
        one.solve()
        parts.append((one, x))
    both = torch.nn.functional.normalize(torch.cat([x for _, x in parts], 1), dim=-1)
    want = sum(one._scores(x) for one, x in parts)
    torch.testing.assert_close(head._scores(both), want, rtol=1e-6, atol=1e-6)


def test_aper_fecam_across_sources_keeps_one_covariance_and_old_states_load(tok: Any) -> None:
    full = petl.APER(head_options={"across_sources": True})
    lrn = learner(tok, [full])
    lrn.fit(stream())
    assert full._head._stats["moments"].shape == (128, 128)
    # a state saved with one covariance over both sources (petl before per-source
    # covariances) loads into a default APER as it was fitted and predicts the same
    default = petl.APER()
    default.setup(lrn)
    default.load_state_dict(full.state_dict())
    assert default._head.across_sources
    for t in range(len(lrn.stream)):
        assert (default.predict(lrn, t, "test") == full.predict(lrn, t, "test")).all()


def test_aper_saved_and_loaded_predicts_the_same(tok: Any, tmp_path: Any) -> None:
    records = split_records(GROUPS, n_train=30, n_test=12, seed=4)
    texts = [r["text"] for task in records.values() for r in task["test"]]
    lrn = learner(tok, [petl.APER()])
    lrn.fit(petl.Stream.from_records(records, scenario="class", val_fraction=0))
    lrn.save(str(tmp_path))
    loaded = petl.Learner.load(str(tmp_path))
    head = loaded.strategies[0]._head
    assert head._stats["moments"].shape == (2, 64, 64) and not head.across_sources
    assert loaded.predict(texts) == lrn.predict(texts)
