"""Fencing: which site a subcloud obeys, decided at the agent (issue 18).

A site names itself on every request with `X-Dcman-Site: <site uuid>` and, on a managing
request (a phase start, an abort, a backup deletion, an upload's piece or commit), the epoch it
believes the subcloud is at with `X-Dcman-Epoch: <int>` (absent: 0). The rules:

* a managing request from a site is accepted when the subcloud has no system controller yet,
  or when it comes from its system controller at its current epoch;
* one without `X-Dcman-Site` (an old client, a raw test) is accepted when its epoch is not
  older than the subcloud's;
* a rehome is the claim: its `takeover_from` {"system_controller", "fencing_epoch"} must be
  what the subcloud is at now (compare-and-set); accepted, it raises the epoch and makes the
  caller the system controller at once, so a second racer is refused at once.

Every refusal is a 409 with `"fenced": true`, the subcloud's controller and epoch.
"""

from __future__ import annotations

from typing import Any

from dcman.agent.http import HttpError, Response, json_response
from dcman.agent.subcloud import SubcloudState

SITE_HEADER = "x-dcman-site"
EPOCH_HEADER = "x-dcman-epoch"
MAX_SITE_CHARS = 64
MAX_EPOCH_DIGITS = 18


def site_of(headers: dict[str, str]) -> str | None:
    """The calling site's UUID, None when it does not name itself (400 when the name is unusable)."""
    site = headers.get(SITE_HEADER)
    if site is None:
        return None
    site = site.strip()
    if not site or len(site) > MAX_SITE_CHARS:
        raise HttpError(400, f"X-Dcman-Site must be the calling site's UUID (1 to {MAX_SITE_CHARS} characters).")
    return site


def epoch_of(headers: dict[str, str]) -> int:
    """The epoch a managing request carries: `X-Dcman-Epoch`, 0 when absent (400 when not a
    non-negative integer)."""
    text = headers.get(EPOCH_HEADER)
    if text is None:
        return 0
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_EPOCH_DIGITS:
        raise HttpError(400, "X-Dcman-Epoch must be a non-negative integer: the fencing epoch the site "
                             "believes the subcloud is at.")
    return int(text)


def takeover_of(payload: dict[str, Any]) -> tuple[str | None, int] | None:
    """A rehome payload's `takeover_from` as (system_controller, fencing_epoch); None when absent."""
    if "takeover_from" not in payload or payload["takeover_from"] is None:
        return None
    value = payload["takeover_from"]
    if not isinstance(value, dict) or set(value) != {"system_controller", "fencing_epoch"}:
        raise HttpError(400, 'takeover_from must be {"system_controller": <uuid or null>, "fencing_epoch": <int>}: '
                             "what the subcloud answers to now, as the claiming site last saw it.")
    controller, epoch = value["system_controller"], value["fencing_epoch"]
    if controller is not None and (not isinstance(controller, str) or not 0 < len(controller) <= MAX_SITE_CHARS):
        raise HttpError(400, "takeover_from.system_controller must be a site UUID or null.")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 10**MAX_EPOCH_DIGITS:
        raise HttpError(400, "takeover_from.fencing_epoch must be a non-negative integer.")
    return controller, epoch


def refuse_managing(state: SubcloudState, site: str | None, epoch: int) -> Response | None:
    """The 409 of a managing request the fencing rules refuse; None when it is accepted."""
    if site is not None:
        if state.system_controller is None or (site == state.system_controller and epoch == state.fencing_epoch):
            return None
    elif epoch >= state.fencing_epoch:
        return None
    return fenced(state, f"Subcloud {state.name} is fenced: it answers to {_who(state.system_controller)} at epoch "
                         f"{state.fencing_epoch}; this request came from {site or 'an unnamed caller'} with epoch "
                         f"{epoch}.")


def refuse_claim(state: SubcloudState, site: str | None, given: tuple[str | None, int],
                 running: bool) -> Response | None:
    """The 409 of a rehome whose `takeover_from` is not what the subcloud is at now, or that
    a site makes while another's phase runs; None when the claim may go on (a phase running
    for the caller itself is then the ordinary busy refusal)."""
    current = (state.system_controller, state.fencing_epoch)
    if given != current:
        return fenced(state, f"Subcloud {state.name} rehome refused: the subcloud answers to {_who(current[0])} at "
                             f"epoch {current[1]}, not {_who(given[0])} at epoch {given[1]}.")
    if running and site is not None and site != state.system_controller:
        return fenced(state, f"Subcloud {state.name} rehome refused: the subcloud answers to {_who(current[0])} at "
                             f"epoch {current[1]} and runs its {state.phase}.")
    return None


def claim(state: SubcloudState, claimer: str, now: float) -> None:
    """A rehome accepted: the next epoch, under the claiming site, heard from now."""
    state.fencing_epoch += 1
    state.system_controller = claimer
    state.phase_controller = claimer  # a successful rehome confirms it (dcman.agent.phases.finish)
    state.heard_at = now


def accepted(state: SubcloudState, site: str | None) -> None:
    """Book a managing request accepted from `site` (None: unknown) at the subcloud's epoch; a
    second site at one epoch is a double controller (the rules make it impossible for sites
    that name themselves; an unnamed caller can still do it)."""
    if site is None:
        return
    if state.last_epoch == state.fencing_epoch and state.last_site is not None and state.last_site != site:
        state.double_controller += 1
    state.last_site, state.last_epoch = site, state.fencing_epoch


def fenced(state: SubcloudState, message: str) -> Response:
    return json_response(409, {"error": message, "fenced": True, "system_controller": state.system_controller,
                               "fencing_epoch": state.fencing_epoch})


def _who(controller: str | None) -> str:
    return controller if controller is not None else "no system controller"
