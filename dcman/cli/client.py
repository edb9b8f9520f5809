"""HTTP client of a dcman site, used by the `dcman` command's client groups.

A `SiteClient` signs in through the site's Keystone-v3-compatible identity endpoint
(`POST {url}/v3/auth/tokens`), finds the `dcmanager` service's public endpoint in the
token's catalog, and then calls the `/v1.0` API with `X-Auth-Token`.

Every failure (connection, authentication, any non-2xx answer) is raised as a
`ClientError`, a `click.ClickException`: click prints it as "Error: <message>" on stderr
and exits with code 1, without a traceback.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import click
import httpx

from dcman.tls import TlsSetupError, client_context, tls_failure

DEFAULT_URL = "http://127.0.0.1:8119"
DEFAULT_USER = "admin"
DEFAULT_PROJECT = "admin"
DEFAULT_DOMAIN = "Default"
DEFAULT_TIMEOUT = 60.0

_META_KEY = "dcman.cli.site"

F = TypeVar("F", bound=Callable[..., Any])


class ClientError(click.ClickException):
    """A request to the site failed; `message` is one sentence for the operator."""

    exit_code = 1

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _error_text(response: httpx.Response) -> str:
    """The one-sentence reason of an error answer: the faultstring, else the body text."""
    text = response.text.strip()
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error_message")
        if isinstance(error, str):
            # dcmanager itself sends the error object as a JSON-encoded string.
            try:
                error = json.loads(error)
            except ValueError:
                return error.strip() or text
        if isinstance(error, dict):
            for key in ("faultstring", "message", "title"):
                if isinstance(error.get(key), str) and error[key].strip():
                    return error[key].strip()
        keystone_error = body.get("error")  # Keystone-style error body
        if isinstance(keystone_error, dict):
            for key in ("message", "title"):
                if isinstance(keystone_error.get(key), str) and keystone_error[key].strip():
                    return keystone_error[key].strip()
        detail = body.get("detail")  # plain FastAPI error body
        if isinstance(detail, str) and detail.strip():
            return detail.strip()
    if text:
        return text
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


def _site_base(url: str) -> str:
    """The site's base URL, also accepting an identity URL (`http://HOST:PORT/v3`)."""
    url = url.strip().rstrip("/")
    if not url:
        raise ClientError("the dcman site URL is empty: set DCMAN_URL or pass --url")
    if "://" not in url:
        url = "http://" + url
    if url.endswith("/v3"):
        url = url[: -len("/v3")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientError(f"invalid dcman site URL: {url}")
    return url


class SiteClient:
    """A signed-in session with one dcman site's REST API."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        user: str = DEFAULT_USER,
        password: str | None = None,
        *,
        project: str = DEFAULT_PROJECT,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.url = _site_base(url)
        self.user = user
        self.password = password
        self.project = project
        verify: Any = True
        if self.url.startswith("https://"):
            try:
                verify = client_context(ca_file, "DCMAN_CA_FILE (--ca-file)")
            except TlsSetupError as exc:
                raise ClientError(str(exc)) from None
        self._http = httpx.Client(timeout=timeout, transport=transport, verify=verify)
        self._token: str | None = None
        self._api_base: str | None = None

    # -- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "SiteClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.ConnectError as exc:
            failure = tls_failure(exc)
            if failure is not None and failure[0]:
                raise ClientError(f"cannot verify the TLS certificate of {self.url}: {failure[1]}; "
                                  "pass --ca-file or set DCMAN_CA_FILE") from None
            if failure is not None:
                raise ClientError(f"TLS with the dcman site at {self.url} failed: {failure[1]} "
                                  "(does it serve https?)") from None
            raise ClientError(f"cannot reach the dcman site at {self.url}: {exc}") from None
        except httpx.TimeoutException:
            raise ClientError(f"the dcman site at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ClientError(f"request to the dcman site at {self.url} failed: {exc}") from None
        except httpx.InvalidURL as exc:
            raise ClientError(f"invalid dcman site URL {self.url}: {exc}") from None

    # -- authentication -------------------------------------------------------------

    def authenticate(self) -> str:
        """Get a token (and the API URL from its catalog); returns the token."""
        if not self.password:
            raise ClientError(
                "no password for the dcman site: set DCMAN_PASSWORD or pass --password"
            )
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.user,
                            "password": self.password,
                            "domain": {"name": DEFAULT_DOMAIN},
                        }
                    },
                },
                "scope": {
                    "project": {"name": self.project, "domain": {"name": DEFAULT_DOMAIN}}
                },
            }
        }
        response = self._send("POST", f"{self.url}/v3/auth/tokens", json=body)
        if response.status_code in (401, 403):
            raise ClientError(
                f"authentication as {self.user!r} failed: {_error_text(response)}",
                response.status_code,
            )
        if not response.is_success:
            raise ClientError(_error_text(response), response.status_code)
        token = response.headers.get("X-Subject-Token")
        if not token:
            raise ClientError(
                f"the site at {self.url} answered the token request without an X-Subject-Token"
            )
        try:
            catalog = response.json().get("token", {}).get("catalog") or []
        except (ValueError, AttributeError):
            catalog = []
        self._token = token
        self._api_base = self._api_from_catalog(catalog) or f"{self.url}/v1.0"
        return token

    def _api_from_catalog(self, catalog: list[Any]) -> str | None:
        for service in catalog:
            if not isinstance(service, dict) or service.get("type") != "dcmanager":
                continue
            endpoints = [e for e in service.get("endpoints") or [] if isinstance(e, dict)]
            for interface in ("public", "internal", "admin"):
                for endpoint in endpoints:
                    if endpoint.get("interface") == interface and endpoint.get("url"):
                        return self._reachable(str(endpoint["url"]).rstrip("/"))
        return None

    def _reachable(self, api_url: str) -> str:
        """A catalog URL on a wildcard address is reached through the host we signed in to;
        one in clear from a site signed in to over https is refused (the token would leak)."""
        parts = urlsplit(api_url)
        if self.url.startswith("https://") and parts.scheme != "https":
            raise ClientError(f"the site at {self.url} gives its API as {api_url}, not https; "
                              "refusing to send the token in clear")
        if parts.hostname in ("0.0.0.0", "::", ""):
            site = urlsplit(self.url)
            port = f":{parts.port}" if parts.port else ""
            host = site.hostname or "127.0.0.1"
            if ":" in host:
                host = f"[{host}]"
            return urlunsplit((parts.scheme, host + port, parts.path, "", ""))
        return api_url

    @property
    def api_base(self) -> str:
        if self._api_base is None:
            self.authenticate()
        assert self._api_base is not None
        return self._api_base

    # -- API calls ------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call `{api_base}{path}` (path relative to /v1.0); returns the decoded JSON or None."""
        if self._token is None:
            self.authenticate()
        headers = dict(kwargs.pop("headers", None) or {})
        headers["X-Auth-Token"] = self._token or ""
        headers.setdefault("Accept", "application/json")
        url = f"{self.api_base}/{path.lstrip('/')}"
        response = self._send(method, url, headers=headers, **kwargs)
        if not response.is_success:
            raise ClientError(_error_text(response), response.status_code)
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise ClientError(
                f"the site answered {method} {path} with a body that is not JSON"
            ) from None

    def get_list(self, path: str, key: str) -> list[dict[str, Any]]:
        """GET a list answer `{key: [objects]}` and return the objects."""
        answer = self.get(path)
        items = answer.get(key) if isinstance(answer, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ClientError(f"the site answered GET {path} without a list of {key!r}")
        return items

    def get_object(self, path: str) -> dict[str, Any]:
        return self.expect_object(self.get(path), "GET", path)

    @staticmethod
    def expect_object(answer: Any, method: str, path: str) -> dict[str, Any]:
        """The answer of a call that returns one object (an error if it is something else)."""
        if not isinstance(answer, dict):
            raise ClientError(f"the site answered {method} {path} without an object")
        return answer

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


# -- click glue -----------------------------------------------------------------------


@dataclass
class SiteSettings:
    url: str
    user: str
    password: str | None
    ca_file: str | None = None

    def client(self) -> SiteClient:
        return SiteClient(self.url, self.user, self.password, ca_file=self.ca_file)


def site_options(group: F) -> F:
    """Add `--url/--user/--password/--ca-file` (env DCMAN_URL/DCMAN_USER/DCMAN_PASSWORD/
    DCMAN_CA_FILE) to a group."""

    @click.option(
        "--ca-file",
        envvar="DCMAN_CA_FILE",
        default=None,
        metavar="PEM",
        help="CA certificates that verify an https site [env DCMAN_CA_FILE; default: the system's CAs].",
    )
    @click.option(
        "--password",
        envvar="DCMAN_PASSWORD",
        default=None,
        help="Password of the account [env DCMAN_PASSWORD].",
    )
    @click.option(
        "--user",
        envvar="DCMAN_USER",
        default=DEFAULT_USER,
        show_default=True,
        help="Account name on the site [env DCMAN_USER].",
    )
    @click.option(
        "--url",
        envvar="DCMAN_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="Base URL of the dcman site [env DCMAN_URL].",
    )
    @functools.wraps(group)
    def wrapper(*args: Any, url: str, user: str, password: str | None, ca_file: str | None,
                **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        ctx.meta[_META_KEY] = SiteSettings(url=url, user=user, password=password or None,
                                           ca_file=ca_file or None)
        return group(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def get_client() -> SiteClient:
    """The `SiteClient` for the current command, closed when the command ends."""
    ctx = click.get_current_context()
    settings = ctx.meta.get(_META_KEY)
    if settings is None:  # a command invoked without its group (e.g. from Python)
        settings = SiteSettings(
            url=os.environ.get("DCMAN_URL") or DEFAULT_URL,
            user=os.environ.get("DCMAN_USER") or DEFAULT_USER,
            password=os.environ.get("DCMAN_PASSWORD") or None,
            ca_file=os.environ.get("DCMAN_CA_FILE") or None,
        )
    client = settings.client()
    ctx.call_on_close(client.close)
    return client


def ref_path(ref: str) -> str:
    """URL path segment of an object named by id or name."""
    return quote(str(ref), safe="")
