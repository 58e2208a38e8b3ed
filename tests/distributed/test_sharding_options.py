"""Fast checks of the FSDP option and of the benchmark's GPU-config mode (no processes
launched): bad settings give clear errors, the shipped accelerate configs load and turn
into launch commands, and `--gpu` stops clearly on a machine without CUDA."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import petl
from benchmarks import dist_settings, gpu_configs  # the root is on sys.path (tests/__init__.py)
from petl.errors import ConfigError
from petl.training import sharding

ROOT = Path(__file__).resolve().parents[2]


def test_unknown_sharding_lists_the_known_ones():
    with pytest.raises(ConfigError, match="fsdp") as err:
        petl.TrainConfig(sharding="zero3")
    assert "none" in str(err.value)


def _learner(strategies=(), processes=2, **config):
    return SimpleNamespace(
        accelerator=SimpleNamespace(num_processes=processes, distributed_type="MULTI_CPU"),
        config=petl.TrainConfig(sharding="fsdp", **config),
        strategies=list(strategies),
        hooks=SimpleNamespace(method=[]),
    )


def test_fsdp_is_a_no_op_on_one_process(monkeypatch):
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    assert not sharding.enabled(_learner(processes=1))
    assert sharding.enabled(_learner(processes=2))


def test_cpu_launch_with_an_fsdp_config_turns_sharding_on(monkeypatch):
    """accelerate keeps CPU processes MULTI_CPU and ignores its FSDP plugin; petl reads
    the launcher's ACCELERATE_USE_FSDP instead."""
    learner = _learner()
    learner.config = petl.TrainConfig()  # sharding="none"
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    assert not sharding.enabled(learner)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert sharding.enabled(learner)


def test_unsupported_combinations_fail_before_training(monkeypatch):
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    with pytest.raises(ConfigError, match="early_stopping_patience"):
        sharding.check(_learner(early_stopping_patience=1))
    with pytest.raises(ConfigError, match="unaware"):
        sharding.check(_learner([_Unaware()]))
    sharding.check(_learner([petl.EWC(), petl.Replay(), petl.LwF()]))  # supported
    # per-step hooks that gather the sharded tensors (tests/distributed/test_fsdp_steps.py)
    from petl.methods.adalora import AdaLoRABudget

    stepping = _learner([petl.SI(lam=1.0), petl.AGEM(), petl.GEM()])
    stepping.hooks.method = [AdaLoRABudget(None)]
    sharding.check(stepping)


class _Unaware(petl.Strategy):
    """A petl per-step hook that would read shards without gathering them (none ships:
    every one of petl's declares `shard_aware`); refused under FSDP."""

    name = "unaware"

    def before_step(self, learner) -> None:
        pass


_Unaware.__module__ = "petl.strategies.unaware"  # check() judges petl's own hooks only


def test_benchmark_settings_syntax():
    assert dist_settings.parse_setting("2x1fsdp") == (2, 1, "fsdp")
    assert dist_settings.parse_setting("1x2") == (1, 2, "none")
    with pytest.raises(SystemExit, match="PROCESSESxTHREADS"):
        dist_settings.parse_setting("two")


def test_gpu_plan_loads_every_shipped_config():
    entries = gpu_configs.plan(ROOT / "configs" / "accelerate", gpus=2, deepspeed=False)
    kinds = {e["config"]: e["distributed_type"] for e in entries}
    assert kinds == {
        "ddp.yaml": "MULTI_GPU",
        "fsdp.yaml": "FSDP",
        "deepspeed_zero2.yaml": "DEEPSPEED",
        "deepspeed_zero3.yaml": "DEEPSPEED",
    }
    for e in entries:
        assert e["processes"] == 2
        assert e["launch"][-4:] == ["--num_processes", "2", "--main_process_port", "0"]
        assert Path(e["launch"][e["launch"].index("--config_file") + 1]).is_file()
        assert (e["skip"] is not None) == (e["distributed_type"] == "DEEPSPEED")
    with_ds = gpu_configs.plan(ROOT / "configs" / "accelerate", gpus=1, deepspeed=True)
    assert all(e["skip"] is None and e["processes"] == 1 for e in with_ds)


def test_gpu_plan_names_a_missing_config(tmp_path):
    with pytest.raises(SystemExit, match=r"ddp\.yaml is missing"):
        gpu_configs.plan(tmp_path, gpus=1, deepspeed=False)


def test_gpu_mode_refuses_without_cuda(monkeypatch):
    monkeypatch.setattr(gpu_configs, "gpu_count", lambda: 0)
    launched = []
    args = SimpleNamespace(configs=str(ROOT / "configs" / "accelerate"), method="lora")
    with pytest.raises(SystemExit, match="needs CUDA"):
        gpu_configs.run_gpu_configs(args, lambda *a, **k: launched.append(a))
    assert launched == []
