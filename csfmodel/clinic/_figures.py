"""The figures of :mod:`csfmodel.clinic`: the reservoir, the rescue doses, the start rate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._pump import ReservoirReport
    from ._rescue import RescueComparison
    from ._start_rate import StartRate

_COLORS = {"pump bolus": "tab:blue", "oral IR": "tab:orange", "IV bolus": "tab:red"}


def _plt(path):
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path | None):
    if path is not None:
        from csfmodel._io import save_figure

        save_figure(fig, path, dpi=120, close=False)
    return fig


def plot_reservoir(rep: ReservoirReport, path: str | Path | None = None):
    """Volume left over time (calendar dates when the pump has a start), the alarm
    volume, each fill, the alarm and empty dates, and the projection beyond the scenario."""
    plt = _plt(path)
    pump = rep.course.pump
    last = rep.course.periods[-1]
    end = max(rep.scenario.simulation.duration,
              (last.empty_time if last.empty_time is not None else last.start) * 1.02)
    t = np.linspace(0.0, end, 2000)
    fills = sorted({p.start for p in rep.course.periods} | {p.end for p in rep.course.periods
                                                            if p.refilled})
    t = np.unique(np.concatenate([t, fills, np.array(fills) - 1e-6]))
    t = t[(t >= 0) & (t <= end)]
    vol = rep.course.volume(t)

    def x(v):
        v = np.asarray(v, float)
        if pump.start is None:
            return v / 1440.0
        import datetime as dt

        return np.array([pump.start + dt.timedelta(minutes=float(m)) for m in np.ravel(v)])

    fig, ax = plt.subplots(figsize=(10, 4.5))
    inside = t <= rep.scenario.simulation.duration
    ax.plot(x(t[inside]), vol[inside], color="tab:blue", lw=2, label="reservoir volume")
    if (~inside).any():
        ax.plot(x(t[~inside]), vol[~inside], color="tab:blue", lw=1.5, ls="--",
                label="projected beyond the scenario")
    ax.axhline(pump.alarm, color="tab:red", ls=":", lw=1.2,
               label=f"low-reservoir alarm ({pump.alarm:g} mL)")
    for f in rep.fills:
        if f.alarm_day is not None:
            ax.plot(x([f.alarm_day * 1440.0]), [pump.alarm], "v", color="tab:red", ms=9)
            ax.annotate(f"alarm {f.alarm_date.split()[0]}", (x([f.alarm_day * 1440.0])[0],
                        pump.alarm), textcoords="offset points", xytext=(0, 10),
                        ha="center", fontsize=8, color="tab:red")
        if f.refill_day is not None:
            ax.axvline(x([f.refill_day * 1440.0])[0], color="0.6", lw=1)
            ax.annotate(f"refill {f.residual_at_refill_ml:.1f} mL left",
                        (x([f.refill_day * 1440.0])[0], pump.reservoir * 0.98),
                        rotation=90, va="top", ha="right", fontsize=8, color="0.3")
    for f in rep.fills:
        ax.annotate(f"{f.concentration_mg_per_ml:g} mg/mL", (x([f.start_day * 1440.0])[0],
                    f.volume_ml), textcoords="offset points", xytext=(4, -14), fontsize=8)
    ax.set_ylim(0, pump.reservoir * 1.05)
    ax.set_ylabel("reservoir volume (mL)")
    ax.set_xlabel("date" if pump.start is not None else "day")
    nxt = rep.next_refill
    title = f"{rep.scenario.drug.name} pump, {pump.reservoir:g} mL reservoir"
    if nxt.alarm_day is not None:
        title += (f": next refill due {nxt.alarm_date.split()[0]} "
                  f"({nxt.days_to_alarm:.0f} days of therapy per fill)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    fig.autofmt_xdate() if pump.start is not None else None
    fig.tight_layout()
    return _save(fig, path)


def plot_rescue(res: RescueComparison, path: str | Path | None = None):
    """Left: the gain in analgesia of each rescue over time, onset (circle) and peak
    (triangle); right: minutes to onset and to peak, one bar each."""
    plt = _plt(path)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5),
                                 gridspec_kw={"width_ratios": [1.6, 1]})
    t = res.time_h
    for r in res.results:
        c = _COLORS.get(r.route, None)
        ax.plot(t, r.gain, color=c, lw=2, label=f"{r.route} {r.dose_mg:.3g} mg ({r.basis})")
        on = np.interp(r.onset_min / 60.0, t, r.gain)
        ax.plot(r.onset_min / 60.0, on, "o", color=c, ms=8)
        ax.plot(r.peak_min / 60.0, r.peak_gain, "^", color=c, ms=9)
    ax.set_xlabel("time after the rescue dose (h)")
    ax.set_ylabel("gain in analgesia (fraction of max)")
    ax.set_title(f"rescue doses, target {res.settings['target']}, pump at "
                 f"{res.settings['site']} ({res.settings['basal']} beneath)")
    ax.legend(fontsize=8)
    y = np.arange(len(res.results))
    onset = [r.onset_min for r in res.results]
    peak = [r.peak_min for r in res.results]
    bx.barh(y + 0.2, onset, 0.4, color=[_COLORS.get(r.route) for r in res.results],
            label=f"onset ({100 * res.settings['fraction']:g} % of peak)")
    bx.barh(y - 0.2, peak, 0.4, color=[_COLORS.get(r.route) for r in res.results],
            alpha=0.4, label="peak")
    for yi, o, p in zip(y, onset, peak):
        bx.text(o, yi + 0.2, f" {o:.0f} min", va="center", fontsize=9)
        bx.text(p, yi - 0.2, f" {p:.0f} min", va="center", fontsize=9)
    bx.set_yticks(y)
    bx.set_yticklabels([r.route for r in res.results])
    bx.invert_yaxis()
    bx.set_xlabel("minutes after the dose")
    bx.set_xlim(0, max(peak) * 1.3)
    bx.set_title("time to onset (solid) and to peak (light)")
    fig.tight_layout()
    return _save(fig, path)


def plot_start_rate(res: StartRate, path: str | Path | None = None):
    """Each candidate rate (bars, mg/day) with its predicted analgesia and respiratory
    depression at steady state (points)."""
    plt = _plt(path)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    c = res.candidates
    y = np.arange(len(c))
    ax.barh(y, [k.rate_mg_per_day for k in c],
            color=["tab:blue" if k.source == "model" else "0.7" for k in c])
    for yi, k in zip(y, c):
        ax.text(k.rate_mg_per_day, yi, f" {k.rate_mg_per_day:.3g} mg/day", va="center",
                fontsize=9)
    ax.set_yticks(y)
    ax.set_yticklabels([k.name + (" *" if k is res.proposed else "") for k in c])
    ax.invert_yaxis()
    ax.set_xlabel("IT morphine, mg/day (blue: model, grey: clinical rules)")
    bx = ax.twiny()
    bx.plot([k.analgesia for k in c], y, "o", color="tab:green", label="analgesia")
    bx.plot([k.respiratory_depression for k in c], y, "s", color="tab:red",
            label="respiratory depression")
    bx.set_xlim(0, 1.05)
    bx.set_xlabel("steady state at that rate (fraction)")
    bx.legend(fontsize=8, loc="lower right")
    ax.set_title(f"starting pump rate at {res.settings['site']}, target "
                 f"{res.settings['target']}", pad=30)
    fig.tight_layout()
    return _save(fig, path)
