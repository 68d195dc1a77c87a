"""The package's public API is its `__all__`: every name there resolves, and every message
class and every public function or class of a submodule is reachable from the package itself
(users import `lingua_protocol.X`, not a submodule path)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import lingua_protocol
from lingua_protocol import Message

TOOLS = {"_docs_render", "_schema", "_examples", "_splice", "_parsing", "_frames"}
"""Submodules that are build tools or internals of the parser, not API."""


def test_every_exported_name_resolves() -> None:
    missing = [n for n in lingua_protocol.__all__ if not hasattr(lingua_protocol, n)]
    assert missing == []


def test_every_message_class_is_exported() -> None:
    classes = {c.__name__ for c in _subclasses(Message)}
    assert classes - set(lingua_protocol.__all__) == set()


def test_every_public_class_and_function_of_an_api_module_is_exported() -> None:
    found = set()
    for info in pkgutil.iter_modules(lingua_protocol.__path__):
        if info.name in TOOLS:
            continue
        module = importlib.import_module(f"lingua_protocol.{info.name}")
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(value) or inspect.isfunction(value):
                found.add(name)
    assert found - set(lingua_protocol.__all__) - {"Model"} == set()


def _subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def test_messages_nothing_sends_yet_are_marked_planned_in_the_generated_doc() -> None:
    from lingua_protocol._docs_render import render_protocol_md

    planned = {c.model_fields["type"].default for c in _subclasses(Message) if c.PLANNED}
    doc = render_protocol_md()
    assert doc.count("**Planned, not in use yet:**") == len(planned)
    for name in planned:
        section = doc.split(f"### `{name}`\n", 1)[1].split("### ", 1)[0]
        assert "**Planned, not in use yet:**" in section
