"""How obpilot writes values the way OCP does, wherever they are written (answers, log
lines, error messages), and how text from outside (a host's answers, a command's output)
is made safe to write there."""

from __future__ import annotations

from datetime import UTC, datetime

#: Shown instead of a character that would act rather than be read.
PLACEHOLDER = "\ufffd"
#: What `str.splitlines` breaks a line at, and the tab.
_LINE_BREAKS = "\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029"
#: C0 and C1 controls (a terminal's escape sequences start with ESC or CSI), DEL, and the
#: bidirectional embeddings, overrides and isolates (text that reads other than it is).
_CONTROLS = [*range(0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ONE_LINE = str.maketrans(
    {**{code: PLACEHOLDER for code in _CONTROLS}, **{ord(char): " " for char in _LINE_BREAKS}}
)
#: Every character `printable` replaces.
UNPRINTABLE = frozenset(chr(code) for code in _ONE_LINE)
_LINES = str.maketrans({**_ONE_LINE, **{ord(char): "\n" for char in _LINE_BREAKS if char != "\t"}})


def format_time(value: datetime) -> str:
    """ISO-8601 with milliseconds and the UTC offset, as OCP renders times."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def printable(text: str) -> str:
    """`text` as one line that only reads: a line break or a tab becomes a space (no
    forged log line), any other control or bidirectional-override character the
    placeholder (no terminal escape). Each character stays one character."""
    return text.translate(_ONE_LINE)


def printable_lines(text: str) -> str:
    """`text` as `printable` makes it, but keeping its lines, each break written "\\n"
    (the end of a log, a command's output)."""
    return text.replace("\r\n", "\n").translate(_LINES)
