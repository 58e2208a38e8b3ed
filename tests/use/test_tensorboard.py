"""TrainConfig.log_with="tensorboard": a tiny two-task run writes event files through
Accelerate's trackers; read back with TensorBoard's own reader, they hold one loss and lr
per optimizer step and the accuracy matrix that `fit` returned."""

from __future__ import annotations

import glob
import sys
from typing import Any

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import petl
from petl.errors import ConfigError
from tests.cl.cl_data import make_bert, make_tokenizer, split_records

LR = 1e-2


def learner(**config: Any) -> Any:
    settings = {"epochs": 2, "batch_size": 8, "lr": LR, "warmup_ratio": 0.0, "progress": False}
    return petl.Learner(
        make_bert(),
        make_tokenizer(),
        method="lora",
        method_options={"r": 4},
        config=petl.TrainConfig(**{**settings, **config}),
    )


def stream() -> Any:
    return petl.Stream.from_records(split_records([[0, 1], [2, 3]], n_train=16, n_test=8), "class")


def scalars(events: EventAccumulator, tag: str) -> tuple[list[int], np.ndarray]:
    points = events.Scalars(tag)
    return [p.step for p in points], np.array([p.value for p in points])


def test_event_files_hold_losses_and_the_accuracy_matrix(tmp_path: Any) -> None:
    log_dir = tmp_path / "tb"
    lrn = learner(log_with="tensorboard", log_dir=str(log_dir))
    results = lrn.fit(stream())
    assert glob.glob(str(log_dir / "events.out.tfevents.*"))
    events = EventAccumulator(str(log_dir))
    events.Reload()

    # 16 rows / batch 8 = 2 steps per epoch, 2 epochs, 2 tasks: steps 0..7 across tasks
    steps, losses = scalars(events, "train/loss")
    assert steps == list(range(8)) == list(range(lrn.global_step))
    assert np.isfinite(losses).all() and (losses > 0).all()
    # linear decay without warmup, restarted each task: lr * (1 - k/4) at its k-th step
    lr_steps, lrs = scalars(events, "train/lr")
    assert lr_steps == steps
    expected = [LR * (1 - k / 4) for k in range(4)] * 2
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)  # float32 in the event file

    for j, name in enumerate(results.task_names):
        task_steps, row = scalars(events, f"matrix/{j}_{name}")
        assert task_steps == [0, 1]
        np.testing.assert_allclose(row, results.accuracy[:, j], atol=1e-6)
    summary = results.summary()
    average_steps, average = scalars(events, "cl/average_accuracy")
    assert average_steps == [0, 1]
    np.testing.assert_allclose(
        average, [results.accuracy[0, 0], summary["average_accuracy"]], atol=1e-6
    )
    _, forgetting = scalars(events, "cl/forgetting")
    np.testing.assert_allclose(forgetting, [0.0, summary["forgetting"]], atol=1e-6)


def test_no_logging_by_default(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    learner(epochs=1).fit(stream())
    assert not glob.glob(str(tmp_path / "**" / "events.out.tfevents.*"), recursive=True)


def test_unknown_tracker_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="Known trackers: tensorboard") as err:
        petl.TrainConfig(log_with="tensorbord")
    assert "Did you mean 'tensorboard'" in str(err.value)


def test_tensorboard_not_installed_is_a_config_error(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Accelerate lists the installed trackers once, when first imported: import it before
    # hiding tensorboard, or later tests in this process would see no tensorboard either.
    import accelerate.tracking  # noqa: F401

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now fails
    lrn = learner(log_with="tensorboard", log_dir=str(tmp_path / "tb"))
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        lrn.fit(stream())


def test_own_accelerator_without_the_tracker_is_refused(tmp_path: Any) -> None:
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    acc = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(split_batches=True))
    lrn = petl.Learner(
        make_bert(),
        make_tokenizer(),
        method="lora",
        accelerator=acc,
        config=petl.TrainConfig(epochs=1, log_with="tensorboard", log_dir=str(tmp_path)),
    )
    with pytest.raises(ConfigError, match="Accelerator\\(log_with='tensorboard'"):
        lrn.fit(stream())
