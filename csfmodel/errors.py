"""Errors raised for bad user input.

Every error about user input is a :class:`ScenarioError`: a one-line message
naming the key, the value that was given and what is allowed, in the user's
units. The CLI prints the message and exits with status 2, without a
traceback.
"""

from __future__ import annotations

__all__ = ["ScenarioError"]


class ScenarioError(ValueError):
    """Bad user input: which key, what was given, what is allowed.

    Parameters
    ----------
    key
        Dotted path of the offending key, e.g. ``"dose[2].rate"``.
    value
        The value the user gave (shown with ``repr``).
    allowed
        What would have been accepted, in the user's words and units.
    detail
        Optional extra explanation (why the value was refused).
    """

    def __init__(self, key: str, value: object, allowed: str, detail: str | None = None):
        self.key = key
        self.value = value
        self.allowed = allowed
        self.detail = detail
        msg = f"{key}: got {value!r}"
        if detail:
            msg += f" ({detail})"
        msg += f"; expected {allowed}"
        super().__init__(msg)
