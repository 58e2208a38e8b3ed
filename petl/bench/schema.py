"""One generic loader from config tables (TOML/YAML dicts) to dataclasses, and the one
KEY=VALUE override syntax of every `petl` command.

A config section is a plain dataclass; its field annotations are the types, its defaults
the defaults, and `field(metadata=...)` carries what a type cannot say:

    what     how the value is described in an error ("a positive integer")
    choices  the valid values (the error lists them, with a did-you-mean)
    minimum  the smallest valid number
    check    a function (where, value) -> value that raises ConfigError or normalises
    hint     text (or a function returning it) appended when a required key is missing

`load_table(cls, raw, where)` refuses unknown keys (naming the valid ones), missing
required keys and values of the wrong type (naming the key and what it must be), loads
nested dataclass fields recursively, and returns the instance.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from petl.errors import ConfigError, did_you_mean

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def unknown_keys(where: str, given: Any, valid: Iterable[str]) -> None:
    """Refuses a non-table, and any key of `given` not in `valid`, listing the valid keys."""
    valid = list(valid)
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


def choice(where: str, value: Any, choices: Iterable[str], kind: str) -> None:
    """Refuses a value outside `choices`, listing them."""
    choices = list(choices)
    if value not in choices:
        ending = "ies" if kind.endswith("y") else "es" if kind.endswith("s") else "s"
        plural = (kind[:-1] if kind.endswith("y") else kind) + ending
        raise ConfigError(
            f"{where}: unknown {kind} {value!r}.{did_you_mean(str(value), choices)} "
            f"Valid {plural}: {', '.join(sorted(choices))}."
        )


def matches(value: Any, tp: Any) -> bool:
    """Whether `value` (as read from TOML/YAML) fits the annotation `tp`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if tp is type(None):
        return value is None
    if isinstance(value, bool):  # bool is an int in Python, never in a config
        return tp is bool
    if tp is float:
        return isinstance(value, int | float)
    if origin is list:
        return isinstance(value, list) and all(matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(matches(v, args[1]) for v in value.values())
    if dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    return isinstance(value, tp)


def describe(tp: Any) -> str:
    """How an annotation reads in an error: "a string", "a list of strings", ..."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args if a is not type(None))
    if origin is list:
        return "a list of " + describe(args[0]).split(" ", 1)[1] + "s"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a table"
    return NAMES.get(tp, "a value")


def load_table(cls: Any, raw: Any, where: str) -> Any:
    """An instance of the dataclass `cls` from the table `raw`, every key and value
    checked (see the module docstring); `where` is the table's dotted name in errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown_keys(where, raw, fields)
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        meta = f.metadata
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                hint = meta.get("hint", "")
                hint = hint() if callable(hint) else hint
                raise ConfigError(f"{key} is missing{': ' + hint if hint else '.'}")
            factory: Any = f.default_factory
            default = factory() if f.default is dataclasses.MISSING else f.default
            if "check" in meta and default is not None:  # normalised like a given value
                values[name] = meta["check"](key, default)
            continue
        value = raw[name]
        what = meta.get("what") or describe(hints[name])
        if not matches(value, hints[name]):
            raise ConfigError(f"{key} must be {what}, got {value!r}.")
        if "choices" in meta:
            choice(key, value, meta["choices"], meta.get("kind", name))
        if "minimum" in meta and value < meta["minimum"]:
            raise ConfigError(f"{key} must be {what}, got {value!r}.")
        nested = [a for a in (hints[name], *typing.get_args(hints[name])) if _is_class(a)]
        if nested and isinstance(value, dict):
            value = load_table(nested[0], value, key)
        if "check" in meta:
            value = meta["check"](key, value)
        values[name] = value
    return cls(**values)


def _is_class(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp) and isinstance(tp, type)


def spec(
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    **metadata: Any,
) -> Any:
    """A dataclass field with loader metadata: `spec(1, minimum=1, what="...")`."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


# ---- reading config files ----------------------------------------------------------------
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
        if not isinstance(data, dict | None):
            raise ConfigError(f"{path}: a config must be a mapping at the top level.")
        return data or {}
    raise ConfigError(
        f"{path}: a config must be .toml, .yaml or .yml, got {ext or 'no extension'!r}."
    )


# ---- KEY=VALUE overrides ---------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A value as TOML reads it (`3`, `1e-3`, `"text"`, `[0, 1]`, `true`); else the text."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(
    raw: dict[str, Any], overrides: list[str], flag: str = "--set"
) -> dict[str, Any]:
    """A copy of `raw` with `KEY.PATH=VALUE` overrides applied (values by `parse_value`).
    The one override syntax of `petl bench --set` and `petl train --set`."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} needs KEY=VALUE (e.g. stream.data_dir=/data), got {item!r}.")
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{flag} {key}: {part!r} is not a table.")
        node[parts[-1]] = parse_value(text)
    return out
