"""``csfmodel sweep SWEEP.toml -o STORE.zarr``: a sweep on Dask into one zarr store
(:func:`csfmodel.sweep.run_sweep`); ``csfmodel sobol STORE.zarr OUTPUT``: its Sobol
indices (:func:`csfmodel.sweep.sobol_indices`)."""

from __future__ import annotations

import argparse

from csfmodel.errors import ScenarioError

#: variables a sweep can record (the keys of ``csfmodel.sweep.VARIABLES``, tested)
VARIABLES = ("cord_concentration", "csf_concentration", "cisternal_csf_concentration",
             "cortical_csf_concentration", "ventricular_csf_concentration",
             "brain_concentration", "plasma_concentration")


def register(subparsers) -> None:
    """Add ``csfmodel sweep`` and ``csfmodel sobol`` (argparse only)."""
    s = subparsers.add_parser(
        "sweep", help="run a sweep file on Dask workers into one zarr store",
        description="Run the scenarios of a sweep file (base scenario, swept parameters "
                    "with units, design: product, zip, lhs or sobol) on a local Dask cluster "
                    "(one worker process per core), a running scheduler (--scheduler) or a "
                    "batch system ([cluster] table), writing per-scenario summaries (and "
                    "optionally time series) chunk by chunk into one zarr store. An "
                    "interrupted sweep keeps its finished chunks; --resume completes it.",
        epilog="Example: csfmodel sweep examples/sweeps/dispersion_rate.toml -o out.zarr. "
               "Without a sweep file: csfmodel sweep BASE.toml -o out.zarr "
               "--param 'dose[0].rate=0.5 mg/day;1 mg/day' --product")
    s.add_argument("sweep", help="sweep file (TOML), or a base scenario with --param")
    s.add_argument("-o", "--output", required=True, help="zarr store to write (a directory)")
    s.add_argument("--resume", action="store_true",
                   help="complete the sweep of an existing store (finished chunks are kept)")
    s.add_argument("--scheduler", help="address of a running Dask scheduler "
                                       "(tcp://host:8786)")
    s.add_argument("--workers", type=int, help="local worker processes (default: one per "
                                               "core), or batch jobs to start")
    s.add_argument("--threads", type=int, help="threads per worker (default 1)")
    s.add_argument("--param", action="append",
                   help="with a base scenario: KEY=V1;V2;... (keys as in the TOML: patient.X, "
                        "drug.X, dose[i].X); repeatable")
    s.add_argument("--product", action="store_true",
                   help="with --param: all combinations (default: zip the values)")
    s.add_argument("--chunk-size", type=int, help="scenarios per task (default 256, or the "
                                                   "sweep file's [run] chunk_size)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_sweep)

    b = subparsers.add_parser(
        "sobol", help="Sobol sensitivity indices of a sweep output (design sobol)",
        description="First-order and total Sobol indices, with confidence intervals "
                    "(SALib), of a per-scenario output of a sweep store with design 'sobol'.",
        epilog="Example: csfmodel sobol out.zarr brain_concentration_max --plot sobol.png")
    b.add_argument("store", help="sweep store (zarr) with design 'sobol'")
    b.add_argument("output", help="per-scenario output, e.g. selectivity_auc_ratio")
    b.add_argument("--select", action="append",
                   help="DIM=LABEL for an output with another dimension, e.g. segment=T10")
    b.add_argument("--plot", help="figure file (png, pdf, svg)")
    b.add_argument("--csv", help="table file (CSV)")
    b.add_argument("--seed", type=int, help="seed of the bootstrap of the intervals")
    b.set_defaults(func=cmd_sobol)


def parse_param(text: str) -> tuple[str, list[str]]:
    """``--param 'KEY=V1;V2'`` -> (key, [values])."""
    if "=" not in text:
        raise ScenarioError("--param", text, "KEY=VALUE1;VALUE2;... e.g. "
                            "'dose[0].rate=0.5 mg/day;1 mg/day'")
    key, vals = text.split("=", 1)
    return key.strip(), [v.strip() for v in vals.split(";") if v.strip()]


def _require_dask_extra(option: str, what: str, modules: tuple[str, ...]) -> None:
    """One line (exit 2) when the ``[dask]`` extra is missing, before any work."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ScenarioError(option, what, f"the {', '.join(missing)} package(s) of the "
                            "[dask] extra: pip install 'csfmodel[dask]'",
                            detail="not installed")


def cmd_sweep(args: argparse.Namespace) -> int:
    import sys

    _require_dask_extra("sweep", args.sweep, ("dask", "distributed", "zarr"))
    from csfmodel import sweep

    if args.param:
        params = dict(parse_param(t) for t in args.param)
        sw = sweep.Sweep.of(args.sweep, params, design="product" if args.product else "zip",
                            source=args.sweep)
    else:
        if args.product:
            raise ScenarioError("--product", True, "--param values (a sweep file has its "
                                "[design])")
        sw = sweep.read_sweep(args.sweep)
    if args.chunk_size is not None:
        sw.chunk_size = args.chunk_size
    try:
        out = sweep.run_sweep(sw, args.output, resume=args.resume, scheduler=args.scheduler,
                              workers=args.workers, threads=args.threads,
                              progress=False if args.no_progress else None)
    except ScenarioError as exc:
        if exc.key != "output":
            raise
        raise ScenarioError("--output", exc.value, exc.allowed, detail=exc.detail) from None
    except KeyboardInterrupt:
        print(f"csfmodel sweep: interrupted; the finished chunks are in {args.output}; "
              "run the same command with --resume to complete it", file=sys.stderr)
        return 130
    ds = sweep.open_store(out)
    print(f"{ds.attrs['scenarios']} scenarios written to {out}; open it with "
          f"xarray.open_zarr({str(out)!r})")
    return 0


def cmd_sobol(args: argparse.Namespace) -> int:
    _require_dask_extra("sobol", args.store, ("zarr", "SALib"))
    from csfmodel._io import atomic_path, check_figure_path, check_output_file
    from csfmodel.sweep import plot_sobol, sobol_indices, sobol_table

    select = {}
    for text in args.select or []:
        if "=" not in text:
            raise ScenarioError("--select", text, "DIM=LABEL, e.g. segment=T10")
        k, v = text.split("=", 1)
        select[k.strip()] = v.strip()
    if args.plot:
        check_figure_path(args.plot, "--plot")
    if args.csv:
        check_output_file(args.csv, "--csv")
    si = sobol_indices(args.store, args.output, select=select or None, seed=args.seed)
    print(sobol_table(si))
    if args.csv:
        with atomic_path(args.csv) as tmp:
            si.to_dataframe().to_csv(tmp)
    if args.plot:
        from csfmodel._io import save_figure

        save_figure(plot_sobol(si), args.plot)
    return 0
