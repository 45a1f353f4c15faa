"""``csfmodel validate``: reproduce published human data (:mod:`csfmodel.validation`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Add ``csfmodel validate`` (argparse only)."""
    p = subparsers.add_parser(
        "validate", help="reproduce published human data with the default parameters",
        description="Run the study designs behind every row of the calibration table "
                    "(published human data, packaged with csfmodel), print row, observed, "
                    "model, ratio and pass, and exit with status 1 if any row is outside a "
                    "factor of two (rows listed as not modelled or as known disagreements "
                    "are printed and marked, and do not count). With --data, a row whose id "
                    "has no built-in study design is run from its own columns (route, "
                    "dose_mg, dose_site, injected_volume_ml, sample_site, measure, time_h, "
                    "unit; docs/fitting.md); a row that cannot be run is printed with the "
                    "reason, and the exit status is then 2.")
    p.add_argument("--figure", default=None,
                   help="draw the model curves against the observations to this file "
                        "(format from the extension: .png, .pdf, .svg, ...); no figure "
                        "without it")
    p.add_argument("--no-figure", action="store_true",
                   help="do not draw the figure (the default; overrides --figure)")
    p.add_argument("--data", help="a calibration CSV (the packaged table's columns) to use "
                                  "instead of the packaged one; rows with new ids are run "
                                  "from their columns")
    p.add_argument("--solver", help="backend (default: the scenario default)")
    p.add_argument("--designs", action="store_true",
                   help="also print the study design assumed for each study")
    p.add_argument("--predictions", metavar="FIGURE",
                   help="also compute the predictions not in the table and draw them to this "
                        "file (.png, .pdf, .svg, ...)")
    p.add_argument("--sensitivity", action="store_true",
                   help="also print d log(model)/d log(parameter) for the calibrated parameters, "
                        "and the rows under alternative design assumptions")
    p.add_argument("--refit", action="store_true",
                   help="also fit the calibrated parameters to all rows at once (weighted "
                        "least squares on log model/observed) and print the estimates with "
                        "95%% intervals, their correlations and the rows that pin each one "
                        "(about a minute)")
    p.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from csfmodel import validation as val
    from csfmodel._io import check_figure_path, same_file, save_figure
    from csfmodel.errors import ScenarioError

    # outputs are checked before the (long) validation runs; figures only when asked for
    figure = None if args.no_figure else (args.figure or None)
    inputs = [args.data] if args.data else []
    for key, path in (("--figure", figure), ("--predictions", args.predictions)):
        if path:
            check_figure_path(path, key, inputs=inputs)
    if figure and args.predictions and same_file(figure, args.predictions):
        raise ScenarioError("--predictions", args.predictions, "a file other than --figure",
                            detail="the same file as --figure")
    rows = val.read_rows(args.data) if args.data else val.load_rows()
    if args.designs:
        for d in val.DESIGNS:
            print(f"{d.name}: {d.describe}")
        print("\nSources:")
        for ref in val.CITATIONS.values():
            print(f"  {ref}")
        print()
    results, reasons, runs = val.run_rows(rows, solver=args.solver, source=args.data,
                                          return_runs=True)
    print(val.format_table(results))
    if args.designs:
        own = [r for r in results if r.row.id not in reasons and r.how
               and r.row.id not in {i for d in val.DESIGNS for i in d.measures}]
        if own:
            print("designs read from the rows' columns:")
            for r in own:
                print(f"  {r.row.id}: {r.how}")
    if reasons:
        print("rows that cannot be run:")
        for rid, why in reasons.items():
            print(f"  {rid}: {why}")
    # --sensitivity and --refit work on the built-in study designs only
    rows = [r for r in rows if r.id not in reasons
            and any(r.id in d.measures for d in val.DESIGNS)]
    if figure:
        Path(figure).parent.mkdir(parents=True, exist_ok=True)
        save_figure(val.plot_validation(results, runs), figure, dpi=110)
        print(f"wrote {figure}")
    if args.predictions:
        numbers, curves = val.predictions(solver=args.solver)
        print("\npredictions not in the table (see docs/validation.md):")
        print(val.format_predictions(numbers))
        Path(args.predictions).parent.mkdir(parents=True, exist_ok=True)
        save_figure(val.plot_predictions(curves), args.predictions, dpi=110)
        print(f"wrote {args.predictions}")
    if args.sensitivity:
        print("\nd log(model) / d log(parameter), central differences +-10 %:")
        print(val.format_sensitivity(val.sensitivity(rows, solver=args.solver)))
        print("\ndesign assumptions the abstracts leave open (model/observed):")
        print(val.format_design_sensitivity(val.design_sensitivity(solver=args.solver)))
    if args.refit:
        print("\njoint calibration (csfmodel.validation.fit):", flush=True)
        print(val.format_fit(val.fit(rows, solver=args.solver)))
    if reasons:
        print(f"csfmodel validate: {len(reasons)} row(s) of {args.data} cannot be run "
              "(reasons above): " + ", ".join(reasons), file=sys.stderr)
        return 2
    failed = [r.row.id for r in val.failures(results)]
    if failed:
        print(f"csfmodel validate: {len(failed)} row(s) outside a factor of {val.FACTOR:g}: "
              + ", ".join(failed), file=sys.stderr)
        return 1
    return 0
