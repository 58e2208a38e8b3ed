"""Runs a benchmark: every cell (run x seed) of a config, each one resumable, each result
written to disk as soon as it exists.

The folder layout lives in petl.bench.folder, the report in petl.bench.report.

`--resume DIR` reads config.json, skips every cell that has its JSON, and continues a
half-trained cell from its checkpoint (petl.Learner's own resume)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

from petl.bench.config import BenchConfig, Cell
from petl.bench.folder import (
    CHECKPOINTS,
    _children_cpu,
    _loadavg,
    _write_json,
    cell_path,
    environment,
    log_invocation,
    prepare,
)
from petl.bench.report import figure, write_report
from petl.errors import ConfigError, PetlError


def check_model(path: str) -> str:
    """The model folder of `model.path`, refused before anything is written when it does
    not exist or holds no transformers config (a hub name, one `/` at most and not
    path-like, is left to transformers unless the hub is offline)."""
    from petl.bench.data import resolve_model

    resolved = resolve_model(path)
    if os.path.isdir(resolved) and not os.path.exists(os.path.join(resolved, "config.json")):
        raise ConfigError(
            f"Model folder {resolved!r} has no config.json: is it a transformers model?"
        )
    if os.path.exists(resolved):
        return resolved
    pathlike = resolved.startswith((".", "/", "~")) or resolved.count("/") > 1
    if pathlike or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ConfigError(
            f"model.path {path!r} is not a local folder"
            + (" and the hub is offline." if not pathlike else ".")
            + ' Give the folder of a transformers model, or "minilm".'
        )
    return resolved


def quiet_libraries() -> None:
    """Silences load reports, download bars and deprecation chatter of transformers."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark of this process (Linux); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last reset (VmHWM), in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_strategies(cell: Cell) -> list[Any]:
    from petl.bench.config import build_strategy, strategy_options

    out = []
    for name, options in cell.run.strategies:
        options = dict(options)
        if "seed" in strategy_options(name):
            options.setdefault("seed", cell.seed)
        out.append(build_strategy(f"run {cell.run.name!r}", name, options))
    return out


