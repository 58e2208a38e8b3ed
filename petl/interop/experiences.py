"""The records of an avalanche-lib benchmark, as `Stream.from_records` reads them.

Avalanche (https://avalanche.continualai.org) describes a benchmark as a train stream and a
test stream of *experiences*; each experience has a dataset whose items are
`(x, y, t, ...)`: input, class id, task label. `stream_from_benchmark` turns experience i
into petl task i: x becomes text through `to_text`, the class id becomes a label name
through `label_names`. avalanche itself is imported only when the function is called.
`petl.interop.avalanche.stream_from_benchmark` (and `Stream.from_avalanche`) build the
stream from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from petl.errors import ConfigError, DataError
from petl.tasks import Example

LabelNames = Sequence[str] | Mapping[int, str] | Callable[[int], str]
TextPair = tuple[str, str]


def _require_avalanche() -> None:
    try:
        import avalanche  # noqa: F401  (already imported when a benchmark was built)
    except ImportError as exc:
        raise ConfigError(
            "Reading an avalanche benchmark needs avalanche-lib: pip install petl[avalanche] "
            f"(import failed: {exc})."
        ) from exc


def _attr(obj: Any, name: str) -> Any:
    # Avalanche masks some experience attributes with MaskedAttributeError (a ValueError).
    try:
        return getattr(obj, name, None)
    except (AttributeError, ValueError):
        return None


def _class_id(y: Any, where: str) -> int:
    if hasattr(y, "item") and callable(y.item):  # a 0-d tensor or numpy scalar
        y = y.item()
    if isinstance(y, bool) or not isinstance(y, int):
        raise DataError(
            f"{where}: the target {y!r} is not an integer class id. petl reads classification "
            "benchmarks: every item must be (x, class id, task label, ...)."
        )
    return y


def _label_namer(label_names: LabelNames | None) -> Callable[[int], str]:
    if label_names is None:
        return str
    if callable(label_names) and not isinstance(label_names, (Sequence, Mapping)):
        namer = label_names
        return lambda c: str(namer(c))
    names = label_names

    def lookup(c: int) -> str:
        try:
            return str(names[c])  # type: ignore[index]
        except (IndexError, KeyError):
            size = f"{len(names)} names" if isinstance(names, Sequence) else "a mapping"
            raise DataError(
                f"label_names has no name for class id {c} ({size}); give one for every class "
                "of the benchmark, or a callable class id -> name."
            ) from None

    return lookup


def _experience_classes(benchmark: Any, exp: Any, i: int) -> list[int] | None:
    """The classes avalanche says experience i of the train stream holds, if it says."""
    by_stream = _attr(benchmark, "classes_in_experience")
    if by_stream is not None:
        try:
            return sorted(int(c) for c in by_stream["train"][i])
        except (KeyError, IndexError, TypeError, ValueError):
            pass
    own = _attr(exp, "classes_in_this_experience")
    return sorted(int(c) for c in own) if own is not None else None


def _experiences(benchmark: Any, side: str) -> list[Any]:
    stream = _attr(benchmark, f"{side}_stream")
    if stream is None:
        raise DataError(
            f"{type(benchmark).__name__} has no {side}_stream: pass an avalanche benchmark "
            "(e.g. from benchmark_from_datasets(train=[...], test=[...]) or nc_benchmark)."
        )
    exps = list(stream)
    if not exps:
        raise DataError(f"The benchmark's {side}_stream has no experiences.")
    return exps


def _read(
    exp: Any,
    where: str,
    to_text: Callable[[Any], str | TextPair] | None,
    namer: Callable[[int], str],
) -> tuple[list[Example], list[int]]:
    data = _attr(exp, "dataset")
    if data is None:
        raise DataError(f"{where} has no dataset.")
    if hasattr(data, "eval") and callable(data.eval):
        data = data.eval()  # the eval transforms: no random augmentation while converting
    examples, classes = [], []
    for k in range(len(data)):
        item = data[k]
        at = f"{where} item {k}"
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise DataError(f"{at}: expected (x, y, task label, ...), got {type(item).__name__}.")
        x, c = item[0], _class_id(item[1], at)
        if to_text is not None:
            text = to_text(x)
        elif isinstance(x, str):
            text = x
        else:
            raise DataError(
                f"{at}: x is a {type(x).__name__}, not text. petl trains on text: pass "
                "to_text=, a function from x to a string (or a (text, text_pair) tuple), "
                "e.g. to_text=lambda ids: tokenizer.decode(ids)."
            )
        if isinstance(text, tuple) and len(text) == 2:
            examples.append(Example(str(text[0]), namer(c), str(text[1])))
        elif isinstance(text, str):
            examples.append(Example(text, namer(c)))
        else:
            raise DataError(f"{at}: to_text returned a {type(text).__name__}, not a str.")
        classes.append(c)
    return examples, classes


def _split_test_by_class(
    test: list[tuple[Example, int]], train_classes: list[list[int]]
) -> list[list[Example]]:
    owner: dict[int, int] = {}
    for i, classes in enumerate(train_classes):
        for c in classes:
            if owner.setdefault(c, i) != i:
                raise DataError(
                    "The benchmark has one test experience for several train experiences, and "
                    f"class {c} is in train experiences {owner[c]} and {i}: petl cannot tell "
                    "which task a test example belongs to. Give one test experience per train "
                    "experience."
                )
    out: list[list[Example]] = [[] for _ in train_classes]
    for example, c in test:
        if c not in owner:
            raise DataError(f"Test class {c} is in no train experience.")
        out[owner[c]].append(example)
    return out


def benchmark_records(
    benchmark: Any,
    to_text: Callable[[Any], str | TextPair] | None = None,
    label_names: LabelNames | None = None,
) -> dict[str, dict[str, Any]]:
    """`{task: {"train": [...], "test": [...], "labels": [...]}}` of a benchmark's
    experiences (see `petl.interop.avalanche.stream_from_benchmark`)."""
    _require_avalanche()
    namer = _label_namer(label_names)
    train_exps = _experiences(benchmark, "train")
    test_exps = _experiences(benchmark, "test")
    if len(test_exps) not in (1, len(train_exps)):
        raise DataError(
            f"The benchmark has {len(train_exps)} train experiences but {len(test_exps)} test "
            "experiences: petl needs one test experience per train experience (or one for all)."
        )
    names: list[str] = []
    train: list[list[Example]] = []
    classes: list[list[int]] = []
    for i, exp in enumerate(train_exps):
        name = _attr(exp, "name")
        names.append(str(name) if name else f"exp{i}")
        examples, found = _read(exp, f"train experience {i}", to_text, namer)
        train.append(examples)
        declared = _experience_classes(benchmark, exp, i)
        classes.append(sorted(set(declared or []) | set(found)))
    if len(test_exps) == len(train_exps):
        test = []
        for i, exp in enumerate(test_exps):
            examples, found = _read(exp, f"test experience {i}", to_text, namer)
            test.append(examples)
            classes[i] = sorted(set(classes[i]) | set(found))
    else:
        examples, found = _read(test_exps[0], "test experience 0", to_text, namer)
        test = _split_test_by_class(list(zip(examples, found, strict=True)), classes)
    if len(set(names)) != len(names):
        raise DataError(f"The benchmark's experiences have repeated names: {names}.")
    records: dict[str, dict[str, Any]] = {}
    for name, tr, te, cs in zip(names, train, test, classes, strict=True):
        labels = _unique([namer(c) for c in cs], name)
        records[name] = {"train": tr, "test": te, "labels": labels}
    return records


def _unique(labels: Iterable[str], task: str) -> list[str]:
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise DataError(
            f"Task {task!r}: label_names gives the same name to different class ids: {labels}."
        )
    return labels
