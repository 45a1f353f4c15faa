r"""From the trial, or the patient's opioids, to a first pump rate at a catheter tip.

Two starting points:

*A trial that gave relief* (an intrathecal bolus by lumbar puncture, or a short trial
infusion through a catheter). The trial is simulated; its peak exposure of the target
(the unbound dorsal-horn concentration of the worst-covered target segment) and its
peak modelled analgesia are what gave relief. The pump rate at the chosen tip is then
the rate whose plateau matches it:

* ``exposure``: :math:`R = C^{trial}_{peak} / c^{tip}_{unit}` (the plateau is linear in
  the rate: one division);
* ``analgesia``: the root of :math:`A(R\,c^{tip}_{unit}) = A^{trial}_{peak}` (the
  equianalgesic finder of :mod:`csfmodel.compare`).

*The patient's opioids* (oral morphine equivalents, :mod:`._conversion`): the IT rate
equianalgesic to oral morphine at that OME (controlled release every 12 h), and the
rate giving the same dorsal-horn concentration, from :func:`csfmodel.compare_routes`.

Beside the model's rates stand the published clinical rules
(:data:`~csfmodel.clinic.CLINICAL_RULES`), and for every rate the steady state it
predicts: target dorsal horn, analgesia, brain ECF and respiratory depression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csfmodel.effects import EffectParameters, analgesia, resolve, respiratory_depression
from csfmodel.errors import ScenarioError

from ._conversion import CLINICAL_RULES, OpioidDose, oral_morphine_equivalents

_PER_DAY = 1.44     # ug/min -> mg/day


@dataclass
class Candidate:
    """A proposed pump rate and the steady state the model predicts at it."""

    name: str
    source: str              # "model" or a clinical rule's source
    rate_mg_per_day: float
    target_dorsal_horn: float      # ng/mL unbound, worst-covered target segment
    analgesia: float
    brain: float                   # ng/mL unbound brain ECF
    plasma: float                  # ng/mL total
    respiratory_depression: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StartRate:
    """The result of :func:`start_rate`; ``table()``, ``to_dict()``, ``plot()``."""

    settings: dict[str, Any]
    basis: str
    proposed: Candidate
    candidates: list[Candidate]
    trial: dict[str, float] = field(default_factory=dict)
    opioids: list[OpioidDose] = field(default_factory=list)

    @property
    def ome_mg_per_day(self) -> float:
        return float(sum(o.ome_mg_per_day for o in self.opioids))

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "basis": self.basis,
                "proposed": self.proposed.to_dict(),
                "candidates": [c.to_dict() for c in self.candidates], "trial": self.trial,
                "opioids": [{"text": o.text, "ome_mg_per_day": o.ome_mg_per_day,
                             "factor": o.conversion.factor, "source": o.conversion.source,
                             "note": o.note} for o in self.opioids],
                "ome_mg_per_day": self.ome_mg_per_day if self.opioids else None}

    def table(self) -> str:
        s = self.settings
        lines = [f"Starting pump rate: {s['drug']} at {s['site']}, target {s['target']} "
                 f"(worst-covered segment)", f"from: {s['from']}"]
        t = self.trial
        if "oral_analgesia" in t:
            lines.append(f"oral morphine at that OME (controlled release every 12 h, steady "
                         f"state): analgesia {t['oral_analgesia']:.3f}, brain "
                         f"{t['oral_brain']:.3g} ng/mL, respiratory depression "
                         f"{t['oral_respiratory_depression']:.3f}")
        if "peak_target_dorsal_horn" in t:
            lines.append(f"trial: peak target dorsal horn {t['peak_target_dorsal_horn']:.4g} "
                         f"ng/mL at {t['peak_time_h']:.2f} h, peak analgesia "
                         f"{t['peak_analgesia']:.3f}, peak respiratory depression "
                         f"{t['peak_respiratory_depression']:.3f}")
        if self.opioids:
            for o in self.opioids:
                lines.append(f"  {o.text:<34} x {o.conversion.factor:<5g} = "
                             f"{o.ome_mg_per_day:8.4g} mg/day OME  ({o.conversion.source})")
                if o.note:
                    lines.append(f"    note: {o.note}")
            lines.append(f"  total {self.ome_mg_per_day:.4g} mg/day oral morphine equivalents")
        lines += ["", f"{'rate from':<32}{'mg/day':>9}{'DH ng/mL':>10}{'analg.':>8}"
                  f"{'brain':>8}{'plasma':>8}{'resp.dep':>9}"]
        for c in self.candidates:
            mark = " *" if c is self.proposed else ""
            lines.append(f"{c.name + mark:<32}{c.rate_mg_per_day:>9.4g}"
                         f"{c.target_dorsal_horn:>10.4g}{c.analgesia:>8.3f}{c.brain:>8.3g}"
                         f"{c.plasma:>8.3g}{c.respiratory_depression:>9.3f}")
        lines += ["", f"* proposed (model, matched on {self.basis}); every row: the steady "
                  "state at that rate, DH = unbound dorsal horn of the worst-covered target "
                  "segment, brain = unbound brain ECF, plasma = total (ng/mL)", "",
                  "sources of the rules:"]
        for c in self.candidates:
            if c.source != "model":
                lines.append(f"  {c.name}: {c.source}")
        return "\n".join(lines)

    def plot(self, path: str | Path | None = None):
        """Figure: the candidate rates with their predicted analgesia and respiratory
        depression."""
        from ._figures import plot_start_rate

        return plot_start_rate(self, path)


class _Tip:
    """Plateaus per 1 ug/min of IT infusion at the tip; a candidate at any rate."""

    def __init__(self, model, site_z: float, r, tgt: np.ndarray):
        from csfmodel.compare import unit_plateaus

        self.u = unit_plateaus(model, site_z)["intrathecal"]
        self.r, self.tgt = r, tgt

    def unit_target(self) -> float:
        return float(np.asarray(self.u["cord"])[self.tgt].min())

    def candidate(self, name: str, source: str, mg_per_day: float) -> Candidate:
        k = mg_per_day / _PER_DAY
        cord, brain = k * np.asarray(self.u["cord"]), k * float(self.u["brain"])
        return Candidate(name=name, source=source, rate_mg_per_day=float(mg_per_day),
                         target_dorsal_horn=float(cord[self.tgt].min()),
                         analgesia=float(analgesia(cord[self.tgt], brain, self.r).min()),
                         brain=brain, plasma=k * float(self.u["plasma"]),
                         respiratory_depression=float(respiratory_depression(brain, self.r)))

    def equianalgesic(self, a: float) -> float:
        """mg/day at which the plateau's analgesia is ``a``."""
        from csfmodel.compare._finder import _Analgesia, _solve_dose
        from csfmodel.compare._units import _Units

        units = _Units(t=np.zeros(1), period=1440.0, oral={}, plateau={"intrathecal": self.u})
        try:
            return _solve_dose(_Analgesia(units, "intrathecal", self.r, self.tgt), a) * _PER_DAY
        except ValueError:
            raise ScenarioError("basis", "analgesia", "'exposure' (the trial's analgesia "
                                f"{a:.3g} is not reached by any plateau at this tip)") from None


