"""The deploy commands of `dcman subcloud` against a real site driving simulated subclouds.

`subcloud add --wait`, `subcloud deploy create|install|bootstrap|config|complete|abort|
resume`, `subcloud redeploy` and `subcloud errors`, run the way an operator runs them, on a
`dcman serve` whose subclouds are a `dcman sim` fleet (faults set through its control API).
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from dcman.cli.main import cli
from simfleet import Fleet, running_fleet, wait_until

DCMAN_BIN = Path(sys.executable).with_name("dcman")
NO_ERRORS = "No errors present"
SLOW = 1.5  # seconds a simulated phase takes where a test checks the states --wait reports
BOOTSTRAP_FAILURE = "bootstrap failed: simulated failure (fault fail_phase=bootstrap)."
INSTALL_VALUES = {
    "bootstrap_interface": "eno1",
    "bootstrap_address": "10.10.0.2",
    "bootstrap_address_prefix": 16,
    "install_type": 0,
    "bmc_username": "root",
    "bmc_address": "10.20.0.2",
    "software_version": "24.09",
}
DEPLOY_CONFIG = {"deployment": {"profile": "edge"}}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with running_fleet(tmp_path_factory.mktemp("cli-deploy"), 12) as running:
        yield running


class Operator:
    """Runs `dcman` commands against the fleet's site, in-process, as an operator would."""

    def __init__(self, fleet: Fleet, tmp_path: Path) -> None:
        self.fleet = fleet
        self.tmp_path = tmp_path
        self.env: dict[str, str | None] = {
            "DCMAN_URL": fleet.site.url,
            "DCMAN_USER": fleet.site.admin_user,
            "DCMAN_PASSWORD": fleet.site.admin_password,
        }

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.env, catch_exceptions=False)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--format", "json").stdout)

    def file(self, name: str, values: Any) -> str:
        path = self.tmp_path / name
        path.write_text(yaml.safe_dump(values, sort_keys=False))
        return str(path)

    def add_args(self, name: str, *, install: bool = False, config: bool = False) -> list[str]:
        """The options of `subcloud add` / `subcloud deploy create` for a simulated subcloud."""
        args = ["--bootstrap-address", "10.10.0.2",
                "--bootstrap-values", self.file(f"{name}-bootstrap.yaml",
                                                self.fleet.bootstrap_values(name)),
                "--sysadmin-password", "St8rlingX*"]
        if install:
            args += ["--install-values", self.file(f"{name}-install.yaml", INSTALL_VALUES),
                     "--bmc-password", "bmc-secret"]
        if config:
            args += ["--deploy-config", self.file(f"{name}-deploy.yaml", DEPLOY_CONFIG)]
        return args

    def status(self, name: str) -> str:
        return self.fleet.subcloud(name)["deploy-status"]


@pytest.fixture
def dcman(fleet: Fleet, tmp_path: Path) -> Operator:
    return Operator(fleet, tmp_path)


def statuses(result: Result) -> list[str]:
    """The deploy statuses `--wait` reported on stderr ("NAME: STATUS (N%)" lines)."""
    return [line.split(": ", 1)[1].split(" (")[0] for line in result.stderr.splitlines()
            if line.startswith("sim-")]


