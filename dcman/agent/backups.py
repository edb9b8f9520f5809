"""A subcloud's own backups, as its agent keeps and serves them (`/v1/backups/{release}`).

A backup phase that succeeds leaves one backup of the subcloud's release on the subcloud. A
real agent given `--backup-file PATH` serves that file, which its backup command writes (the
path is in the command's payload as `backup_file`). Otherwise its bytes are made on the fly,
`backup_mb` MiB of a pattern that names the subcloud and release, so that the simulator holds
no backup in memory and a test can tell whose backup it got.

A central restore needs the subcloud to hold the site's backup: the site asks for its checksum
and, when the subcloud holds none or another, uploads it in pieces of at most
UPLOAD_PIECE_BYTES, each one buffered whole by the agent's HTTP server, then commits it with the
size and SHA-256 it announced; a mismatch discards it. A real agent writes the pieces beside
its backup file and renames them into place on commit; the simulator keeps only the size and
the checksum (it serves its pattern at that size afterwards).

| call                                          | answer                                                  |
|-----------------------------------------------|---------------------------------------------------------|
| GET    /v1/backups/{release}                  | 200, the backup's bytes (streamed); 404 when none       |
| GET    /v1/backups/{release}/checksum         | 200 {"release", "size", "sha256"}; 404 when none        |
| PUT    /v1/backups/{release}/upload?offset=N  | 200 {"received"}: the piece at byte N (0 starts anew)   |
| POST   /v1/backups/{release}/upload/commit    | 200 {"release", "size", "sha256"} from {"size",         |
|                                               | "sha256"}: the upload now the subcloud's backup         |
| DELETE /v1/backups/{release}                  | 200 {"deleted": release}; 404 when there is none        |
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

from dcman.agent.http import HttpError, Request, Response, StreamResponse, json_response
from dcman.agent.subcloud import SubcloudState

CHUNK_BYTES = 256 * 1024
MIB = 1024 * 1024
DEFAULT_BACKUP_MB = 1.0
# The largest piece of an upload the site sends in one request (the server takes up to 16 MiB).
UPLOAD_PIECE_BYTES = 4 * MIB
UPLOAD_SUFFIX = ".upload"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Upload:
    """A backup the site is sending piece by piece: its release, bytes so far, running SHA-256."""

    release: str
    received: int = 0
    digest: Any = field(default_factory=hashlib.sha256)


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


def handle(state: SubcloudState, request: Request, rest: str, default_mb: float = DEFAULT_BACKUP_MB,
           backup_file: Path | None = None) -> Response | Awaitable[Response]:
    """`/v1/backups/{rest}`: GET streams the backup of a release, DELETE drops it; its checksum
    and the upload of the site's copy."""
    release, _, action = rest.partition("/")
    if not release or not _release_ok(release) or action not in ("", "checksum", "upload", "upload/commit"):
        raise HttpError(404, f"No such agent resource: /v1/backups/{rest}.")
    method = request.method
    if action == "upload":
        _only(method, "PUT")
        return receive_piece(state, release, request, backup_file)
    if action == "upload/commit":
        _only(method, "POST")
        return commit_upload(state, release, request, backup_file)
    if state.backup_release != release:
        raise HttpError(404, f"Subcloud {state.name} holds no backup of release {release}.")
    if action == "checksum":
        _only(method, "GET")
        return _checksum_answer(state, release, default_mb, backup_file)
    if method == "GET":
        if backup_file is None:
            size = held_size(state, default_mb)
            return StreamResponse(size, backup_chunks(state.name, release, size))
        try:
            opened = backup_file.open("rb")
        except OSError as exc:
            raise HttpError(404, f"The backup command left no readable file at {backup_file}: "
                                 f"{exc.strerror or exc}.") from None
        return StreamResponse(os.fstat(opened.fileno()).st_size, file_chunks(opened))
    if method == "DELETE":
        state.backup_release = None
        state.backup_sha256 = state.backup_length = None
        if backup_file is not None:
            backup_file.unlink(missing_ok=True)
        return json_response(200, {"deleted": release})
    raise HttpError(405, "Only GET and DELETE are allowed here.", b"Allow: GET, DELETE\r\n")


def held_size(state: SubcloudState, default_mb: float) -> int:
    """The size of the simulated backup the subcloud holds: an uploaded one's, else its backup_mb's."""
    return backup_size(state, default_mb) if state.backup_length is None else state.backup_length


def _release_ok(release: str) -> bool:
    return len(release) <= 32 and all(c.isalnum() or c in ".-_" for c in release) and release not in (".", "..")


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise HttpError(405, f"Only {allowed} is allowed here.", f"Allow: {allowed}\r\n".encode())


