"""The equianalgesic finder: analgesia of a route as a function of its dose, and its root.

Analgesia is nonlinear (sigmoid) in the dose, so the equianalgesic dose is the root of
``A(k c_unit) = A_ref`` in ``k`` (brentq on ``log k``); the dose ratios follow, and the
spinal EC50 at which they would equal the clinical rule of thumb.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from csfmodel.effects import (
    ResolvedEffects,
    analgesia,
    effect_site_periodic,
    respiratory_depression,
)

from ._record import RouteResult
from ._units import CLINICAL_RULE, ROUTES, _mean, _Units


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
