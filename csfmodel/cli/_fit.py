"""``csfmodel fit SCENARIO.toml DATA.csv --param KEY ...``: fit scenario values to
observations (:func:`csfmodel.fitting.fit`)."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    """Add ``csfmodel fit`` (argparse only)."""
    p = subparsers.add_parser(
        "fit", help="fit scenario values (dispersion, permeability, ...) to your own "
                    "concentration data",
        description="Fit scenario values to observations by weighted least squares on log "
                    "concentrations (or with the given SD), with exact gradients from the "
                    "forward sensitivities. The scenario is the design (doses, sites, "
                    "volumes); DATA.csv has the columns time_h, site, value, unit[, sd], site "
                    "being a vertebral level or interspace (spinal CSF), cord:<segment>, "
                    "cisterna, cortical, ventricles, brain or plasma. Prints estimates, SE, "
                    "RSE%%, 95%% intervals (profile likelihood for up to 3 parameters, else "
                    "Laplace), correlations and diagnostics.")
    p.add_argument("scenario", help="scenario TOML file (the study design)")
    p.add_argument("data", help="CSV file of observations: time_h, site, value, unit[, sd]")
    p.add_argument("--param", action="append", required=True, metavar="KEY",
                   help="a scenario key to fit, e.g. patient.dispersion, "
                        "drug.meningeal_permeability, dose[0].amount (repeat for more)")
    p.add_argument("-o", "--output", metavar="FIT.json",
                   help="write the estimates, intervals, correlations and residuals as JSON")
    p.add_argument("--plot", metavar="FIT.png",
                   help="draw the fit against the data with the residuals to this file")
    p.add_argument("--prior", action="append", default=[], metavar="KEY[=CV]",
                   help="log-normal priors around the scenario's values (MAP): any --prior puts "
                        "one on every fitted parameter, with csfmodel's calibrated interval "
                        "where it has one, else a CV of 50%%; KEY=0.3 sets a CV of 30%% "
                        "(--prior all: the defaults only)")
    p.add_argument("--sigma-log", type=float, default=None,
                   help="SD of the log observations (default: estimated from the residuals)")
    p.add_argument("--no-profile", action="store_true",
                   help="Laplace intervals only (no profile likelihood)")
    p.add_argument("--rtol", type=float, default=None,
                   help="integration tolerance (default the numba backend's)")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    p.set_defaults(func=cmd_fit)


def _priors(items: list[str]) -> bool | dict[str, float]:
    """``--prior`` values -> ``fit(priors=...)``: any --prior puts a prior on every fitted
    parameter; ``KEY=CV`` sets that one's CV."""
    from csfmodel.errors import ScenarioError

    out: dict[str, float] = {}
    for it in items:
        key, _, cv = it.partition("=")
        if cv:
            try:
                out[key.strip()] = float(cv)
            except ValueError:
                raise ScenarioError("--prior", it, "KEY or KEY=CV with a number CV, e.g. "
                                    "patient.dispersion=0.3") from None
    return out or bool(items)


def cmd_fit(args: argparse.Namespace) -> int:
    from csfmodel._io import check_figure_path, check_output_file, write_text
    from csfmodel.api import _as_scenario
    from csfmodel.errors import ScenarioError
    from csfmodel.fitting import fit, read_observations

    inputs = [args.scenario, args.data]
    if args.output:
        check_output_file(args.output, "--output", inputs=inputs)
    if args.plot:
        check_figure_path(args.plot, "--plot", inputs=inputs)
    priors = _priors(args.prior)
    named = [it.partition("=")[0].strip() for it in args.prior]
    for key in named:
        if key != "all" and key not in args.param:
            raise ScenarioError("--prior", key, "one of the --param keys: " + ", ".join(args.param))
    sc = _as_scenario(args.scenario)
    data = read_observations(args.data, sc)
    result = fit(sc, data, args.param, priors=priors, sigma_log=args.sigma_log,
                 profile=False if args.no_profile else None, rtol=args.rtol,
                 progress=sys.stderr.isatty())
    doc = result.to_dict()
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(result.format())
    if args.output:
        write_text(args.output, json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.output}", file=sys.stderr if args.json else sys.stdout)
    if args.plot:
        result.plot(args.plot)
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0 if result.converged else 1
