"""Command-line interface: ``csfmodel run | presets | ...``.

Every command calls the same Python API a user would. Bad input prints a one-line
error naming the key, the value and what is allowed, and exits with status 2
(no traceback). Subcommands living in other modules register themselves through
a ``register_cli(subparsers)`` function listed in :data:`_COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from csfmodel.errors import ScenarioError

__all__ = ["main"]

#: modules that add subcommands with ``register_cli(subparsers)``
_COMMAND_MODULES: tuple[str, ...] = ("csfmodel.compare", "csfmodel.metrics", "csfmodel.sweep",
                                     "csfmodel.validation")

_EPILOG = """\
A scenario is a TOML file; quantities carry units ("0.5 mg", "1 mg/day", "20 uL",
"12 h"). Minimal example:

    [simulation]
    duration = "24 h"

    [[dose]]
    route = "intrathecal"
    type = "infusion"
    site = "T10"
    rate = "1 mg/day"

Worked examples: examples/scenarios/*.toml.
"""


def _cmd_run(args: argparse.Namespace) -> int:
    from csfmodel.api import SimulationInterrupted, simulate
    from csfmodel.results import save

    try:
        ds = simulate(args.scenario, solver=args.solver)
    except SimulationInterrupted as exc:
        if exc.partial.sizes["time"]:
            out = save(exc.partial, args.output)
            print(f"csfmodel: {exc.partial.attrs['interrupted']}; partial results saved "
                  f"to {out}", file=sys.stderr)
        else:
            print("csfmodel: interrupted before the first output time", file=sys.stderr)
        return 130
    out = save(ds, args.output)
    print(f"wrote {out}  ({ds.sizes['time']} times x {ds.sizes['z']} cells, "
          f"solver {ds.attrs['solver']}, {ds.attrs['solver_seconds']:.2f} s)")
    print(_summary(ds))
    if args.plot:
        from csfmodel.plotting import plot_overview

        fig = plot_overview(ds)
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")
    return 0


def _summary(ds) -> str:
    """A short table of peak exposures a person wants to see after a run."""
    import numpy as np

    rows = [("spinal CSF (max over z)", ds.csf_concentration.max("z")),
            ("cisternal CSF", ds.cisternal_csf_concentration),
            ("brain ECF (unbound)", ds.brain_concentration),
            ("plasma (total)", ds.plasma_concentration)]
    lines = [f"{'site':<28}{'Cmax ng/mL':>12}{'Tmax h':>9}{'at end ng/mL':>14}"]
    for name, da in rows:
        k = int(np.argmax(da.values))
        lines.append(f"{name:<28}{float(da.values[k]):>12.4g}{float(ds.time[k]):>9.2f}"
                     f"{float(da.values[-1]):>14.4g}")
    cord_end = ds.cord_concentration.isel(time=-1)
    top = cord_end.argmax("segment")
    lines.append(f"highest cord segment at end: {str(ds.segment.values[int(top)])} "
                 f"({float(cord_end[int(top)]):.4g} ng/mL unbound)")
    bal = float(abs(ds.amount_dosed - ds.amount_present - ds.amount_eliminated).max())
    lines.append(f"dosed {float(ds.amount_dosed[-1]):.4g} mg; mass balance error {bal:.1e} mg")
    if "request_accepted" in ds:
        acc = int(ds.request_accepted.sum())
        lines.append(f"patient bolus requests: {ds.sizes['request']} ({acc} given, "
                     f"{ds.sizes['request'] - acc} refused)")
    return "\n".join(lines)


def _cmd_presets(args: argparse.Namespace) -> int:
    from csfmodel.anatomy import CORD_SEGMENTS, Anatomy
    from csfmodel.drugs import DRUGS
    from csfmodel.solvers import available_backends

    what = args.what
    if what in ("drugs", "all"):
        print("Drugs (octanol:buffer partition, meningeal permeability):")
        for name, d in DRUGS.items():
            est = f"  [estimates: {', '.join(d.estimated)}]" if d.estimated else ""
            print(f"  {name:<14} K_ob={d.octanol_buffer:<8g} P_men={d.meningeal_p():.2e} cm/min"
                  f"{est}")
    a = Anatomy()
    if what in ("levels", "all"):
        print("Vertebral levels (z of top - bottom, cm from the foramen magnum):")
        e = a.level_edges()
        from csfmodel.anatomy import VERTEBRAL_LEVELS

        for k, lv in enumerate(VERTEBRAL_LEVELS):
            print(f"  {lv:<4} {e[k]:6.2f} - {e[k + 1]:6.2f}   CSF area "
                  f"{float(a.csf_area(0.5 * (e[k] + e[k + 1]))):.2f} cm^2")
    if what in ("segments", "all"):
        print("Spinal cord segments (z of top - bottom, cm; vertebral level alongside):")
        e = a.segment_edges()
        for k, s in enumerate(CORD_SEGMENTS):
            mid = 0.5 * (e[k] + e[k + 1])
            print(f"  {s:<4} {e[k]:6.2f} - {e[k + 1]:6.2f}   behind {a.level_at(mid)}")
    if what in ("solvers", "all"):
        print("Solvers:")
        for k, v in available_backends().items():
            print(f"  {k:<10} {v}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="csfmodel",
        description="Simulate intrathecal, oral and IV drugs in the CSF, spinal cord and "
                    "brain.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    from csfmodel import __version__

    p.add_argument("--version", action="version", version=f"csfmodel {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser(
        "run", help="simulate a scenario file; write netCDF (and a PNG)",
        description="Simulate SCENARIO.toml and write the results as netCDF. The Dataset "
                    "holds csf_concentration(time, z), cord_concentration(time, segment), "
                    "cisternal_csf_concentration, brain_concentration, plasma_concentration "
                    "(ng/mL) and amount_dosed/present/eliminated (mg).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("scenario", help="scenario TOML file")
    r.add_argument("-o", "--output", required=True, help="netCDF file to write")
    r.add_argument("--plot", help="also draw the overview figure to this PNG")
    r.add_argument("--solver", help="backend (overrides [simulation] solver); "
                                    "see `csfmodel presets solvers`")
    r.set_defaults(func=_cmd_run)

    pr = sub.add_parser("presets", help="list drug presets, vertebral levels, cord segments, "
                                        "solvers",
                        description="List what a scenario may name.")
    pr.add_argument("what", nargs="?", default="all",
                    choices=("all", "drugs", "levels", "segments", "solvers"))
    pr.set_defaults(func=_cmd_presets)

    for mod in _COMMAND_MODULES:
        importlib.import_module(mod).register_cli(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``csfmodel`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ScenarioError as exc:
        print(f"csfmodel: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("csfmodel: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
