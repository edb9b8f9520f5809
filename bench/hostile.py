"""A site under hostile clients: how fast it refuses them and how long an operator waits meanwhile.

Starts one `dcman serve` (SQLite) and measures: a 300 MB chunked body (time to the 413, bytes
the client got to send, the site's RSS growth), a 6,000-deep JSON body and a 20 KB nested
YAML upload (time to the 400), an operator's call during 300 concurrent /metrics scrapes and
during 1,500 idle or half-sent connections, and how long the site takes to close those.

    .venv/bin/python bench/hostile.py

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
from processes import Serve, log


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(call) -> tuple[httpx.Response | None, float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    try:
        response = call()
    except httpx.TransportError:
        response = None
    return response, time.monotonic() - started


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="dcman-hostile-"))
    site = Serve(work / "site", work / "site.log", {})
    site.start()
    headers = {"X-Auth-Token": site.token}
    figures: dict[str, object] = {}
    try:
        sent = 0

        def body():  # type: ignore[no-untyped-def]
            nonlocal sent
            for _ in range(300):
                sent += 1 << 20
                yield b" " * (1 << 20)

        before = rss_mb(site.pid)
        response, took = timed(lambda: httpx.post(site.url + "/v1.0/subcloud-groups", content=body(), timeout=60,
                                                  headers={**headers, "Content-Type": "application/json"}))
        figures["body_300mb"] = {"status": response.status_code if response else "closed", "seconds": round(took, 3),
                                 "mb_sent": sent >> 20, "rss_growth_mb": round(rss_mb(site.pid) - before, 1)}
        log(f"300 MB body: {figures['body_300mb']}")

        deep = '{"name": ' + "[" * 6000 + "]" * 6000 + "}"
        response, took = timed(lambda: httpx.post(site.url + "/v1.0/subcloud-groups", content=deep, timeout=60,
                                                  headers={**headers, "Content-Type": "application/json"}))
        figures["json_6000_deep"] = {"status": response.status_code if response else None, "seconds": round(took, 3)}

        bomb = ("name: bomb\nsystem_mode: " + "[" * 10_000 + "]" * 10_000 + "\n").encode()
        data = {"bootstrap-address": "10.10.10.12", "sysadmin_password": base64.b64encode(b"St8rlingX*").decode()}
        response, took = timed(lambda: httpx.post(site.url + "/v1.0/subclouds", data=data, headers=headers, timeout=60,
                                                  files={"bootstrap_values": ("b.yaml", bomb, "application/x-yaml")}))
        figures["yaml_20kb_nested"] = {"status": response.status_code if response else None, "seconds": round(took, 3)}
        log(f"parser bombs: {figures['json_6000_deep']} {figures['yaml_20kb_nested']}")

        async def flood(started: threading.Event) -> list[int]:
            async with httpx.AsyncClient(base_url=site.url, limits=httpx.Limits(max_connections=300),
                                         timeout=60) as scraper:
                scrapes = [asyncio.create_task(scraper.get("/metrics")) for _ in range(300)]
                await asyncio.sleep(0.05)
                started.set()
                return [r.status_code for r in await asyncio.gather(*scrapes)]

        def scrapes_and_operator() -> dict[str, object]:
            """The scrapes from one thread, the operator's call from another (its own client loop)."""
            started, statuses = threading.Event(), []
            thread = threading.Thread(target=lambda: statuses.extend(asyncio.run(flood(started))))
            thread.start()
            started.wait()
            answered, took = timed(lambda: httpx.get(site.url + "/v1.0/subclouds", headers=headers, timeout=60))
            thread.join()
            return {"operator_status": answered.status_code if answered else None, "operator_seconds": round(took, 2),
                    "scrapes_200": statuses.count(200), "scrapes_503": statuses.count(503)}

        figures["scrapes_300"] = scrapes_and_operator()
        log(f"300 scrapes: {figures['scrapes_300']}")

        socks = []
        for i in range(1500):
            sock = socket.create_connection(("127.0.0.1", site.port), timeout=30)
            if i % 2:
                sock.sendall(b"GET / HTTP/1.1\r\nHo")
            socks.append(sock)
        response, took = timed(lambda: httpx.get(site.url + "/v1.0/subclouds", headers=headers, timeout=30))
        started, closed = time.monotonic(), 0
        for sock in socks:
            sock.settimeout(max(0.1, started + 30 - time.monotonic()))
            try:
                closed += sock.recv(64) == b""
            except OSError:
                closed += 1
            sock.close()
        figures["idle_1500"] = {"operator_status": response.status_code if response else None,
                                "operator_seconds": round(took, 3), "closed_by_site": closed,
                                "all_closed_after_s": round(time.monotonic() - started, 1)}
        log(f"1,500 idle connections: {figures['idle_1500']}")
    finally:
        site.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
