"""Cluster, zone and server operations as task templates and the subtasks they run
(`templates`, `steps`, `takeover`), on top of the task engine, the inventory and the hosts
layer. `TEMPLATES` is every one of them, for the engine's catalog (the app registers it at
start-up); their subtasks see `common.FlowResources` as `ctx.resources`."""

from obpilot.engine import Template, TemplateFamily
from obpilot.flows import lifecycle, prepare_host, steps, takeover, templates

TEMPLATES: tuple[Template | TemplateFamily, ...] = (
    *templates.TEMPLATES,
    takeover.TAKE_OVER_CLUSTER,
    prepare_host.PREPARE_HOST,
    *lifecycle.TEMPLATES,
)

__all__ = ["TEMPLATES", "lifecycle", "prepare_host", "steps", "takeover", "templates"]
