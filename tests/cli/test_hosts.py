"""`obpilot host list|add`. `host list` runs against the real server; `host add` against
tests/cli/fake_api.py (FAKE) until POST /api/v2/compute/hosts/batchCreate exists."""

from __future__ import annotations

import json

from tests.cli.conftest import Cli, Stack
from tests.cli.fake_api import FakeApi, ok, task

BATCH = "/api/v2/compute/hosts/batchCreate"


def test_list_in_every_format(stack: Stack, cli: Cli) -> None:
    cli.login(stack)
    table = cli("host", "list")
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split() == [
        "ID",
        "NAME",
        "INNERIPADDRESS",
        "STATUS",
        "OPERATINGSYSTEM",
        "ARCHITECTURE",
        "IDCNAME",
    ]
    assert "127.0.0.1" in table.stdout
    assert "LOCAL" in cli("host", "list", "-o", "wide").stdout
    hosts = json.loads(cli("host", "list", "-o", "json").stdout)["contents"]
    assert [h["innerIpAddress"] for h in hosts] == ["127.0.0.1"]


def test_add_follows_the_task_and_prints_the_host_ids(fake: FakeApi, cli: Cli) -> None:  # FAKE
    prepared = fake.add_task(task(61, "Prepare host"))
    fake.on("POST", BATCH, ok({"contents": [prepared], "id": 61, "hostIds": [3, 4]}))
    added = cli(
        "host",
        "add",
        "10.0.0.5",
        "10.0.0.6",
        "--credential",
        "2",
        "--idc",
        "1",
        "--alias",
        "db",
        "-y",
    )
    assert added.exit_code == 0, added.output
    assert fake.requests("POST", BATCH)[0].json() == {
        "hostBasicDataList": [{"innerIpAddress": "10.0.0.5"}, {"innerIpAddress": "10.0.0.6"}],
        "sshPort": 22,
        "kind": "DEDICATED_PHYSICAL_MACHINE",
        "credentialId": 2,
        "idcId": 1,
        "typeId": None,
        "alias": "db",
    }
    assert added.stdout.splitlines() == [
        "Task 61 Prepare host: SUCCESSFUL",
        "Host 10.0.0.5: id 3",
        "Host 10.0.0.6: id 4",
    ]

    document = cli("host", "add", "10.0.0.5", "--credential", "2", "-y", "-o", "json")
    assert json.loads(document.stdout)["hostIds"] == [3, 4]
    later = cli("host", "add", "10.0.0.5", "--credential", "2", "-y", "--no-wait")
    assert later.stdout.strip() == "61"
    assert cli("host", "add", "10.0.0.5", "-y").exit_code == 2  # no --credential
    assert cli("host", "add", "10.0.0.5", "--credential", "2", "--kind", "VM", "-y").exit_code == 2
