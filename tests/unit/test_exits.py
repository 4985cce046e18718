"""Exit codes live in one place, lvsha/exits.py (sysexits.h values; 78 = config)."""

from __future__ import annotations

import ast
from pathlib import Path

from lvsha import exits

ROOT = Path(__file__).resolve().parents[2]
SYSEXITS = {"EX_USAGE": 64, "EX_UNAVAILABLE": 69, "EX_CANTCREAT": 73, "EX_NOPERM": 77}


def test_the_values_are_sysexits() -> None:
    assert (exits.EX_OK, exits.EX_FAILURE, exits.EX_CONFIG) == (0, 1, 78)
    assert {name: getattr(exits, name) for name in SYSEXITS} == SYSEXITS


def test_no_other_module_defines_an_exit_code() -> None:
    found = []
    for path in sorted((ROOT / "lvsha").rglob("*.py")):
        if path.name == "exits.py":
            continue
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Name) and target.id.startswith("EX_"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {target.id}")
    assert found == []


def test_commands_return_named_exit_codes() -> None:
    """`main*` of cli and the tools return names from lvsha.exits, never bare numbers."""
    found = []
    for path in [ROOT / "lvsha" / "cli.py", *sorted((ROOT / "lvsha" / "tools").rglob("*.py"))]:
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith(("main", "exit_")):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
