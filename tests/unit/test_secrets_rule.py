"""The secret-key rule (issue 13 item 2): which keys name secrets, and how a document is split
into what may be shown and what only the subcloud's agent gets back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcman.domain.install_values import MANDATORY_INSTALL_KEYS
from dcman.domain.secrets import (
    is_secret_key,
    merge_secrets,
    might_hold_secrets,
    redact,
    sealed_from_json,
    split_secrets,
)

SECRET_NAMES = ["password", "admin_password", "sysadmin_password", "BMC_Password", "bmc_password", "PASSWORD",
                "passwd", "ansible_ssh_pass", "ansible_become_pass", "adminPassword", "db-passwd", "secret",
                "client_secret", "SecretAccessKey", "api_token", "apiToken", "X-Auth-Token", "refresh_tokens",
                "ssh_private_key", "sshPrivateKey", "private_key", "privatekey", "k8s_root_ca_key", "tls_key",
                "key", "api_key", "apikey", "credentials", "wifi_psk", "passphrase", "key_pem"]
PUBLIC_NAMES = ["name", "system_mode", "management_subnet", "management_start_address",
                "systemcontroller_gateway_address", "external_oam_floating_address", "docker_registries",
                "ssh_public_key", "public_key", "pci_passthrough", "bypass_mode", "keystone_region", "monkey",
                "bmc_username", "username", "ssl_ca_cert", "k8s_root_ca_cert", "bootstrap-address",
                "rd.net.timeout.ipv6dad", "compass", "description"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_a_key_naming_a_secret_is_secret(name):
    assert is_secret_key(name)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_a_key_naming_no_secret_is_not(name):
    assert not is_secret_key(name)


def test_no_install_or_bootstrap_key_the_site_checks_is_taken_for_a_secret():
    """The rule must not hide what the validation and the peer's copy need."""
    needed = set(MANDATORY_INSTALL_KEYS) - {"bmc_password"}
    needed |= {"name", "management_subnet", "management_start_address", "management_end_address",
               "management_gateway_address", "systemcontroller_gateway_address", "external_oam_subnet",
               "external_oam_gateway_address", "external_oam_floating_address", "system_mode"}
    assert not [key for key in needed if is_secret_key(key)]


def test_non_string_keys_are_not_secrets():
    assert not is_secret_key(3) and not is_secret_key(None)


DOCUMENT = {
    "name": "sc1",
    "admin_password": "top-1",
    "docker_registries": {
        "k8s.gcr.io": {"url": "reg.example", "username": "u", "password": "top-2"},
        "defaults": {"type": "docker", "Secret": {"nested": "top-3"}},
    },
    "hosts": [{"name": "h0", "BMC_Password": "top-4"}, "plain", [{"api_token": "top-5"}]],
    "ssh_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----top-6",
    "ssh_public_key": "ssh-ed25519 AAAA",
}
TOP = [f"top-{n}" for n in range(1, 7)]


def test_split_removes_every_secret_at_any_depth_and_merge_puts_them_back():
    public, sealed = split_secrets(DOCUMENT)
    text = json.dumps(public)
    assert not [value for value in TOP if value in text]
    assert public["docker_registries"]["k8s.gcr.io"] == {"url": "reg.example", "username": "u"}
    assert public["hosts"][0] == {"name": "h0"} and public["hosts"][1] == "plain"
    assert public["ssh_public_key"] == "ssh-ed25519 AAAA"
    assert sorted(str(v) for _, v in sealed) == sorted(["top-1", "top-2", "{'nested': 'top-3'}", "top-4", "top-5",
                                                         "-----BEGIN OPENSSH PRIVATE KEY-----top-6"])
    assert merge_secrets(public, sealed) == DOCUMENT
    assert redact(DOCUMENT) == public


def test_sealed_secrets_survive_a_json_round_trip():
    public, sealed = split_secrets(DOCUMENT)
    again = sealed_from_json(json.loads(json.dumps(sealed)))
    assert merge_secrets(json.loads(json.dumps(public)), again) == DOCUMENT


def test_merge_does_not_change_its_input_and_skips_a_vanished_list_item():
    public, sealed = split_secrets({"hosts": [{"password": "x"}]})
    before = json.dumps(public)
    assert merge_secrets({"hosts": []}, sealed) == {"hosts": []}
    merge_secrets(public, sealed)
    assert json.dumps(public) == before


def test_stored_secrets_of_a_wrong_shape_are_ignored():
    assert sealed_from_json({"a": 1}) == [] and sealed_from_json([["x", 1], [[True], 2], 3]) == []


_keys = st.sampled_from(SECRET_NAMES + PUBLIC_NAMES) | st.text(max_size=12)
_documents = st.recursive(st.none() | st.integers() | st.text(max_size=8),
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
                          max_leaves=25)


@given(_documents)
def test_any_document_splits_into_a_secret_free_part_and_merges_back(document):
    public, sealed = split_secrets(document)
    assert split_secrets(public)[1] == []
    assert merge_secrets(public, sealed) == document


@given(_documents)
def test_a_document_the_quick_test_clears_holds_no_secret(document):
    if not might_hold_secrets(json.dumps(document)):
        assert split_secrets(document)[1] == []