def _trial(trial_bolus, trial_infusion, trial_site, trial_volume, trial_duration, drug,
           patient, resolution, target, params) -> tuple[dict[str, float], str, float]:
    """Simulate the trial: its peaks at the target, a description, its daily dose (mg)."""
    from csfmodel.api import simulate
    from csfmodel.effects import effects
    from csfmodel.units import convert

    base = {"patient": dict(patient or {}), "drug": {"name": drug}}
    if trial_bolus is not None:
        dose = {"route": "intrathecal", "type": "bolus", "site": trial_site,
                "amount": trial_bolus, "volume": trial_volume}
        dur = "24 h"
        what = f"IT bolus trial {trial_bolus} at {trial_site} ({trial_volume})"
        mg = convert(trial_bolus, "mg", "trial_bolus")
    else:
        dose = {"route": "intrathecal", "type": "infusion", "site": trial_site,
                "rate": trial_infusion, "duration": trial_duration}
        dur_min = convert(trial_duration, "min", "trial_duration")
        if not 60.0 <= dur_min <= 14 * 1440.0:
            raise ScenarioError("trial_duration", trial_duration, "1 h to 14 days")
        dur = f"{dur_min} min"
        what = f"IT trial infusion {trial_infusion} at {trial_site} for {trial_duration}"
        mg = convert(trial_infusion, "mg/day", "trial_infusion")
    ds = simulate({**base, "simulation": {"duration": dur, "output_interval": "5 min",
                                          "resolution": resolution}, "dose": [dose]})
    e = effects(ds, params=params, target=target)
    from csfmodel.effects import target_segments

    dh = ds.cord_concentration.sel(segment=target_segments(target)).min("segment")
    k = int(np.argmax(dh.values))
    return ({"peak_target_dorsal_horn": float(dh.values[k]),
             "peak_time_h": float(ds.time.values[k]),
             "peak_analgesia": float(e.analgesia.max()),
             "peak_respiratory_depression": float(e.respiratory_depression.max()),
             "peak_brain": float(ds.brain_concentration.max())}, what, mg)


