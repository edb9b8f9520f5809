"""Every error leaves the API as the reference's JSON error body with one clear sentence."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from dcman.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StateRefused,
    Throttled,
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
    Throttled: 429,
}
# How long a client is asked to wait when every database connection is busy.
BUSY_RETRY_AFTER_S = 2


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"error_message": {"title": HTTPStatus(status).phrase, "code": status, "faultstring": message}}
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Keystone uri="/v3"'
    return JSONResponse(body, status_code=status, headers=headers or None)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
        return error_response(STATUS_OF.get(type(exc), 400), exc.message, headers)

    @app.exception_handler(PoolTimeout)
    async def _busy(_: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("every database connection is busy; answered 503")
        return error_response(503, "The site is busy: every database connection is in use; try again shortly.",
                              {"Retry-After": str(BUSY_RETRY_AFTER_S)})

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
        return error_response(400, f"Invalid {where or 'request'}: {first.get('msg', 'invalid value')}.")

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and message == "Not Found":
            message = "No such resource."
        elif exc.status_code == 405:
            message = "This method is not allowed on this resource."
        return error_response(exc.status_code, message, exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "The site hit an internal error; the request was not completed.")
