"""The deadline key: how a scheduled deadline is named, made and read in one place.

A deadline's key is `{complaint_id}/{kind}/{cause}` (the cause is the id of the event or
letter that scheduled it). Keys are stored with the deadline and published with
`deadline.scheduled` and `deadline.fired`; readers of those events (the streaming fold in
`reporting.ops`) take the cause back out with `cause_of` rather than parsing the format.
"""

from __future__ import annotations


def deadline_key(complaint_id: str, kind: str, cause: str) -> str:
    return f"{complaint_id}/{kind}/{cause}"


def cause_of(key: str, complaint_id: str, kind: str) -> str | None:
    """The cause in a key made by `deadline_key` for this complaint and kind; None when the
    key was not made for them.

    The cause may itself contain slashes, so it is cut by length, not split.
    """
    prefix = deadline_key(complaint_id, kind, "")
    return key[len(prefix):] if key.startswith(prefix) else None