def assert_failed_with(result: Result, message: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.splitlines()[-1] == f"Error: {message}"
    assert "Traceback" not in result.output


def test_add_wait_follows_every_phase_to_complete(dcman: Operator) -> None:
    name = "sim-00001"
    dcman.fleet.fault(name, phase_seconds=SLOW)  # long enough for a 0.5 s poll to see each phase
    result = dcman.ok("subcloud", "add", *dcman.add_args(name, install=True, config=True),
                      "--wait", "--format", "json")
    final = json.loads(result.stdout)
    assert final["name"] == name and final["deploy-status"] == "complete"
    assert final["deploy-progress"] == 100 and final["error-description"] == NO_ERRORS
    seen = statuses(result)
    assert seen[-1] == "complete"
    running = [s for s in seen if s in ("installing", "bootstrapping", "configuring")]
    assert running == ["installing", "bootstrapping", "configuring"]

    # the list's progress column and `show` carry deploy-progress
    table = dcman.ok("subcloud", "list").stdout
    header = next(line for line in table.splitlines() if "availability" in line)
    assert "progress" in header
    row = next(line for line in table.splitlines() if name in line)
    assert [c.strip() for c in row.strip("│ ").split("│")][4:6] == ["complete", "100"]
    assert any(line.split("│")[1].strip() == "deploy-progress" and "100" in line
               for line in dcman.ok("subcloud", "show", name).stdout.splitlines()
               if line.count("│") >= 2)
    assert dcman.ok("subcloud", "errors", name).stdout == NO_ERRORS + "\n"


def test_a_failed_bootstrap_exits_1_errors_shows_it_and_resume_completes(
    dcman: Operator,
) -> None:
    name = "sim-00002"
    dcman.fleet.fault(name, fail_phase="bootstrap")
    result = dcman("subcloud", "add", *dcman.add_args(name), "--wait")
    assert_failed_with(result, BOOTSTRAP_FAILURE)
    assert statuses(result)[-1] == "bootstrap-failed"
    assert "bootstrap-failed" in result.stdout  # the final subcloud is shown too

    assert dcman.ok("subcloud", "errors", name).stdout == BOOTSTRAP_FAILURE + "\n"
    assert dcman.status(name) == "bootstrap-failed"

    dcman.fleet.fault(name, fail_phase=None)
    resumed = dcman.ok("subcloud", "deploy", "resume", name, "--wait", "--format", "json")
    assert json.loads(resumed.stdout)["deploy-status"] == "complete"
    assert statuses(resumed)[0] == "pre-bootstrap"
    assert dcman.ok("subcloud", "errors", name).stdout == NO_ERRORS + "\n"


def test_phased_create_bootstrap_then_complete(dcman: Operator) -> None:
    name = "sim-00003"
    dcman.fleet.fault(name, phase_seconds=SLOW)
    created = dcman.ok("subcloud", "deploy", "create", *dcman.add_args(name), "--wait",
                       "--format", "json")
    assert json.loads(created.stdout)["deploy-status"] == "create-complete"
    assert statuses(created)[-1] == "create-complete"

    # config is refused before bootstrap: the server's reason, exit 1
    refused = dcman("subcloud", "deploy", "config", name)
    assert refused.exit_code == 1 and refused.stderr.startswith("Error: ")
    assert "cannot start config" in refused.stderr

    booted = dcman.ok("subcloud", "deploy", "bootstrap", name, "--wait", "--format", "json")
    assert json.loads(booted.stdout)["deploy-status"] == "bootstrap-complete"
    assert "bootstrapping" in statuses(booted)

    done = dcman.json("subcloud", "deploy", "complete", name)
    assert done["deploy-status"] == "complete"
    wait_until(lambda: dcman.fleet.subcloud(name)["availability-status"] == "online")


def test_phased_install_bootstrap_config_one_verb_at_a_time(dcman: Operator) -> None:
    name = "sim-00004"
    dcman.fleet.fault(name, phase_seconds=SLOW)
    created = dcman.json("subcloud", "deploy", "create", *dcman.add_args(name))
    assert created["deploy-status"] in ("not-deployed", "creating", "create-complete")
    wait_until(lambda: dcman.status(name) == "create-complete")

    installed = dcman.ok("subcloud", "deploy", "install", name,
                         "--install-values", dcman.file("install.yaml", INSTALL_VALUES),
                         "--bmc-password", "bmc-secret", "--sysadmin-password", "St8rlingX*",
                         "--wait", "--format", "json")
    shown = json.loads(installed.stdout)
    assert shown["deploy-status"] == "install-complete"
    assert shown["data_install"]["bmc_address"] == "10.20.0.2"
    assert "bmc_password" not in json.dumps(shown["data_install"])

    dcman.ok("subcloud", "deploy", "bootstrap", name, "--bootstrap-address", "10.10.0.2", "--wait")
    assert dcman.status(name) == "bootstrap-complete"
    configured = dcman.ok("subcloud", "deploy", "config", name,
                          "--deploy-config", dcman.file("deploy.yaml", DEPLOY_CONFIG), "--wait")
    assert statuses(configured)[-1] == "complete"
    assert "configuring" in statuses(configured)


def test_abort_wait_ends_aborted_and_resume_finishes(dcman: Operator) -> None:
    name = "sim-00005"
    dcman.fleet.fault(name, phase_seconds=30)
    dcman.ok("subcloud", "add", *dcman.add_args(name, config=True))
    wait_until(lambda: dcman.status(name) == "bootstrapping", timeout=30)
    aborted = dcman.ok("subcloud", "deploy", "abort", name, "--wait", "--format", "json")
    assert statuses(aborted)[0] == "aborting-bootstrap"
    final = json.loads(aborted.stdout)
    assert final["deploy-status"] == "bootstrap-aborted"
    assert dcman.ok("subcloud", "errors", name).stdout.strip() == final["error-description"]

    # abort of a subcloud that runs nothing: the server's refusal
    refused = dcman("subcloud", "deploy", "abort", name)
    assert refused.exit_code == 1 and "only while" in refused.stderr

    dcman.fleet.fault(name, phase_seconds=SLOW)
    resumed = dcman.ok("subcloud", "deploy", "resume", name, "--wait")
    assert statuses(resumed)[-1] == "complete"
    assert "configuring" in statuses(resumed)


def test_a_failing_resume_also_exits_1(dcman: Operator) -> None:
    name = "sim-00006"
    dcman.fleet.fault(name, fail_phase="bootstrap")
    assert_failed_with(dcman("subcloud", "add", *dcman.add_args(name), "--wait"), BOOTSTRAP_FAILURE)
    assert_failed_with(dcman("subcloud", "deploy", "resume", name, "--wait"), BOOTSTRAP_FAILURE)
    dcman.fleet.fault(name, fail_phase=None)
    dcman.ok("subcloud", "deploy", "resume", name, "--wait")
    assert dcman.status(name) == "complete"


def test_redeploy_wait_of_an_offline_unmanaged_subcloud(dcman: Operator) -> None:
    name = "sim-00007"
    dcman.ok("subcloud", "add", *dcman.add_args(name, install=True), "--wait")
    wait_until(lambda: dcman.fleet.subcloud(name)["availability-status"] == "online")
    refused = dcman("subcloud", "redeploy", name)
    assert refused.exit_code == 1 and "offline and unmanaged" in refused.stderr

    dcman.fleet.fault(name, reachable=False)
    wait_until(lambda: dcman.fleet.subcloud(name)["availability-status"] == "offline")
    dcman.fleet.fault(name, reachable=True, phase_seconds=SLOW)  # back for reinstallation
    result = dcman.ok("subcloud", "redeploy", name, "--sysadmin-password", "St8rlingX*",
                      "--wait", "--format", "json")
    assert json.loads(result.stdout)["deploy-status"] == "complete"
    seen = statuses(result)
    assert seen[0] == "pre-install" and "installing" in seen and "bootstrapping" in seen


def test_the_installed_command_draws_a_progress_bar_on_a_terminal(
    dcman: Operator, tmp_path: Path
) -> None:
    name = "sim-00008"
    dcman.fleet.fault(name, phase_seconds=2)
    env = {**os.environ, **{k: v for k, v in dcman.env.items() if v is not None},
           "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    primary, secondary = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # read the terminal while the command draws on it
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the command has exited and closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [str(DCMAN_BIN), "subcloud", "add", *dcman.add_args(name), "--wait", "-f", "json"],
            env=env, stdout=subprocess.PIPE, stderr=secondary, timeout=120)
    finally:
        os.close(secondary)
        reader.join(timeout=10)
        os.close(primary)
    drawn = b"".join(chunks)
    assert proc.returncode == 0, drawn.decode(errors="replace")
    assert json.loads(proc.stdout)["deploy-status"] == "complete"  # stdout stays clean JSON
    text = drawn.decode(errors="replace")
    assert f"{name}: bootstrapping" in text
    assert "━" in text and "%" in text  # rich's bar and the deploy-progress percentage
    assert f"{name}: complete" in text
