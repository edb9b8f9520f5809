"""The token check in front of every /v1.0 call: 401 without a valid token, 403 for a
reader's change."""

from __future__ import annotations

from fastapi import Depends, Request

from dcman.api.state import site_context
from dcman.domain.accounts import Principal, authorize, is_peer_request
from dcman.services import accounts
from dcman.services.context import SiteContext

READ_METHODS = ("GET", "HEAD", "OPTIONS")


async def authenticated(request: Request, ctx: SiteContext = Depends(site_context)) -> Principal:
    issued = await accounts.validate(ctx.engine, request.headers.get("x-auth-token"))
    authorize(issued.principal, mutating=request.method not in READ_METHODS)
    return issued.principal


async def from_peer(request: Request, principal: Principal = Depends(authenticated)) -> bool:
    """Whether this request comes from a peer site (and may bypass the peer-group rules)."""
    return is_peer_request(principal, request.headers.get("user-agent"))
