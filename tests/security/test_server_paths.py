"""Finding 14 (paths): the no-overlap checks compared path strings, so a home written
`//tmp/...` (which POSIX lets `normpath` keep) was not seen inside a running server's home.
Every path is compared in one spelling."""

from __future__ import annotations

import pytest

from obpilot.lifecycle.service import canonical_path


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("//tmp/a", "/tmp/a"),
        ("///tmp//a/", "/tmp/a"),
        ("//tmp/x/../a", "/tmp/a"),
        ("/tmp/./a", "/tmp/a"),
        ("/", "/"),
        ("//", "/"),
    ],
)
def test_one_spelling_of_a_path(written: str, meant: str) -> None:
    assert canonical_path(written) == meant
