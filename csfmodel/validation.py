"""Validation against published human data: study designs, scoring, figure.

``csfmodel/data/calibration.csv`` holds published observations of morphine in
humans (lumbar CSF after intrathecal boluses, CSF half-lives and clearance,
plasma after intrathecal, intravenous and oral morphine) and of a hydrophilic
tracer under a 72 h lumbar infusion. Each row is reproduced here by running the
design of the study behind it -- dose, site, injected volume, sampling site and
sampling times as the study did them -- through :func:`csfmodel.simulate`, and
computing the measure the way the study computed it (log-linear regression for
a terminal half-life, dose/AUC for a clearance, the maximum over the sampled
times for a Cmax).

A row passes when the model is within a factor of two of the observed value
(``1/2 <= model/observed <= 2``); an ``upper_bound`` row passes when the model
stays below twice the bound at the times the study sampled. The default
parameters are not tuned per row: one parameter set is judged on every row at
once.

Where a paper's abstract leaves the design open, the assumption is written in
the design below (and printed by ``csfmodel validate --designs``):

* injected volume 1 mL at 4 mL/min when the row gives none;
* lumbar CSF sampled at the level of the injection;
* Nordberg 1984: CSF and plasma sampled at 1, 2, 3, 4, 6, 8, 12 and 24 h (the
  abstract reports concentrations from 1 h on); terminal half-life from the
  samples at 2 h and later; clearance = dose / AUC(0-inf) per kg of the 70 kg
  default body weight;
* Sjostrom 1987: "frequent sampling for 6 h", taken as 5, 10, 15, 20, 30, 45,
  60, 90, 120, 150, 180, 240, 300 and 360 min; the half-life "after a fast
  ~15 min phase" from the samples at 30 min and later;
* Kroin 1993: 111In-DTPA (``dtpa`` preset) infused for 72 h with the catheter
  tip at L2, CSF concentration at mid-T2 over mid-T12;
* Stuart-Harris 2000: 10 mg IV bolus; terminal half-life from plasma samples
  at 2-24 h; clearance = dose / AUC(0-inf) with the model curve followed to 72 h
  (the quantity a study's extrapolated AUC estimates);
* Westerling 1993: oral solution vs IV, AUC(0-inf) ratio per mg;
* MS Contin 30 mg: one controlled-release tablet, Cmax and Tmax of plasma.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Row",
    "RowResult",
    "FACTOR",
    "load_rows",
    "score",
    "run_validation",
    "format_table",
    "plot_validation",
    "sensitivity",
    "format_sensitivity",
    "predictions",
    "format_predictions",
    "plot_predictions",
    "DESIGNS",
    "CITATIONS",
]

#: A row passes when ``1/FACTOR <= model/observed <= FACTOR``.
FACTOR = 2.0

#: References of the studies in ``calibration.csv`` (titles where checked against the
#: paper's abstract; otherwise the citation as the table gives it).
CITATIONS: dict[str, str] = {
    "Nordberg 1984": "Nordberg G, et al. Pharmacokinetic aspects of intrathecal morphine "
                     "analgesia. Anesthesiology 1984;60:448-454.",
    "Sjostrom 1987": "Sjostrom S, et al. Pharmacokinetics of intrathecal morphine and "
                     "meperidine in humans. Anesthesiology 1987;67:889-895.",
    "Kroin 1993": "Kroin JS, Ali A, York M, Penn RD. The distribution of medication along the "
                  "spinal canal after chronic intrathecal administration. Neurosurgery "
                  "1993;33:226-230.",
    "Stuart-Harris 2000": "Stuart-Harris R et al. Br J Clin Pharmacol 2000;49:207.",
    "Westerling 1993": "Westerling D et al. Ther Drug Monit 1993;15:364.",
    "MS Contin": "MS Contin (morphine sulfate extended-release) 30 mg food-effect study, "
                 "prescribing information.",
}


# ----------------------------------------------------------------------- data
@dataclass(frozen=True)
class Row:
    """One published observation (a line of ``calibration.csv``)."""

    id: str
    study: str
    route: str
    dose_mg: float | None
    dose_site: str
    injected_volume_ml: float | None
    sample_site: str
    measure: str
    time_h: float | None
    value: float
    spread: float | None
    unit: str
    note: str


_COLUMNS = ("id", "study", "route", "dose_mg", "dose_site", "injected_volume_ml",
            "sample_site", "measure", "time_h", "value", "spread", "unit", "note")


def _num(text: str) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


def load_rows(path: str | Path | None = None) -> list[Row]:
    """Read the calibration table (the packaged copy by default)."""
    from csfmodel.errors import ScenarioError

    if path is None:
        text = resources.files("csfmodel").joinpath("data/calibration.csv").read_text(
            encoding="utf-8")
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError("--data", str(path), "a readable calibration CSV",
                                detail=exc.strerror or str(exc)) from None
    reader = csv.DictReader(text.splitlines())
    missing = set(_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise ScenarioError("--data", str(path or "calibration.csv"),
                            "a CSV with the columns " + ", ".join(_COLUMNS),
                            detail="missing " + ", ".join(sorted(missing)))
    rows = []
    for r in reader:
        rows.append(Row(
            id=r["id"].strip(), study=r["study"].strip(), route=r["route"].strip(),
            dose_mg=_num(r["dose_mg"]), dose_site=r["dose_site"].strip(),
            injected_volume_ml=_num(r["injected_volume_ml"]), sample_site=r["sample_site"].strip(),
            measure=r["measure"].strip(), time_h=_num(r["time_h"]), value=float(r["value"]),
            spread=_num(r["spread"]), unit=r["unit"].strip(), note=r["note"].strip()))
    return rows


# -------------------------------------------------------------------- scoring
@dataclass(frozen=True)
class RowResult:
    """A row, what the model gives for it, and the verdict."""

    row: Row
    model: float
    ratio: float
    passed: bool
    how: str = ""


def score(row: Row, model: float, factor: float = FACTOR) -> tuple[float, bool]:
    """Ratio model/observed and whether it is within the factor band.

    An ``upper_bound`` row passes when ``model <= factor * value``; every other
    measure when ``1/factor <= model/value <= factor``. A non-finite model value
    fails.
    """
    if not math.isfinite(model) or row.value == 0:
        return float("nan"), False
    ratio = model / row.value
    if row.measure == "upper_bound":
        return ratio, ratio <= factor
    return ratio, (1.0 / factor) <= ratio <= factor


# ------------------------------------------------------------- study designs
_KG = 70.0  # default body weight (anatomy), used for per-kg clearances

NORDBERG_SAMPLES_H = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 24.0)
SJOSTROM_SAMPLES_MIN = (5, 10, 15, 20, 30, 45, 60, 90, 120, 150, 180, 240, 300, 360)


@dataclass
class _Run:
    """A simulated study arm: the Dataset and where the study sampled CSF."""

    ds: Any
    sample_z: float | None = None

    def csf(self) -> tuple[np.ndarray, np.ndarray]:
        """(time h, lumbar CSF ng/mL at the sampling level)."""
        c = self.ds.csf_concentration.interp(z=self.sample_z)
        return self.ds.time.values, c.values

    def plasma(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ds.time.values, self.ds.plasma_concentration.values


def _at(t: np.ndarray, c: np.ndarray, times_h) -> np.ndarray:
    return np.interp(np.asarray(times_h, float), t, c)


def terminal_half_life(t_h: np.ndarray, c: np.ndarray) -> float:
    """Half-life (min) of a log-linear least-squares fit through (t, c) samples."""
    slope = np.polyfit(np.asarray(t_h) * 60.0, np.log(np.asarray(c)), 1)[0]
    return float(np.log(2.0) / -slope) if slope < 0 else float("inf")


def auc_inf(t_h: np.ndarray, c: np.ndarray, terminal_from_h: float) -> float:
    """AUC(0-inf) (ng/mL*min): trapezoids over the curve, extrapolated with the
    terminal slope fitted from ``terminal_from_h`` on."""
    t_h, c = np.asarray(t_h, float), np.asarray(c, float)
    t_min = t_h * 60.0
    auc = float(np.trapezoid(c, t_min))
    # solver round-off may leave tiny negative values where the curve has died out
    sel = (t_h >= terminal_from_h) & (c > 1e-9 * c.max())
    if sel.sum() >= 3 and c[-1] > 0:
        slope = np.polyfit(t_min[sel], np.log(c[sel]), 1)[0]
        if slope < 0:
            auc += float(c[-1] / -slope)
    return auc


def _it_bolus(amount_mg: float, site: str, volume_ml: float, duration_h: float,
              output_min: float, overrides: dict) -> dict:
    return {
        "simulation": {"duration": f"{duration_h} h", "output_interval": f"{output_min} min",
                       "resolution": overrides.get("resolution", "5 mm")},
        "patient": dict(overrides.get("patient", {})),
        "drug": {"name": "morphine", **overrides.get("drug", {})},
        "dose": [{"route": "intrathecal", "type": "bolus", "site": site,
                  "amount": f"{amount_mg} mg", "volume": f"{volume_ml} mL",
                  "injection_rate": "4 mL/min"}],
    }


def _systemic(doses: list[dict], duration_h: float, output_min: float,
              overrides: dict) -> dict:
    return {
        "simulation": {"duration": f"{duration_h} h", "output_interval": f"{output_min} min",
                       "resolution": overrides.get("resolution", "5 mm")},
        "patient": dict(overrides.get("patient", {})),
        "drug": {"name": "morphine", **overrides.get("drug", {})},
        "dose": doses,
    }


@dataclass
class _Design:
    """A study design: the scenario it runs and how each of its rows is measured."""

    name: str
    describe: str
    scenarios: Callable[[dict], dict[str, dict]]
    measures: dict[str, Callable[[dict[str, _Run], Row], tuple[float, str]]]
    sample_z: dict[str, str] = field(default_factory=dict)


def _nordberg_measures(arm: str, dose_mg: float):
    def conc_1h(runs, row):
        t, c = runs[arm].csf()
        return float(_at(t, c, [row.time_h])[0]), "lumbar CSF at 1 h"

    def thalf(runs, row):
        t, c = runs[arm].csf()
        ts = np.array([x for x in NORDBERG_SAMPLES_H if x >= 2.0])
        return terminal_half_life(ts, _at(t, c, ts)), "log-linear fit, samples 2-24 h"

    def clearance(runs, row):
        t, c = runs[arm].csf()
        auc = auc_inf(t, c, 2.0) / 1000.0  # ug/mL*min
        cl = dose_mg * 1000.0 / auc         # mL/min
        return cl / _KG * 1000.0, "dose/AUC(0-inf) per kg (70 kg)"

    def plasma_bound(runs, row):
        t, c = runs[arm].plasma()
        return float(_at(t, c, NORDBERG_SAMPLES_H).max()), "max plasma over samples 1-24 h"

    return conc_1h, thalf, clearance, plasma_bound


def _nordberg_scenarios(ov: dict) -> dict[str, dict]:
    return {"nordberg_025": _it_bolus(0.25, "L3-L4", 1.0, 24, 1, ov),
            "nordberg_05": _it_bolus(0.5, "L3-L4", 1.0, 24, 1, ov)}


_n25 = _nordberg_measures("nordberg_025", 0.25)
_n50 = _nordberg_measures("nordberg_05", 0.5)


def _sjostrom_scenarios(ov: dict) -> dict[str, dict]:
    return {"sjostrom": _it_bolus(0.3, "L3-L4", 1.0, 6, 1, ov)}


def _sj_csf_cmax(runs, row):
    t, c = runs["sjostrom"].csf()
    return float(_at(t, c, np.array(SJOSTROM_SAMPLES_MIN) / 60).max()), \
        "max lumbar CSF over samples 5-360 min"


def _sj_thalf(runs, row):
    t, c = runs["sjostrom"].csf()
    ts = np.array([x for x in SJOSTROM_SAMPLES_MIN if x >= 30]) / 60.0
    return terminal_half_life(ts, _at(t, c, ts)), "log-linear fit, samples 30-360 min"


def _sj_plasma(which: str):
    def f(runs, row):
        t, c = runs["sjostrom"].plasma()
        ts = np.array(SJOSTROM_SAMPLES_MIN) / 60.0
        cs = _at(t, c, ts)
        k = int(np.argmax(cs))
        if which == "cmax":
            return float(cs[k]), "max plasma over samples 5-360 min"
        return float(ts[k]), "sample time of the plasma maximum"
    return f


def _kroin_scenarios(ov: dict) -> dict[str, dict]:
    sc = _systemic([{"route": "intrathecal", "type": "infusion", "site": "L2",
                     "rate": "1 mg/day"}], 72, 360, ov)
    sc["drug"] = {"name": "dtpa", **ov.get("tracer", {})}
    return {"kroin": sc}


def _kroin_ratio(runs, row):
    from csfmodel.anatomy import Anatomy

    ds = runs["kroin"].ds
    a = Anatomy()
    c = ds.csf_concentration.sel(time=row.time_h or 72.0, method="nearest")
    return float(c.interp(z=a.level_z("T2")) / c.interp(z=a.level_z("T12"))), \
        "CSF mid-T2 / mid-T12 at 72 h"


def _iv_scenarios(ov: dict) -> dict[str, dict]:
    return {"iv10": _systemic([{"route": "iv", "type": "bolus", "amount": "10 mg"}], 72, 1,
                              ov)}


def _iv_thalf(runs, row):
    t, c = runs["iv10"].plasma()
    sel = (t >= 2.0) & (t <= 24.0)
    return terminal_half_life(t[sel], c[sel]), "log-linear fit of plasma, 2-24 h"


def _iv_cl(runs, row):
    t, c = runs["iv10"].plasma()
    return 10000.0 / (auc_inf(t, c, 24.0) / 1000.0), "dose/AUC(0-inf), curve to 72 h"


def _oral_scenarios(ov: dict) -> dict[str, dict]:
    return {
        "westerling_iv": _systemic([{"route": "iv", "type": "bolus", "amount": "5 mg"}], 72, 1,
                                   ov),
        "westerling_po": _systemic([{"route": "oral", "type": "bolus", "amount": "20 mg",
                                     "formulation": "immediate"}], 72, 1, ov),
        "mscontin": _systemic([{"route": "oral", "type": "bolus", "amount": "30 mg",
                                "formulation": "controlled"}], 24, 5, ov),
    }


def _westerling_f(runs, row):
    ti, ci = runs["westerling_iv"].plasma()
    to, co = runs["westerling_po"].plasma()
    f = (auc_inf(to, co, 24.0) / 20.0) / (auc_inf(ti, ci, 24.0) / 5.0)
    return f, "AUC(0-inf) oral/IV per mg"


def _mscontin(which: str):
    def f(runs, row):
        t, c = runs["mscontin"].plasma()
        k = int(np.argmax(c))
        return (float(c[k]), "plasma Cmax") if which == "cmax" else (float(t[k]), "plasma Tmax")
    return f


_ZSITE = {"nordberg_025": "L3-L4", "nordberg_05": "L3-L4", "sjostrom": "L3-L4"}

#: Study designs; every row id of the calibration table is measured by one of them.
DESIGNS: tuple[_Design, ...] = (
    _Design("Nordberg 1984", "0.25 / 0.5 mg IT at L3-L4 in 1 mL; lumbar CSF and plasma at "
            "1, 2, 3, 4, 6, 8, 12, 24 h", _nordberg_scenarios, {
                "nordberg84_lumbar_1h_025": _n25[0], "nordberg84_thalf_025": _n25[1],
                "nordberg84_lumbar_1h_05": _n50[0], "nordberg84_thalf_05": _n50[1],
                "nordberg84_cl_05": _n50[2], "nordberg84_plasma": _n50[3]}),
    _Design("Sjostrom 1987", "0.3 mg IT at L3-L4 in 1 mL; lumbar CSF and plasma at 5-360 min",
            _sjostrom_scenarios, {
                "sjostrom87_cmax": _sj_csf_cmax, "sjostrom87_thalf": _sj_thalf,
                "sjostrom87_plasma_cmax": _sj_plasma("cmax"),
                "sjostrom87_plasma_tmax": _sj_plasma("tmax")}),
    _Design("Kroin 1993", "111In-DTPA (dtpa preset) infused 72 h at L2; CSF T2/T12",
            _kroin_scenarios, {"kroin93_tracer_gradient": _kroin_ratio}),
    _Design("Stuart-Harris 2000", "10 mg IV bolus; plasma 2-24 h (AUC to 72 h)", _iv_scenarios, {
        "stuartharris00_iv_thalf": _iv_thalf, "stuartharris00_iv_cl": _iv_cl}),
    _Design("Westerling 1993 / MS Contin", "oral solution 20 mg vs IV 5 mg; MS Contin 30 mg CR",
            _oral_scenarios, {
                "westerling93_oral_f": _westerling_f, "mscontin_30_cmax": _mscontin("cmax"),
                "mscontin_30_tmax": _mscontin("tmax")}),
)


def _measure_of(row_id: str) -> tuple[_Design, Callable]:
    for d in DESIGNS:
        if row_id in d.measures:
            return d, d.measures[row_id]
    raise KeyError(row_id)


def run_validation(rows: list[Row] | None = None, *, overrides: dict | None = None,
                   solver: str | None = None, return_runs: bool = False):
    """Run every study design behind ``rows`` and score each row.

    Parameters
    ----------
    rows
        Rows to judge (default: the packaged calibration table).
    overrides
        Parameter overrides in scenario form, for sensitivity analyses:
        ``{"patient": {...}, "drug": {...}, "tracer": {...}, "resolution": "5 mm"}``
        (``tracer`` applies to the ``dtpa`` preset of the Kroin design).
    solver
        Backend name (default: the scenario default).

    Returns
    -------
    list of RowResult
        (and the simulated runs by arm name if ``return_runs``). A row with no
        study design gets a NaN model value and fails.
    """
    from csfmodel.api import prepare, simulate

    rows = load_rows() if rows is None else rows
    ov = overrides or {}
    needed: dict[str, dict] = {}
    for row in rows:
        try:
            design, _ = _measure_of(row.id)
        except KeyError:
            continue
        needed.update(design.scenarios(ov))
    runs: dict[str, _Run] = {}
    for arm, sc in needed.items():
        ds = simulate(sc, solver=solver)
        z = None
        if arm in _ZSITE:
            z = prepare(sc)[0].catheter_sites()[0]
        runs[arm] = _Run(ds, z)
    results = []
    for row in rows:
        try:
            _, measure = _measure_of(row.id)
        except KeyError:
            results.append(RowResult(row, float("nan"), float("nan"), False, "no study design"))
            continue
        value, how = measure(runs, row)
        ratio, ok = score(row, value)
        results.append(RowResult(row, float(value), ratio, ok, how))
    return (results, runs) if return_runs else results


def format_table(results: list[RowResult]) -> str:
    """The validation table: row, observed, model, ratio, pass."""
    w = max(len(r.row.id) for r in results)
    lines = [f"{'row':<{w}}  {'observed':>10}  {'model':>10}  {'unit':<10} {'ratio':>6}  pass",
             "-" * (w + 50)]
    for r in results:
        obs = ("< " if r.row.measure == "upper_bound" else "") + f"{r.row.value:.4g}"
        lines.append(f"{r.row.id:<{w}}  {obs:>10}  {r.model:>10.4g}  {r.row.unit:<10} "
                     f"{r.ratio:>6.2f}  {'yes' if r.passed else 'NO'}")
    n_ok = sum(r.passed for r in results)
    lines.append(f"{n_ok}/{len(results)} rows within a factor of {FACTOR:g}")
    return "\n".join(lines)


# ------------------------------------------------------------------ sensitivity
def _calibrated() -> dict[str, tuple[str, str, float, str]]:
    """Calibrated parameters: (scenario table, key, default value in unit, unit)."""
    from csfmodel.anatomy import Anatomy
    from csfmodel.drugs import get_drug

    a, m = Anatomy(), get_drug("morphine")
    return {
        "dispersion": ("patient", "dispersion", a.dispersion, "cm^2/min"),
        "injection_spread": ("patient", "injection_spread", a.injection_spread, ""),
        "injection_loss": ("patient", "injection_loss", a.injection_loss, ""),
        "meningeal_permeability": ("drug", "meningeal_permeability", m.meningeal_p(),
                                   "cm/min"),
        "ka_cr": ("drug", "ka_cr", m.ka_cr * 60.0, "1/h"),
    }


def sensitivity(rows: list[Row] | None = None, step: float = 0.1,
                solver: str | None = None) -> dict[str, dict[str, float]]:
    """Local sensitivities ``d log(model) / d log(parameter)`` of every row.

    Central differences with the calibrated parameters scaled by ``1 +- step``.

    Returns
    -------
    dict
        ``{parameter: {row id: sensitivity}}``.
    """
    rows = load_rows() if rows is None else rows
    out: dict[str, dict[str, float]] = {}
    for name, (table, key, value, unit) in _calibrated().items():
        vals = []
        for f in (1.0 + step, 1.0 - step):
            v = value * f
            ov = {table: {key: f"{v} {unit}".strip() if unit else v}}
            vals.append({r.row.id: r.model for r in run_validation(rows, overrides=ov,
                                                                      solver=solver)})
        d = math.log((1.0 + step) / (1.0 - step))
        out[name] = {k: (math.log(vals[0][k] / vals[1][k]) / d
                         if vals[0][k] > 0 and vals[1][k] > 0 else float("nan"))
                     for k in vals[0]}
    return out


def format_sensitivity(sens: dict[str, dict[str, float]]) -> str:
    """Sensitivity table: rows by calibrated parameters."""
    names = list(sens)
    ids = list(next(iter(sens.values())))
    w = max(len(i) for i in ids)
    short = {"dispersion": "D_disp", "injection_spread": "kappa", "injection_loss": "loss",
             "meningeal_permeability": "P_men", "ka_cr": "ka_cr"}
    lines = [f"{'row':<{w}}" + "".join(f"{short.get(n, n):>9}" for n in names)]
    for i in ids:
        lines.append(f"{i:<{w}}" + "".join(f"{sens[n][i]:>9.2f}" for n in names))
    return "\n".join(lines)


# ----------------------------------------------------------------------- figure
def plot_validation(results: list[RowResult], runs: dict[str, _Run]):
    """Model curves against the observations; returns a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_id = {r.row.id: r for r in results}
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    ax = axes[0, 0]
    for arm, dose, col in (("nordberg_025", 0.25, "C0"), ("nordberg_05", 0.5, "C1")):
        if arm not in runs:
            continue
        t, c = runs[arm].csf()
        ax.semilogy(t, c, col, label=f"model {dose} mg")
        rid = f"nordberg84_lumbar_1h_{'025' if dose == 0.25 else '05'}"
        if rid in by_id:
            r = by_id[rid].row
            ax.errorbar([1.0], [r.value], yerr=r.spread, fmt="o", color=col, capsize=3,
                        label=f"Nordberg 1984 {dose} mg (1 h)")
    ax.set(xlabel="time (h)", ylabel="lumbar CSF (ng/mL)", ylim=(50, 1e5),
           title="Nordberg 1984: IT bolus at L3-L4")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    if "sjostrom" in runs:
        t, c = runs["sjostrom"].csf()
        ts = np.array(SJOSTROM_SAMPLES_MIN) / 60
        ax.semilogy(t, c, "C0", label="model lumbar CSF")
        ax.semilogy(ts, _at(t, c, ts), "C0.", ms=4, label="model at the sample times")
        if "sjostrom87_cmax" in by_id:
            r = by_id["sjostrom87_cmax"].row
            ax.errorbar([5 / 60], [r.value], yerr=r.spread, fmt="o", color="k", capsize=3,
                        label="Sjostrom 1987 CSF Cmax")
        if "sjostrom87_thalf" in by_id:
            r = by_id["sjostrom87_thalf"].row
            t0 = 0.5
            c0 = float(_at(t, c, [t0])[0])
            tt = np.linspace(t0, 6, 20)
            ax.semilogy(tt, c0 * 2 ** (-(tt - t0) * 60 / r.value), "k--", lw=1,
                        label=f"observed t1/2 {r.value:g} min")
        ax.set(xlabel="time (h)", ylabel="lumbar CSF (ng/mL)", ylim=(50, 1e5),
               title="Sjostrom 1987: 0.3 mg IT, CSF")
        ax.legend(fontsize=8)
        ax = axes[0, 2]
        t, p = runs["sjostrom"].plasma()
        ax.plot(t * 60, p, "C3", label="model plasma (0.3 mg IT)")
        ax.plot(ts * 60, _at(t, p, ts), "C3.", ms=5)
        if "sjostrom87_plasma_cmax" in by_id:
            r = by_id["sjostrom87_plasma_cmax"].row
            ax.errorbar([7.5], [r.value], xerr=2.5, yerr=r.spread, fmt="o", color="k",
                        capsize=3, label="Sjostrom 1987 plasma Cmax (5-10 min)")
        if "nordberg_05" in runs:
            tn, pn = runs["nordberg_05"].plasma()
            ax.plot(tn * 60, pn, "C1", lw=1, label="model plasma (0.5 mg IT)")
            ax.plot(np.array(NORDBERG_SAMPLES_H) * 60, _at(tn, pn, NORDBERG_SAMPLES_H), "C1s",
                    ms=4, label="at Nordberg's sample times (bound 1 ng/mL)")
            ax.axhline(1.0, color="C1", ls=":", lw=1)
        ax.set(xlabel="time (min)", ylabel="plasma (ng/mL)", xlim=(0, 360), ylim=(0, 8),
               title="plasma after IT morphine")
        ax.legend(fontsize=8)

    ax = axes[1, 0]
    if "kroin" in runs:
        from csfmodel.anatomy import Anatomy

        ds = runs["kroin"].ds
        a = Anatomy()
        c = ds.csf_concentration.isel(time=-1)
        ref = float(c.interp(z=a.level_z("T12")))
        ax.plot(ds.z, c / ref, "C2", label="model, 72 h (relative to T12)")
        if "kroin93_tracer_gradient" in by_id:
            r = by_id["kroin93_tracer_gradient"].row
            ax.plot([a.level_z("T2"), a.level_z("T12")], [r.value, 1.0], "ko",
                    label="Kroin 1993: T2 = 0.43 x T12")
        for lv in ("C1", "T2", "T12", "L2", "S1"):
            ax.axvline(a.level_z(lv, 0.0 if lv in ("C1", "S1") else 0.5), color="0.85",
                       lw=0.8)
            ax.text(a.level_z(lv, 0.5), 0.02, lv, fontsize=7, ha="center")
        ax.set(xlabel="z from foramen magnum (cm)", ylabel="CSF / CSF at T12", yscale="log",
               ylim=(0.01, 10), title="Kroin 1993: 111In-DTPA, 72 h lumbar infusion")
        ax.legend(fontsize=8)

    ax = axes[1, 1]
    if "iv10" in runs:
        t, p = runs["iv10"].plasma()
        sel = t <= 12
        ax.semilogy(t[sel], p[sel], "C4", label="model 10 mg IV")
    if "mscontin" in runs:
        t, p = runs["mscontin"].plasma()
        ax.semilogy(t, p, "C5", label="model 30 mg CR oral")
        if "mscontin_30_cmax" in by_id and "mscontin_30_tmax" in by_id:
            ax.plot([by_id["mscontin_30_tmax"].row.value], [by_id["mscontin_30_cmax"].row.value],
                    "ks", label="MS Contin 30 mg Cmax, Tmax")
    ax.set(xlabel="time (h)", ylabel="plasma (ng/mL)", xlim=(0, 12), ylim=(0.3, 500),
           title="systemic morphine")
    ax.legend(fontsize=8)

    ax = axes[1, 2]
    ids = [r.row.id for r in results]
    ratios = np.array([r.ratio for r in results])
    y = np.arange(len(ids))[::-1]
    ax.axvspan(1 / FACTOR, FACTOR, color="0.9")
    ax.axvline(1.0, color="0.5", lw=0.8)
    ax.scatter(ratios, y, c=["C2" if r.passed else "C3" for r in results], zorder=3)
    ax.set_yticks(y, ids, fontsize=7)
    ax.set(xscale="log", xlim=(0.25, 4), xlabel="model / observed",
           title=f"all rows (band: factor {FACTOR:g})")
    ax.set_xticks([0.25, 0.5, 1, 2, 4], ["1/4", "1/2", "1", "2", "4"])
    ax.minorticks_off()
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- predictions
def _sim(doses: list[dict], duration_h: float, output_min: float, drug: str = "morphine",
         solver: str | None = None):
    from csfmodel.api import simulate

    return simulate({"simulation": {"duration": f"{duration_h} h",
                                    "output_interval": f"{output_min} min"},
                     "drug": {"name": drug}, "dose": doses}, solver=solver)


