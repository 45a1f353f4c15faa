"""Figures: the model curves against the observations, and the predictions."""

from __future__ import annotations

import numpy as np

from ._designs import (
    CAUTE_SAMPLES_H,
    MOULIN_SAMPLES_H,
    MOULIN_TIPS,
    NORDBERG_SAMPLES_H,
    SJOSTROM_SAMPLES_MIN,
    _lumbar_z,
)
from ._measures import _at, _Run
from ._rows import FACTOR, RowResult


def _range_err(row) -> list[list[float]]:
    """Asymmetric error bar ``[[below], [above]]`` of a row's range (zero without one)."""
    lo, hi = row.spread_range or (row.value, row.value)
    return [[row.value - lo], [hi - row.value]]


def _half_life_line(ax, t, c, t_ref: float, span: tuple[float, float], half_life: float,
                    label: str) -> None:
    """An observed half-life (min) as a dashed line over ``span`` (h), through the model
    curve ``(t, c)`` at ``t_ref`` (h)."""
    c_ref = float(_at(t, c, [t_ref])[0])
    tt = np.linspace(span[0], span[1], 20)
    ax.semilogy(tt, c_ref * 2 ** (-(tt - t_ref) * 60 / half_life), "k--", lw=1, label=label)


def _curve_and_samples(ax, t, c, samples_h, color: str, label: str, ms: float) -> None:
    """A model curve and its values at the study's sample times (dots)."""
    ax.semilogy(t, c, color, label=label)
    ts = np.array(samples_h)
    ax.semilogy(ts, _at(t, c, ts), ".", color=color, ms=ms)


