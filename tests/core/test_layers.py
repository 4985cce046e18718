"""Imports point one way only: the layout of lvsha/ is the architecture.

    cli -> tools, runtime -> adapters -> config -> core -> base

`base` is errors, paths, logs, exits and the version; a module may import
its own layer and the layers below it, never above, also inside a function
or under TYPE_CHECKING (docs/architecture.md). Every module of lvsha must
belong to a layer: a new top-level module makes this test fail until it is
given one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lvsha"

LAYER_OF = {
    "__init__": "base",
    "__version__": "base",
    "errors": "base",
    "exits": "base",
    "paths": "base",
    "logs": "base",
    "core": "core",
    "config": "config",
    "adapters": "adapters",
    "runtime": "runtime",
    "tools": "tools",
    "cli": "cli",
}
BELOW = {
    "base": {"base"},
    "core": {"core", "base"},
    "config": {"config", "core", "base"},
    "adapters": {"adapters", "config", "core", "base"},
    "runtime": {"runtime", "adapters", "config", "core", "base"},
    "tools": {"tools", "adapters", "config", "core", "base"},
    "cli": {"cli", "tools", "runtime", "adapters", "config", "core", "base"},
}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def top_name(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, lvsha top-level name) of every lvsha import in the file, wherever it is."""
    tree = ast.parse(path.read_text(), str(path))
    own = path.relative_to(PACKAGE.parent).with_suffix("").parts
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = list(own[: len(own) - node.level])
                names = [".".join([*base, node.module or ""]).rstrip(".")]
            else:
                names = [node.module or ""]
            if names == ["lvsha"]:
                names = [f"lvsha.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "lvsha" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downwards(path: Path) -> None:
    layer = LAYER_OF.get(top_name(path))
    assert layer is not None, f"{path.name}: give lvsha.{top_name(path)} a layer in LAYER_OF"
    wrong = [
        f"line {line}: lvsha.{name} ({LAYER_OF.get(name, 'no layer')})"
        for line, name in imported(path)
        if LAYER_OF.get(name) not in BELOW[layer]
    ]
    assert not wrong, f"a {layer} module imports upwards: {wrong}"


def test_the_checker_sees_imports_inside_functions_and_type_checking(tmp_path: Path) -> None:
    fake = PACKAGE / "core" / "_probe_for_test.py"
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from lvsha.config import Config\n"
        "def f():\n    from ..runtime import daemon\n"
    )
    fake.write_text(source)
    try:
        assert [name for _, name in imported(fake)] == ["config", "runtime"]
    finally:
        fake.unlink()
