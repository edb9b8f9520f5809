"""/v1.0/peer-groups (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["peer-groups"])
