"""What a real agent keeps across restarts (`dcman agent --state-file PATH`): its system
controller, that controller's gateway and its fencing epoch, so that a restarted agent stays
fenced against the sites it had already turned away (issue 18).

The file is JSON, written whole to a temporary file and renamed over the old one on every
change, so a crash leaves either the old or the new state, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dcman.agent.subcloud import SubcloudState

Kept = tuple[str | None, str | None, int]


class StateFileError(ValueError):
    """The state file cannot be read or is not one this agent wrote; the message says which."""


def kept(state: SubcloudState) -> Kept:
    return state.system_controller, state.controller_gateway, state.fencing_epoch


def load(path: Path, state: SubcloudState) -> None:
    """Restore the kept fields into `state` (nothing when the file does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateFileError(f"cannot read the state file {path}: {exc.strerror or exc}") from None
    try:
        document: Any = json.loads(text)
    except ValueError:
        raise StateFileError(f"the state file {path} is not JSON") from None
    controller = document.get("system_controller") if isinstance(document, dict) else None
    gateway = document.get("controller_gateway") if isinstance(document, dict) else None
    epoch = document.get("fencing_epoch") if isinstance(document, dict) else None
    if not isinstance(document, dict) or not (controller is None or isinstance(controller, str)) \
            or not (gateway is None or isinstance(gateway, str)) \
            or isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise StateFileError(f"the state file {path} is not an agent state "
                             '({"system_controller", "controller_gateway", "fencing_epoch"})')
    state.system_controller, state.controller_gateway, state.fencing_epoch = controller, gateway, epoch


def save(path: Path, values: Kept) -> None:
    """Write the kept fields atomically (temporary file, fsync, rename)."""
    controller, gateway, epoch = values
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump({"system_controller": controller, "controller_gateway": gateway, "fencing_epoch": epoch}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