def _first_below(z: np.ndarray, c: np.ndarray, z0: float, frac: float) -> float:
    """Distance (cm) rostral of z0 where c first falls below ``frac`` of c(z0)."""
    c0 = float(np.interp(z0, z, c))
    zz = np.linspace(z0, 0.0, 600)
    cc = np.interp(zz, z, c)
    k = np.nonzero(cc < frac * c0)[0]
    return float(z0 - zz[k[0]]) if len(k) else float("inf")


def predictions(solver: str | None = None) -> tuple[dict[str, dict[str, float]], dict]:
    """What the default model predicts for phenomena that are *not* in the table.

    Four designs, each set beside the literature in ``docs/validation.md``:

    * ``rostral``: 0.5 mg morphine in 1 mL at L3-L4 -- CSF peaks at T6, C7 and the
      cisterna, lumbar:cisternal AUC ratio, largest share of the dose in cranial CSF;
    * ``brain``: brain ECF peak time after that IT bolus and after 10 mg IV;
    * ``systemic_to_csf``: lumbar CSF after 10 mg IV (peak, time, CSF:plasma);
    * ``pump``: 0.5 mg/day at T10 for 7 days vs a 0.5 mg bolus in 1 mL at T10 --
      rostral distance to half and a tenth of the tip concentration, CSF at T2
      over the tip (the tip of an infusion at its plateau, a bolus at 3 h);
    * ``lipophilic``: equal 0.1 mg boluses of morphine, fentanyl, sufentanil at L3
      (Ummenhofer 2000 design: CSF at L2, T11, T7, T3 over 4 h) -- AUC(0-4 h) at
      each level over L2, lumbar CSF half-life, lumbar cord exposure, brain peak.

    Returns
    -------
    (numbers, curves)
        ``numbers[design][quantity]`` and the Datasets used for the figure.
    """
    from csfmodel.anatomy import Anatomy

    a = Anatomy()
    out: dict[str, dict[str, float]] = {}
    curves: dict = {}
    lum = a.level_z("L3", 1.0)
    ds = _sim([{"route": "intrathecal", "type": "bolus", "site": "L3-L4", "amount": "0.5 mg",
                "volume": "1 mL"}], 24, 5, solver=solver)
    curves["rostral"] = ds
    t = ds.time.values
    r: dict[str, float] = {}
    for name, z in (("T6", a.level_z("T6")), ("C7", a.level_z("C7"))):
        c = ds.csf_concentration.interp(z=z).values
        r[f"{name} CSF peak (ng/mL)"] = float(c.max())
        r[f"{name} CSF peak time (h)"] = float(t[c.argmax()])
        r[f"{name} first > 10 ng/mL (h)"] = float(t[np.argmax(c > 10.0)])
    cis = ds.cisternal_csf_concentration.values
    r["cisternal CSF peak (ng/mL)"] = float(cis.max())
    r["cisternal CSF peak time (h)"] = float(t[cis.argmax()])
    cl = ds.csf_concentration.interp(z=lum).values
    r["lumbar:cisternal AUC(0-24 h)"] = float(np.trapezoid(cl, t) / np.trapezoid(cis, t))
    cran = ds.amount.sel(pool="cranial_csf").values + ds.amount.sel(pool="brain").values
    r["largest share of dose in cranial CSF + brain (%)"] = float(cran.max() / 0.5 * 100)
    out["rostral"] = r

    br = ds.brain_concentration.values
    iv = _sim([{"route": "iv", "type": "bolus", "amount": "10 mg"}], 24, 5, solver=solver)
    curves["iv"] = iv
    bi = iv.brain_concentration.values
    out["brain"] = {"IT 0.5 mg: brain ECF peak time (h)": float(t[br.argmax()]),
                    "IT 0.5 mg: brain ECF peak (ng/mL)": float(br.max()),
                    "IV 10 mg: brain ECF peak time (h)": float(iv.time.values[bi.argmax()]),
                    "IV 10 mg: brain ECF peak (ng/mL)": float(bi.max())}
    ti = iv.time.values
    cl_iv = iv.csf_concentration.interp(z=lum).values
    pl_iv = iv.plasma_concentration.values
    out["systemic_to_csf"] = {
        "IV 10 mg: lumbar CSF peak (ng/mL)": float(cl_iv.max()),
        "IV 10 mg: lumbar CSF peak time (h)": float(ti[cl_iv.argmax()]),
        **{f"IV 10 mg: lumbar CSF / plasma at {h:g} h": float(
            np.interp(h, ti, cl_iv) / np.interp(h, ti, pl_iv)) for h in (1.0, 3.0, 6.0)},
    }

    tip = a.level_z("T10")
    inf = _sim([{"route": "intrathecal", "type": "infusion", "site": "T10",
                 "rate": "0.5 mg/day"}], 168, 720, solver=solver)
    bol = _sim([{"route": "intrathecal", "type": "bolus", "site": "T10", "amount": "0.5 mg",
                 "volume": "1 mL"}], 6, 10, solver=solver)
    curves["pump"] = (inf, bol)
    z = inf.z.values
    p: dict[str, float] = {}
    for label, c in (("infusion (plateau)", inf.csf_concentration.isel(time=-1).values),
                     ("bolus (3 h)", bol.csf_concentration.sel(time=3.0,
                                                               method="nearest").values)):
        p[f"{label}: rostral cm to 1/2 of tip"] = _first_below(z, c, tip, 0.5)
        p[f"{label}: rostral cm to 1/10 of tip"] = _first_below(z, c, tip, 0.1)
        p[f"{label}: CSF T2 / tip"] = float(np.interp(a.level_z("T2"), z, c)
                                            / np.interp(tip, z, c))
    p["infusion (plateau): cisterna / tip"] = float(
        inf.cisternal_csf_concentration.values[-1] / np.interp(tip, z, inf.csf_concentration
                                                                 .isel(time=-1).values))
    out["pump"] = p

    lip: dict[str, float] = {}
    curves["lipophilic"] = {}
    for drug in ("morphine", "fentanyl", "sufentanil"):
        d = _sim([{"route": "intrathecal", "type": "bolus", "site": "L3", "amount": "0.1 mg",
                   "volume": "1 mL"}], 12, 2, drug=drug, solver=solver)
        curves["lipophilic"][drug] = d
        td = d.time.values
        w4 = td <= 4.0
        aucs = {lv: float(np.trapezoid(d.csf_concentration.interp(z=a.level_z(lv)).values[w4],
                                       td[w4]))
                for lv in ("L2", "T11", "T7", "T3")}
        for lv in ("T11", "T7", "T3"):
            lip[f"{drug}: CSF AUC {lv}/L2"] = aucs[lv] / aucs["L2"]
        c2 = d.csf_concentration.interp(z=a.level_z("L2")).values
        sel = (td >= 0.5) & (td <= 4.0)
        lip[f"{drug}: L2 CSF half-life 0.5-4 h (min)"] = terminal_half_life(td[sel], c2[sel])
        cord = d.cord_concentration.sel(segment=["L1", "L2", "L3", "L4", "L5"]).mean("segment")
        lip[f"{drug}: lumbar cord AUC(0-4 h)/dose (ng*h/mL per mg)"] = float(
            np.trapezoid(cord.values[w4], td[w4]) / 0.1)
        bd = d.brain_concentration.values
        lip[f"{drug}: brain ECF peak time (h)"] = float(td[bd.argmax()])
    out["lipophilic"] = lip
    return out, curves


