"""Sensitivity of the rows: to the calibrated parameters (local derivatives) and
to the design assumptions the abstracts leave open."""

from __future__ import annotations

import math
from typing import Any

from . import _designs
from ._fit import DEFAULT_FIT, FIT_PARAMETERS, _overrides, fitted_values
from ._jacobian import row_values_and_derivatives
from ._rows import NOT_MODELLED, Row, load_rows
from ._runner import run_validation


def sensitivity(rows: list[Row] | None = None, step: float | None = None,
                solver: str | None = None, parameters=DEFAULT_FIT
                ) -> dict[str, dict[str, float]]:
    """Local sensitivities ``d log(model) / d log(parameter)`` of every row at the
    calibrated defaults.

    Exact by default: the rows' derivatives from the forward sensitivities of their
    study arms (:func:`~csfmodel.validation._jacobian.row_values_and_derivatives`, the
    joint fit's Jacobian). With ``step``: central differences of whole validation runs
    with each parameter scaled by ``1 +- step`` (on ``solver``).

    Returns
    -------
    dict
        ``{parameter: {row id: sensitivity}}`` (NaN where the model value is not
        positive).
    """
    rows = load_rows() if rows is None else rows
    rows = [r for r in rows if r.id not in NOT_MODELLED]
    names = list(parameters)
    out: dict[str, dict[str, float]] = {}
    if step is None:
        vals = [FIT_PARAMETERS[n].default() for n in names]
        values, D = row_values_and_derivatives(rows, _overrides(names, vals),
                                               fitted_values(names, vals))
        for j, name in enumerate(names):
            out[name] = {r.id: (float(D[i, j] / values[i]) if values[i] > 0 else float("nan"))
                         for i, r in enumerate(rows)}
        return out
    for name in names:
        p = FIT_PARAMETERS[name]
        vals_pm = []
        for f in (1.0 + step, 1.0 - step):
            vals_pm.append({r.row.id: r.model for r in run_validation(
                rows, overrides=p.override(p.default() * f), solver=solver)})
        d = math.log((1.0 + step) / (1.0 - step))
        out[name] = {k: (math.log(vals_pm[0][k] / vals_pm[1][k]) / d
                         if vals_pm[0][k] > 0 and vals_pm[1][k] > 0 else float("nan"))
                     for k in vals_pm[0]}
    return out


def format_sensitivity(sens: dict[str, dict[str, float]]) -> str:
    """Sensitivity table: rows by calibrated parameters."""
    names = list(sens)
    ids = list(next(iter(sens.values())))
    w = max(len(i) for i in ids)
    short = {"dispersion": "D_0", "injection_spread": "kappa", "meningeal_permeability": "P_men",
             "ka_cr": "ka_cr", "dispersion_caudal_fraction": "f_D"}
    lines = [f"{'row':<{w}}" + "".join(f"{short.get(n, n):>9}" for n in names)]
    for i in ids:
        lines.append(f"{i:<{w}}" + "".join(f"{sens[n][i]:>9.2f}" for n in names))
    return "\n".join(lines)


# ------------------------------------------------------ design assumptions
#: Assumptions the abstracts leave open, with the alternatives tried by
#: :func:`design_sensitivity`: (module constant, [(label, value), ...]).
DESIGN_ALTERNATIVES: dict[str, tuple[str, list[tuple[str, Any]]]] = {
    "Moulin: where 'lumbar CSF' was sampled": ("MOULIN_LUMBAR_SITE", [
        ("L2-L3", ("L2", 1.0)), ("L3-L4 (used)", ("L3", 1.0)), ("L4-L5", ("L4", 1.0)),
        ("catheter tip", "tip")]),
    "Moulin: bolus volume (mL)": ("MOULIN_BOLUS_VOLUME_ML", [
        ("0.5", 0.5), ("1 (used)", 1.0), ("2", 2.0)]),
    "Caute: injected volume (mL)": ("CAUTE_VOLUME_ML", [
        ("1", 1.0), ("2 (used)", 2.0), ("4", 4.0)]),
    "Caute: where the hyperbaric dose settles": ("CAUTE_HYPERBARIC_SITE", [
        ("L5", "L5"), ("S1 (used)", "S1"), ("S2", "S2")]),
}


def design_sensitivity(solver: str | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """Ratios model/observed of the affected rows under each alternative assumption.

    Returns
    -------
    dict
        ``{assumption: {alternative: {row id: ratio}}}`` (only the rows of the
        study concerned).
    """
    mod = _designs   # the module whose constants the designs read
    rows = load_rows()
    out: dict[str, dict[str, dict[str, float]]] = {}
    for label, (const, alternatives) in DESIGN_ALTERNATIVES.items():
        prefix = "moulin86" if label.startswith("Moulin") else "caute88"
        use = [r for r in rows if r.id.startswith(prefix)]
        if "hyperbaric" in label:
            use = [r for r in use if "hyper" in r.id]
        elif prefix == "caute88":
            use = [r for r in use if "iso" in r.id]
        elif "bolus" in label:
            use = [r for r in use if "thalf" in r.id]
        saved = getattr(mod, const)
        out[label] = {}
        try:
            for alt, value in alternatives:
                setattr(mod, const, value)
                out[label][alt] = {r.row.id: r.ratio for r in run_validation(use, solver=solver)}
        finally:
            setattr(mod, const, saved)
    return out


def format_design_sensitivity(sens: dict[str, dict[str, dict[str, float]]]) -> str:
    """The design sensitivity as text: one block per assumption."""
    lines = []
    for label, alts in sens.items():
        lines.append(f"{label}: model/observed")
        ids = list(next(iter(alts.values())))
        w = max(len(i) for i in ids)
        lines.append(f"  {'':<{w}}" + "".join(f"{a:>14}" for a in alts))
        for i in ids:
            lines.append(f"  {i:<{w}}" + "".join(f"{alts[a][i]:>14.2f}" for a in alts))
    return "\n".join(lines)

