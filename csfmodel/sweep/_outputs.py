"""Per-scenario outputs of a sweep chunk, computed where the chunk was solved.

The batch kernel reduces each scenario's observables along time as it solves
(:class:`csfmodel.solvers.Summary`, described for a chunk by :func:`summary_of`); no
time series is stored unless the sweep asks for it. From those rows this module
builds, per scenario:

- per variable (and the CSF at the catheter tip): Cmax, Tmax, AUC and final value
  (the same definitions and attrs as :func:`csfmodel.results.summaries`) and the
  average over the last ``interval`` (:func:`csfmodel.metrics.cavg_ss`);
- per cord segment: the time at or above ``threshold`` and whether it is reached
  (:func:`csfmodel.metrics.segment_coverage`), and the number of segments reaching it;
- target:brain selectivity, AUC and Cmax ratios of the worst target segment
  (:func:`csfmodel.metrics.selectivity`);
- the peak respiratory depression (:func:`csfmodel.effects.effects`: morphine's
  published effect model on the peak of the brain effect site, the depression being
  increasing in it).

Each is the definition of the module cited (tests compare them with it on single runs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from csfmodel import results
from csfmodel.solvers import Summary
from csfmodel.sweep._batch import TIP, VARIABLES

#: the tip observable, described like the variables of :data:`csfmodel.results.VARIABLES`
TIP_VARIABLE = results.Variable(
    TIP, None, "ng/mL", "CSF concentration at the tip",
    "spinal CSF concentration at the site of the first intrathecal dose table (the "
    "catheter tip), interpolated between cell centres", "CSF at the tip")


def _var(name: str) -> results.Variable:
    return TIP_VARIABLE if name == TIP else results.VARIABLES[name]


def _attrs(units: str, long_name: str, description: str) -> dict:
    return {"units": units, "long_name": long_name[:results.LONG_NAME_MAX],
            "description": description}


def summary_of(layout: list, outputs: Any, records: list[dict], duration_min: float
               ) -> Summary:
    """What the kernel keeps of a chunk's observables for ``outputs``
    (:class:`csfmodel.solvers.Summary`): the average over the last ``interval``, the
    time above ``threshold`` (used for the cord rows) and, for morphine, the peak of
    the brain effect site with each scenario's residual half-life."""
    rows = {v: (a, b) for v, a, b in layout}
    effect_row, half_lives = None, 0.0
    if "brain_concentration" in rows and outputs.effects:
        resolved = _effects(records)
        if resolved is not None:
            effect_row = rows["brain_concentration"][0]
            half_lives = np.array([60.0 * r.t_half_brain for r in resolved])
    return Summary(window=_interval(outputs, duration_min),
                   threshold=(float(outputs.threshold) if outputs.threshold is not None
                              and "cord_concentration" in rows else None),
                   effect_row=effect_row, effect_half_life=half_lives)


def _interval(outputs: Any, duration_min: float) -> float:
    """The window (min) of the steady-state averages."""
    return outputs.interval if outputs.interval is not None else min(24 * 60.0, duration_min)


