"""/openapi.json as the site really answers: FastAPI's schema, with the token every /v1.0 call
needs declared as a security scheme, and without FastAPI's generic 422 validation answer (a
malformed parameter answers 400 with the reference's error body, as each operation declares)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from dcman.api.commands.wire import NAME_RULE
from dcman.domain.text import name_pattern

TOKEN_SCHEME = "token"
# Besides /v1.0, the identity calls that check a token in X-Auth-Token (and the one in X-Subject-Token).
TOKEN_CHECKS = (("get", "/v3/auth/tokens"), ("delete", "/v3/auth/tokens"))
NO_NUL = "^[^\\x00]*$"
# What a body may hold where the site reads nothing: any JSON without NUL in its text.
ANY_JSON_REF = "#/components/schemas/JsonWithoutNul"
ANY_JSON: dict[str, Any] = {"anyOf": [
    {"type": ["null", "boolean", "number"]}, {"type": "string", "pattern": NO_NUL},
    {"type": "array", "items": {"$ref": ANY_JSON_REF}},
    {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": {"$ref": ANY_JSON_REF}}]}
SUBJECT_TOKEN = {"name": "X-Subject-Token", "in": "header", "required": True, "schema": {"type": "string"},
                 "description": "The token to check or revoke."}


def declared_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                _drop_generic_validation_error(operation)
                if path.startswith("/v1.0/") or (method, path) in TOKEN_CHECKS:
                    operation["security"] = [{TOKEN_SCHEME: []}]
                if (method, path) in TOKEN_CHECKS:
                    operation.setdefault("parameters", []).append(SUBJECT_TOKEN)
                for parameter in operation.get("parameters", []):
                    parameter["schema"] = _without_null(parameter["schema"])
                    _refuse_nul(parameter["schema"])
                for content in operation.get("requestBody", {}).get("content", {}).values():
                    _name_rule(content.get("schema", {}))
                    _refuse_nul(content.get("schema", {}))
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["JsonWithoutNul"] = ANY_JSON
        for generic in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(generic, None)
        components["securitySchemes"] = {TOKEN_SCHEME: {
            "type": "apiKey", "in": "header", "name": "X-Auth-Token",
            "description": "A token from POST /v3/auth/tokens (its X-Subject-Token header)."}}
        app.openapi_schema = schema
    return app.openapi_schema


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter is absent, never null: `str | None` declares a string."""
    variants = schema.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants and len(variants) == 2:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**next(v for v in variants if v != {"type": "null"}), **rest}
    return schema


def _name_rule(schema: object) -> None:
    """Each field a command declares a name (dcman.api.commands.wire.Wire.names) declares the name
    rule of dcman.domain.text, at any depth of the body."""
    if isinstance(schema, dict):
        if schema.pop(NAME_RULE, False):
            schema["allOf"] = [*schema.get("allOf", []), {"pattern": name_pattern()}]
        for value in schema.values():
            _name_rule(value)
    elif isinstance(schema, list):
        for value in schema:
            _name_rule(value)


def _refuse_nul(schema: Any) -> None:
    """Every text the site takes refuses NUL (services.forms.reject_nul): a string without a
    pattern of its own declares it."""
    if isinstance(schema, dict):
        for value in schema.values():
            _refuse_nul(value)
        if schema.get("type") == "string" and "enum" not in schema and schema.get("format") != "binary":
            if "pattern" not in schema:
                schema["pattern"] = NO_NUL
            elif schema["pattern"] != NO_NUL:
                schema["allOf"] = [*schema.get("allOf", []), {"pattern": NO_NUL}]
        if schema.get("type") == "object" and schema.get("additionalProperties") in (None, True):
            schema["propertyNames"] = {"pattern": NO_NUL}
            schema["additionalProperties"] = {"$ref": ANY_JSON_REF}
    elif isinstance(schema, list):
        for value in schema:
            _refuse_nul(value)


def _drop_generic_validation_error(operation: dict[str, Any]) -> None:
    answer = operation.get("responses", {}).get("422")
    if answer is not None and "HTTPValidationError" in str(answer.get("content", {})):
        del operation["responses"]["422"]
