"""A user's observations: the CSV file ``time_h, site, value, unit[, sd]``, checked row by row.

``site`` is where the sample was taken:

* a vertebral level (``L3``) or interspace (``L3-L4``), or a distance (``45 cm``):
  the spinal CSF there (interpolated between grid cells);
* ``cord:<segment>`` (``cord:T10``): unbound cord tissue concentration of that segment;
* ``cisterna``, ``cortical``, ``ventricles``: cranial CSF; ``brain`` (unbound ECF);
  ``plasma`` (total).

``value`` and ``sd`` are concentrations in ``unit`` (a mass per volume: ``ng/mL``,
``ug/L``, ``mg/L``, ...); ``sd`` is optional (all rows or none). Every problem is a
:class:`~csfmodel.errors.ScenarioError` naming the file, the row (as numbered in
the file, the header being row 1) and the column.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from csfmodel.anatomy import CORD_SEGMENTS
from csfmodel.errors import ScenarioError
from csfmodel.scenario import Scenario, parse_site
from csfmodel.units import convert

__all__ = ["Observations", "read_observations", "COMPARTMENT_SITES", "COLUMNS"]

#: required columns, then the optional one
COLUMNS = ("time_h", "site", "value", "unit")
OPTIONAL = ("sd",)
#: site name -> (output variable, what it is)
COMPARTMENT_SITES: dict[str, str] = {
    "cisterna": "cisternal_csf_concentration",
    "cortical": "cortical_csf_concentration",
    "ventricles": "ventricular_csf_concentration",
    "brain": "brain_concentration",
    "plasma": "plasma_concentration",
}
_SITES = ("a vertebral level (L3) or interspace (L3-L4) for spinal CSF, cord:<segment> "
          "(cord:T10), " + ", ".join(COMPARTMENT_SITES))


@dataclass(frozen=True)
class Observations:
    """Observations in internal form.

    Attributes
    ----------
    time
        Sample times, min.
    site
        The site as written.
    variable
        The output variable each row observes (``csf_concentration``, ...).
    position
        z (cm) for spinal CSF, the segment index for the cord, else -1.
    value, sd
        ng/mL (``sd`` NaN where not given).
    row
        Line number in the file (header = 1).
    source
        The file name (for messages and the report).
    """

    time: np.ndarray
    site: tuple[str, ...]
    variable: tuple[str, ...]
    position: np.ndarray
    value: np.ndarray
    sd: np.ndarray
    row: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.time)

    @property
    def has_sd(self) -> bool:
        return bool(np.all(np.isfinite(self.sd)))


def _number(text: str, where: str, col: str, allowed: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}, column {col}", text, allowed) from None
    if not math.isfinite(v):
        raise ScenarioError(f"{where}, column {col}", text, allowed)
    return v


def read_observations(path: str | Path, scenario: Scenario, *, text: str | None = None
                      ) -> Observations:
    """Read and check a CSV file of observations against a scenario (the design).

    Raises
    ------
    ScenarioError
        A missing column, an unknown site, a unit that is not a concentration, a
        value that is not a number, a negative (or, without ``sd``, zero)
        concentration, a time outside the scenario, or no rows: one line naming
        the row and the column.
    """
    from csfmodel._io import read_text

    name = str(path)
    if text is None:
        text = read_text(path, "data", "a readable CSV file with columns time_h, site, "
                         "value, unit[, sd]")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    for col in COLUMNS:
        if col not in header:
            raise ScenarioError(f"{name}, row 1", ",".join(header), "the columns "
                                + ", ".join(COLUMNS) + " (and optionally sd)",
                                detail=f"column {col} is missing")
    reader.fieldnames = header
    t_end = scenario.simulation.duration
    an = scenario.anatomy
    times, sites, variables, positions, values, sds, rows = [], [], [], [], [], [], []
    have_sd = "sd" in header
    for i, rec in enumerate(reader, start=2):
        rec = {k: (v or "").strip() for k, v in rec.items() if k is not None}
        if not any(rec.values()):
            continue
        where = f"{name}, row {i}"
        t = _number(rec["time_h"], where, "time_h", "a time in h such as 2.5")
        if not 0.0 <= t * 60.0 <= t_end + 1e-9:
            raise ScenarioError(f"{where}, column time_h", rec["time_h"],
                                f"a time within the scenario, 0 to {t_end / 60:g} h")
        site = rec["site"]
        low = site.lower()
        if low in COMPARTMENT_SITES:
            var, pos = COMPARTMENT_SITES[low], -1.0
        elif low.startswith("cord:"):
            seg = site[5:].strip().upper()
            if seg not in CORD_SEGMENTS:
                raise ScenarioError(f"{where}, column site", site,
                                    "cord:<segment> with a segment C1…C8, T1…T12, L1…L5, S1…S5")
            var, pos = "cord_concentration", float(CORD_SEGMENTS.index(seg))
        else:
            try:
                z = parse_site(site, an, f"{where}, column site")
            except ScenarioError:
                raise ScenarioError(f"{where}, column site", site, _SITES) from None
            var, pos = "csf_concentration", float(z)
        unit = rec["unit"]
        try:
            factor = convert(f"1 {unit}", "ng/mL", f"{where}, column unit")
        except ScenarioError:
            raise ScenarioError(f"{where}, column unit", unit,
                                "a concentration unit (mass/volume) such as ng/mL, ug/L, "
                                "mg/L") from None
        v = _number(rec["value"], where, "value", "a concentration (a number)")
        if v < 0 or (v == 0 and not have_sd):
            raise ScenarioError(f"{where}, column value", rec["value"],
                                "a positive concentration (fits on the log scale; with an sd "
                                "column, zero is allowed)" if v == 0 else
                                "a concentration of 0 or more")
        sd = math.nan
        if have_sd:
            sd = _number(rec.get("sd", ""), where, "sd", "a standard deviation > 0 in the "
                         "row's unit (the sd column is given, so every row needs one)")
            if sd <= 0:
                raise ScenarioError(f"{where}, column sd", rec.get("sd"),
                                    "a standard deviation > 0")
            sd *= factor
        times.append(t * 60.0)
        sites.append(site)
        variables.append(var)
        positions.append(pos)
        values.append(v * factor)
        sds.append(sd)
        rows.append(i)
    if not times:
        raise ScenarioError(name, "no rows", "at least one observation row")
    return Observations(np.array(times), tuple(sites), tuple(variables), np.array(positions),
                        np.array(values), np.array(sds), np.array(rows), name)
