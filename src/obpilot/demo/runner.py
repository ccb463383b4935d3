"""`obpilot demo` up and down."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import uvicorn

from obpilot.api.gate import closing_slow_heads
from obpilot.app import create_app
from obpilot.demo import servers, wheel
from obpilot.demo.client import ApiClient, DemoError, Json, TaskProgress, failures
from obpilot.demo.state import (
    CLUSTER_NAME,
    HOST_TYPE,
    IDC,
    OB_CLUSTER_ID,
    PASSWORD_FILE,
    REGION,
    DemoFiles,
    DemoPlan,
    DemoServer,
    free_ports,
)
from obpilot.inventory.models import HostKind
from obpilot.settings import Settings

ADMIN = "admin"
Say = servers.Say


# ---------------------------------------------------------------------------- up


class _ApiServer:
    """obpilot's API served in this process (uvicorn), as `obpilot serve` serves it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = uvicorn.Server(
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
        self.serving: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{_client_host(self.settings.host)}:{self.settings.port}"

    async def start(self) -> asyncio.Task[None]:
        self.serving = asyncio.create_task(self._serve())
        while not self.server.started:
            if self.serving.done():
                self.serving.result()  # its error
                raise DemoError("the API server stopped while starting")
            await asyncio.sleep(0.05)
        return self.serving

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        except SystemExit:  # uvicorn's answer to a failed start (a bind error, mostly)
            raise DemoError(
                f"cannot serve the API on {self.settings.host}:{self.settings.port}; see the "
                "log above"
            ) from None

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.serving is not None:
            await self.serving


async def up(
    settings: Settings,
    *,
    password: str,
    password_source: str,
    zones: int,
    servers_per_zone: int,
    wheels: Path,
    say: Say,
) -> None:
    """Serves the API until interrupted, once the demo cluster is there: created through
    that API on the first run, reused (and started if stopped) on the next ones."""
    files = DemoFiles(settings.home)
    _check_port_free(settings.host, settings.port)
    api_server = _ApiServer(settings)
    serving = await api_server.start()
    base_url = api_server.base_url
    files.save_serving(os.getpid(), base_url)
    try:
        api = ApiClient(base_url, ADMIN, password)
        setting_up = asyncio.create_task(
            _set_up(api, files, zones, servers_per_zone, password, wheels, say)
        )
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
            await api_server.stop()
            raise
        say(banner(base_url, password, password_source, cluster))
        await serving
    finally:
        if files.load_serving() == (os.getpid(), base_url):
            files.serving_file.unlink(missing_ok=True)
    if files.state_file.exists():
        say(
            "\nobpilot stopped serving. The demo's seekdb servers keep running: `obpilot demo` "
            "serves them again, `obpilot demo --down` removes them."
        )
    else:
        say("\nobpilot stopped serving.")


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
    api: ApiClient,
    files: DemoFiles,
    zones: int,
    servers_per_zone: int,
    password: str,
    wheels: Path,
    say: Say,
) -> Json:
    await _check_login(api, files)
    cluster = await _find_cluster(api)
    if cluster is not None:
        say(f"cluster {CLUSTER_NAME} is registered already (id {cluster['id']}): reused")
        return await _start_if_stopped(api, cluster, say)
    plan = files.load_plan()
    if plan is None:
        plan = files.new_plan(zones, servers_per_zone)
        files.save_plan(plan)
    elif plan.shape != (zones, servers_per_zone):
        say(
            f"note: the demo in {files.root} has {plan.shape[0]} zone(s) of "
            f"{plan.shape[1]} server(s), which it keeps; `obpilot demo --down` first to "
            "change that"
        )
    idc_id, type_id = await _catalog(api, say)
    host_id = await _local_host(api, idc_id, type_id, say)
    package = await _package(api, wheels, say)
    return await _create(api, host_id, plan, package, password, say)


async def _check_login(api: ApiClient, files: DemoFiles) -> None:
    status, _ = await api.call("GET", "/api/v2/ob/clusters?size=1")
    if status == 401:
        raise DemoError(
            f"user {ADMIN} cannot log in with the demo's password: this obpilot home's metadb "
            "had an admin before the demo. Set OBPILOT_ADMIN_PASSWORD to that admin's password "
            f"(or change it to the one in {files.password_file} with `obpilot user passwd "
            "admin`), or run the demo with another OBPILOT_HOME"
        )


