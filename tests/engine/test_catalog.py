"""The catalog: templates and subtask classes registered by one explicit call, looked up
by key and class name; a name taken twice is refused."""

from __future__ import annotations

import sys
from types import ModuleType

import pytest

from obpilot.engine import Catalog, Template, TemplateFamily, WaitNode, single
from tests.support.engine_tasks import SEED_STOP, TEMPLATES, Noop, Sleep, StopObserverProcess


def test_a_template_registers_its_key_and_every_subtask_class_of_its_stages() -> None:
    catalog = Catalog()
    catalog.register(SEED_STOP)
    assert catalog.template("test.seed-stop") is SEED_STOP
    assert catalog.subtask_class(StopObserverProcess.class_name) is StopObserverProcess
    assert catalog.subtask_class(WaitNode.class_name) is WaitNode  # the engine's own
    assert catalog.template("test.spread") is None
    assert catalog.subtask_class(Sleep.class_name) is None


def test_the_same_object_again_is_harmless_another_under_its_name_is_refused() -> None:
    catalog = Catalog()
    catalog.register(*TEMPLATES)
    catalog.register(SEED_STOP)
    twin = Template(key=SEED_STOP.key, name="Twin", stages=[single(Noop)])
    with pytest.raises(ValueError, match=r"template 'test\.seed-stop' is registered already"):
        catalog.register(twin)

    class Noop2(Noop):
        name = "Another no-op"
        class_name = Noop.class_name

    with pytest.raises(ValueError, match=r"subtask class .* is registered already"):
        catalog.register(Template(key="test.other", name="Other", stages=[single(Noop2)]))


def test_a_family_builds_its_members_by_key() -> None:
    def build(count: int) -> Template:
        return Template(key=f"test.family.{count}", name="F", stages=[single(Sleep)] * count)

    catalog = Catalog()
    catalog.register(TemplateFamily("test.family.", build))
    assert catalog.subtask_class(Sleep.class_name) is Sleep
    member = catalog.template("test.family.4")
    assert member is not None
    assert (member.key, len(member.stages)) == ("test.family.4", 4)
    for key in ("test.family.0", "test.family.04", "test.family.x", "test.family."):
        assert catalog.template(key) is None


def test_modules_register_their_templates_and_one_without_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog = Catalog()
    catalog.register_modules(["tests.support.engine_tasks", " ", ""])
    assert catalog.template("test.crash") is not None
    monkeypatch.setitem(sys.modules, "no_templates_here", ModuleType("no_templates_here"))
    with pytest.raises(LookupError, match="module 'no_templates_here' has no TEMPLATES"):
        catalog.register_modules(["no_templates_here"])
