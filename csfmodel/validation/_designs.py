"""Study designs: the scenario each study ran and how each of its rows is measured
(the assumptions an abstract leaves open are listed in the package docstring).

The module constants (``MOULIN_LUMBAR_SITE``, ``CAUTE_VOLUME_ML``, ...) are read when
the designs run; :func:`design_sensitivity` sets them here, on this module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._measures import _at, _Run, auc_inf, peak, terminal_half_life
from ._rows import Row

_KG = 70.0  # default body weight (anatomy), used for per-kg clearances

NORDBERG_SAMPLES_H = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 24.0)
SJOSTROM_SAMPLES_MIN = (5, 10, 15, 20, 30, 45, 60, 90, 120, 150, 180, 240, 300, 360)


def _it_bolus(amount_mg: float, site: str, volume_ml: float, duration_h: float,
              output_min: float, overrides: dict) -> dict:
    return _systemic([{"route": "intrathecal", "type": "bolus", "site": site,
                       "amount": f"{amount_mg} mg", "volume": f"{volume_ml} mL",
                       "injection_rate": "4 mL/min"}], duration_h, output_min, overrides)


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
        tp, cp = peak(t, c)
        return (cp, "plasma Cmax") if which == "cmax" else (tp, "plasma Tmax")
    return f


# ------------------------------------------------------------- Moulin 1986
#: Where Moulin's "lumbar CSF" was sampled (not in the abstract): a lumbar puncture
#: at the L3-L4 interspace (level, fraction through it). Sensitivity: docs/validation.md.
MOULIN_LUMBAR_SITE: tuple[str, float] | str = ("L3", 1.0)
#: The bolus behind Moulin's CSF half-life: through the pump's catheter (no puncture),
#: 1 mL at 1 mL/min; lumbar CSF at these times (h) for the log-linear fit.
MOULIN_BOLUS_VOLUME_ML = 1.0
MOULIN_SAMPLES_H = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
#: Catheter tips of Moulin's two patients.
MOULIN_TIPS = ("L2", "T10")


def _steady_infusion(site: str, ov: dict) -> dict:
    sc = _systemic([{"route": "intrathecal", "type": "infusion", "site": site,
                     "rate": "1 mg/day"}], 1, 60, ov)
    sc["_plateau"] = True
    return sc


def _moulin_scenarios(ov: dict) -> dict[str, dict]:
    out = {f"moulin_ss_{tip}": _steady_infusion(tip, ov) for tip in MOULIN_TIPS}
    for tip in MOULIN_TIPS:
        sc = _it_bolus(1.0, tip, MOULIN_BOLUS_VOLUME_ML, 10, 2, ov)
        sc["dose"][0].update(injection_rate="1 mL/min", delivery="catheter")
        out[f"moulin_bolus_{tip}"] = sc
    return out


def _lumbar_z(anatomy, tip_z: float) -> float:
    """z of Moulin's lumbar sample: :data:`MOULIN_LUMBAR_SITE`, or the catheter tip
    itself when that is ``"tip"`` (CSF drawn back through the pump's catheter)."""
    if MOULIN_LUMBAR_SITE == "tip":
        return tip_z
    return anatomy.level_z(*MOULIN_LUMBAR_SITE)


def _moulin_ratio(tip: str):
    def f(runs, row):
        r = runs[f"moulin_ss_{tip}"]
        return r.csf_at(_lumbar_z(r.anatomy, r.site_z)) / r.cisterna, \
            f"plateau, CSF at L3-L4 / cisterna, tip {tip}"
    return f


def _moulin_csf_plasma(runs, row):
    vals = [runs[f"moulin_ss_{tip}"] for tip in MOULIN_TIPS]
    ratios = [r.csf_at(_lumbar_z(r.anatomy, r.site_z)) / r.plasma for r in vals]
    return float(np.exp(np.mean(np.log(ratios)))), \
        "plateau, CSF at L3-L4 / plasma, geometric mean of tips L2 and T10"


def _moulin_thalf(runs, row):
    hl = []
    for tip in MOULIN_TIPS:
        run = runs[f"moulin_bolus_{tip}"]
        t, c = run.csf()
        hl.append(terminal_half_life(np.array(MOULIN_SAMPLES_H), _at(t, c, MOULIN_SAMPLES_H)))
    return float(np.exp(np.mean(np.log(hl)))), \
        "catheter bolus at the tip; CSF at L3-L4, 1-8 h; geometric mean of tips L2 and T10"


# -------------------------------------------------------------- Caute 1988
#: Caute 1988: injected volume (not in the abstract), mL, and injection rate, mL/min.
CAUTE_VOLUME_ML = 2.0
CAUTE_RATE_ML_MIN = 4.0
#: "Samples of CSF were collected at the level of the 10th thoracic vertebra at
#: regular intervals for 15 h": taken as these times (h).
CAUTE_SAMPLES_H = (5 / 60, 10 / 60, 15 / 60, 20 / 60, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0,
                   5.0, 6.0, 8.0, 10.0, 12.0, 15.0)


def _caute(which: str):
    def f(runs, row):
        t, c = runs["caute_iso"].csf()
        ts = np.array(CAUTE_SAMPLES_H)
        cs = _at(t, c, ts)
        if which == "cmax":
            return float(cs.max()), "max CSF at mid-T10 over samples 5 min-15 h"
        if which == "tmax":
            return float(ts[int(np.argmax(cs))]), "sample time of the T10 maximum"
        if which == "1h":
            return float(_at(t, c, [1.0])[0]), "CSF at mid-T10 at 1 h"
        sel = ts >= 2.0
        return terminal_half_life(ts[sel], cs[sel]), "log-linear fit, T10 samples 2-15 h"
    return f


#: The hyperbaric arm (7 % dextrose, density well above CSF's): after the injection at
#: L5-S1 -- caudal to the apex of the lumbar lordosis (L3) in a supine patient -- the
#: injectate runs downhill into the dependent end of the dural sac and stays there
#: instead of being mixed upward by the injection (gravity spread of hyperbaric
#: solutions: Hocking & Wildsmith 2004 Br J Anaesth 93:568; buoyancy-driven drift of
#: the same order as the oscillatory one: Alaminos-Quesada 2024 J Fluid Mech). Design:
#: the injected volume placed at S1 with no injection-driven spread (kappa = 1).
CAUTE_HYPERBARIC_SITE = "S1"


def _caute_scenarios(ov: dict) -> dict[str, dict]:
    sc = _it_bolus(2.0, "L5-S1", CAUTE_VOLUME_ML, 15, 1, ov)
    sc["dose"][0]["injection_rate"] = f"{CAUTE_RATE_ML_MIN} mL/min"
    hy = _it_bolus(2.0, CAUTE_HYPERBARIC_SITE, CAUTE_VOLUME_ML, 15, 1, ov)
    hy["dose"][0]["injection_rate"] = f"{CAUTE_RATE_ML_MIN} mL/min"
    hy["patient"]["injection_spread"] = 1.0
    return {"caute_iso": sc, "caute_hyper": hy}


def _caute_hyper(which: str):
    def f(runs, row):
        t, c = runs["caute_hyper"].csf()
        if which == "cmax":
            ts = np.array(CAUTE_SAMPLES_H)
            return float(_at(t, c, ts).max()), "max CSF at mid-T10 over samples 5 min-15 h"
        # a broad peak between hourly samples ("4-5 h"): the time of the maximum of the
        # model curve (1 min output), which the samples bracket
        return peak(t, c)[0], "time of the T10 maximum (model curve)"
    return f


#: Where each arm's CSF is sampled: (vertebral level, fraction through it).
_SAMPLE_SITE = {"nordberg_025": ("L3", 1.0), "nordberg_05": ("L3", 1.0),
                "sjostrom": ("L3", 1.0), "caute_iso": ("T10", 0.5), "caute_hyper": ("T10", 0.5)}


def _sample_site(arm: str) -> tuple[str, float] | None:
    if arm.startswith("moulin_bolus_"):
        tip = arm.rsplit("_", 1)[1]
        return (tip, 0.5) if MOULIN_LUMBAR_SITE == "tip" else MOULIN_LUMBAR_SITE
    return _SAMPLE_SITE.get(arm)


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
    _Design("Moulin 1986", "IT infusion, catheter tip at L2 and at T10 (one patient each), "
            "plateau: CSF at L3-L4 (lumbar puncture) over cisternal CSF and over plasma; "
            "1 mg bolus in 1 mL through the catheter, CSF at L3-L4 at 1-8 h",
            _moulin_scenarios, {
                "moulin86_lumbar_cisternal_tipL2": _moulin_ratio("L2"),
                "moulin86_lumbar_cisternal_tipT10": _moulin_ratio("T10"),
                "moulin86_thalf_bolus": _moulin_thalf,
                "moulin86_csf_plasma": _moulin_csf_plasma}),
    _Design("Caute 1988", f"2 mg isobaric at L5-S1 in {CAUTE_VOLUME_ML:g} mL at "
            f"{CAUTE_RATE_ML_MIN:g} mL/min; CSF at mid-T10 at 5, 10, 15, 20, 30, 45 min, "
            "1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 15 h", _caute_scenarios, {
                "caute88_iso_t10_cmax": _caute("cmax"), "caute88_iso_t10_tmax": _caute("tmax"),
                "caute88_iso_t10_1h": _caute("1h"), "caute88_iso_t10_thalf": _caute("thalf"),
                "caute88_hyper_t10_cmax": _caute_hyper("cmax"),
                "caute88_hyper_t10_tmax": _caute_hyper("tmax")}),
)


def _measure_of(row_id: str) -> tuple[_Design, Callable]:
    for d in DESIGNS:
        if row_id in d.measures:
            return d, d.measures[row_id]
    raise KeyError(row_id)

