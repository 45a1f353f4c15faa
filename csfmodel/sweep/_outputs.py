"""Per-scenario outputs of a sweep chunk, computed where the chunk was solved.

From the time series of a chunk's observables ``(scenarios, times, rows)`` (the batch
kernel's output on the worker) this module computes, vectorised over the chunk:

- per variable (and the CSF at the catheter tip): Cmax, Tmax, AUC and final value
  (the same definitions and attrs as :func:`csfmodel.results.summaries`) and the
  average over the last ``interval`` (:func:`csfmodel.metrics.cavg_ss`);
- per cord segment: the time at or above ``threshold`` and whether it is reached
  (:func:`csfmodel.metrics.segment_coverage`), and the number of segments reaching it;
- target:brain selectivity, AUC and Cmax ratios of the worst target segment
  (:func:`csfmodel.metrics.selectivity`);
- the peak respiratory depression (:func:`csfmodel.effects.effects` on the brain
  ECF concentration, morphine's published effect model).

Each is the definition of the module cited (tests compare them with it on single runs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from csfmodel import results
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


def _trapezoid(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """AUC along axis 1, in the batch kernel's order of summation (h)."""
    return np.trapezoid(y, t, axis=1)


#: scenarios reduced at a time: every output is per scenario, and the time series of a
#: few scenarios (with the temporaries of the reductions) stay in the CPU caches, where a
#: whole chunk's would not (2.7x faster for chunks of 256 at 5 mm over 7 days)
_BLOCK = 8


def chunk_variables(values: np.ndarray, t_min: np.ndarray, layout: list, outputs: Any,
                    records: list[dict], duration_min: float) -> dict[str, tuple]:
    """``{name: (dims, values, attrs)}`` of a chunk (``values`` ``(n, times, rows)``),
    computed :data:`_BLOCK` scenarios at a time (the effect model, a recursion along
    time, for the whole chunk at once)."""
    n = values.shape[0]
    parts = [_chunk_variables(values[a:a + _BLOCK], t_min, layout, outputs,
                              duration_min) for a in range(0, n, _BLOCK)]
    out = parts[0] if len(parts) == 1 else {
        k: (dims, np.concatenate([p[k][1] for p in parts]), attrs)
        for k, (dims, _, attrs) in parts[0].items()}
    brain = [(a, b) for v, a, b in layout if v == "brain_concentration"]
    if brain and outputs.effects:
        rd = _respiratory_depression(values[:, :, brain[0][0]], np.asarray(t_min, float) / 60.0,
                                     records)
        if rd is not None:
            out["respiratory_depression_max"] = ("scenario", rd, _attrs(
                "1", "peak respiratory depression", "largest fractional depression of "
                "ventilation at fixed end-tidal PCO2 over the run (csfmodel.effects, "
                "Dahan 2004)"))
    return out


def _chunk_variables(values: np.ndarray, t_min: np.ndarray, layout: list, outputs: Any,
                     duration_min: float) -> dict[str, tuple]:
    """:func:`chunk_variables` of a few scenarios, but the effect model."""
    t_h = np.asarray(t_min, float) / 60.0
    out: dict[str, tuple] = {}
    block = {v: values[:, :, a:b] for v, a, b in layout}
    tau = outputs.interval if outputs.interval is not None else min(24 * 60.0, duration_min)
    t0 = t_h[-1] - tau / 60.0
    peak, area = {}, {}
    for v, y in block.items():
        var = _var(v)
        dims = ("scenario",) + ((var.dim,) if var.dim else ())
        peak[v], area[v] = y.max(axis=1), np.trapezoid(y, t_min, axis=1)
        summ = np.stack([peak[v], t_min[np.argmax(y, axis=1)], area[v], y[:, -1]], axis=1)
        for stat, (row, _) in results.SUMMARIES.items():
            s = summ[:, row, :] if var.dim else summ[:, row, 0]
            if stat in ("tmax", "auc"):
                s = s / 60.0
            out[f"{v}_{stat}"] = (dims, s, results._summary_attrs(var, stat))
        out[f"{v}_cavg_ss"] = (dims, _cavg(y, t_h, t0) if var.dim else _cavg(y, t_h, t0)[:, 0],
                               _attrs(var.units, f"Cavg,ss of {var.label}",
                                      f"average over the last {tau / 60:g} h of the run "
                                      f"(steady state of a periodic regimen): "
                                      f"{var.description}"))
        if outputs.series and v != TIP:
            out[v] = results.series(v, y if var.dim else y[:, :, 0], lead=("scenario",))
    if "cord_concentration" in block:
        cord = block["cord_concentration"]
        if outputs.threshold is not None:
            from csfmodel.metrics import _time_above

            thr = outputs.threshold
            # columns that never reach the threshold spend no time above it: the
            # definition is evaluated on the others only (the same sums, column by column)
            reach = peak["cord_concentration"] >= thr
            above = np.zeros(reach.shape)
            if reach.any():
                above[reach] = _time_above(t_h, cord.transpose(1, 0, 2)[:, reach], thr)
            out["segment_time_above"] = (("scenario", "segment"), above, _attrs(
                "h", "time above threshold", f"time with the cord concentration (unbound) "
                f"at or above {thr:g} ng/mL (segment_coverage)"))
            reached = reach
            out["segment_reached"] = (("scenario", "segment"), reached.astype(np.int8), _attrs(
                "1", f"reaches {thr:g} ng/mL", f"1 if the cord concentration (unbound) of "
                f"the segment reaches {thr:g} ng/mL"))
            out["segments_covered"] = ("scenario", reached.sum(axis=1).astype(np.int32),
                                       _attrs("1", "segments covered", f"number of cord "
                                              f"segments reaching {thr:g} ng/mL"))
        if "brain_concentration" in block:
            out.update(_selectivity(peak, area, outputs.target))
    return out


def _cavg(y: np.ndarray, t_h: np.ndarray, t0: float) -> np.ndarray:
    """Average of ``y`` (``(n, times, rows)``) over ``[t0, t_end]`` (metrics.cavg)."""
    import xarray as xr

    from csfmodel.metrics import cavg

    da = xr.DataArray(np.moveaxis(y, 1, 0), dims=("time", "scenario", "row"),
                      coords={"time": t_h})
    return np.asarray(cavg(da, t0, None).values)


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


def _respiratory_depression(brain: np.ndarray, t_h: np.ndarray, records: list[dict]
                            ) -> np.ndarray | None:
    """Peak of effects.respiratory_depression per scenario; None if not morphine."""
    from csfmodel._effect_inputs import EffectInputs
    from csfmodel.effects import _filter, resolve, respiratory_depression

    if any(r["drug"] != "morphine" for r in records):
        return None
    out = np.empty(len(records))
    groups: dict[tuple, list[int]] = {}
    for i, rec in enumerate(records):
        key = tuple(sorted((k, v) for k, v in rec.items() if k != "catheter_sites_cm"))
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        rec = records[members[0]]
        r = resolve(None, EffectInputs(
            drug=rec["drug"], **{f: float(rec[n]) for f, n in EffectInputs._RECORD.items()}))
        # the scenarios with the same effect inputs filtered together (along time)
        ce = _filter(np.ascontiguousarray(brain[members].T), t_h, r.t_half_brain)
        out[members] = np.max(respiratory_depression(ce, r), axis=0)
    return out


def observed(outputs: Any) -> tuple[str, ...]:
    """The variables a chunk must observe for ``outputs``."""
    return tuple(v for v in outputs.variables if v in VARIABLES)
