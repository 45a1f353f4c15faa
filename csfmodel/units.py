"""Quantities with units at the boundary, one fixed internal unit set inside.

Users write quantities as strings such as ``"0.5 mg/day"``, ``"20 uL"`` or
``"12 h"``. They are parsed and converted exactly once, when a scenario is read.
Everything inside csfmodel uses the **internal units**:

=============  =========  ===========================================
quantity       unit       note
=============  =========  ===========================================
amount         ug         micrograms
volume         mL         = cm^3
length         cm
time           min
concentration  ug/mL      = 1000 ng/mL
clearance      mL/min
=============  =========  ===========================================

Results are converted back to user-facing units (h, ng/mL, mg) in
:mod:`csfmodel.results`.
"""

from __future__ import annotations

import functools
import math
import re

from csfmodel.errors import ScenarioError

__all__ = ["parse_quantity", "convert", "format_quantity", "UNITS"]

# dimension vector: (mass, length, time)
_M = (1, 0, 0)
_L = (0, 1, 0)
_T = (0, 0, 1)
_V = (0, 3, 0)
_ONE = (0, 0, 0)

#: unit symbol -> (factor to internal unit, dimension (mass, length, time))
UNITS: dict[str, tuple[float, tuple[int, int, int]]] = {
    # mass (internal: ug)
    "pg": (1e-6, _M),
    "ng": (1e-3, _M),
    "ug": (1.0, _M),
    "µg": (1.0, _M),
    "mcg": (1.0, _M),
    "mg": (1e3, _M),
    "g": (1e6, _M),
    "kg": (1e9, _M),
    # length (internal: cm)
    "um": (1e-4, _L),
    "mm": (0.1, _L),
    "cm": (1.0, _L),
    "m": (100.0, _L),
    # volume (internal: mL = cm^3)
    "nL": (1e-6, _V),
    "uL": (1e-3, _V),
    "µL": (1e-3, _V),
    "mL": (1.0, _V),
    "dL": (100.0, _V),
    "L": (1000.0, _V),
    # time (internal: min)
    "s": (1.0 / 60.0, _T),
    "sec": (1.0 / 60.0, _T),
    "min": (1.0, _T),
    "h": (60.0, _T),
    "hr": (60.0, _T),
    "day": (1440.0, _T),
    "d": (1440.0, _T),
    "week": (10080.0, _T),
    # dimensionless
    "1": (1.0, _ONE),
    "%": (0.01, _ONE),
}
_ALIASES = {"ml": "mL", "ul": "uL", "l": "L", "dl": "dL", "days": "day", "hours": "h",
            "hour": "h", "minutes": "min", "mins": "min", "minute": "min",
            "weeks": "week", "nl": "nL", "seconds": "s"}

# ASCII digits only (``\d`` would take "١" or "１"); matched against the stripped text,
# the unit part greedy, so that a long run of blanks cannot make the match quadratic
_NUMBER = re.compile(r"^([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*(.*)$")
_FACTOR = re.compile(r"^([A-Za-zµ%1]+)(?:\^?([-+]?[0-9]+))?$")
#: largest power of a unit symbol (``cm^3``, ``1/min^2``); more is a slip, and would
#: overflow the factor (``d^200``)
MAX_POWER = 6


def _dimension_name(dim: tuple[int, int, int]) -> str:
    names = {(1, 0, 0): "mass", (0, 1, 0): "length", (0, 3, 0): "volume",
             (0, 0, 1): "time", (1, 0, -1): "mass/time", (0, 3, -1): "volume/time",
             (1, -3, 0): "mass/volume", (0, 0, -1): "1/time", (0, 2, -1): "length^2/time",
             (0, 1, -1): "length/time", (0, 0, 0): "dimensionless"}
    if dim in names:
        return names[dim]
    parts = [f"{n}^{p}" for n, p in zip(("mass", "length", "time"), dim) if p]
    return "*".join(parts)


def _parse_unit(unit: str, key: str, text: str) -> tuple[float, tuple[int, int, int]]:
    """Parse a unit expression such as ``mg/day``, ``cm^2/min``, ``mL/min/kg``.

    The first ``/`` starts the denominator: ``mL/min/kg`` is mL/(min*kg).
    """
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a str such as 'mg/day', not {type(unit).__name__}")
    hit = _UNIT_CACHE.get(unit)
    if hit is not None:            # a sweep parses the same few units thousands of times
        return hit
    parsed = _parse_unit_uncached(unit, key, text)
    if len(_UNIT_CACHE) < 4096:
        _UNIT_CACHE[unit] = parsed
    return parsed


#: unit text -> (factor, dimension) of every unit read successfully (errors are not kept:
#: their message names the key and the value)
_UNIT_CACHE: dict[str, tuple[float, tuple[int, int, int]]] = {}


