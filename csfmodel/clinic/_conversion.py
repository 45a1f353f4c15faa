"""Oral morphine equivalents of a patient's opioids, and the published IT conversion rules.

The conversion factors are the table of ``csfmodel/data/opioid_conversion.csv`` (CDC
2022 morphine milligram equivalents, with the parenteral : oral morphine ratio), each
row with its source and whether it was checked against that source. The clinical rules
that turn them into a first intrathecal dose (:data:`CLINICAL_RULES`) are listed the
same way. None of this is a prescription: equianalgesic tables are estimates that
cannot account for individual variability (CDC 2022).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from importlib import resources

from csfmodel.errors import ScenarioError

__all__ = ["Conversion", "CONVERSIONS", "ClinicalRule", "CLINICAL_RULES", "OpioidDose",
           "oral_morphine_equivalents", "METHADONE_BANDS"]


@dataclass(frozen=True)
class Conversion:
    """One row of the conversion table: ``factor`` x dose (in ``unit``) = mg/day OME."""

    opioid: str
    route: str
    unit: str
    factor: float
    source: str
    verified: bool
    caveat: str


def _load() -> dict[tuple[str, str], Conversion]:
    text = resources.files("csfmodel").joinpath("data/opioid_conversion.csv").read_text("utf-8")
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        c = Conversion(row["opioid"], row["route"], row["unit"], float(row["factor_ome"]),
                       row["source"], row["verified"] == "yes", row["caveat"])
        out[(c.opioid, c.route)] = c
    return out


#: (opioid, route) -> :class:`Conversion`; mg/day (or ug/h for patches) -> oral morphine mg/day
CONVERSIONS: dict[tuple[str, str], Conversion] = _load()

#: The dose-dependent methadone factors of the CDC 2017 compilation: (up to mg/day, factor)
METHADONE_BANDS: tuple[tuple[float, float], ...] = ((20.0, 4.0), (40.0, 8.0), (60.0, 10.0),
                                                    (float("inf"), 12.0))


@dataclass(frozen=True)
class ClinicalRule:
    """A published rule that gives a first intrathecal morphine dose (mg/day).

    ``source`` names where it is stated; ``verified`` whether that was checked here.
    """

    name: str
    text: str
    source: str
    verified: bool


_SEEDS = ("hospital pages on intrathecal pumps: 'the dosage is only 1/100 of intravenous "
          "medication and 1/300 of oral medication'")
#: The rules shown beside the model's proposal (:func:`csfmodel.clinic.start_rate`).
CLINICAL_RULES: dict[str, ClinicalRule] = {
    "oral:IT 300:1": ClinicalRule(
        "oral:IT 300:1", "IT morphine = oral morphine equivalents / 300",
        _SEEDS + "; the usual oral : epidural : IT ladder 300 : 10 : 1 (e.g. Krames 1996 "
        "J Pain Symptom Manage 11:333)", False),
    "IV:IT 100:1": ClinicalRule(
        "IV:IT 100:1", "IT morphine = IV morphine / 100 (IV = oral / 3)", _SEEDS, False),
    "50% of the conversion": ClinicalRule(
        "50% of the conversion", "start at half of the 300:1 conversion (incomplete "
        "cross-tolerance)", "CDC 2022: the new opioid is dosed 'substantially lower' than the "
        "calculated MME; a 25-50 % reduction is the usual advice", False),
    "trial dose per day": ClinicalRule(
        "trial dose per day", "daily pump dose = the single-shot trial dose that gave "
        "relief", "common practice after a bolus trial", False),
    "half the trial dose per day": ClinicalRule(
        "half the trial dose per day", "daily pump dose = half the effective trial dose",
        "common practice after a bolus trial (a more cautious start)", False),
    "label range": ClinicalRule(
        "label range", "Infumorph label, intrathecal: opioid-naive 0.2-1 mg/day, "
        "opioid-tolerant 1-10 mg/day", "Infumorph prescribing information", True),
}


@dataclass(frozen=True)
class OpioidDose:
    """One opioid of a regimen and its oral morphine equivalent (mg/day)."""

    text: str
    opioid: str
    route: str
    dose: float
    unit: str
    ome_mg_per_day: float
    conversion: Conversion
    note: str = ""


_ITEM = re.compile(r"^\s*([A-Za-z]+)\s+(?:(oral|po|iv|intravenous|transdermal|td|patch)\s+)?"
                   r"(.+?)\s*$", re.I)
_ROUTES = {"po": "oral", "intravenous": "iv", "td": "transdermal", "patch": "transdermal"}


def _parse_item(text: str, key: str) -> OpioidDose:
    from csfmodel.units import convert

    known = sorted({f"{o} {r}" for o, r in CONVERSIONS})
    allowed = ("an opioid, optionally its route, and a daily dose, e.g. 'oxycodone 520 mg/day', "
               "'morphine iv 24 mg/day', 'fentanyl transdermal 50 ug/h'; known: "
               + ", ".join(known))
    if not isinstance(text, str):
        raise ScenarioError(key, text, allowed)
    m = _ITEM.match(text)
    if m is None:
        raise ScenarioError(key, text, allowed)
    opioid = m.group(1).lower()
    route = (m.group(2) or "").lower()
    route = _ROUTES.get(route, route) or ("transdermal" if opioid == "fentanyl" else "oral")
    conv = CONVERSIONS.get((opioid, route))
    if conv is None:
        raise ScenarioError(key, text, allowed, detail=f"no conversion for {opioid} {route}")
    dose = convert(m.group(3), conv.unit, key)
    if not dose > 0:
        raise ScenarioError(key, text, f"a positive dose in {conv.unit}")
    ome = dose * conv.factor
    note = conv.caveat
    if opioid == "methadone":
        band = next(f for top, f in METHADONE_BANDS if dose <= top)
        note = (f"CDC 2022 factor {conv.factor:g} gives {ome:.4g} mg/day; the dose-dependent "
                f"factor {band:g} of the CDC 2017 compilation would give {dose * band:.4g} "
                f"mg/day. " + conv.caveat)
    return OpioidDose(text.strip(), opioid, route, dose, conv.unit, ome, conv, note)


def oral_morphine_equivalents(regimen: str | list[str] | tuple[str, ...],
                              key: str = "regimen") -> list[OpioidDose]:
    """Each opioid of a regimen with its oral morphine equivalent (mg/day).

    Parameters
    ----------
    regimen
        One item or a list: ``"oxycodone 520 mg/day"``, ``"morphine iv 24 mg/day"``,
        ``"fentanyl transdermal 50 ug/h"``; a text with items separated by ``+`` or
        ``;`` is split.

    Examples
    --------
    >>> [round(d.ome_mg_per_day, 1) for d in oral_morphine_equivalents(
    ...     "oxycodone 520 mg/day + morphine iv 24 mg/day")]
    [780.0, 72.0]
    """
    items = re.split(r"[+;]", regimen) if isinstance(regimen, str) else list(regimen)
    items = [i for i in items if not isinstance(i, str) or i.strip()]
    if not items:
        raise ScenarioError(key, regimen, "at least one opioid and dose, e.g. "
                            "'oxycodone 520 mg/day'")
    return [_parse_item(t, f"{key}[{i}]") for i, t in enumerate(items)]
