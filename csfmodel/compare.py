r"""Route comparison: equianalgesic doses of intrathecal, IV and oral morphine.

Given a reference regimen (by default controlled-release oral morphine 30 mg
every 12 h) and a pain target (a cord segment or a range of them), this module
finds, at steady state,

* the **intrathecal infusion rate** at a given catheter tip, and
* the **IV infusion rate**,

that give the same analgesia as the reference, with analgesia from the
spinal + supraspinal response surface of :mod:`csfmodel.effects`; and, beside
them, the rates that give the same **dorsal-horn concentration** at the
target. It reports the dose ratios oral : IV : IT, each route's supraspinal
exposure and respiratory depression at those doses, the coverage along the
spine, and the elasticities of the ratios with respect to the parameters that
drive them.

How it is computed
------------------
*Steady states directly* (:mod:`csfmodel.steady_state`): the reference's
periodic steady state by one linear solve; each infusion's plateau by one
sparse solve of :math:`J_c y = -u` for a unit rate.

*Linearity*: concentrations scale with the rate, so the concentration-matching
rate is one division. Analgesia is nonlinear (sigmoid), so the equianalgesic
rate is the root of :math:`A(k\,c_{unit}) = A_{ref}` in :math:`k`, found with
:func:`scipy.optimize.brentq` on :math:`\log k` (A rises monotonically with k).

*Analgesia of a periodic reference*: the time average over the dosing
interval of the analgesia at periodic steady state (effect sites at their own
periodic steady state).

The CLI ``csfmodel compare`` runs it with the defaults and no arguments,
prints a table (a figure only with ``--plot FILE``), and ``--json`` prints the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from csfmodel.effects import (
    EffectParameters,
    ResolvedEffects,
    analgesia,
    effect_site_periodic,
    resolve,
    respiratory_depression,
    target_segments,
)

if TYPE_CHECKING:
    from csfmodel.dosing import OralDose
    from csfmodel.model import Model

__all__ = ["compare_routes", "RouteComparison", "RouteResult", "CLINICAL_RULE",
           "unit_plateaus", "reference_steady_state", "ROUTES"]

#: The clinics' rule of thumb (seeds: 1/300 of the oral dose, 1/100 of the IV dose).
CLINICAL_RULE = {"oral": 300.0, "iv": 100.0, "intrathecal": 1.0}

_PER_DAY = 1.44     # ug/min -> mg/day


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
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        colors = {"oral": "tab:orange", "iv": "tab:red", "intrathecal": "tab:blue"}
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
        ax = axes[0]
        for r in [self.reference, *self.routes]:
            eq = r.basis != "equal dorsal-horn"
            big = r.basis == "reference"
            ax.scatter(r.brain, r.target_dorsal_horn, s=140 if big else 60,
                       color=colors[r.route], marker="D" if big else ("o" if eq else "s"),
                       facecolors="none" if (big or not eq) else colors[r.route], zorder=3,
                       label=f"{r.route} {r.daily_dose_mg:.3g} mg/day ({r.basis})")
        ax.axhline(self.pd["ec50_spinal"], color="0.5", ls=":", lw=1)
        ax.axvline(self.pd["ec50_brain"], color="0.5", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("brain ECF, unbound (ng/mL)")
        ax.set_ylabel("target dorsal horn, unbound (ng/mL)")
        ax.set_title("target vs brain exposure (dotted: EC50s)")
        ax.legend(fontsize=7, loc="best")
        x = np.arange(len(self.segments))
        tgt = [self.segments.index(t) for t in self.target]
        for ax in axes[1:]:
            ax.axvspan(min(tgt) - 0.5, max(tgt) + 0.5, color="0.9")
        for r in [self.reference, *self.routes]:
            if r.basis == "equal dorsal-horn":
                continue
            ls = "--" if r.route == "iv" else "-"
            axes[1].semilogy(x, np.maximum(r.cord_profile, 1e-6), color=colors[r.route], ls=ls,
                             label=f"{r.route} {r.daily_dose_mg:.3g} mg/day")
            axes[2].plot(x, r.analgesia_profile, color=colors[r.route], ls=ls, label=r.route)
        axes[1].axhline(self.pd["ec50_spinal"], color="0.5", ls=":", lw=1,
                        label="spinal EC50")
        axes[1].set_ylabel("dorsal horn, unbound (ng/mL)")
        axes[1].set_title("coverage along the spine (equianalgesic doses)")
        axes[2].set_ylabel("analgesia (fraction of max)")
        axes[2].set_ylim(0, 1)
        axes[2].set_title("analgesia per segment (shaded: target)")
        for ax in axes[1:]:
            ax.set_xticks(x[::2])
            ax.set_xticklabels(self.segments[::2], rotation=90, fontsize=7)
            ax.set_xlabel("cord segment")
            ax.legend(fontsize=7)
        fig.tight_layout()
        if path is not None:
            from csfmodel._io import save_figure

            save_figure(fig, path, dpi=120, close=False)
        return fig


# ---------------------------------------------------------------- machinery
_OBSERVED = {"cord": "cord_concentration", "brain": "brain_concentration",
             "plasma": "plasma_concentration", "lumbar_csf": "csf_concentration"}


def _concentrations(model, states: np.ndarray) -> dict[str, np.ndarray]:
    """Reported concentrations (ng/mL) from amounts; works on (n_state,) or (k, n_state).

    The same observation of the state as the results of a simulation
    (:func:`csfmodel.results.observation`); ``lumbar_csf`` is the spinal CSF cell at L3.
    """
    from csfmodel.results import observation

    obs = observation(model, tuple(_OBSERVED.values())).apply(np.asarray(states),
                                                                model.system.volume)
    z_l3 = model.anatomy.level_z("L3")
    n = model.system.n_spinal
    i_l3 = int(np.clip(np.searchsorted(model.grid.edges, z_l3) - 1, 0, n - 1))
    out = {k: obs[v] for k, v in _OBSERVED.items()}
    out["lumbar_csf"] = out["lumbar_csf"][..., i_l3]
    return out


def unit_plateaus(model: Model, site_z: float) -> dict[str, dict[str, np.ndarray]]:
    """Plateau concentrations per 1 ug/min of IT infusion at ``site_z`` and of IV infusion."""
    from csfmodel.steady_state import input_vector, plateau

    u = np.stack([input_vector(model, "intrathecal", 1.0, site_z),
                  input_vector(model, "iv", 1.0)], axis=1)
    y = plateau(model, u)
    return {"intrathecal": _concentrations(model, y[:, 0]),
            "iv": _concentrations(model, y[:, 1])}


def reference_steady_state(model: Model, regimen: OralDose, period: float, step: float = 5.0
                           ) -> tuple[np.ndarray, dict[str, np.ndarray], Any]:
    """Periodic steady state of a periodic regimen: (t in h, concentrations, raw result)."""
    from csfmodel.dosing import expand
    from csfmodel.model import build_schedule
    from csfmodel.steady_state import periodic_steady_state

    sched = build_schedule(model, expand([regimen], period), period)
    pss = periodic_steady_state(model, sched, n_out=int(np.ceil(period / step)) + 1)
    return pss.times / 60.0, _concentrations(model, pss.states), pss


def _mean(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.trapezoid(y, t, axis=0) / (t[-1] - t[0])


@dataclass
class _Units:
    """Steady-state responses per unit dose of each route (PK only, linear in the dose).

    ``oral``: periodic steady state per 1 ug every ``period`` min (time course over
    one period, ``t`` in h); ``iv``/``intrathecal``: plateau per 1 ug/min.
    """

    t: np.ndarray
    period: float
    oral: dict[str, np.ndarray]
    plateau: dict[str, dict[str, np.ndarray]]

    def per_day(self, route: str) -> float:
        """mg/day per unit dose of ``route``."""
        return 1.44 / self.period if route == "oral" else _PER_DAY

    def conc(self, route: str, k: float) -> dict[str, np.ndarray]:
        src = self.oral if route == "oral" else self.plateau[route]
        return {n: k * v for n, v in src.items()}

    def mean_cord(self, route: str) -> np.ndarray:
        if route == "oral":
            return _mean(self.t, self.oral["cord"])
        return self.plateau[route]["cord"]


def _units(model, site_z: float, formulation: str, period: float) -> _Units:
    from csfmodel.dosing import OralDose

    t, conc, _ = reference_steady_state(model, OralDose(1.0, formulation=formulation), period)
    return _Units(t=t, period=period, oral=conc, plateau=unit_plateaus(model, site_z))


class _Analgesia:
    """Mean steady-state analgesia of a route as a function of its dose ``k``.

    The effect sites are linear filters, so their periodic steady state per unit
    dose is computed once; each evaluation only applies the (nonlinear) response
    surface.
    """

    def __init__(self, units: _Units, route: str, r: ResolvedEffects, tgt_idx: np.ndarray):
        self.r, self.tgt, self.route = r, tgt_idx, route
        if route == "oral":
            t = units.t
            self.t = t
            self.ce_s = effect_site_periodic(units.oral["cord"][:, tgt_idx], t,
                                             r.t_half_spinal)
            self.ce_b = effect_site_periodic(units.oral["brain"], t, r.t_half_brain)[:, None]
        else:
            self.t = None
            self.ce_s = units.plateau[route]["cord"][tgt_idx]
            self.ce_b = units.plateau[route]["brain"]

    def __call__(self, k: float) -> float:
        a = analgesia(k * self.ce_s, k * self.ce_b, self.r)
        if self.t is None:
            return float(a.min())
        return float(_mean(self.t, a.min(axis=1)))


def _route_result(route, basis, k, units: _Units, r: ResolvedEffects, tgt_idx) -> RouteResult:
    """Summaries of one route at dose ``k`` (ug per dose for oral, ug/min otherwise)."""
    conc = units.conc(route, k)
    if route != "oral":
        cord, brain = conc["cord"], conc["brain"]
        a_seg = analgesia(cord, brain, r)
        rd = float(respiratory_depression(brain, r))
        out = dict(analgesia=float(a_seg[tgt_idx].min()), brain=float(brain),
                   brain_max=float(brain), plasma=float(conc["plasma"]),
                   lumbar_csf=float(conc["lumbar_csf"]), respiratory_depression=rd,
                   respiratory_depression_max=rd, cord_profile=np.asarray(cord),
                   analgesia_profile=np.asarray(a_seg))
    else:
        t = units.t
        ce_s = effect_site_periodic(conc["cord"], t, r.t_half_spinal)
        ce_b = effect_site_periodic(conc["brain"], t, r.t_half_brain)
        a_seg_t = analgesia(ce_s, ce_b[:, None], r)
        a_t = a_seg_t[:, tgt_idx].min(axis=1)
        rd_t = respiratory_depression(ce_b, r)
        out = dict(analgesia=float(_mean(t, a_t)), brain=float(_mean(t, conc["brain"])),
                   brain_max=float(conc["brain"].max()), plasma=float(_mean(t, conc["plasma"])),
                   lumbar_csf=float(_mean(t, conc["lumbar_csf"])),
                   respiratory_depression=float(_mean(t, rd_t)),
                   respiratory_depression_max=float(rd_t.max()),
                   cord_profile=_mean(t, conc["cord"]), analgesia_profile=_mean(t, a_seg_t))
    dh = out["cord_profile"][tgt_idx]
    return RouteResult(route=route, basis=basis, daily_dose_mg=float(k * units.per_day(route)),
                       target_dorsal_horn=float(dh.min()),
                       target_dorsal_horn_mean=float(dh.mean()),
                       selectivity=float(dh.min() / out["brain"]) if out["brain"] > 0
                       else float("inf"), **out)


def _solve_dose(f: _Analgesia, a_ref: float) -> float:
    """Dose ``k`` with ``f(k) = a_ref`` (brentq on log k; f rises monotonically)."""
    from scipy.optimize import brentq

    lo, hi = np.log(1e-9), np.log(1e12)
    g = lambda x: f(float(np.exp(x))) - a_ref  # noqa: E731
    if not g(lo) < 0 < g(hi):
        raise ValueError(f"analgesia {a_ref:.3g} not reachable by the {f.route} route")
    return float(np.exp(brentq(g, lo, hi, xtol=1e-12, rtol=1e-12)))


ROUTES = ("oral", "iv", "intrathecal")


def _equianalgesic(units: _Units, r: ResolvedEffects, tgt_idx, ref_route: str, ref_k: float
                   ) -> tuple[float, dict[str, float]]:
    """Reference analgesia and the equianalgesic dose of every route (unit doses)."""
    a_ref = _Analgesia(units, ref_route, r, tgt_idx)(ref_k)
    ks = {rt: (ref_k if rt == ref_route else _solve_dose(_Analgesia(units, rt, r, tgt_idx),
                                                           a_ref)) for rt in ROUTES}
    return a_ref, ks


def _ratios(units: _Units, ks: dict[str, float]) -> dict[str, float]:
    """Daily-dose ratios with IT = 1."""
    daily = {rt: ks[rt] * units.per_day(rt) for rt in ROUTES}
    return {rt: daily[rt] / daily["intrathecal"] for rt in ROUTES}


# ---------------------------------------------------------------- main entry
def _setup(drug: str, patient: dict | None, resolution: str, site: str):
    from csfmodel.model import build_model
    from csfmodel.scenario import parse_scenario, parse_site

    sc = parse_scenario({"simulation": {"resolution": resolution},
                         "patient": dict(patient or {}), "drug": {"name": drug}})
    model = build_model(sc.anatomy, sc.drug, sc.simulation.resolution)
    return sc, model, parse_site(site, sc.anatomy, "site")


def _implied_spinal_ec50(units: _Units, r: ResolvedEffects, tgt_idx, ref_route, ref_k
                         ) -> dict[str, float | None]:
    """Spinal EC50 (unbound dorsal horn, ng/mL) at which the model meets the clinical rule.

    The PK is linear and independent of the effect model, so the unit responses
    are reused; only the analgesia is re-evaluated for each trial EC50 (brentq
    on its logarithm).
    """
    from scipy.optimize import brentq

    def ratios(log_ec50: float) -> dict[str, float]:
        r_ = replace(r, ec50_spinal=float(np.exp(log_ec50)))
        return _ratios(units, _equianalgesic(units, r_, tgt_idx, ref_route, ref_k)[1])

    out: dict[str, float | None] = {}
    lo, hi = np.log(r.ec50_spinal) - 12.0, np.log(r.ec50_spinal) + 12.0
    for route, key in (("oral", "oral:IT"), ("iv", "IV:IT")):
        def f(x: float, route=route) -> float:
            return np.log(ratios(x)[route]) - np.log(CLINICAL_RULE[route])

        try:
            out[key] = float(np.exp(brentq(f, lo, hi, xtol=1e-6)))
        except ValueError:
            out[key] = None
    return out


def _reference_dose(reference: str, oral_dose, iv_rate, it_rate, period) -> tuple[str, float]:
    """(route, unit dose) of the reference: ug per oral dose, or ug/min."""
    from csfmodel.errors import ScenarioError
    from csfmodel.units import convert

    ref = str(reference).lower()
    ref = {"it": "intrathecal", "intravenous": "iv"}.get(ref, ref)
    if ref not in ROUTES:
        raise ScenarioError("reference", reference, "one of: oral, iv, intrathecal")
    if ref == "oral":
        k = convert(oral_dose, "ug", "oral_dose")
        if not k > 0:
            raise ScenarioError("oral_dose", oral_dose, "a positive amount such as '30 mg'")
        return ref, k
    key, value = ("iv_rate", iv_rate) if ref == "iv" else ("it_rate", it_rate)
    if value is None:
        raise ScenarioError(key, None, f"a rate such as '1 mg/day' for the {ref} reference",
                            detail="missing")
    k = convert(value, "ug/min", key)
    if not k > 0:
        raise ScenarioError(key, value, "a positive rate such as '1 mg/day'")
    return ref, k


def _describe(ref_route, ref_k, units, form, oral_dose, interval, iv_rate, it_rate, site):
    daily = ref_k * units.per_day(ref_route)
    if ref_route == "oral":
        return f"oral {form}-release {oral_dose} every {interval} ({daily:.4g} mg/day)"
    if ref_route == "iv":
        return f"IV infusion {iv_rate} ({daily:.4g} mg/day)"
    return f"intrathecal infusion {it_rate} at {site} ({daily:.4g} mg/day)"


def compare_routes(*, reference: str = "oral", oral_dose: str = "30 mg",
                   interval: str = "12 h", formulation: str = "controlled",
                   iv_rate: str | None = None, it_rate: str | None = None,
                   site: str = "T10", target: str | list[str] = "L1-L5",
                   drug: str = "morphine", patient: dict | None = None,
                   resolution: str = "5 mm", params: EffectParameters | None = None,
                   sensitivity: bool = True,
                   sites: tuple[str, ...] = ("T6", "T8", "T10", "T12", "L2", "L4")
                   ) -> RouteComparison:
    """Equianalgesic oral, IV and IT doses at steady state for a reference regimen.

    Parameters
    ----------
    reference
        Route of the reference regimen: ``"oral"`` (``oral_dose`` every
        ``interval``), ``"iv"`` (infusion ``iv_rate``) or ``"intrathecal"``
        (infusion ``it_rate`` at ``site``).
    oral_dose, interval, formulation
        The oral regimen: dose, dosing interval, ``"controlled"`` or
        ``"immediate"`` release. For a non-oral reference, the equianalgesic
        oral dose is found for this interval and formulation.
    iv_rate, it_rate
        Reference infusion rates with units ("15 mg/day").
    site
        IT catheter tip: vertebral level, interspace or "45 cm".
    target
        Pain target: a cord segment ("T10"), a range ("L1-L5") or a list.
    drug, patient, resolution
        Drug preset, ``[patient]`` overrides (with units) and grid resolution,
        as in a scenario.
    params
        Effect-model parameters (:class:`~csfmodel.effects.EffectParameters`).
    sensitivity
        Also compute the elasticities of the ratios (about 20 more steady-state
        solves) and the spinal EC50 implied by the clinical rule.
    sites
        Catheter tips at which to report the equianalgesic IT rate as well.

    Returns
    -------
    RouteComparison
    """
    from csfmodel.anatomy import CORD_SEGMENTS
    from csfmodel.errors import ScenarioError
    from csfmodel.scenario import parse_site
    from csfmodel.units import convert

    sc, model, site_z = _setup(drug, patient, resolution, site)
    period = convert(interval, "min", "interval")
    if not 60.0 <= period <= 2880.0:
        raise ScenarioError("interval", interval, "a dosing interval between 1 h and 48 h")
    form = {"controlled": "controlled", "cr": "controlled", "immediate": "immediate",
            "ir": "immediate"}.get(str(formulation).lower())
    if form is None:
        raise ScenarioError("formulation", formulation, "'controlled' (CR) or 'immediate' (IR)")
    ref_route, ref_k = _reference_dose(reference, oral_dose, iv_rate, it_rate, period)
    segs = target_segments(target)
    tgt_idx = np.array([CORD_SEGMENTS.index(s) for s in segs])
    p = params or EffectParameters()
    r = resolve(p, model)
    units = _units(model, site_z, form, period)
    a_ref, ks = _equianalgesic(units, r, tgt_idx, ref_route, ref_k)
    ref = _route_result(ref_route, "reference", ref_k, units, r, tgt_idx)
    routes = [_route_result(rt, "equianalgesic", ks[rt], units, r, tgt_idx)
              for rt in ROUTES if rt != ref_route]
    # equal dorsal-horn concentration at the worst target segment (linear: one division)
    match = {}
    for rt in ROUTES:
        match[rt] = ref_k if rt == ref_route else \
            ref.target_dorsal_horn / float(units.mean_cord(rt)[tgt_idx].min())
        if rt != ref_route:
            routes.append(_route_result(rt, "equal dorsal-horn", match[rt], units, r, tgt_idx))
    ratios = {"equianalgesic": _ratios(units, ks), "equal_dorsal_horn": _ratios(units, match)}
    for res_ in [ref, *routes]:
        if res_.route == "oral":
            mg = res_.daily_dose_mg * period / 1440.0
            res_.regimen = f"oral {form} release {mg:.4g} mg every {interval}"
        elif res_.route == "iv":
            res_.regimen = f"IV infusion {res_.daily_dose_mg:.4g} mg/day"
        else:
            res_.regimen = f"IT infusion {res_.daily_dose_mg:.4g} mg/day at {site}"
    by_site = {}
    for s in sites:
        z = parse_site(s, sc.anatomy, "sites")        # the same anatomy: no model to build
        u_s = replace(units, plateau=unit_plateaus(model, z))  # a_ref stays the reference's
        by_site[s] = _solve_dose(_Analgesia(u_s, "intrathecal", r, tgt_idx), a_ref) * _PER_DAY
    sens = _sensitivity(sc, model, units, site_z, form, period, p, tgt_idx, ref_route,
                        ref_k) if sensitivity else {}
    implied = _implied_spinal_ec50(units, r, tgt_idx, ref_route, ref_k) if sensitivity else {}
    settings = {"drug": sc.drug.name, "site": site, "site_z_cm": site_z,
                "target": target if isinstance(target, str) else ",".join(segs),
                "reference": _describe(ref_route, ref_k, units, form, oral_dose, interval,
                                       iv_rate, it_rate, site),
                "reference_route": ref_route,
                "oral_regimen": f"{form} release every {interval}",
                "resolution_cm": model.grid.dz, "patient": dict(patient or {}),
                "steady_state": "periodic (oral) and plateau (infusions), solved directly"}
    return RouteComparison(settings=settings, pd=r.as_dict(), reference=ref, routes=routes,
                           ratios=ratios, segments=list(CORD_SEGMENTS), target=segs,
                           sensitivity=sens, it_rate_by_site=by_site,
                           implied_spinal_ec50=implied)


def _sensitivity(sc, base_model, base_units, site_z, form, period, p: EffectParameters,
                 tgt_idx, ref_route, ref_k, h: float = 0.1) -> dict:
    """Elasticities d ln(ratio)/d ln(parameter) by central differences (+-10 %).

    ``base_model`` and ``base_units`` are the comparison's own (PD parameters vary on
    them); the PK parameters each need a model of their own.
    """
    from csfmodel.model import build_model

    res = sc.simulation.resolution
    drug, an = sc.drug, sc.anatomy

    def ratios_for(model_, p_) -> dict[str, float]:
        units = base_units if model_ is base_model else _units(model_, site_z, form, period)
        _, ks = _equianalgesic(units, resolve(p_, model_), tgt_idx, ref_route, ref_k)
        rr = _ratios(units, ks)
        return {"oral:IT": rr["oral"], "iv:IT": rr["iv"], "oral:IV": rr["oral"] / rr["iv"]}

    cases: dict[str, Any] = {
        "spinal EC50 (PD)": lambda f: (base_model, p.with_(
            spinal_threshold_pmol_per_mg=p.spinal_threshold_pmol_per_mg * f,
            ec50_spinal=None if p.ec50_spinal is None else p.ec50_spinal * f)),
        "supraspinal EC50 (PD)": lambda f: (base_model, p.with_(
            c50_brain_nM=p.c50_brain_nM * f,
            ec50_brain=None if p.ec50_brain is None else p.ec50_brain * f)),
        "gamma (PD)": lambda f: (base_model, p.with_(gamma=p.gamma * f)),
        "oral bioavailability F": lambda f: (build_model(
            an, replace(drug, f_oral=min(drug.f_oral * f, 1.0)), res), p),
        "brain Kp,uu": lambda f: (build_model(
            an, replace(drug, kpuu_brain=drug.kpuu_brain * f), res), p),
        "systemic clearance": lambda f: (build_model(an, replace(drug, cl=drug.cl * f), res),
                                         p),
        "meningeal permeability": lambda f: (build_model(an, replace(
            drug, meningeal_permeability=drug.meningeal_p() * f), res), p),
        "CSF dispersion": lambda f: (build_model(replace(an, dispersion=an.dispersion * f),
                                                 drug, res), p),
        "cord and brain efflux (BSCB/BBB)": lambda f: (build_model(
            an, replace(drug, bbb_efflux=drug.bbb_efflux * f), res), p),
    }
    out = {}
    for name, make in cases.items():
        hi = ratios_for(*make(1.0 + h))
        lo = ratios_for(*make(1.0 - h))
        out[name] = {k: float((np.log(hi[k]) - np.log(lo[k]))
                              / (np.log(1.0 + h) - np.log(1.0 - h))) for k in hi}
    return out
