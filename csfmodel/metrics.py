r"""Exposure metrics on any results Dataset or DataArray.

All functions work along the ``time`` dimension of xarray objects (time in h,
as in :func:`csfmodel.simulate` results), keep every other dimension (``z``,
``segment``, ...), and carry units in ``attrs``. Curves are taken as piecewise
linear between samples, so the integrals are exact for such curves (and
second-order accurate for smooth ones).

==========================  ============================================================
metric                      definition
==========================  ============================================================
:func:`auc`                 :math:`\int_{t_0}^{t_1} C\,dt` (trapezoid; window ends
                            interpolated), units ``ng/mL*h``
:func:`cmax`, :func:`tmax`  maximum over the window and the (first) time it occurs
:func:`cavg`                :math:`AUC/(t_1-t_0)`; :func:`cavg_ss` over the last dosing
                            interval of the record (average steady-state concentration)
:func:`time_above`          time with :math:`C \ge` threshold (crossings interpolated)
:func:`segment_coverage`    per cord segment: does the dorsal-horn concentration reach a
                            threshold, for how long, and the covered range of segments
:func:`supraspinal`         brain ECF AUC, Cmax and Tmax (plus cisternal CSF and plasma)
:func:`selectivity`         target (dorsal horn at the target segments) : brain ratios of
                            AUC and Cmax
:func:`summary`             all of the above in one Dataset
==========================  ============================================================

Thresholds and window limits may be numbers (ng/mL, h) or strings with units
(``"100 ng/mL"``, ``"30 min"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from csfmodel.errors import ScenarioError

__all__ = [
    "auc",
    "cmax",
    "tmax",
    "cavg",
    "cavg_ss",
    "time_above",
    "segment_coverage",
    "supraspinal",
    "selectivity",
    "summary",
]


# ---------------------------------------------------------------- helpers
def _hours(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        from csfmodel.units import convert

        return convert(value, "min", key) / 60.0
    return float(value)


def _ng_per_ml(value: Any, key: str) -> float:
    if isinstance(value, str):
        from csfmodel.units import convert

        return convert(value, "ug/mL", key) * 1000.0
    v = float(value)
    if not np.isfinite(v):
        raise ScenarioError(key, value, "a finite concentration such as '100 ng/mL'")
    return v


def _window(da: xr.DataArray, start: Any, stop: Any, dim: str
            ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Time (h) and values (time first) restricted to [start, stop], ends interpolated."""
    t = np.asarray(da[dim].values, float)
    y = np.asarray(da.transpose(dim, ...).values, float)
    t0 = t[0] if start is None else _hours(start, "start")
    t1 = t[-1] if stop is None else _hours(stop, "stop")
    if not (t[0] - 1e-9 <= t0 < t1 <= t[-1] + 1e-9):
        raise ScenarioError("window", f"{t0:g}-{t1:g} h",
                            f"a window within the results, {t[0]:g}-{t[-1]:g} h, start < stop")
    t0, t1 = max(t0, t[0]), min(t1, t[-1])

    def at(x: float) -> np.ndarray:
        k = int(np.clip(np.searchsorted(t, x, side="right") - 1, 0, len(t) - 2))
        w = (x - t[k]) / (t[k + 1] - t[k]) if t[k + 1] > t[k] else 0.0
        return (1 - w) * y[k] + w * y[k + 1]

    inner = (t > t0) & (t < t1)
    tw = np.concatenate([[t0], t[inner], [t1]])
    yw = np.concatenate([at(t0)[None], y[inner], at(t1)[None]], axis=0)
    return tw, yw, t0, t1


def _wrap(da: xr.DataArray, values: np.ndarray, dim: str, units: str, long_name: str,
          **attrs: Any) -> xr.DataArray:
    template = da.transpose(dim, ...).isel({dim: 0}, drop=True)
    out = template.copy(data=np.asarray(values))
    out.attrs = {"units": units, "long_name": long_name, **attrs}
    return out


def _u(da: xr.DataArray) -> str:
    return da.attrs.get("units", "1")


def _name(da: xr.DataArray) -> str:
    return da.attrs.get("long_name", str(da.name))


# ---------------------------------------------------------------- metrics
def auc(da: xr.DataArray, start: Any = None, stop: Any = None, dim: str = "time"
        ) -> xr.DataArray:
    """Area under the curve over ``[start, stop]`` (h; default the whole record)."""
    t, y, t0, t1 = _window(da, start, stop, dim)
    return _wrap(da, np.trapezoid(y, t, axis=0), dim, f"{_u(da)}*h",
                 f"AUC of {_name(da)}", window_h=[t0, t1])


