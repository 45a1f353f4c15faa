"""``csfmodel population SCENARIO.toml -n N --seed S -o OUT.zarr``: virtual patients
(:mod:`csfmodel.population`): prediction bands, target attainment and the tip x rate map."""

from __future__ import annotations

import argparse
import contextlib

from csfmodel.errors import ScenarioError


def register(subparsers) -> None:
    """Add ``csfmodel population SCENARIO.toml`` (argparse only)."""
    s = subparsers.add_parser(
        "population", help="simulate virtual patients: prediction bands, probability of "
                           "target attainment, tip x rate map",
        description="Sample N virtual patients (csfmodel/data/population.toml, overridden by "
                    "the scenario's [population] table) reproducibly from --seed, simulate "
                    "them through the batch kernel and print the spread of exposure; with "
                    "--target, the fraction attaining the target and at respiratory risk; "
                    "with --map-tips and --map-rates, the same over catheter tips x rates.",
        epilog="Example: csfmodel population examples/population/pump_t10.toml -n 500 "
               "--seed 1 --target T8-L1 -o pop.zarr --plot bands.png")
    s.add_argument("scenario", help="scenario TOML file (may hold a [population] table)")
    s.add_argument("-n", "--patients", type=int, default=100, help="virtual patients "
                   "(default 100)")
    s.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    s.add_argument("-o", "--output", help="write the results to this Zarr store")
    s.add_argument("--plot", help="write the prediction bands figure here (.png, .pdf, ...)")
    s.add_argument("--observed", help="calibration row ids drawn beside the bands "
                   "(comma-separated, e.g. nordberg84_lumbar_1h_025)")
    s.add_argument("--levels", help="CSF sites of the bands, placed in each patient's own "
                   "anatomy (comma-separated; default L3-L4,T10,C5; '' for none)")
    s.add_argument("--segments", help="cord segments of the bands (comma-separated)")
    s.add_argument("--target", help="cord segments to relieve, e.g. T8-L1 (prints the "
                   "probability of target attainment)")
    s.add_argument("--window", help="analgesia evaluation window START,STOP (default the "
                   "last 24 h)")
    s.add_argument("--analgesia", type=float, default=0.5,
                   help="analgesia the target segments must keep (default 0.5)")
    s.add_argument("--respiratory", default="oral",
                   help="peak respiratory depression (fraction of the maximal depression of "
                        "ventilation at fixed PCO2) above which a patient is at risk: 'oral' "
                        "(default) for that of oral CR morphine 30 mg every 12 h at steady "
                        "state in the typical patient, or a fraction such as 0.6")
    s.add_argument("--bodies", type=int, help="distinct bodies (anatomies); default one per "
                   "patient")
    s.add_argument("--dask", action="store_true", help="run blocks of patients as Dask "
                   "tasks on a local cluster of processes (one per core; or --scheduler)")
    s.add_argument("--scheduler", help="address of a running Dask scheduler (implies --dask)")
    s.add_argument("--workers", type=int, help="local Dask worker processes (default: one "
                   "per core)")
    s.add_argument("--rtol", type=float, help="relative tolerance of the solver (default "
                   "1e-3: outputs within 1e-3 of their peak of a tighter run)")
    s.add_argument("--map-tips", help="catheter tips of the PTA map (comma-separated)")
    s.add_argument("--map-rates", help="infusion rates of the map (semicolon-separated, "
                   "'0.25 mg/day;0.5 mg/day')")
    s.add_argument("--map-plot", help="write the map figure here")
    s.add_argument("--map-output", help="write the map to this netCDF file")
    s.set_defaults(func=cmd_population)


def _list(text: str | None, sep: str = ",") -> list[str] | None:
    if text is None:
        return None
    return [x.strip() for x in text.split(sep) if x.strip()]


