"""What the benchmarks share: ports, logging, and CPU and memory of a process from /proc."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

DCMAN = str(Path(sys.executable).with_name("dcman"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout}s")


ADMIN_PASSWORD = "bench-Admin-1"


class Serve:
    """One `dcman serve` in `data_dir` (SQLite there unless `env` names a database), on a port
    it keeps across restarts, so that a peer's record of its endpoint stays right after a stop
    and a start."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str]) -> None:
        self.data_dir, self.log_path, self.extra_env = data_dir, log_path, env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = data_dir / "dcman.sqlite"
        self.process: subprocess.Popen | None = None
        self.token = ""

    def start(self) -> None:
        inherited = {k: v for k, v in os.environ.items() if k not in ("DCMAN_DATABASE_URL", "DCMAN_CONFIG_FILE")}
        env = {**inherited, "DCMAN_DATA_DIR": str(self.data_dir), "DCMAN_BIND": f"127.0.0.1:{self.port}",
               "DCMAN_ADMIN_PASSWORD": ADMIN_PASSWORD, "DCMAN_TOKEN_LIFETIME": "86400", **self.extra_env}
        self.process = subprocess.Popen([DCMAN, "serve"], stdout=self.log_path.open("ab"),
                                        stderr=subprocess.STDOUT, env=env)
        wait_http(self.url + "/")
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "password": ADMIN_PASSWORD, "domain": {"name": "Default"}}}}}}
        self.token = httpx.post(self.url + "/v3/auth/tokens", json=body, timeout=60).headers["X-Subject-Token"]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process)

    def kill(self) -> None:
        """SIGKILL, as a site that goes dark: no clean shutdown at all."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


class SiteWithSim:
    """A `dcman sim --count N` and a `dcman serve` (SQLite in `work/site`) that audits it;
    `add_site` starts more sites on the same simulator (a peer site for geo-redundancy). With
    `tls`, the simulator serves TLS from a private CA made in `work` and the sites verify it."""

    def __init__(self, work: Path, count: int, interval: float, sim_args: tuple[str, ...] = (),
                 tls: bool = False) -> None:
        self.work, self.fleet_size, self.interval, self.sim_args = work, count, interval, sim_args
        self.tls_ca: tuple[Path, Path] | None = None
        if tls:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from pki import make_authority

            authority = make_authority(work / "pki", "subclouds")
            self.tls_ca = (authority.cert_file, authority.key_file)
            self.sim_args = (*sim_args, "--tls-cert", str(authority.cert_file), "--tls-key", str(authority.key_file))
        self.agent_port, self.control_port = free_port(), free_port()
        self.control = f"http://127.0.0.1:{self.control_port}"
        self.server = Serve(work / "site", work / "site.log", self.site_env("site-1"))
        self.site_url, self.db_path = self.server.url, self.server.db_path
        self.others: list[Serve] = []
        self.token = ""

    def site_env(self, name: str) -> dict[str, str]:
        env = {"DCMAN_SITE_NAME": name, "DCMAN_AUDIT_INTERVAL": str(self.interval),
               "DCMAN_SUBCLOUD_AGENT_PORT": str(self.agent_port), "DCMAN_SUBCLOUD_AGENT_SCHEME": "http"}
        if self.tls_ca is not None:
            env.update(DCMAN_SUBCLOUD_AGENT_SCHEME="https", DCMAN_SUBCLOUD_CA_FILE=str(self.tls_ca[0]))
        return env

    @property
    def site(self) -> subprocess.Popen:
        assert self.server.process is not None
        return self.server.process

    def start(self) -> None:
        self.sim = subprocess.Popen(
            [DCMAN, "sim", "--count", str(self.fleet_size), "--port", str(self.agent_port),
             "--control", f"127.0.0.1:{self.control_port}", *self.sim_args],
            stdout=(self.work / "sim.log").open("wb"), stderr=subprocess.STDOUT, env=os.environ.copy())
        wait_http(self.control + "/sim")
        self.server.start()
        self.token = self.server.token

    def add_site(self, name: str, env: dict[str, str] | None = None) -> Serve:
        """Start another site on the same simulator, in `work/<name>` (with `env` on top)."""
        other = Serve(self.work / name, self.work / f"{name}.log", {**self.site_env(name), **(env or {})})
        other.start()
        self.others.append(other)
        return other

    def stop(self) -> None:
        for server in (*self.others, self.server):
            server.stop()
        stop_process(self.sim)

    def finish(self, keep: bool) -> None:
        """Stop every process; remove the work directory unless asked to keep it."""
        self.stop()
        if keep:
            log(f"work directory kept: {self.work}")
        else:
            subprocess.run(["rm", "-rf", str(self.work)], check=False)

    def sim_items(self, page: int = 5000) -> list[dict]:
        """Every simulated subcloud, from the control API, a page at a time."""
        items: list[dict] = []
        while len(items) < self.fleet_size:
            batch = httpx.get(self.control + "/sim/subclouds", params={"offset": len(items), "limit": page},
                              timeout=120).json()["subclouds"]
            if not batch:
                break
            items.extend(batch)
        return items


async def clone_subclouds(database_url: str, items: list[dict], batch: int = 2000) -> float:
    """Store every item after the first as a copy of the first's row (added through the API),
    stored offline, in batches; adding tens of thousands through the API at ~20/s would take
    an hour and measure the add, not what the benchmark is about. Returns the seconds taken."""
    import uuid

    from sqlalchemy import insert, select
    from sqlalchemy.ext.asyncio import create_async_engine

    from dcman.db import tables as t
    from dcman.db.clock import utcnow
    from dcman.db import subclouds as subclouds_db

    started = time.monotonic()
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            template = dict((await conn.execute(select(t.subclouds).where(
                t.subclouds.c.name == items[0]["name"]))).mappings().one())
        template.pop("id")
        for start in range(1, len(items), batch):
            now = utcnow()
            rows = []
            for item in items[start:start + batch]:
                values = item["bootstrap_values"]
                row = {**template, "name": item["name"], "region_name": item["region_name"],
                       "management_subnet": values["management_subnet"],
                       "management_start_ip": values["management_start_address"],
                       "management_end_ip": values["management_end_address"],
                       "management_gateway_ip": values["management_gateway_address"],
                       "availability_status": "offline", "audit_fail_count": 0, "created_at": now,
                       "updated_at": now}
                row.update(subclouds_db.network_keys(row["management_subnet"], row["management_start_ip"],
                                                     row["management_end_ip"]))
                rows.append(row)
            async with engine.begin() as conn:
                ids = list((await conn.execute(insert(t.subclouds).returning(t.subclouds.c.id), rows)).scalars())
                await conn.execute(insert(t.subcloud_alarms), [
                    {"uuid": str(uuid.uuid4()), "subcloud_id": i, "critical_alarms": -1, "major_alarms": -1,
                     "minor_alarms": -1, "warnings": -1, "cloud_status": "disabled", "created_at": now}
                    for i in ids])
            if start // batch % 10 == 0:
                log(f"stored {start + len(rows)} of {len(items)}")
    finally:
        await engine.dispose()
    return time.monotonic() - started
