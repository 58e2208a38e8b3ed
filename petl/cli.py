"""The `petl` command line.

    petl bench                          the offline default benchmark (petl/configs/default.toml)
    petl bench CONFIG.toml|.yaml|NAME   a configured benchmark (NAME: a shipped config)
    petl bench --resume DIR             continue an interrupted benchmark
    petl train --data bbc --output DIR  one method on one dataset, adapter saved in DIR
    petl report DIR                     re-render DIR's report (JSON, Markdown, plots)

`--set KEY=VALUE` is the one override syntax of every command (dotted keys, TOML values,
parsed once by petl.bench.schema.apply_overrides): `petl bench --set train.lr=1e-3`,
`petl train --set method.r=16 --set train.warmup_ratio=0.1`.

Errors in a config or an argument end the command at once with a message that names the
offending key and the valid choices (exit status 2)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

# Plain strings (petl.names imports nothing), so that --help does not import torch.
from petl.names import METHOD_NAMES, STRATEGY_NAMES
from petl.training.config import FULL_LR, PEFT_LR, TrainConfig

TRAIN_DEFAULTS = TrainConfig()

MODEL_HELP = "'minilm' (default; offline package), 'smollm2', a local folder or a hub name"
DOCS = "Docs: docs/index.md (quickstart), docs/troubleshooting.md; build with `mkdocs serve`."
EPILOG = (
    f"Methods: {', '.join(METHOD_NAMES)}, or none (full fine-tuning). "
    f"Strategies: {', '.join(STRATEGY_NAMES)}. {DOCS}"
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("petl")
    except PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="petl",
        description="Parameter-efficient continual learning: benchmarks and training.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"petl {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{bench,train,report}")

    bench = sub.add_parser(
        "bench",
        help="run a benchmark (no argument: the offline default)",
        description="Run a grid of methods x strategies x seeds over a task "
        "stream and write a report folder. Own data: a config with [stream] source = 'files' "
        "(text_column, label_column, {train, test} files per task) or source = 'dir' (a "
        "folder of one CSV/JSON/JSONL file per task, or news_train.csv + news_test.csv).",
        epilog=EPILOG,
    )
    bench.add_argument(
        "config", nargs="?", help="a .toml/.yaml config or a shipped config name (default: default)"
    )
    bench.add_argument("--resume", metavar="DIR", help="continue the benchmark in DIR")
    bench.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        help="report folder (default: the config's output_dir, reports/<name>)",
    )
    _add_set(bench, "a config value, e.g. --set stream.data_dir=/data --set seeds=[0,1,2]")
    bench.add_argument(
        "--smoke",
        action="store_true",
        help="the CI size: the config's [smoke] table (default: 16 train/16 test examples per "
        "task, 1 epoch) merged over it, first seed only, report in OUTPUT_DIR-smoke",
    )
    bench.add_argument("--workers", type=int, help="cells trained at once (processes)")
    bench.add_argument("--threads", type=int, help="torch threads per worker")
    bench.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    bench.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the config, the data and the model, list the cells, stop",
    )
    bench.add_argument("--list", action="store_true", help="list the shipped configs and stop")
    bench.add_argument("--no-progress", action="store_true", help="no progress bars")
    bench.add_argument(
        "--tensorboard",
        action="store_true",
        help="log losses and accuracy matrices for TensorBoard in DIR/tensorboard/<cell> "
        "(same as --set train.log_with=tensorboard; needs the tensorboard package)",
    )

    train = sub.add_parser(
        "train",
        help="train one method on one dataset and save the adapter",
        description="Train one PEFT method (or full fine-tuning) on one "
        "dataset and save the adapter with petl.save.",
        epilog=EPILOG,
    )
    train.add_argument(
        "--data",
        required=True,
        help="'bbc' or 'tweets' (offline packages), a json/jsonl/csv/tsv/parquet file, a folder "
        "of such files (one per task, or NAME_train.csv + NAME_test.csv; pick one with --task) "
        "or a folder in the cl_benchmark layout (with --task)",
    )
    train.add_argument(
        "--test", metavar="FILE", help="a separate test file (else --data is split 80/20)"
    )
    train.add_argument("--text-column", help="column of the text (default: text, sentence, ...)")
    train.add_argument("--label-column", help="column of the label (default: label)")
    train.add_argument("--task", help="task inside --data (or a name for the task)")
    train.add_argument("--classes", nargs="+", help="with --data bbc/tweets: the classes to use")
    train.add_argument(
        "--output", "-o", required=True, metavar="DIR", help="where the adapter goes"
    )
    train.add_argument("--model", default="minilm", help=MODEL_HELP)
    train.add_argument(
        "--method", default="lora", help="a PEFT method or 'none' (full fine-tuning)"
    )
    _add_set(
        train,
        "a method option or a training setting, e.g. --set method.r=16 "
        "--set train.warmup_ratio=0.1",
    )
    # Defaults are petl.TrainConfig's, so `petl train` trains as the Python API does.
    train.add_argument("--epochs", type=int, help=f"default {TRAIN_DEFAULTS.epochs}")
    train.add_argument(
        "--lr", type=float, help=f"default {PEFT_LR:g} (PEFT) or {FULL_LR:g} (--method none)"
    )
    train.add_argument("--batch-size", type=int, help=f"default {TRAIN_DEFAULTS.batch_size}")
    train.add_argument(
        "--max-length", type=int, help=f"tokens per example, default {TRAIN_DEFAULTS.max_length}"
    )
    train.add_argument("--max-train", type=int, help="training examples (subsampled)")
    train.add_argument("--max-test", type=int, help="test examples (subsampled)")
    train.add_argument("--seed", type=int)
    train.add_argument("--threads", type=int, help="torch CPU threads")
    train.add_argument("--no-progress", action="store_true")
    train.add_argument(
        "--tensorboard",
        action="store_true",
        help="log losses and the test accuracy for TensorBoard in OUTPUT/tensorboard",
    )
    train.add_argument(
        "--dry-run", action="store_true", help="validate the data and the model, print them, stop"
    )

    report = sub.add_parser(
        "report",
        help="re-render the report of a benchmark folder",
        description="Re-render report.md, results.json and plots/*.png of a folder written by "
        "petl bench (after adding cells, or with a newer petl).",
    )
    report.add_argument("dir", help="a folder written by petl bench")
    return parser


def _add_set(parser: argparse.ArgumentParser, what: str) -> None:
    """The one KEY=VALUE override flag of every command (parsed by
    petl.bench.schema.apply_overrides: dotted keys, TOML values)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override {what} (dotted key, TOML value; repeatable)",
    )


