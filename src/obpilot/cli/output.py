"""Rendering for the CLI: data on stdout as a table, a wide table, JSON or YAML; words and
progress on stderr. Colour only on a terminal and never with NO_COLOR (rich's rules).

Every value is printed as the text it is, whoever wrote it (a host reports its system, a
server writes its log): the consoles read no markup or emoji codes in a string, and no
control character of a value reaches the terminal (`formats.printable`); only rich's
own styles do. JSON and YAML keep each value whole, escaped."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from obpilot.formats import UNPRINTABLE, printable, printable_lines

Json = dict[str, Any]

STATUS_STYLES = {
    "RUNNING": "green",
    "SUCCESSFUL": "green",
    "STOPPED": "yellow",
    "STOPPING": "cyan",
    "STARTING": "cyan",
    "RESTARTING": "cyan",
    "CANCELING": "yellow",
    "PENDING": "dim",
    "READY": "dim",
    "FAILED": "bold red",
    "UNAVAILABLE": "bold red",
}


class OutputFormat(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


#: What JSON writes escaped beyond the control characters json.dumps escapes itself:
#: a terminal would act on them, and a script reads them back the same.
_JSON_ESCAPES = str.maketrans({char: f"\\u{ord(char):04x}" for char in UNPRINTABLE if char > "~"})


class _PlainConsole(Console):
    """A console whose output holds no control character but its own: every text it
    renders is made printable, its lines kept (a report has several)."""

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            yield (
                segment if segment.control else segment._replace(text=printable_lines(segment.text))
            )


def _console(file: Any) -> Console:
    # Off a terminal, no wrapping: a script reads whole lines.
    terminal = file.isatty()
    return _PlainConsole(
        file=file,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=not terminal,
        width=None if terminal else 1000,
    )


def stdout() -> Console:
    return _console(sys.stdout)


def stderr() -> Console:
    return _console(sys.stderr)


def say(message: str | Text) -> None:
    """A word for the person (stderr), kept apart from the data."""
    # soft_wrap: a long line is never broken, so that a command in it copies whole.
    stderr().print(message if isinstance(message, Text) else Text(message), soft_wrap=True)


def status_text(status: object) -> Text:
    value = "" if status is None else printable(str(status))
    return Text(value, style=STATUS_STYLES.get(value, ""))


def write_line(text: str) -> None:
    """One line of text on stdout as it reads (a task's log line), for scripts too."""
    sys.stdout.write(printable(text) + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class Column:
    title: str
    value: Callable[[Json], object]
    wide_only: bool = False

    def cell(self, row: Json) -> Text:
        value = self.value(row)
        if isinstance(value, Text):
            return value
        # One line, whatever the value holds: a cell never breaks its row.
        return Text("" if value is None else printable(str(value)))


def dump(data: Any, fmt: OutputFormat) -> str:
    if fmt is OutputFormat.YAML:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return json.dumps(data, indent=2, ensure_ascii=False).translate(_JSON_ESCAPES) + "\n"


def table(rows: Sequence[Json], columns: Sequence[Column], fmt: OutputFormat) -> Table:
    shown = [c for c in columns if fmt is OutputFormat.WIDE or not c.wide_only]
    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in shown:
        grid.add_column(column.title.upper(), no_wrap=True)
    for row in rows:
        grid.add_row(*(column.cell(row) for column in shown))
    return grid


def is_document(fmt: OutputFormat) -> bool:
    return fmt in (OutputFormat.JSON, OutputFormat.YAML)


def print_document(data: Any, fmt: OutputFormat) -> None:
    sys.stdout.write(dump(data, fmt))
    sys.stdout.flush()


def emit(data: Any, fmt: OutputFormat, rows: Sequence[Json], columns: Sequence[Column]) -> None:
    """`data` as the API gave it for JSON and YAML; `rows` through `columns` for tables."""
    if is_document(fmt):
        print_document(data, fmt)
        return
    console = stdout()
    with console.capture() as captured:
        console.print(table(rows, columns, fmt))
    # Without the padding rich leaves after the last column: scripts compare whole lines.
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    sys.stdout.flush()
