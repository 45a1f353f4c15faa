"""Figures of a population: prediction bands (visual-predictive-check style) with the
observed spread of calibration rows beside them, and the tip x rate map of target
attainment. Written only where the caller gives a path (:func:`csfmodel._io.save_figure`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from csfmodel.errors import ScenarioError

__all__ = ["plot_bands", "plot_pta_map", "observed_spread", "SITE_OF_ROW"]

#: calibration ``sample_site`` -> the band it is drawn beside (a CSF level, or a variable)
SITE_OF_ROW = {"lumbar CSF": ("csf", "L3-L4"), "T10 CSF": ("csf", "T10"),
               "plasma": ("plasma", None)}


def observed_spread(row) -> tuple[float, float, str]:
    """(low, high, what) of a calibration row's published spread: mean +- SD (or SEM, as
    the row's note says) or the range."""
    if row.spread_range is not None:
        return row.spread_range[0], row.spread_range[1], "range"
    if row.spread is None:
        raise ScenarioError("observed", row.id, "a calibration row with a spread (SD, SEM or "
                            "range)")
    what = "SEM" if "SEM" in row.note else "SD"
    return row.value - row.spread, row.value + row.spread, what


def _panels(pop: xr.Dataset) -> list[tuple[str, str, Any]]:
    out = []
    if "csf_band" in pop:
        out += [("csf_band", f"CSF {lv}", {"level": lv}) for lv in pop.level.values]
    if "cisternal_csf_band" in pop:
        out.append(("cisternal_csf_band", "cisternal CSF", {}))
    if "cord_band" in pop:
        out += [("cord_band", f"dorsal horn {s}", {"segment": s}) for s in pop.segment.values]
    out += [(v, t, {}) for v, t in (("brain_band", "brain ECF (unbound)"),
                                     ("plasma_band", "plasma")) if v in pop]
    return out


def plot_bands(pop: xr.Dataset, observed: Sequence[str] = (), log: bool = True):
    """Prediction bands: median, 25-75 % and 5-95 % of the patients, one panel per site.

    Parameters
    ----------
    pop
        Results of :func:`csfmodel.population.population`.
    observed
        Ids of calibration rows (``csfmodel/data/calibration.csv``) with a spread, drawn
        at their time beside the predicted 5-95 % at that time, in the panel of their
        sampling site. Only meaningful when ``pop`` simulates that study's design.
    log
        Logarithmic concentration axes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from csfmodel.plotting import _plt
    from csfmodel.validation import load_rows

    plt = _plt()
    panels = _panels(pop)
    rows = {r.id: r for r in load_rows()}
    for rid in observed:
        if rid not in rows:
            raise ScenarioError("observed", rid, "a row id of the calibration table, e.g. "
                                "nordberg84_lumbar_1h_025")
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow), squeeze=False,
                             constrained_layout=True)
    t = pop.band_time.values
    for ax, (var, title, sel) in zip(axes.flat, panels):
        q = pop[var].sel(sel) if sel else pop[var]
        p = {float(k): q.sel(quantile=k).values for k in pop["quantile"].values}
        ax.fill_between(t, p[5.0], p[95.0], color="tab:blue", alpha=0.18, lw=0,
                        label="5-95 %")
        ax.fill_between(t, p[25.0], p[75.0], color="tab:blue", alpha=0.35, lw=0,
                        label="25-75 %")
        ax.plot(t, p[50.0], color="tab:blue", lw=1.5, label="median")
        for rid in observed:
            row = rows[rid]
            site = SITE_OF_ROW.get(row.sample_site)
            here = site is not None and (var == f"{site[0]}_band") and (
                site[1] is None or sel.get("level") == site[1])
            if not here or row.measure != "concentration" or row.time_h is None:
                continue
            lo, hi, what = observed_spread(row)
            k = int(np.argmin(np.abs(t - row.time_h)))
            dx = 0.02 * (t[-1] - t[0])
            ax.errorbar([row.time_h + dx], [row.value], yerr=[[row.value - lo], [hi - row.value]],
                        fmt="o", color="tab:red", ms=4, capsize=3,
                        label=f"{row.study.split(' ')[0]} {row.study.split(' ')[1]} "
                              f"mean +- {what}")
            ax.errorbar([t[k] - dx], [p[50.0][k]], yerr=[[p[50.0][k] - p[5.0][k]],
                                                         [p[95.0][k] - p[50.0][k]]],
                        fmt="s", color="tab:blue", ms=4, capsize=3,
                        label="predicted median, 5-95 %")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("time (h)")
        ax.set_ylabel(f"concentration ({pop[var].attrs.get('units', 'ng/mL')})")
        if log and np.nanmax(p[95.0]) > 0:
            ax.set_yscale("log")
            top = float(np.nanmax(p[95.0]))
            ax.set_ylim(top * 1e-4, top * 2.0)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{pop.sizes['patient']} virtual patients (seed {pop.attrs.get('population_seed')}"
                 "): prediction bands", fontsize=11)
    return fig


def plot_pta_map(pta: xr.Dataset):
    """Heat maps over catheter tip x infusion rate: the fraction attaining the target,
    the fraction at respiratory risk, and the fraction attaining it safely.

    Parameters
    ----------
    pta
        Results of :func:`csfmodel.population.pta_map`.
    """
    from csfmodel.plotting import _plt

    plt = _plt()
    names = [("pta", "attains the target"), ("p_respiratory", "respiratory risk"),
             ("p_attained_safely", "attains it safely")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.5 * pta.sizes["tip"] + 2.5),
                             constrained_layout=True)
    rates = pta.rate.values
    for ax, (var, title) in zip(axes, names):
        v = pta[var].transpose("tip", "rate").values
        im = ax.imshow(v, vmin=0, vmax=1, cmap="RdYlGn_r" if var == "p_respiratory"
                       else "RdYlGn", aspect="auto", origin="upper")
        for i in range(v.shape[0]):
            for j in range(v.shape[1]):
                ax.text(j, i, f"{100 * v[i, j]:.0f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(rates)), [f"{r:g}" for r in rates])
        ax.set_yticks(range(pta.sizes["tip"]), [str(x) for x in pta.tip.values])
        ax.set_xlabel("infusion rate (mg/day)")
        ax.set_ylabel("catheter tip")
        ax.set_title(f"% of patients: {title}", fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)
    risk = pta.attrs.get("respiratory_threshold_basis", pta.attrs.get("respiratory_threshold"))
    fig.suptitle(f"target {pta.attrs.get('target_segments', '')}: analgesia >= "
                 f"{pta.attrs.get('analgesia_level')} over the window\nrespiratory depression "
                 f"> {risk} counts as risk "
                 f"({pta.attrs.get('patients')} patients per cell)", fontsize=10)
    return fig
