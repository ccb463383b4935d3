"""Runs a real `obpilot serve` process on 127.0.0.1 for tests, and stops it by its pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.support.databases import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "Admin-pass-123"


class ServerProcess:
    """`obpilot serve` with its own OBPILOT_HOME; extra environment via `env`."""

    def __init__(
        self, home: Path, *, metadb_url: str | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.home = home
        self.port = free_port()
        self.log_path = home / "server.log"
        self.environment = {
            **os.environ,
            "OBPILOT_HOME": str(home),
            "OBPILOT_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PYTHONPATH": str(REPO_ROOT),
            **({"OBPILOT_METADB_URL": metadb_url} if metadb_url else {}),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "obpilot",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.environment, cwd=self.home
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"obpilot serve exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(self.base_url + "/api/v2/info", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"obpilot serve did not answer within {timeout} s:\n{self.log()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
