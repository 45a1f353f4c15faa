"""Predictions of the default model for phenomena that are not in the calibration
table (set beside the literature in ``docs/validation.md``)."""

from __future__ import annotations

import numpy as np

from ._measures import terminal_half_life


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

    Six designs, each set beside the literature in ``docs/validation.md``:

    * ``rostral``: 0.5 mg morphine in 1 mL at L3-L4 -- CSF peaks at T6, C7 and the
      cisterna, lumbar:cisternal AUC ratio, largest share of the dose in cranial CSF,
      CSF at C1-C2 after 1 h;
    * ``brain``: brain ECF and respiratory depression peak times after that IT bolus
      and after 10 mg IV; brain exposure and respiratory depression over 1-12 h after
      0.3 mg IT relative to 0.14 mg/kg IV (Bailey 2000 design);
    * ``systemic_to_csf``: lumbar CSF after 10 mg IV (peak, time, CSF:plasma);
    * ``pump``: 0.5 mg/day at T10 for 7 days vs a 0.5 mg bolus in 1 mL at T10 --
      rostral distance to half and a tenth of the tip concentration, CSF at T2
      over the tip (the tip of an infusion at its plateau, a bolus at 3 h); brain
      ECF at steady state per mg/day under a pump at T10 and at L2, relative to an
      IV infusion;
    * ``lipophilic``: equal 0.1 mg boluses of morphine, fentanyl, sufentanil at L3
      (Ummenhofer 2000 design: CSF at L2, T11, T7, T3 over 4 h) -- AUC(0-4 h) at
      each level over L2, lumbar CSF half-life, lumbar cord exposure, brain peak;
    * ``tracer``: a hydrophilic tracer (``dtpa`` preset, gadobutrol-like) in 0.5 mL at
      L3-L4 -- peak times of plasma, cisternal and cortical CSF (Eide 2021, Dyke 2020).

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
    c12 = ds.csf_concentration.interp(z=a.level_z("C1", 1.0)).values
    r["C1-C2 CSF at 1 h (ng/mL)"] = float(np.interp(1.0, t, c12))
    out["rostral"] = r

    from csfmodel.effects import effects

    br = ds.brain_concentration.values
    iv = _sim([{"route": "iv", "type": "bolus", "amount": "10 mg"}], 24, 5, solver=solver)
    curves["iv"] = iv
    bi = iv.brain_concentration.values
    ti = iv.time.values
    rd_it = effects(ds).respiratory_depression.values
    rd_iv = effects(iv).respiratory_depression.values
    out["brain"] = {"IT 0.5 mg: brain ECF peak time (h)": float(t[br.argmax()]),
                    "IT 0.5 mg: brain ECF peak (ng/mL)": float(br.max()),
                    "IV 10 mg: brain ECF peak time (h)": float(ti[bi.argmax()]),
                    "IV 10 mg: brain ECF peak (ng/mL)": float(bi.max()),
                    "IT 0.5 mg: respiratory depression peak time (h)": float(t[rd_it.argmax()]),
                    "IV 10 mg: respiratory depression peak time (h)": float(ti[rd_iv.argmax()])}
    # Bailey 2000 (NEJM 343:1228): 0.3 mg IT vs 0.14 mg/kg IV (9.8 mg at 70 kg), 1-12 h
    it3 = _sim([{"route": "intrathecal", "type": "bolus", "site": "L3-L4", "amount": "0.3 mg",
                 "volume": "1 mL"}], 12, 5, solver=solver)
    iv98 = _sim([{"route": "iv", "type": "bolus", "amount": "9.8 mg"}], 12, 5, solver=solver)
    curves["bailey"] = (it3, iv98)
    w = it3.time.values >= 1.0
    out["brain"]["IT 0.3 mg / IV 9.8 mg: brain ECF AUC(1-12 h)"] = float(
        np.trapezoid(it3.brain_concentration.values[w], it3.time.values[w])
        / np.trapezoid(iv98.brain_concentration.values[w], iv98.time.values[w]))
    out["brain"]["IT 0.3 mg / IV 9.8 mg: mean respiratory depression 1-12 h"] = float(
        effects(it3).respiratory_depression.values[w].mean()
        / effects(iv98).respiratory_depression.values[w].mean())
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
    # brain exposure per mg/day at steady state: IT pump at T10 and at L2 vs IV infusion
    from csfmodel.api import prepare
    from csfmodel.steady_state import input_vector, plateau

    m = prepare({"dose": [{"route": "iv", "type": "infusion", "rate": "1 mg/day"}]}).model
    b = m.system.index("brain")
    per_day = 1000.0 / 1440.0                  # 1 mg/day in ug/min
    ss_iv = plateau(m, input_vector(m, "iv", per_day))
    brain_iv = ss_iv[b] / m.system.volume[b] * 1000.0
    for site in ("T10", "L2"):
        ss = plateau(m, input_vector(m, "intrathecal", per_day, a.level_z(site)))
        p[f"pump at {site}: brain ECF per mg/day / IV's"] = float(
            ss[b] / m.system.volume[b] * 1000.0 / brain_iv)
    p["IV infusion: brain ECF per mg/day (ng/mL)"] = float(brain_iv)
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

    # a hydrophilic CSF tracer at the lumbar level (gadobutrol-like: the dtpa preset,
    # cleared from blood by glomerular filtration): when do the cranial CSF and blood
    # peak? Eide 2021 (JCI Insight 6:e147063, n=29 reference patients, 0.5 mmol
    # gadobutrol in 0.5 mL, supine): blood peak at about 10 h; Dyke 2020 (Clin Imaging
    # 68:1, n=8 healthy volunteers): intracranial CSF enhancement peaked within 1-3 h
    # and fell from 7 h
    tr = _sim([{"route": "intrathecal", "type": "bolus", "site": "L3-L4", "amount": "10 mg",
                "volume": "0.5 mL"}], 48, 10, drug="dtpa", solver=solver)
    curves["tracer"] = tr
    tt = tr.time.values
    trc: dict[str, float] = {}
    for label, var in (("plasma", "plasma_concentration"),
                       ("cisternal CSF", "cisternal_csf_concentration"),
                       ("cortical CSF", "cortical_csf_concentration")):
        x = tr[var].values
        trc[f"lumbar tracer: {label} peak time (h)"] = float(tt[x.argmax()])
    cis = tr.cisternal_csf_concentration.values
    trc["lumbar tracer: cisternal CSF at 7 h / peak"] = float(np.interp(7.0, tt, cis)
                                                               / cis.max())
    out["tracer"] = trc
    return out, curves


def format_predictions(numbers: dict[str, dict[str, float]]) -> str:
    """The predictions as text, one block per design."""
    lines = []
    for design, vals in numbers.items():
        lines.append(f"[{design}]")
        for k, v in vals.items():
            lines.append(f"  {k:<58} {v:10.4g}")
    return "\n".join(lines)

