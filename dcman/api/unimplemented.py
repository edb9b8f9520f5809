"""The dcmanager client's routes that dcman does not serve yet: 501 naming what is missing,
instead of a 404 that reads as if the subcloud did not exist.

To implement one of these, include its real router before this one in app.py (the first
matching route answers) and delete its line from NOT_IMPLEMENTED."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.exceptions import HTTPException

router = APIRouter(tags=["not implemented"])


@dataclass(frozen=True)
class Missing:
    """A route of the reference API and the feature it belongs to, as the operator names it."""

    path: str
    methods: tuple[str, ...]
    feature: str


NOT_IMPLEMENTED: tuple[Missing, ...] = (
    Missing("/subcloud-deploy", ("GET", "POST", "DELETE"), "Subcloud deploy upload/show/delete"),
    Missing("/subcloud-deploy/{release}", ("GET", "DELETE"), "Subcloud deploy upload/show/delete"),
    # Every *-strategy command (sw-deploy, kube-upgrade, kube-rootca-update, fw-update,
    # prestage) is /sw-update-strategy with ?type=; strategy-step and strategy-config too.
    Missing("/sw-update-strategy", ("GET", "POST", "DELETE"), "Orchestration strategies (*-strategy)"),
    Missing("/sw-update-strategy/actions", ("POST",), "Orchestration strategies (*-strategy)"),
    Missing("/sw-update-strategy/steps", ("GET",), "Orchestration strategy steps (strategy-step)"),
    Missing("/sw-update-strategy/steps/{cloud_name}", ("GET",), "Orchestration strategy steps (strategy-step)"),
    Missing("/sw-update-options", ("GET",), "Orchestration options (strategy-config)"),
    Missing("/sw-update-options/{subcloud_ref}", ("GET", "POST", "DELETE"), "Orchestration options (strategy-config)"),
)


def _answer(feature: str):
    async def not_implemented() -> Response:
        raise HTTPException(501, f"{feature} is not implemented by dcman.")

    return not_implemented


# Not in /openapi.json: dcman does not serve these; the routes only name what is missing.
for _missing in NOT_IMPLEMENTED:
    router.add_api_route(_missing.path, _answer(_missing.feature), methods=list(_missing.methods),
                         include_in_schema=False)
