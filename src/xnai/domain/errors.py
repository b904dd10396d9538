"""Domain errors: each carries a message a user can act on."""

from __future__ import annotations


class XnaiError(Exception):
    """Base class of every error the project raises on purpose."""


class ConfigError(XnaiError):
    """The configuration is invalid."""


class UnsupportedFileError(XnaiError):
    """The file type has no loader."""


class DocumentError(XnaiError):
    """A file could not be read as a document (corrupt, binary, empty, too large)."""


class NotFoundError(XnaiError):
    """The requested document or resource does not exist."""


class NotReadyError(XnaiError):
    """A component (index, model) is not loaded yet."""


class ModelError(XnaiError):
    """The language model failed or is unavailable."""


class TransientModelError(ModelError):
    """A model failure worth retrying: the backend was unreachable, too slow or failed on its
    side (HTTP 5xx); never a rejected request (4xx) or an invalid reply."""


class ModelServerError(TransientModelError):
    """The model server failed on its side (HTTP 500 and other 5xx)."""


class ModelUnavailableError(TransientModelError):
    """The model backend cannot be reached or loaded."""


class MissingPackageError(ModelUnavailableError, ConfigError):
    """An optional package that the configured backend needs is not installed or does not
    load: the backend cannot be used (a model error) until the configuration or the
    installation changes (a configuration error)."""


class ModelTimeoutError(ModelUnavailableError):
    """The model did not finish within its deadline."""


class CircuitOpenError(ModelUnavailableError):
    """The circuit breaker is open: the model is not called; try after ``retry_after`` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("AI service temporarily unavailable")
        self.retry_after = retry_after


class QueueFullError(XnaiError):
    """Every generation slot and queue place is taken: try after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many questions are waiting for the language model: try again later")
        self.retry_after = retry_after


class AuthenticationError(XnaiError):
    """No valid credentials: unknown user, wrong password, expired or revoked token."""


class AccountLockedError(AuthenticationError):
    """Too many failed logins: try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoginThrottledError(AccountLockedError):
    """Too many failed logins from this client (or from everyone): no password is checked
    until ``retry_after`` seconds have passed."""


class MfaRequiredError(AuthenticationError):
    """The password was right; a one-time code is needed (or enrolment first)."""


class PermissionDeniedError(XnaiError):
    """The principal lacks the permission or access to the resource."""


class MfaEnrolmentRequiredError(PermissionDeniedError):
    """MFA is required and the user has not enrolled: only enrolment is allowed."""


class ConflictError(XnaiError):
    """The request conflicts with the current state (e.g. the name is taken)."""


class InvalidInputError(XnaiError):
    """A value given by the user is not acceptable (e.g. a weak password)."""


class MalformedBundleError(InvalidInputError):
    """A file is not a well-formed answer bundle (not JSON, a field missing or mistyped, an
    unknown format version)."""


class AuditUnavailableError(XnaiError):
    """The audit trail cannot be written (disk full, read-only, missing): the privileged
    action that needed it was refused and nothing was changed."""


class StorageFullError(XnaiError):
    """The disk (or the quota) that holds the data directory or the database is full: the
    change in progress was not made; free disk space and try again."""


class AuditStorageFullError(AuditUnavailableError, StorageFullError):
    """The audit trail cannot be written because the disk is full: the privileged action
    that needed it was refused and nothing was changed."""


class IntegrityError(XnaiError):
    """Stored data failed its integrity check (tampered or wrong key); never returns data."""


REBUILD_HINT = "rebuild it from the database, which holds every chunk's text: `xnai index rebuild`"


class IndexDamagedError(NotReadyError):
    """The committed index files are damaged or disagree with the database: the service
    answers no query from them until ``xnai index rebuild`` writes a new generation."""
