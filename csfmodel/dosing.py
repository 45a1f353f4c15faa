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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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
        for t in self.request_times(t_end):
            if given and t - given[-1] < self.lockout:
                log.append(Request(t, False, "lockout", source))
            elif sum(1 for g in given if t - g < 1440.0) >= self.max_per_day:
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
        b, s, q = r.expand(t_end, source=i)
        ev.boluses += b
        ev.steps += s
        ev.requests += q
    ev.boluses.sort(key=lambda x: x.time)
    ev.requests.sort(key=lambda x: x.time)
    return ev
