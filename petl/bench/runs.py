"""The runs of a `petl bench` config: the [grid] and [[runs]] tables, their expansion into
`RunSpec`s and `Cell`s (run x seed), and the lookups in petl's registries (methods,
strategies, TrainConfig) that check a run's names and options."""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

from petl.bench.schema import choice, load_table, spec, unknown_keys
from petl.errors import ConfigError

FULL_FINE_TUNING = ("none", "full")
# TrainConfig fields the runner sets itself: seeds, num_threads, progress (--no-progress).
RUNNER_SETTINGS = {
    "seed": "the top-level `seeds`",
    "num_threads": "the top-level `num_threads`",
    "progress": "--no-progress",
}


# ---- lookups in the registries -------------------------------------------------------------
def method_key(method: Any) -> str | None:
    """The registry name of a method, None for full fine-tuning."""
    if method is None or (isinstance(method, str) and method.lower() in FULL_FINE_TUNING):
        return None
    from petl.methods import get_method

    return get_method(str(method)).name


def method_choices() -> list[str]:
    from petl.methods import METHODS

    return [*METHODS, "none"]


def valid_method_options(method: str) -> list[str]:
    from petl.methods import METHODS
    from petl.methods.peft_methods import valid_options

    entry = METHODS[method]
    if entry.native_config is not None:
        return sorted(f.name for f in dataclasses.fields(entry.native_config))
    return valid_options(method)


def strategy_options(name: str) -> list[str]:
    from petl.strategies import STRATEGIES

    return init_options(STRATEGIES[name])


def init_options(cls: type) -> list[str]:
    params = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    return [
        p
        for p, v in params.items()
        if p != "self" and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)
    ]


def train_settings() -> list[str]:
    from petl.training.config import TrainConfig

    return [f.name for f in dataclasses.fields(TrainConfig) if f.name not in RUNNER_SETTINGS]


def build_strategy(where: str, name: str, options: dict[str, Any]) -> Any:
    """The strategy `name` built with `options`; a bad option names `where`."""
    from petl.strategies import STRATEGIES

    try:
        return STRATEGIES[name](**options)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    except TypeError as err:
        valid = ", ".join(strategy_options(name))
        raise ConfigError(f"{where}: {err}. Valid options: {valid}.") from None


def check_train(where: str, train: dict[str, Any]) -> dict[str, Any]:
    from petl.training.config import TrainConfig

    for key, instead in RUNNER_SETTINGS.items():
        if key in train:
            raise ConfigError(f"{where}.{key} is set by the runner: use {instead} instead.")
    unknown_keys(where, train, train_settings())
    try:
        TrainConfig.from_dict(train)
    except (ConfigError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from None
    return train


def nonempty(what: str) -> Any:
    """A field check refusing an empty list, described as `what`."""

    def check(where: str, value: list[Any]) -> list[Any]:
        if not value:
            raise ConfigError(f"{where} must be {what}, got {value!r}.")
        return value

    return check


@dataclass
class Grid:
    """[grid]: every method crossed with every strategy combination."""

    methods: list[Any] = spec(
        factory=lambda: ["lora"], check=nonempty("a non-empty list of method names")
    )
    strategies: list[Any] = spec(
        factory=lambda: [[]],
        check=nonempty('a non-empty list of strategy lists, e.g. [[], ["ewc"]]'),
    )


@dataclass
class RunTable:
    """One [[runs]] table (checked, before its names are looked up)."""

    method: Any = spec(
        hint=lambda: (
            'give a method name or "none" (full fine-tuning). Valid methods: '
            + ", ".join(method_choices())
            + "."
        )
    )
    name: str | None = None
    method_options: dict[str, Any] = spec(factory=dict)
    strategies: list[Any] | str | None = None
    train: dict[str, Any] = spec(factory=dict)


@dataclass
class RunSpec:
    """One line of the benchmark: a method (None = full fine-tuning) and its strategies."""

    name: str
    method: str | None
    method_options: dict[str, Any] = field(default_factory=dict)
    strategies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    train: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.method or 'full'} / {'+'.join(n for n, _ in self.strategies) or 'naive'}"


