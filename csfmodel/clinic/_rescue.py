r"""Rescue doses for breakthrough pain: how soon a pump bolus, an oral and an IV dose work.

A patient on an intrathecal infusion (``basal`` at the catheter tip, at steady state)
has breakthrough pain and takes a rescue dose: a patient bolus from the pump at the
tip, an oral immediate-release dose, or an IV bolus. For each, the analgesia of the
worst-covered target segment over time is

.. math:: A(t) = A\big(C^{bg}_{e,s} + k\,c_{e,s}(t),\; C^{bg}_{e,b} + k\,c_{e,b}(t)\big)

(:func:`csfmodel.effects.analgesia`), with :math:`C^{bg}` the infusion's plateau (its
effect sites at the same steady state) and :math:`c_e(t)` the effect-site response to a
unit rescue dose from a drug-free start (linear PK: responses add). The rescue's gain is
:math:`\Delta A(t) = A(t) - A^{bg}`; its **onset** is the first time :math:`\Delta A`
reaches ``fraction`` (default 50 %) of its own peak, its **time to peak** the time of
that peak. Doses not given are found **equianalgesic** to the pump bolus: the dose whose
peak gain equals the bolus's (brentq on the log of the dose; the response is linear, so
only the response surface is evaluated again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csfmodel.effects import (
    EffectParameters,
    ResolvedEffects,
    analgesia,
    resolve,
    respiratory_depression,
    target_segments,
)
from csfmodel.errors import ScenarioError

ROUTES = ("pump bolus", "oral IR", "IV bolus")


@dataclass
class RescueResult:
    """One rescue dose: its onset, peak and respiratory depression (min, fractions, mg)."""

    route: str
    basis: str                   # "given" or "equianalgesic"
    dose_mg: float
    onset_min: float
    peak_min: float
    peak_gain: float             # peak increase of analgesia over the background
    peak_analgesia: float        # background + rescue, at the peak
    respiratory_depression_max: float
    gain: np.ndarray = field(repr=False)            # Delta A over time

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in self.__dict__.items()}


@dataclass
class RescueComparison:
    """The result of :func:`rescue_onset`; ``table()``, ``to_dict()``, ``plot()``."""

    settings: dict[str, Any]
    time_h: np.ndarray = field(repr=False)
    background_analgesia: float
    background_respiratory_depression: float
    results: list[RescueResult]

    def result(self, route: str) -> RescueResult:
        for r in self.results:
            if r.route == route:
                return r
        raise KeyError(route)

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "time_h": self.time_h.tolist(),
                "background_analgesia": self.background_analgesia,
                "background_respiratory_depression": self.background_respiratory_depression,
                "results": [r.to_dict() for r in self.results]}

    def to_dataset(self):
        """Gains over time and the summaries as an :class:`xarray.Dataset` over ``route``."""
        import xarray as xr

        rows = self.results

        def var(name: str, units: str, long_name: str):
            return ("route", np.array([getattr(r, name) for r in rows], float),
                    {"units": units, "long_name": long_name})

        return xr.Dataset(
            {"analgesia_gain": (("route", "time"), np.stack([r.gain for r in rows]),
                                {"units": "1", "long_name": "rescue analgesia gain"}),
             "dose": var("dose_mg", "mg", "rescue dose"),
             "onset": var("onset_min", "min", "time to onset"),
             "peak_time": var("peak_min", "min", "time to peak"),
             "peak_gain": var("peak_gain", "1", "peak analgesia gain"),
             "respiratory_depression_max": var("respiratory_depression_max", "1",
                                               "peak respiratory depression")},
            coords={"route": [r.route for r in rows],
                    "time": ("time", self.time_h, {"units": "h", "long_name": "time"})},
            attrs={"title": "csfmodel rescue-dose onset",
                   "onset_fraction": self.settings["fraction"]})

    def table(self) -> str:
        s = self.settings
        lines = [f"Rescue doses for breakthrough pain: {s['drug']}, target {s['target']} "
                 f"(worst-covered segment), pump {s['basal']} at {s['site']}",
                 f"background (the infusion at steady state): analgesia "
                 f"{self.background_analgesia:.3f}, respiratory depression "
                 f"{self.background_respiratory_depression:.3f}",
                 f"onset = {100 * s['fraction']:g} % of the dose's own peak gain in analgesia",
                 "",
                 f"{'rescue':<12}{'basis':<15}{'dose mg':>9}{'onset min':>11}{'peak min':>10}"
                 f"{'gain':>7}{'analg.':>8}{'resp.dep':>10}"]
        for r in self.results:
            lines.append(f"{r.route:<12}{r.basis:<15}{r.dose_mg:>9.4g}{r.onset_min:>11.0f}"
                         f"{r.peak_min:>10.0f}{r.peak_gain:>7.3f}{r.peak_analgesia:>8.3f}"
                         f"{r.respiratory_depression_max:>10.3f}")
        lines += ["", "gain: peak increase of analgesia (fraction of maximum) over the "
                  "background; analg.: background + rescue at that peak; resp.dep: largest "
                  "fractional depression of ventilation over the record"]
        return "\n".join(lines)

    def plot(self, path: str | Path | None = None):
        """Figure: the gain in analgesia over time; minutes to onset and to peak."""
        from ._figures import plot_rescue

        return plot_rescue(self, path)


def _onset(t_min: np.ndarray, gain: np.ndarray, fraction: float) -> tuple[float, float]:
    """(first time the gain reaches ``fraction`` of its peak, time of the peak), min."""
    k = int(np.argmax(gain))
    level = fraction * gain[k]
    j = int(np.argmax(gain >= level))
    if j == 0:
        return float(t_min[0]), float(t_min[k])
    g0, g1 = gain[j - 1], gain[j]
    t = t_min[j - 1] + (level - g0) / (g1 - g0) * (t_min[j] - t_min[j - 1])
    return float(t), float(t_min[k])


class _Response:
    """Analgesia of one rescue route as a function of its dose ``k`` (mg)."""

    def __init__(self, ce_s: np.ndarray, ce_b: np.ndarray, bg_s: np.ndarray, bg_b: float,
                 r: ResolvedEffects, tgt: np.ndarray):
        self.ce_s, self.ce_b, self.bg_s, self.bg_b = ce_s, ce_b, bg_s, bg_b
        self.r, self.tgt = r, tgt
        self.a_bg = float(analgesia(bg_s[tgt], bg_b, r).min())

    def analgesia(self, k: float) -> np.ndarray:
        a = analgesia(self.bg_s[self.tgt] + k * self.ce_s[:, self.tgt],
                      (self.bg_b + k * self.ce_b)[:, None], self.r)
        return a.min(axis=1)

    def gain(self, k: float) -> np.ndarray:
        return self.analgesia(k) - self.a_bg

    def peak_gain(self, k: float) -> float:
        return float(self.gain(k).max())

    def equianalgesic(self, target_gain: float, key: str) -> float:
        from scipy.optimize import brentq

        f = lambda x: self.peak_gain(float(np.exp(x))) - target_gain  # noqa: E731
        lo, hi = np.log(1e-6), np.log(1e4)
        if not f(lo) < 0 < f(hi):
            raise ScenarioError(key, None, "a dose given explicitly", detail="no dose of this "
                                "route reaches the pump bolus's peak gain in analgesia "
                                f"({target_gain:.3g}) within the record")
        return float(np.exp(brentq(f, lo, hi, xtol=1e-10, rtol=1e-10)))


def _unit_responses(drug: str, patient: dict | None, resolution: str, site: str,
                    duration_min: float, step_min: float, bolus_volume: str,
                    r: ResolvedEffects):
    """Effect-site responses (per mg) of each rescue route from a drug-free start."""
    from csfmodel.api import simulate
    from csfmodel.effects import effect_site

    base = {"simulation": {"duration": f"{duration_min} min",
                           "output_interval": f"{step_min} min", "resolution": resolution},
            "patient": dict(patient or {}), "drug": {"name": drug}}
    doses = {"pump bolus": {"route": "intrathecal", "type": "bolus", "site": site,
                            "amount": "1 mg", "volume": bolus_volume, "delivery": "catheter",
                            "injection_rate": "0.1 mL/min"},
             "oral IR": {"route": "oral", "amount": "1 mg", "formulation": "immediate"},
             "IV bolus": {"route": "iv", "amount": "1 mg"}}
    out = {}
    t = None
    for route, dose in doses.items():
        ds = simulate({**base, "dose": [dose]})
        t = np.asarray(ds.time.values, float)
        ce_s = effect_site(ds.cord_concentration, r.t_half_spinal).transpose("time", ...)
        ce_b = effect_site(ds.brain_concentration, r.t_half_brain)
        out[route] = (np.asarray(ce_s.values), np.asarray(ce_b.values))
    return t, out


def rescue_onset(*, site: str = "T10", target: str | list[str] = "L1-L5",
                 basal: str = "0 mg/day", it_bolus: str = "0.1 mg",
                 oral_dose: str | None = None, iv_dose: str | None = None,
                 fraction: float = 0.5, duration: str = "12 h", step: str = "1 min",
                 bolus_volume: str = "20 uL", drug: str = "morphine",
                 patient: dict | None = None, resolution: str = "5 mm",
                 params: EffectParameters | None = None) -> RescueComparison:
    """Time to onset and to peak of a pump bolus, an oral IR dose and an IV bolus.

    Parameters
    ----------
    site, target
        Catheter tip and pain target (cord segments, e.g. ``"L1-L5"``).
    basal
        The pump's infusion rate (at steady state beneath every rescue), e.g. "1 mg/day";
        "0 mg/day" for none.
    it_bolus
        The pump's patient bolus, e.g. "0.1 mg" (the reference).
    oral_dose, iv_dose
        Immediate-release oral and IV bolus doses; None (the default) finds the dose
        whose peak gain equals the pump bolus's.
    fraction
        Onset = the first time the gain reaches this fraction of its own peak (0-1).
    duration, step
        Record length and time step of the responses.
    bolus_volume
        Volume of the pump bolus (its deposit at the tip).
    drug, patient, resolution, params
        As for :func:`csfmodel.compare_routes`.

    Returns
    -------
    RescueComparison
    """
    from csfmodel.anatomy import CORD_SEGMENTS
    from csfmodel.compare import _setup, unit_plateaus
    from csfmodel.units import convert

    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or \
            not 0.0 < fraction < 1.0:
        raise ScenarioError("fraction", fraction, "a fraction of the peak between 0 and 1, "
                            "e.g. 0.5")
    dur = convert(duration, "min", "duration")
    dt = convert(step, "min", "step")
    if not 60.0 <= dur <= 2880.0:
        raise ScenarioError("duration", duration, "1 h to 48 h")
    if not 0.1 <= dt <= dur / 20:
        raise ScenarioError("step", step, f"6 s to {dur / 20:g} min (20 steps or more)")
    rate = convert(basal, "ug/min", "basal")
    if not 0.0 <= rate * 1.44 <= 100.0:
        raise ScenarioError("basal", basal, "0 to 100 mg/day")
    doses: dict[str, float | None] = {}
    for key, value, bound in (("it_bolus", it_bolus, 50.0), ("oral_dose", oral_dose, 5000.0),
                              ("iv_dose", iv_dose, 1000.0)):
        if value is None:
            doses[key] = None
            continue
        mg = convert(value, "mg", key)
        if not 0.0 < mg <= bound:
            raise ScenarioError(key, value, f"a dose of more than 0 and at most {bound:g} mg")
        doses[key] = mg
    if doses["it_bolus"] is None:
        raise ScenarioError("it_bolus", None, "the pump's patient bolus, e.g. '0.1 mg'")
    segs = target_segments(target)
    tgt = np.array([CORD_SEGMENTS.index(s) for s in segs])
    sc, model, site_z = _setup(drug, patient, resolution, site)
    r = resolve(params, model)
    plat = unit_plateaus(model, site_z)["intrathecal"]
    bg_s, bg_b = rate * np.asarray(plat["cord"]), float(rate * plat["brain"])
    t, units = _unit_responses(drug, patient, resolution, site, dur, dt, bolus_volume, r)
    resp = {route: _Response(ce_s, ce_b, bg_s, bg_b, r, tgt)
            for route, (ce_s, ce_b) in units.items()}
    ref_gain = resp["pump bolus"].peak_gain(doses["it_bolus"])
    t_min = t * 60.0
    results = []
    for route, key in zip(ROUTES, ("it_bolus", "oral_dose", "iv_dose")):
        k = doses[key]
        basis = "given"
        if k is None:
            k, basis = resp[route].equianalgesic(ref_gain, key), "equianalgesic"
        gain = resp[route].gain(k)
        onset, peak = _onset(t_min, gain, fraction)
        a = resp[route].analgesia(k)
        rd = respiratory_depression(bg_b + k * units[route][1], r)
        results.append(RescueResult(route=route, basis=basis, dose_mg=k, onset_min=onset,
                                    peak_min=peak, peak_gain=float(gain.max()),
                                    peak_analgesia=float(a[int(np.argmax(gain))]),
                                    respiratory_depression_max=float(rd.max()), gain=gain))
    settings = {"drug": sc.drug.name, "site": site, "site_z_cm": site_z,
                "target": target if isinstance(target, str) else ",".join(segs),
                "basal": basal, "fraction": float(fraction), "duration": duration,
                "step": step, "bolus_volume": bolus_volume, "resolution_cm": model.grid.dz,
                "patient": dict(patient or {})}
    return RescueComparison(settings=settings, time_h=t, results=results,
                            background_analgesia=resp["pump bolus"].a_bg,
                            background_respiratory_depression=float(
                                respiratory_depression(bg_b, r)))
