"""The user's scenario: a TOML file or dict → validated objects in internal units.

Longer than 400 lines: one concept (the scenario format), each dose kind's keys and checks.

A scenario has four kinds of table::

    [simulation]                 # duration, output_interval, resolution, solver
    duration = "24 h"
    output_interval = "5 min"
    resolution = "5 mm"

    [patient]                    # anatomy overrides, with units
    spinal_csf_volume = "90 mL"

    [drug]                       # a preset and property overrides
    name = "morphine"

    [[dose]]                     # any number of regimens
    route = "intrathecal"
    type = "infusion"
    site = "T10"
    rate = "1 mg/day"

An optional ``[pump]`` table describes the implanted pump that delivers the
intrathecal infusions and patient boluses: its reservoir, the solution in it and
the refills (see :func:`parse_pump`)::

    [pump]
    reservoir = "20 mL"
    concentration = "10 mg/mL"
    alarm = "2 mL"               # low-reservoir alarm (default 2 mL)
    start = 2025-01-30           # calendar date of t = 0 (optional)
    refills = [{ date = 2025-04-10, concentration = "20 mg/mL" }]

Every quantity is written with its unit and converted exactly once, here.
Unknown keys, missing keys, wrong dimensions and out-of-range values raise a
:class:`~csfmodel.errors.ScenarioError` naming the key, the value and what is
allowed.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
import warnings
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from csfmodel.anatomy import PATIENT_UNITS, VERTEBRAL_LEVELS, Anatomy
from csfmodel.bounds import Bound
from csfmodel.dosing import (
    ITBolus,
    ITInfusion,
    ITPatientBolus,
    IVBolus,
    IVInfusion,
    OralDose,
    Pump,
    Refill,
    Regimen,
    reservoir_course,
)
from csfmodel.drugs import DRUG_UNITS, Drug, get_drug
from csfmodel.errors import ScenarioError
from csfmodel.units import convert

__all__ = ["Scenario", "SimulationOptions", "load_scenario", "parse_scenario", "DOSE_KEYS",
           "LIMITS", "PUMP_KEYS", "PUMP_PRACTICE", "PracticeLimit", "PracticeWarning",
           "parse_pump", "practice_findings", "parse_calendar", "daily_doses"]

_SECTIONS = ("simulation", "patient", "drug", "dose", "pump", "population")

#: Allowed keys of each dose (route, type); "route" and "type" are implied.
DOSE_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("intrathecal", "infusion"): ("site", "rate", "program", "start", "duration"),
    ("intrathecal", "patient_bolus"): ("site", "amount", "lockout", "max_per_day", "requests",
                                       "daily_requests", "volume", "injection_rate"),
    ("intrathecal", "bolus"): ("site", "amount", "time", "volume", "injection_rate",
                               "interval", "count", "delivery"),
    ("oral", "bolus"): ("amount", "time", "formulation", "interval", "count"),
    ("iv", "bolus"): ("amount", "time", "interval", "count"),
    ("iv", "infusion"): ("rate", "start", "duration"),
}
_REQUIRED: dict[tuple[str, str], tuple[str, ...]] = {
    ("intrathecal", "infusion"): ("site",),
    ("intrathecal", "patient_bolus"): ("site", "amount", "lockout", "max_per_day"),
    ("intrathecal", "bolus"): ("site", "amount"),
    ("oral", "bolus"): ("amount",),
    ("iv", "bolus"): ("amount",),
    ("iv", "infusion"): ("rate",),
}
_YEAR = 366 * 1440.0  # min
#: Allowed ranges of dose and simulation quantities, in the units users think in
#: (to catch unit slips such as "5 kg/day", and values no pump or clinic uses).
LIMITS: dict[str, Bound] = {
    "it_rate": Bound("mg/day", 0.0, 100.0, "IT practice 0.1-25 mg/day, Wallace & Yaksh 2012"),
    "it_amount": Bound("mg", 0.0, 50.0, "an IT dose", low_open=True),
    "oral_amount": Bound("mg", 0.0, 5000.0, "an oral dose", low_open=True),
    "iv_amount": Bound("mg", 0.0, 1000.0, "an IV dose", low_open=True),
    "iv_rate": Bound("mg/day", 0.0, 5000.0, "an IV infusion rate"),
    "volume": Bound("mL", 0.0, 20.0, "an IT injection volume", low_open=True),
    "injection_rate": Bound("mL/min", 1e-3, 60.0, "pump boluses ~0.1 mL/min to hand "
                            "injections of 1 mL/s"),
    "lockout": Bound("min", 1.0, 1440.0, "a pump lockout of 1 min to under 24 h",
                     high_open=True),
    "interval": Bound("min", 1.0, _YEAR, "a dosing interval of 1 min to 366 days"),
    "time": Bound("min", 0.0, _YEAR, "a time within 366 days of the start"),
    "dose_duration": Bound("min", 0.0, math.inf, "a positive duration", low_open=True),
    "duration": Bound("min", 1.0, _YEAR, "1 min to 366 days"),
    "output_interval": Bound("min", 1.0 / 60.0, _YEAR, "1 s or more"),
    "resolution": Bound("cm", 0.02, 5.0, "a grid spacing between 0.2 mm and 5 cm; default 5 mm"),
    # [pump]
    "pump_reservoir": Bound("mL", 1.0, 60.0, "implanted intrathecal pump reservoirs hold "
                            "10-50 mL; SynchroMed II: 20 or 40 mL (Medtronic)"),
    "pump_concentration": Bound("mg/mL", 0.0, 50.0, "intrathecal solutions up to ~35 mg/mL "
                                "have been used (Yaksh & Onofrio 1987 Pain 31:211); the "
                                "strongest marketed morphine, Infumorph, is 25 mg/mL",
                                low_open=True),
    "pump_alarm": Bound("mL", 0.0, 20.0, "a low-reservoir alarm volume; SynchroMed II "
                        "default 2 mL (Medtronic)"),
}
#: dose times (min) are kept to this resolution (60 microseconds): events closer than
#: that are simultaneous, so no solver meets an interval of 1e-300 min between two doses
TIME_RESOLUTION = 1e-6
#: most doses one regimen may expand to (count, or requests listed)
MAX_EVENTS = 100_000
#: most output times of one simulation
MAX_OUTPUT_TIMES = 2_000_000


@dataclass(frozen=True)
class SimulationOptions:
    """``[simulation]``: times in min, resolution in cm."""

    duration: float = 1440.0
    output_interval: float = 5.0
    resolution: float = 0.5
    solver: str = "numba"

    def output_times(self) -> np.ndarray:
        """Output times (min): every ``output_interval`` from 0, and the end.

        The last time is exactly ``duration``: a multiple of the interval that rounding
        puts within 1e-9 of the end (``"4.1 h"`` is 245.99999999999997 min, and 41
        intervals of 6 min are 246.0) is the end itself, never a time beyond it.
        """
        n_out = int(np.floor(self.duration / self.output_interval + 1e-9)) + 1
        t = np.arange(n_out) * self.output_interval
        tol = 1e-9 * max(self.duration, self.output_interval)
        t = t[t < self.duration - tol]
        return np.append(t, self.duration)


@dataclass(frozen=True)
class Scenario:
    """A validated scenario in internal units.

    Build one with :func:`load_scenario` (TOML file), :func:`parse_scenario`
    (dict) or directly from the objects.
    """

    simulation: SimulationOptions = field(default_factory=SimulationOptions)
    anatomy: Anatomy = field(default_factory=Anatomy)
    drug: Drug = field(default_factory=lambda: get_drug("morphine"))
    doses: tuple[Regimen, ...] = ()
    #: the implanted pump that delivers the intrathecal infusions and patient boluses
    pump: Pump | None = None
    #: the user's input, kept verbatim for the results' attrs
    source: dict = field(default_factory=dict, compare=False)

    def replace_simulation(self, **kw: Any) -> Scenario:
        """Copy with some simulation options changed (e.g. ``solver="reference"``)."""
        from dataclasses import replace

        return replace(self, simulation=replace(self.simulation, **kw))

    def catheter_sites(self) -> list[float]:
        """z (cm) of every intrathecal dose site."""
        return sorted({d.site_z for d in self.doses if hasattr(d, "site_z")})


# ---------------------------------------------------------------- helpers
def _word(value: Any, key: str, allowed: str, lower: bool = True) -> str:
    """A text value (a route, a name): anything but a string is refused."""
    if not isinstance(value, str):
        raise ScenarioError(key, value, allowed)
    return value.lower() if lower else value


def _check_keys(table: dict, allowed: tuple[str, ...], key: str) -> None:
    for k in table:
        if k not in allowed:
            raise ScenarioError(f"{key}.{k}" if key else k, table[k],
                                "one of the keys: " + ", ".join(allowed), detail="unknown key")


def _limited(table: dict, name: str, limit: str, key: str, internal: str,
              default: Any = None) -> Any:
    """``table[name]`` checked against ``LIMITS[limit]`` and converted to ``internal``."""
    if name not in table:
        return default
    bound = LIMITS[limit]
    bound.check(f"{key}.{name}", convert(table[name], bound.unit, f"{key}.{name}"),
                table[name])
    return convert(table[name], internal, f"{key}.{name}")


_INTERSPACE = re.compile(r"^\s*([CTLS]\d{1,2})\s*[-/]\s*([CTLS]\d{1,2})\s*$", re.I)


def parse_site(value: Any, anatomy: Anatomy, key: str) -> float:
    """A catheter site: a vertebral level ("T10"), an interspace ("L3-L4") or "45 cm"."""
    allowed = (f"a vertebral level ({VERTEBRAL_LEVELS[0]}…{VERTEBRAL_LEVELS[-1]}), an "
               f"interspace such as 'L3-L4', or a distance from the foramen magnum within "
               f"0-{anatomy.length:.1f} cm such as '45 cm'")
    if not isinstance(value, str):
        raise ScenarioError(key, value, allowed)
    m = _INTERSPACE.match(value)
    if m:
        a, b = m.group(1).upper(), m.group(2).upper()
        if a not in VERTEBRAL_LEVELS or b not in VERTEBRAL_LEVELS or \
                VERTEBRAL_LEVELS.index(b) != VERTEBRAL_LEVELS.index(a) + 1:
            raise ScenarioError(key, value, allowed, detail="not two adjacent levels")
        return anatomy.level_z(a, 1.0, key)
    if value.strip().upper() in VERTEBRAL_LEVELS:
        return anatomy.level_z(value, 0.5, key)
    if not re.match(r"^\s*[-+.\d]", value):
        raise ScenarioError(key, value, allowed)
    z = convert(value, "cm", key)
    if not 0.0 <= z <= anatomy.length:
        raise ScenarioError(key, value, allowed, detail="outside the spinal subarachnoid space")
    return z


def _times(values: Any, key: str) -> tuple[float, ...]:
    if not isinstance(values, list) or len(values) > MAX_EVENTS:
        raise ScenarioError(key, values if isinstance(values, list) and len(values) < 10
                            else type(values).__name__,
                            f"a list of at most {MAX_EVENTS} times such as ['2 h', '14 h']")
    return tuple(_time_value(v, f"{key}[{i}]") for i, v in enumerate(values))


def _instant(t: float) -> float:
    """A dose time (min) on the grid of ``TIME_RESOLUTION``: no two events closer."""
    return round(t / TIME_RESOLUTION) * TIME_RESOLUTION


def _time_value(value: Any, key: str) -> float:
    bound = LIMITS["time"]
    return _instant(bound.check(key, convert(value, bound.unit, key), value))


def _count(table: dict, key: str) -> int:
    c = table.get("count", 1)
    if isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= MAX_EVENTS:
        raise ScenarioError(f"{key}.count", c, f"a whole number from 1 to {MAX_EVENTS}")
    if c > 1 and "interval" not in table:
        raise ScenarioError(f"{key}.interval", None, "an interval such as '12 h' when count > 1",
                            detail="missing")
    return c


def _parse_dose(d: Any, i: int, anatomy: Anatomy) -> Regimen:
    key = f"dose[{i}]"
    if not isinstance(d, dict):
        raise ScenarioError(key, d, "a table with route, type and quantities")
    route = d.get("route")
    routes = sorted({r for r, _ in DOSE_KEYS})
    if route is None:
        raise ScenarioError(f"{key}.route", None, "one of: " + ", ".join(routes),
                            detail="missing")
    route = _word(route, f"{key}.route", "one of: " + ", ".join(routes))
    if route not in routes:
        raise ScenarioError(f"{key}.route", d["route"], "one of: " + ", ".join(routes))
    types = [t for r, t in DOSE_KEYS if r == route]
    typ = _word(d.get("type", "bolus"), f"{key}.type", f"for route {route!r} one of: "
                + ", ".join(types))
    if typ not in types:
        raise ScenarioError(f"{key}.type", d.get("type"), f"for route {route!r} one of: "
                            + ", ".join(types))
    allowed = ("route", "type") + DOSE_KEYS[(route, typ)]
    _check_keys(d, allowed, key)
    for req in _REQUIRED[(route, typ)]:
        if req not in d:
            raise ScenarioError(f"{key}.{req}", None, f"a value (required for {route} {typ})",
                                detail="missing")
    t = d
    start = _instant(_limited(t, "start", "time", key, "min", 0.0))
    duration = _limited(t, "duration", "dose_duration", key, "min", float("inf"))
    time = _instant(_limited(t, "time", "time", key, "min", 0.0))
    interval = _limited(t, "interval", "interval", key, "min")
    if route == "intrathecal":
        site = parse_site(t["site"], anatomy, f"{key}.site")
    if (route, typ) == ("intrathecal", "infusion"):
        if ("rate" in t) == ("program" in t):
            raise ScenarioError(f"{key}.rate", t.get("rate"),
                                "either rate = '1 mg/day' or a program, not both or neither")
        if "rate" in t:
            program = ((0.0, _limited(t, "rate", "it_rate", key, "ug/min")),)
        else:
            prog = t["program"]
            if not isinstance(prog, list) or not prog:
                raise ScenarioError(f"{key}.program", prog,
                                    "a list of {at = '8 h', rate = '1 mg/day'} steps")
            steps = []
            for k, st in enumerate(prog):
                sk = f"{key}.program[{k}]"
                if not isinstance(st, dict):
                    raise ScenarioError(sk, st, "a table {at = '8 h', rate = '1 mg/day'}")
                _check_keys(st, ("at", "rate"), sk)
                for req in ("at", "rate"):
                    if req not in st:
                        raise ScenarioError(f"{sk}.{req}", None, "a value", detail="missing")
                at = convert(st["at"], "min", f"{sk}.at")
                if 0 <= at < 1440:          # on the grid of dose times once in range
                    at = _instant(at)       # (1e302 min would overflow the rounding)
                if not 0 <= at < 1440:
                    raise ScenarioError(f"{sk}.at", st["at"], "a time of day in [0 h, 24 h)")
                steps.append((at, _limited(st, "rate", "it_rate", sk, "ug/min")))
            if len({a for a, _ in steps}) != len(steps):
                raise ScenarioError(f"{key}.program", prog, "steps at distinct times of day")
            program = tuple(sorted(steps))
        return ITInfusion(site_z=site, program=program, start=start, duration=duration)
    if (route, typ) == ("intrathecal", "patient_bolus"):
        lockout = _limited(t, "lockout", "lockout", key, "min")
        mpd = t["max_per_day"]
        if isinstance(mpd, bool) or not isinstance(mpd, int) or not 1 <= mpd <= 1440:
            raise ScenarioError(f"{key}.max_per_day", mpd if isinstance(mpd, bool) or not
                                isinstance(mpd, int) or mpd < 10**9 else "<a huge integer>",
                                "a whole number from 1 to 1440 (one a minute)")
        if mpd * lockout > 1440.0 + 1e-9:
            raise ScenarioError(f"{key}.max_per_day", mpd,
                                f"at most {int(1440 // lockout)} per day with a "
                                f"{t['lockout']} lockout", detail="impossible with the lockout")
        if "requests" not in t and "daily_requests" not in t:
            raise ScenarioError(f"{key}.requests", None,
                                "requests = ['2 h', ...] and/or daily_requests = ['8 h', ...]",
                                detail="missing")
        daily = _times(t.get("daily_requests", []), f"{key}.daily_requests")
        if any(x >= 1440 for x in daily):
            raise ScenarioError(f"{key}.daily_requests", t["daily_requests"],
                                "times of day in [0 h, 24 h)")
        vol = _limited(t, "volume", "volume", key, "mL", 0.02)
        return ITPatientBolus(
            site_z=site, amount=_limited(t, "amount", "it_amount", key, "ug"),
            lockout=lockout, max_per_day=mpd,
            requests=_times(t.get("requests", []), f"{key}.requests"), daily_requests=daily,
            volume=vol,
            injection_rate=_limited(t, "injection_rate", "injection_rate", key, "mL/min", 0.1))
    if (route, typ) == ("intrathecal", "bolus"):
        vol = _limited(t, "volume", "volume", key, "mL", 1.0)
        delivery = _word(t.get("delivery", "needle"), f"{key}.delivery",
                         "'needle' (lumbar puncture) or 'catheter' (implanted)")
        if delivery not in ("needle", "catheter"):
            raise ScenarioError(f"{key}.delivery", t.get("delivery"),
                                "'needle' (lumbar puncture) or 'catheter' (implanted)")
        return ITBolus(site_z=site, amount=_limited(t, "amount", "it_amount", key, "ug"),
                       time=time, volume=vol,
                       injection_rate=_limited(t, "injection_rate", "injection_rate", key, "mL/min",
                                                     4.0),
                       interval=interval, count=_count(t, key), delivery=delivery)
    if route == "oral":
        form = _word(t.get("formulation", "immediate"), f"{key}.formulation",
                     "'immediate' (IR) or 'controlled' (CR)")
        forms = {"immediate": "immediate", "ir": "immediate", "controlled": "controlled",
                 "cr": "controlled"}
        if form not in forms:
            raise ScenarioError(f"{key}.formulation", t.get("formulation"),
                                "'immediate' (IR) or 'controlled' (CR)")
        return OralDose(amount=_limited(t, "amount", "oral_amount", key, "ug"), time=time,
                        formulation=forms[form], interval=interval, count=_count(t, key))
    if typ == "bolus":
        return IVBolus(amount=_limited(t, "amount", "iv_amount", key, "ug"), time=time,
                       interval=interval, count=_count(t, key))
    return IVInfusion(rate=_limited(t, "rate", "iv_rate", key, "ug/min"), start=start,
                      duration=duration)


# ---------------------------------------------------------------- [pump]
#: keys of ``[pump]`` and of each of its ``refills``
PUMP_KEYS = ("reservoir", "concentration", "fill", "alarm", "start", "refills")
_REFILL_KEYS = ("at", "date", "volume", "concentration")


class PracticeWarning(UserWarning):
    """A pump setting outside published practice limits (allowed, but worth a look)."""


@dataclass(frozen=True)
class PracticeLimit:
    """A published practice limit on a pump setting.

    ``quantity`` is ``"concentration"`` (internal ug/mL), ``"daily_dose"`` (ug/day)
    or ``"daily_volume"`` (mL/day); ``side`` ``"max"`` or ``"min"``; ``drug`` a drug
    name or ``"*"`` (any drug: a limit of the device). ``verified`` tells whether the
    number was checked against the source quoted, or is quoted from the literature
    without that check.
    """

    drug: str
    quantity: str
    side: str
    value: float
    shown: str
    source: str
    verified: bool

    def crossed(self, value: float) -> bool:
        return value > self.value if self.side == "max" else value < self.value

    def describe(self) -> str:
        note = "" if self.verified else ("; as cited in secondary sources, the primary "
                                         "text not checked")
        return f"{self.shown} ({self.source}{note})"


_PACC = ("Polyanalgesic Consensus Conference: Deer et al. 2012 Neuromodulation 15:436 and "
         "2017 Neuromodulation 20:96")
#: Published practice limits of intrathecal pump therapy (warnings, not errors).
PUMP_PRACTICE: tuple[PracticeLimit, ...] = (
    PracticeLimit("morphine", "concentration", "max", 20e3, "20 mg/mL, the recommended "
                  "maximum concentration of intrathecal morphine", _PACC, False),
    PracticeLimit("morphine", "concentration", "max", 25e3, "25 mg/mL, the strongest "
                  "marketed intrathecal morphine", "Infumorph 500, 25 mg/mL, NDC 0641-6040",
                  True),
    PracticeLimit("morphine", "daily_dose", "max", 15e3, "15 mg/day, the recommended maximum "
                  "daily dose of intrathecal morphine", _PACC, False),
    PracticeLimit("morphine", "daily_dose", "max", 20e3, "20 mg/day, above which the label "
                  "advises caution", "Infumorph label, intrathecal: opioid-naive 0.2-1 "
                  "mg/day, opioid-tolerant 1-10 mg/day, caution with doses > 20 mg/day", True),
    PracticeLimit("hydromorphone", "concentration", "max", 15e3, "15 mg/mL, the recommended "
                  "maximum concentration of intrathecal hydromorphone", _PACC, False),
    PracticeLimit("hydromorphone", "daily_dose", "max", 10e3, "10 mg/day, the recommended "
                  "maximum daily dose of intrathecal hydromorphone", _PACC, False),
    PracticeLimit("ziconotide", "daily_dose", "max", 19.2, "19.2 ug/day, the labelled maximum "
                  "of intrathecal ziconotide", "Prialt label", False),
    PracticeLimit("*", "daily_volume", "min", 0.048, "0.048 mL/day, the smallest flow a "
                  "SynchroMed II pump is programmed to", "SynchroMed II implant manual, "
                  "Medtronic", False),
)


def parse_calendar(value: Any, key: str) -> datetime:
    """A calendar date or date and time: a TOML date/datetime or an ISO text."""
    allowed = "a date such as 2025-01-30 or '2025-01-30T09:00' (local time, no zone)"
    if isinstance(value, datetime):
        out = value
    elif isinstance(value, date):
        out = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            out = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ScenarioError(key, value, allowed) from None
    else:
        raise ScenarioError(key, value, allowed)
    if out.tzinfo is not None:
        raise ScenarioError(key, value, allowed, detail="a time zone is not needed")
    return out


def daily_doses(regimens: tuple[Regimen, ...]) -> tuple[float, float]:
    """(programmed, programmed + every allowed patient bolus) drug per day (ug/day)."""
    basal = extra = 0.0
    for r in regimens:
        if isinstance(r, ITInfusion):
            # each step holds until the next; the last one until the first of the next day
            prog = sorted(r.program)
            tods = [tod for tod, _ in prog] + [prog[0][0] + 1440.0]
            basal += sum(rate * (tods[k + 1] - tod) for k, (tod, rate) in enumerate(prog))
        elif isinstance(r, ITPatientBolus):
            extra += r.amount * r.max_per_day
    return basal, basal + extra


def practice_findings(pump: Pump, regimens: tuple[Regimen, ...], drug: str) -> list[str]:
    """Every pump setting outside :data:`PUMP_PRACTICE`, in words (empty if none)."""
    basal, most = daily_doses(tuple(r for r in regimens if Pump.delivers(r)))
    out = []
    for lim in PUMP_PRACTICE:
        if lim.drug not in (drug, "*"):
            continue
        if lim.quantity == "daily_dose":
            for what, v in (("programmed", basal), ("with every patient bolus allowed", most)):
                if lim.crossed(v):
                    out.append(f"{drug} {v / 1000:.4g} mg/day ({what}) is above "
                               f"{lim.describe()}")
                    break
            continue
        for k, f in enumerate(pump.fills()):
            where = "the first fill" if k == 0 else f"refill {k}"
            v = f.concentration if lim.quantity == "concentration" else basal / f.concentration
            if basal == 0 and lim.quantity == "daily_volume":
                continue
            if lim.crossed(v):
                shown = (f"{drug} {v / 1000:.4g} mg/mL" if lim.quantity == "concentration"
                         else f"a programmed flow of {v:.4g} mL/day")
                side = "above" if lim.side == "max" else "below"
                out.append(f"{where}: {shown} is {side} {lim.describe()}")
    return out


def _fill_quantity(table: dict, name: str, limit: str, key: str, internal: str,
                   default: float) -> float:
    return float(_limited(table, name, limit, key, internal, default))


def parse_pump(table: Any, regimens: tuple[Regimen, ...], raw_doses: list,
               sim: SimulationOptions, drug: str) -> tuple[Pump, tuple[Regimen, ...]]:
    """Validate ``[pump]`` against the doses it delivers; return the pump and the doses.

    The pump delivers every intrathecal infusion and patient bolus. A patient bolus
    takes ``amount / concentration`` from the reservoir: its ``volume`` is derived from
    the first fill when not given, and must agree with it (within 1 %) when given. The
    reservoir may not run empty within the simulation (a refill must come first).
    Settings outside published practice (:data:`PUMP_PRACTICE`) give a
    :class:`PracticeWarning`.
    """
    if not isinstance(table, dict):
        raise ScenarioError("pump", table, "a table with reservoir, concentration, ...")
    _check_keys(table, PUMP_KEYS, "pump")
    for req in ("reservoir", "concentration"):
        if req not in table:
            raise ScenarioError(f"pump.{req}", None, "a value such as '20 mL' / '10 mg/mL'",
                                detail="missing")
    reservoir = _fill_quantity(table, "reservoir", "pump_reservoir", "pump", "mL", 0.0)
    conc = _fill_quantity(table, "concentration", "pump_concentration", "pump", "ug/mL", 0.0)
    alarm = _fill_quantity(table, "alarm", "pump_alarm", "pump", "mL", min(2.0, reservoir / 2))
    if alarm >= reservoir:
        raise ScenarioError("pump.alarm", table.get("alarm"),
                            f"less than the reservoir ({table['reservoir']})")
    fill = _fill_quantity(table, "fill", "pump_reservoir", "pump", "mL", reservoir)
    if not alarm < fill <= reservoir * (1 + 1e-9):
        raise ScenarioError("pump.fill", table.get("fill"), f"more than the alarm volume "
                            f"({alarm:g} mL) and at most the reservoir ({reservoir:g} mL)")
    start = parse_calendar(table["start"], "pump.start") if "start" in table else None
    refills_raw = table.get("refills", [])
    if not isinstance(refills_raw, list):
        raise ScenarioError("pump.refills", refills_raw,
                            "a list of {date = 2025-03-01} or {at = '35 day'} tables")
    refills: list[Refill] = []
    last_t, last_c = 0.0, conc
    for k, r in enumerate(refills_raw):
        rk = f"pump.refills[{k}]"
        if not isinstance(r, dict):
            raise ScenarioError(rk, r, "a table {date = 2025-03-01, concentration = ...}")
        _check_keys(r, _REFILL_KEYS, rk)
        if ("at" in r) == ("date" in r):
            raise ScenarioError(f"{rk}.at", r.get("at"), "either at = '35 day' or a date, "
                                "not both or neither")
        if "date" in r:
            if start is None:
                raise ScenarioError(f"{rk}.date", r["date"], "a time since the start such "
                                    "as at = '35 day', or a pump.start date", detail="the "
                                    "pump has no start date")
            when = parse_calendar(r["date"], f"{rk}.date")
            t = _instant((when - start).total_seconds() / 60.0)
            LIMITS["time"].check(f"{rk}.date", t, r["date"])
        else:
            t = _time_value(r["at"], f"{rk}.at")
        if not t > last_t:
            raise ScenarioError(f"{rk}", r.get("date", r.get("at")),
                                "a time after the start and after the previous refill")
        vol = _fill_quantity(r, "volume", "pump_reservoir", rk, "mL", reservoir)
        if not alarm < vol <= reservoir * (1 + 1e-9):
            raise ScenarioError(f"{rk}.volume", r.get("volume"), f"more than the alarm "
                                f"volume ({alarm:g} mL) and at most the reservoir "
                                f"({reservoir:g} mL)")
        c = _fill_quantity(r, "concentration", "pump_concentration", rk, "ug/mL", last_c)
        refills.append(Refill(t, vol, c))
        last_t, last_c = t, c
    pump = Pump(reservoir=reservoir, concentration=conc, fill=fill, alarm=alarm, start=start,
                refills=tuple(refills))
    delivered = [i for i, r in enumerate(regimens) if Pump.delivers(r)]
    if not delivered:
        raise ScenarioError("pump", "a pump", "at least one [[dose]] it delivers: an "
                            "intrathecal infusion or patient_bolus", detail="nothing to deliver")
    out = list(regimens)
    for i in delivered:
        r = regimens[i]
        if not isinstance(r, ITPatientBolus):
            continue
        derived = r.amount / conc
        if "volume" in raw_doses[i]:
            if abs(r.volume - derived) > 0.01 * derived:
                raise ScenarioError(f"dose[{i}].volume", raw_doses[i]["volume"],
                                    f"{derived * 1000:.4g} uL: the amount "
                                    f"({raw_doses[i]['amount']}) at the pump's concentration "
                                    f"({table['concentration']}), or leave it out",
                                    detail="inconsistent with the pump")
        else:
            out[i] = replace(r, volume=derived)
    regimens = tuple(out)
    course = reservoir_course(pump, regimens, sim.duration)
    for k, per in enumerate(course.periods):
        if per.empty_time is not None and per.empty_time < min(per.end, sim.duration):
            when = pump.date(per.empty_time)
            said = f"{when:%Y-%m-%d %H:%M}" if when else f"day {per.empty_time / 1440:.2f}"
            alarm_at = per.alarm_time if per.alarm_time is not None else per.start
            alarm_when = pump.date(alarm_at)
            alarm_said = f"{alarm_when:%Y-%m-%d}" if alarm_when else \
                f"day {alarm_at / 1440:.2f}"
            nxt = f"pump.refills[{k}]" if per.refilled else "pump.refills"
            raise ScenarioError(nxt, (refills_raw[k].get("date", refills_raw[k].get("at"))
                                      if per.refilled else None),
                                f"a refill before the reservoir runs empty on {said} (its "
                                f"{alarm:g} mL alarm sounds on {alarm_said})",
                                detail="the pump would deliver from an empty reservoir")
    for msg in practice_findings(pump, regimens, drug):
        warnings.warn(f"pump: {msg}", PracticeWarning, stacklevel=3)
    return pump, regimens


def _overrides(table: dict, units: dict[str, str], key: str, skip: tuple[str, ...] = ()) -> dict:
    out: dict[str, Any] = {}
    for k, v in table.items():
        if k in skip:
            continue
        if k not in units:
            raise ScenarioError(f"{key}.{k}", v, "one of: " + ", ".join(sorted(units)),
                                detail="unknown key")
        if units[k] == "str":
            out[k] = _word(v, f"{key}.{k}", "a name such as 'L1'", lower=False)
        elif units[k] == "1":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ScenarioError(f"{key}.{k}", v, "a plain number")
            try:
                out[k] = float(v)
            except OverflowError:
                raise ScenarioError(f"{key}.{k}", v, "a number of ordinary size") from None
        else:
            out[k] = convert(v, units[k], f"{key}.{k}")
    return out


def parse_scenario(data: dict) -> Scenario:
    """Validate a scenario given as a dict (the parsed TOML) and convert units."""
    return _parse(data, None)


def parse_scenarios(sets: list[dict], first: int = 0) -> list[Scenario]:
    """:func:`parse_scenario` of each dict, parsing a table shared by several of them
    (the same object, as in a sweep's chunk: the base's untouched tables) once.

    The scenarios' ``source`` dicts share their copies of the shared tables.

    Raises
    ------
    ScenarioError
        Of the first bad dict, its key prefixed ``scenario[i].`` (numbered from
        ``first``).
    """
    memo: dict = {}
    out = []
    for k, d in enumerate(sets):
        try:
            out.append(_parse(d, memo))
        except ScenarioError as exc:
            raise ScenarioError(f"scenario[{first + k}].{exc.key}", exc.value, exc.allowed,
                                detail=exc.detail) from None
    return out


def _once(memo: dict | None, key: tuple, make: Any) -> Any:
    """``make()``, or its result for ``key`` (identities of live tables) in ``memo``."""
    if memo is None:
        return make()
    if key not in memo:
        memo[key] = make()
    return memo[key]


def _parse_simulation(sim_t: Any) -> SimulationOptions:
    if not isinstance(sim_t, dict):
        raise ScenarioError("simulation", sim_t, "a table")
    _check_keys(sim_t, ("duration", "output_interval", "resolution", "solver"), "simulation")
    # on the grid of dose times, so that a dose "at the end" is at the end exactly
    dur = _instant(_limited(sim_t, "duration", "duration", "simulation", "min", 1440.0))
    # by default an output every 5 min, or just the start and the end of a shorter run
    dt = _limited(sim_t, "output_interval", "output_interval", "simulation", "min",
                  min(5.0, dur))
    if dt > dur:
        raise ScenarioError("simulation.output_interval", sim_t["output_interval"],
                            f"at most the duration ({sim_t.get('duration', '24 h')})")
    if dur / dt > MAX_OUTPUT_TIMES:
        raise ScenarioError("simulation.output_interval", sim_t["output_interval"],
                            f"at most {MAX_OUTPUT_TIMES:,} output times over the duration "
                            f"({sim_t.get('duration', '24 h')})")
    res = _limited(sim_t, "resolution", "resolution", "simulation", "cm", 0.5)
    # the name is checked against the registry when the run starts (csfmodel.solvers sits
    # above the scenario layer; plug-in backends may be registered after parsing)
    solver = _word(sim_t.get("solver", "numba"), "simulation.solver",
                   "the name of a registered backend such as 'numba'", lower=False)
    return SimulationOptions(duration=dur, output_interval=dt, resolution=res, solver=solver)


def _parse_patient(pat: Any) -> Anatomy:
    if not isinstance(pat, dict):
        raise ScenarioError("patient", pat, "a table of anatomy overrides")
    return Anatomy().with_overrides(_overrides(pat, PATIENT_UNITS, "patient"), "patient", pat)


def _parse_drug(dr: Any) -> Drug:
    if not isinstance(dr, dict):
        raise ScenarioError("drug", dr, "a table with name = 'morphine' and overrides")
    drug = get_drug(dr.get("name", "morphine"))
    return drug.with_overrides(_overrides(dr, DRUG_UNITS, "drug", skip=("name",)), "drug", dr)


def _parse(data: dict, memo: dict | None) -> Scenario:
    """:func:`parse_scenario`; with ``memo``, tables already parsed (by identity) reused."""
    if not isinstance(data, dict):
        raise ScenarioError("scenario", data, "a table with [simulation], [patient], [drug], "
                            "[[dose]]")
    _check_keys(data, _SECTIONS, "")
    sim_t = data.get("simulation", {})
    sim = _once(memo, ("simulation", id(sim_t)), lambda: _parse_simulation(sim_t))
    pat = data.get("patient", {})
    anatomy = _once(memo, ("patient", id(pat)), lambda: _parse_patient(pat))
    dr = data.get("drug", {"name": "morphine"})
    drug = _once(memo, ("drug", id(dr)), lambda: _parse_drug(dr))
    doses = data.get("dose", [])
    if not isinstance(doses, list):
        raise ScenarioError("dose", doses, "an array of tables written [[dose]]")
    # a dose depends on the patient only through the vertebral levels (its site)
    regimens = tuple(_once(memo, ("dose", id(d), i, anatomy.level_key),
                           lambda d=d, i=i: _parse_dose(d, i, anatomy))
                     for i, d in enumerate(doses))
    pump = None
    if "pump" in data:
        pump, regimens = parse_pump(data["pump"], regimens, doses, sim, drug.name)
    return Scenario(simulation=sim, anatomy=anatomy, drug=drug, doses=regimens, pump=pump,
                    source=copy.deepcopy(data, None if memo is None else
                                         memo.setdefault("copies", {})))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file.

    Only a regular UTF-8 file (a BOM is allowed) of at most a few MB is read; a
    directory, device, binary file or bytes that are not UTF-8 raise a
    :class:`ScenarioError` naming the file (and the byte position).
    """
    from csfmodel._io import read_text

    return parse_scenario(parse_toml(read_text(path, "scenario", "a readable TOML file"), path))


def parse_toml(text: str, path: str | Path) -> dict:
    """TOML text as a dict; malformed or absurdly nested TOML is a ScenarioError."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError("scenario", str(path), "valid TOML", detail=str(exc)) from None
    except RecursionError:
        raise ScenarioError("scenario", str(path), "valid TOML",
                            detail="arrays or tables nested too deeply") from None