def plot_validation(results: list[RowResult], runs: dict[str, _Run]):
    """Model curves against the observations; returns a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_id = {r.row.id: r for r in results}
    fig, axes = plt.subplots(3, 3, figsize=(16, 13))
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
            _half_life_line(ax, t, c, 0.5, (0.5, 6), r.value, f"observed t1/2 {r.value:g} min")
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
    ratios = np.clip(np.array([r.ratio for r in results]), 0.1, 10)
    y = np.arange(len(ids))[::-1]
    ax.axvspan(1 / FACTOR, FACTOR, color="0.9")
    ax.axvline(1.0, color="0.5", lw=0.8)
    col = ["C2" if r.passed else ("C1" if r.expected else "C3") for r in results]
    ax.scatter(ratios, y, c=col, zorder=3, s=18)
    ax.set_yticks(y, ids, fontsize=6.5)
    ax.set(xscale="log", xlim=(0.1, 10), xlabel="model / observed (clipped to 1/10-10)",
           title=f"all rows (factor-{FACTOR:g} band; orange: known)")
    ax.set_xticks([0.1, 0.25, 0.5, 1, 2, 4, 10], ["1/10", "1/4", "1/2", "1", "2", "4", "10"])
    ax.minorticks_off()

    from csfmodel.anatomy import Anatomy

    a = Anatomy()
    ax = axes[2, 0]
    for tip, colr in zip(MOULIN_TIPS, ("C0", "C3")):
        arm = f"moulin_ss_{tip}"
        if arm not in runs:
            continue
        r = runs[arm]
        zl = _lumbar_z(r.anatomy, r.site_z)
        ref = r.csf_at(zl)
        ax.semilogy(r.z, r.csf_profile / ref, colr, label=f"model, plateau, tip {tip}")
        ax.plot([zl], [1.0], "s", color=colr, ms=6)
        ax.plot([-2.0], [r.cisterna / ref], "o", color=colr, mfc="none", ms=8,
                label=f"model cisterna (tip {tip})")
        rid = f"moulin86_lumbar_cisternal_tip{tip}"
        if rid in by_id:
            ax.plot([-2.0], [1.0 / by_id[rid].row.value], "*", color=colr, ms=12,
                    label=f"Moulin 1986: cisterna = lumbar / {by_id[rid].row.value:g}")
        ax.axvline(r.site_z, color=colr, lw=0.8, ls=":")
    for lv in ("C1", "T1", "T10", "L1", "L3", "S1"):
        ax.text(a.level_z(lv), 0.012, lv, fontsize=7, ha="center")
    ax.axvline(0.0, color="0.6", lw=0.8)
    ax.set(xlabel="z from foramen magnum (cm); cisterna plotted at z = -2",
           ylabel="CSF / CSF at the lumbar sample (L3-L4, squares)", ylim=(0.01, 30),
           xlim=(-4, a.length), title="Moulin 1986: IT infusion at steady state, tips L2, T10")
    ax.legend(fontsize=6.5, ncol=2, loc="upper left")

    ax = axes[2, 1]
    for arm, colr, label in (("caute_iso", "C0", "isobaric"), ("caute_hyper", "C3",
                                                               "hyperbaric")):
        if arm not in runs:
            continue
        _curve_and_samples(ax, *runs[arm].csf(), CAUTE_SAMPLES_H, colr, f"model, {label}", 4)
    for rid, colr in (("caute88_iso_t10_cmax", "C0"), ("caute88_hyper_t10_cmax", "C3")):
        tid = rid.replace("cmax", "tmax")
        if rid in by_id and tid in by_id:
            rc, rt = by_id[rid].row, by_id[tid].row
            ax.errorbar([rt.value], [rc.value], yerr=_range_err(rc), xerr=_range_err(rt),
                        fmt="s", color=colr, capsize=3,
                        label=f"Caute 1988 peak ({'iso' if 'iso' in rid else 'hyper'})")
    if "caute88_iso_t10_1h" in by_id:
        r1 = by_id["caute88_iso_t10_1h"].row
        ax.errorbar([1.0], [r1.value], yerr=_range_err(r1), fmt="o", color="C0", capsize=3,
                    label="Caute 1988 at 1 h (iso)")
    if "caute88_iso_t10_thalf" in by_id and "caute_iso" in runs:
        th = by_id["caute88_iso_t10_thalf"].row.value
        t, c = runs["caute_iso"].csf()
        _half_life_line(ax, t, c, 3.0, (2, 15), th, f"observed terminal t1/2 {th:g} min")
    ax.set(xlabel="time (h)", ylabel="CSF at T10 (ng/mL)", ylim=(30, 1e5), xlim=(0, 15),
           title="Caute 1988: 2 mg at L5-S1, CSF at T10")
    ax.legend(fontsize=7)

    ax = axes[2, 2]
    for tip, colr in zip(MOULIN_TIPS, ("C0", "C3")):
        arm = f"moulin_bolus_{tip}"
        if arm not in runs:
            continue
        _curve_and_samples(ax, *runs[arm].csf(), MOULIN_SAMPLES_H, colr,
                           f"model, 1 mg through the catheter at {tip}", 5)
    if "moulin86_thalf_bolus" in by_id and "moulin_bolus_L2" in runs:
        th = by_id["moulin86_thalf_bolus"].row.value
        t, c = runs["moulin_bolus_L2"].csf()
        _half_life_line(ax, t, c, 1.0, (1, 8), th, f"Moulin 1986 t1/2 {th:g} min")
    ax.set(xlabel="time (h)", ylabel="CSF at L3-L4 (ng/mL)", xlim=(0, 10),
           title="Moulin 1986: bolus in pump patients")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


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
    from csfmodel.effects import effects

    ax.plot(t, b, "C0", label="brain ECF, 0.5 mg IT at L3-L4")
    ax.plot(iv.time, bi, "C4", label="brain ECF, 10 mg IV")
    ax.set(xlabel="time (h)", ylabel="unbound brain ECF (ng/mL)", xlim=(0, 24),
           title="supraspinal exposure and respiratory depression: IT vs IV")
    ax2 = ax.twinx()
    ax2.plot(t, effects(ds).respiratory_depression, "C0--", lw=1,
             label="respiratory depression, IT")
    ax2.plot(iv.time, effects(iv).respiratory_depression, "C4--", lw=1,
             label="respiratory depression, IV")
    ax2.set(ylabel="fractional depression of ventilation", ylim=(0, 1))
    ax.axvspan(6, 11, color="C0", alpha=0.08,
               label="peak respiratory depression after neuraxial morphine (6-11 h)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper right")

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
