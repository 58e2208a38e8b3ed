"""Family-specific knowledge stays in petl/families: no module outside it compares a
family's name (it asks the family instead), and every family implements the whole
`Family` protocol (so the stream, loop and strategies never need to ask which it is)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from petl.families import FAMILY_NAMES, Family, family_named

ROOT = Path(__file__).resolve().parents[1] / "petl"


def _is_family_name(node: ast.AST) -> bool:
    text = ast.unparse(node)
    return text.endswith("family.name") or text == "family"


def _is_name_literal(node: ast.AST) -> bool:
    """A string, or a tuple/list/set of strings: a family's name written out."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return bool(node.elts) and all(_is_name_literal(e) for e in node.elts)
    return False


def family_name_comparisons(path: Path) -> list[str]:
    """`x.family.name == "..."` / `!=` / `in (...)`, and `family == "..."`, with lines."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(map(_is_family_name, sides)) and any(map(_is_name_literal, sides)):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_check_finds_a_family_name_branch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "if learner.family.name == 'generation':\n    pass\n"
        "if family in ('tokens', 'generation'):\n    pass\n"
        "ok = family.name\nok = family not in FAMILY_NAMES\n"
    )
    assert family_name_comparisons(bad) == [
        "bad.py:1: learner.family.name == 'generation'",
        "bad.py:3: family in ('tokens', 'generation')",
    ]


def test_no_family_name_branch_outside_families() -> None:
    families = ROOT / "families"
    found = [
        line
        for path in sorted(ROOT.rglob("*.py"))
        if families not in path.parents
        for line in family_name_comparisons(path)
    ]
    assert not found, "branches on a family's name (ask the family instead):\n" + "\n".join(found)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_family_implements_the_whole_protocol(name: str) -> None:
    family = family_named(name)
    assert isinstance(family, Family) and family.name == name
    members = [m for m in vars(Family) if not m.startswith("_")] + list(Family.__annotations__)
    missing = [m for m in members if not hasattr(family, m)]
    assert not missing, f"{name} lacks {missing}"