def cmd_population(args: argparse.Namespace) -> int:
    from csfmodel._io import check_figure_path, check_output_file

    inputs = [args.scenario]
    if args.output:
        check_output_file(args.output + "/zarr.json", "--output", inputs=inputs,
                          allowed="a Zarr store path in a writable directory")
    for key, path in (("--plot", args.plot), ("--map-plot", args.map_plot)):
        if path:
            check_figure_path(path, key, inputs=inputs)
    if args.map_output:
        check_output_file(args.map_output, "--map-output", inputs=inputs)
    if bool(args.map_tips) != bool(args.map_rates):
        raise ScenarioError("--map-tips", args.map_tips, "both --map-tips and --map-rates")
    if (args.map_tips or args.map_plot or args.map_output) and not args.target:
        raise ScenarioError("--target", None, "a target such as T8-L1 for the map")
    if args.target:
        from csfmodel.population._pta import _respiratory

        _respiratory(args.respiratory)          # refused (or the reference computed) first
    window = _list(args.window)
    if window is not None and len(window) != 2:
        raise ScenarioError("--window", args.window, "START,STOP such as '144 h,168 h'")

    from csfmodel.api import SimulationInterrupted
    from csfmodel.population import attainment, plot_bands, plot_pta_map, population, pta_map
    from csfmodel.population._simulate import (
        DEFAULT_LEVELS,
        _progress_printer,
        save_population,
    )

    levels = _list(args.levels) if args.levels is not None else list(DEFAULT_LEVELS)
    kw = dict(levels=levels, segments=_list(args.segments), target=args.target,
              window=tuple(window) if window else None, bodies=args.bodies,
              rtol=args.rtol, progress=_progress_printer())
    if args.dask or args.scheduler:
        from csfmodel.cli._sweep import _require_dask_extra

        _require_dask_extra("--dask", True, ("dask", "distributed"))
        from csfmodel.sweep._engine import _client

        cluster = _client({}, args.scheduler, args.workers, 1)
    else:
        cluster = contextlib.nullcontext(None)
    try:
        with cluster as client:
            pop = population(args.scenario, args.patients, args.seed, client=client, **kw)
        interrupted = None
    except SimulationInterrupted as exc:
        pop, interrupted = exc.partial, exc
    if args.output:
        save_population(pop, args.output)
    _print_summary(pop)
    if args.target:
        pta = attainment(pop, args.analgesia, args.respiratory)
        print(f"target {args.target}: attained (analgesia >= {args.analgesia:g} over "
              f"{pop.attrs['analgesia_window_h'][0]:g}-{pop.attrs['analgesia_window_h'][1]:g}"
              f" h) in {_pct(pta, 'pta')}; respiratory depression > "
              f"{pta.attrs['respiratory_threshold_basis']} in "
              f"{_pct(pta, 'p_respiratory')}; attained safely in "
              f"{_pct(pta, 'p_attained_safely')}")
    if args.plot:
        from csfmodel._io import save_figure

        save_figure(plot_bands(pop, observed=_list(args.observed) or ()), args.plot)
        print(f"wrote {args.plot}")
    if args.output:
        print(f"wrote {args.output} ({pop.sizes['patient']} patients)")
    if interrupted is not None:
        raise interrupted
    if args.map_tips:
        m = pta_map(args.scenario, args.target, _list(args.map_tips),
                    _list(args.map_rates, ";"), args.patients, args.seed,
                    analgesia=args.analgesia, respiratory=args.respiratory,
                    bodies=args.bodies, window=tuple(window) if window else None,
                    rtol=args.rtol)
        _print_map(m)
        if args.map_output:
            from csfmodel.results import save

            save(m, args.map_output)
            print(f"wrote {args.map_output}")
        if args.map_plot:
            from csfmodel._io import save_figure

            save_figure(plot_pta_map(m), args.map_plot)
            print(f"wrote {args.map_plot}")
    return 0


def _pct(pta, name: str) -> str:
    return (f"{100 * float(pta[name]):.0f} % [{100 * float(pta[name + '_low']):.0f}-"
            f"{100 * float(pta[name + '_high']):.0f}]")


def _print_summary(pop) -> None:
    import numpy as np

    n = pop.sizes["patient"]
    print(f"{n} virtual patients (seed {pop.attrs['population_seed']}, "
          f"{pop.attrs['population_bodies']} bodies); solver {pop.attrs['solver_seconds']:.1f} s"
          f" of {pop.attrs['wall_seconds']:.1f} s")
    print(f"{'exposure':<34}{'5 %':>11}{'median':>11}{'95 %':>11}")
    rows = []
    if "csf_max" in pop:
        rows += [(f"CSF {lv} Cmax (ng/mL)", pop.csf_max.sel(level=lv)) for lv in pop.level.values]
    if "cord_max" in pop:
        rows += [(f"dorsal horn {s} Cmax (ng/mL)", pop.cord_max.sel(segment=s))
                 for s in pop.segment.values]
    rows += [("brain Cmax (ng/mL)", pop.brain_max), ("plasma Cmax (ng/mL)", pop.plasma_max)]
    if "analgesia_trough" in pop:
        rows.append(("analgesia trough (target)", pop.analgesia_trough))
    rows.append(("peak respiratory depression", pop.respiratory_depression_max))
    for label, da in rows:
        q = np.percentile(da.values, [5, 50, 95])
        print(f"{label:<34}" + "".join(f"{x:11.4g}" for x in q))


def _print_map(m) -> None:
    rates = m.rate.values
    print("PTA % (respiratory risk %) by tip x rate (mg/day)")
    print(f"{'tip':<8}" + "".join(f"{r:>12g}" for r in rates))
    for tip in m.tip.values:
        cells = [f"{100 * float(m.pta.sel(tip=tip, rate=r)):5.0f} "
                 f"({100 * float(m.p_respiratory.sel(tip=tip, rate=r)):3.0f})" for r in rates]
        print(f"{tip:<8}" + "".join(f"{c:>12}" for c in cells))
