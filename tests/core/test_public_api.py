"""The public API: every exported name resolves, type checkers see the same names, and importing
Routoo or its adapters loads neither litellm nor torch (they load when first needed)."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import routoo

HEAVY = ("litellm", "torch", "transformers")


def type_checking_imports() -> dict[str, str]:
    """Name -> module of the imports under ``if TYPE_CHECKING:`` in routoo/__init__.py."""
    tree = ast.parse(Path(routoo.__file__).read_text())
    blocks = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    ]
    assert len(blocks) == 1
    imported = {}
    for statement in blocks[0].body:
        assert isinstance(statement, ast.ImportFrom) and statement.module, ast.dump(statement)
        for alias in statement.names:
            assert alias.asname is None, alias.name  # an export keeps its name
            imported[alias.name] = statement.module
    return imported


def test_type_checkers_see_exactly_the_names_of_all_from_their_modules() -> None:
    imported = type_checking_imports()
    assert sorted(imported) == sorted(routoo.__all__)
    assert len(set(routoo.__all__)) == len(routoo.__all__)
    assert imported == routoo._MODULE_OF


@pytest.mark.parametrize("name", routoo.__all__)
def test_every_exported_name_resolves_to_its_modules_object(name: str) -> None:
    expected = getattr(importlib.import_module(routoo._MODULE_OF[name]), name)
    assert routoo.__getattr__(name) is expected
    assert getattr(routoo, name) is not None
    assert name in dir(routoo)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Routr'"):
        routoo.Routr  # noqa: B018


@pytest.mark.parametrize("package", ["langchain_routoo", "llamaindex_routoo"])
def test_every_name_an_adapter_exports_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert [name for name in module.__all__ if not hasattr(module, name)] == []


def loaded_after(code: str) -> list[str]:
    """Which of HEAVY a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import routoo",
        "from routoo import Router, ModelSpec, Budget, budget_scope, RoutingPolicy, ConfigError",
        "import routoo.router",
        "import langchain_routoo",
        "import llamaindex_routoo",
    ],
)
def test_importing_loads_neither_litellm_nor_torch(code: str) -> None:
    assert loaded_after(code) == []
