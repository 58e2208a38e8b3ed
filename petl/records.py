"""How raw records become petl examples: the label normalisation rule, text checks, and
JSON readers whose every error names the file.

Label rule (classification and generation answers):
    - strings are kept as they are ("pos", "1", "1.0" are three names);
    - integers and integral floats become their decimal string: 1, 1.0, np.int64(1) and
      "1" are all the class "1";
    - other floats become their shortest repr: 0.5 -> "0.5";
    - booleans become "True" / "False"; a task mixing booleans with numbers is refused,
      since Python holds True == 1 and the intent is ambiguous;
    - None, NaN and anything else (lists, dicts) are refused with a DataError.
Texts must be strings (numbers are written as str); None and NaN texts are refused."""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Iterable
from typing import Any

from petl.errors import DataError


def label_name(value: Any, where: str) -> str:
    """The class name of a raw label under the rule above.

    Raises:
        DataError: None, NaN or a non-scalar label, naming `where`.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise DataError(f"{where}: label is {number}; give every example a real label.")
        return str(int(number)) if number.is_integer() else repr(number)
    raise DataError(
        f"{where}: label {value!r} ({type(value).__name__}) is not a string or a number"
        + ("; every example needs a label." if value is None else ".")
    )


def text_value(value: Any, where: str, key: str = "text") -> str:
    """A record's text as a string; None/NaN refused (they would become "None"/"nan")."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise DataError(f"{where}: {key!r} is {value!r}; every example needs a text.")
    if isinstance(value, numbers.Number):
        return str(value)
    raise DataError(f"{where}: {key!r} must be a string, got {type(value).__name__}.")


def check_label_kinds(values: Iterable[Any], where: str) -> None:
    """Refuses booleans mixed with numbers among one task's raw labels."""
    kinds = {
        "bool" if isinstance(v, bool) else "number"
        for v in values
        if isinstance(v, numbers.Real) and not isinstance(v, str)
    }
    if kinds == {"bool", "number"}:
        raise DataError(
            f"{where}: labels mix booleans and numbers (True == 1 in Python, so which class "
            "is meant is ambiguous). Use one kind, e.g. 0/1 or strings."
        )


def label_list(value: Any, where: str) -> list[str]:
    """A task's declared label set (`labels` / labels.json): a list of unique names."""
    if not isinstance(value, list | tuple):
        raise DataError(
            f"{where}: labels must be a list of label names, got {type(value).__name__} "
            f'{value!r}. Write e.g. ["neg", "pos"].'
        )
    names = [label_name(v, where) for v in value]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"{where}: labels {repeated} appear more than once; list each once.")
    return names


def read_json(path: str) -> Any:
    """`json.load` of a file; empty, non-UTF-8 or malformed files raise a DataError naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8 text (byte {err.start}); save it as UTF-8 JSON."
        ) from None
    except OSError as err:
        raise DataError(f"Cannot read {path}: {err.strerror or err}.") from None
    if not text.strip():
        raise DataError(f"{path} is empty; it should hold JSON.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}."
        ) from None


def read_records(path: str) -> list[dict[str, Any]]:
    """Records of a .json (a list) or .jsonl (one object a line) file."""
    if not os.path.isfile(path):
        raise DataError(f"Data file {path!r} does not exist.")
    if path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            try:
                rows = [json.loads(line) for line in f if line.strip()]
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: not valid JSON lines: {err}") from None
    else:
        rows = read_json(path)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataError(f"{path} must hold a list of records (JSON objects).")
    return rows
