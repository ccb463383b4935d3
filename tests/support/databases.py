"""Test database helpers: throw-away databases and a seekdb launcher.

* :func:`fresh_database_url` creates a uniquely named database on a
  PostgreSQL or MySQL-family server (MySQL, MariaDB, seekdb) from an "admin"
  URL and returns an async URL for it plus a function that drops it.
* :class:`SeekdbServer` runs the ``seekdb`` server binary shipped in the
  ``pylibseekdb`` wheel as a private metadb for tests.
* :func:`free_port` returns a currently unused TCP port on 127.0.0.1.

Admin URLs normally come from ``scripts/test-services.sh env``
(``OBPILOT_TEST_PG_URL`` / ``OBPILOT_TEST_MYSQL_URL``) or from
:attr:`SeekdbServer.admin_url`.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

import pymysql  # type: ignore[import-untyped,unused-ignore]
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

__all__ = [
    "SeekdbServer",
    "free_port",
    "fresh_database_url",
    "seekdb_binary",
]

_PG_BACKENDS = frozenset({"postgresql"})
_MYSQL_BACKENDS = frozenset({"mysql", "mariadb"})


# --------------------------------------------------------------------------
# Fresh databases
# --------------------------------------------------------------------------


def _sync_url(url: URL) -> URL:
    """The same server/credentials with a synchronous driver."""
    backend = url.get_backend_name()
    if backend in _PG_BACKENDS:
        return url.set(drivername="postgresql+psycopg")
    if backend in _MYSQL_BACKENDS:
        return url.set(drivername=f"{backend}+pymysql")
    raise ValueError(f"unsupported database backend {backend!r} in {url!r}")


def _run_admin(admin_sync_url: URL, statement: str) -> None:
    """Run one DDL statement outside a transaction on the admin database."""
    engine = sa.create_engine(admin_sync_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def fresh_database_url(admin_url: str) -> tuple[str, Callable[[], None]]:
    """Create a new, uniquely named database and return ``(url, drop)``.

    ``admin_url`` points at a maintenance database on a PostgreSQL or
    MySQL-family server (async driver names such as ``postgresql+psycopg`` or
    ``mysql+aiomysql`` are fine; the DDL itself runs through psycopg /
    pymysql).  The returned URL keeps the admin URL's driver, credentials and
    query options and only swaps the database name.  ``drop()`` removes the
    database; it is idempotent and also terminates leftover PostgreSQL
    sessions.
    """
    url = make_url(admin_url)
    admin_sync = _sync_url(url)
    backend = url.get_backend_name()
    # Lowercase hex only: valid unquoted everywhere, including seekdb.
    name = f"obpilot_t_{uuid.uuid4().hex[:8]}"

    if backend in _PG_BACKENDS:
        create = f'CREATE DATABASE "{name}"'
        drop_sql = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
        drop_sql = f"DROP DATABASE IF EXISTS `{name}`"

    _run_admin(admin_sync, create)

    dropped = False

    def drop() -> None:
        nonlocal dropped
        if dropped:
            return
        # PostgreSQL's FORCE cannot end a session it may not signal (an autovacuum worker
        # that just entered the new database): such a session ends on its own in moments.
        for attempt in range(1, 21):
            try:
                _run_admin(admin_sync, drop_sql)
                break
            except sa.exc.ProgrammingError:
                if attempt == 20:
                    raise
                time.sleep(0.5)
        dropped = True

    return url.set(database=name).render_as_string(hide_password=False), drop


# --------------------------------------------------------------------------
# seekdb
# --------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def seekdb_binary() -> Path:
    """Path of the ``seekdb`` server binary inside the ``pylibseekdb`` package.

    Found without importing the package (importing loads a large extension).
    """
    spec = importlib.util.find_spec("pylibseekdb")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pylibseekdb is not installed (pip install pylibseekdb)")
    binary = Path(spec.submodule_search_locations[0]) / "seekdb"
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"seekdb binary not found or not executable: {binary}")
    return binary


def _tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class SeekdbServer:
    """A seekdb server process owned by the test session.

    Usage::

        server = SeekdbServer()
        server.start(tmp_path / "seekdb", free_port())
        try:
            url, drop = fresh_database_url(server.admin_url)
            ...
        finally:
            server.stop()

    or as a context manager after ``start()``.  The server listens on the
    given port (seekdb binds 0.0.0.0; clients should use 127.0.0.1) and
    accepts ``root`` with an empty password.
    """

    #: ``--parameter`` values: the smallest footprint that starts reliably.
    PARAMETERS: tuple[str, ...] = (
        "memory_budget=1G",
        "log_disk_size=2G",
        "datafile_size=64M",
        "datafile_maxsize=2G",
    )
    CONSOLE_LOG = "seekdb.console.log"

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: IO[bytes] | None = None
        self._port: int | None = None
        self._base_dir: Path | None = None

    # -- properties ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("seekdb server not started")
        return self._port

    @property
    def base_dir(self) -> Path:
        if self._base_dir is None:
            raise RuntimeError("seekdb server not started")
        return self._base_dir

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def admin_url(self) -> str:
        """Async SQLAlchemy URL for ``root`` on the built-in ``test`` database."""
        return f"mysql+aiomysql://root@127.0.0.1:{self.port}/test"

    # -- lifecycle ----------------------------------------------------------

    def start(
        self,
        base_dir: str | os.PathLike[str],
        port: int | None = None,
        *,
        timeout: float = 60.0,
    ) -> None:
        """Start seekdb on ``base_dir`` (created if needed) and wait until ready.

        Raises ``RuntimeError`` at once if the process exits during startup and
        ``TimeoutError`` (after stopping it) if it is not ready in ``timeout``
        seconds.
        """
        if self._proc is not None:
            raise RuntimeError(f"seekdb server already started (pid {self._proc.pid})")
        binary = seekdb_binary()
        base = Path(base_dir).resolve()
        base.mkdir(parents=True, exist_ok=True)
        port = free_port() if port is None else port
        if _port_open(port):
            # seekdb would bootstrap the whole dir first and then exit 1.
            raise RuntimeError(f"port {port} on 127.0.0.1 is already in use")

        cmd = [str(binary), "--nodaemon", "--port", str(port), "--base-dir", str(base)]
        for param in self.PARAMETERS:
            cmd += ["--parameter", param]
        # time_zone only takes effect when the base dir is first initialised.
        cmd += ["--log-level", "WARN", "--variable", "time_zone=+00:00"]
        # TELEMETRY_ENABLED=false stops seekdb from phoning home on bootstrap.
        env = dict(os.environ, TELEMETRY_ENABLED="false")

        console = (base / self.CONSOLE_LOG).open("ab")
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=base,
                start_new_session=True,
            )
        except BaseException:
            console.close()
            raise
        self._proc, self._console, self._port, self._base_dir = proc, console, port, base

        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            rc = self._proc.poll()
            if rc is not None:
                raise RuntimeError(self._startup_failure(f"seekdb exited with code {rc}", rc))
            try:
                conn = pymysql.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user="root",
                    password="",
                    connect_timeout=2,
                )
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT 1")
                        cur.fetchall()
                finally:
                    conn.close()
                return
            except pymysql.err.MySQLError as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    self._startup_failure(
                        f"seekdb not ready on 127.0.0.1:{self.port} after {timeout:.0f}s "
                        f"(last error: {last_error!r})",
                        None,
                    )
                )
            time.sleep(0.1)

    def _startup_failure(self, headline: str, rc: int | None) -> str:
        base = self.base_dir
        parts = [f"{headline}; base dir {base}, port {self.port}"]
        if rc == 1:
            parts.append(
                "hint: exit 1 with an empty log usually means an invalid --parameter value; "
                "exit 1 after bootstrap means the port is already in use. --log-level WARN "
                "hides the cause: re-run once without it and grep log/seekdb.log for EDIAG."
            )
        elif rc == 96:
            parts.append("hint: exit 96 means another seekdb already uses this base dir")
        for path in (base / self.CONSOLE_LOG, base / "log" / "seekdb.log"):
            tail = _tail(path)
            parts.append(f"--- last lines of {path} ---\n{tail or '(empty)'}")
        return "\n".join(parts)

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop the server (SIGTERM, SIGKILL after ``timeout``); return its exit status.

        seekdb turns SIGTERM into ``raise(SIGKILL)``, so ``-9`` is the normal
        result.  Only the process started by this object is signalled.
        Idempotent: returns ``None`` if nothing was started.
        """
        proc, self._proc = self._proc, None
        rc: int | None = None
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                    rc = proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    rc = proc.wait(timeout)
            else:
                rc = proc.returncode
        if self._console is not None:
            self._console.close()
            self._console = None
        return rc

    def __enter__(self) -> SeekdbServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
