"""Receiving an uploaded package: a multipart/form-data body, parsed as it streams in, its
`file` field written chunk by chunk to a temporary file (hashed and counted on the way),
never held whole in memory. The request gate caps the body's size."""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from obpilot.errors import BadRequest

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FILE_FIELD = "file"
MAX_FILE_NAME = 255
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]*")


@dataclass(frozen=True)
class ReceivedFile:
    path: Path  # the temporary file, in the directory the package will be kept in
    file_name: str  # as the client named it
    size: int
    sha1: str


async def receive_file(
    chunks: AsyncIterator[bytes], *, content_type: str, directory: Path
) -> ReceivedFile:
    """The body's `file` field, written to a temporary file in `directory` (made if
    missing); on any error the temporary file is removed."""
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise BadRequest(
            f"Upload a package as multipart/form-data with the file in the field {FILE_FIELD!r}"
        )
    with await asyncio.to_thread(_temporary_file, directory) as file:
        path = Path(file.name)
        try:
            receiver = _FileReceiver(file)
            parser = MultipartParser(boundary, receiver.callbacks())
            async for chunk in chunks:
                # The file's writes happen in the parser's callbacks: off the event loop.
                await asyncio.to_thread(_write, parser, chunk)
            parser.finalize()
            return receiver.received(path)
        except BaseException:
            _discard(path)
            raise


def _temporary_file(directory: Path) -> BinaryIO:
    """A new file beside where the package will be kept, so that keeping it is a rename."""
    directory.mkdir(parents=True, exist_ok=True)
    file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the caller closes it
        dir=directory, prefix=".upload-", suffix=".part", delete=False
    )
    return cast(BinaryIO, file)


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)  # also when cancelled: no await here


def _write(parser: MultipartParser, chunk: bytes) -> None:
    try:
        parser.write(chunk)
    except MultipartParseError as error:
        raise BadRequest(f"The multipart body cannot be read: {error}") from None


def _file_name(disposition: bytes) -> tuple[str, str | None]:
    """(field name, file name) of a part's Content-Disposition."""
    _, options = parse_options_header(disposition)
    field = options.get(b"name", b"").decode("utf-8", "replace")
    raw_name = options.get(b"filename")
    return field, None if raw_name is None else raw_name.decode("utf-8", "replace")


def check_file_name(name: str) -> str:
    if len(name) > MAX_FILE_NAME or not _PLAIN_NAME.fullmatch(name):
        raise BadRequest(
            f"The file name {name[:100]!r} is not a plain file name: up to {MAX_FILE_NAME} "
            "letters, digits and . _ + ~ -, starting with a letter or digit"
        )
    return name


class _FileReceiver:
    """The parser's callbacks: the `file` part's bytes go to `target`, other parts are
    read past."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self._digest = hashlib.sha1(usedforsecurity=False)
        self._size = 0
        self._header_name = b""
        self._headers: dict[bytes, bytes] = {}
        self._in_file = False
        self._file_name: str | None = None

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
        }

    def received(self, path: Path) -> ReceivedFile:
        if self._file_name is None:
            raise BadRequest(f"The request has no file in the multipart field {FILE_FIELD!r}")
        self._target.flush()
        return ReceivedFile(
            path=path, file_name=self._file_name, size=self._size, sha1=self._digest.hexdigest()
        )

    def _part_begin(self) -> None:
        self._headers, self._header_name, self._in_file = {}, b"", False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        name = self._header_name.lower()
        self._headers[name] = self._headers.get(name, b"") + data[start:end]

    def _header_end(self) -> None:
        self._header_name = b""

    def _headers_finished(self) -> None:
        field, file_name = _file_name(self._headers.get(b"content-disposition", b""))
        if field != FILE_FIELD:
            return
        if self._file_name is not None:
            raise BadRequest(f"Send one file per upload: the field {FILE_FIELD!r} repeats")
        if not file_name:
            raise BadRequest(f"The field {FILE_FIELD!r} carries no file name")
        self._file_name = check_file_name(file_name)
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            chunk = data[start:end]
            self._digest.update(chunk)
            self._size += len(chunk)
            self._target.write(chunk)