def _parse_unit_uncached(unit: str, key: str, text: str) -> tuple[float, tuple[int, int, int]]:
    unit = unit.replace("**", "^").replace("·", "*").strip()
    factor = 1.0
    dim = [0, 0, 0]
    if unit == "":
        return factor, _ONE
    for part_no, part in enumerate(unit.split("/")):
        sign = 1 if part_no == 0 else -1
        for tok in re.split(r"[*\s]+", part.strip()):
            if tok == "" and part_no == 0:
                continue
            m = _FACTOR.match(tok)
            if m is None:
                raise ScenarioError(key, text, "a number followed by a unit such as 'mg/day'",
                                    detail=f"cannot read unit {unit!r}")
            sym, power_text = m.group(1), m.group(2) or "1"
            power = int(power_text) if len(power_text.lstrip("+-")) <= 3 else MAX_POWER + 1
            if abs(power) > MAX_POWER:
                raise ScenarioError(key, text, f"a unit with powers between -{MAX_POWER} and "
                                    f"{MAX_POWER}, e.g. 'cm^2/min'",
                                    detail=f"power {power_text} of {sym!r} in {unit!r}")
            sym = _ALIASES.get(sym, sym)
            if sym not in UNITS:
                known = ", ".join(sorted(s for s in UNITS if s not in ("µg", "µL", "1")))
                raise ScenarioError(key, text, f"a known unit ({known})",
                                    detail=f"unknown unit {sym!r}")
            f, d = UNITS[sym]
            factor *= f ** (sign * power)
            for i in range(3):
                dim[i] += d[i] * sign * power
    if not (math.isfinite(factor) and factor > 0.0):
        # many factors of one unit (``pg^6 pg^6 pg^6 ...``) under- or overflow a float
        raise ScenarioError(key, text, "a unit such as 'mg/day'",
                            detail=f"the unit {unit!r} is out of range")
    return factor, (dim[0], dim[1], dim[2])


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[float, tuple[int, int, int]]:
    """:func:`parse_quantity` of a string, kept (a sweep parses the same few strings in
    every scenario); a string that fails is parsed again with its key for the error."""
    return _parse_quantity(text, "value")


def parse_quantity(text: object, key: str = "value") -> tuple[float, tuple[int, int, int]]:
    """Parse ``"<number> <unit>"`` into (value in internal units, dimension)."""
    if isinstance(text, str):
        try:
            return _parsed(text)
        except ScenarioError:
            pass
    return _parse_quantity(text, key)


def _parse_quantity(text: object, key: str) -> tuple[float, tuple[int, int, int]]:
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ScenarioError(key, text, "a quantity written as a string, e.g. '0.5 mg/day'")
    if isinstance(text, (int, float)):
        try:
            value = float(text)
        except OverflowError:  # an int beyond the float range; its repr may be refused too
            digits = int(text.bit_length() * math.log10(2)) + 1
            raise ScenarioError(key, f"<an integer of about {digits} digits>",
                                "a finite number", detail="too large") from None
        if not math.isfinite(value):
            raise ScenarioError(key, text, "a finite number")
        return value, _ONE
    m = _NUMBER.match(text.strip())
    if m is None:
        raise ScenarioError(key, text, "a number followed by a unit, e.g. '0.5 mg/day'")
    value = float(m.group(1))
    factor, dim = _parse_unit(m.group(2), key, text)
    value *= factor
    if not math.isfinite(value):
        raise ScenarioError(key, text, "a finite number",
                            detail="too large once converted to internal units")
    return value, dim


def convert(text: object, unit: str, key: str = "value") -> float:
    """Convert a user quantity to ``unit`` and return the number.

    The dimension of ``text`` must match ``unit``; otherwise a
    :class:`~csfmodel.errors.ScenarioError` names the key, the value given and
    the dimension expected. A bare number is accepted only for dimensionless
    targets.

    Examples
    --------
    >>> convert("0.5 mg/day", "ug/min")  # doctest: +ELLIPSIS
    0.3472...
    """
    target_factor, target_dim = _parse_unit(unit, key, unit)
    if isinstance(text, (int, float)) and not isinstance(text, bool) and target_dim != _ONE:
        raise ScenarioError(key, text, f"a quantity with units of {_dimension_name(target_dim)},"
                            f" e.g. '{text} {unit}'")
    value, dim = parse_quantity(text, key)
    if dim != target_dim:
        raise ScenarioError(
            key, text,
            f"a {_dimension_name(target_dim)} such as '1 {unit}'",
            detail=f"it has dimension {_dimension_name(dim)}")
    out = value / target_factor
    if not math.isfinite(out):
        raise ScenarioError(key, text, "a finite number")
    return out


def format_quantity(value: float, unit: str) -> str:
    """Format a number and unit the way users write them (``"0.5 mg"``)."""
    return f"{value:.6g} {unit}"
