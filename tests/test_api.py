"""The package's surface: what it imports, how it is installed, the shape of its public names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mongo_persistence
from mongo_persistence import persistence

PACKAGE = Path(mongo_persistence.__file__).parent


def _imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.name)
def test_no_private_ptb_module_is_imported(path: Path) -> None:
    private = [
        name
        for name in _imported_modules(path)
        if name.split(".")[0] == "telegram"
        and any(part.startswith("_") for part in name.split("."))
    ]
    assert private == []


def test_ptb_type_aliases_match_ptb() -> None:
    types = pytest.importorskip("telegram.ext._utils.types")
    assert persistence.ConversationKey == types.ConversationKey
    assert persistence.CDCData == types.CDCData
