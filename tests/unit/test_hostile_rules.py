"""The rules behind the hostile-input tests, function by function: region names, the file
layout under the data directory, password hashes past 72 bytes, and the login throttle."""

from __future__ import annotations

import bcrypt
import pytest

from dcman.domain.errors import InvalidInput
from dcman.domain.subcloud import validate_region_name
from dcman.domain.throttle import LoginThrottle
from dcman.services.secrets import check_password_sync, hash_password_sync
from dcman.services.subcloud_files import move_old_layout, phase_log_path, subcloud_dir


@pytest.mark.parametrize("region", ["0d6bc0a2e8f54f0a9a2c1e8b5f0c7d11", "subcloud1", "edge-1.lab", "Région_7"])
def test_region_names_the_reference_uses_are_kept(region):
    assert validate_region_name(region) == region


@pytest.mark.parametrize("region", ["..", ".", "../x", "a/b", "a\\b", "x\x00", "x\n", "x y", "\ud800",
                                    "RegionOne", "SystemController", "", "r" * 256])
def test_region_names_that_could_name_a_path_are_refused(region):
    with pytest.raises(InvalidInput):
        validate_region_name(region)


def test_files_are_named_by_id_only(tmp_path):
    assert phase_log_path(tmp_path, 7, "bootstrap") == tmp_path / "subclouds" / "7" / "bootstrap.log"
    with pytest.raises(ValueError):
        phase_log_path(tmp_path, 7, "../../etc")


def test_the_old_by_region_layout_moves_under_ids_and_odd_folders_stay(tmp_path):
    old = tmp_path / "logs"
    (old / "region-a").mkdir(parents=True)
    (old / "region-a" / "bootstrap.log").write_text("a")
    (old / "region-b").mkdir()
    (old / "region-b" / "install.log").write_text("b")
    subcloud_dir(tmp_path, 6).mkdir(parents=True)  # a folder already made by this release: merged
    (subcloud_dir(tmp_path, 6) / "bootstrap.log").write_text("new")
    (old / "orphan").mkdir()  # no subcloud has this region: left alone
    (tmp_path / "elsewhere").mkdir()
    (old / "linked").symlink_to(tmp_path / "elsewhere")
    moved = move_old_layout(tmp_path, {"region-a": 3, "linked": 4, "orphan-not": 5, "region-b": 6})
    assert moved == 2
    assert (subcloud_dir(tmp_path, 3) / "bootstrap.log").read_text() == "a"
    assert sorted(p.name for p in subcloud_dir(tmp_path, 6).iterdir()) == ["bootstrap.log", "install.log"]
    assert (old / "orphan").is_dir() and (old / "linked").is_symlink()
    assert not subcloud_dir(tmp_path, 4).exists()


def test_passwords_past_72_bytes_count_whole_and_old_hashes_still_verify():
    long = "x" * 72 + "one end"
    hashed = hash_password_sync(long)
    assert check_password_sync(long, hashed)
    assert not check_password_sync("x" * 72 + "another end", hashed)
    legacy = bcrypt.hashpw(b"old-Password-1", bcrypt.gensalt(rounds=4)).decode()  # as older releases stored
    assert check_password_sync("old-Password-1", legacy)
    assert not check_password_sync("old-Password-2", legacy)
    assert not check_password_sync("y" * 100, legacy)  # no ValueError out of bcrypt


def test_the_throttle_doubles_its_wait_and_forgets_at_success():
    throttle, key = LoginThrottle(), LoginThrottle.key("Admin", "10.0.0.1")
    for _ in range(3):
        throttle.failed(key, 100.0)
    assert throttle.wait(key, 100.0) == 0
    throttle.failed(key, 100.0)
    assert throttle.wait(key, 100.0) == 1 and throttle.wait(key, 101.0) == 0
    throttle.failed(key, 101.0)
    assert throttle.wait(key, 101.0) == 2
    throttle.failed(key, 103.0)
    assert throttle.wait(key, 103.0) == 4
    assert throttle.wait(LoginThrottle.key("admin", "10.0.0.2"), 103.0) == 0
    assert throttle.wait(LoginThrottle.key("ADMIN", "10.0.0.1"), 103.0) == 4  # names match case-blind
    throttle.succeeded(key)
    assert throttle.wait(key, 103.0) == 0


async def _answer_of(limit: "BodyLimit", messages: list[dict], pause: float = 0.0) -> tuple[int, bytes]:
    """Send `messages` as the request body through `limit` to an app that reads the whole body."""
    import asyncio

    from starlette.requests import Request
    from starlette.responses import Response

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        from starlette.exceptions import HTTPException

        try:
            body = await Request(scope, receive).body()
            response = Response(str(len(body)))
        except HTTPException as exc:
            response = Response(exc.detail, status_code=exc.status_code)
        await response(scope, receive, send)

    limit.app = app
    queue = list(messages)

    async def receive() -> dict:
        if not queue:
            await asyncio.sleep(3600)  # a client that stops sending
        await asyncio.sleep(pause)
        return queue.pop(0)

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await limit({"type": "http", "method": "POST", "path": "/", "headers": []}, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_the_body_limit_counts_chunks_and_stops_a_body_that_never_ends():
    from dcman.api.limits import BodyLimit

    chunks = [{"type": "http.request", "body": b"x" * 400, "more_body": True} for _ in range(3)]
    status, text = await _answer_of(BodyLimit(None, max_bytes=1000), chunks)  # type: ignore[arg-type]
    assert status == 413 and b"larger than" in text
    status, text = await _answer_of(BodyLimit(None, max_bytes=1000, seconds=0.3), chunks[:1])  # type: ignore[arg-type]
    assert status == 408 and b"did not arrive" in text
    whole = [*chunks[:2], {"type": "http.request", "body": b"", "more_body": False}]
    assert await _answer_of(BodyLimit(None, max_bytes=1000), whole) == (200, b"800")  # type: ignore[arg-type]
