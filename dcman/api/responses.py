"""What each operation declares in /openapi.json: its success with the schema of its answer,
and every error status it can answer, each with the reference's error body. The schemathesis
run of the suite holds the site to these declarations."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

# Why each error status is answered; one sentence in the error body says the particular case.
ERRORS: dict[int, str] = {
    400: "The request is malformed: a field, parameter or uploaded file is invalid.",
    401: "No valid token: X-Auth-Token is missing, unknown, revoked or expired.",
    403: "The account has the reader role, which may only read.",
    404: "The named object does not exist.",
    409: "The request collides with an existing object (a taken name or association).",
    413: "The request body is larger than the site accepts.",
    422: "The object's current state forbids the request.",
    429: "Too many failed logins for this account from this client; retry after Retry-After seconds.",
    503: "The site is too busy to answer now; retry after Retry-After seconds.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}


class ErrorMessage(TypedDict):
    title: str
    code: int
    faultstring: str


class ErrorBody(TypedDict):
    """Every error answer: the reference's body, with one sentence in `faultstring`."""

    error_message: ErrorMessage


class KeystoneError(TypedDict):
    code: int
    title: str
    message: str


class KeystoneErrorBody(TypedDict):
    """Every error answer on /v3: Keystone's body, which keystoneauth reads the reason from."""

    error: KeystoneError


def answers(ok: Any, *errors: int, status: int = 200, headers: dict[str, Any] | None = None,
            media_type: str = "application/json", keystone: bool = False) -> dict[int | str, dict[str, Any]]:
    """The `responses` of an operation: `ok` (a TypedDict, or None for an empty body) with
    `status`, and each of `errors` with the error body (Keystone's for the /v3 operations)."""
    success: dict[str, Any] = {"description": "Success."}
    if ok is not None:
        success["model"] = ok
    elif media_type != "application/json":
        success["content"] = {media_type: {"schema": {"type": "string"}}}
    else:
        success["content"] = {}
    if headers:
        success["headers"] = headers
    declared: dict[int | str, dict[str, Any]] = {status: success}
    for code in sorted(set(errors)):
        error: dict[str, Any] = {"description": ERRORS[code], "model": KeystoneErrorBody if keystone else ErrorBody}
        if code in (429, 503):
            error["headers"] = _RETRY_AFTER
        if code == 401:
            error["headers"] = {"WWW-Authenticate": {"description": "Where to get a token.",
                                                     "schema": {"type": "string"}}}
        declared[code] = error
    return declared


def reads(ok: Any, *errors: int) -> dict[int | str, dict[str, Any]]:
    """A /v1.0 read: any may lack a valid token or find the site too busy."""
    return answers(ok, 401, 503, *errors)


def writes(ok: Any, *errors: int, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """A /v1.0 change: it may also be malformed, or come from a reader."""
    return answers(ok, 400, 401, 403, 503, *errors, status=status)