async def _catalog(api: ApiClient, say: Say) -> tuple[int, int]:
    """The demo's region, IDC and host type: found by name, or created. (IDC id, type id)"""
    created = []

    async def entry(path: str, what: str, body: Json) -> int:
        page = await api.data("GET", f"{path}?size=2000")
        for found in page["contents"]:
            if found["name"] == body["name"]:
                return int(found["id"])
        created.append(what)
        return int((await api.data("POST", path, body))["id"])

    region_id = await entry("/api/v2/compute/regions", "region", {"name": REGION})
    idc_id = await entry("/api/v2/compute/idcs", "IDC", {"name": IDC, "regionId": region_id})
    type_id = await entry("/api/v2/compute/hostTypes", "host type", {"name": HOST_TYPE})
    what = "created" if len(created) == 3 else "registered already"
    if 0 < len(created) < 3:
        what = "created the " + " and the ".join(created)
    say(f"compute catalog: region {REGION}, IDC {IDC}, host type {HOST_TYPE}: {what}")
    return idc_id, type_id


async def _local_host(api: ApiClient, idc_id: int, type_id: int, say: Say) -> int:
    """This machine as a LOCAL host: found, or added in a batch (the task Prepare host)."""
    page = await api.data("GET", "/api/v2/compute/hosts?keyword=127.0.0.1&size=2000")
    for host in page["contents"]:
        if host["kind"] == HostKind.LOCAL:
            say(f"host {host['name']} (this machine, LOCAL; id {host['id']}): reused")
            return int(host["id"])
    batch = {
        "hostBasicDataList": [{"innerIpAddress": "127.0.0.1"}],
        "kind": HostKind.LOCAL,
        "idcId": idc_id,
        "typeId": type_id,
    }
    added = await api.data("POST", "/api/v2/compute/hosts/batchCreate", batch)
    host_id = int(added["hostIds"][0])
    say(f"adding this machine as a LOCAL host (id {host_id}): task {added['id']} (Prepare host)")
    task = await api.wait_task(added["id"], progress=TaskProgress(say))
    if task["status"] != "SUCCESSFUL":
        raise DemoError(f"preparing this machine (task {task['id']}) failed:\n{failures(task)}")
    return host_id


async def _package(api: ApiClient, wheels: Path, say: Say) -> str:
    """The pylibseekdb wheel as a software package: its file name (the create's rpmName)."""
    file = wheel.find(wheels)
    sha1 = await asyncio.to_thread(wheel.sha1_of, file)
    page = await api.data("GET", "/api/v2/software-packages?size=2000")
    for package in page["contents"]:
        if package["sha1"] == sha1:
            return _reused_package(package, say)
    status, answer = await api.upload("/api/v2/software-packages", file)
    if status == 200:
        package = answer["data"]
        say(
            f"uploaded the wheel {file} ({file.stat().st_size >> 20} MB): software package "
            f"id {package['id']}"
        )
        return str(package["fileName"])
    message = str((answer.get("error") or {}).get("message", answer))
    named = re.search(r"sha1 [0-9a-f]{40}\) is registered already: software package (\d+)", message)
    if status == 409 and named:  # registered meanwhile
        return _reused_package(
            await api.data("GET", f"/api/v2/software-packages/{named.group(1)}"), say
        )
    raise DemoError(f"uploading {file} was refused ({status}): {message}")


def _reused_package(package: Json, say: Say) -> str:
    say(
        f"software package {package['fileName']} (id {package['id']}) has this wheel's sha1: reused"
    )
    return str(package["fileName"])


async def _find_cluster(api: ApiClient) -> Json | None:
    page = await api.data("GET", f"/api/v2/ob/clusters?name={CLUSTER_NAME}&size=2000")
    for cluster in page["contents"]:
        if cluster["name"] == CLUSTER_NAME:
            return dict(await api.data("GET", f"/api/v2/ob/clusters/{cluster['id']}"))
    return None


