"""The results: :class:`RouteResult` (one route at one dose) and :class:`RouteComparison`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._units import CLINICAL_RULE


@dataclass
class RouteResult:
    """One route at one dose (all rates in mg/day, concentrations in ng/mL)."""

    route: str
    basis: str                    # "reference", "equianalgesic" or "equal dorsal-horn"
    daily_dose_mg: float
    analgesia: float              # mean over the dosing interval at steady state
    target_dorsal_horn: float     # worst-covered target segment, mean
    target_dorsal_horn_mean: float  # average over the target segments
    brain: float                  # brain ECF unbound, mean
    brain_max: float
    plasma: float                 # total, mean
    lumbar_csf: float             # spinal CSF at L3, mean
    respiratory_depression: float  # mean
    respiratory_depression_max: float
    selectivity: float            # target dorsal horn : brain ECF (unbound)
    cord_profile: np.ndarray = field(repr=False)       # mean per cord segment
    analgesia_profile: np.ndarray = field(repr=False)  # per cord segment
    regimen: str = ""             # the dose as a prescription, e.g. "30 mg every 12 h"

    def to_dict(self) -> dict[str, Any]:
        d = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
             for k, v in self.__dict__.items()}
        return d


@dataclass
class RouteComparison:
    """The result of :func:`compare_routes`; ``table()``, ``to_dict()``, ``plot()``."""

    settings: dict[str, Any]
    pd: dict[str, float]
    reference: RouteResult
    routes: list[RouteResult]
    ratios: dict[str, dict[str, float]]
    segments: list[str]
    target: list[str]
    sensitivity: dict[str, dict[str, float]]
    it_rate_by_site: dict[str, float]
    #: spinal EC50 (ng/mL) at which the model's ratio equals the clinical rule
    implied_spinal_ec50: dict[str, float | None] = field(default_factory=dict)

    def route(self, route: str, basis: str = "equianalgesic") -> RouteResult:
        """The result for ``route`` ("oral", "iv", "intrathecal") on a ``basis``.

        The reference route returns the reference whatever the basis.
        """
        if route == self.reference.route:
            return self.reference
        for r in self.routes:
            if r.route == route and r.basis == basis:
                return r
        raise KeyError((route, basis))

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-able types."""
        return {
            "settings": self.settings, "pd_parameters": self.pd,
            "clinical_rule_oral_iv_it": CLINICAL_RULE,
            "ratios": self.ratios,
            "routes": [r.to_dict() for r in [self.reference, *self.routes]],
            "segments": self.segments, "target_segments": self.target,
            "sensitivity": self.sensitivity,
            "it_rate_by_site_mg_per_day": self.it_rate_by_site,
            "spinal_ec50_implied_by_clinical_rule_ng_per_ml": self.implied_spinal_ec50,
        }

    def to_dataset(self):
        """The per-route numbers as an :class:`xarray.Dataset` over ``case`` and ``segment``."""
        import xarray as xr

        rows = [self.reference, *self.routes]

        def var(name: str, units: str, long_name: str):
            return ("case", np.array([getattr(r, name) for r in rows], float),
                    {"units": units, "long_name": long_name})

        ds = xr.Dataset(
            {"daily_dose": var("daily_dose_mg", "mg/day", "daily dose"),
             "analgesia": var("analgesia", "1", "mean analgesia, worst-covered target "
                              "segment"),
             "target_dorsal_horn": var("target_dorsal_horn", "ng/mL",
                                       "unbound dorsal horn, worst-covered target segment"),
             "brain": var("brain", "ng/mL", "unbound brain ECF, mean"),
             "plasma": var("plasma", "ng/mL", "total plasma, mean"),
             "respiratory_depression": var("respiratory_depression", "1",
                                           "fractional depression of ventilation, mean"),
             "selectivity": var("selectivity", "1", "target dorsal horn : brain ECF"),
             "cord_concentration": (("case", "segment"),
                                    np.stack([r.cord_profile for r in rows]),
                                    {"units": "ng/mL", "long_name": "unbound dorsal horn "
                                     "per cord segment, mean"}),
             "analgesia_segment": (("case", "segment"),
                                   np.stack([r.analgesia_profile for r in rows]),
                                   {"units": "1", "long_name": "mean analgesia per segment"})},
            coords={"case": [f"{r.route}/{r.basis}" for r in rows],
                    "route": ("case", [r.route for r in rows]),
                    "basis": ("case", [r.basis for r in rows]),
                    "segment": self.segments},
            attrs={"title": "csfmodel route comparison",
                   **{f"ratio_{b}_{rt}": v for b, d in self.ratios.items()
                      for rt, v in d.items()},
                   "settings": json.dumps(self.settings, default=str)})
        return ds

    def table(self) -> str:
        """A readable text table."""
        s = self.settings
        lines = [
            f"Route comparison at steady state: {s['drug']}, target {s['target']} "
            f"(worst-covered segment), IT catheter tip {s['site']}",
            f"reference: {s['reference']}",
            "",
            f"{'route':<12}{'basis':<19}{'mg/day':>10}{'analg.':>8}{'DH ng/mL':>10}"
            f"{'brain':>9}{'plasma':>9}{'resp.dep':>9}{'DH:brain':>10}",
        ]
        for r in [self.reference, *self.routes]:
            lines.append(
                f"{r.route:<12}{r.basis:<19}{r.daily_dose_mg:>10.4g}{r.analgesia:>8.3f}"
                f"{r.target_dorsal_horn:>10.4g}{r.brain:>9.3g}{r.plasma:>9.3g}"
                f"{r.respiratory_depression:>9.3f}{r.selectivity:>10.4g}")
        eq, cm = self.ratios["equianalgesic"], self.ratios["equal_dorsal_horn"]
        lines += ["", "as prescriptions:"]
        lines += [f"  {r.basis:<19}{r.regimen}" for r in [self.reference, *self.routes]]
        lines += [
            "",
            "dose ratios oral : IV : IT (IT = 1)",
            f"  equianalgesic (model)      {eq['oral']:>10.4g} : {eq['iv']:>8.4g} : 1",
            f"  equal dorsal-horn conc.    {cm['oral']:>10.4g} : {cm['iv']:>8.4g} : 1",
            f"  clinical rule of thumb     {CLINICAL_RULE['oral']:>10.4g} : "
            f"{CLINICAL_RULE['iv']:>8.4g} : 1",
            "",
            "concentrations: DH = unbound dorsal horn at the worst-covered target segment, "
            "brain = unbound brain ECF, plasma = total; period means; resp.dep = fractional "
            "depression of ventilation",
            f"PD: EC50 dorsal horn {self.pd['ec50_spinal']:.4g} ng/mL, EC50 brain "
            f"{self.pd['ec50_brain']:.4g} ng/mL, gamma {self.pd['gamma']:.3g}, brain "
            f"effect-site delay {self.pd['t_half_brain_model']:.2f} h (BBB, in the PK model) "
            f"+ {self.pd['t_half_brain']:.2f} h",
        ]
        if self.it_rate_by_site:
            lines.append("equianalgesic IT rate by catheter tip (mg/day): " + ", ".join(
                f"{k} {v:.3g}" for k, v in self.it_rate_by_site.items()))
        if self.implied_spinal_ec50:
            imp = self.implied_spinal_ec50
            lines.append("spinal EC50 at which the model would give the rule of thumb: "
                         + ", ".join(f"{k} {v:.4g} ng/mL" if v else f"{k} none"
                                     for k, v in imp.items())
                         + f" (model: {self.pd['ec50_spinal']:.4g})")
        if self.sensitivity:
            lines += ["", "what drives the ratios: elasticity d ln(ratio) / d ln(parameter)",
                      f"  {'parameter':<34}{'oral:IT':>9}{'IV:IT':>9}{'oral:IV':>9}"]
            for k, v in self.sensitivity.items():
                lines.append(f"  {k:<34}{v['oral:IT']:>9.3f}{v['iv:IT']:>9.3f}"
                             f"{v['oral:IV']:>9.3f}")
        return "\n".join(lines)

    def plot(self, path: str | None = None):
        """Figure: target vs brain exposure per route; coverage along the spine."""
        from ._figure import plot_comparison

        return plot_comparison(self, path)
