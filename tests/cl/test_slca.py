"""SLCA (slow learner with classifier alignment): beats sequential fine-tuning on a
constructed class-incremental stream, keeps exact class statistics, builds the slow
parameter group, works in every scenario and resumes after a kill like an uninterrupted
run."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import petl
from petl.strategies.slca import class_sums
from petl.training.param_groups import param_groups
from tests.cl.bag_model import BagClassifier
from tests.cl.cl_data import split_records
from tests.cl.test_resume import Kill, Killed, assert_same, weights

GROUPS = [[0, 1], [2, 3], [4, 5], [6, 7]]
CONFIG = {"epochs": 3, "batch_size": 8, "lr": 3e-2, "progress": False, "seed": 0}


def stream(scenario: str = "class", groups: list[list[int]] = GROUPS) -> petl.Stream:
    records = split_records(groups, n_train=32, n_test=16, seed=1)
    return petl.Stream.from_records(records, scenario=scenario, val_fraction=0)


def learner(tok: Any, strategies: list[Any], **config: Any) -> petl.Learner:
    return petl.Learner(
        BagClassifier(seed=0),
        tok,
        method="lora",
        method_options={"r": 4, "target_modules": ["proj"]},
        strategies=strategies,
        config=petl.TrainConfig(**{**CONFIG, **config}),
    )


def final_accuracy(tok: Any, strategies: list[Any], scenario: str = "class") -> float:
    return float(learner(tok, strategies).fit(stream(scenario)).accuracy[-1].mean())


@pytest.mark.slow  # three 4-task runs: about 15 s on an idle core
def test_slca_beats_naive_and_alignment_is_what_keeps_old_classes(tok: Any) -> None:
    naive = final_accuracy(tok, [petl.Naive()])
    slca = final_accuracy(tok, [petl.SLCA()])
    unaligned = final_accuracy(tok, [petl.SLCA(ca_epochs=0)])
    # measured: naive 0.28 (only the last task right), SLCA 0.98, without alignment 0.56
    assert naive < 0.4
    assert slca > 0.85
    assert slca > unaligned + 0.2


def test_backbone_trains_at_lr_scale_of_the_heads(tok: Any) -> None:
    lrn = learner(tok, [petl.SLCA(lr_scale=0.05)])
    lrn.setup(stream())
    lrn.model.heads.activate(0)
    groups = param_groups(lrn, 0.2)
    assert [g["lr"] for g in groups] == pytest.approx([0.2 * 0.05, 0.2])
    names = {id(p): n for n, p in lrn.model.named_parameters()}
    assert all(names[id(p)].startswith("backbone.") for p in groups[0]["params"])
    assert all(names[id(p)].startswith("heads.") for p in groups[1]["params"])
    plain = learner(tok, [petl.Naive()])
    plain.setup(stream())
    assert all(isinstance(p, torch.nn.Parameter) for p in param_groups(plain, 0.2))  # one group


def test_statistics_equal_a_one_shot_fit_across_tasks(tok: Any) -> None:
    # domain-incremental: both tasks have classes L0 and L1, so task 1's sums add to task 0's
    s = petl.SLCA()
    lrn = learner(tok, [s])
    lrn.setup(stream("domain", [[0, 1], [0, 1]]))
    for t in range(2):
        count, total, outer = class_sums(lrn, t, 2)
        s._count += count
        s._sum += total
        s._outer += outer
    rows = lrn.rows(0) + lrn.rows(1)
    feats = torch.cat([lrn.model.features(b).detach().double() for b in lrn.batches(rows)])
    labels = torch.tensor([r.label for r in rows])
    for c, (mean, cov) in s.gaussians().items():
        x = feats[labels == c]
        torch.testing.assert_close(mean, x.mean(0), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(cov, torch.cov(x.T), rtol=1e-8, atol=1e-12)  # float64 sums
    assert s._count.tolist() == [32.0, 32.0]
    # cov_shrink blends each class's covariance with the pooled within-class one
    x0, x1 = (feats[labels == c] for c in (0, 1))
    pooled = (torch.cov(x0.T) * 31 + torch.cov(x1.T) * 31) / 62
    s.cov_shrink = 0.5
    for c, (_, cov) in s.gaussians().items():
        torch.testing.assert_close(cov, 0.5 * torch.cov((x0, x1)[c].T) + 0.5 * pooled)


@pytest.mark.parametrize("scenario", ["task", "domain"])
def test_task_and_domain_incremental(tok: Any, scenario: str) -> None:
    groups = [[0, 1], [2, 3]] if scenario == "task" else [[0, 1], [0, 1]]
    lrn = learner(tok, [petl.SLCA()])
    res = lrn.fit(stream(scenario, groups))
    assert res.accuracy[-1].mean() > 0.8  # task ids restrict the candidates to 2 classes
    s = lrn.strategies[0]
    assert len(s.gaussians()) == (4 if scenario == "task" else 2)  # per-task heads: 2 + 2


def test_resume_mid_second_task_equals_uninterrupted(tok: Any, tmp_path: Any) -> None:
    def run(kill: Kill, ckpt: str | None) -> tuple[Any, Any]:
        lrn = learner(tok, [petl.SLCA(ca_epochs=2, ca_samples=32), kill], checkpoint_every=4)
        res = lrn.fit(stream("class", GROUPS[:2]), checkpoint_dir=ckpt)
        return res, weights(lrn)

    want = run(Kill(), None)
    ckpt = str(tmp_path / "run")
    with pytest.raises(Killed):
        run(Kill(step=18), ckpt)  # task 1 runs steps 13-24; last checkpoint at step 16
    assert_same(run(Kill(), ckpt), want)


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(petl.ConfigError, match="lr_scale"):
        petl.SLCA(lr_scale=0)
    with pytest.raises(petl.ConfigError, match="ca_samples"):
        petl.SLCA(ca_samples=0)
    with pytest.raises(petl.ConfigError, match="cov_shrink"):
        petl.SLCA(cov_shrink=1.5)
