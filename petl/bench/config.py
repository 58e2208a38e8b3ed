"""The `petl bench` configuration: its schema as dataclasses (checked by the one generic
loader of petl.bench.schema), loading (TOML or YAML) and the grid of cells (run x seed).

A config is a table of these keys (all optional; `petl bench` with no file uses the
shipped petl/configs/default.toml):

    name, description        label of the benchmark (name also names the output folder)
    output_dir               where the report goes (default reports/<name>)
    seeds                    list of seeds, or a count n meaning 0..n-1
    num_threads, workers     torch CPU threads per worker; cells trained at once
    keep_checkpoints         keep each cell's checkpoint folder after it finishes
    family                   "classification" (default), "tokens" or "generation", or a
                             table {name = ..., <the family's options>}
    [model]    path          "minilm", "smollm2", a local folder or a hub name
    [stream]                 source = offline | dir | files | hub and its options
                             (petl.bench.data: one dataclass per source)
    [train]                  petl.TrainConfig settings shared by every run
    [methods.<m>]            default options of method m, for every run that uses it
    [strategies.<s>]         default options of strategy s, for every run that uses it
    [grid]                   methods x strategies, crossed into runs
    [[runs]]                 explicit runs: name, method, method_options, strategies, train
    [smoke]                  a partial config merged over this one by `petl bench --smoke`

Every check happens when the config is loaded, before any model is built, and every error
names the offending key and the valid choices.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from petl.bench.data import StreamSource, stream_source
from petl.bench.runs import (
    Cell,
    Grid,
    RunSpec,
    RunTable,
    build_strategy,
    check_train,
    explicit_runs,
    finish_run,
    grid_runs,
    init_options,
    method_choices,
    method_key,
    strategy_options,
    valid_method_options,
)
from petl.bench.schema import (
    apply_overrides,
    choice,
    load_table,
    read_file,
    resolve_path,
    shipped_configs,
    spec,
    unknown_keys,
)
from petl.errors import ConfigError

__all__ = [
    "BenchConfig",
    "Cell",
    "RunSpec",
    "RunTable",
    "apply_overrides",
    "load",
    "method_key",
    "read_file",
    "resolve_path",
    "shipped_configs",
    "validate",
]
DEFAULT_SMOKE = {"stream": {"max_train": 16, "max_test": 16}, "train": {"epochs": 1}}


# ---- the schema ----------------------------------------------------------------------------
@dataclass
class FamilySpec:
    """The task family of every run (petl.families) and its options."""

    name: str = "classification"
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        from petl.families import get_family

        default = get_family(self.name, self.name)
        return type(default)(**self.options) if self.options else default


def _family(where: str, value: str | dict[str, Any]) -> FamilySpec:
    from petl.families import FAMILY_NAMES, get_family

    table = {"name": value} if isinstance(value, str) else dict(value)
    name = table.pop("name", "classification")
    choice(f"{where}.name" if isinstance(value, dict) else where, name, FAMILY_NAMES, "family")
    unknown_keys(
        where, {"name": name, **table}, ["name", *init_options(type(get_family(name, name)))]
    )
    family = FamilySpec(name, table)
    try:
        family.build()
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    return family


def _folder_name(where: str, name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
        raise ConfigError(
            f"name {name!r} must be a plain folder name (letters, digits, '_', '-', '.'; no "
            "'/' or '..'): it names the report folder inside reports/. Use output_dir= to "
            "write elsewhere."
        )
    return name


def _seeds(where: str, seeds: int | list[int]) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"seeds must be a positive count or a list of integers, got {seeds}.")
        seeds = list(range(seeds))
    if not seeds:
        raise ConfigError("seeds must be a positive count or a non-empty list of integers, got [].")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must not repeat, got {seeds}.")
    return seeds


def _method_defaults(where: str, methods: dict[str, Any]) -> dict[str, Any]:
    unknown_keys(where, methods, method_choices())
    for m, options in methods.items():
        if method_key(m) is None:
            raise ConfigError(f"{where}.{m}: full fine-tuning takes no options.")
        unknown_keys(f"{where}.{m}", options, valid_method_options(str(method_key(m))))
    return methods


def _strategy_defaults(where: str, strategies: dict[str, Any]) -> dict[str, Any]:
    from petl.strategies import STRATEGIES

    unknown_keys(where, strategies, STRATEGIES)
    for s, options in strategies.items():
        unknown_keys(f"{where}.{s}", options, strategy_options(s))
        build_strategy(f"{where}.{s}", s, options)
    return strategies


@dataclass
class ModelTable:
    path: str = spec("minilm", what='a string ("minilm", a local folder or a hub name)')


@dataclass
class Settings:
    """The keys of a config file (see the module docstring)."""

    name: str = spec("bench", check=_folder_name)
    description: str = ""
    output_dir: str | None = spec(None, what="a path")
    seeds: int | list[int] = spec(factory=lambda: [0], check=_seeds)
    num_threads: int = spec(1, minimum=1, what="a positive integer")
    workers: int = spec(1, minimum=1, what="a positive integer")
    keep_checkpoints: bool = False
    family: str | dict[str, Any] = spec("classification", check=_family)
    model: ModelTable = spec(factory=ModelTable)
    stream: dict[str, Any] = spec(factory=dict, check=stream_source)
    train: dict[str, Any] = spec(factory=dict, check=check_train)
    methods: dict[str, Any] = spec(factory=dict, check=_method_defaults)
    strategies: dict[str, Any] = spec(factory=dict, check=_strategy_defaults)
    grid: Grid | None = None
    runs: list[Any] = spec(factory=list, what="a list of tables ([[runs]] in TOML)")
    smoke: dict[str, Any] = spec(factory=dict)


@dataclass
class BenchConfig:
    """A validated benchmark configuration; `raw` is the dict it was read from (echoed
    into the report and used to resume)."""

    name: str
    description: str
    output_dir: str
    seeds: list[int]
    num_threads: int
    workers: int
    keep_checkpoints: bool
    model: str
    stream: StreamSource
    train: dict[str, Any]
    runs: list[RunSpec]
    raw: dict[str, Any]
    family: FamilySpec = field(default_factory=FamilySpec)

    def cells(self) -> list[Cell]:
        return [Cell(run, seed) for run in self.runs for seed in self.seeds]

    def train_config(self, run: RunSpec, seed: int, progress: bool = True) -> Any:
        from petl.training.config import TrainConfig

        merged = {**self.train, **run.train, "seed": seed, "num_threads": self.num_threads}
        return TrainConfig.from_dict({**merged, "progress": progress})


# ---- loading -------------------------------------------------------------------------------
def smoke_size(raw: dict[str, Any]) -> dict[str, Any]:
    """The CI-sized variant of a raw config: its `[smoke]` table (default DEFAULT_SMOKE)
    merged over it, the first seed only, and the report in `<output_dir>-smoke`."""
    out = {k: v for k, v in raw.items() if k != "smoke"}
    for section, values in (raw.get("smoke") or DEFAULT_SMOKE).items():
        both = isinstance(values, dict) and isinstance(out.get(section), dict)
        out[section] = {**out[section], **values} if both else values
    seeds = out.get("seeds", [0])
    out["seeds"] = seeds[:1] if isinstance(seeds, list) else [0]
    out["description"] = (
        "Smoke size (petl bench --smoke): a check of the pipeline, not results.\n"
        + str(out.get("description", ""))
    )
    name = out.get("name", "bench")
    out["output_dir"] = out.get("output_dir", os.path.join("reports", name)) + "-smoke"
    return out


def load(
    path: str | None = None, overrides: list[str] | None = None, smoke: bool = False
) -> BenchConfig:
    """Reads and validates a config file (default: the shipped default config), with
    `--set` overrides applied after the `--smoke` size when `smoke` is true."""
    raw = read_file(resolve_path(path or "default"))
    return validate(apply_overrides(smoke_size(raw) if smoke else raw, overrides or []))


# ---- validation ----------------------------------------------------------------------------
def validate(raw: dict[str, Any]) -> BenchConfig:
    """Checks every key and value of a raw config and returns the BenchConfig."""
    s = load_table(Settings, raw, "")
    runs = [*grid_runs(s.grid), *explicit_runs(s.runs)]
    if not runs:
        raise ConfigError("The config defines no runs: add [[runs]] tables or a [grid].")
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"Run names must be unique; repeated: {duplicates}. Give each run a name."
        )
    if len({Cell(r, 0).key for r in runs}) != len(runs):
        raise ConfigError(f"Run names {names} collide once turned into folder names; rename them.")
    for run in runs:
        finish_run(run, s.methods, s.strategies)
    s.stream.check_family(s.family.name)
    output_dir = s.output_dir or os.path.join("reports", s.name)
    config = BenchConfig(
        s.name, s.description, output_dir, s.seeds, s.num_threads, s.workers,
        s.keep_checkpoints, s.model.path, s.stream, s.train, runs,
        json.loads(json.dumps(raw)), s.family,
    )  # fmt: skip
    for run in runs:  # every merged training config must build
        try:
            config.train_config(run, config.seeds[0])
        except ConfigError as err:
            raise ConfigError(f"run {run.name!r}: {err}") from None
    return config