def cmax(da: xr.DataArray, start: Any = None, stop: Any = None, dim: str = "time"
         ) -> xr.DataArray:
    """Maximum over the window."""
    t, y, t0, t1 = _window(da, start, stop, dim)
    return _wrap(da, y.max(axis=0), dim, _u(da), f"Cmax of {_name(da)}", window_h=[t0, t1])


def tmax(da: xr.DataArray, start: Any = None, stop: Any = None, dim: str = "time"
         ) -> xr.DataArray:
    """Time (h) of the first maximum within the window."""
    t, y, t0, t1 = _window(da, start, stop, dim)
    return _wrap(da, t[np.argmax(y, axis=0)], dim, "h", f"Tmax of {_name(da)}",
                 window_h=[t0, t1])


def cavg(da: xr.DataArray, start: Any = None, stop: Any = None, dim: str = "time"
         ) -> xr.DataArray:
    """Time-average concentration ``AUC / (stop - start)`` over the window."""
    t, y, t0, t1 = _window(da, start, stop, dim)
    return _wrap(da, np.trapezoid(y, t, axis=0) / (t1 - t0), dim, _u(da),
                 f"average of {_name(da)}", window_h=[t0, t1])


def cavg_ss(da: xr.DataArray, interval: Any, dim: str = "time") -> xr.DataArray:
    """Average over the last dosing ``interval`` of the record (h or "12 h").

    At steady state of a periodic regimen this is :math:`C_{avg,ss}`; for the
    plateau of an infusion computed without integrating, see
    :func:`csfmodel.steady_state.plateau`.
    """
    tau = _hours(interval, "interval")
    t_end = float(da[dim].values[-1])
    if not tau or tau <= 0 or tau > t_end - float(da[dim].values[0]) + 1e-9:
        raise ScenarioError("interval", interval,
                            "a positive dosing interval no longer than the record")
    out = cavg(da, t_end - tau, t_end, dim)
    out.attrs["long_name"] = f"average over the last dosing interval of {_name(da)}"
    return out


def _time_above(t: np.ndarray, y: np.ndarray, thr: float) -> np.ndarray:
    dt = np.diff(t).reshape((-1,) + (1,) * (y.ndim - 1))
    a, b = y[:-1], y[1:]
    above_a, above_b = a >= thr, b >= thr
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(b != a, (thr - a) / (b - a), 0.0)
    part = np.where(above_a & above_b, dt,
                    np.where(above_a, frac * dt, np.where(above_b, (1.0 - frac) * dt, 0.0)))
    return part.sum(axis=0)


def time_above(da: xr.DataArray, threshold: Any, start: Any = None, stop: Any = None,
               dim: str = "time") -> xr.DataArray:
    """Time (h) with the concentration at or above ``threshold`` (ng/mL or with units)."""
    thr = _ng_per_ml(threshold, "threshold")
    t, y, t0, t1 = _window(da, start, stop, dim)
    return _wrap(da, _time_above(t, y, thr), dim, "h",
                 f"time above {thr:g} ng/mL of {_name(da)}", threshold_ng_per_ml=thr,
                 window_h=[t0, t1])


def segment_coverage(ds: xr.Dataset, threshold: Any, start: Any = None, stop: Any = None,
                     variable: str = "cord_concentration") -> xr.Dataset:
    """Coverage along the spine: which cord segments reach ``threshold``, and how long.

    Returns a Dataset over ``segment`` with ``reached`` (bool), ``time_above``
    (h), ``cmax`` and ``tmax``; ``attrs["covered"]`` names the covered
    segments as ranges (e.g. ``"T11-S5"``).
    """
    thr = _ng_per_ml(threshold, "threshold")
    da = ds[variable]
    mx = cmax(da, start, stop)
    out = xr.Dataset({
        "reached": (mx >= thr).assign_attrs(units="1", long_name=f"reaches {thr:g} ng/mL"),
        "time_above": time_above(da, thr, start, stop),
        "cmax": mx,
        "tmax": tmax(da, start, stop),
    })
    segs = [str(s) for s in ds.segment.values]
    out.attrs = {"threshold_ng_per_ml": thr, "variable": variable,
                 "covered": _ranges(segs, np.asarray(out.reached.values, bool)),
                 "n_covered": int(np.asarray(out.reached.values).sum())}
    return out


def _ranges(names: list[str], mask: np.ndarray) -> str:
    out, k = [], 0
    while k < len(names):
        if mask[k]:
            j = k
            while j + 1 < len(names) and mask[j + 1]:
                j += 1
            out.append(names[k] if j == k else f"{names[k]}-{names[j]}")
            k = j + 1
        else:
            k += 1
    return ", ".join(out) if out else "none"


