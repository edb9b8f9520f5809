"""Access to the site context from a request."""

from __future__ import annotations

from fastapi import Request

from dcman.services.context import SiteContext


def site_context(request: Request) -> SiteContext:
    return request.app.state.ctx
