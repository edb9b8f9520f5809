"""/v1.0/subcloud-backup: create, restore and delete."""

from __future__ import annotations

from collections.abc import Mapping

from dcman.api.commands.wire import (
    BASE64,
    FILE,
    FORM_BOOL,
    TEXT,
    Wire,
    object_schema,
)
from dcman.domain.commands import (
    BackupCreate,
    BackupDelete,
    BackupRestore,
    BackupTarget,
)
from dcman.domain.errors import InvalidInput
from dcman.domain.values import as_bool
from dcman.services.forms import YamlUpload, decode_password, parse_yaml_mapping

BK_SUBCLOUD = Wire("subcloud", {"type": "string", "description": "name or id"})
BK_GROUP = Wire("group", {"type": "string", "description": "name or id"})
BK_LOCAL_ONLY = Wire("local_only", FORM_BOOL)
BK_REGISTRY_IMAGES = Wire("registry_images", FORM_BOOL)
BK_WITH_INSTALL = Wire("with_install", FORM_BOOL)
BK_RELEASE = Wire("release", TEXT)
BK_BACKUP_VALUES = Wire("backup_values", FILE)
BK_RESTORE_VALUES = Wire("restore_values", FILE)
BK_PASSWORD = Wire("sysadmin_password", BASE64)
BK_DELETE_PASSWORD = Wire("sysadmin_password", {"type": "string", "description": "base64; for local_only"})
# Restore modes the reference has and dcman refuses: accepted as fields, refused when true.
BK_UNSUPPORTED_MODES = ("auto", "factory", "on_site")
BACKUP_CREATE_FIELDS = (BK_SUBCLOUD, BK_GROUP, BK_LOCAL_ONLY, BK_REGISTRY_IMAGES, BK_BACKUP_VALUES, BK_PASSWORD)
BACKUP_DELETE_FIELDS = (BK_SUBCLOUD, BK_GROUP, BK_LOCAL_ONLY, BK_DELETE_PASSWORD)
BACKUP_RESTORE_FIELDS = (BK_SUBCLOUD, BK_GROUP, BK_LOCAL_ONLY, BK_WITH_INSTALL, BK_REGISTRY_IMAGES, BK_RELEASE,
                         BK_RESTORE_VALUES, BK_PASSWORD)
BACKUP_CREATE_SCHEMA = object_schema(BACKUP_CREATE_FIELDS, required=(BK_PASSWORD,), closed=False, in_form=True)
BACKUP_DELETE_SCHEMA = object_schema(BACKUP_DELETE_FIELDS, closed=False, in_form=True)
BACKUP_RESTORE_SCHEMA = object_schema(BACKUP_RESTORE_FIELDS, required=(BK_PASSWORD,), closed=False, in_form=True)


def _backup_fields(body: Mapping[str, object], wires: tuple[Wire, ...], *extra: str) -> None:
    unexpected = sorted(str(key) for key in set(body) - {w.key for w in wires} - set(extra))
    if unexpected:
        raise InvalidInput(f"Unexpected parameter received: {', '.join(unexpected)}.")


def _backup_flag(body: Mapping[str, object], name: str) -> bool:
    """A boolean option, sent as "true"/"false" by the dcmanager client (or as a JSON boolean)."""
    value = body.get(name)
    if value is None or value == "":
        return False
    parsed = as_bool(value)
    if parsed is None or (isinstance(value, str) and value != value.strip()):
        raise InvalidInput(f"Invalid {name} value, should be boolean.")
    return parsed


def _backup_values(body: Mapping[str, object], wire: Wire) -> dict[str, object]:
    """backup_values / restore_values: a JSON object, or the YAML file the dcmanager client uploads."""
    value = body.get(wire.key)
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, (str, bytes, YamlUpload)):
        return parse_yaml_mapping(wire.key, value) or {}
    raise InvalidInput(f"The {wire.key} must be a YAML file or a JSON object.")


def _backup_ref(body: Mapping[str, object], wire: Wire) -> str | None:
    value = body.get(wire.key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InvalidInput(f"The {wire.key} must be a name or an id.")
    return value


def _backup_target(body: Mapping[str, object]) -> BackupTarget:
    subcloud, group = _backup_ref(body, BK_SUBCLOUD), _backup_ref(body, BK_GROUP)
    if subcloud and group:
        raise InvalidInput("'subcloud' and 'group' parameters should not be given at the same time.")
    if not subcloud and not group:
        raise InvalidInput("'subcloud' or 'group' parameter is required.")
    return BackupTarget(subcloud, group)


def backup_create(body: Mapping[str, object]) -> BackupCreate:
    _backup_fields(body, BACKUP_CREATE_FIELDS)
    password = decode_password(BK_PASSWORD.key, body.get(BK_PASSWORD.key))
    local_only, registry_images = _backup_flag(body, BK_LOCAL_ONLY.key), _backup_flag(body, BK_REGISTRY_IMAGES.key)
    if registry_images and not local_only:
        raise InvalidInput("Option registry_images can not be used without local_only option.")
    backup_values = _backup_values(body, BK_BACKUP_VALUES)
    return BackupCreate(_backup_target(body), password, local_only, registry_images, backup_values)


def backup_restore(body: Mapping[str, object]) -> BackupRestore:
    if not body:
        raise InvalidInput("Body required.")
    _backup_fields(body, BACKUP_RESTORE_FIELDS, *BK_UNSUPPORTED_MODES)
    password = decode_password(BK_PASSWORD.key, body.get(BK_PASSWORD.key))
    local_only, with_install = _backup_flag(body, BK_LOCAL_ONLY.key), _backup_flag(body, BK_WITH_INSTALL.key)
    registry_images = _backup_flag(body, BK_REGISTRY_IMAGES.key)
    for mode in BK_UNSUPPORTED_MODES:
        if _backup_flag(body, mode):
            raise InvalidInput(f"The {mode} restore mode is not supported by dcman.")
    if registry_images and not local_only:
        raise InvalidInput("Option registry_images cannot be used without local_only option.")
    release = _backup_ref(body, BK_RELEASE)
    if release and not with_install:
        raise InvalidInput("Option release cannot be used without 'with_install' or 'factory' options.")
    restore_values = _backup_values(body, BK_RESTORE_VALUES)
    if not isinstance(restore_values.get("bootstrap_address", {}), dict):
        raise InvalidInput("The bootstrap_address provided in restore_values is in invalid format.")
    return BackupRestore(_backup_target(body), password, local_only, with_install, registry_images, release,
                         restore_values)


def backup_delete(body: Mapping[str, object]) -> BackupDelete:
    """`release` may come in the body too (the dcmanager client's); the path's is the one used."""
    _backup_fields(body, BACKUP_DELETE_FIELDS, BK_RELEASE.key)
    local_only = _backup_flag(body, BK_LOCAL_ONLY.key)
    password = decode_password(BK_DELETE_PASSWORD.key, body.get(BK_DELETE_PASSWORD.key)) if local_only else None
    return BackupDelete(_backup_target(body), local_only, password)
