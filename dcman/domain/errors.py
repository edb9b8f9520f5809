"""Errors a domain rule raises; the API maps each kind to one HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """A request the rules refuse. `message` is one sentence meant for the operator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """The request itself is malformed or out of range (HTTP 400)."""


class NotFound(DomainError):
    """The named object does not exist (HTTP 404)."""


class Conflict(DomainError):
    """The request collides with an existing object, e.g. a taken name (HTTP 409)."""


class StateRefused(DomainError):
    """The request is well formed but the object's current state forbids it (HTTP 422)."""


class Unauthenticated(DomainError):
    """No valid credentials (HTTP 401)."""


class PermissionDenied(DomainError):
    """Valid credentials without the role the request needs (HTTP 403)."""


class Throttled(DomainError):
    """Too many failed attempts from this client: wait `retry_after` seconds (HTTP 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