def cmd_bench(args: argparse.Namespace) -> int:
    from petl.bench import config as bench_config
    from petl.bench import runner
    from petl.bench.folder import load_saved_config
    from petl.bench.report import format_table

    if args.list:
        for name in bench_config.shipped_configs():
            raw = bench_config.read_file(bench_config.resolve_path(name))
            text = " ".join(str(raw.get("description", "")).split())
            print(f"{name:26s} {text[:100] + ('...' if len(text) > 100 else '')}")
        return 0
    overrides = list(args.overrides)
    if args.workers is not None:
        overrides.append(f"workers={args.workers}")
    if args.threads is not None:
        overrides.append(f"num_threads={args.threads}")
    if args.tensorboard:
        overrides.append("train.log_with=tensorboard")
    if args.resume:
        if args.config:
            raise bench_config.ConfigError("Pass either a config or --resume DIR, not both.")
        saved = load_saved_config(args.resume)
        config = bench_config.validate(bench_config.apply_overrides(saved.raw, overrides))
        out = args.resume
    else:
        config = bench_config.load(args.config, overrides, smoke=args.smoke)
        out = args.output or config.output_dir
    if args.dry_run:
        from petl.bench.data import build_stream

        stream = build_stream(config.stream, config.family.name)  # reads and checks the data
        model = runner.check_model(config.model)
        print(
            f"data: {config.family.name}, {stream.scenario}-incremental, "
            + ", ".join(f"{t.name} ({len(t.train)} train/{len(t.test)} test)" for t in stream.tasks)
        )
        print(f"model: {model}")
        print(f"{config.name}: {len(config.cells())} cells -> {out}")
        for cell in config.cells():
            t = config.train_config(cell.run, cell.seed)
            print(
                f"  {cell.key:30s} {cell.run.label:24s} lr={t.for_method(cell.run.method).lr:g} epochs={t.epochs} "
                f"batch={t.batch_size} max_length={t.max_length}"
            )
        return 0
    start = time.perf_counter()
    try:
        report = runner.run(
            config,
            out,
            resume=bool(args.resume),
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        print(
            f"\npetl bench: interrupted; finished cells are kept. Continue with: "
            f"petl bench --resume {out}",
            file=sys.stderr,
        )
        return 130
    elapsed = time.perf_counter() - start
    print()
    print(
        f"petl bench {config.name!r}: {report['cells_finished']}/{report['cells_total']} cells, "
        f"{elapsed:.0f} s this invocation; stream {report['stream']['scenario'] if report['stream'] else '?'}-"
        f"incremental, {len(report['stream']['tasks']) if report['stream'] else 0} tasks"
    )
    print(format_table(report["runs"]))
    _print_chance_warnings(report)
    print(f"\nReport: {out}/report.md (results.json, plots/*.png)")
    if report["failed"]:
        print(f"{len(report['failed'])} cell(s) failed; see {out}/report.md", file=sys.stderr)
        return 1
    return 0


def _print_chance_warnings(report: dict[str, Any]) -> None:
    from petl.bench.report import _chance_section

    for line in _chance_section(report["runs"], report.get("stream"))[2:-1]:
        print(f"warning: {line[2:]}", file=sys.stderr)


def _train_overrides(items: list[str], method: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(method options, training settings) of `petl train --set method.X=V --set train.Y=V`."""
    from petl.bench.runs import valid_method_options
    from petl.bench.schema import apply_overrides, unknown_keys
    from petl.errors import ConfigError

    given = apply_overrides({}, items)
    for key in given:
        if key not in ("method", "train") or not isinstance(given[key], dict):
            raise ConfigError(
                f"--set {key}: petl train takes method.OPTION=VALUE (a method option, e.g. "
                "method.r=16) or train.SETTING=VALUE (a TrainConfig setting, e.g. "
                "train.warmup_ratio=0.1)."
            )
    options, settings = given.get("method", {}), given.get("train", {})
    if method is None and options:
        raise ConfigError("--set method.*: full fine-tuning (--method none) takes no options.")
    if method is not None:
        unknown_keys("method", options, valid_method_options(method))
    unknown_keys("train", settings, [f for f in TRAIN_DEFAULTS.to_dict() if f != "progress"])
    return options, settings


def cmd_train(args: argparse.Namespace) -> int:
    from petl.bench.runs import method_key
    from petl.bench.train import train

    method = method_key(args.method)
    method_options, settings = _train_overrides(args.overrides, method)
    train_options = settings | {
        k: v
        for k, v in {
            "epochs": args.epochs,
            "lr": args.lr,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "seed": args.seed,
            "num_threads": args.threads,
        }.items()
        if v is not None
    }
    if args.tensorboard:
        train_options.update(
            log_with="tensorboard", log_dir=os.path.join(args.output, "tensorboard")
        )
    info = train(
        args.data,
        args.output,
        model=args.model,
        task=args.task,
        method=method,
        method_options=method_options,
        train_options=train_options,
        max_train=args.max_train,
        max_test=args.max_test,
        progress=not args.no_progress,
        classes=args.classes,
        test=args.test,
        text_column=args.text_column,
        label_column=args.label_column,
        dry_run=args.dry_run,
    )
    if args.dry_run:
        print(json.dumps(info, indent=2))
        return 0
    print(
        json.dumps(
            {
                k: info[k]
                for k in (
                    "task",
                    "labels",
                    "method",
                    "test_accuracy",
                    "exported_test_accuracy",
                    "trainable_params",
                    "wall_time_s",
                )
            },
            indent=2,
        )
    )
    print(f"Adapter saved in {args.output}")
    if "warning" in info:
        print(f"warning: {info['warning']}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from petl.bench.report import format_table, write_report

    report = write_report(args.dir)
    print(format_table(report["runs"]))
    print(
        f"\nReport: {args.dir}/report.md ({report['cells_finished']}/{report['cells_total']} cells)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `petl` command; returns the exit status."""
    from petl.errors import PetlError

    args = _parser().parse_args(argv)
    handler = {"bench": cmd_bench, "train": cmd_train, "report": cmd_report}[args.command]
    try:
        return handler(args)
    except PetlError as err:
        print(f"petl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\npetl {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `petl bench --dry-run | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
