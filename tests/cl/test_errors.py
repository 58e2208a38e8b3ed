"""Bad input gets a clear error before any training starts (stream errors are in
test_stream.py, checkpoint-directory errors in test_resume.py)."""

from __future__ import annotations

from typing import Any

import pytest

import petl
from petl import ConfigError, DataError, IncompatibleModelError
from petl.strategies.base import Strategy
from tests.cl.cl_data import make_bert, split_records


class Spy(Strategy):
    """Records whether training started."""

    name = "spy"

    def __init__(self) -> None:
        self._started = False

    def before_task(self, learner: Any, t: int) -> None:
        self._started = True


def stream(**kwargs: Any) -> petl.Stream:
    return petl.Stream.from_records(split_records([[0, 1], [2, 3]], 8, 4), **kwargs)


@pytest.mark.parametrize("method", ["ia3", "bitfit", None])
def test_olora_needs_lora(tok: Any, method: Any) -> None:
    spy = Spy()
    learner = petl.Learner(
        make_bert(),
        tok,
        method=method,
        strategies=[petl.OLoRA(), spy],
        config=petl.TrainConfig(progress=False),
    )
    with pytest.raises(IncompatibleModelError, match="OLoRA needs plain LoRA layers"):
        learner.fit(stream())
    assert not spy._started


def test_olora_refuses_dora(tok: Any) -> None:
    learner = petl.Learner(
        make_bert(),
        tok,
        method="lora",
        method_options={"use_dora": True},
        strategies=[petl.OLoRA()],
        config=petl.TrainConfig(progress=False),
    )
    with pytest.raises(IncompatibleModelError, match="without DoRA"):
        learner.fit(stream())


def test_train_config_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"Unknown training setting\(s\) \['epoch'\]. Valid settings: .*epochs"
    ):
        petl.TrainConfig.from_dict({"epoch": 3})
    assert petl.TrainConfig.from_dict({"epochs": 2}).epochs == 2
    with pytest.raises(ConfigError, match=r"Unknown scheduler 'cosin'\. Did you mean 'cosine'"):
        petl.TrainConfig(scheduler="cosin")
    for bad in (
        {"epochs": 0},
        {"lr": 0},
        {"warmup_ratio": 1.0},
        {"mixed_precision": "fp8"},
        {"max_grad_norm": 0},
        {"checkpoint_every": 0},
        {"weight_decay": -1},
    ):
        with pytest.raises(ConfigError):
            petl.TrainConfig(**bad)
    config = petl.TrainConfig(epochs=2, lr=1e-3, checkpoint_every=5)
    assert petl.TrainConfig.from_dict(config.to_dict()) == config


def test_learner_argument_errors(tok: Any) -> None:
    with pytest.raises(ConfigError, match="tokenizer="):
        petl.Learner(make_bert())
    with pytest.raises(ConfigError, match="Each strategy may appear once"):
        petl.Learner(make_bert(), tok, strategies=[petl.EWC(), petl.EWC(lam=1)])
    with pytest.raises(ConfigError, match=r"Unknown method 'lorra'\. Did you mean 'lora'"):
        petl.Learner(make_bert(), tok, method="lorra")


def test_early_stopping_needs_validation_data(tok: Any) -> None:
    spy = Spy()
    learner = petl.Learner(
        make_bert(),
        tok,
        strategies=[spy],
        config=petl.TrainConfig(early_stopping_patience=1, progress=False),
    )
    with pytest.raises(DataError, match="validation data"):
        learner.fit(stream(val_fraction=0))
    assert not spy._started


def test_bad_strategy_options() -> None:
    with pytest.raises(ConfigError):
        petl.LwF(temperature=0)
    with pytest.raises(ConfigError):
        petl.OLoRA(lam_orth=-1)


def test_learner_accepts_a_pathlib_model_path(tmp_path) -> None:
    import pathlib

    learner = petl.Learner(pathlib.Path(tmp_path), method="lora")
    assert learner.source == str(tmp_path)
    with pytest.raises(petl.ConfigError, match="no such folder"):  # checked at construction
        petl.Learner(pathlib.Path("/nonexistent/model"), method="lora")
