"""``csfmodel compare``: equianalgesic IT / IV / oral doses (:mod:`csfmodel.compare`).

``--json`` prints :meth:`~csfmodel.compare.RouteComparison.to_dict` with the unit
of every number in its key (see :data:`UNITS_NOTE` and :func:`json_with_units`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

#: routes a reference regimen may take (``csfmodel.compare.ROUTES``, tested)
ROUTES = ("oral", "iv", "intrathecal")

#: how to read the units of ``csfmodel compare --json``
UNITS_NOTE = ("the unit of every number is the suffix of its key or, for numbers inside a "
              "table or list, of the nearest enclosing key that has one: _mg_per_day, "
              "_ng_per_ml (unbound dorsal horn and brain ECF, total plasma), _h, _cm, "
              "_fraction (0 to 1), _ratio (dose or concentration ratio), _dimensionless")

#: keys of ``RouteComparison.to_dict()`` renamed for ``--json`` (unknown keys are kept)
_TOP = {"clinical_rule_oral_iv_it": "clinical_rule_dose_ratio",
        "ratios": "dose_ratio",
        "sensitivity": "elasticity_dimensionless"}
_PD = {"ec50_spinal": "ec50_spinal_ng_per_ml", "ec50_brain": "ec50_brain_ng_per_ml",
       "ec50_resp": "ec50_resp_ng_per_ml", "gamma": "gamma_dimensionless",
       "gamma_resp": "gamma_resp_dimensionless", "interaction": "interaction_dimensionless",
       "t_half_spinal": "t_half_spinal_h", "t_half_brain": "t_half_brain_h",
       "t_half_brain_model": "t_half_brain_model_h"}
_ROUTE = {"daily_dose_mg": "daily_dose_mg_per_day", "analgesia": "analgesia_fraction",
          "target_dorsal_horn": "target_dorsal_horn_ng_per_ml",
          "target_dorsal_horn_mean": "target_dorsal_horn_mean_ng_per_ml",
          "brain": "brain_ng_per_ml", "brain_max": "brain_max_ng_per_ml",
          "plasma": "plasma_ng_per_ml", "lumbar_csf": "lumbar_csf_ng_per_ml",
          "respiratory_depression": "respiratory_depression_fraction",
          "respiratory_depression_max": "respiratory_depression_max_fraction",
          "selectivity": "selectivity_ratio", "cord_profile": "cord_profile_ng_per_ml",
          "analgesia_profile": "analgesia_profile_fraction"}


def json_with_units(d: dict[str, Any]) -> dict[str, Any]:
    """``RouteComparison.to_dict()`` with every numeric key naming its unit."""
    out: dict[str, Any] = {"units": UNITS_NOTE}
    for k, v in d.items():
        if k == "pd_parameters" and isinstance(v, dict):
            v = {_PD.get(kk, kk): vv for kk, vv in v.items()}
        elif k == "routes" and isinstance(v, list):
            v = [{_ROUTE.get(kk, kk): vv for kk, vv in r.items()} for r in v]
        out[_TOP.get(k, k)] = v
    return out


_TARGET_HELP = ("the pain target: one cord segment (C1 ... S5, e.g. T10) or a range running "
                "down the cord (e.g. T8-L1); analgesia, dorsal-horn concentration and "
                "selectivity are those of its worst-covered segment")


def register(subparsers) -> None:
    """Add ``csfmodel compare`` (argparse only)."""
    c = subparsers.add_parser(
        "compare", help="equianalgesic IT / IV / oral doses, supraspinal exposure, coverage",
        description="Find the intrathecal and IV infusion rates (and the oral dose) that "
                    "give the same steady-state analgesia as a reference regimen (spinal + "
                    "supraspinal effect model), beside the rates giving the same dorsal-horn "
                    "concentration; print the table, the dose ratios next to the clinical "
                    "rule of thumb (IT : IV : oral ~ 1 : 100 : 300) and what drives them, "
                    "and draw a figure with --plot. Runs on defaults with no arguments.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("--reference", default="oral", choices=ROUTES,
                   help="route of the reference regimen")
    c.add_argument("--oral-dose", default="30 mg", help="reference oral dose")
    c.add_argument("--interval", default="12 h", help="oral dosing interval")
    c.add_argument("--iv-rate", help="reference IV infusion rate, e.g. '15 mg/day'")
    c.add_argument("--it-rate", help="reference IT infusion rate at --site, e.g. '0.5 mg/day'")
    c.add_argument("--formulation", default="controlled", help="controlled or immediate")
    c.add_argument("--site", default="T10", help="IT catheter tip (level or '45 cm')")
    c.add_argument("--target", default="L1-L5", help=_TARGET_HELP)
    c.add_argument("--drug", default="morphine",
                   help="drug preset; other than morphine it needs --spinal-ec50, "
                        "--brain-ec50 and --resp-ec50")
    c.add_argument("--resolution", default="5 mm", help="grid resolution")
    c.add_argument("--spinal-ec50", default=None,
                   help="override the spinal EC50 (unbound dorsal horn), e.g. '500 ng/mL'")
    c.add_argument("--brain-ec50", default=None,
                   help="override the supraspinal analgesic EC50 (unbound brain ECF)")
    c.add_argument("--resp-ec50", default=None,
                   help="override the respiratory-depression EC50 (unbound brain ECF)")
    c.add_argument("--interaction", type=float, default=0.0,
                   help="spinal-supraspinal interaction beta (0 = additive)")
    c.add_argument("--no-sensitivity", action="store_true", help="skip the elasticities")
    c.add_argument("--plot", default=None,
                   help="also draw the figure to this file (format from the extension: .png, "
                        ".pdf, .svg, ...); no figure without it")
    c.add_argument("--json", action="store_true",
                   help="print the numbers as JSON only; every key names the unit of its "
                        "numbers (see the 'units' entry)")
    c.set_defaults(func=cmd_compare)


_EC50_FLAGS = (("spinal_ec50", "ec50_spinal"), ("brain_ec50", "ec50_brain"),
               ("resp_ec50", "ec50_resp"))


def _check_drug_potencies(args: argparse.Namespace) -> None:
    """A drug other than morphine needs its three potencies, given as CLI flags."""
    from csfmodel.drugs import get_drug
    from csfmodel.errors import ScenarioError

    drug = get_drug(args.drug, "--drug")
    missing = ["--" + opt.replace("_", "-") for opt, _ in _EC50_FLAGS if not getattr(args, opt)]
    if drug.name != "morphine" and missing:
        raise ScenarioError(
            "--drug", args.drug, "morphine, or explicit potencies for this drug: "
            "--spinal-ec50, --brain-ec50 and --resp-ec50 (unbound, e.g. '500 ng/mL')",
            detail="the published potencies of the effect model are morphine's; missing "
                   + ", ".join(missing))


def cmd_compare(args: argparse.Namespace) -> int:
    from csfmodel._io import check_figure_path
    from csfmodel.errors import ScenarioError
    from csfmodel.units import convert

    if args.plot:                   # checked before the (long) computation
        check_figure_path(args.plot, "--plot")
    _check_drug_potencies(args)

    from csfmodel import compare
    from csfmodel.effects import EffectParameters

    p = EffectParameters(interaction=args.interaction)
    for opt, field_ in _EC50_FLAGS:
        value = getattr(args, opt)
        if value:
            flag = "--" + opt.replace("_", "-")
            c = convert(value, "ug/mL", flag) * 1000.0     # ng/mL
            if not c > 0:
                raise ScenarioError(flag, value, "a positive concentration such as '500 ng/mL'")
            p = p.with_(**{field_: c})
    res = compare.compare_routes(reference=args.reference, iv_rate=args.iv_rate,
                                 it_rate=args.it_rate, oral_dose=args.oral_dose,
                                 interval=args.interval, formulation=args.formulation,
                                 site=args.site, target=args.target, drug=args.drug,
                                 resolution=args.resolution, params=p,
                                 sensitivity=not args.no_sensitivity)
    if args.plot:
        from pathlib import Path

        import matplotlib

        from csfmodel._io import save_figure

        matplotlib.use("Agg")
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        save_figure(res.plot(), args.plot, dpi=120)
    if args.json:
        d = json_with_units(res.to_dict())
        if args.plot:
            d["figure"] = args.plot
        json.dump(d, sys.stdout, indent=1)
        print()
    else:
        print(res.table())
        if args.plot:
            print(f"\nwrote {args.plot}")
    return 0
