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


class ModelUnavailableError(ModelError):
    """The model backend cannot be reached or loaded."""
