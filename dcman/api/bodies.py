"""Reading request bodies: JSON objects or multipart/urlencoded forms, as the dcmanager client
sends either. Returns a plain dict; uploaded files become bytes."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from dcman.domain.errors import InvalidInput
from dcman.services.forms import reject_nul

MAX_BODY_BYTES = 4 << 20


async def read_body(request: Request, allow_form: bool = True) -> dict[str, Any]:
    body = await _read(request, allow_form)
    reject_nul(body)
    return body


async def _read(request: Request, allow_form: bool) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if allow_form and content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await _read_form(request)
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidInput(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return body


async def _read_form(request: Request) -> dict[str, Any]:
    try:
        form = await request.form(max_part_size=MAX_BODY_BYTES)
    except Exception as exc:  # the multipart parser raises several kinds of errors
        raise InvalidInput(f"The form body cannot be parsed: {exc}.") from None
    body: dict[str, Any] = {}
    for key, value in form.multi_items():
        body[key] = await value.read() if isinstance(value, UploadFile) else value
    return body
