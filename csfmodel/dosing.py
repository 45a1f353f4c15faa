"""Dosing regimens and their expansion into dose events.

Six regimen types, any combination in one scenario:

===========================  ==========================================================
:class:`ITInfusion`          continuous intrathecal pump infusion; a daily *program* of
                             rate steps (e.g. 0.4 mg/day at night, 0.6 mg/day by day)
:class:`ITPatientBolus`      patient-triggered pump boluses with a lockout and a
                             maximum per 24 h; refused requests are reported
:class:`ITBolus`             single-shot (or repeated) intrathecal injection with an
                             injected volume and injection rate
:class:`OralDose`            oral doses, immediate or controlled release, repeated
:class:`IVBolus`             intravenous bolus doses, repeated
:class:`IVInfusion`          constant-rate intravenous infusion
===========================  ==========================================================

Each regimen expands to :class:`Bolus` jumps and :class:`RateStep` piecewise-
constant inputs. Internal units: ug, min, cm, mL.

An implanted pump's reservoir (:class:`Pump`, its :class:`Refill` events) is followed
by :func:`reservoir_course`: the intrathecal infusions and patient boluses the pump
delivers take ``drug / concentration`` from the reservoir, fill by fill.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import ArrayLike

from csfmodel.errors import ScenarioError

__all__ = [
    "Bolus",
    "RateStep",
    "Request",
    "ITInfusion",
    "ITPatientBolus",
    "ITBolus",
    "OralDose",
    "IVBolus",
    "IVInfusion",
    "Regimen",
    "expand",
    "Pump",
    "Refill",
    "ReservoirPeriod",
    "ReservoirCourse",
    "DeliveredDrug",
    "reservoir_course",
]

#: Where a dose enters the model.
TARGETS = ("spinal", "plasma", "gut_ir", "gut_cr")


@dataclass(frozen=True)
class Bolus:
    """An instantaneous dose: a jump in the state at ``time``."""

    time: float
    target: str
    amount: float
    site_z: float = 0.0
    volume: float = 0.0
    injection_rate: float = np.inf
    source: int = 0
    #: given through a needle (a fresh dural puncture) rather than a catheter
    puncture: bool = False


@dataclass(frozen=True)
class RateStep:
    """A constant input rate (ug/min) on [start, stop)."""

    start: float
    stop: float
    target: str
    rate: float
    site_z: float = 0.0
    source: int = 0


@dataclass(frozen=True)
class Request:
    """A patient-bolus request and whether the pump accepted it."""

    time: float
    accepted: bool
    reason: str
    source: int = 0


def _repeat(time: float, interval: float | None, count: int) -> list[float]:
    if count > 1 and not interval:
        raise ScenarioError("dose.interval", interval, "a positive interval when count > 1")
    return [time + k * (interval or 0.0) for k in range(count)]


@dataclass(frozen=True)
class ITInfusion:
    """Continuous intrathecal infusion at ``site_z`` (cm).

    ``program`` is a tuple of (time of day in min, rate in ug/min) steps that
    repeat every day from ``start``; a plain constant ``rate`` is a program with
    one step at 00:00.
    """

    site_z: float
    program: tuple[tuple[float, float], ...]
    start: float = 0.0
    duration: float = np.inf

    def expand(self, t_end: float, source: int = 0) -> tuple[list[Bolus], list[RateStep],
                                                               list[Request]]:
        stop = min(self.start + self.duration, t_end)
        steps: list[RateStep] = []
        prog = sorted(self.program)
        day = 0
        while self.start + day * 1440.0 < stop:
            t0 = self.start + day * 1440.0
            # the rate in force at the start of a day is the last step of the program
            bounds = [(t0 + 0.0, prog[-1][1])] if prog[0][0] > 0 else []
            bounds += [(t0 + tod, r) for tod, r in prog]
            for k, (a, r) in enumerate(bounds):
                b = bounds[k + 1][0] if k + 1 < len(bounds) else t0 + 1440.0
                a, b = max(a, self.start), min(b, stop)
                if b > a and r > 0:
                    steps.append(RateStep(a, b, "spinal", r, self.site_z, source))
            day += 1
        return [], steps, []


@dataclass(frozen=True)
class ITPatientBolus:
    """Patient-triggered intrathecal boluses from the pump.

    A request is refused when it comes within ``lockout`` (min) of the last
    accepted bolus, or when ``max_per_day`` boluses were already given in the
    preceding 24 h.
    """

    site_z: float
    amount: float
    lockout: float
    max_per_day: int
    requests: tuple[float, ...] = ()
    daily_requests: tuple[float, ...] = ()
    volume: float = 0.02
    injection_rate: float = 0.1

    def request_times(self, t_end: float) -> list[float]:
        times = list(self.requests)
        for day in range(int(np.ceil(t_end / 1440.0)) + 1):
            times += [day * 1440.0 + tod for tod in self.daily_requests]
        return sorted(t for t in times if 0.0 <= t < t_end)

    def expand(self, t_end: float, source: int = 0) -> tuple[list[Bolus], list[RateStep],
                                                               list[Request]]:
        given: list[float] = []
        boluses, log = [], []
        first = 0       # given[first:] are the boluses of the preceding 24 h (times increase)
        for t in self.request_times(t_end):
            while first < len(given) and t - given[first] >= 1440.0:
                first += 1
            if given and t - given[-1] < self.lockout:
                log.append(Request(t, False, "lockout", source))
            elif len(given) - first >= self.max_per_day:
                log.append(Request(t, False, "max_per_day", source))
            else:
                given.append(t)
                log.append(Request(t, True, "accepted", source))
                boluses.append(Bolus(t, "spinal", self.amount, self.site_z, self.volume,
                                     self.injection_rate, source))
        return boluses, [], log


@dataclass(frozen=True)
class ITBolus:
    """Single-shot intrathecal injection (repeat with ``interval``/``count``).

    ``delivery`` is ``"needle"`` (a lumbar puncture, the default) or
    ``"catheter"`` (through an implanted catheter). Both give the same deposit:
    there is no puncture loss (see :func:`csfmodel.model.deposit`).
    """

    site_z: float
    amount: float
    time: float = 0.0
    volume: float = 1.0
    injection_rate: float = 4.0
    interval: float | None = None
    count: int = 1
    delivery: str = "needle"

    def expand(self, t_end: float, source: int = 0) -> tuple[list[Bolus], list[RateStep],
                                                               list[Request]]:
        return [Bolus(t, "spinal", self.amount, self.site_z, self.volume, self.injection_rate,
                      source, puncture=self.delivery == "needle")
                for t in _repeat(self.time, self.interval, self.count) if t < t_end], [], []


@dataclass(frozen=True)
class OralDose:
    """Oral doses; ``formulation`` is ``"immediate"`` or ``"controlled"``."""

    amount: float
    time: float = 0.0
    formulation: str = "immediate"
    interval: float | None = None
    count: int = 1

    def expand(self, t_end: float, source: int = 0) -> tuple[list[Bolus], list[RateStep],
                                                               list[Request]]:
        target = "gut_ir" if self.formulation == "immediate" else "gut_cr"
        return [Bolus(t, target, self.amount, source=source)
                for t in _repeat(self.time, self.interval, self.count) if t < t_end], [], []


@dataclass(frozen=True)
class IVBolus:
    """Intravenous bolus doses into plasma."""

    amount: float
    time: float = 0.0
    interval: float | None = None
    count: int = 1

    def expand(self, t_end: float, source: int = 0) -> tuple[list[Bolus], list[RateStep],
                                                               list[Request]]:
        return [Bolus(t, "plasma", self.amount, source=source)
                for t in _repeat(self.time, self.interval, self.count) if t < t_end], [], []


@dataclass(frozen=True)
class IVInfusion:
    """Constant-rate intravenous infusion (ug/min) from ``start`` for ``duration``."""

    rate: float
    start: float = 0.0
    duration: float = np.inf

    def expand(self, t_end: float, source: int = 0) -> tuple[list[Bolus], list[RateStep],
                                                               list[Request]]:
        stop = min(self.start + self.duration, t_end)
        steps = [RateStep(self.start, stop, "plasma", self.rate, source=source)] \
            if stop > self.start else []
        return [], steps, []


Regimen = ITInfusion | ITPatientBolus | ITBolus | OralDose | IVBolus | IVInfusion


@dataclass
class DoseEvents:
    """All doses of a scenario, expanded over [0, t_end)."""

    boluses: list[Bolus] = field(default_factory=list)
    steps: list[RateStep] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)


def expand(regimens: list[Regimen] | tuple[Regimen, ...], t_end: float) -> DoseEvents:
    """Expand every regimen into bolus jumps, rate steps and request logs."""
    ev = DoseEvents()
    for i, r in enumerate(regimens):
        try:
            b, s, q = _expand_one(r, t_end, i)
        except TypeError:           # a regimen with a field that cannot be hashed
            b, s, q = r.expand(t_end, source=i)
        ev.boluses += b
        ev.steps += s
        ev.requests += q
    ev.boluses.sort(key=_TIME)
    ev.requests.sort(key=_TIME)
    return ev


_TIME = operator.attrgetter("time")


@functools.lru_cache(maxsize=512)
def _expand_one(regimen: Regimen, t_end: float, source: int) -> tuple[tuple, tuple, tuple]:
    """One regimen expanded (immutable records; kept for the scenarios of a sweep that
    share it: a pump's patient requests over a week take ~0.4 ms to replay)."""
    b, s, q = regimen.expand(t_end, source=source)
    return tuple(b), tuple(s), tuple(q)


# ------------------------------------------------------------------ the pump's reservoir
@dataclass(frozen=True)
class Refill:
    """A refill of an implanted pump at ``time`` (min from the start).

    The pump is emptied of what is left and filled to ``volume`` (mL) with a
    solution of ``concentration`` (ug/mL), the usual refill procedure.
    """

    time: float
    volume: float
    concentration: float


@dataclass(frozen=True)
class Pump:
    """An implanted pump: its reservoir and the solution in it (internal units).

    The pump delivers every intrathecal infusion and patient bolus of the scenario
    (:meth:`delivers`); the program is written in drug per time (mg/day), so the
    volume it takes from the reservoir is the drug delivered divided by the
    concentration in force.

    Attributes
    ----------
    reservoir
        Reservoir capacity, mL.
    concentration
        Drug concentration of the first fill, ug/mL.
    fill
        Volume in the reservoir at the start, mL.
    alarm
        Low-reservoir alarm volume, mL.
    start
        Calendar date and time of the start (t = 0), or None.
    refills
        Refills, in time order.
    """

    reservoir: float
    concentration: float
    fill: float
    alarm: float = 2.0
    start: datetime | None = None
    refills: tuple[Refill, ...] = ()

    @staticmethod
    def delivers(regimen: Regimen) -> bool:
        """Whether the pump delivers this regimen (IT infusions and patient boluses)."""
        return isinstance(regimen, (ITInfusion, ITPatientBolus))

    def fills(self) -> list[Refill]:
        """The first fill (at t = 0) and every refill, as :class:`Refill`."""
        return [Refill(0.0, self.fill, self.concentration), *self.refills]

    def date(self, t: float) -> datetime | None:
        """The calendar date and time ``t`` min after the start (None without a start)."""
        return None if self.start is None else self.start + timedelta(minutes=float(t))


@dataclass(frozen=True)
class ReservoirPeriod:
    """One fill of the reservoir, from ``start`` to the next refill (``end``), min.

    ``alarm_time`` / ``empty_time`` are when the volume reaches the alarm volume and
    zero (None when not before ``end``); ``residual`` is the volume left just before
    ``end``; ``drug_delivered`` the drug delivered over the period (ug).
    """

    start: float
    end: float
    volume: float
    concentration: float
    alarm_time: float | None
    empty_time: float | None
    residual: float
    drug_delivered: float
    refilled: bool


class DeliveredDrug:
    """Cumulative drug delivered by the pump, ``D(t)`` in ug, exactly.

    The rate steps make ``D`` piecewise linear (knots where a rate changes); each
    accepted patient bolus adds a jump. ``at(t)`` includes a bolus given at ``t``,
    ``before(t)`` does not.
    """

    def __init__(self, events: DoseEvents):
        change: dict[float, float] = {}
        for st in events.steps:
            change[st.start] = change.get(st.start, 0.0) + st.rate
            change[st.stop] = change.get(st.stop, 0.0) - st.rate
        knots = np.array(sorted(change) or [0.0])
        rate = np.cumsum([change.get(k, 0.0) for k in knots])
        cum = np.concatenate([[0.0], np.cumsum(rate[:-1] * np.diff(knots))])
        self.knots = np.concatenate([[min(0.0, knots[0])], knots]) if knots[0] > 0 else knots
        self.cum = np.concatenate([[0.0], cum]) if knots[0] > 0 else cum
        self.final_rate = float(rate[-1]) if len(rate) else 0.0
        b = sorted((x.time, x.amount) for x in events.boluses)
        self.bolus_times = np.array([x for x, _ in b], float)
        self.bolus_cum = np.concatenate([[0.0], np.cumsum([a for _, a in b])])

    def _infused(self, t: np.ndarray) -> np.ndarray:
        out = np.interp(t, self.knots, self.cum)
        beyond = t > self.knots[-1]
        return np.where(beyond, self.cum[-1] + self.final_rate * (t - self.knots[-1]), out)

    def at(self, t: ArrayLike) -> np.ndarray:
        t = np.asarray(t, float)
        return self._infused(t) + self.bolus_cum[np.searchsorted(self.bolus_times, t, "right")]

    def before(self, t: ArrayLike) -> np.ndarray:
        t = np.asarray(t, float)
        return self._infused(t) + self.bolus_cum[np.searchsorted(self.bolus_times, t, "left")]

    def first_reaching(self, amount: float, a: float, b: float) -> float | None:
        """First time in ``[a, b)`` at which ``D(t) - D(a-) >= amount``; None if none."""
        base = float(self.before(a))
        inner = self.knots[(self.knots > a) & (self.knots < b)]
        jumps = self.bolus_times[(self.bolus_times >= a) & (self.bolus_times < b)]
        cand = np.unique(np.concatenate([[a], inner, jumps, [b]]))
        right = self.at(cand) - base
        left = self.before(cand) - base
        hit = np.nonzero(right >= amount)[0]
        if not len(hit):
            return None
        k = int(hit[0])
        if k == 0:
            return a
        t0, t1 = cand[k - 1], cand[k]
        if left[k] >= amount and left[k] > right[k - 1]:
            t = t0 + (amount - right[k - 1]) / (left[k] - right[k - 1]) * (t1 - t0)
            return float(min(max(t, t0), t1)) if t < b else None
        return float(t1) if t1 < b else None


@dataclass(frozen=True)
class ReservoirCourse:
    """The reservoir over time: one :class:`ReservoirPeriod` per fill (:func:`reservoir_course`)."""

    pump: Pump
    periods: tuple[ReservoirPeriod, ...]
    delivered: DeliveredDrug = field(repr=False, compare=False)
    horizon: float = 0.0

    def _period(self, t: np.ndarray) -> np.ndarray:
        starts = np.array([p.start for p in self.periods])
        return np.clip(np.searchsorted(starts, t, "right") - 1, 0, len(starts) - 1)

    def volume(self, t: ArrayLike) -> np.ndarray:
        """Volume in the reservoir (mL) at ``t`` (min); after a refill at ``t`` the new fill."""
        t = np.asarray(t, float)
        k = self._period(t)
        start = np.array([p.start for p in self.periods])[k]
        vol = np.array([p.volume for p in self.periods])[k]
        conc = np.array([p.concentration for p in self.periods])[k]
        used = (self.delivered.at(t) - self.delivered.before(start)) / conc
        return np.maximum(vol - used, 0.0)

    def concentration(self, t: ArrayLike) -> np.ndarray:
        """Concentration of the solution in the reservoir (ug/mL) at ``t`` (min)."""
        k = self._period(np.asarray(t, float))
        return np.array([p.concentration for p in self.periods])[k]


def reservoir_course(pump: Pump, regimens: list[Regimen] | tuple[Regimen, ...], t_end: float,
                     horizon: float | None = None) -> ReservoirCourse:
    """The reservoir's volume over time, its alarm and empty times for every fill.

    Parameters
    ----------
    pump
        The pump (reservoir, fills, alarm volume).
    regimens
        The scenario's regimens; those the pump delivers (:meth:`Pump.delivers`) are
        expanded over ``[0, horizon)`` and their accepted boluses and rates counted.
    t_end
        End of the scenario, min.
    horizon
        How far to follow the last fill, min (default: ``t_end``). A longer horizon
        projects the program beyond the scenario, to find the next refill date.

    Returns
    -------
    ReservoirCourse
        The volume is ``fill - (D(t) - D(t_fill)) / c`` within each fill, with ``D``
        the cumulative drug delivered (:class:`DeliveredDrug`) and ``c`` the
        concentration of that fill.
    """
    horizon = max(float(horizon if horizon is not None else t_end), t_end)
    events = expand([r for r in regimens if Pump.delivers(r)], horizon)
    drug = DeliveredDrug(events)
    fills = pump.fills()
    periods = []
    for i, f in enumerate(fills):
        end = fills[i + 1].time if i + 1 < len(fills) else horizon
        alarm = drug.first_reaching((f.volume - pump.alarm) * f.concentration, f.time, end) \
            if f.volume > pump.alarm else f.time
        empty = drug.first_reaching(f.volume * f.concentration, f.time, end)
        used = float(drug.before(end) - drug.before(f.time))
        periods.append(ReservoirPeriod(
            start=f.time, end=end, volume=f.volume, concentration=f.concentration,
            alarm_time=alarm, empty_time=empty,
            residual=max(f.volume - used / f.concentration, 0.0),
            drug_delivered=min(used, f.volume * f.concentration), refilled=i + 1 < len(fills)))
    return ReservoirCourse(pump=pump, periods=tuple(periods), delivered=drug, horizon=horizon)
