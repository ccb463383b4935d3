"""`obpilot demo` up and down."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import shutil
import socket
from pathlib import Path

import uvicorn

from obpilot.api.gate import closing_slow_heads
from obpilot.app import create_app
from obpilot.db import migrate
from obpilot.db.engine import Database
from obpilot.demo import servers
from obpilot.demo.client import ApiClient, DemoError, Json, failures
from obpilot.demo.state import (
    CLUSTER_NAME,
    OB_CLUSTER_ID,
    PASSWORD_FILE,
    DemoFiles,
    DemoPlan,
    DemoServer,
)
from obpilot.inventory import service as inventory
from obpilot.inventory.models import HostKind
from obpilot.inventory.repository import ClusterRepository, HostRepository
from obpilot.settings import Settings

ADMIN = "admin"
Say = servers.Say

# ---------------------------------------------------------------------------- up


async def up(
    settings: Settings,
    *,
    password: str,
    password_source: str,
    zones: int,
    servers_per_zone: int,
    say: Say,
) -> None:
    """Serves the API until interrupted, once the demo cluster is there and taken over."""
    servers.check_seekdb_installed()
    files = DemoFiles(settings.home)
    _check_port_free(settings.host, settings.port)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
            http=closing_slow_heads(settings.header_read_timeout_seconds),
        )
    )
    serving = asyncio.create_task(_serve(server, settings))
    while not server.started:
        if serving.done():
            serving.result()  # its error
            raise DemoError("the API server stopped while starting")
        await asyncio.sleep(0.05)
    base_url = f"http://{_client_host(settings.host)}:{settings.port}"
    api = ApiClient(base_url, ADMIN, password)
    setting_up = asyncio.create_task(_set_up(api, files, zones, servers_per_zone, say))
    await asyncio.wait({setting_up, serving}, return_when=asyncio.FIRST_COMPLETED)
    if not setting_up.done():  # interrupted (Ctrl-C) while setting up
        setting_up.cancel()
        with contextlib.suppress(asyncio.CancelledError, DemoError):
            await setting_up
        await serving
        raise DemoError("interrupted before the demo was ready")
    try:
        cluster = setting_up.result()
    except BaseException:
        server.should_exit = True
        await serving
        raise
    say(banner(base_url, password, password_source, cluster))
    await serving
    say(
        "\nobpilot stopped serving. The demo's seekdb servers keep running: `obpilot demo` "
        "serves them again, `obpilot demo --down` removes them."
    )


async def _serve(server: uvicorn.Server, settings: Settings) -> None:
    try:
        await server.serve()
    except SystemExit:  # uvicorn's answer to a failed start (a bind error, mostly)
        raise DemoError(
            f"cannot serve the API on {settings.host}:{settings.port}; see the log above"
        ) from None


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise DemoError(
                f"cannot serve the API on {host}:{port} ({error.strerror}); is another obpilot "
                "running there? Choose another with --port"
            ) from None


def _client_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 - the address to reach a server bound there
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


async def _set_up(
    api: ApiClient, files: DemoFiles, zones: int, servers_per_zone: int, say: Say
) -> Json:
    await _check_login(api, files)
    host_id = await _local_host(api, say)
    cluster = await _find_cluster(api)
    plan = files.load_plan()
    if cluster is None:
        if plan is None:
            plan = files.new_plan(zones, servers_per_zone)
            files.save_plan(plan)
        elif plan.shape != (zones, servers_per_zone):
            say(
                f"note: the demo in {files.root} has {plan.shape[0]} zone(s) of "
                f"{plan.shape[1]} server(s), which it keeps; `obpilot demo --down` first to "
                "change that"
            )
        await servers.ensure_running(plan.servers, say)
        cluster = await _take_over(api, host_id, plan, say)
    else:
        say(f"cluster {CLUSTER_NAME} is registered already (id {cluster['id']}): reused")
        if plan is None:
            say(f"note: {files.state_file} is missing; `obpilot demo --down` cleans up")
        cluster = await _start_if_stopped(api, cluster, say)
    return cluster


async def _check_login(api: ApiClient, files: DemoFiles) -> None:
    status, _ = await api.call("GET", "/api/v2/ob/clusters?size=1")
    if status == 401:
        raise DemoError(
            f"user {ADMIN} cannot log in with the demo's password: this obpilot home's metadb "
            "had an admin before the demo. Set OBPILOT_ADMIN_PASSWORD to that admin's password "
            f"(or change it to the one in {files.password_file} with `obpilot user passwd "
            "admin`), or run the demo with another OBPILOT_HOME"
        )


async def _local_host(api: ApiClient, say: Say) -> int:
    page = await api.data("GET", "/api/v2/compute/hosts?keyword=127.0.0.1&size=2000")
    for host in page["contents"]:
        if host["kind"] == HostKind.LOCAL:
            return int(host["id"])
    for name in ("local", "demo-local"):
        status, answer = await api.call(
            "POST",
            "/api/v2/compute/hosts",
            {"name": name, "innerIpAddress": "127.0.0.1", "kind": HostKind.LOCAL},
        )
        if status == 200:
            say(f"added host {name} (this machine, LOCAL; id {answer['data']['id']})")
            return int(answer["data"]["id"])
        if (answer.get("error") or {}).get("code") != "COM10006":  # name taken: next name
            message = (answer.get("error") or {}).get("message", answer)
            raise DemoError(f"cannot add this machine as a LOCAL host: {message}")
    raise DemoError("cannot add this machine as a LOCAL host: hosts local and demo-local exist")


async def _find_cluster(api: ApiClient) -> Json | None:
    page = await api.data("GET", f"/api/v2/ob/clusters?name={CLUSTER_NAME}&size=2000")
    for cluster in page["contents"]:
        if cluster["name"] == CLUSTER_NAME:
            return dict(await api.data("GET", f"/api/v2/ob/clusters/{cluster['id']}"))
    return None


async def _take_over(api: ApiClient, host_id: int, plan: DemoPlan, say: Say) -> Json:
    body = {
        "name": CLUSTER_NAME,
        "obClusterId": OB_CLUSTER_ID,
        "zones": [
            {
                "name": zone,
                "idcName": f"idc-{zone}",
                "regionName": "local",
                "servers": [
                    {"hostId": host_id, "kind": "seekdb", "sqlPort": s.port, "homePath": s.home}
                    for s in plan.in_zone(zone)
                ],
            }
            for zone in plan.zones
        ],
    }
    submitted = await api.data("POST", "/api/v2/ob/clusters/takeOver", body)
    say(f"taking cluster {CLUSTER_NAME} over: task {submitted['id']} ({submitted['name']})")
    task = await api.wait_task(submitted["id"])
    if task["status"] != "SUCCESSFUL":
        # Forget the half-registered cluster, so that a rerun starts clean.
        await api.data("POST", f"/api/v2/tasks/instances/{task['id']}/rollback")
        await api.wait_task(task["id"])
        raise DemoError(
            f"the takeover (task {task['id']}) failed, and was rolled back:\n{failures(task)}"
        )
    return dict(await api.data("GET", f"/api/v2/ob/clusters/{submitted['cluster']['id']}"))


async def _start_if_stopped(api: ApiClient, cluster: Json, say: Say) -> Json:
    if cluster["status"] not in ("STOPPED", "UNAVAILABLE"):
        return cluster
    status, answer = await api.call("POST", f"/api/v2/ob/clusters/{cluster['id']}/start")
    if status != 200:
        say(f"note: the cluster is {cluster['status']} and cannot start now: {answer['error']}")
        return cluster
    say(f"cluster {CLUSTER_NAME} is {cluster['status']}: starting it (task {answer['data']['id']})")
    task = await api.wait_task(answer["data"]["id"])
    if task["status"] != "SUCCESSFUL":
        say(f"note: starting the cluster failed (task {task['id']}):\n{failures(task)}")
    return dict(await api.data("GET", f"/api/v2/ob/clusters/{cluster['id']}"))


def commands(base_url: str, password: str, cluster_id: int) -> list[tuple[str, str, str]]:
    """The three things to try, as (what, curl command, the same with the obpilot CLI)."""
    user = shlex.quote(f"{ADMIN}:{password}")
    task_id = (
        "python3 -c 'import json,sys; a=json.load(sys.stdin); "
        'print(a["data"]["id"]) if a["successful"] else sys.exit(a["error"]["message"])\''
    )
    return [
        (
            "List clusters",
            f"curl -sS -u {user} {base_url}/api/v2/ob/clusters",
            "obpilot cluster list",
        ),
        (
            "Stop the cluster (the answer is its task; TASK keeps the task's id)",
            f"TASK=$(curl -sS -u {user} -X POST {base_url}/api/v2/ob/clusters/{cluster_id}/stop"
            f" | {task_id})",
            f"obpilot cluster stop {CLUSTER_NAME} -y     # follows the task live to its end",
        ),
        (
            "Follow the task (Server-Sent Events until it ends)",
            f"curl -sSN -u {user} {base_url}/api/v2/tasks/instances/$TASK/stream",
            "obpilot task watch $TASK",
        ),
    ]


def banner(base_url: str, password: str, password_source: str, cluster: Json) -> str:
    servers_in = sum(len(zone["servers"]) for zone in cluster["zones"])
    ports = ", ".join(str(s["sqlPort"]) for z in cluster["zones"] for s in z["servers"])
    first_port = cluster["zones"][0]["servers"][0]["sqlPort"] if servers_in else None
    lines = [
        "",
        "obpilot demo is ready.",
        "",
        f"  console   {base_url}/   (open it in a browser; log in as {ADMIN})",
        f"  URL       {base_url}",
        f"  user      {ADMIN}",
        f"  password  {password}   ({password_source})",
        f"  cluster   {cluster['name']} (id {cluster['id']}): {cluster['status']}, "
        f"{len(cluster['zones'])} zone(s), {servers_in} seekdb server(s) on SQL port(s) {ports}",
    ]
    if first_port is not None:
        lines.append(f"            (SQL: mysql -h127.0.0.1 -P{first_port} -uroot)")
    login = (
        f"printf '%s\\n' {shlex.quote(password)} | obpilot login --url {base_url} "
        f"--user {ADMIN} --password-stdin"
    )
    lines += [
        "",
        "The CLI logs in once (it keeps an access key, not the password):",
        f"  {login}",
        "",
    ]
    for what, curl, cli in commands(base_url, password, cluster["id"]):
        lines += [f"{what}:", f"  {curl}", f"  {cli}", ""]
    lines += [
        "Start it again with POST .../clusters/{id}/start the same way, or "
        f"`obpilot cluster start {CLUSTER_NAME} -y`.",
        "Ctrl-C stops serving (the seekdb servers keep running); "
        "`obpilot demo --down` stops and removes them.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- down


async def down(settings: Settings, *, say: Say) -> None:
    """Forgets the demo cluster, stops its servers and removes the demo's files (except the
    admin password, which the metadb's admin user keeps)."""
    files = DemoFiles(settings.home)
    plan = files.load_plan()
    found = await _forget_in_metadb(settings, files, say)
    known = {(s.home, s.port): s for s in (*(plan.servers if plan else ()), *found)}
    problems = await servers.stop(list(known.values()), say)
    if problems:
        raise DemoError(
            "some demo servers could not be stopped; their files are kept:\n  "
            + "\n  ".join(problems)
        )
    removed = _remove_files(files)
    if not known and not removed:
        say(f"nothing to remove: no demo in {files.root}")
        return
    say(
        f"removed the demo: its {len(known)} seekdb server(s) are stopped and {files.root} "
        "is emptied"
        + (
            f" (kept {PASSWORD_FILE}: the admin user still has that password)"
            if files.password_file.exists()
            else ""
        )
    )


