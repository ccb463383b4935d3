"""Cluster, zone and server operations as task templates and the subtasks they run
(`templates`, `steps`), on top of the task engine, the inventory and the hosts layer.
Importing this package registers every subtask class with the engine."""

from obpilot.flows import steps, takeover, templates

__all__ = ["steps", "takeover", "templates"]
