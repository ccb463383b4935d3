"""obpilot: an open-source, OCP-compatible control plane for OceanBase clusters."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("obpilot")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
