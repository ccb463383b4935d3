"""The web console: the built front end (console/, built into `static/`) served at `/`."""

from obpilot.web.console import ConsoleRoute, static_dir

__all__ = ["ConsoleRoute", "static_dir"]