def chunk_variables(summ: np.ndarray, summary: Summary, series: np.ndarray | None,
                    layout: list, outputs: Any, records: list[dict], duration_min: float
                    ) -> dict[str, tuple]:
    """``{name: (dims, values, attrs)}`` of a chunk from the rows of ``summary``
    (``summ`` ``(n, len(summary.rows), n_obs)``: computed by the kernel as it solved,
    :func:`summary_of`) and, with ``outputs.series``, the series ``(n, times, n_obs)``."""
    out: dict[str, tuple] = {}
    tau = _interval(outputs, duration_min)
    row = {name: k for k, name in enumerate(summary.rows)}
    peak_all, area_all = summ[:, row["max"]], summ[:, row["integral"]]
    peak, area = {}, {}
    for v, a, b in layout:
        var = _var(v)
        dims = ("scenario",) + ((var.dim,) if var.dim else ())
        one = slice(a, b) if var.dim else a
        peak[v], area[v] = peak_all[:, a:b], area_all[:, a:b]
        summ_v = {"max": peak_all[:, one], "tmax": summ[:, row["time_of_max"], one] / 60.0,
                  "auc": area_all[:, one] / 60.0, "final": summ[:, row["final"], one]}
        for stat in results.SUMMARIES:
            out[f"{v}_{stat}"] = (dims, summ_v[stat], results._summary_attrs(var, stat))
        out[f"{v}_cavg_ss"] = (dims, summ[:, row["window_mean"], one],
                               _attrs(var.units, f"Cavg,ss of {var.label}",
                                      f"average over the last {tau / 60:g} h of the run "
                                      f"(steady state of a periodic regimen): "
                                      f"{var.description}"))
        if series is not None and v != TIP:
            y = series[:, :, a:b]
            out[v] = results.series(v, y if var.dim else y[:, :, 0], lead=("scenario",))
    rows = {v: (a, b) for v, a, b in layout}
    if "cord_concentration" in rows:
        if summary.threshold is not None:
            thr = summary.threshold
            a, b = rows["cord_concentration"]
            reached = peak["cord_concentration"] >= thr
            out["segment_time_above"] = (("scenario", "segment"),
                                         summ[:, row["time_above"], a:b] / 60.0, _attrs(
                "h", "time above threshold", f"time with the cord concentration (unbound) "
                f"at or above {thr:g} ng/mL (segment_coverage)"))
            out["segment_reached"] = (("scenario", "segment"), reached.astype(np.int8), _attrs(
                "1", f"reaches {thr:g} ng/mL", f"1 if the cord concentration (unbound) of "
                f"the segment reaches {thr:g} ng/mL"))
            out["segments_covered"] = ("scenario", reached.sum(axis=1).astype(np.int32),
                                       _attrs("1", "segments covered", f"number of cord "
                                              f"segments reaching {thr:g} ng/mL"))
        if "brain_concentration" in rows:
            out.update(_selectivity(peak, area, outputs.target))
    if summary.effect_row is not None:
        from csfmodel.effects import respiratory_depression

        ce = summ[:, row["effect_max"], summary.effect_row]
        rd = np.array([float(respiratory_depression(c, r))
                       for c, r in zip(ce, _effects(records))])
        out["respiratory_depression_max"] = ("scenario", rd, _attrs(
            "1", "peak respiratory depression", "largest fractional depression of "
            "ventilation at fixed end-tidal PCO2 over the run (csfmodel.effects, "
            "Dahan 2004)"))
    return out


def _selectivity(peak: dict[str, np.ndarray], area: dict[str, np.ndarray], target: Any
                 ) -> dict[str, tuple]:
    """metrics.selectivity, per scenario: worst target segment : brain ECF (from the
    Cmax and AUC (per min) of the cord segments and the brain)."""
    from csfmodel.anatomy import CORD_SEGMENTS
    from csfmodel.effects import target_segments

    segs = [CORD_SEGMENTS.index(s) for s in target_segments(target, "outputs.target")]
    a_t = area["cord_concentration"][:, segs].min(axis=1)
    c_t = peak["cord_concentration"][:, segs].min(axis=1)
    a_b = area["brain_concentration"][:, 0]
    c_b = peak["brain_concentration"][:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ra = np.where(a_b > 0, a_t / np.where(a_b > 0, a_b, 1.0), np.inf)
        rc = np.where(c_b > 0, c_t / np.where(c_b > 0, c_b, 1.0), np.inf)
    what = "worst target segment" if target is None else f"worst of {target}"
    return {"selectivity_auc_ratio": ("scenario", ra, _attrs(
                "1", "target:brain AUC ratio", f"dorsal-horn AUC ({what}) : brain ECF AUC, "
                "unbound (metrics.selectivity)")),
            "selectivity_cmax_ratio": ("scenario", rc, _attrs(
                "1", "target:brain Cmax ratio", f"dorsal-horn Cmax ({what}) : brain ECF "
                "Cmax, unbound (metrics.selectivity)"))}


def _effects(records: list[dict]) -> list | None:
    """The resolved effect model (:func:`csfmodel.effects.resolve`) of each scenario;
    None if not all are morphine (the drug whose effect model is published)."""
    from csfmodel._effect_inputs import EffectInputs
    from csfmodel.effects import resolve

    if any(r["drug"] != "morphine" for r in records):
        return None
    cache: dict[tuple, Any] = {}
    out = []
    for rec in records:
        key = tuple(float(rec[n]) for n in EffectInputs._RECORD.values())
        if key not in cache:
            cache[key] = resolve(None, EffectInputs(
                drug=rec["drug"], **{f: float(rec[n]) for f, n in EffectInputs._RECORD.items()}))
        out.append(cache[key])
    return out


def observed(outputs: Any) -> tuple[str, ...]:
    """The variables a chunk must observe for ``outputs``."""
    return tuple(v for v in outputs.variables if v in VARIABLES)
