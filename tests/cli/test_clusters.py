"""`obpilot cluster|zone|server ...` against a real server and real seekdb processes."""

from __future__ import annotations

import json

import yaml

from tests.cli.conftest import Cli, Stack


def test_list_and_show_in_every_format(stack: Stack, cli: Cli) -> None:
    cli.login(stack)
    listed = cli("cluster", "list", "-o", "json")
    assert listed.exit_code == 0, listed.output
    clusters = json.loads(listed.stdout)["contents"]
    assert [c["name"] for c in clusters] == ["demo"]

    table = cli("cluster", "list")
    assert table.exit_code == 0
    assert table.stdout.splitlines()[0].split() == ["ID", "NAME", "STATUS", "ZONES", "SERVERS"]
    assert "demo" in table.stdout
    assert "RUNNING" in table.stdout
    assert "OBCLUSTERID" in cli("cluster", "list", "-o", "wide").stdout

    shown = yaml.safe_load(cli("cluster", "show", "demo", "-o", "yaml").stdout)
    assert shown["id"] == stack.cluster_id
    assert len(shown["zones"]) == 3
    by_id = cli("cluster", "show", str(stack.cluster_id))
    assert by_id.exit_code == 0
    assert by_id.stdout.count("seekdb") == 3


def test_stop_and_start_wait_to_the_end(stack: Stack, cli: Cli) -> None:
    cli.login(stack)
    stopped = cli("cluster", "stop", "demo", "-y")
    assert stopped.exit_code == 0, stopped.output
    assert "SUCCESSFUL" in stopped.stdout
    # The progress, on stderr: each stage with its counts.
    assert "Stop observer process x3: 3/3 done" in stopped.stderr
    assert "\x1b[" not in stopped.output  # no colour, no cursor moves: not a terminal
    assert stack.api("GET", f"/api/v2/ob/clusters/{stack.cluster_id}")["status"] == "STOPPED"

    started = cli("cluster", "start", "demo", "-y", "-o", "json")
    assert started.exit_code == 0, started.output
    task = json.loads(started.stdout)
    assert task["status"] == "SUCCESSFUL"
    assert all(s["status"] == "SUCCESSFUL" for s in task["subtasks"])
    assert stack.api("GET", f"/api/v2/ob/clusters/{stack.cluster_id}")["status"] == "RUNNING"
    assert all(server.answers_sql() for server in stack.fleet.servers)


def test_a_second_stop_while_one_runs_is_a_conflict(stack: Stack, cli: Cli) -> None:
    cli.login(stack)
    first = cli("cluster", "stop", "demo", "-y", "--no-wait")
    assert first.exit_code == 0, first.output
    task_id = int(first.stdout.strip())
    assert f"obpilot task watch {task_id}" in first.stderr

    second = cli("cluster", "stop", "demo", "-y")
    assert second.exit_code == 3, second.output
    assert "OBE11020" in second.stderr

    assert cli("task", "watch", str(task_id)).exit_code == 0
    # A start bounded by a tiny timeout: 124, and how to follow it again.
    late = cli("cluster", "start", "demo", "-y", "--timeout", "0.01")
    assert late.exit_code == 124, late.output
    assert "obpilot task watch" in late.stderr
    start_id = int(late.stderr.split("obpilot task watch ")[1].split()[0])
    watched = cli("task", "watch", str(start_id), "-o", "json")
    assert watched.exit_code == 0, watched.output
    assert json.loads(watched.stdout)["status"] == "SUCCESSFUL"


def test_a_server_that_cannot_start_fails_the_task(stack: Stack, cli: Cli) -> None:
    import socket

    cli.login(stack)
    victim = stack.fleet.servers[1]
    address = f"127.0.0.1:{victim.port}"
    assert cli("server", "stop", "demo", address, "-y").exit_code == 0
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", victim.port))
    holder.listen()
    try:
        failed = cli("server", "start", "demo", address, "-y")
    finally:
        holder.close()
    assert failed.exit_code == 1, failed.output
    report = failed.stderr
    assert "FAILED" in report
    assert "Failed subtask" in report
    assert "in use" in report
    assert "line(s) of its log:" in report
    assert "traceId: " in report
    task_id = int(report.split("obpilot task retry ")[1].split()[0])
    assert f"obpilot task rollback {task_id}" in report

    retried = cli("task", "retry", str(task_id), "-y")
    assert retried.exit_code == 0, retried.output
    assert victim.answers_sql()


def test_refusals_have_their_exit_codes(stack: Stack, cli: Cli) -> None:
    stack.api(
        "POST",
        "/api/v2/iam/users",
        json={
            "username": "viewer",
            "password": "Viewer-pass-123",
            "email": "viewer@example.com",
            "roles": ["CLUSTER_VIEWER"],
        },
    )
    cli.login(stack, "viewer", "Viewer-pass-123")
    refused = cli("cluster", "stop", "demo", "-y")
    assert refused.exit_code == 4, refused.output
    assert "IAM11000" in refused.stderr or "OBE11065" in refused.stderr
    bad = cli("login", "--url", stack.url, "--user", "viewer", "--password-stdin", input="wrong\n")
    assert bad.exit_code == 4
    assert "IAM10004" in bad.stderr

    assert cli("cluster", "stop").exit_code == 2  # no cluster named
    assert cli("cluster", "list", "-o", "xml").exit_code == 2
    missing = cli("cluster", "show", "nosuch")
    assert missing.exit_code == 2
    assert "no cluster named 'nosuch'" in missing.stderr
    unconfirmed = cli("cluster", "stop", "demo")
    assert unconfirmed.exit_code == 2
    assert "-y" in unconfirmed.stderr


def test_zone_stop_and_start(stack: Stack, cli: Cli) -> None:
    cli.login(stack)
    stopped = cli("zone", "stop", "demo", "zone3", "-y", "-o", "json")
    assert stopped.exit_code == 0, stopped.output
    assert json.loads(stopped.stdout)["status"] == "SUCCESSFUL"
    zones = {z["name"]: z["status"] for z in stack.api("GET", "/api/v2/ob/clusters/1")["zones"]}
    assert zones == {"zone1": "RUNNING", "zone2": "RUNNING", "zone3": "STOPPED"}
    assert cli("zone", "start", "demo", "zone3", "-y").exit_code == 0
    assert cli("zone", "start", "demo", "nozone", "-y").exit_code == 2
