"""RELIABILITY.md's claims name their tests: each test file and test it names exists, and
the counts it gives of the property tests and of the enumerated routes are the real ones.
(Issue 17: it said "18 properties" where 11 were; names drift as tests are renamed.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEXT = (REPO / "RELIABILITY.md").read_text()

# `tests/x/test_y.py::name` in full, or `test_y.py::name` (then under tests/security/, as in
# the "Many tenants" section, or anywhere under tests/ when the name is unique).
_NAMED = re.compile(r"(?<![\w/])((?:tests/[\w/]+/)?test_\w+\.py)(?:::(\w+))?")


def _test_file(name: str) -> Path:
    if name.startswith("tests/"):
        return REPO / name
    found = sorted((REPO / "tests").rglob(name))
    assert len(found) == 1, f"RELIABILITY.md names {name}: found {found}"
    return found[0]


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def test_every_test_reliability_md_names_exists() -> None:
    """Planted bug: a renamed test (`test_sigterm_finishes_or_releases_in_flight_work` →
    `…_work2`) left named in RELIABILITY.md fails here."""
    named = _NAMED.findall(TEXT)
    assert len(named) >= 25, named
    missing = []
    for file_name, function in named:
        path = _test_file(file_name)
        if not path.is_file():
            missing.append(file_name)
        elif function and function not in _functions(path):
            missing.append(f"{file_name}::{function}")
    assert missing == [], missing


def _uses_given(node: ast.AST) -> bool:
    return any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "given"
        for n in ast.walk(node)
        if isinstance(n, ast.FunctionDef)
        for d in n.decorator_list
    )


def test_the_property_count_is_the_number_of_hypothesis_tests() -> None:
    """A property is a test that runs hypothesis (`@given` on it or on a function inside
    it). Planted bug: the old "18 properties" (13 are) fails here."""
    tree = ast.parse((REPO / "tests/unit/test_properties.py").read_text())
    properties = [
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and n.name.startswith("test_") and _uses_given(n)
    ]
    claimed = re.search(r"test_properties\.py` \(hypothesis, (\d+) properties[;)]", TEXT)
    assert claimed, "RELIABILITY.md no longer says how many properties"
    assert int(claimed[1]) == len(properties), properties
