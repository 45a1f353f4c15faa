"""Elasticities of the dose ratios with respect to the PD and PK parameters that drive them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from csfmodel.effects import EffectParameters, resolve

from ._finder import _equianalgesic, _ratios
from ._units import _units


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
