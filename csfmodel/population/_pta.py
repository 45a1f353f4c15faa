"""Probability of target attainment (PTA): the fraction of virtual patients in whom a
regimen relieves the target dermatomes, and the fraction it puts at risk.

A patient *attains* the target when the analgesia of the worst-covered target cord
segment (:mod:`csfmodel.effects`: spinal + supraspinal response surface, every
segment's own effect site) stays at or above ``analgesia`` (default 0.5, the response
at the EC50) throughout the evaluation window (default the last 24 h: a pump at
steady state). The criterion uses the published potencies, each patient's drawn
from the population's spread (``pd.*``), rather than one target concentration: a
fixed concentration cannot express that patients differ in sensitivity, nor the
supraspinal contribution of the drug that reaches the brain. A patient is *at risk*
when the fractional depression of ventilation at fixed PCO2 (Dahan 2004) exceeds
``respiratory`` at any time of the run. By default (``"oral"``) that threshold is the
peak depression of the reference oral regimen, controlled-release morphine 30 mg every
12 h at steady state (the usual opioid-naive starting dose), for the typical patient
(:func:`reference_respiratory`, by :func:`csfmodel.compare_routes`): *at risk* means
"more depressed than on the standard oral starting regimen". An absolute level (a
fraction of the maximal depression) can be given instead. No published cut-off of
clinically significant depression exists on this scale: the model's potency is that of
opioid-naive volunteers (Dahan 2004, C50 32 nM), in whom every analgesic regimen
depresses ventilation at fixed PCO2 (the oral reference by 0.58, an analgesic intrathecal
infusion by more), so a fixed level such as 0.25 counts every patient at risk.

:func:`pta_map` does this over catheter tips x infusion rates. The same patients
(same seed) are used in every cell, so differences between cells are those of the
regimen; the rates are exact rescalings of one simulation per tip (the model is
linear and starts drug-free).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from csfmodel.errors import ScenarioError
from csfmodel.scenario import Scenario

from ._simulate import population, scenario_parts

__all__ = ["attainment", "target_attainment", "pta_map", "reference_respiratory",
           "DEFAULT_ANALGESIA", "DEFAULT_RESPIRATORY", "REFERENCE_ORAL"]

#: analgesia (fraction of maximum) a target segment must keep: the response at the EC50
DEFAULT_ANALGESIA = 0.5
#: respiratory depression counted as at risk: more than on the reference oral regimen
DEFAULT_RESPIRATORY = "oral"
#: the reference oral regimen of ``respiratory="oral"``: (dose, interval, formulation)
REFERENCE_ORAL = ("30 mg", "12 h", "controlled")
_REFERENCE: dict[tuple, float] = {}


def reference_respiratory(oral_dose: str = REFERENCE_ORAL[0],
                          interval: str = REFERENCE_ORAL[1],
                          formulation: str = REFERENCE_ORAL[2]) -> float:
    """Peak respiratory depression (fraction of maximal depression of ventilation at
    fixed PCO2) of an oral morphine regimen at steady state, typical adult
    (:func:`csfmodel.compare_routes`; default controlled-release 30 mg every 12 h)."""
    key = (str(oral_dose), str(interval), str(formulation))
    if key not in _REFERENCE:
        from csfmodel.compare import compare_routes

        res = compare_routes(reference="oral", oral_dose=key[0], interval=key[1],
                             formulation=key[2], sensitivity=False, sites=())
        _REFERENCE[key] = float(res.route("oral", "reference").respiratory_depression_max)
    return _REFERENCE[key]


def _fraction(x: Any, key: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.0 < x < 1.0:
        raise ScenarioError(key, x, "a fraction between 0 and 1 (exclusive)")
    return float(x)


def _respiratory(x: Any) -> tuple[float, str]:
    """The threshold of respiratory risk and its description."""
    if isinstance(x, str) and x.strip().lower() == "oral":
        v = reference_respiratory()
        return v, (f"{v:.2f} (the peak on oral CR morphine {REFERENCE_ORAL[0]} every "
                   f"{REFERENCE_ORAL[1]})")
    if isinstance(x, str):
        try:
            x = float(x)
        except ValueError:
            raise ScenarioError("respiratory", x, "'oral' (the reference oral regimen) or a "
                                "fraction between 0 and 1") from None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.0 < x < 1.0:
        raise ScenarioError("respiratory", x, "'oral' (the reference oral regimen) or a "
                            "fraction between 0 and 1 (exclusive)")
    return float(x), f"{float(x):g}"


def _wilson(k: np.ndarray, n: int, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (95 %) of a binomial fraction k/n."""
    p = k / n
    d = 1.0 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return np.clip(c - h, 0.0, 1.0), np.clip(c + h, 0.0, 1.0)


