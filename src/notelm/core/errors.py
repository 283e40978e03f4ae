"""The errors a user can fix. The stage runner prints them as one message and exits 1; anything else is a bug."""

from __future__ import annotations


class NoteLMError(Exception):
    """An error the user can fix (bad input, bad param, missing weights): printed, exit code 1."""


class ParamsError(NoteLMError, ValueError):
    """A parameter in params.yaml is missing, unknown or of the wrong type."""


class WeightsUnavailable(NoteLMError):
    """The weights a source names cannot be found or fetched."""