async def _create(
    api: ApiClient, host_id: int, plan: DemoPlan, package: str, password: str, say: Say
) -> Json:
    body = {
        "name": CLUSTER_NAME,
        "obClusterId": OB_CLUSTER_ID,
        "rpmName": package,
        "password": password,
        "zones": [
            {
                "name": zone,
                "idcName": IDC,
                "servers": [
                    {"hostId": host_id, "sqlPort": s.port, "homePath": s.home}
                    for s in plan.in_zone(zone)
                ],
            }
            for zone in plan.zones
        ],
    }
    status, answer = await api.call("POST", "/api/v2/ob/clusters", body)
    if status != 200:
        error = answer.get("error") or {}
        details = "".join(f"\n  {p['field']}: {p['message']}" for p in error.get("subErrors", []))
        raise DemoError(
            f"cannot create cluster {CLUSTER_NAME} ({status}): {error.get('message', answer)}"
            f"{details}\n(`obpilot demo --down` clears what an earlier demo left)"
        )
    submitted = answer["data"]
    say(f"creating cluster {CLUSTER_NAME}: task {submitted['id']} ({submitted['name']})")
    task = await api.wait_task(submitted["id"], progress=TaskProgress(say))
    if task["status"] != "SUCCESSFUL":
        # Roll the task back (it removes what it made), so that a rerun starts clean.
        await api.data("POST", f"/api/v2/tasks/instances/{task['id']}/rollback")
        await api.wait_task(task["id"])
        raise DemoError(
            f"creating the cluster (task {task['id']}) failed, and was rolled back:\n"
            f"{failures(task)}"
        )
    return dict(await api.data("GET", f"/api/v2/ob/clusters/{submitted['clusterId']}"))


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


def cli_on_path() -> str | None:
    """The shell line that puts this obpilot's command on PATH, for the printed commands to
    run as printed (a fresh checkout has it only as .venv/bin/obpilot); None when `obpilot`
    on PATH is this one already, or this Python has no `obpilot` beside it."""
    bin_dir = Path(sys.executable).parent
    ours = bin_dir / "obpilot"
    if not ours.exists():
        return None
    found = shutil.which("obpilot")
    if found is not None and Path(found).resolve() == ours.resolve():
        return None
    return f'export PATH={shlex.quote(str(bin_dir))}:"$PATH"'


def banner(base_url: str, password: str, password_source: str, cluster: Json) -> str:
    servers_in = sum(len(zone["servers"]) for zone in cluster["zones"])
    ports = ", ".join(str(s["sqlPort"]) for z in cluster["zones"] for s in z["servers"])
    first_port = cluster["zones"][0]["servers"][0]["sqlPort"] if servers_in else None
    created = cluster.get("origin") == "CREATED"
    lines = [
        "",
        "obpilot demo is ready.",
        "",
        f"  console   {base_url}/   (open it in a browser; log in as {ADMIN})",
        f"  URL       {base_url}",
        f"  user      {ADMIN}",
        f"  password  {password}   ({password_source})",
        f"  cluster   {cluster['name']} (id {cluster['id']}): {cluster['status']}, "
        f"{'created' if created else 'taken over'} through the API, {len(cluster['zones'])} "
        f"zone(s), {servers_in} seekdb server(s) on SQL port(s) {ports}",
    ]
    if first_port is not None:
        root = f" -p{shlex.quote(password)}" if created else ""
        lines.append(f"            (SQL: mysql -h127.0.0.1 -P{first_port} -uroot{root})")
    login = (
        f"printf '%s\\n' {shlex.quote(password)} | obpilot login --url {base_url} "
        f"--user {ADMIN} --password-stdin"
    )
    path_line = cli_on_path()
    if path_line is not None:
        lines += ["", "obpilot is not on PATH; this puts this one there, for the commands below:"]
        lines.append(f"  {path_line}")
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
        "`obpilot demo --down` deletes the cluster through the API and removes the demo.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- down


async def down(settings: Settings, *, say: Say) -> None:
    """Deletes the demo cluster through the API (the serving demo's, or one served here
    meanwhile), stops the serving demo, stops by pid any demo seekdb still running, and
    removes the demo's files (except the admin password, which the metadb's admin keeps)."""
    files = DemoFiles(settings.home)
    plan = files.load_plan()
    serving = files.load_serving()
    serving_pid = serving[0] if serving and _is_obpilot(serving[0]) else None
    found = await _delete_through_api(
        settings, files, serving[1] if serving_pid and serving else None, say
    )
    if serving_pid is not None:
        await _stop_serving(serving_pid, say)
    known = {(s.home, s.port): s for s in (*(plan.servers if plan else ()), *found)}
    problems = await servers.stop(list(known.values()), say)  # the safety net, by pid
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
        f"removed the demo: no seekdb server of it runs and {files.root} is emptied"
        + (
            f" (kept {PASSWORD_FILE}: the admin user still has that password)"
            if files.password_file.exists()
            else ""
        )
    )