def supraspinal(ds: xr.Dataset, start: Any = None, stop: Any = None) -> xr.Dataset:
    """Supraspinal exposure: brain ECF (unbound) AUC, Cmax, Tmax; cisternal CSF and plasma."""
    out = {}
    for key, var in (("brain", "brain_concentration"),
                     ("cisternal_csf", "cisternal_csf_concentration"),
                     ("plasma", "plasma_concentration")):
        da = ds[var]
        out[f"{key}_auc"] = auc(da, start, stop)
        out[f"{key}_cmax"] = cmax(da, start, stop)
        out[f"{key}_tmax"] = tmax(da, start, stop)
    return xr.Dataset(out)


def selectivity(ds: xr.Dataset, target: Any = None, start: Any = None, stop: Any = None
                ) -> xr.Dataset:
    """Target-to-brain selectivity: dorsal horn (target segments) : brain ECF, unbound.

    ``target`` is a cord segment, a range ("T8-L1") or a list; None = all
    segments. The target value is that of the worst-covered target segment
    (lowest AUC), and the mean over the target segments is given as well.
    """
    from csfmodel.effects import target_segments

    segs = target_segments(target)
    cord = ds.cord_concentration.sel(segment=segs)
    a_t = auc(cord, start, stop)
    c_t = cmax(cord, start, stop)
    a_b = auc(ds.brain_concentration, start, stop)
    c_b = cmax(ds.brain_concentration, start, stop)

    def ratio(a, b, name):
        with np.errstate(divide="ignore", invalid="ignore"):
            v = float(a) / float(b) if float(b) > 0 else float("inf")
        return xr.DataArray(v, attrs={"units": "1", "long_name": name})

    out = xr.Dataset({
        "target_auc": a_t.min("segment").assign_attrs(a_t.attrs),
        "target_auc_mean": a_t.mean("segment").assign_attrs(a_t.attrs),
        "auc_ratio": ratio(a_t.min("segment"), a_b,
                           "target dorsal-horn AUC : brain ECF AUC (worst target segment)"),
        "cmax_ratio": ratio(c_t.min("segment"), c_b,
                            "target dorsal-horn Cmax : brain ECF Cmax (worst target segment)"),
    })
    out.attrs["target_segments"] = ",".join(segs)
    return out


def summary(ds: xr.Dataset, threshold: Any = None, target: Any = None, start: Any = None,
            stop: Any = None, interval: Any = None) -> dict[str, Any]:
    """Every metric as a nested dict of plain numbers (for tables and JSON)."""
    rows = {}
    series = {"spinal CSF (max over z)": ds.csf_concentration.max("z"),
              "cisternal CSF": ds.cisternal_csf_concentration,
              "brain ECF (unbound)": ds.brain_concentration,
              "plasma (total)": ds.plasma_concentration}
    from csfmodel.effects import target_segments

    segs = target_segments(target) if target is not None else None
    if segs is not None:
        series["target dorsal horn (worst)"] = ds.cord_concentration.sel(segment=segs).min(
            "segment")
    thr = _ng_per_ml(threshold, "threshold") if threshold is not None else None
    for name, da in series.items():
        da = da.assign_attrs(units="ng/mL")
        row = {"auc_ng_h_per_ml": float(auc(da, start, stop)),
               "cmax_ng_per_ml": float(cmax(da, start, stop)),
               "tmax_h": float(tmax(da, start, stop)),
               "cavg_ng_per_ml": float(cavg(da, start, stop))}
        if interval is not None:
            row["cavg_ss_ng_per_ml"] = float(cavg_ss(da, interval))
        if thr is not None:
            row["time_above_h"] = float(time_above(da, thr, start, stop))
        rows[name] = row
    out: dict[str, Any] = {"series": rows}
    if thr is not None:
        cov = segment_coverage(ds, thr, start, stop)
        out["coverage"] = {"threshold_ng_per_ml": thr, "covered": cov.attrs["covered"],
                           "n_covered": cov.attrs["n_covered"],
                           "time_above_h": {str(s): float(v) for s, v in
                                            zip(ds.segment.values, cov.time_above.values)}}
    sel = selectivity(ds, target, start, stop)
    out["selectivity"] = {"target_segments": sel.attrs["target_segments"],
                          "auc_ratio": float(sel.auc_ratio), "cmax_ratio": float(sel.cmax_ratio)}
    return out