def attainment(pop: xr.Dataset, analgesia: float = DEFAULT_ANALGESIA,
               respiratory: float | str = DEFAULT_RESPIRATORY) -> xr.Dataset:
    """Fractions attaining the target and at risk, from a population's results.

    Parameters
    ----------
    pop
        Results of :func:`csfmodel.population.population` run with a ``target``.
    analgesia
        The analgesia (fraction of maximum) every target segment must keep.
    respiratory
        Peak respiratory depression (fraction of the maximal depression of ventilation
        at fixed PCO2) above which a patient is at risk: ``"oral"`` (default) for that of
        oral controlled-release morphine 30 mg every 12 h at steady state in the typical
        patient (:func:`reference_respiratory`), or a fraction.

    Returns
    -------
    xarray.Dataset
        ``pta``, ``p_respiratory`` and ``p_attained_safely`` (attained and not at risk),
        each with ``_low``/``_high`` (Wilson 95 % interval of the fraction over the
        patients simulated; not the uncertainty of the population description), over
        any ``dose_scale`` (and, from :func:`pta_map`, ``tip``/``rate``) dimensions.
    """
    a = _fraction(analgesia, "analgesia")
    r, r_text = _respiratory(respiratory)
    if "analgesia_trough" not in pop:
        raise ScenarioError("target", None, "a population simulated with a target such as "
                            "'T8-L1'", detail="no analgesia in these results")
    n = pop.sizes["patient"]
    ok = pop.analgesia_trough >= a
    risk = pop.respiratory_depression_max > r
    out = {}
    for name, mask, text in (("pta", ok, "fraction of patients attaining the target"),
                             ("p_respiratory", risk, "fraction of patients at risk of "
                              "respiratory depression"),
                             ("p_attained_safely", ok & ~risk, "fraction attaining the "
                              "target without respiratory risk")):
        k = mask.sum("patient")
        lo, hi = _wilson(k.values.astype(float), n)
        out[name] = k / n
        out[name].attrs = {"units": "1", "long_name": name, "description": text}
        out[f"{name}_low"] = k.copy(data=lo)
        out[f"{name}_high"] = k.copy(data=hi)
        for s in ("_low", "_high"):
            out[f"{name}{s}"].attrs = {"units": "1", "long_name": f"{name}{s}",
                                       "description": "Wilson 95 % interval over the "
                                                      "patients simulated"}
    ds = xr.Dataset(out)
    ds.attrs.update({"analgesia_level": a, "respiratory_threshold": r,
                     "respiratory_threshold_basis": r_text, "patients": n,
                     "target_segments": pop.attrs.get("target_segments", ""),
                     "analgesia_window_h": pop.attrs.get("analgesia_window_h", [])})
    return ds


def target_attainment(scenario: Scenario | dict | str | Path, target: str, n: int = 200,
                      seed: Any = 0, *, analgesia: float = DEFAULT_ANALGESIA,
                      respiratory: float | str = DEFAULT_RESPIRATORY, **kw: Any
                      ) -> tuple[xr.Dataset, xr.Dataset]:
    """Simulate a population with a target and return ``(attainment, population)``.

    ``kw`` go to :func:`csfmodel.population.population` (``window``, ``spec``,
    ``dose_scale``, ...).
    """
    pop = population(scenario, n, seed, target=target, **kw)
    return attainment(pop, analgesia, respiratory), pop


def _infusion(data: dict) -> dict:
    doses = data.get("dose", [])
    if not (isinstance(doses, list) and len(doses) == 1 and isinstance(doses[0], dict)
            and doses[0].get("route") == "intrathecal" and doses[0].get("type") == "infusion"
            and "rate" in doses[0]):
        raise ScenarioError("dose", doses, "one [[dose]]: an intrathecal infusion with a "
                            "rate (the map varies its site and rate)")
    return doses[0]


def pta_map(scenario: Scenario | dict | str | Path, target: str, tips: Sequence[str],
            rates: Sequence[str], n: int = 200, seed: Any = 0, *,
            analgesia: float = DEFAULT_ANALGESIA,
            respiratory: float | str = DEFAULT_RESPIRATORY,
            progress: Any = None, **kw: Any) -> xr.Dataset:
    """PTA and respiratory risk over catheter tips x infusion rates.

    Parameters
    ----------
    scenario
        A scenario whose only dose is an intrathecal infusion with a rate.
    target
        Cord segments to relieve (``"T8-L1"``).
    tips
        Catheter tip sites (``"T10"``, ``"L1-L2"``, placed in each patient's anatomy).
    rates
        Infusion rates (``"0.5 mg/day"``).
    n, seed
        Patients per cell (the same patients in every cell).
    kw
        Further arguments of :func:`csfmodel.population.population`.

    Returns
    -------
    xarray.Dataset
        The fractions of :func:`attainment` over ``tip`` and ``rate`` (mg/day).
    """
    from csfmodel.units import convert

    data, table = scenario_parts(scenario)
    dose = _infusion(data)
    ref = convert(dose["rate"], "mg/day", "dose[0].rate")
    if not tips or not rates:
        raise ScenarioError("tips", list(tips), "at least one tip and one rate")
    mg = np.array([convert(r, "mg/day", f"rates[{i}]") for i, r in enumerate(rates)])
    if ref <= 0 or np.any(mg < 0) or not np.all(np.isfinite(mg)):
        raise ScenarioError("rates", list(rates), "rates >= 0 and a base rate > 0")
    parts = []
    for j, tip in enumerate(tips):
        d = copy.deepcopy(data)
        d["dose"][0]["site"] = tip
        if table is not None:
            d["population"] = table
        pop = population(d, n, seed, target=target, dose_scale=list(mg / ref), levels=(),
                         progress=None, **kw)
        parts.append(attainment(pop, analgesia, respiratory)
                     .rename(dose_scale="rate").assign_coords(rate=mg))
        if progress is not None:
            progress(j + 1, len(tips))
    out = xr.concat(parts, dim="tip", combine_attrs="override")
    out = out.assign_coords(tip=("tip", [str(t) for t in tips], {"long_name": "catheter tip"}),
                            rate=("rate", mg, {"units": "mg/day", "long_name": "infusion rate"}))
    out.attrs["patients"] = int(n)
    out.attrs["seed"] = str(seed)
    if not math.isfinite(float(out.pta.mean())):
        raise ScenarioError("target", target, "a target the simulation covers")
    return out
