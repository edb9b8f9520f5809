"""Request bodies are bounded while they stream: a body past the limit, or one that trickles in
slower than the deadline, is refused before it is held in memory (413 or 408, connection closed)."""

from __future__ import annotations

import asyncio
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dcman.api.errors import error_response

# The largest request dcman needs: three 1 MiB YAML files and a few form fields.
MAX_REQUEST_BYTES = 8 << 20
# A whole body must arrive within this many seconds of its headers.
BODY_SECONDS = 30.0


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, f"The request body is larger than {MAX_REQUEST_BYTES} bytes; it was refused.",
                         headers={"Connection": "close"})


class BodyTooSlow(HTTPException):
    def __init__(self) -> None:
        super().__init__(408, f"The request body did not arrive within {BODY_SECONDS:g} seconds.",
                         headers={"Connection": "close"})


class BodyLimit:
    """Counts the bytes of every request body as the application reads them, whether the
    client sent a Content-Length or chunks; a declared length past the limit is refused
    before a byte of the body is read."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_REQUEST_BYTES, seconds: float = BODY_SECONDS) -> None:
        self.app, self.max_bytes, self.seconds = app, max_bytes, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            exc = BodyTooLarge()
            await error_response(exc.status_code, exc.detail, Request(scope), exc.headers)(scope, receive, send)
            return
        deadline = time.monotonic() + self.seconds
        seen, complete = 0, False

        async def counted() -> Message:
            nonlocal seen, complete
            if complete:  # past the body: a wait for the disconnect is no slow body
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise BodyTooSlow() from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

