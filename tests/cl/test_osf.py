"""OSF across tasks: the strategy re-splits peft's OSF layers after every task, the frozen
subspace only grows, and the part of each weight it covers is unchanged by later tasks
(checked numerically on the effective weights); OSF forgets less than SeqLoRA on a stream
built to interfere."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import petl
from petl.errors import ConfigError, IncompatibleModelError
from petl.strategies.base import Strategy
from petl.strategies.osf import OSF, effective_weight, osf_layers
from tests.cl.cl_data import interference_records, make_bert

CONFIG = {"epochs": 3, "batch_size": 8, "lr": 5e-3, "warmup_ratio": 0.0, "progress": False}


def osf_config(rank: float = 0.5) -> Any:
    from peft import OSFConfig

    return OSFConfig(effective_rank=rank, target_modules=["query", "value", "dense"])


class Snapshot(Strategy):
    """Records, after each task (after OSF's re-split), every OSF layer's effective weight
    and the frozen subspace OSF will keep for the next task."""

    name = "snapshot"

    def __init__(self, osf: OSF) -> None:
        self._osf = osf
        self.after: list[dict[str, torch.Tensor]] = []
        self.high: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] = []

    def after_task(self, learner: Any, t: int) -> None:
        layers = osf_layers(learner.model)
        self.after.append({n: effective_weight(m).double() for n, m in layers.items()})
        self.high.append({n: (u.double(), v.double()) for n, (u, v) in self._osf._high.items()})


def run(
    strategies: list[Any], method: Any, records: dict, seed: int = 0, options: Any = None
) -> petl.Results:
    from tests.cl.cl_data import make_tokenizer

    stream = petl.Stream.from_records(records, scenario="task", val_fraction=0.0)
    learner = petl.Learner(
        make_bert(seed=seed, dropout=0.0),
        make_tokenizer(),
        method=method,
        method_options=options,
        strategies=strategies,
        config=petl.TrainConfig(**CONFIG, seed=seed),
    )
    return learner.fit(stream)


def three_tasks() -> dict[str, Any]:
    records = interference_records(n_first=32, n_later=48, n_test=16)
    records["t2"] = interference_records(n_first=32, n_later=48, n_test=16, seed=1)["t0"]
    return records


def test_earlier_tasks_subspaces_stay_frozen() -> None:
    osf = OSF()
    snap = Snapshot(osf)
    run([osf, snap], osf_config(), three_tasks())
    first, second = snap.high[0], snap.high[1]  # frozen during task 2 and task 3
    for name, (u1, v1) in first.items():
        u2, v2 = second[name]
        k = u1.shape[1]
        # the frozen set only grows: task 2's frozen directions are kept in task 3's
        torch.testing.assert_close(u2[:, :k], u1, atol=1e-6, rtol=0)
        assert u2.shape[1] > k and v2.shape[0] > k
        # orthonormal, and the new directions are orthogonal to the old ones
        eye = torch.eye(u2.shape[1], dtype=u2.dtype)
        torch.testing.assert_close(u2.T @ u2, eye, atol=1e-5, rtol=0)
        torch.testing.assert_close(v2 @ v2.T, eye, atol=1e-5, rtol=0)
        w1, w2, w3 = (snap.after[t][name] for t in range(3))
        # task 2 left the subspace frozen after task 1 as it was (its action on both sides)
        torch.testing.assert_close(u1.T @ w2, u1.T @ w1, atol=1e-6, rtol=0)
        torch.testing.assert_close(w2 @ v1.T, w1 @ v1.T, atol=1e-6, rtol=0)
        # task 3 left the grown set (task 1's and task 2's directions) as it was
        torch.testing.assert_close(u2.T @ w3, u2.T @ w2, atol=1e-6, rtol=0)
        torch.testing.assert_close(w3 @ v2.T, w2 @ v2.T, atol=1e-6, rtol=0)
        # and the tasks did train: the weight moved outside the frozen set
        assert (w2 - w1).abs().max() > 1e-4 and (w3 - w2).abs().max() > 1e-4


@pytest.mark.slow  # two trained runs x 3 seeds
def test_osf_forgets_less_than_seqlora() -> None:
    # the same target modules; LoRA r=8 against OSF's trainable half of every weight
    seq, osf = [], []
    for seed in range(3):
        records = interference_records(seed=seed)
        lora = {"r": 8, "target_modules": ["query", "value", "dense"]}
        seq.append(run([], "lora", records, seed, lora))
        osf.append(run([OSF()], osf_config(), records, seed))
    seq_forgetting = np.mean([r.summary()["forgetting"] for r in seq])
    osf_forgetting = np.mean([r.summary()["forgetting"] for r in osf])
    print(f"forgetting: SeqLoRA {seq_forgetting:.3f}, OSF {osf_forgetting:.3f}")
    assert osf_forgetting < seq_forgetting


def test_osf_needs_osf_layers() -> None:
    with pytest.raises(IncompatibleModelError, match="OSF needs peft's OSF layers"):
        run([OSF()], "lora", interference_records(n_first=4, n_later=4, n_test=2))
    with pytest.raises(ConfigError, match="rank_step"):
        OSF(rank_step=1.5)


class Kill(Strategy):
    name = "kill"

    def __init__(self, step: int | None) -> None:
        self._step = step
        self._steps = 0  # optimizer steps this run took (private: not in config())

    def after_step(self, learner: Any) -> None:
        self._steps += 1
        if learner.global_step == self._step:
            raise RuntimeError("killed")


@pytest.mark.slow  # three short runs
def test_killed_osf_run_resumes_to_the_same_matrix(tmp_path) -> None:
    from tests.cl.cl_data import make_tokenizer

    records = interference_records(n_first=16, n_later=24, n_test=8)
    stream = petl.Stream.from_records(records, scenario="task", val_fraction=0.0)

    def fit(kill: Kill, folder: str | None) -> petl.Results:
        learner = petl.Learner(
            make_bert(dropout=0.0),
            make_tokenizer(),
            method=osf_config(),
            strategies=[OSF(), kill],
            config=petl.TrainConfig(**CONFIG, seed=0, checkpoint_every=1),
        )
        return learner.fit(stream, checkpoint_dir=folder)

    full = Kill(None)
    whole = fit(full, None)  # 6 steps on task 1 (16 rows), 9 on task 2 (24 rows)
    folder = str(tmp_path / "ck")
    with pytest.raises(RuntimeError, match="killed"):
        fit(Kill(8), folder)  # in task 2, after OSF re-split the layers
    rest = Kill(None)
    resumed = fit(rest, folder)
    assert full._steps == 15 and rest._steps < 9  # resumed inside task 2, not from scratch
    np.testing.assert_allclose(resumed.accuracy, whole.accuracy, atol=1e-6)


def test_osf_refuses_strategies_that_keep_parameter_copies() -> None:
    with pytest.raises(ConfigError, match="OSF cannot be combined with ewc"):
        run([OSF(), petl.EWC()], "osf", interference_records(n_first=4, n_later=4, n_test=2))


def test_grow_refuses_a_diverged_weight_and_splits_a_rank_deficient_one() -> None:
    from petl.errors import TrainingError
    from petl.strategies.osf import grow

    gen = torch.Generator().manual_seed(0)
    u_high = torch.linalg.qr(torch.randn(16, 4, generator=gen)).Q
    v_high = torch.linalg.qr(torch.randn(16, 4, generator=gen)).Q.T
    weight = u_high @ torch.randn(4, 16, generator=gen)  # all in the frozen set: residual 0
    (grown_u, grown_v), (u_low, s_low, v_low) = grow(weight, u_high, v_high, step=2)
    assert torch.isfinite(v_low).all()
    assert grown_u.shape == (16, 6) and grown_v.shape == (6, 16)
    assert torch.isfinite(u_low).all() and torch.isfinite(s_low).all()
    torch.testing.assert_close(grown_u.T @ grown_u, torch.eye(6), atol=1e-5, rtol=0)
    weight[3, 5] = float("nan")
    with pytest.raises(TrainingError, match="Lower the learning rate"):
        grow(weight, u_high, v_high, step=2)
