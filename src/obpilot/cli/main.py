"""The `obpilot` command: the server's own commands and a client of the API."""

from __future__ import annotations

import sys

import typer

# lifecycle adds `cluster create|delete|forget`, `zone add|delete`, `server add|delete` to
# the apps of commands/clusters.py when imported.
from obpilot.cli.commands import lifecycle  # noqa: F401
from obpilot.cli.commands.auth import context, login, logout
from obpilot.cli.commands.clusters import cluster_app, server_app, zone_app
from obpilot.cli.commands.hosts import host_app
from obpilot.cli.commands.packages import package_app
from obpilot.cli.commands.tasks import task_app
from obpilot.cli.errors import EXIT_CODES_HELP

CLIENT_COMMANDS = frozenset(
    {"login", "logout", "context", "cluster", "zone", "server", "task", "host", "package"}
)


def build_app(*, with_server: bool = True) -> typer.Typer:
    """The command tree; without the server's commands, which take a second to import, for
    the API client's commands."""
    app = typer.Typer(
        help="obpilot: an OCP-compatible control plane for OceanBase, and a client of its "
        "API (login, cluster, zone, server, host, package, task).",
        epilog=EXIT_CODES_HELP,
        no_args_is_help=True,
        # A traceback's local variables could hold a password or an access key secret.
        pretty_exceptions_show_locals=False,
    )
    if with_server:
        # Imported here: the whole server, which only its own commands need.
        from obpilot.cli.server import add_server_commands

        add_server_commands(app)
    app.command()(login)
    app.command()(logout)
    app.command()(context)
    app.add_typer(cluster_app, name="cluster")
    app.add_typer(zone_app, name="zone")
    app.add_typer(server_app, name="server")
    app.add_typer(host_app, name="host")
    app.add_typer(package_app, name="package")
    app.add_typer(task_app, name="task")
    return app


def main() -> None:
    arguments = sys.argv[1:]
    build_app(with_server=not (arguments and arguments[0] in CLIENT_COMMANDS))()
