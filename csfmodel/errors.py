"""Errors raised for bad user input.

Every error about user input is a :class:`ScenarioError`: a one-line message
naming the key, the value that was given and what is allowed, in the user's
units. The CLI prints the message and exits with status 2, without a
traceback.
"""

from __future__ import annotations

__all__ = ["ScenarioError", "shown"]


def shown(value: object, limit: int = 200) -> str:
    """``repr(value)`` for a message: shortened, and safe for huge or deeply nested input."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 512:
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        return f"<a {type(value).__name__} too large or too deeply nested to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        msg = f"{key}: got {shown(value)}"
        if detail:
            msg += f" ({detail})"
        msg += f"; expected {allowed}"
        super().__init__(msg)
