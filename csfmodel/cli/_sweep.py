"""``csfmodel sweep BASE.toml -o DIR``: batches of scenarios (:mod:`csfmodel.sweep`)."""

from __future__ import annotations

import argparse

from csfmodel.errors import ScenarioError

#: variables a sweep can record (the keys of ``csfmodel.sweep.VARIABLES``, tested)
VARIABLES = ("cord_concentration", "csf_concentration", "cisternal_csf_concentration",
             "cortical_csf_concentration", "ventricular_csf_concentration",
             "brain_concentration", "plasma_concentration")


def register(subparsers) -> None:
    """Add ``csfmodel sweep BASE.toml`` (argparse only)."""
    s = subparsers.add_parser(
        "sweep", help="run many variants of a scenario in parallel batches (numba)",
        description="Run a base scenario over swept parameters and write one netCDF file "
                    "per chunk of scenarios as soon as it is done (an interrupted sweep keeps "
                    "its finished chunks; --resume continues it). By default each file holds "
                    "per-scenario summaries: peak, time of peak, AUC and final value of "
                    "each variable.",
        epilog="Example: csfmodel sweep pump.toml -o sweep_out "
               "--param 'patient.dispersion=0.2 cm^2/min;0.4 cm^2/min' "
               "--param 'dose[0].rate=0.5 mg/day;1 mg/day' --product")
    s.add_argument("scenario", help="base scenario TOML file")
    s.add_argument("-o", "--output", required=True, help="output directory")
    s.add_argument("--param", action="append",
                   help="KEY=V1;V2;... (keys as in the TOML: patient.X, drug.X, dose[i].X); "
                        "repeatable")
    s.add_argument("--parameters", help="TOML file with a [parameters] table (key = [values]) "
                                        "and optionally mode = 'product'")
    s.add_argument("--product", action="store_true",
                   help="all combinations of the values (default: zip them)")
    s.add_argument("--variables", help="comma-separated, from: " + ", ".join(VARIABLES))
    s.add_argument("--series", action="store_true",
                   help="store time series instead of summaries (large)")
    s.add_argument("--rtol", type=float, help="solver tolerance (default the backend's)")
    s.add_argument("--chunk-size", type=int, default=64, help="scenarios per file/batch")
    s.add_argument("--resume", action="store_true", help="skip chunks already written")
    s.set_defaults(func=cmd_sweep)


def parse_param(text: str) -> tuple[str, list[str]]:
    """``--param 'KEY=V1;V2'`` -> (key, [values])."""
    if "=" not in text:
        raise ScenarioError("--param", text, "KEY=VALUE1;VALUE2;... e.g. "
                            "'dose[0].rate=0.5 mg/day;1 mg/day'")
    key, vals = text.split("=", 1)
    return key.strip(), [v.strip() for v in vals.split(";") if v.strip()]


def cmd_sweep(args: argparse.Namespace) -> int:
    import time
    import tomllib
    from pathlib import Path

    from csfmodel._io import check_output_dir, read_text

    parameters: dict[str, list] = {}
    mode = "product" if args.product else "zip"
    check_output_dir(args.output, "--output", inputs=[args.scenario, args.parameters])
    if args.parameters:
        p = Path(args.parameters)
        try:
            spec = tomllib.loads(read_text(p, "--parameters", "a readable TOML file"))
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError("--parameters", str(p), "valid TOML", detail=str(exc)) from None
        table = spec.get("parameters", {})
        if not isinstance(table, dict) or not table:
            raise ScenarioError("parameters", table, "a [parameters] table of key = [values]")
        parameters.update(table)
        mode = str(spec.get("mode", mode))
    for text in args.param or []:
        k, v = parse_param(text)
        parameters[k] = v

    from csfmodel import sweep

    variables = tuple(args.variables.split(",")) if args.variables else sweep.DEFAULT_VARIABLES
    t0 = time.perf_counter()
    n_done = [0]

    def progress(c: int, ds, path: Path) -> None:
        n_done[0] += ds.sizes["scenario"]
        rate = n_done[0] / max(time.perf_counter() - t0, 1e-9)
        print(f"wrote {path}  ({n_done[0]} scenarios, {rate:.0f}/s)", flush=True)

    try:
        written = sweep.run_to_directory(args.scenario, parameters, args.output, mode=mode,
                                         variables=variables, rtol=args.rtol,
                                         chunk_size=args.chunk_size, summary=not args.series,
                                         resume=args.resume, progress=progress)
    except ScenarioError as exc:
        if exc.key != "output":
            raise
        raise ScenarioError("--output", exc.value, exc.allowed, detail=exc.detail) from None
    print(f"{len(written)} chunk(s) written to {args.output} in "
          f"{time.perf_counter() - t0:.1f} s; open them with "
          f"csfmodel.sweep.load_sweep({str(args.output)!r})")
    return 0
