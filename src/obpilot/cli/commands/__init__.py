"""The CLI's commands that talk to an OCP-compatible API (login, clusters, tasks)."""
