"""Allowed ranges of numeric inputs: each declared once, beside its unit and basis.

Every number a user can set (patient anatomy, drug properties, dose quantities,
simulation options) has a range that a human patient, a real drug or a pump can
have, widened so that sensitivity sweeps can explore beyond the usual values.
Values outside it are almost always unit slips ("5 kg/day") or typing errors, and
some of them would make the solver run away (a clearance of 1e300 mL/min) or
exhaust memory. Checking them at the boundary turns each into a one-line
:class:`~csfmodel.errors.ScenarioError` that names the key, the value given and
the range allowed, in the unit of the table.

The tables themselves live beside the quantities they bound:
:data:`csfmodel.anatomy.PATIENT_PARAMETERS`, :data:`csfmodel.drugs.DRUG_PARAMETERS`
and the dose and simulation limits of :mod:`csfmodel.scenario`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from csfmodel.errors import ScenarioError

__all__ = ["Bound", "replace_checked"]


@dataclass(frozen=True)
class Bound:
    """Unit and allowed closed range ``[low, high]`` of one numeric input.

    Parameters
    ----------
    unit
        The internal unit the value is held in, and in which ``low`` and ``high``
        are stated (``"1"`` for a plain number, ``"str"`` for a text value).
    low, high
        Allowed range, inclusive unless ``low_open`` / ``high_open``.
    basis
        Why: the physiology or practice (with its source) the range spans.
    low_open, high_open
        Exclude the end itself (e.g. a fraction in ``[0, 1)``).
    """

    unit: str
    low: float = -math.inf
    high: float = math.inf
    basis: str = ""
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """The range in words, e.g. ``"0.01 to 100 cm^2/min (basis)"``."""
        unit = "" if self.unit == "1" else f" {self.unit}"
        lo = "more than " if self.low_open else ""
        hi = "less than " if self.high_open else ""
        text = f"{lo}{self.low:g} to {hi}{self.high:g}{unit}"
        return f"{text} ({self.basis})" if self.basis else text

    def contains(self, value: float) -> bool:
        """Whether a value (internal unit) is finite and inside the range."""
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def check(self, key: str, value: float, given: object = None) -> float:
        """Return ``value`` if allowed, else raise a ScenarioError naming ``key``.

        ``given`` is the value as the user wrote it (shown in the message).
        """
        if not self.contains(value):
            raise ScenarioError(key, value if given is None else given, self.describe())
        return value


def replace_checked(obj: Any, overrides: dict, key: str, given: dict | None,
                    fixed: frozenset[str] = frozenset()) -> Any:
    """A copy of the dataclass ``obj`` with ``overrides``, checked by its ``validate``.

    An override that names no field of ``obj``, or one of ``fixed``, is a ScenarioError
    (``key.name``) listing the fields allowed; ``given`` maps keys to the values as the
    user wrote them, for error messages (``obj.validate(key, given)``).
    """
    names = {f.name for f in fields(obj)} - fixed
    for k in overrides:
        if k not in names:
            raise ScenarioError(f"{key}.{k}", overrides[k],
                                "one of: " + ", ".join(sorted(names)), detail="unknown key")
    new = replace(obj, **overrides)
    new.validate(key, given)
    return new
