"""Every error leaves the API as the reference's JSON error body with one clear sentence."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dcman.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StateRefused,
    Unauthenticated,
)

log = logging.getLogger("dcman.api")

STATUS_OF: dict[type[DomainError], int] = {
    InvalidInput: 400,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    StateRefused: 422,
}


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"error_message": {"title": HTTPStatus(status).phrase, "code": status, "faultstring": message}}
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Keystone uri="/v3"'
    return JSONResponse(body, status_code=status, headers=headers or None)


def allowed_methods(request: Request) -> str:
    """Every method /openapi.json declares for the requested path (FastAPI answers no HEAD): Starlette
    names only the methods of the first route matching the path, though GET and POST of one
    collection are two routes. Empty for a path the schema does not describe."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part)
                          for part in re.split(r"(\{[^}]*\})", template))
        if re.fullmatch(pattern, request.url.path.rstrip("/") or "/"):
            methods |= {method.upper() for method in operations}
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(STATUS_OF.get(type(exc), 400), exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
        return error_response(400, f"Invalid {where or 'request'}: {first.get('msg', 'invalid value')}.")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and message == "Not Found":
            message = "No such resource."
        elif exc.status_code == 405:
            allowed = allowed_methods(request) or headers.get("Allow", "")
            headers["Allow"] = allowed
            message = f"This method is not allowed on this resource; it allows {allowed}."
        return error_response(exc.status_code, message, headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "The site hit an internal error; the request was not completed.")