@dataclass
class Cell:
    """One training run of the benchmark: a run at one seed."""

    run: RunSpec
    seed: int

    @property
    def key(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.run.name).strip("-").lower() or "run"
        return f"{slug}-seed{self.seed}"


def _parse_strategies(where: str, value: Any) -> list[tuple[str, dict[str, Any]]]:
    from petl.strategies import STRATEGIES

    items = [value] if isinstance(value, str) else [] if value is None else value
    if not isinstance(items, list):
        raise ConfigError(f"{where} must be a list of strategy names or tables, got {value!r}.")
    out: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            name, options = item, {}
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            name, options = item["name"], {k: v for k, v in item.items() if k != "name"}
        else:
            raise ConfigError(
                f"{where}[{i}] must be a strategy name or a table with `name`, got {item!r}."
            )
        choice(f"{where}[{i}]", name, STRATEGIES, "strategy")
        unknown_keys(f"{where}[{i}] ({name})", options, strategy_options(name))
        if name != "naive":
            out.append((name, options))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: each strategy may appear once, got {names}.")
    return out


def _method(where: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f'{where} must be a method name or "none", got {value!r}.')
    try:
        return method_key(value)
    except ConfigError:
        choice(where, value, method_choices(), "method")
        raise


def _run_name(method: str | None, strategies: list[tuple[str, dict[str, Any]]]) -> str:
    return "+".join([method or "full", *(n for n, _ in strategies)])


def grid_runs(grid: Grid | None) -> list[RunSpec]:
    runs = []
    for i, m in enumerate(grid.methods if grid else []):
        method = _method(f"grid.methods[{i}]", m)
        for j, combo in enumerate(grid.strategies if grid else []):
            strategies = _parse_strategies(f"grid.strategies[{j}]", combo)
            runs.append(RunSpec(_run_name(method, strategies), method, {}, strategies))
    return runs


def explicit_runs(runs: list[Any]) -> list[RunSpec]:
    out = []
    for i, table in enumerate(runs):
        where = f"runs[{i}]"
        run = load_table(RunTable, table, where)
        method = _method(f"{where}.method", run.method)
        strategies = _parse_strategies(f"{where}.strategies", run.strategies)
        if method is None and run.method_options:
            raise ConfigError(f"{where}.method_options: full fine-tuning takes no options.")
        if method is not None:
            unknown_keys(
                f"{where}.method_options", run.method_options, valid_method_options(method)
            )
        train = check_train(f"{where}.train", run.train)
        name = run.name if run.name is not None else _run_name(method, strategies)
        out.append(RunSpec(name, method, dict(run.method_options), strategies, dict(train)))
    return out


def finish_run(
    run: RunSpec, method_defaults: dict[str, Any], strategy_defaults: dict[str, Any]
) -> None:
    """Merges the per-method and per-strategy defaults into a run and checks that every
    strategy can be built with its options and accepts the run's method."""
    from petl.strategies import STRATEGIES

    if run.method is not None:
        defaults: dict[str, Any] = next(
            (v for k, v in method_defaults.items() if method_key(k) == run.method), {}
        )
        run.method_options = {**defaults, **run.method_options}
    merged = []
    for name, options in run.strategies:
        check_method = getattr(STRATEGIES[name], "check_method", None)
        if check_method is not None:  # e.g. O-LoRA needs plain LoRA layers
            try:
                check_method(run.method)
            except ConfigError as err:
                raise ConfigError(f"run {run.name!r}: {err}") from None
        options = {**strategy_defaults.get(name, {}), **options}
        build_strategy(f"run {run.name!r}, strategy {name!r}", name, options)
        merged.append((name, options))
    run.strategies = merged
