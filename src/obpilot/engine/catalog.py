"""The templates and subtask classes one engine knows, registered by one explicit call at
start-up (the app: `flows.TEMPLATES`, then OBPILOT_EXTRA_MODULES). A subtask row names its
class by `class_name` and a task its template by key: every instance sharing the metadb
must register the same ones."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TypeVar

from obpilot.engine.subtask import Subtask, WaitNode
from obpilot.engine.template import Template, TemplateFamily

Entry = TypeVar("Entry")


class Catalog:
    def __init__(self) -> None:
        self._templates: dict[str, Template] = {}
        self._families: dict[str, TemplateFamily] = {}
        self._subtasks: dict[str, type[Subtask]] = {}
        self._add_subtask(WaitNode)  # the engine plans it between parallel stages

    def register(self, *entries: Template | TemplateFamily) -> None:
        """Each template under its key (a family under its prefix), and every subtask class
        of its stages under its `class_name`. A name already taken by another object is
        refused: two definitions would make stored tasks ambiguous."""
        for entry in entries:
            if isinstance(entry, TemplateFamily):
                self._add(self._families, entry.prefix, entry, "template family")
                example = entry.build(1)
            else:
                self._add(self._templates, entry.key, entry, "template")
                example = entry
            for stage in example.stages:
                self._add_subtask(stage.subtask)

    def register_modules(self, names: Iterable[str]) -> None:
        """Imports each module (OBPILOT_EXTRA_MODULES) and registers its `TEMPLATES`."""
        for name in (name.strip() for name in names):
            if not name:
                continue
            module = importlib.import_module(name)
            templates = getattr(module, "TEMPLATES", None)
            if templates is None:
                raise LookupError(
                    f"module {name!r} has no TEMPLATES: list its templates there to register them"
                )
            self.register(*templates)

    def template(self, key: str) -> Template | None:
        found = self._templates.get(key)
        if found is not None:
            return found
        for family in self._families.values():
            member = family.member(key)
            if member is not None:
                return member
        return None

    def subtask_class(self, class_name: str) -> type[Subtask] | None:
        return self._subtasks.get(class_name)

    def _add_subtask(self, cls: type[Subtask]) -> None:
        self._add(self._subtasks, cls.class_name, cls, "subtask class")

    @staticmethod
    def _add(registry: dict[str, Entry], name: str, entry: Entry, what: str) -> None:
        taken = registry.setdefault(name, entry)
        if taken is not entry:
            raise ValueError(f"{what} {name!r} is registered already, as another object")
