"""The accelerate config files in configs/accelerate/, checked by accelerate's own parsing.

FSDP and DeepSpeed cannot run on these CPU-only machines (and deepspeed is not
installed), so each file goes as far as accelerate goes without launching: the config
file loader, the `accelerate launch` argument validation, the environment the launcher
would hand to the processes, and the FSDP / DeepSpeed plugin objects built from that
environment. ddp_cpu.yaml is also really launched (2 gloo processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "accelerate"
EXPECTED = {  # file -> (distributed_type, launcher flag set by the file)
    "ddp.yaml": ("MULTI_GPU", "multi_gpu"),
    "ddp_cpu.yaml": ("MULTI_GPU", "multi_gpu"),
    "fsdp.yaml": ("FSDP", "use_fsdp"),
    "deepspeed_zero2.yaml": ("DEEPSPEED", "use_deepspeed"),
    "deepspeed_zero3.yaml": ("DEEPSPEED", "use_deepspeed"),
}


def test_every_config_is_listed():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


def _launch_args(path: Path):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    parser = launch_command_parser()
    args, defaults, _ = _validate_launch_command(
        parser.parse_args(["--config_file", str(path), "train.py"])
    )
    return parser, args, defaults


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_parses(name):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    path = CONFIGS / name
    config = load_config_from_file(str(path))  # unknown top-level keys raise here
    assert isinstance(config, ClusterConfig)
    kind, flag = EXPECTED[name]
    assert config.distributed_type.value == kind
    assert config.num_processes == 2 and config.num_machines == 1
    parser, args, _ = _launch_args(path)
    assert getattr(args, flag) is True
    assert args.num_processes == 2
    # `accelerate launch` copies nested keys onto its own options without checking them:
    # a misspelt key would be silently ignored, so every one must be a launcher option.
    known = set(vars(parser.parse_args(["train.py"])))
    for key in config.fsdp_config:
        assert (key if key.startswith("fsdp") else f"fsdp_{key}") in known, key
    for key in config.deepspeed_config:
        assert key in known, key
    assert not config.use_cpu  # `use_cpu: true` would make accelerate start ONE process


def test_ddp_cpu_config_keeps_precision_off():
    _, args, _ = _launch_args(CONFIGS / "ddp_cpu.yaml")
    assert args.mixed_precision == "no"


def test_fsdp_plugin_from_launch_environment():
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    _, args, _ = _launch_args(CONFIGS / "fsdp.yaml")
    env = prepare_multi_gpu_env(args)
    assert env["ACCELERATE_USE_FSDP"] == "true"
    with mock.patch.dict(os.environ, env):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.transformer_cls_names_to_wrap == ["BertLayer"]
    assert plugin.reshard_after_forward is True
    assert "FULL_STATE_DICT" in str(plugin.state_dict_type)


@pytest.mark.parametrize(
    ("name", "stage"), [("deepspeed_zero2.yaml", 2), ("deepspeed_zero3.yaml", 3)]
)
def test_deepspeed_plugin_from_launch_environment(name, stage):
    from accelerate.utils import DeepSpeedPlugin
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    _, args, defaults = _launch_args(CONFIGS / name)
    args.deepspeed_fields_from_accelerate_config = list(defaults.deepspeed_config)  # as launch does
    _, env = prepare_deepspeed_cmd_env(args)
    assert env["ACCELERATE_USE_DEEPSPEED"] == "true"
    with mock.patch.dict(os.environ, env):
        plugin = DeepSpeedPlugin()  # builds the ZeRO config; deepspeed itself is not needed
    zero = plugin.deepspeed_config["zero_optimization"]
    assert plugin.zero_stage == zero["stage"] == stage
    assert plugin.deepspeed_config["gradient_clipping"] == 1.0
    assert zero["stage3_gather_16bit_weights_on_model_save"] is (stage == 3)


@pytest.mark.slow  # two processes
@pytest.mark.distributed
def test_ddp_cpu_config_launches_two_processes(tmp_path):
    """`accelerate launch --config_file configs/accelerate/ddp_cpu.yaml` really starts two
    gloo processes that reduce EWC's Fisher together (the worker's cheapest case)."""
    import json

    worker = Path(__file__).parent / "cl_worker.py"
    env = {k: v for k, v in os.environ.items() if k != "WORLD_SIZE"}
    env.update(ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[2]), env.get("PYTHONPATH", "")])
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(CONFIGS / "ddp_cpu.yaml"),
        "--main_process_port",
        "0",
        str(worker),
        "fisher",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    infos = [json.loads(p.read_text()) for p in sorted((tmp_path / "fisher").glob("rank*.json"))]
    assert [i["num_processes"] for i in infos] == [2, 2]
