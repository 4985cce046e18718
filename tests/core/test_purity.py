"""lvsha/core stays pure: it imports only pure standard-library modules.

DESIGN.md's rule: the core never reads a clock, a socket or the kernel. Every
file under lvsha/core is parsed with `ast` (not imported, so a forbidden
import cannot run) and each import checked against an allowlist.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "lvsha" / "core"

ALLOWED = frozenset(
    {
        "__future__",
        "abc",
        "bisect",
        "collections",
        "collections.abc",
        "dataclasses",
        "difflib",
        "enum",
        "functools",
        "heapq",
        "ipaddress",
        "itertools",
        "math",
        "operator",
        "struct",
        "typing",
        "lvsha.errors",
    }
)

# Named outright so that a widened allowlist cannot let them in.
FORBIDDEN = frozenset(
    {
        "asyncio",
        "socket",
        "time",
        "random",
        "os",
        "subprocess",
        "select",
        "selectors",
        "pyroute2",
        "threading",
        "multiprocessing",
        "signal",
        "datetime",
        "importlib",
        "ctypes",
        "fcntl",
        "pathlib",
        "io",
        "sys",
        "logging",
    }
)

# Builtins that reach the outside world or import by name.
FORBIDDEN_CALLS = frozenset({"open", "__import__", "exec", "eval", "input", "print"})


def _is_allowed(module: str) -> bool:
    top = module.split(".")[0]
    if top in FORBIDDEN or module in FORBIDDEN:
        return False
    return module in ALLOWED or module == "lvsha.core" or module.startswith("lvsha.core.")


def _type_checking_block(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` bodies never run; annotations may name any module."""
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    nodes: list[ast.AST] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child):
                assert isinstance(child, ast.If)
                pending.extend(child.orelse)
            else:
                pending.append(child)
    return nodes


def impurities(source: str, package: str = "lvsha.core") -> list[str]:
    """Every import or call in `source` that the core may not make at run time."""
    problems: list[str] = []
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts)
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # `from lvsha import errors` imports the module lvsha.errors.
            names = [
                module if _is_allowed(module) else f"{module}.{alias.name}" for alias in node.names
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_CALLS
        ):
            problems.append(f"line {node.lineno}: calls {node.func.id}()")
            continue
        else:
            continue
        problems += [f"line {node.lineno}: imports {n}" for n in names if not _is_allowed(n)]
    return problems


def config_imports(source: str, package: str = "lvsha.core") -> list[str]:
    """Every import of lvsha.config, anywhere, TYPE_CHECKING blocks included.

    The core owns its input types (Protocols in desired.py and health.py);
    config imports core, never the other way, not even for an annotation.
    """
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            modules = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        if any(m == "lvsha.config" or m.startswith("lvsha.config.") for m in modules):
            found.append(f"line {node.lineno}: imports lvsha.config")
    return found


CORE_FILES = sorted(CORE.rglob("*.py"))


def test_core_files_are_found() -> None:
    names = {p.name for p in CORE_FILES}
    assert {"__init__.py", "packet.py", "vrrp.py"} <= names


@pytest.mark.parametrize("path", CORE_FILES, ids=[str(p.relative_to(CORE)) for p in CORE_FILES])
def test_core_module_is_pure(path: Path) -> None:
    assert impurities(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", CORE_FILES, ids=[str(p.relative_to(CORE)) for p in CORE_FILES])
def test_core_module_does_not_import_config(path: Path) -> None:
    assert config_imports(path.read_text(encoding="utf-8")) == []


def test_importing_the_whole_core_loads_no_config_module() -> None:
    """The same rule at run time, in a fresh interpreter: nothing pulls lvsha.config in."""
    modules = [f"lvsha.core.{p.stem}" for p in CORE_FILES if p.stem != "__init__"]
    code = (
        f"import sys, {', '.join(modules)}\n"
        "print(sorted(m for m in sys.modules if m.startswith('lvsha.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = ast.literal_eval(out.stdout)
    assert loaded and not [m for m in loaded if m.startswith("lvsha.config")], loaded


@pytest.mark.parametrize(
    "source",
    [
        "import lvsha.config",
        "import lvsha.config.model",
        "from lvsha import config",
        "from lvsha.config import VirtualServerConfig",
        "from lvsha.config.model import Config",
        "from .. import config",
        "from ..config import Config",
        "from ..config.limits import PORT",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lvsha.config import C",
        "import typing\nif typing.TYPE_CHECKING:\n    import lvsha.config as c",
        "def f():\n    from lvsha.config import parse_config",
    ],
)
def test_config_checker_catches(source: str) -> None:
    assert config_imports(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "from lvsha.core.desired import ServiceKey",
        "from . import desired",
        "from lvsha import errors",
        "from lvsha.configuration import X",  # a prefix, not the package
        "import config",
    ],
)
def test_config_checker_allows(source: str) -> None:
    assert config_imports(source) == []


def test_allowlist_and_forbidden_list_do_not_overlap() -> None:
    assert not {m.split(".")[0] for m in ALLOWED} & FORBIDDEN


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import socket",
        "import time",
        "from time import monotonic",
        "import random",
        "import os.path",
        "import subprocess",
        "from select import epoll",
        "import pyroute2",
        "from pyroute2 import AsyncIPRoute",
        "import threading",
        "import json",  # pure, but not on the allowlist
        "from lvsha import config",
        "from lvsha.adapters import arp",
        "import lvsha.daemon",
        "from .. import daemon",
        "from ..adapters.arp import GratuitousArp",
        "def f():\n    import socket",
        "try:\n    import time\nexcept ImportError:\n    pass",
        "open('/proc/net/dev')",
        "__import__('socket')",
        "if TYPE_CHECKING:\n    pass\nelse:\n    import socket",
    ],
)
def test_checker_catches(source: str) -> None:
    assert impurities(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations",
        "import struct, ipaddress",
        "from collections.abc import Iterable",
        "from collections import Counter",
        "from lvsha.errors import PacketError",
        "from lvsha import errors",
        "from lvsha.core.packet import Advertisement",
        "from . import packet",
        "from .packet import decode_advertisement",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from asyncio import Future",
    ],
)
def test_checker_allows(source: str) -> None:
    assert impurities(source) == []
