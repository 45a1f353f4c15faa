"""``csfmodel sensitivity SCENARIO.toml --param KEY ... -o SENS.nc``: exact derivatives of
every output (:func:`csfmodel.fitting.sensitivity`)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    """Add ``csfmodel sensitivity`` (argparse only)."""
    p = subparsers.add_parser(
        "sensitivity",
        help="exact derivatives of every output with respect to scenario values",
        description="Solve the forward sensitivity equations: d output / d parameter for every "
                    "output variable of `csfmodel run` (same names, with a parameter "
                    "dimension; per the unit the scenario writes the parameter in) and the "
                    "elasticities d ln output / d ln parameter (<name>_elasticity). Prints a "
                    "summary (each compartment's elasticity where it responds most) and "
                    "writes netCDF with -o.")
    p.add_argument("scenario", help="scenario TOML file")
    p.add_argument("--param", action="append", required=True, metavar="KEY",
                   help="a scenario key, e.g. patient.dispersion (repeat for more)")
    p.add_argument("-o", "--output", metavar="SENS.nc", help="write the Dataset (netCDF)")
    p.add_argument("--rtol", type=float, default=None, help="integration tolerance")
    p.set_defaults(func=cmd_sensitivity)


_SUMMARY = ("cisternal_csf_concentration", "brain_concentration", "plasma_concentration")


def cmd_sensitivity(args: argparse.Namespace) -> int:
    import numpy as np

    from csfmodel._io import check_output_file
    from csfmodel.fitting import sensitivity
    from csfmodel.results import VARIABLES, save

    if args.output:
        check_output_file(args.output, "--output", inputs=[args.scenario])
    ds = sensitivity(args.scenario, args.param, rtol=args.rtol)
    print("d ln(output) / d ln(parameter), where the output responds most:")
    print(f"{'parameter':36s} " + " ".join(f"{VARIABLES[v].label[:18]:>18s}" for v in _SUMMARY))
    for key in ds.parameter.values:
        cells = []
        for v in _SUMMARY:
            el = ds[f"{v}_elasticity"].sel(parameter=key).values
            k = int(np.argmax(np.abs(ds[v].sel(parameter=key).values)))
            cells.append(f"{el[k]:18.3g}")
        print(f"{key:36s} " + " ".join(cells))
    if args.output:
        save(ds, args.output)
        print(f"wrote {args.output}", file=sys.stdout)
    return 0
