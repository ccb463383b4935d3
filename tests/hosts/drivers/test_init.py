"""`driver_for` (obpilot.hosts.drivers): the driver of each kind of server."""

from __future__ import annotations

import pytest

from obpilot.hosts.drivers import (
    ObserverDriver,
    ProcessSpec,
    ProcessTimeouts,
    SeekdbDriver,
    driver_for,
)
from tests.support.fake_host import FakeHost


@pytest.mark.parametrize(
    ("kind", "driver_class"), [("seekdb", SeekdbDriver), ("observer", ObserverDriver)]
)
def test_each_kind_of_server_has_its_driver(
    kind: str, driver_class: type[SeekdbDriver] | type[ObserverDriver]
) -> None:
    host, timeouts = FakeHost(), ProcessTimeouts(start=10)
    driver = driver_for(ProcessSpec(kind=kind, sql_port=2881, home_path="/data/s1"), host, timeouts)
    assert isinstance(driver, driver_class)
    assert (driver.executor, driver.timeouts) == (host, timeouts)


def test_timeouts_default_to_the_drivers_own() -> None:
    driver = driver_for(ProcessSpec(kind="seekdb", sql_port=2881, home_path="/data/s1"), FakeHost())
    assert isinstance(driver, SeekdbDriver)
    assert driver.timeouts == ProcessTimeouts()


def test_an_unknown_kind_of_server_is_refused() -> None:
    with pytest.raises(ValueError, match="no process driver for server kind 'mysql'"):
        driver_for(ProcessSpec(kind="mysql", sql_port=3306, home_path="/data/s1"), FakeHost())
