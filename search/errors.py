"""The one exception type the CLI turns into a one-line message and a non-zero exit."""

__all__ = ["UserError"]


class UserError(Exception):
    """Something the user gave (a file, a flag, a name) is wrong; the message says what and where."""
