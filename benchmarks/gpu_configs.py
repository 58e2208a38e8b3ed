"""The `--gpu` mode of distributed_throughput.py: the shipped accelerate configs
(configs/accelerate/ddp.yaml, fsdp.yaml, deepspeed_zero2.yaml, deepspeed_zero3.yaml)
launched as shipped with `accelerate launch --config_file`, one process per GPU, each
training the benchmark's task; throughput and peak GPU memory per config.

`plan` reads every config with accelerate's own loader and builds its launch command
without touching a GPU (tested on CPU machines); `run_gpu_configs` refuses to start
without CUDA, and records a DeepSpeed config as not run when deepspeed is not installed.
With one GPU every config runs one process (FSDP and ZeRO then shard over one rank:
the launch path and the memory of the wrapped run are measured, not the sharding)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

CONFIG_NAMES = ("ddp.yaml", "fsdp.yaml", "deepspeed_zero2.yaml", "deepspeed_zero3.yaml")


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def deepspeed_installed() -> bool:
    return importlib.util.find_spec("deepspeed") is not None


def plan(config_dir: str | Path, gpus: int, deepspeed: bool) -> list[dict[str, Any]]:
    """One entry per shipped config: its distributed type, process count, the launcher
    command (to which the script and its arguments are appended) and why it is skipped
    (None when it runs).

    Raises:
        SystemExit: a config file is missing or accelerate cannot read it.
    """
    from accelerate.commands.config.config_args import load_config_from_file

    entries = []
    for name in CONFIG_NAMES:
        path = Path(config_dir) / name
        if not path.is_file():
            raise SystemExit(f"--gpu: {path} is missing (pass --configs configs/accelerate).")
        try:
            config = load_config_from_file(str(path))
        except Exception as err:  # accelerate raises ValueError/TypeError/yaml errors
            raise SystemExit(f"--gpu: accelerate cannot read {path}: {err}") from err
        kind = str(config.distributed_type).split(".")[-1]
        skip = None
        if kind == "DEEPSPEED" and not deepspeed:
            skip = "deepspeed is not installed (pip install deepspeed)"
        processes = max(gpus, 1)
        launch = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(path),
            "--num_processes",
            str(processes),
            "--main_process_port",
            "0",
        ]
        entries.append(
            {
                "config": name,
                "distributed_type": kind,
                "processes": processes,
                "launch": launch,
                "skip": skip,
                "mixed_precision": str(config.mixed_precision),
            }
        )
    return entries


def run_gpu_configs(args: Any, run_setting: Any) -> list[dict[str, Any]]:
    """Runs every config of `plan` on this machine's GPUs with `run_setting`.

    Raises:
        SystemExit: no CUDA GPU here (before anything is launched).
    """
    gpus = gpu_count()
    if gpus == 0:
        raise SystemExit(
            "--gpu runs the accelerate configs on GPUs and needs CUDA; none is available on "
            "this machine. Use the CPU mode (--settings 2x1,2x1fsdp) here."
        )
    results = []
    for entry in plan(args.configs, gpus, deepspeed_installed()):
        if entry["skip"]:
            results.append({"config": entry["config"], "skipped": entry["skip"]})
            print(f"{entry['config']}: not run: {entry['skip']}", flush=True)
            continue
        result = run_setting(
            args, entry["processes"], 1, args.method, "no", "none", launch=entry["launch"]
        )
        result.update(config=entry["config"], label=f"{entry['config']} x {entry['processes']}")
        results.append(result)
        print(result, flush=True)
    return results
