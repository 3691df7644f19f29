"""The exception hierarchy whose messages are the user-facing text.

Every error a user can cause derives from :class:`LossCliError`; its message is printed as one
line on stderr and the process exits with :attr:`LossCliError.exit_code`. Anything else that
escapes is a bug and exits 3 as an internal error.
"""

from __future__ import annotations


class LossCliError(Exception):
    """Base of every error caused by the user's input, flags or configuration (exit code 2)."""

    exit_code = 2


class UsageError(LossCliError):
    """Flags that do not fit together, an unknown loss or parameter, a bad option value."""


class InputError(LossCliError):
    """A problem with the data: missing file or column, unparsable cells, values out of domain."""


class ConfigError(LossCliError):
    """A malformed configuration file or key."""


class PluginError(LossCliError):
    """A custom loss that cannot be used: it fails to import, clashes with another loss's name,
    or returns values of the wrong shape or non-finite values for finite input."""


class DuplicateColumnError(InputError):
    """A column to read whose name the source has more than once."""