def format_predictions(numbers: dict[str, dict[str, float]]) -> str:
    """The predictions as text, one block per design."""
    lines = []
    for design, vals in numbers.items():
        lines.append(f"[{design}]")
        for k, v in vals.items():
            lines.append(f"  {k:<58} {v:10.4g}")
    return "\n".join(lines)


def plot_predictions(curves: dict):
    """Figure of the predictions not in the calibration table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from csfmodel.anatomy import Anatomy

    a = Anatomy()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    ax = axes[0, 0]
    ds = curves["rostral"]
    t = ds.time.values
    for lv, col in (("L3", "C0"), ("T10", "C1"), ("T6", "C2"), ("C7", "C3")):
        z = a.level_z("L3", 1.0) if lv == "L3" else a.level_z(lv)
        ax.semilogy(t, ds.csf_concentration.interp(z=z), col,
                    label=f"CSF at {'L3-L4' if lv == 'L3' else lv}")
    ax.semilogy(t, ds.cisternal_csf_concentration, "k", label="cisterna magna")
    ax.axvspan(1, 3, color="C3", alpha=0.08, label="cervical CSF rises / peaks (Gourlay 1985)")
    ax.set(xlabel="time (h)", ylabel="CSF (ng/mL)", ylim=(1, 3e4),
           title="0.5 mg IT morphine at L3-L4: rostral spread")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    iv = curves["iv"]
    b = ds.brain_concentration.values
    bi = iv.brain_concentration.values
    ax.plot(t, b / b.max(), "C0", label="brain ECF after 0.5 mg IT (peak = 1)")
    ax.plot(iv.time, bi / bi.max(), "C4", label="brain ECF after 10 mg IV (peak = 1)")
    ax.axvspan(6, 12, color="C0", alpha=0.1, label="delayed respiratory depression after IT")
    ax.set(xlabel="time (h)", ylabel="relative brain exposure", xlim=(0, 24),
           title="supraspinal exposure: IT vs IV")
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    inf, bol = curves["pump"]
    tip = a.level_z("T10")
    for c, lab, col in ((inf.csf_concentration.isel(time=-1), "infusion 0.5 mg/day, plateau",
                         "C2"),
                        (bol.csf_concentration.sel(time=1.0, method="nearest"),
                         "bolus 0.5 mg in 1 mL, 1 h", "C1"),
                        (bol.csf_concentration.sel(time=3.0, method="nearest"),
                         "bolus 0.5 mg in 1 mL, 3 h", "C3")):
        ax.semilogy(c.z, c / float(c.interp(z=tip)), col, label=lab)
    ax.axvline(tip, color="0.6", lw=0.8)
    ax.text(tip, 1.5, " tip T10", fontsize=8)
    ax.set(xlabel="z from foramen magnum (cm)", ylabel="CSF / CSF at tip", ylim=(1e-3, 3),
           title="localization: slow infusion vs bolus")
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    for drug, col in (("morphine", "C0"), ("fentanyl", "C1"), ("sufentanil", "C2")):
        d = curves["lipophilic"][drug].sel(time=slice(0, 4.0))
        auc = np.trapezoid(d.csf_concentration.values, d.time.values, axis=0)
        ref = float(np.interp(a.level_z("L2"), d.z.values, auc))
        ax.semilogy(d.z, auc / ref, col, label=drug)
    for lv in ("T3", "T7", "T11", "L2"):
        ax.axvline(a.level_z(lv), color="0.85", lw=0.8)
        ax.text(a.level_z(lv), 1.5e-3, lv, fontsize=8, ha="center")
    ax.set(xlabel="z from foramen magnum (cm)", ylabel="CSF AUC(0-4 h) / AUC at L2",
           ylim=(1e-3, 5), title="0.1 mg at L3: lipophilic opioids vs morphine")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
