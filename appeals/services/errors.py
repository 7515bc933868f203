"""Errors raised by services; pages and the API turn them into responses."""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal with a stable `code`, a human `message` and an HTTP status."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None, fields: dict[str, str] | None = None):
        # str(): a lazily translated message is fixed in the locale in force when raised.
        message = str(message)
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = {name: str(problem) for name, problem in (fields or {}).items()}


class Invalid(ServiceError):
    """Input that fails validation; `fields` maps field names to problems."""

    status = 422
    code = "invalid"


class NotFound(ServiceError):
    """The thing does not exist, or the caller may not know that it exists."""

    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The caller is known but may not do this."""

    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    """The request clashes with the current state (a stale version, a held claim, an open appeal)."""

    status = 409
    code = "conflict"


class Unauthorized(ServiceError):
    """No valid credentials."""

    status = 401
    code = "unauthorized"
