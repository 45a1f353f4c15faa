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

import numba
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


@numba.njit(cache=True, nogil=True)
def _reduce(values: np.ndarray, dt_min: np.ndarray, dt_h: np.ndarray, win: np.ndarray,
            dtw: np.ndarray, thr: float, cord_a: int, cord_b: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Peak, index of the peak, AUC (per min), window average and time above ``thr``
    (h, rows ``[cord_a, cord_b)``) of ``values`` ``(n, times, rows)``.

    The definitions of :mod:`csfmodel.metrics` term by term: the first index of the
    peak (``argmax``; a NaN, which makes the AUC NaN, is found again in a second pass
    over that column only), trapezoids ``dt / 2 * (y[i+1] + y[i])`` (the same number
    as ``dt * (y[i+1] + y[i]) / 2``: halving is exact), the window ``[t0, t_end]``
    with its ends interpolated linearly (``metrics.cavg``: ``win`` = ``(k0, w0, k1,
    w1, first inner, end inner)``, ``dtw`` its steps in h, last entry the window's
    length) and the crossings of ``metrics._time_above`` (a column whose samples all
    stay below ``thr`` contributes 0 without a pass).
    """
    n, m, r = values.shape
    peak = np.empty((n, r))
    arg = np.zeros((n, r), np.int64)
    area = np.zeros((n, r))
    avg = np.empty((n, r))
    above = np.zeros((n, max(cord_b - cord_a, 0)))
    k0, k1, ia, ib = int(win[0]), int(win[2]), int(win[4]), int(win[5])
    w0, w1 = win[1], win[3]
    half = dt_min / 2.0
    for s in range(n):
        v = values[s]
        p, a_s, acc = peak[s], arg[s], area[s]
        for j in range(r):
            p[j] = v[0, j]
        for i in range(1, m):
            h = half[i - 1]
            for j in range(r):
                y = v[i, j]
                if y > p[j]:
                    p[j] = y
                    a_s[j] = i
                acc[j] += h * (y + v[i - 1, j])
        for j in range(r):
            if acc[j] != acc[j]:                # a NaN: argmax semantics (first NaN)
                p[j], a_s[j] = v[0, j], 0
                for i in range(1, m):
                    y, q = v[i, j], p[j]
                    if y > q or (y != y and q == q):
                        p[j], a_s[j] = y, i
        # time above: along time in the outer loop (the samples of a time are contiguous),
        # each column's sum in the same order as a column-by-column pass; the crossing
        # fraction is computed at crossings only (a division per sample cost more than
        # the rest of the reduction)
        ab = above[s]
        for i in range(1, m):
            d = dt_h[i - 1]
            for j in range(cord_a, cord_b):
                if p[j] < thr:                  # never reaches it (a NaN peak does not skip)
                    continue
                a, b = v[i - 1, j], v[i, j]
                if a >= thr:
                    if b >= thr:
                        ab[j - cord_a] += d
                    else:
                        frac = (thr - a) / (b - a) if b != a else 0.0
                        ab[j - cord_a] += frac * d
                elif b >= thr:
                    frac = (thr - a) / (b - a) if b != a else 0.0
                    ab[j - cord_a] += (1.0 - frac) * d
        for j in range(r):
            prev = (1 - w0) * v[k0, j] + w0 * v[k0 + 1, j]
            ac = 0.0
            for q in range(ia, ib):
                y = v[q, j]
                ac += dtw[q - ia] * (y + prev) / 2.0
                prev = y
            last = (1 - w1) * v[k1, j] + w1 * v[k1 + 1, j]
            ac += dtw[ib - ia] * (last + prev) / 2.0
            avg[s, j] = ac / dtw[-1]
    return peak, arg, area, avg, above


def _window(t_h: np.ndarray, t0: float) -> tuple[np.ndarray, np.ndarray]:
    """``metrics._window`` of ``[t0, t_end]`` for :func:`_reduce`: interpolation indices
    and weights of the ends, the inner samples, the steps (and the length last)."""
    t1 = t_h[-1]
    t0 = max(t0, t_h[0])

    def at(x: float) -> tuple[int, float]:
        k = int(np.clip(np.searchsorted(t_h, x, side="right") - 1, 0, len(t_h) - 2))
        return k, (x - t_h[k]) / (t_h[k + 1] - t_h[k]) if t_h[k + 1] > t_h[k] else 0.0

    inner = np.flatnonzero((t_h > t0) & (t_h < t1))
    ia, ib = (int(inner[0]), int(inner[-1]) + 1) if len(inner) else (0, 0)
    tw = np.concatenate([[t0], t_h[ia:ib], [t1]])
    return (np.array([*at(t0), *at(t1), ia, ib], float),
            np.append(np.diff(tw), t1 - t0))


def chunk_variables(values: np.ndarray, t_min: np.ndarray, layout: list, outputs: Any,
                    records: list[dict], duration_min: float) -> dict[str, tuple]:
    """``{name: (dims, values, attrs)}`` of a chunk (``values`` ``(n, times, rows)``):
    the reductions along time in one compiled pass over the chunk (:func:`_reduce`),
    the effect model (a recursion along time) for the whole chunk at once."""
    t_min = np.asarray(t_min, float)
    t_h = t_min / 60.0
    out: dict[str, tuple] = {}
    tau = outputs.interval if outputs.interval is not None else min(24 * 60.0, duration_min)
    rows = {v: (a, b) for v, a, b in layout}
    cord = rows.get("cord_concentration", (0, 0)) if outputs.threshold is not None else (0, 0)
    thr = float(outputs.threshold) if outputs.threshold is not None else np.inf
    win, dtw = _window(t_h, t_h[-1] - tau / 60.0)
    values = np.ascontiguousarray(values, dtype=float)
    peak_all, arg, area_all, avg, above = _reduce(values, np.diff(t_min), np.diff(t_h), win,
                                                  dtw, thr, cord[0], cord[1])
    peak, area = {}, {}
    for v, a, b in layout:
        var = _var(v)
        dims = ("scenario",) + ((var.dim,) if var.dim else ())
        one = slice(a, b) if var.dim else a
        peak[v], area[v] = peak_all[:, a:b], area_all[:, a:b]
        summ = {"max": peak_all[:, one], "tmax": t_min[arg[:, one]] / 60.0,
                "auc": area_all[:, one] / 60.0, "final": values[:, -1, one]}
        for stat in results.SUMMARIES:
            out[f"{v}_{stat}"] = (dims, summ[stat], results._summary_attrs(var, stat))
        out[f"{v}_cavg_ss"] = (dims, avg[:, one],
                               _attrs(var.units, f"Cavg,ss of {var.label}",
                                      f"average over the last {tau / 60:g} h of the run "
                                      f"(steady state of a periodic regimen): "
                                      f"{var.description}"))
        if outputs.series and v != TIP:
            y = values[:, :, a:b]
            out[v] = results.series(v, y if var.dim else y[:, :, 0], lead=("scenario",))
    if "cord_concentration" in rows:
        if outputs.threshold is not None:
            reached = peak["cord_concentration"] >= thr
            out["segment_time_above"] = (("scenario", "segment"), above, _attrs(
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
    if "brain_concentration" in rows and outputs.effects:
        rd = _respiratory_depression(values[:, :, rows["brain_concentration"][0]], t_h,
                                     records)
        if rd is not None:
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