async def _forget_in_metadb(settings: Settings, files: DemoFiles, say: Say) -> list[DemoServer]:
    """Forgets the cluster named demo if all its servers are the demo's; returns them."""
    url = settings.resolved_metadb_url
    if settings.metadb_url is None and not (settings.home / "obpilot.db").exists():
        return []
    await asyncio.to_thread(migrate.upgrade, url)
    database = Database(url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    try:
        async with database.transaction(write=True) as session:
            clusters = ClusterRepository(session)
            named = await clusters.get_by_name(CLUSTER_NAME)
            if named is None:
                return []
            cluster = await clusters.get(named.id)
            assert cluster is not None
            found: list[DemoServer] = []
            for zone in cluster.zones:
                for server in zone.servers:
                    host = await HostRepository(session).get(server.host_id)
                    if (
                        host is None
                        or host.kind != HostKind.LOCAL
                        or server.kind != "seekdb"
                        or not _inside(Path(server.home_path), files.root)
                    ):
                        say(
                            f"note: cluster {CLUSTER_NAME} (id {cluster.id}) has servers outside "
                            f"{files.root}: it is not the demo's and stays registered"
                        )
                        return []
                    found.append(DemoServer(zone.name, server.sql_port, server.home_path))
            await inventory.forget_cluster(session, cluster.id)
        say(f"forgot cluster {CLUSTER_NAME} (id {cluster.id}) in the metadb")
        return found
    finally:
        await database.dispose()


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root)


def _remove_files(files: DemoFiles) -> bool:
    if not files.root.exists():
        return False
    removed = False
    for child in files.root.iterdir():
        if child.name == PASSWORD_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
        removed = True
    return removed
