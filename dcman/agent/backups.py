"""A subcloud's own backups, as its agent keeps and serves them (`/v1/backups/{release}`).

A backup phase that succeeds leaves one backup of the subcloud's release on the subcloud. A
real agent given `--backup-file PATH` serves that file, which its backup command writes (the
path is in the command's payload as `backup_file`). Otherwise its bytes are made on the fly,
`backup_mb` MiB of a pattern that names the subcloud and release, so that the simulator holds
no backup in memory and a test can tell whose backup it got.

| call                          | answer                                                       |
|-------------------------------|--------------------------------------------------------------|
| GET    /v1/backups/{release}  | 200, the backup's bytes (streamed); 404 when there is none   |
| DELETE /v1/backups/{release}  | 200 {"deleted": release}; 404 when there is none             |
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from pathlib import Path

from dcman.agent.http import HttpError, Response, StreamResponse, json_response
from dcman.agent.subcloud import SubcloudState

CHUNK_BYTES = 256 * 1024
MIB = 1024 * 1024
DEFAULT_BACKUP_MB = 1.0


def backup_size(state: SubcloudState, default_mb: float = DEFAULT_BACKUP_MB) -> int:
    """The size in bytes of this subcloud's backup (the `backup_mb` fault, else the process's default)."""
    mb = default_mb if state.backup_mb is None else state.backup_mb
    return int(mb * MIB)


def pattern(name: str, release: str) -> bytes:
    """The line a backup of `name` at `release` repeats."""
    return f"{name} {release} backup\n".encode()


def backup_chunks(name: str, release: str, size: int) -> Iterator[bytes]:
    """The backup's bytes, `CHUNK_BYTES` at a time: the pattern repeated and cut at `size`."""
    line = pattern(name, release)
    block = line * (CHUNK_BYTES // len(line) + 1)
    sent = 0
    offset = 0
    while sent < size:
        piece = block[offset:offset + min(CHUNK_BYTES, size - sent)]
        yield piece
        sent += len(piece)
        offset = (offset + len(piece)) % len(line)  # keep the pattern going across chunks


def file_chunks(handle: Any) -> Iterator[bytes]:
    """The bytes of an open file, `CHUNK_BYTES` at a time; the file is closed at the end."""
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def handle(state: SubcloudState, method: str, release: str, default_mb: float = DEFAULT_BACKUP_MB,
           backup_file: Path | None = None) -> Response:
    """GET streams the backup of `release`, DELETE drops it."""
    if not release or "/" in release:
        raise HttpError(404, f"No such agent resource: /v1/backups/{release}.")
    if state.backup_release != release:
        raise HttpError(404, f"Subcloud {state.name} holds no backup of release {release}.")
    if method == "GET":
        if backup_file is None:
            size = backup_size(state, default_mb)
            return StreamResponse(size, backup_chunks(state.name, release, size))
        try:
            opened = backup_file.open("rb")
        except OSError as exc:
            raise HttpError(404, f"The backup command left no readable file at {backup_file}: "
                                 f"{exc.strerror or exc}.") from None
        return StreamResponse(os.fstat(opened.fileno()).st_size, file_chunks(opened))
    if method == "DELETE":
        state.backup_release = None
        if backup_file is not None:
            backup_file.unlink(missing_ok=True)
        return json_response(200, {"deleted": release})
    raise HttpError(405, "Only GET and DELETE are allowed here.", b"Allow: GET, DELETE\r\n")
