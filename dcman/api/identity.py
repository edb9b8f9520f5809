"""A Keystone-v3-compatible identity endpoint, enough for keystoneauth and the dcmanager client."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from typing_extensions import TypedDict

from dcman.api.bodies import read_body
from dcman.api.responses import answers
from dcman.api.state import site_context
from dcman.domain.errors import InvalidInput
from dcman.services import accounts
from dcman.services.accounts import IssuedToken
from dcman.services.context import SiteContext

router = APIRouter(prefix="/v3", tags=["identity"])

DOMAIN = {"id": "default", "name": "Default"}
PROJECT = {"id": "admin", "name": "admin", "domain": DOMAIN}
REGION = "SystemController"

_NAMED = {"type": "object", "properties": {"name": {"type": "string"}}}
AUTH_SCHEMA = {
    "type": "object",
    "required": ["auth"],
    "properties": {
        "auth": {
            "type": "object",
            "required": ["identity"],
            "properties": {
                "identity": {
                    "type": "object",
                    "required": ["methods", "password"],
                    "properties": {
                        "methods": {"type": "array", "items": {"type": "string", "enum": ["password"]},
                                    "minItems": 1},
                        "password": {"type": "object", "required": ["user"], "properties": {"user": {
                            "type": "object", "required": ["name", "password"],
                            "properties": {"name": {"type": "string"}, "password": {"type": "string"},
                                           "domain": _NAMED}}}},
                    },
                },
                # The site has one project, admin.
                "scope": {"type": "object", "properties": {"project": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "enum": ["admin"]}, "domain": _NAMED}}}},
            },
        }
    },
}


class Named(TypedDict):
    id: str
    name: str


class Project(Named):
    domain: Named


class User(Named):
    domain: Named


class Endpoint(TypedDict):
    id: str
    interface: str
    region: str
    region_id: str
    url: str


class Service(TypedDict):
    type: str
    name: str
    id: str
    endpoints: list[Endpoint]


class Token(TypedDict):
    methods: list[str]
    expires_at: str
    issued_at: str
    user: User
    project: Project
    roles: list[Named]
    catalog: list[Service]


class TokenBody(TypedDict):
    token: Token


VersionLink = TypedDict("VersionLink", {"rel": str, "href": str})
MediaType = TypedDict("MediaType", {"base": str, "type": str})
IdentityVersion = TypedDict("IdentityVersion", {"id": str, "status": str, "updated": str,
                                                "links": list[VersionLink], "media-types": list[MediaType]})


class Discovery(TypedDict):
    version: IdentityVersion


SUBJECT_TOKEN = {"X-Subject-Token": {"description": "The token.", "schema": {"type": "string"}}}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _token_body(request: Request, issued: IssuedToken, methods: list[str]) -> dict[str, Any]:
    base = _base(request)

    def service(kind: str, name: str, url: str) -> dict[str, Any]:
        return {
            "type": kind,
            "name": name,
            "id": name,
            "endpoints": [
                {"id": f"{name}-{iface}", "interface": iface, "region": REGION, "region_id": REGION, "url": url}
                for iface in ("public", "internal", "admin")
            ],
        }

    principal = issued.principal
    return {
        "token": {
            "methods": methods,
            "expires_at": _iso(issued.expires_at),
            "issued_at": _iso(issued.issued_at),
            "user": {"id": str(principal.account_id), "name": principal.name, "domain": DOMAIN},
            "project": PROJECT,
            "roles": [{"id": principal.role.value, "name": principal.role.value}],
            "catalog": [
                service("dcmanager", "dcmanager", f"{base}/v1.0"),
                service("identity", "keystone", f"{base}/v3"),
            ],
        }
    }


@router.get("", response_model=None, responses=answers(Discovery, keystone=True))
async def discovery(request: Request) -> dict[str, Any]:
    return {
        "version": {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{_base(request)}/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
        }
    }


def _get(mapping: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


@router.post("/auth/tokens", status_code=201, response_model=None,
             responses=answers(TokenBody, 400, 401, 413, 429, 503, status=201, headers=SUBJECT_TOKEN,
                               keystone=True), openapi_extra={
    "requestBody": {"required": True, "content": {"application/json": {"schema": AUTH_SCHEMA}}}})
async def issue_token(request: Request, ctx: SiteContext = Depends(site_context)) -> JSONResponse:
    body = await read_body(request, allow_form=False)
    identity = _get(body, "auth", "identity")
    methods = _get(identity, "methods")
    if not isinstance(methods, list) or not methods:
        raise InvalidInput("auth.identity.methods must list password or token.")
    scope_project = _get(body, "auth", "scope", "project", "name")
    if scope_project is not None and scope_project != PROJECT["name"]:
        raise InvalidInput(f"Unknown project {scope_project!r}; this site has one project, admin.")
    if "password" in methods:
        user = _get(identity, "password", "user")
        name, password = _get(user, "name"), _get(user, "password")
        if not isinstance(name, str) or not isinstance(password, str):
            raise InvalidInput("auth.identity.password.user needs a name and a password.")
        client = request.client.host if request.client else ""
        issued = await accounts.login(ctx.engine, name, password, ctx.settings.token_lifetime,
                                      ctx.login_throttle, client)
    elif "token" in methods:
        token = _get(identity, "token", "id")
        if not isinstance(token, str):
            raise InvalidInput("auth.identity.token.id is required for the token method.")
        issued = await accounts.rescope(ctx.engine, token)
    else:
        raise InvalidInput("Unsupported authentication method; use password or token.")
    return JSONResponse(
        _token_body(request, issued, [m for m in methods if m in ("password", "token")]),
        status_code=201,
        headers={"X-Subject-Token": issued.token},
    )


@router.get("/auth/tokens", response_model=None,
            responses=answers(TokenBody, 401, 503, headers=SUBJECT_TOKEN, keystone=True))
async def check_token(request: Request, ctx: SiteContext = Depends(site_context)) -> JSONResponse:
    await accounts.validate(ctx.engine, request.headers.get("x-auth-token"))
    subject = await accounts.validate(ctx.engine, request.headers.get("x-subject-token"))
    return JSONResponse(_token_body(request, subject, ["token"]), headers={"X-Subject-Token": subject.token})


@router.delete("/auth/tokens", status_code=204, response_class=Response,
               responses=answers(None, 401, 503, status=204, keystone=True))
async def revoke_token(request: Request, ctx: SiteContext = Depends(site_context)) -> Response:
    await accounts.validate(ctx.engine, request.headers.get("x-auth-token"))
    subject = request.headers.get("x-subject-token")
    await accounts.revoke(ctx.engine, subject or "")
    return Response(status_code=204)
