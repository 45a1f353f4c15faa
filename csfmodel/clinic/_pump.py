"""The pump's reservoir over months: volume left, alarm and refill dates, days per fill.

The arithmetic is :func:`csfmodel.dosing.reservoir_course` (drug delivered divided by
the concentration in force, fill by fill); this module turns it into what a pharmacist
planning a refill reads: a table of fills, the ``reservoir_volume(time)`` variable of a
results Dataset, and a figure (:func:`csfmodel.clinic.plot_reservoir`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from csfmodel.dosing import ReservoirCourse, reservoir_course
from csfmodel.errors import ScenarioError
from csfmodel.scenario import Scenario, daily_doses, practice_findings

#: how far beyond the last fill the program is followed to find the next refill, min
PROJECTION = 2 * 366 * 1440.0

RESERVOIR_ATTRS = {"units": "mL", "long_name": "pump reservoir volume",
                   "description": "volume of drug solution left in the implanted pump's "
                   "reservoir: the fill minus the drug delivered (program and accepted "
                   "patient boluses) divided by the concentration; a refill empties the "
                   "pump and fills it again"}
CONCENTRATION_ATTRS = {"units": "mg/mL", "long_name": "reservoir concentration",
                       "description": "drug concentration of the solution in the pump"}


def _scenario(scenario: Scenario | dict | str | Path) -> Scenario:
    from csfmodel.api import _as_scenario

    sc = _as_scenario(scenario)
    if sc.pump is None:
        raise ScenarioError("pump", None, "a [pump] table (reservoir, concentration, ...) in "
                            "the scenario; see examples/clinic/", detail="missing")
    return sc


@dataclass
class FillRow:
    """One fill of the reservoir, in the units a clinic uses (mL, mg, days, dates)."""

    number: int
    start_day: float
    start_date: str
    volume_ml: float
    concentration_mg_per_ml: float
    programmed_mg_per_day: float
    programmed_ml_per_day: float
    mean_mg_per_day: float
    alarm_day: float | None
    alarm_date: str
    empty_day: float | None
    empty_date: str
    days_to_alarm: float | None
    days_to_empty: float | None
    refill_day: float | None
    residual_at_refill_ml: float | None
    drug_delivered_mg: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ReservoirReport:
    """The reservoir of a scenario's pump (:func:`reservoir`).

    ``fills`` holds one :class:`FillRow` per fill; the last one is followed
    :data:`PROJECTION` beyond the scenario to find when its alarm sounds (the next
    refill date). ``findings`` lists settings outside published practice limits.
    """

    scenario: Scenario = field(repr=False)
    course: ReservoirCourse = field(repr=False)
    fills: list[FillRow]
    findings: list[str]

    @property
    def next_refill(self) -> FillRow:
        """The last fill: its alarm day is when the next refill is due."""
        return self.fills[-1]

    def volume(self, time_h: Any) -> xr.DataArray:
        """``reservoir_volume(time)`` (mL) at the times ``time_h`` (h)."""
        t = np.asarray(time_h, float)
        return xr.DataArray(self.course.volume(t * 60.0), dims="time",
                            coords={"time": ("time", t, {"units": "h", "long_name": "time"})},
                            name="reservoir_volume", attrs=dict(RESERVOIR_ATTRS))

    def to_dataset(self, interval: str = "6 h", until: str | None = None) -> xr.Dataset:
        """Volume and concentration over time, every ``interval`` to ``until`` (default: the
        scenario, or the projected empty time of the last fill if later)."""
        from csfmodel.units import convert

        dt = convert(interval, "min", "interval")
        if not dt >= 1.0:
            raise ScenarioError("interval", interval, "1 min or more, e.g. '6 h'")
        if until is not None:
            end = convert(until, "min", "until")
        else:
            last = self.course.periods[-1]
            end = max(self.scenario.simulation.duration,
                      last.empty_time if last.empty_time is not None else last.start)
        if not 0 < end <= PROJECTION + self.course.periods[-1].start:
            raise ScenarioError("until", until, "a positive time within the projection")
        if end / dt > 1e6:
            raise ScenarioError("interval", interval, "at most 1,000,000 times; a longer "
                                "interval")
        t = np.append(np.arange(0.0, end, dt), end)
        ds = xr.Dataset({"reservoir_volume": self.volume(t / 60.0),
                         "reservoir_concentration": ("time", self.course.concentration(t)
                                                     / 1000.0, dict(CONCENTRATION_ATTRS))})
        ds.attrs = self._attrs()
        return ds

    def _attrs(self) -> dict[str, Any]:
        p = self.course.pump
        return {"title": "csfmodel pump reservoir", "pump_reservoir_ml": p.reservoir,
                "pump_alarm_ml": p.alarm,
                "pump_start": "" if p.start is None else p.start.isoformat(),
                "pump_fills": json.dumps([f.to_dict() for f in self.fills]),
                "pump_practice_findings": json.dumps(self.findings)}

    def to_dict(self) -> dict[str, Any]:
        p = self.course.pump
        return {"reservoir_ml": p.reservoir, "alarm_ml": p.alarm,
                "start": None if p.start is None else p.start.isoformat(),
                "drug": self.scenario.drug.name,
                "fills": [f.to_dict() for f in self.fills],
                "practice_findings": self.findings}

    def table(self) -> str:
        """The fills as a text table, then the next refill and the practice findings."""
        p = self.course.pump
        drug = self.scenario.drug.name
        head = (f"Pump reservoir: {p.reservoir:g} mL, low-reservoir alarm at {p.alarm:g} mL, "
                f"{drug}" + (f", started {p.start:%Y-%m-%d %H:%M}" if p.start else ""))
        lines = [head, "",
                 f"{'fill':<5}{'from':<18}{'mL':>6}{'mg/mL':>7}{'mg/day':>8}{'mL/day':>8}"
                 f"{'alarm':>18}{'empty':>18}{'days':>7}{'left at refill':>16}"]
        for f in self.fills:
            left = "" if f.residual_at_refill_ml is None else f"{f.residual_at_refill_ml:.2f} mL"
            days = "" if f.days_to_alarm is None else f"{f.days_to_alarm:.1f}"
            lines.append(f"{f.number:<5}{f.start_date:<18}{f.volume_ml:>6.3g}"
                         f"{f.concentration_mg_per_ml:>7.3g}{f.programmed_mg_per_day:>8.3g}"
                         f"{f.programmed_ml_per_day:>8.3g}{f.alarm_date:>18}{f.empty_date:>18}"
                         f"{days:>7}{left:>16}")
        nxt = self.next_refill
        lines += ["", "mg/day, mL/day: the program (patient boluses come on top; the dates "
                  "count the accepted ones); days: days of therapy from the fill to the "
                  "alarm; left at refill: the volume expected back when the pump is emptied "
                  "(compare with the volume measured)"]
        if nxt.alarm_day is not None:
            lines.append(f"next refill due: {nxt.alarm_date} (the alarm; empty "
                         f"{nxt.empty_date}), {nxt.days_to_alarm:.1f} days after the last "
                         f"fill; mean delivery {nxt.mean_mg_per_day:.4g} mg/day")
        else:
            lines.append("next refill: the last fill lasts beyond the projection "
                         f"({PROJECTION / 1440:.0f} days)")
        if self.findings:
            lines += ["", "outside published practice:"] + [f"  - {m}" for m in self.findings]
        return "\n".join(lines)

    def plot(self, path: str | Path | None = None):
        """Figure: volume left over calendar time, the alarm, fills and refill dates."""
        from ._figures import plot_reservoir

        return plot_reservoir(self, path)


def _when(sc: Scenario, t: float | None) -> str:
    if t is None:
        return "-"
    d = sc.pump.date(t)
    return f"{d:%Y-%m-%d %H:%M}" if d is not None else f"day {t / 1440:.2f}"


def reservoir(scenario: Scenario | dict | str | Path) -> ReservoirReport:
    """The reservoir of a scenario's ``[pump]``: fills, alarm and refill dates, findings.

    Parameters
    ----------
    scenario
        A scenario (object, dict or TOML path) with a ``[pump]`` table.

    Returns
    -------
    ReservoirReport
        ``table()``, ``to_dict()``, ``to_dataset()``, ``volume(time_h)``, ``plot()``.

    Examples
    --------
    >>> rep = reservoir({"simulation": {"duration": "30 day"},
    ...                  "pump": {"reservoir": "20 mL", "concentration": "10 mg/mL"},
    ...                  "dose": [{"route": "intrathecal", "type": "infusion",
    ...                            "site": "T10", "rate": "1 mg/day"}]})
    >>> rep.next_refill.days_to_alarm    # (20 - 2) mL / 0.1 mL/day
    180.0
    """
    sc = _scenario(scenario)
    pump = sc.pump
    last = pump.fills()[-1].time
    course = reservoir_course(pump, sc.doses, sc.simulation.duration,
                              horizon=max(sc.simulation.duration, last + PROJECTION))
    basal, _ = daily_doses(tuple(r for r in sc.doses if pump.delivers(r)))
    rows = []
    for k, per in enumerate(course.periods):
        stop = per.end if per.refilled else (per.empty_time or per.end)
        days = max((stop - per.start) / 1440.0, 1e-12)
        rows.append(FillRow(
            number=k, start_day=per.start / 1440.0, start_date=_when(sc, per.start),
            volume_ml=per.volume, concentration_mg_per_ml=per.concentration / 1000.0,
            programmed_mg_per_day=basal / 1000.0,
            programmed_ml_per_day=basal / per.concentration,
            mean_mg_per_day=per.drug_delivered / 1000.0 / days,
            alarm_day=None if per.alarm_time is None else per.alarm_time / 1440.0,
            alarm_date=_when(sc, per.alarm_time),
            empty_day=None if per.empty_time is None else per.empty_time / 1440.0,
            empty_date=_when(sc, per.empty_time),
            days_to_alarm=None if per.alarm_time is None
            else (per.alarm_time - per.start) / 1440.0,
            days_to_empty=None if per.empty_time is None
            else (per.empty_time - per.start) / 1440.0,
            refill_day=per.end / 1440.0 if per.refilled else None,
            residual_at_refill_ml=per.residual if per.refilled else None,
            drug_delivered_mg=per.drug_delivered / 1000.0))
    return ReservoirReport(scenario=sc, course=course, fills=rows,
                           findings=practice_findings(pump, sc.doses, sc.drug.name))


def attach_reservoir(ds: xr.Dataset, scenario: Scenario | dict | str | Path | None = None
                     ) -> xr.Dataset:
    """``ds`` with ``reservoir_volume(time)`` (mL) and ``reservoir_concentration(time)``.

    ``scenario`` defaults to the one recorded with the results (``attrs["scenario"]``).
    """
    if scenario is None:
        if "scenario" not in ds.attrs:
            raise ScenarioError("results", "a Dataset without a scenario", "results of "
                                "csfmodel.simulate, or attach_reservoir(ds, scenario)")
        src = ds.attrs["scenario"]
        scenario = json.loads(src) if isinstance(src, str) else src
    rep = reservoir(scenario)
    t = np.asarray(ds.time.values, float)
    vol = rep.volume(t)
    conc = xr.DataArray(rep.course.concentration(t * 60.0) / 1000.0, dims="time",
                        coords={"time": ds.time}, attrs=dict(CONCENTRATION_ATTRS))
    out = ds.assign(reservoir_volume=vol.assign_coords(time=ds.time),
                    reservoir_concentration=conc)
    out.attrs.update({k: v for k, v in rep._attrs().items() if k != "title"})
    return out
