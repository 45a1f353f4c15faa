"""The entry point :func:`compare_routes`: checks the inputs, runs the finder, collects."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from csfmodel.effects import EffectParameters, resolve, target_segments

from ._finder import (
    _Analgesia,
    _equianalgesic,
    _implied_spinal_ec50,
    _ratios,
    _route_result,
    _solve_dose,
)
from ._record import RouteComparison
from ._sensitivity import _sensitivity
from ._units import _PER_DAY, ROUTES, _units, unit_plateaus


def _setup(drug: str, patient: dict | None, resolution: str, site: str):
    from csfmodel.model import build_model
    from csfmodel.scenario import parse_scenario, parse_site

    sc = parse_scenario({"simulation": {"resolution": resolution},
                         "patient": dict(patient or {}), "drug": {"name": drug}})
    model = build_model(sc.anatomy, sc.drug, sc.simulation.resolution)
    return sc, model, parse_site(site, sc.anatomy, "site")


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
