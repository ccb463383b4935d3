"""seekdb parameters are checked before anything runs: seekdb itself answers a bad value
with exit 1 and an empty log, and datafile_size=0 allocates most of the disk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from obpilot.errors import InvalidServerParameter
from obpilot.hosts.drivers import ProcessSpec, ProcessState, ProcessStatus, SeekdbDriver
from obpilot.hosts.drivers.seekdb import check_parameters, effective_parameters
from obpilot.hosts.executor import CommandResult


class UnreachableHost:
    """A host that must not be contacted."""

    label = "nowhere"
    python = "python3"

    async def run(
        self,
        argv: Sequence[str],
        *,
        step: str,
        time_limit: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> CommandResult:
        raise AssertionError(f"the host was contacted: {step}")

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("datafile_size", "0", "disk percentage"),
        ("memory_budget", "512M", "below its minimum of 1024M"),
        ("memory_budget", "0", "give a size with a unit"),
        ("log_disk_size", "1536M", "below its minimum of 2048M"),
        ("log_disk_size", "2X", "give a size with a unit"),
        ("datafile_size", "2M", "below its minimum of 4M"),
        ("datafile_maxsize", "1024", "give a size with a unit"),
        ("memory_limit", "4G", "deprecated"),
        ("system_memory", "1G", "does not exist in seekdb"),
        ("cpu_count", "two", "a number"),
        ("Memory Budget", "1G", "name"),
        ("syslog_level", "WARN INFO", "no spaces"),
    ],
)
async def test_a_bad_parameter_is_refused_before_the_host_is_contacted(
    name: str, value: str, reason: str
) -> None:
    spec = ProcessSpec(
        kind="seekdb", sql_port=2881, home_path="/data/seekdb", parameters={name: value}
    )
    with pytest.raises(InvalidServerParameter, match=reason):
        await SeekdbDriver(spec, UnreachableHost()).start()


def test_defaults_suit_a_small_machine_and_can_be_overridden() -> None:
    assert effective_parameters({}) == {
        "memory_budget": "1G",
        "log_disk_size": "2G",
        "datafile_size": "64M",
        "datafile_maxsize": "2G",
    }
    assert effective_parameters({"memory_budget": "2G"})["memory_budget"] == "2G"


def test_good_values_pass_and_unknown_names_only_warn() -> None:
    assert check_parameters(effective_parameters({"cpu_count": "2", "memory_budget": "1.5G"})) == []
    warnings = check_parameters({"memory_bugdet": "2G"})
    assert len(warnings) == 1
    assert "memory_bugdet" in warnings[0]


def test_datafile_maxsize_not_below_datafile_size() -> None:
    with pytest.raises(InvalidServerParameter, match="datafile_maxsize"):
        check_parameters({"datafile_size": "1G", "datafile_maxsize": "512M"})


def test_the_start_command_of_a_new_and_of_an_initialised_base_dir() -> None:
    spec = ProcessSpec(
        kind="seekdb", sql_port=2881, home_path="/data/seekdb", parameters={"cpu_count": "2"}
    )
    driver = SeekdbDriver(spec, UnreachableHost())
    new = ProcessStatus(state=ProcessState.STOPPED, home="/data/seekdb", sql_port=2881)
    argv, env, cwd = driver.launch_command("/opt/seekdb", new)
    assert argv == [
        "/opt/seekdb",
        "--port",
        "2881",
        "--base-dir",
        "/data/seekdb",
        "--parameter",
        "cpu_count=2",
        "--parameter",
        "datafile_maxsize=2G",
        "--parameter",
        "datafile_size=64M",
        "--parameter",
        "log_disk_size=2G",
        "--parameter",
        "memory_budget=1G",
        "--log-level",
        "WARN",
        "--variable",
        "time_zone=+00:00",
    ]
    assert env == {"TELEMETRY_ENABLED": "false"}
    assert cwd == "/data/seekdb"
    initialised = ProcessStatus(
        state=ProcessState.STOPPED, home="/data/seekdb", sql_port=2881, initialised=True
    )
    assert "--variable" not in driver.launch_command("/opt/seekdb", initialised)[0]


def test_a_relative_home_is_refused() -> None:
    with pytest.raises(ValueError, match="absolute"):
        SeekdbDriver(
            ProcessSpec(kind="seekdb", sql_port=2881, home_path="data/seekdb"), UnreachableHost()
        )