async def _checksum_answer(state: SubcloudState, release: str, default_mb: float,
                           backup_file: Path | None) -> Response:
    """The held backup's size and SHA-256 (an upload's as committed; else computed, off the loop)."""
    if state.backup_sha256 is not None and state.backup_length is not None:
        return json_response(200, {"release": release, "size": state.backup_length, "sha256": state.backup_sha256})
    if backup_file is None:
        size = held_size(state, default_mb)
        digest = await asyncio.to_thread(_digest_of_chunks, backup_chunks(state.name, release, size))
    else:
        try:
            size, digest = await asyncio.to_thread(_digest_of_file, backup_file)
        except OSError as exc:
            raise HttpError(404, f"The backup command left no readable file at {backup_file}: "
                                 f"{exc.strerror or exc}.") from None
    return json_response(200, {"release": release, "size": size, "sha256": digest})


def _digest_of_chunks(chunks: Iterator[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _digest_of_file(path: Path) -> tuple[int, str]:
    with path.open("rb") as handle:
        return os.fstat(handle.fileno()).st_size, _digest_of_chunks(iter(lambda: handle.read(CHUNK_BYTES), b""))


def receive_piece(state: SubcloudState, release: str, request: Request,
                  backup_file: Path | None) -> Response | Awaitable[Response]:
    """One piece of the site's upload, at the byte the upload has reached (0 starts anew)."""
    offset_text = request.params().get("offset", "")
    if not offset_text.isdigit() or len(offset_text) > 15:
        raise HttpError(400, "An upload piece needs offset, the byte it starts at, as a whole number.")
    offset, piece = int(offset_text), request.body
    if len(piece) > UPLOAD_PIECE_BYTES:
        raise HttpError(413, f"An upload piece is at most {UPLOAD_PIECE_BYTES} bytes.")
    upload = state.upload
    if offset == 0:
        upload = state.upload = Upload(release)
    elif upload is None or upload.release != release or upload.received != offset:
        at = "no upload" if upload is None else f"the upload of release {upload.release} is at byte {upload.received}"
        raise HttpError(409, f"Subcloud {state.name} cannot take a piece of release {release} at byte {offset}: {at}.")
    upload.received += len(piece)
    upload.digest.update(piece)
    answer = json_response(200, {"received": upload.received})
    if backup_file is None:
        return answer
    return _write_piece(_upload_path(backup_file), offset, piece, answer)


async def _write_piece(path: Path, offset: int, piece: bytes, answer: Response) -> Response:
    def write() -> None:
        with path.open("r+b" if offset else "wb") as handle:
            handle.seek(offset)
            handle.write(piece)
            handle.truncate()

    try:
        await asyncio.to_thread(write)
    except OSError as exc:
        raise HttpError(409, f"The subcloud cannot store the upload at {path}: {exc.strerror or exc}.") from None
    return answer


def _upload_path(backup_file: Path) -> Path:
    return backup_file.with_name(backup_file.name + UPLOAD_SUFFIX)


def commit_upload(state: SubcloudState, release: str, request: Request,
                  backup_file: Path | None) -> Response | Awaitable[Response]:
    """The upload becomes the subcloud's backup of `release` if it is the size and SHA-256 announced."""
    body = request.json()
    size = body.get("size") if isinstance(body, dict) else None
    sha256 = body.get("sha256") if isinstance(body, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 \
            or not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise HttpError(400, 'A commit needs {"size": <bytes>, "sha256": <64 lower-case hex digits>}.')
    upload = state.upload
    if upload is None or upload.release != release:
        raise HttpError(409, f"Subcloud {state.name} has no upload of release {release} to commit.")
    state.upload = None
    got = upload.digest.hexdigest()
    if (upload.received, got) != (size, sha256):
        if backup_file is not None:
            _upload_path(backup_file).unlink(missing_ok=True)
        raise HttpError(409, f"The upload of release {release} is {upload.received} bytes with SHA-256 {got}, "
                             f"not the {size} bytes with SHA-256 {sha256} announced; it was discarded.")
    answer = json_response(200, {"release": release, "size": size, "sha256": sha256})

    def held() -> Response:
        state.backup_release, state.backup_length, state.backup_sha256 = release, size, sha256
        state.uploads += 1
        return answer

    if backup_file is None:
        return held()
    return _rename_upload(backup_file, held)


async def _rename_upload(backup_file: Path, held: Any) -> Response:
    upload = _upload_path(backup_file)
    try:
        if not await asyncio.to_thread(upload.exists):  # an empty backup sent no piece
            await asyncio.to_thread(upload.write_bytes, b"")
        await asyncio.to_thread(os.replace, upload, backup_file)
    except OSError as exc:
        raise HttpError(409, f"The subcloud cannot store the upload at {backup_file}: {exc.strerror or exc}.") from None
    return held()