def run_cell(
    config: BenchConfig, cell: Cell, stream: Any, out: str, progress: bool = True
) -> dict[str, Any]:
    """Trains one cell (resuming its checkpoint if any) and writes cells/<key>.json."""
    import torch

    from petl.bench.data import resolve_model
    from petl.training.learner import Learner

    quiet_libraries()
    torch.set_num_threads(config.num_threads)
    measured = reset_peak_rss()
    cpu_start = time.process_time()
    ckpt_dir = os.path.join(out, CHECKPOINTS, cell.key)
    learner = Learner(
        resolve_model(config.model),
        method=cell.run.method,
        method_options=cell.run.method_options,
        strategies=build_strategies(cell),
        config=cell_train_config(config, cell, out, progress),
        family=config.family.build(),
    )
    results = learner.fit(stream, checkpoint_dir=ckpt_dir)
    if measured:
        results.info["peak_rss_mb"] = peak_rss_mb()
    results.info["peak_rss_scope"] = "cell" if measured else "process"
    results.info.update(strategy_costs(learner))
    # CPU seconds of this process (all its threads) for the cell: on a machine shared with
    # other jobs this is the steadier cost figure; wall_time_s is what the user waited.
    results.info["cpu_time_s"] = time.process_time() - cpu_start
    record = {
        "key": cell.key,
        "run": {
            "name": cell.run.name,
            "method": cell.run.method,
            "method_options": cell.run.method_options,
            "strategies": [[n, o] for n, o in cell.run.strategies],
            "train": cell.run.train,
        },
        "seed": cell.seed,
        "results": results.to_dict(),
        "environment": environment(config.num_threads),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    _write_json(cell_path(out, cell), record)
    if not config.keep_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return record


def cell_train_config(config: BenchConfig, cell: Cell, out: str, progress: bool) -> Any:
    """The cell's TrainConfig; with log_with set, each cell logs to its own folder:
    <log_dir, default the report folder's tensorboard/>/<cell key>."""
    train = config.train_config(cell.run, cell.seed, progress)
    if train.log_with is None:
        return train
    parent = train.log_dir or os.path.join(out, "tensorboard")
    return dataclasses.replace(train, log_dir=os.path.join(parent, cell.key))


def strategy_costs(learner: Any) -> dict[str, Any]:
    """Cost figures of statistic-head strategies (NCM, FeCAM, RanPAC, APER): forward passes
    over each task's training rows for the head update, and the state they keep, in floats
    (independent of the number of examples seen); plus the optimizer steps of the run."""
    heads = [s for s in learner.strategies if hasattr(s, "state_floats")]
    costs: dict[str, Any] = {"optimizer_steps": learner.global_step}
    if heads:
        costs["head_passes_per_task"] = sum(s.head_passes() for s in heads)
        costs["state_floats"] = sum(s.state_floats() for s in heads)
    return costs


def _cost(cell: Cell) -> float:
    """Rough relative cost, to start the longest cells first when several workers run."""
    cost = 5.0 if cell.run.method is None else 1.0
    names = [n for n, _ in cell.run.strategies]
    return cost * (2.5 if "joint" in names else 1.3 if "replay" in names else 1.0)


def _worker_init(num_threads: int) -> None:
    import torch

    quiet_libraries()
    torch.set_num_threads(num_threads)


def _describe(record: dict[str, Any]) -> str:
    s = record["results"]["summary"]
    info = record["results"]["info"]
    return (
        f"{record['run']['name']} seed {record['seed']}: acc {figure(s['average_accuracy'])}, "
        f"forgetting {figure(s['forgetting'])}, diagonal {figure(s['plasticity'])} "
        f"({info['wall_time_s']:.0f} s)"
    )


def run(
    config: BenchConfig,
    out: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Runs every unfinished cell of `config` and writes the report.

    Returns:
        The report dict of petl.bench.report.write_report (also in <out>/results.json),
        with "failed": the cells that raised a petl error.
    """
    from tqdm.auto import tqdm

    from petl.bench.data import build_stream

    out = out or config.output_dir
    say = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    quiet_libraries()
    # Everything is validated before the output folder is touched: bad data or a missing
    # model must not cost an earlier report.
    stream = build_stream(config.stream, config.family.name)
    check_model(config.model)
    continuing = prepare(config, out, resume, overwrite)
    cells = config.cells()
    pending = [c for c in cells if not os.path.exists(cell_path(out, c))]
    for c in pending:  # a failed cell is retried
        if os.path.exists(cell_path(out, c, ".failed.json")):
            os.remove(cell_path(out, c, ".failed.json"))
    workers = min(config.workers, max(len(pending), 1))
    say(
        f"petl bench {config.name!r}: {len(cells)} cells ({len(config.runs)} runs x "
        f"{len(config.seeds)} seeds) on {len(stream)} tasks "
        f"{'[' + ', '.join(stream.names) + ']'}; {workers} worker(s) x {config.num_threads} "
        f"torch thread(s); output {out}"
        + (f"; continuing, {len(cells) - len(pending)} cell(s) already done" if continuing else "")
    )
    failures: list[dict[str, Any]] = []
    bar = tqdm(
        total=len(cells),
        initial=len(cells) - len(pending),
        desc="bench",
        unit="cell",
        disable=not progress,
        position=0,
        file=sys.stderr,
    )

    def failed(cell: Cell, err: BaseException) -> None:
        info = {
            "key": cell.key,
            "run": cell.run.name,
            "seed": cell.seed,
            "error": f"{type(err).__name__}: {err}",
        }
        if not isinstance(err, PetlError):  # a bug, not a bad input: keep where it happened
            info["traceback"] = "".join(traceback.format_exception(err))
        _write_json(cell_path(out, cell, ".failed.json"), info)
        failures.append(info)
        say(f"FAILED {cell.run.name} seed {cell.seed}: {info['error']}")

    start, load_start, cpu_start = time.perf_counter(), _loadavg(), _children_cpu()
    if workers <= 1:
        for cell in pending:
            bar.set_postfix_str(f"{cell.run.name} seed {cell.seed}")
            try:
                record = run_cell(config, cell, stream, out, progress)
                say(_describe(record))
            except Exception as err:  # one cell's crash must not cost the others
                failed(cell, err)
            bar.update(1)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ordered = sorted(pending, key=_cost, reverse=True)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_worker_init, initargs=(config.num_threads,)
        ) as pool:
            futures = {pool.submit(run_cell, config, c, stream, out, False): c for c in ordered}
            for future in as_completed(futures):
                cell = futures[future]
                try:
                    say(_describe(future.result()))
                except Exception as err:  # one cell's crash must not cost the others
                    failed(cell, err)
                bar.update(1)
    bar.close()
    with contextlib.suppress(OSError):  # removed only when no unfinished cell is left
        os.rmdir(os.path.join(out, CHECKPOINTS))
    log_invocation(out, len(pending), time.perf_counter() - start, load_start, cpu_start)
    report = write_report(out)
    report["failed"] = failures
    return report
