"""/v1.0/subclouds/{ref}/prestage: the prestage request, with the reference's messages."""

from __future__ import annotations

from collections.abc import Mapping

from dcman.api.commands.wire import BASE64, Wire, object_schema
from dcman.domain.commands import PrestageRequest
from dcman.domain.errors import InvalidInput
from dcman.domain.subcloud import validate_release
from dcman.domain.subcloud_ops import is_major_release
from dcman.domain.values import as_bool
from dcman.services.forms import decode_password

PRESTAGE_PASSWORD = Wire("sysadmin_password", BASE64)
PRESTAGE_RELEASE = Wire("release", {"type": "string", "description": "MM.mm; the site's release when omitted"})
PRESTAGE_FORCE = Wire("force", {"type": ["string", "boolean"],
                                "description": "prestage despite management-affecting alarms"})
PRESTAGE_FOR_INSTALL = Wire("for_install", {"type": ["string", "boolean"]})
PRESTAGE_FOR_SW_DEPLOY = Wire("for_sw_deploy", {"type": ["string", "boolean"]})
PRESTAGE_FIELDS = (PRESTAGE_PASSWORD, PRESTAGE_RELEASE, PRESTAGE_FORCE, PRESTAGE_FOR_INSTALL, PRESTAGE_FOR_SW_DEPLOY)
PRESTAGE_SCHEMA = object_schema(PRESTAGE_FIELDS, required=(PRESTAGE_PASSWORD,), closed=False)


def _option(body: Mapping[str, object], wire: Wire) -> bool:
    """A prestage option: true/false, or the t/f the dcmanager client may send; absent is false."""
    value = body.get(wire.key)
    if value is None:
        return False
    parsed = as_bool(value, ("true", "t"), ("false", "f"))
    if parsed is None:
        raise InvalidInput(f"Invalid value for {wire.key} option: {value}")
    return parsed


def prestage_request(body: Mapping[str, object]) -> PrestageRequest:
    """The reference's messages: the password is required; install or software deploy, not both."""
    keys = [w.key for w in PRESTAGE_FIELDS]
    unknown = sorted(str(key) for key in set(body) - set(keys))
    if unknown:
        raise InvalidInput(f"Cannot prestage with {', '.join(unknown)}; a prestage takes {', '.join(keys)}.")
    if not body.get(PRESTAGE_PASSWORD.key):
        raise InvalidInput("sysadmin_password is required.")
    for_install, for_sw_deploy = _option(body, PRESTAGE_FOR_INSTALL), _option(body, PRESTAGE_FOR_SW_DEPLOY)
    if for_install and for_sw_deploy:
        raise InvalidInput("Prestage is for install or for software deploy, not both: give one of for_install "
                           "and for_sw_deploy.")
    release = body.get(PRESTAGE_RELEASE.key)
    if release is not None and (not isinstance(release, str) or not is_major_release(release)):
        raise InvalidInput("Specified release format is not supported. Version format must be MM.mm.")
    return PrestageRequest(validate_release(release), _option(body, PRESTAGE_FORCE), for_sw_deploy,
                           decode_password(PRESTAGE_PASSWORD.key, body[PRESTAGE_PASSWORD.key]))
