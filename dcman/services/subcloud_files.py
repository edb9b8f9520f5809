"""Where a subcloud's files live in the data directory: under its id, never under a name or a
region name a request or a peer chose, so no input can reach a path outside its own folder."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from dcman.domain.deploy import Step
from dcman.domain.errors import InvalidInput
from dcman.domain.subcloud import validate_region_name

log = logging.getLogger("dcman.files")

SUBCLOUDS_DIR = "subclouds"
OLD_LOGS_DIR = "logs"  # releases before this one kept DATA_DIR/logs/<region>/


def subcloud_dir(data_dir: Path, subcloud_id: int) -> Path:
    """DATA_DIR/subclouds/<id>: every file of one subcloud."""
    return data_dir / SUBCLOUDS_DIR / str(int(subcloud_id))


def phase_log_path(data_dir: Path, subcloud_id: int, step: str) -> Path:
    """The full log of one deploy phase: DATA_DIR/subclouds/<id>/<phase>.log."""
    return subcloud_dir(data_dir, subcloud_id) / f"{Step(step).value}.log"


OPERATION_LOGS = ("backup", "restore")


def operation_log_path(data_dir: Path, subcloud_id: int, operation: str) -> Path:
    """The log of a backup or restore: DATA_DIR/subclouds/<id>/<operation>.log."""
    if operation not in OPERATION_LOGS:
        raise ValueError(f"no log for {operation!r}")
    return subcloud_dir(data_dir, subcloud_id) / f"{operation}.log"


BACKUPS_DIR = "backups"
BACKUP_FILE = "backup.tgz"
CHECKSUM_SUFFIX = ".sha256"
PARTIAL_SUFFIX = ".part"


def backup_path(data_dir: Path, subcloud_id: int, release: str) -> Path:
    """A central backup: DATA_DIR/subclouds/<id>/backups/<release>/backup.tgz, beside it its
    SHA-256 in `sha256sum` format. `release` is checked by dcman.domain.backup.check_release."""
    return subcloud_dir(data_dir, subcloud_id) / BACKUPS_DIR / release / BACKUP_FILE


def checksum_path(backup: Path) -> Path:
    return backup.with_name(backup.name + CHECKSUM_SUFFIX)


def read_checksum(backup: Path) -> str | None:
    """The SHA-256 recorded for a central backup, or None (blocking: run it in a thread)."""
    try:
        return checksum_path(backup).read_text(encoding="ascii").split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return None


def remove_backup(data_dir: Path, subcloud_id: int, release: str) -> bool:
    """Drop a central backup and its checksum; False when there was none (blocking)."""
    backup = backup_path(data_dir, subcloud_id, release)
    existed = backup.is_file()
    shutil.rmtree(backup.parent, ignore_errors=True)
    return existed


def remove_subcloud_files(data_dir: Path, subcloud_id: int) -> None:
    """Drop a deleted subcloud's folder (blocking: run it in a thread)."""
    shutil.rmtree(subcloud_dir(data_dir, subcloud_id), ignore_errors=True)


def move_old_layout(data_dir: Path, regions: dict[str, int]) -> int:
    """Move the phase logs of the old layout (DATA_DIR/logs/<region>/) to DATA_DIR/subclouds/<id>/,
    once, at start. A folder whose name is not a valid region, is a link, or belongs to no
    subcloud is left where it is. Returns how many folders moved (blocking: run it in a thread)."""
    old = data_dir / OLD_LOGS_DIR
    if not old.is_dir() or old.is_symlink():
        return 0
    moved = 0
    for entry in sorted(old.iterdir()):
        subcloud_id = regions.get(entry.name)
        if subcloud_id is None or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            validate_region_name(entry.name)
        except InvalidInput:
            continue
        target = subcloud_dir(data_dir, subcloud_id)
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        for item in entry.iterdir():
            if item.is_file() and not item.is_symlink() and not (target / item.name).exists():
                item.rename(target / item.name)
        try:
            entry.rmdir()
            moved += 1
        except OSError:  # something was left (a name taken in the new folder, a link): keep it
            log.warning("left %s in place: its files could not all move to %s", entry, target)
    if moved:
        log.info("moved the phase logs of %d subclouds from %s to %s", moved, old, data_dir / SUBCLOUDS_DIR)
    try:
        old.rmdir()  # only when nothing is left in it
    except OSError:
        pass
    return moved
