"""The dcmanager client asks for collections with a trailing slash (`/v1.0/subclouds/`): the
API answers those paths as the same resource instead of redirecting, because a redirect would
make the client send a streamed multipart body twice."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/v1.0/"


class TrailingSlash:
    """ASGI middleware: `/v1.0/<path>/` is routed as `/v1.0/<path>`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith(PREFIX) and path.endswith("/") and len(path) > len(PREFIX):
            scope = dict(scope, path=path.rstrip("/"))
            raw = scope.get("raw_path")
            if isinstance(raw, bytes):
                scope["raw_path"] = raw.rstrip(b"/")
        await self.app(scope, receive, send)
