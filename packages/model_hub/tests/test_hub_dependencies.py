"""One direction of dependency: the hub imports only what its pyproject declares (of Lingua's
packages, `lingua_protocol` alone) and no private name of another package."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import lingua_model_hub

SOURCES = Path(lingua_model_hub.__file__).parent
PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def _imports() -> list[tuple[str, str, list[str]]]:
    """(file, top-level module, imported names) for every absolute import in the package."""
    found = []
    for path in sorted(SOURCES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [(path.name, a.name.split(".")[0], []) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [a.name for a in node.names]
                found.append((path.name, node.module.split(".")[0], names))
    return found


def test_the_hub_imports_only_its_declared_dependencies() -> None:
    declared = {
        re.split(r"[<>=!~ ;\[]", req, maxsplit=1)[0].lower().replace("_", "-")
        # the checkout's pyproject, not the installed metadata, which an editable install keeps
        # from the day it was installed
        for req in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    }
    owners = packages_distributions()
    undeclared = set()
    for file, module, _ in _imports():
        if module in sys.stdlib_module_names or module == "lingua_model_hub":
            continue
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        if not dists & declared:
            undeclared.add((file, module))
    assert not undeclared, f"imports not declared in pyproject.toml: {sorted(undeclared)}"


def test_the_hub_uses_no_private_name_of_another_package() -> None:
    private = [
        (file, module, name)
        for file, module, names in _imports()
        if module != "lingua_model_hub"
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not private
