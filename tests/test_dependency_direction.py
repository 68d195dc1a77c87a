"""One direction of dependency: each package imports only what its own pyproject declares, of
Lingua's packages `lingua_protocol` alone (the protocol imports none), and no private name of
another package."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "protocol": "lingua_protocol",
    "scheduler": "lingua_scheduler",
    "node": "lingua_node",
    "client": "lingua_client",
    "model_hub": "lingua_model_hub",
}


def imports(source: Path) -> list[tuple[str, str, list[str]]]:
    """(file, top-level module, imported names) for every absolute import under `source`."""
    found = []
    for path in sorted(source.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [(path.name, a.name.split(".")[0], []) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((path.name, node.module.split(".")[0], [a.name for a in node.names]))
    return found


def declared(folder: str, *, extras: bool = False) -> set[str]:
    """Distribution names the package's pyproject requires (with `extras`, also those of its
    optional extras, which it imports only when used): the checkout's file, not installed
    metadata, which an editable install keeps from the day it was installed."""
    project = tomllib.loads((ROOT / "packages" / folder / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    if extras:
        requirements += [
            r for group in project.get("optional-dependencies", {}).values() for r in group
        ]
    return {
        re.split(r"[<>=!~ ;\[]", req, maxsplit=1)[0].lower().replace("_", "-")
        for req in requirements
    }


@pytest.mark.parametrize(("folder", "module"), PACKAGES.items())
def test_a_package_imports_only_what_it_declares(folder: str, module: str) -> None:
    owners = packages_distributions()
    wanted = declared(folder, extras=True)
    undeclared = set()
    for file, imported, _ in imports(ROOT / "packages" / folder / "src" / module):
        if imported in sys.stdlib_module_names or imported == module:
            continue
        dists = {d.lower().replace("_", "-") for d in owners.get(imported, [imported])}
        if not dists & wanted:
            undeclared.add((file, imported))
    assert not undeclared, f"imports not declared in pyproject.toml: {sorted(undeclared)}"


@pytest.mark.parametrize(("folder", "module"), PACKAGES.items())
def test_a_package_depends_on_no_lingua_package_but_the_protocol(folder: str, module: str) -> None:
    ours = {"lingua-" + f.replace("_", "-") for f in PACKAGES} - {"lingua-protocol"}
    assert not declared(folder) & ours
    others = set(PACKAGES.values()) - {module, "lingua_protocol"}
    crossing = {
        (file, imported)
        for file, imported, _ in imports(ROOT / "packages" / folder / "src" / module)
        if imported in others
    }
    assert not crossing


@pytest.mark.parametrize(("folder", "module"), PACKAGES.items())
def test_a_package_uses_no_private_name_of_another(folder: str, module: str) -> None:
    private = [
        (file, imported, name)
        for file, imported, names in imports(ROOT / "packages" / folder / "src" / module)
        if imported != module
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not private
