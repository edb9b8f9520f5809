"""/ui: the operator dashboard, three static files shipped in the package. The page itself
is public; everything it shows comes from the /v1.0 API with the operator's token."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from dcman.domain.errors import NotFound

STATIC = Path(__file__).resolve().parent.parent / "ui" / "static"
FILES = {"app.js": "text/javascript", "app.css": "text/css"}
NO_CACHE = {"Cache-Control": "no-cache"}  # a site upgrade must not leave an old script behind

router = APIRouter(include_in_schema=False)


@router.get("/ui")
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=NO_CACHE)


@router.get("/ui/")
async def page_slash() -> RedirectResponse:
    return RedirectResponse("/ui")


@router.get("/ui/{name}")
async def asset(name: str) -> FileResponse:
    if name not in FILES:
        raise NotFound(f"No such dashboard file: {name}.")
    return FileResponse(STATIC / name, media_type=FILES[name], headers=NO_CACHE)
