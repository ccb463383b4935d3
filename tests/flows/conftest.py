from tests.operations.conftest import fleet, running_fleet

__all__ = ["fleet", "running_fleet"]
