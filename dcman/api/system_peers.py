"""/v1.0/system-peers (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["system-peers"])
