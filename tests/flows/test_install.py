"""The rules of putting servers on hosts that need no host: what a survey's answer
means, the bootstrap statements, versions, what a server takes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from obpilot.flows.install import (
    OBSERVER_MEMORY_FLOOR,
    PlannedServer,
    add_server_statements,
    add_zone_statements,
    bootstrap_statements,
    findings_from_survey,
    server_dirs,
    server_needs,
    set_password_statement,
)
from obpilot.hosts.protocol import SurveyAnswer, SurveyedPath

GIB = 1 << 30


def _path(**overrides: Any) -> SurveyedPath:
    place: SurveyedPath = {
        "exists": False,
        "is_dir": False,
        "entries": [],
        "writable": True,
        "free_bytes": 100 * GIB,
        "device": 1,
    }
    return {**place, **overrides}  # type: ignore[typeddict-item]


def _survey(
    paths: dict[str, SurveyedPath], listening: dict[int, int] | None = None
) -> SurveyAnswer:
    return {
        "python": "3.11.2",
        "proc": True,
        "timeout": "/usr/bin/timeout",
        "operating_system": "Linux",
        "architecture": "x86_64",
        "cpu_count": 2,
        "memory_total": 24 * GIB,
        "memory_available": 8 * GIB,
        "paths": paths,
        "ports": {
            str(port): {"listening": True, "pid": pid, "command": "nc -l"}
            for port, pid in (listening or {}).items()
        },
    }


def _server(field: str, port: int, home: str, memory: int = GIB, disk: int = GIB) -> PlannedServer:
    return PlannedServer(field, 1, (port,), (home,), memory, disk)


def test_a_free_host_has_no_findings() -> None:
    survey = _survey({"/a": _path(), "/b": _path()})
    assert (
        findings_from_survey("h1", survey, [_server("s0", 1, "/a"), _server("s1", 2, "/b")]) == []
    )


def test_every_finding_is_reported_with_its_server() -> None:
    survey = _survey(
        {
            "/busy": _path(exists=True, is_dir=True, entries=["store"]),
            "/file": _path(exists=True),
            "/locked": _path(writable=False),
        },
        listening={2881: 42},
    )
    servers = [
        _server("s0", 2881, "/busy"),
        _server("s1", 2882, "/file"),
        _server("s2", 2883, "/locked"),
    ]
    found = [(f.field, f.message) for f in findings_from_survey("h1", survey, servers)]
    assert found == [
        ("s0", "port 2881 on host h1 is in use by pid 42 (nc -l)"),
        ("s0", "/busy on host h1 exists and is not empty (store)"),
        ("s1", "/file on host h1 exists and is not a directory"),
        ("s2", "/locked on host h1 cannot be created there"),
    ]


def test_memory_and_disk_count_every_new_server_of_the_host() -> None:
    survey = _survey({"/a": _path(free_bytes=3 * GIB), "/b": _path(free_bytes=3 * GIB)})
    mine = _server("s0", 1, "/a", memory=5 * GIB, disk=2 * GIB)
    sharing = _server("s1", 2, "/b", memory=5 * GIB, disk=2 * GIB)
    assert findings_from_survey("h1", survey, [mine]) == []
    messages = [f.message for f in findings_from_survey("h1", survey, [mine], [sharing])]
    assert messages == [
        "host h1 has 8.0 GiB of memory available; its new servers need 10.0 GiB",
        "host h1 has 3.0 GiB of free disk where its new servers go; their data and logs need "
        "4.0 GiB",
    ]


def test_what_a_server_takes() -> None:
    assert server_needs("seekdb", {}) == (GIB, (64 << 20) + 2 * GIB)
    assert server_needs("seekdb", {"memory_budget": "2G", "log_disk_size": "4G"})[0] == 2 * GIB
    assert server_needs("observer", {}) == (OBSERVER_MEMORY_FLOOR, 0)
    assert server_needs("observer", {"memory_limit": "8G", "datafile_size": "1G"}) == (8 * GIB, GIB)


def test_a_data_directory_outside_the_home_is_the_servers_too() -> None:
    assert server_dirs("/ob/home", "/ob/home/store") == ["/ob/home"]
    assert server_dirs("/ob/home", "/data/ob") == ["/ob/home", "/data/ob"]
    assert server_dirs("/ob/home", None) == ["/ob/home"]


def test_bootstrap_names_one_rootservice_per_zone_then_adds_the_rest() -> None:
    def server(ip: str, port: int) -> Any:
        return SimpleNamespace(ip=ip, port=port)

    zones = [
        ("z1", "hz", [server("10.0.0.1", 2882), server("10.0.0.2", 2882)]),
        ("z2", None, [server("10.0.0.3", 2882)]),
    ]
    assert bootstrap_statements(zones) == [
        "ALTER SYSTEM BOOTSTRAP REGION 'hz' ZONE 'z1' SERVER '10.0.0.1:2882', "
        "REGION 'sys_region' ZONE 'z2' SERVER '10.0.0.3:2882'",
        "ALTER SYSTEM ADD SERVER '10.0.0.2:2882' ZONE 'z1'",
    ]


def test_a_password_is_quoted_in_sql() -> None:
    assert set_password_statement("it's\\x") == "ALTER USER root IDENTIFIED BY 'it\\'s\\\\x'"


def test_a_zone_joins_a_running_observer_cluster_and_servers_join_a_zone() -> None:
    assert add_zone_statements("z4", "idc1", "hz") == [
        "ALTER SYSTEM ADD ZONE 'z4' IDC 'idc1' REGION 'hz'",
        "ALTER SYSTEM START ZONE 'z4'",
    ]
    assert add_zone_statements("z4", None, None)[0] == "ALTER SYSTEM ADD ZONE 'z4'"
    server = SimpleNamespace(ip="10.0.0.9", port=2882)
    assert add_server_statements([server], "z4") == [  # type: ignore[list-item]
        "ALTER SYSTEM ADD SERVER '10.0.0.9:2882' ZONE 'z4'"
    ]
