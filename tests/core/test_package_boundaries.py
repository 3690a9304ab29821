"""Core imports no feature package and no top-level process module: packages plug into core.

``core/packages.py`` alone names the packages, as strings it hands to importlib; everything
else a package adds (file kinds, checks, handlers, jobs, CLI) it registers from its wiring.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "core"
FORBIDDEN = frozenset({"loyalty", "coupons", "notifications", "campaigns", "worker", "scheduler"})
# The CLI's `worker` and `scheduler` commands start those processes; core/cli/engine.py is not
# this change's to edit. Each entry must still be needed (the test below fails when it is not),
# so the list only ever shrinks: both commands can take what they need from core.processes.
KNOWN_EXCEPTIONS = {"core/cli/engine.py": frozenset({"worker", "scheduler"})}


def imported_roots(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an ``import`` or ``from … import`` names (at any depth), by top package."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def offenders() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(CORE.rglob("*.py")):
        name = path.relative_to(CORE.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=name)
        bad = [f"{root} (line {line})" for line, root in imported_roots(tree) if root in FORBIDDEN]
        if bad:
            found[name] = bad
    return found


def test_no_core_module_imports_a_feature_package_or_a_process_module() -> None:
    unexpected = {
        name: [entry for entry in bad if entry.split()[0] not in KNOWN_EXCEPTIONS.get(name, ())]
        for name, bad in offenders().items()
    }
    assert {name: bad for name, bad in unexpected.items() if bad} == {}


def test_every_known_exception_is_still_needed() -> None:
    found = offenders()
    for name, roots in KNOWN_EXCEPTIONS.items():
        still = {entry.split()[0] for entry in found.get(name, [])}
        assert still == roots, f"{name} no longer imports {sorted(roots - still)}: drop it above"


@pytest.mark.parametrize(
    ("source", "roots"),
    [
        ("import loyalty.ledger", ["loyalty"]),
        ("from coupons.definitions import CouponsFile", ["coupons"]),
        ("def f():\n    import worker\n", ["worker"]),
        ("def f():\n    from scheduler import build_jobs\n", ["scheduler"]),
        ("from . import sibling", []),
        ("import importlib\nimportlib.import_module('campaigns.wiring')", ["importlib"]),
    ],
)
def test_imports_are_found_at_module_level_and_inside_functions(
    source: str, roots: list[str]
) -> None:
    assert [root for _, root in imported_roots(ast.parse(source))] == roots
