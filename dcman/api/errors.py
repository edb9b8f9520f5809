"""Every error leaves the API with one clear sentence, in the body its caller reads: Keystone's
on /v3, and on /v1.0 the reference's JSON body, or the HTML page the dcmanager client parses."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
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


# The general line the dcmanager client shows first ("Details:" then gives the sentence).
EXPLANATION: dict[int, str] = {
    400: "The request is malformed or has invalid values.",
    401: "The request was not authenticated.",
    403: "Access to this resource was denied.",
    404: "The resource could not be found.",
    405: "This method is not allowed on this resource.",
    409: "The request conflicts with the current state of the resource.",
    413: "The request is too large.",
    422: "The request was refused in the current state.",
    500: "The server has hit an internal error.",
    501: "The server does not implement this request.",
    503: "The service is unavailable right now.",
}


def wants_html(request: Request | None) -> bool:
    """The dcmanager client sends `Accept: */*` from python-requests and reads the HTML page the
    reference's web framework answers to it; every other client, and any that names JSON, gets JSON."""
    if request is None:
        return False
    accept = request.headers.get("accept", "").lower()
    if "json" in accept:
        return False
    if "text/html" in accept:
        return True
    return accept in ("", "*/*") and request.headers.get("user-agent", "").startswith("python-requests/")


def _html_page(status: int, message: str) -> str:
    """Lines of text in a body: the status, the general explanation, then the sentence."""
    head = f"{status} {HTTPStatus(status).phrase}"
    explanation = EXPLANATION.get(status, f"{HTTPStatus(status).phrase}.")
    lines = [head, message] if message == explanation else [head, explanation, message]
    text = "\n".join(html.escape(line) for line in lines[1:])
    return (f"<html>\n <head>\n  <title>{head}</title>\n </head>\n <body>\n  <h1>{head}</h1>\n"
            f"{text}\n </body>\n</html>\n")


def error_response(status: int, message: str, request: Request | None = None,
                   headers: Mapping[str, str] | None = None) -> Response:
    """The error answer in the shape the asking client reads (see the module docstring)."""
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Keystone uri="/v3"'
    if request is not None and request.url.path.startswith("/v3"):
        # keystoneauth reads error.message; any other shape it shows as "Unrecognized schema".
        body = {"error": {"code": status, "title": HTTPStatus(status).phrase, "message": message}}
        return JSONResponse(body, status_code=status, headers=headers)
    if wants_html(request):
        return HTMLResponse(_html_page(status, message), status_code=status, headers=headers)
    body = {"error_message": {"title": HTTPStatus(status).phrase, "code": status, "faultstring": message}}
    return JSONResponse(body, status_code=status, headers=headers)


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
    async def _domain(request: Request, exc: DomainError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
        return error_response(STATUS_OF.get(type(exc), 400), exc.message, request, headers)

    @app.exception_handler(PoolTimeout)
    async def _busy(request: Request, exc: PoolTimeout) -> Response:
        log.warning("every database connection is busy; answered 503")
        return error_response(503, "The site is busy: every database connection is in use; try again shortly.",
                              request, {"Retry-After": str(BUSY_RETRY_AFTER_S)})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
        return error_response(400, f"Invalid {where or 'request'}: {first.get('msg', 'invalid value')}.", request)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and message == "Not Found":
            message = "No such resource."
        elif exc.status_code == 405:
            allowed = allowed_methods(request) or headers.get("Allow", "")
            headers["Allow"] = allowed
            message = f"This method is not allowed on this resource; it allows {allowed}."
        return error_response(exc.status_code, message, request, headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "The site hit an internal error; the request was not completed.", request)