def start_rate(*, site: str = "T10", target: str | list[str] = "L1-L5",
               trial_bolus: str | None = None, trial_site: str = "L3-L4",
               trial_volume: str = "1 mL", trial_infusion: str | None = None,
               trial_duration: str = "24 h", regimen: str | list[str] | None = None,
               basis: str | None = None, drug: str = "morphine", patient: dict | None = None,
               resolution: str = "5 mm", params: EffectParameters | None = None
               ) -> StartRate:
    """A first pump rate at a catheter tip, from a trial or from the patient's opioids.

    Parameters
    ----------
    site, target
        The pump's catheter tip and the pain target (cord segments).
    trial_bolus, trial_site, trial_volume
        A single-shot IT trial that gave relief: dose, level and volume (needle).
    trial_infusion, trial_duration
        Or a trial infusion through a catheter at ``trial_site``: rate and duration.
    regimen
        Or the patient's opioids, e.g. ``"oxycodone 520 mg/day + morphine iv 24 mg/day"``
        (:func:`~csfmodel.clinic.oral_morphine_equivalents`).
    basis
        For a trial: ``"exposure"`` (match the trial's peak target dorsal-horn
        concentration; the default) or ``"analgesia"`` (its peak modelled analgesia).
        For a regimen: ``"analgesia"`` (equianalgesic; the default: the systemic
        regimen's analgesia is partly supraspinal, which an equal dorsal-horn
        concentration alone would not replace) or ``"exposure"`` (equal dorsal-horn
        concentration).
    drug, patient, resolution, params
        As for :func:`csfmodel.compare_routes`.

    Returns
    -------
    StartRate
        The proposed rate, the clinical rules beside it, the steady state of each.
    """
    from csfmodel.anatomy import CORD_SEGMENTS
    from csfmodel.compare import _setup
    from csfmodel.effects import target_segments

    given = [x is not None for x in (trial_bolus, trial_infusion, regimen)]
    if sum(given) != 1:
        raise ScenarioError("trial_bolus", trial_bolus, "exactly one of trial_bolus, "
                            "trial_infusion or regimen")
    if basis is None:
        basis = "exposure" if regimen is None else "analgesia"
    if basis not in ("exposure", "analgesia"):
        raise ScenarioError("basis", basis, "'exposure' or 'analgesia'")
    segs = target_segments(target)
    tgt = np.array([CORD_SEGMENTS.index(s) for s in segs])
    sc, model, site_z = _setup(drug, patient, resolution, site)
    r = resolve(params, model)
    tip = _Tip(model, site_z, r, tgt)
    settings = {"drug": sc.drug.name, "site": site, "site_z_cm": site_z,
                "target": target if isinstance(target, str) else ",".join(segs),
                "basis": basis, "resolution_cm": model.grid.dz, "patient": dict(patient or {})}
    cands: list[Candidate] = []
    trial: dict[str, float] = {}
    opioids: list[OpioidDose] = []
    if regimen is None:
        trial, what, mg = _trial(trial_bolus, trial_infusion, trial_site, trial_volume,
                                 trial_duration, drug, patient, resolution, target, params)
        settings["from"] = what
        exp = trial["peak_target_dorsal_horn"] / tip.unit_target() * _PER_DAY
        ana = tip.equianalgesic(trial["peak_analgesia"])
        cands.append(tip.candidate("model: trial's peak exposure", "model", exp))
        cands.append(tip.candidate("model: trial's peak analgesia", "model", ana))
        label = "trial dose per day" if trial_bolus is not None else "trial rate"
        for name, f in ((label, 1.0), ("half " + label, 0.5)):
            rule = CLINICAL_RULES["trial dose per day" if f == 1 else
                                  "half the trial dose per day"]
            cands.append(tip.candidate(name, rule.source, f * mg))
    else:
        from csfmodel.compare import compare_routes

        opioids = oral_morphine_equivalents(regimen)
        ome = sum(o.ome_mg_per_day for o in opioids)
        settings["from"] = " + ".join(o.text for o in opioids) + f" ({ome:.4g} mg/day OME)"
        if not 0 < ome / 2 <= 5000.0:
            raise ScenarioError("regimen", regimen, "at most 10 g/day oral morphine "
                                "equivalents")
        cmp = compare_routes(reference="oral", oral_dose=f"{ome / 2} mg", interval="12 h",
                             formulation="controlled", site=site, target=target, drug=drug,
                             patient=patient, resolution=resolution, params=params,
                             sensitivity=False, sites=())
        eq = cmp.route("intrathecal", "equianalgesic").daily_dose_mg
        dh = cmp.route("intrathecal", "equal dorsal-horn").daily_dose_mg
        ref = cmp.reference
        trial = {"oral_analgesia": ref.analgesia, "oral_respiratory_depression":
                 ref.respiratory_depression, "oral_brain": ref.brain}
        cands.append(tip.candidate("model: equal dorsal horn", "model", dh))
        cands.append(tip.candidate("model: equianalgesic", "model", eq))
        iv = sum(o.dose for o in opioids if o.opioid == "morphine" and o.route == "iv")
        oral_ome = ome - sum(o.ome_mg_per_day for o in opioids
                             if o.opioid == "morphine" and o.route == "iv")
        rules = [("oral:IT 300:1", ome / 300.0)]
        if iv > 0:
            rules.append(("IV:IT 100:1", iv / 100.0 + oral_ome / 300.0))
        rules.append(("50% of the conversion", 0.5 * ome / 300.0))
        for name, v in rules:
            cands.append(tip.candidate(name, CLINICAL_RULES[name].source, v))
    proposed = cands[0] if basis == "exposure" else cands[1]
    return StartRate(settings=settings, basis=basis, proposed=proposed, candidates=cands,
                     trial=trial, opioids=opioids)
