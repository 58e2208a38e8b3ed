"""Token-classification records: BIO tags of entity types, records and CoNLL-style files
read into `TokenExample`s (the token family's data side; petl.families.tokens trains and
scores them)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from petl.errors import DataError
from petl.tasks import TokenExample

TOKEN_KEYS = ("tokens", "words")
TAG_KEYS = ("tags", "ner_tags", "labels")


def entity_type(tag: str) -> str | None:
    """'B-PER' -> 'PER'; 'O' -> None. Accepts IOB2 prefixes B-, I- (and E-, S- of IOBES)."""
    if tag == "O":
        return None
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES":
        return tag[2:]
    raise DataError(f"Tag {tag!r} is not a BIO tag (O, B-TYPE, I-TYPE).")


def bio_labels(types: Sequence[str]) -> list[str]:
    """The tags of a task annotating `types`: ["O", "B-T1", "I-T1", "B-T2", ...]."""
    return ["O", *[f"{p}-{t}" for t in types for p in ("B", "I")]]


def token_example(record: Mapping[str, Any] | TokenExample, where: str) -> TokenExample:
    if isinstance(record, TokenExample):
        return record
    tok_key = next((k for k in TOKEN_KEYS if k in record), None)
    tag_key = next((k for k in TAG_KEYS if k in record), None)
    if tok_key is None or tag_key is None:
        raise DataError(
            f"{where}: a token record needs 'tokens' and 'tags'; keys: {sorted(record)}."
        )
    tokens, tags = [str(t) for t in record[tok_key]], [str(t) for t in record[tag_key]]
    if len(tokens) != len(tags):
        raise DataError(f"{where}: {len(tokens)} tokens but {len(tags)} tags.")
    if not tokens:
        raise DataError(f"{where}: empty sentence.")
    for tag in tags:
        entity_type(tag)
    return TokenExample(tuple(tokens), tuple(tags))


def keep_types(example: TokenExample, types: set[str]) -> TokenExample:
    """The example with every tag of a type outside `types` replaced by "O"."""
    tags = tuple(t if entity_type(t) in types else "O" for t in example.tags)
    return TokenExample(example.tokens, tags)


def token_splits(name: str, spec: Mapping[str, Any]) -> tuple[dict[str, list[Any]], list[str]]:
    """Examples of a token task's splits and its tags (see `Stream.from_records`)."""
    splits: dict[str, list[Any]] = {
        k: [token_example(r, f"task {name!r} {k}[{i}]") for i, r in enumerate(spec.get(k) or [])]
        for k in ("train", "val", "test")
    }
    if spec.get("labels"):
        return splits, list(spec["labels"])
    types = list(spec.get("types") or [])
    if types:
        wanted = set(types)
        splits = {k: [keep_types(e, wanted) for e in v] for k, v in splits.items()}
    else:
        found = {entity_type(t) for v in splits.values() for e in v for t in e.tags}
        types = sorted(t for t in found if t is not None)
    return splits, bio_labels(types)


def read_token_file(path: str) -> list[dict[str, list[str]]]:
    """Sentences of a CoNLL column file (word first, tag last; blank lines between
    sentences; -DOCSTART- lines skipped) or of JSON lines / a JSON list of
    `{"tokens": [...], "tags": [...]}` (.json, .jsonl)."""
    if not os.path.exists(path):
        raise DataError(f"Data file {path!r} does not exist.")
    ext = os.path.splitext(path)[1].lower()
    if ext in (".json", ".jsonl"):
        with open(path) as f:
            text = f.read().strip()
        if text.startswith("["):
            return list(json.loads(text))
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    sentences: list[dict[str, list[str]]] = []
    tokens: list[str] = []
    tags: list[str] = []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                if tokens:
                    sentences.append({"tokens": tokens, "tags": tags})
                tokens, tags = [], []
                continue
            if len(parts) < 2:
                raise DataError(
                    f"{path}:{number}: a CoNLL line needs a word and a tag, got {line!r}."
                )
            tokens.append(parts[0])
            tags.append(parts[-1])
    if tokens:
        sentences.append({"tokens": tokens, "tags": tags})
    return sentences
