"""What the demo keeps on disk: its servers (so that a rerun reuses them) and the admin
password it gave the instance."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from obpilot.iam.passwords import generate_password

STATE_FILE = "state.json"
SERVING_FILE = "serving.json"  # the serving `obpilot demo`: its pid and URL
PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name
CLUSTER_NAME = "demo"
OB_CLUSTER_ID = 1
#: The compute catalog the demo's host is placed in (created when missing).
REGION, IDC, HOST_TYPE = "demo", "demo", "demo"


@dataclass(frozen=True)
class DemoServer:
    zone: str
    port: int
    home: str


@dataclass(frozen=True)
class DemoPlan:
    servers: tuple[DemoServer, ...]

    @property
    def zones(self) -> list[str]:
        return list(dict.fromkeys(server.zone for server in self.servers))

    def in_zone(self, zone: str) -> list[DemoServer]:
        return [server for server in self.servers if server.zone == zone]

    @property
    def shape(self) -> tuple[int, int]:
        """(zones, servers in the largest zone)"""
        return len(self.zones), max(len(self.in_zone(zone)) for zone in self.zones)


class DemoFiles:
    def __init__(self, home: Path) -> None:
        self.root = (home / "demo").resolve()

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    @property
    def password_file(self) -> Path:
        return self.root / PASSWORD_FILE

    @property
    def serving_file(self) -> Path:
        return self.root / SERVING_FILE

    def save_serving(self, pid: int, url: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.serving_file.write_text(json.dumps({"pid": pid, "url": url}) + "\n")

    def load_serving(self) -> tuple[int, str] | None:
        try:
            data = json.loads(self.serving_file.read_text())
            return int(data["pid"]), str(data["url"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load_plan(self) -> DemoPlan | None:
        if not self.state_file.exists():
            return None
        data = json.loads(self.state_file.read_text())
        servers = tuple(DemoServer(**server) for server in data["servers"])
        return DemoPlan(servers) if servers else None

    def save_plan(self, plan: DemoPlan) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"servers": [asdict(s) for s in plan.servers]}, indent=2) + "\n"
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(text)
        temporary.replace(self.state_file)

    def new_plan(self, zones: int, servers_per_zone: int) -> DemoPlan:
        """Free ports picked now; the plan is saved before any server starts."""
        servers = []
        ports = free_ports(zones * servers_per_zone)
        for z in range(1, zones + 1):
            for n in range(1, servers_per_zone + 1):
                home = self.root / "servers" / f"zone{z}-{n}"
                servers.append(DemoServer(zone=f"zone{z}", port=ports.pop(0), home=str(home)))
        return DemoPlan(tuple(servers))

    def admin_password(self) -> str:
        """The demo's admin password: read back, or generated once and kept (mode 0600)."""
        if self.password_file.exists():
            return self.password_file.read_text().strip()
        self.root.mkdir(parents=True, exist_ok=True)
        password = generate_password()
        descriptor = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(password + "\n")
        return password


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (the OS picks them; all distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
