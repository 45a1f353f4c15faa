"""Rows of a user's calibration CSV that no built-in study design measures: the design
is read from the row's own columns (route, dose_mg, dose_site, injected_volume_ml,
sample_site, measure, time_h, unit), run with :func:`csfmodel.simulate` (or solved at
its plateau) and measured with :mod:`._measures`.

The columns are those of the packaged table (``csfmodel/data/calibration.csv``):

``route``
    ``intrathecal_bolus``, ``intrathecal_infusion``, ``iv_bolus``, ``iv_infusion``,
    ``oral_solution`` (also ``oral``, ``oral_immediate``) or
    ``oral_controlled_release`` (also ``oral_controlled``). An infusion may end in the
    hours it ran (``intrathecal_infusion_72h``). Morphine with the default parameters.
``dose_mg``
    mg for a bolus; mg/day for an infusion (may be empty for a ``ratio``: the model
    is linear).
``dose_site``
    Intrathecal only: a level (``T10``), an interspace (``L3-L4``), ``45 cm`` or
    ``lumbar`` (taken as L3-L4, as in the built-in designs).
``injected_volume_ml``
    Intrathecal bolus; 1 mL (at 4 mL/min) when empty, as in the built-in designs.
``sample_site``
    ``plasma``, ``cisternal CSF`` (``cisterna``), ``cortical CSF``, ``ventricular CSF``,
    ``brain``, ``cord:T10``, spinal CSF at a level or interspace (``T10 CSF``,
    ``L3-L4``), ``lumbar CSF`` (a lumbar puncture: L3-L4, as in the built-in designs),
    or ``A / B`` for a ``ratio``.
``measure``
    ``concentration`` at ``time_h``; ``cmax`` and ``tmax_h`` (the refined maximum of
    the model curve, up to ``time_h`` when given); ``terminal_half_life_min``
    (log-linear fit of the curve from ``time_h``, default 2 h, to 24 h after the dose);
    ``clearance`` (dose / AUC(0-inf), terminal slope from ``time_h``, default 2 h;
    per kg of the 70 kg default body weight when the unit is per kg);
    ``ratio`` (at ``time_h``; at the plateau for an infusion without ``time_h``);
    ``upper_bound`` (the maximum over the run, up to ``time_h`` when given).
``unit``
    The value's unit; the model value is converted to it (``ng/mL``, ``ug/mL``, ``h``,
    ``min``, ``mL/min``, ``uL/kg/min``, ``1``).

A row that cannot be run this way gets a :class:`~csfmodel.errors.ScenarioError`
naming the row and column, with the reason (:func:`user_design`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from csfmodel.errors import ScenarioError

from ._measures import _at, _plateau_run, _Run, auc_inf, peak, terminal_half_life
from ._rows import KNOWN_DISAGREEMENTS, Row, RowResult, load_rows, score

__all__ = ["UserDesign", "user_design", "read_rows", "run_rows", "ROUTES", "MEASURES"]

#: route column -> (route, type, formulation) of the scenario's dose
ROUTES: dict[str, tuple[str, str, str | None]] = {
    "intrathecal_bolus": ("intrathecal", "bolus", None),
    "intrathecal_infusion": ("intrathecal", "infusion", None),
    "iv_bolus": ("iv", "bolus", None),
    "iv_infusion": ("iv", "infusion", None),
    "oral": ("oral", "bolus", "immediate"),
    "oral_solution": ("oral", "bolus", "immediate"),
    "oral_immediate": ("oral", "bolus", "immediate"),
    "oral_controlled_release": ("oral", "bolus", "controlled"),
    "oral_controlled": ("oral", "bolus", "controlled"),
}
#: measure column -> the dimension its unit must have
MEASURES: dict[str, str] = {
    "concentration": "ng/mL", "cmax": "ng/mL", "upper_bound": "ng/mL", "tmax_h": "h",
    "terminal_half_life_min": "min", "clearance": "mL/min", "ratio": "1",
}
#: default injected volume (mL) and rate of an intrathecal bolus, as the built-in designs
DEFAULT_VOLUME_ML = 1.0
DEFAULT_RATE = "4 mL/min"
#: where "lumbar" puts a dose or a sample (the built-in designs' L3-L4 puncture)
LUMBAR = "L3-L4"
#: duration of a bolus run (h) unless the row's time is later; systemic routes run longer
#: for their AUC(0-inf) and slower absorption
BOLUS_HOURS = {"intrathecal": 24.0, "iv": 72.0, "oral": 72.0}
#: start of the terminal phase when ``time_h`` is empty (h), and its end (h)
TERMINAL_FROM_H = 2.0
TERMINAL_TO_H = 24.0

_COMPARTMENTS = {
    "plasma": "plasma_concentration",
    "cisterna": "cisternal_csf_concentration", "cisternal csf": "cisternal_csf_concentration",
    "cortical": "cortical_csf_concentration", "cortical csf": "cortical_csf_concentration",
    "ventricles": "ventricular_csf_concentration",
    "ventricular csf": "ventricular_csf_concentration",
    "brain": "brain_concentration",
}
_SAMPLE_SITES = ("plasma, cisternal CSF, cortical CSF, ventricular CSF, brain, cord:<segment> "
                 "(cord:T10), lumbar CSF, or spinal CSF at a level or interspace (T10 CSF, "
                 "L3-L4 CSF); 'A / B' for a ratio")
_NUMERIC = ("dose_mg", "injected_volume_ml", "time_h")


@dataclass(frozen=True)
class _Site:
    """Where a concentration is read: an output variable and, for spinal CSF, z (cm);
    for the cord, the segment label."""

    variable: str
    z: float | None = None
    segment: str | None = None

    def curve(self, ds) -> tuple[np.ndarray, np.ndarray]:
        """(time h, ng/mL) of this site in a simulated Dataset."""
        da = ds[self.variable]
        if self.z is not None:
            da = da.interp(z=self.z)
        elif self.segment is not None:
            da = da.sel(segment=self.segment)
        return ds.time.values, np.asarray(da.values, float)

    def plateau(self, run) -> float:
        """ng/mL per (ug/min) infused at the plateau (:func:`._measures._plateau_run`)."""
        if self.z is not None:
            return run.csf_at(self.z)
        if self.variable == "cisternal_csf_concentration":
            return run.cisterna
        if self.variable == "plasma_concentration":
            return run.plasma
        raise ValueError(self.variable)


@dataclass(frozen=True)
class UserDesign:
    """What a user row runs and how it is measured.

    Attributes
    ----------
    scenario
        The scenario (dict form) it simulates.
    plateau
        Whether the measure is taken at the plateau of the infusion (solved directly)
        instead of on the simulated curve.
    sites
        One site, or two for a ratio (numerator, denominator).
    describe
        The design in words (printed by ``csfmodel validate --designs``).
    """

    row: Row
    scenario: dict
    plateau: bool
    sites: tuple[_Site, ...]
    unit_factor: float
    per_kg: bool
    dose_ug: float | None
    describe: str

    def key(self) -> str:
        """The run it needs (rows that share a design share a run)."""
        return json.dumps([self.scenario, self.plateau], sort_keys=True)


# ------------------------------------------------------------------- reading
def read_rows(path: str | Path) -> list[Row]:
    """Read a calibration CSV in the packaged table's format, checking every cell a run
    needs: numbers in ``dose_mg``, ``injected_volume_ml``, ``time_h`` (empty or >= 0) and
    ``value`` (> 0).

    Raises
    ------
    ScenarioError
        Naming the file, the row (header = row 1) and the column.
    """
    from csfmodel._io import read_text

    name = str(path)
    text = read_text(path, "--data", "a readable calibration CSV")
    reader = csv.DictReader(io.StringIO(text))
    for i, rec in enumerate(reader, start=2):
        rid = (rec.get("id") or "").strip()
        where = f"{name}, row {i}" + (f" ({rid})" if rid else "")
        for col in _NUMERIC + ("value",):
            cell = (rec.get(col) or "").strip()
            if not cell and col != "value":
                continue
            try:
                v = float(cell)
            except ValueError:
                v = math.nan
            if not math.isfinite(v) or v < 0 or (col == "value" and v == 0):
                raise ScenarioError(f"{where}, column {col}", cell,
                                    "a number > 0" if col == "value" else
                                    "empty or a number >= 0")
        spread = (rec.get("spread") or "").strip()
        if spread and not re.fullmatch(r"[0-9.eE+]+(\s*-\s*[0-9.eE+]+)?", spread):
            raise ScenarioError(f"{where}, column spread", spread,
                                "empty, an SD (361) or a range (30000-60000)")
    return load_rows(path)


# ------------------------------------------------------------------- designs
def _site(text: str, where: str, anatomy) -> _Site:
    from csfmodel.anatomy import CORD_SEGMENTS
    from csfmodel.scenario import parse_site

    low = " ".join(text.lower().split())
    if low in _COMPARTMENTS:
        return _Site(_COMPARTMENTS[low])
    if low.startswith("cord:") or low.endswith(" cord"):
        seg = (text.strip()[5:] if low.startswith("cord:") else text.strip()[:-5]).strip()
        if seg.upper() not in CORD_SEGMENTS:
            raise ScenarioError(f"{where}, column sample_site", text,
                                "cord:<segment> with a segment C1…C8, T1…T12, L1…L5, S1…S5")
        return _Site("cord_concentration", segment=seg.upper())
    spot = text.strip()
    if low.endswith(" csf"):
        spot = spot[:-4].strip()
    if spot.lower() == "lumbar":
        spot = LUMBAR
    try:
        return _Site("csf_concentration", z=parse_site(spot, anatomy, "sample_site"))
    except ScenarioError:
        raise ScenarioError(f"{where}, column sample_site", text, _SAMPLE_SITES) from None


def _unit_factor(row: Row, measure: str, where: str) -> tuple[float, bool]:
    """(factor from the model's unit to the row's, whether the unit is per kg)."""
    from csfmodel.units import convert

    base = MEASURES[measure]
    unit = row.unit or "1"
    try:
        return 1.0 / convert(f"1 {unit}", base, f"{where}, column unit"), False
    except ScenarioError:
        if measure == "clearance":
            try:
                return 1.0 / convert(f"1 {unit}", "mL/min/kg", f"{where}, column unit"), True
            except ScenarioError:
                pass
    allowed = {"ng/mL": "a concentration unit (ng/mL, ug/mL, mg/L)",
               "h": "a time unit (h, min)", "min": "a time unit (min, h)",
               "mL/min": "a clearance unit (mL/min, L/h, uL/kg/min)",
               "1": "1 (a dimensionless ratio)"}[base]
    raise ScenarioError(f"{where}, column unit", row.unit, f"for measure {measure!r} " + allowed)


def user_design(row: Row, *, where: str | None = None, resolution: str = "5 mm") -> UserDesign:
    """The design of a row from its columns.

    Raises
    ------
    ScenarioError
        The reason the row cannot be run, naming the row and the column.
    """
    from csfmodel.anatomy import Anatomy
    from csfmodel.scenario import parse_site

    where = where or f"row {row.id}"
    measure = row.measure.strip().lower()
    if measure not in MEASURES:
        raise ScenarioError(f"{where}, column measure", row.measure,
                            "one of " + ", ".join(MEASURES))
    route_text = row.route.strip().lower()
    hours = None
    m = re.fullmatch(r"(.*infusion)_([0-9.]+)h", route_text)
    if m:
        route_text, hours = m.group(1), float(m.group(2))
    if route_text not in ROUTES:
        reason = ("a hyperbaric injection needs a baricity/posture description the columns "
                  "do not give" if "hyperbaric" in route_text else None)
        raise ScenarioError(f"{where}, column route", row.route,
                            "one of " + ", ".join(ROUTES) + " (an infusion may end in _<N>h)",
                            detail=reason)
    route, typ, formulation = ROUTES[route_text]
    infusion = typ == "infusion"
    t_h = row.time_h
    if measure in ("concentration",) and t_h is None:
        raise ScenarioError(f"{where}, column time_h", "", "a time in h for a concentration")
    dose_mg = row.dose_mg
    if dose_mg is None or dose_mg == 0:
        if measure != "ratio":
            raise ScenarioError(f"{where}, column dose_mg", "" if dose_mg is None else "0",
                                "a dose > 0 (mg; mg/day for an infusion); it may be empty "
                                "only for a ratio")
        dose_mg = 1.0
    if measure == "clearance" and infusion:
        raise ScenarioError(f"{where}, column measure", row.measure,
                            "for an infusion: concentration, ratio, cmax, upper_bound",
                            detail="a clearance needs a bolus (dose / AUC)")
    anatomy = Anatomy()
    dose: dict[str, Any] = {"route": route, "type": typ}
    if route == "intrathecal":
        site = row.dose_site.strip()
        if not site:
            raise ScenarioError(f"{where}, column dose_site", "", "an intrathecal dose site "
                                "(T10, L3-L4, 45 cm or lumbar)")
        site = LUMBAR if site.lower() == "lumbar" else site
        try:
            parse_site(site, anatomy, f"{where}, column dose_site")
        except ScenarioError as exc:
            raise ScenarioError(f"{where}, column dose_site", row.dose_site,
                                "a level (T10), an interspace (L3-L4), '45 cm' or lumbar",
                                detail=str(exc).split("; expected")[0]) from None
        dose["site"] = site
    if infusion:
        dose["rate"] = f"{dose_mg} mg/day"
    else:
        dose["amount"] = f"{dose_mg} mg"
        if route == "intrathecal":
            vol = row.injected_volume_ml or DEFAULT_VOLUME_ML
            dose.update(volume=f"{vol} mL", injection_rate=DEFAULT_RATE)
        if formulation:
            dose["formulation"] = formulation
    parts = [s.strip() for s in row.sample_site.split("/")]
    if measure == "ratio" and len(parts) != 2:
        raise ScenarioError(f"{where}, column sample_site", row.sample_site,
                            "two sites 'A / B' for a ratio")
    if measure != "ratio" and len(parts) != 1:
        raise ScenarioError(f"{where}, column sample_site", row.sample_site,
                            "one site (a ratio of two sites needs measure = ratio)")
    sites = tuple(_site(p, where, anatomy) for p in parts)
    if measure in ("terminal_half_life_min", "clearance") and sites[0].z is None \
            and sites[0].variable == "csf_concentration":
        raise ScenarioError(f"{where}, column sample_site", row.sample_site, _SAMPLE_SITES)
    factor, per_kg = _unit_factor(row, measure, where)
    plateau = infusion and t_h is None and hours is None
    if plateau:
        if measure not in ("ratio",):
            raise ScenarioError(f"{where}, column time_h", "",
                                "a time in h (an infusion without a time is measured at its "
                                "plateau, which only a ratio can use)")
        if route != "intrathecal":
            raise ScenarioError(f"{where}, column time_h", "", "a time in h for an IV infusion")
        for s, text in zip(sites, parts):
            if s.z is None and s.variable not in ("cisternal_csf_concentration",
                                                  "plasma_concentration"):
                raise ScenarioError(f"{where}, column sample_site", text,
                                    "at the plateau: spinal CSF, cisternal CSF or plasma")
        duration = 1.0
    elif infusion:
        duration = max(hours or 0.0, t_h or 0.0)
        if hours is not None:
            dose["duration"] = f"{hours} h"
    else:
        duration = max(BOLUS_HOURS[route], t_h or 0.0)
    interval = max(1.0, math.ceil(duration * 60.0 / 5000.0))
    scenario = {
        "simulation": {"duration": f"{duration} h", "output_interval": f"{interval:g} min",
                       "resolution": resolution},
        "patient": {}, "drug": {"name": "morphine"}, "dose": [dose]}
    what = (f"{dose_mg:g} mg/day" if infusion else f"{dose_mg:g} mg") + f" {route} {typ}"
    if route == "intrathecal":
        what += f" at {dose['site']}" + (f" in {dose['volume']}" if "volume" in dose else "")
    if hours:
        what += f" for {hours:g} h"
    when = ("at the plateau" if plateau else f"at {t_h:g} h" if t_h is not None and
            measure in ("concentration", "ratio") else f"over {duration:g} h")
    describe = f"{what}; {measure} of {row.sample_site.strip()} {when}"
    return UserDesign(row, scenario, plateau, sites, factor, per_kg,
                      None if infusion else dose_mg * 1000.0, describe)


# ----------------------------------------------------------------- measuring
def _measure(d: UserDesign, run) -> tuple[float, str]:
    """The model value of a row (in the row's unit) and how it was computed."""
    row, m = d.row, d.row.measure.strip().lower()
    if d.plateau:
        a, b = (s.plateau(run) for s in d.sites)
        return a / b * d.unit_factor, "plateau ratio"
    ds = run.ds
    t, c = d.sites[0].curve(ds)
    upto = t <= (row.time_h if row.time_h is not None else t[-1]) + 1e-9
    if m == "concentration":
        return float(_at(t, c, [row.time_h])[0]) * d.unit_factor, f"model at {row.time_h:g} h"
    if m == "ratio":
        tb, cb = d.sites[1].curve(ds)
        th = row.time_h if row.time_h is not None else t[-1]
        return float(_at(t, c, [th])[0] / _at(tb, cb, [th])[0]) * d.unit_factor, \
            f"ratio at {th:g} h"
    if m in ("cmax", "tmax_h"):
        tp, cp = peak(t[upto], c[upto])
        if m == "cmax":
            return cp * d.unit_factor, "maximum of the model curve"
        return tp * d.unit_factor, "time of the model maximum"
    if m == "upper_bound":
        return float(c[upto].max()) * d.unit_factor, "maximum of the model curve"
    start = row.time_h if row.time_h is not None else TERMINAL_FROM_H
    if m == "terminal_half_life_min":
        sel = (t >= start) & (t <= TERMINAL_TO_H)
        return terminal_half_life(t[sel], c[sel]) * d.unit_factor, \
            f"log-linear fit {start:g}-{TERMINAL_TO_H:g} h"
    # clearance: dose / AUC(0-inf) in mL/min (per kg of body weight if the unit is)
    cl = d.dose_ug / (auc_inf(t, c, start) / 1000.0)
    how = f"dose/AUC(0-inf), terminal slope from {start:g} h"
    if d.per_kg:
        from csfmodel.anatomy import Anatomy

        cl /= Anatomy().body_weight
        how += f" per kg ({Anatomy().body_weight:g} kg)"
    return cl * d.unit_factor, how


def run_rows(rows: list[Row] | None = None, *, solver: str | None = None,
             source: str | None = None, return_runs: bool = False):
    """Score every row: rows with a built-in study design (by id) through
    :func:`run_validation`, every other row through the design its columns give
    (:func:`user_design`).

    Parameters
    ----------
    rows
        The rows (default: the packaged table).
    solver
        Backend name (default: the scenario default).
    source
        The file the rows came from, in its order (the reasons name its rows).

    Returns
    -------
    results, reasons
        One :class:`RowResult` per row in order (a row that cannot be run has a NaN
        model value, fails, and its ``how`` starts with ``"cannot run"``), and
        ``{row id: reason}`` for those rows; with ``return_runs`` also the simulated
        runs by arm name (built-in arms, and ``"user:<row id>"``).
    """
    from csfmodel.api import simulate

    from ._designs import _measure_of
    from ._runner import run_validation

    rows = load_rows() if rows is None else rows
    builtin, user = [], []
    for r in rows:
        try:
            _measure_of(r.id)
            builtin.append(r)
        except KeyError:
            user.append(r)
    by_id: dict[int, RowResult] = {}
    runs: dict[str, Any] = {}
    if builtin:
        res, runs = run_validation(builtin, solver=solver, return_runs=True)
        by_id.update({id(r.row): r for r in res})
    reasons: dict[str, str] = {}
    cache: dict[str, Any] = {}
    line = {id(r): i for i, r in enumerate(rows, start=2)}
    for r in user:
        where = f"{source}, row {line[id(r)]} ({r.id})" if source else f"row {r.id}"
        try:
            d = user_design(r, where=where)
        except ScenarioError as exc:
            reasons[r.id] = str(exc)
            by_id[id(r)] = RowResult(r, math.nan, math.nan, False, "cannot run: " + str(exc))
            continue
        key = d.key()
        if key not in cache:
            sc = json.loads(json.dumps(d.scenario))
            cache[key] = _plateau_run(sc) if d.plateau else _Run(simulate(sc, solver=solver))
        runs[f"user:{r.id}"] = cache[key]
        value, how = _measure(d, cache[key])
        ratio, ok = score(r, value)
        by_id[id(r)] = RowResult(r, float(value), ratio, ok, f"{d.describe}: {how}",
                                 expected=KNOWN_DISAGREEMENTS.get(r.id, ""))
    results = [by_id[id(r)] for r in rows]
    return (results, reasons, runs) if return_runs else (results, reasons)