async def _delete_through_api(
    settings: Settings, files: DemoFiles, serving_url: str | None, say: Say
) -> list[DemoServer]:
    """Deletes the cluster named demo if all its servers are the demo's (purge: its
    directories go too); returns its servers. Through the serving demo's API, or one
    served in this process on a free loopback port."""
    if serving_url is None and (
        settings.metadb_url is None and not (settings.home / "obpilot.db").exists()
    ):
        return []
    if settings.admin_password is not None:
        password = settings.admin_password.get_secret_value()
    elif files.password_file.exists():
        password = files.password_file.read_text().strip()
    else:
        say(f"note: no admin password ({files.password_file}): cluster {CLUSTER_NAME} is kept")
        return []
    api_server = None
    if serving_url is None:
        local = settings.model_copy(update={"host": "127.0.0.1", "port": free_ports(1)[0]})
        api_server = _ApiServer(local)
        await api_server.start()
        serving_url = api_server.base_url
    try:
        return await _delete_cluster(ApiClient(serving_url, ADMIN, password), files, say)
    finally:
        if api_server is not None:
            await api_server.stop()


async def _delete_cluster(api: ApiClient, files: DemoFiles, say: Say) -> list[DemoServer]:
    status, _ = await api.call("GET", "/api/v2/ob/clusters?size=1")
    if status == 401:
        say(f"note: {ADMIN} cannot log in with the demo's password: cluster {CLUSTER_NAME} is kept")
        return []
    cluster = await _find_cluster(api)
    if cluster is None:
        return []
    hosts = {
        int(host["id"]): host["kind"]
        for host in (await api.data("GET", "/api/v2/compute/hosts?size=2000"))["contents"]
    }
    found: list[DemoServer] = []
    for zone in cluster["zones"]:
        for server in zone["servers"]:
            if (
                hosts.get(int(server["hostId"])) != HostKind.LOCAL
                or server["kind"] != "seekdb"
                or not _inside(Path(server["homePath"]), files.root)
            ):
                say(
                    f"note: cluster {CLUSTER_NAME} (id {cluster['id']}) has servers outside "
                    f"{files.root}: it is not the demo's and stays registered"
                )
                return []
            found.append(DemoServer(zone["name"], server["sqlPort"], server["homePath"]))
    path = f"/api/v2/ob/clusters/{cluster['id']}"
    if cluster.get("origin") != "CREATED":  # taken over by an earlier demo: forgotten only
        await api.call("DELETE", f"{path}?keepProcesses=true")
        say(f"forgot cluster {CLUSTER_NAME} (id {cluster['id']}, taken over)")
        return found
    submitted = await api.data("DELETE", f"{path}?purge=true")
    say(f"deleting cluster {CLUSTER_NAME}: task {submitted['id']} ({submitted['name']})")
    task = await api.wait_task(submitted["id"], progress=TaskProgress(say))
    if task["status"] != "SUCCESSFUL":
        raise DemoError(
            f"deleting the cluster (task {task['id']}) failed; nothing else was removed. "
            f"Retry it in the console, or run `obpilot demo --down` again:\n{failures(task)}"
        )
    say(f"deleted cluster {CLUSTER_NAME} (id {cluster['id']}) and its directories")
    files.state_file.unlink(missing_ok=True)  # nothing of it runs any more
    return found


def _is_obpilot(pid: int) -> bool:
    """Whether `pid` is a running obpilot (the serving demo it recorded, not a reused pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return pid != os.getpid() and b"obpilot" in command and b"demo" in command


async def _stop_serving(pid: int, say: Say) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not _is_obpilot(pid):
            break
        await asyncio.sleep(0.1)
    else:
        raise DemoError(f"the serving obpilot demo (pid {pid}) did not stop within 60 s")
    say(f"stopped the serving obpilot demo (pid {pid})")


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
