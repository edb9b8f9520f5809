"""The dashboard in a real Chromium, on a real site auditing a real simulator: an operator logs
in, watches the counts follow the fleet, filters the list, opens a subcloud and manages it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from browser import browser, logged_in  # noqa: F401  (browser is a fixture)
from conftest import DCMAN
from simfleet import Fleet, running_fleet, wait_until

NAMES = ("sim-00001", "sim-00002", "sim-00003", "sim-00004")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[Fleet]:
    """Four deployed, online subclouds; sim-00001 managed."""
    with running_fleet(tmp_path_factory.mktemp("dashboard"), 6) as fleet:
        fleet.online(*NAMES)
        managed = fleet.call("PATCH", "/subclouds/sim-00001", json={"management-state": "managed"})
        assert managed.status_code == 200, managed.text
        yield fleet


@pytest.fixture(scope="module")
def session(browser, fleet):  # noqa: F811
    """One logged-in tab for the module: logging in once saves a password hash per test."""
    page = logged_in(browser, fleet.site.url)
    yield page
    page.close()


@pytest.fixture
def page(session):
    """The dashboard afresh (filters and detail reset); the token stays in sessionStorage."""
    from playwright.sync_api import expect

    session.reload()
    expect(session.locator("#status")).to_contain_text("Updated")
    return session


def names(page):
    """The first column of the subcloud list, for an auto-retrying expect()."""
    return page.locator("#subclouds tbody tr td:first-child")


def test_a_wrong_password_is_refused_on_the_login_form(browser, fleet):  # noqa: F811
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(fleet.site.url + "/ui")
    page.get_by_label("User", exact=True).fill("admin")
    page.get_by_label("Password", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert").first).to_have_text("The user name or password is wrong.")
    expect(page.locator("#app")).to_be_hidden()
    page.close()


def test_the_counts_follow_the_simulator_without_a_reload(page, fleet):
    from playwright.sync_api import expect

    expect(page.locator("#count-availability-online")).to_have_text("4")
    expect(page.locator("#count-availability-offline")).to_have_text("0")
    expect(page.locator("#count-management-managed")).to_have_text("1")
    try:
        fleet.fault("sim-00003", reachable=False)
        fleet.fault("sim-00004", reachable=False)
        expect(page.locator("#count-availability-online")).to_have_text("2")
        expect(page.locator("#count-availability-offline")).to_have_text("2")
        expect(page.locator("#count-alarms-critical")).to_have_text("2")  # 280.001 for each
        expect(page.locator("#alarms tbody")).to_contain_text("sim-00003 is offline")
    finally:
        fleet.fault("sim-00003", reachable=True)
        fleet.fault("sim-00004", reachable=True)
    expect(page.locator("#count-availability-online")).to_have_text("4")
    expect(page.locator("#count-alarms-critical")).to_have_text("0")


def test_the_list_filters_by_name_and_state(page):
    from playwright.sync_api import expect

    expect(page.locator("#list-range")).to_have_text("Showing 1–4 of 4")
    page.get_by_label("Name contains").fill("00002")
    expect(page.locator("#list-range")).to_have_text("Showing 1–1 of 1")
    expect(names(page)).to_have_text(["sim-00002"])
    page.get_by_label("Name contains").fill("")
    page.locator("#filter-management").select_option("managed")
    expect(page.locator("#list-range")).to_have_text("Showing 1–1 of 1")
    expect(names(page)).to_have_text(["sim-00001"])
    page.locator("#filter-management").select_option("unmanaged")
    page.locator("#filter-deploy").select_option("complete")
    expect(page.locator("#list-range")).to_have_text("Showing 1–3 of 3")
    expect(names(page)).to_have_text(["sim-00002", "sim-00003", "sim-00004"])
    page.locator("#filter-peer-group").select_option("none")
    page.locator("#filter-availability").select_option("offline")
    expect(page.locator("#subclouds tbody")).to_have_text("No subcloud matches.")


def test_the_detail_shows_the_prestage_status_and_versions(page, fleet):
    from playwright.sync_api import expect

    prestaged = fleet.call("PATCH", "/subclouds/sim-00001/prestage", json={"sysadmin_password": "U3Q4cmxpbmdYKg=="})
    assert prestaged.status_code == 200, prestaged.text
    wait_until(lambda: fleet.subcloud("sim-00001")["prestage-status"] == "complete")
    page.get_by_role("button", name="sim-00001", exact=True).click()
    expect(page.locator("#detail-prestage-status")).to_have_text("complete")
    expect(page.locator("#detail-prestage-versions")).to_have_text("24.09")
    page.get_by_role("button", name="sim-00003", exact=True).click()
    expect(page.locator("#detail-prestage-status")).to_have_text("—")


def test_an_operator_opens_a_subcloud_and_manages_it_after_confirming(page, fleet):
    from playwright.sync_api import expect

    page.get_by_role("button", name="sim-00002", exact=True).click()
    expect(page.locator("#detail-name")).to_have_text("sim-00002")
    expect(page.locator("#detail-deploy-status")).to_have_text("complete")
    expect(page.locator("#detail-errors")).to_have_text("No errors present")
    expect(page.locator("#detail-endpoints tbody tr")).to_have_count(7)

    page.locator("#detail-manage").click()  # asked first; cancelling changes nothing
    expect(page.locator("#confirm")).to_contain_text("Manage sim-00002?")
    page.locator("#confirm-cancel").click()
    expect(page.locator("#confirm")).to_be_hidden()
    assert fleet.subcloud("sim-00002")["management-state"] == "unmanaged"

    page.locator("#detail-manage").click()
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#message")).to_have_text("sim-00002 is now managed.")
    expect(page.locator("#detail-management")).to_have_text("managed")
    assert fleet.subcloud("sim-00002")["management-state"] == "managed"
    expect(page.locator("#count-management-managed")).to_have_text("2")


def test_the_detail_shows_the_backup_status_and_time(page, fleet):
    from playwright.sync_api import expect

    page.get_by_role("button", name="sim-00003", exact=True).click()
    expect(page.locator("#detail-backup-status")).to_have_text("—")
    expect(page.locator("#detail-last-backup")).to_have_text("—")
    backup = fleet.call("POST", "/subcloud-backup", json={"subcloud": "sim-00001",
                                                          "sysadmin_password": "U3Q4cmxpbmdYKg=="})
    assert backup.status_code == 200, backup.text
    wait_until(lambda: fleet.subcloud("sim-00001")["backup-status"] == "complete-central")
    page.get_by_role("button", name="sim-00001", exact=True).click()
    expect(page.locator("#detail-backup-status")).to_have_text("complete-central")
    expect(page.locator("#detail-last-backup")).to_have_text(fleet.subcloud("sim-00001")["backup-datetime"])


def test_a_refused_action_shows_the_sites_reason(page, fleet):
    from playwright.sync_api import expect

    try:
        fleet.fault("sim-00004", reachable=False)
        wait_until(lambda: fleet.subcloud("sim-00004")["availability-status"] == "offline", timeout=30)
        page.get_by_role("button", name="sim-00004", exact=True).click()
        expect(page.locator("#detail-availability")).to_have_text("offline")
        page.locator("#detail-manage").click()
        page.get_by_role("button", name="Confirm").click()
        expect(page.locator("#message")).to_have_text("Subcloud sim-00004 can be managed only while it is online.")
        assert fleet.subcloud("sim-00004")["management-state"] == "unmanaged"
    finally:
        fleet.fault("sim-00004", reachable=True)


def test_a_reader_sees_the_fleet_but_no_action(browser, fleet):  # noqa: F811
    from playwright.sync_api import expect

    created = subprocess.run([DCMAN, "user", "create", "watcher", "--role", "reader", "--password", "watch-Secret-1"],
                             env=fleet.site.env(), capture_output=True, text=True, timeout=60, check=False)
    assert created.returncode == 0, created.stderr
    page = logged_in(browser, fleet.site.url, "watcher", "watch-Secret-1")
    expect(page.locator("#count-availability-online")).to_have_text("4")
    page.get_by_role("button", name="sim-00003", exact=True).click()
    expect(page.locator("#detail-name")).to_have_text("sim-00003")
    expect(page.locator("#detail-manage")).to_be_hidden()
    expect(page.locator("#detail-unmanage")).to_be_hidden()
    page.close()
