"""What the consumers put in a log line about a failure."""

from __future__ import annotations


def short(exc: BaseException) -> str:
    """The first line of `exc`, at most 300 characters."""
    # Database errors quote the failing statement and its parameters (which may hold personal
    # data from the message): log the first line only.
    return str(exc).splitlines()[0][:300] if str(exc) else ""
