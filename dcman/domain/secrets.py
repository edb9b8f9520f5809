"""Which uploaded values are secrets, judged by the name of their key, at any depth.

Bootstrap values, install values, deploy configs and rehome data are free-form documents; a
password can hide in any nested map or list of maps (`docker_registries.*.password`,
`hosts[0].BMC_Password`). This is the one rule for all of them: a key names a secret when one
of its words means password, secret, token or key material. What it names is kept out of
anything shown, logged or copied to a peer (`split_secrets`, `redact`), and put back only for
the subcloud's own agent (`merge_secrets`).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Mapping, TypeVar

# A word holding one of these is a secret anywhere in it: `adminpassword`, `api_token`, `x-secret`.
SECRET_FRAGMENTS: tuple[str, ...] = (
    "password", "passwd", "passphrase", "secret", "token", "credential", "privatekey", "apikey",
)
# Whole words only, since as fragments they would also catch `passthrough`, `keystone`, `monkey`.
SECRET_WORDS: frozenset[str] = frozenset({"pass", "pwd", "psk", "private", "key", "keys", "pem"})
# Key material that is public: `ssh_public_key`, `public_keys`.
PUBLIC_WORDS: frozenset[str] = frozenset({"public", "pub"})

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# One secret of a document: the keys and list indexes that lead to it, and its value.
SecretPath = tuple[str | int, ...]
Sealed = list[tuple[SecretPath, object]]
_T = TypeVar("_T")


def key_words(name: str) -> list[str]:
    """The lowercase words of a key: `BMC_Password` → bmc, password; `sshPrivateKey` → ssh, private, key."""
    return [word.lower() for word in _WORDS.findall(name)]


def is_secret_key(name: object) -> bool:
    """Whether a key names a secret: a password, passwd, secret, token, credential or private
    key material, in any case and spelling (`BMC_Password`, `ansible_ssh_pass`, `api_token`,
    `ssh_private_key`, `k8s_root_ca_key`), but not public key material (`ssh_public_key`)."""
    if not isinstance(name, str):
        return False
    words = key_words(name)
    if any(fragment in word for fragment in SECRET_FRAGMENTS for word in words):
        return True
    return any(word in SECRET_WORDS for word in words) and not any(word in PUBLIC_WORDS for word in words)


def split_secrets(values: _T) -> tuple[_T, Sealed]:
    """(public, secrets): `values` without any secret key, at any depth, and each secret removed
    with the path leading to it, so that `merge_secrets(public, secrets)` gives `values` back."""
    sealed: Sealed = []
    return _public(values, (), sealed), sealed  # type: ignore[return-value]  # same shape, as dicts and lists


def redact(values: _T) -> _T:
    """`values` without any secret key at any depth: what may be shown, logged or copied."""
    return split_secrets(values)[0]


def might_hold_secrets(text: str) -> bool:
    """False when no key in `text` (a JSON or YAML document) can name a secret: a cheap test
    that spares parsing the many documents that hold none."""
    lowered = text.lower()
    return any(piece in lowered for piece in (*SECRET_FRAGMENTS, *SECRET_WORDS))


def redacted_json_text(text: str | None) -> str | None:
    """Stored JSON text without any secret (rows written before secrets were sealed apart may
    hold some); the text itself when it cannot hold one."""
    if text is None or not might_hold_secrets(text):
        return text
    try:
        document = json.loads(text)
    except ValueError:
        return text
    return text if isinstance(document, str) else json.dumps(redact(document))


def merge_secrets(public: _T, sealed: Sealed) -> _T:
    """`public` with its secrets put back where `split_secrets` took them from (a copy; the
    path of a secret whose list item is gone is skipped)."""
    merged = copy.deepcopy(public)
    for path, value in sealed:
        if not path:
            continue
        target: object = merged
        for step, following in zip(path, path[1:]):
            target = _step_into(target, step, following)
            if target is None:
                break
        else:
            last = path[-1]
            if isinstance(target, dict) and isinstance(last, str):
                target[last] = value
    return merged


def sealed_from_json(document: object) -> Sealed:
    """Secrets as stored (JSON: a list of [path, value] pairs) back to `Sealed`; anything else is none."""
    if not isinstance(document, list):
        return []
    found: Sealed = []
    for item in document:
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], list) \
                and all(isinstance(step, (str, int)) and not isinstance(step, bool) for step in item[0]):
            found.append((tuple(item[0]), item[1]))
    return found


def _public(value: object, path: SecretPath, sealed: Sealed) -> object:
    if isinstance(value, Mapping):
        kept: dict[object, object] = {}
        for key, item in value.items():
            if is_secret_key(key):
                sealed.append(((*path, key), item))
            else:
                kept[key] = _public(item, (*path, key), sealed)
        return kept
    if isinstance(value, (list, tuple)):
        return [_public(item, (*path, index), sealed) for index, item in enumerate(value)]
    return value


def _step_into(target: object, step: str | int, following: str | int) -> object:
    """The container at `step` inside `target`, made when a map is missing there; None when it cannot be."""
    if isinstance(target, dict) and isinstance(step, str):
        if not isinstance(target.get(step), (dict, list)):
            target[step] = [] if isinstance(following, int) else {}
        return target[step]
    if isinstance(target, list) and isinstance(step, int) and 0 <= step < len(target):
        return target[step] if isinstance(target[step], (dict, list)) else None
    return None
