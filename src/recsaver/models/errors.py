"""Errors raised while looking up or installing a model."""

from __future__ import annotations


class ModelError(Exception):
    """Base class for every model lookup / installation error."""


class UnknownModelError(ModelError, ValueError):
    """A name that is neither a built-in model nor a usable GGUF spec."""


class ModelNotInstalledError(ModelError):
    """A built-in model that has not been installed yet."""


class ModelInstallError(ModelError):
    """Installation failed (pip failed, a wheel lacked its data member, ...)."""


class ChecksumMismatchError(ModelInstallError):
    """The installed/assembled file does not have the expected sha256."""
