"""Command-line interface: ``csfmodel run | presets | ...``.

Every command calls the same Python API a user would. Bad input prints a one-line
error naming the key, the value and what is allowed, and exits with status 2
(no traceback); so do an unreadable input, an unwritable output (checked before
the long work starts) and running out of memory. An unexpected error is one line
and status 3 (``CSFMODEL_DEBUG=1`` shows the traceback); a closed stdout
(``| head``) ends quietly. Files are only written where a path is given, and
atomically (see :mod:`csfmodel._io`). Subcommands living in other modules
register themselves through a ``register_cli(subparsers)`` function listed in
:data:`_COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
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
    from csfmodel._io import check_figure_path, check_output_file, same_file

    # every argument is checked before the (possibly long) simulation
    check_output_file(args.output, "--output", inputs=[args.scenario])
    if args.plot:
        check_figure_path(args.plot, "--plot", inputs=[args.scenario])
        if same_file(args.plot, args.output):
            raise ScenarioError("--plot", args.plot, "a file other than --output",
                                detail="the same file as --output")

    from csfmodel.api import SimulationInterrupted, simulate_to_file

    summary = RunSummary()
    try:
        out = simulate_to_file(args.scenario, args.output, solver=args.solver,
                               on_window=summary.update)
    except SimulationInterrupted as exc:
        if exc.partial.sizes["time"]:
            print(f"csfmodel: {exc.partial.attrs['interrupted']}; partial results saved "
                  f"to {args.output}", file=sys.stderr)
            exc.partial.close()
        else:
            print("csfmodel: interrupted before the first output time", file=sys.stderr)
        return 130
    import xarray as xr

    with xr.open_dataset(out) as ds:
        if args.plot:
            from csfmodel._io import save_figure
            from csfmodel.plotting import plot_overview

            Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
            save_figure(plot_overview(ds.load()), args.plot, dpi=120)
        # printed after every file is written: a closed pipe (`| head`) cannot lose a file
        print(f"wrote {out}  ({ds.sizes['time']} times x {ds.sizes['z']} cells, "
              f"solver {ds.attrs['solver']}, {ds.attrs['solver_seconds']:.2f} s)")
        print(summary.text(ds))
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


class RunSummary:
    """Peak exposures a person wants to see after a run, gathered window by window.

    :meth:`update` takes each window of the results as it is written (so the
    whole time course never has to be in memory); :meth:`text` formats the table.
    """

    #: (label, variable, reduce over z first)
    ROWS = (("spinal CSF (max over z)", "csf_concentration"),
            ("cisternal CSF", "cisternal_csf_concentration"),
            ("brain ECF (unbound)", "brain_concentration"),
            ("plasma (total)", "plasma_concentration"))

    def __init__(self) -> None:
        self.peak = {v: (-float("inf"), 0.0) for _, v in self.ROWS}
        self.last: dict = {}
        self.balance = 0.0

    def update(self, ds) -> None:
        """Fold one window of results (a Dataset with a ``time`` dimension) in."""
        import numpy as np

        for _, v in self.ROWS:
            da = ds[v].max("z") if "z" in ds[v].dims else ds[v]
            k = int(np.argmax(da.values))
            if float(da.values[k]) > self.peak[v][0]:
                self.peak[v] = (float(da.values[k]), float(ds.time[k]))
            self.last[v] = float(da.values[-1])
        self.last["cord"] = ds.cord_concentration.isel(time=-1).values
        self.last["dosed"] = float(ds.amount_dosed[-1])
        bal = abs(ds.amount_dosed - ds.amount_present - ds.amount_eliminated).max()
        self.balance = max(self.balance, float(bal))

    def text(self, ds) -> str:
        """The table; ``ds`` (the results file, opened lazily) gives names and requests."""
        import numpy as np

        lines = [f"{'site':<28}{'Cmax ng/mL':>12}{'Tmax h':>9}{'at end ng/mL':>14}"]
        for label, v in self.ROWS:
            cmax, tmax = self.peak[v]
            lines.append(f"{label:<28}{cmax:>12.4g}{tmax:>9.2f}{self.last[v]:>14.4g}")
        top = int(np.argmax(self.last["cord"]))
        lines.append(f"highest cord segment at end: {str(ds.segment.values[top])} "
                     f"({float(self.last['cord'][top]):.4g} ng/mL unbound)")
        lines.append(f"dosed {self.last['dosed']:.4g} mg; mass balance error "
                     f"{self.balance:.1e} mg")
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
    if what in ("ranges", "all"):
        from csfmodel.anatomy import PATIENT_PARAMETERS
        from csfmodel.drugs import DRUG_PARAMETERS
        from csfmodel.scenario import LIMITS

        print("Allowed ranges (values outside are refused with a one-line error):")
        for section, table in (("patient", PATIENT_PARAMETERS), ("drug", DRUG_PARAMETERS),
                               ("dose / simulation", LIMITS)):
            print(f"  [{section}]")
            for k, b in table.items():
                print(f"    {k:<28} {b.describe() if b.unit != 'str' else b.basis}")
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
    r.add_argument("--plot", help="also draw the overview figure to this file (format from "
                                  "the extension: .png, .pdf, .svg, ...); no figure without it")
    r.add_argument("--solver", help="backend (overrides [simulation] solver); "
                                    "see `csfmodel presets solvers`")
    r.set_defaults(func=_cmd_run)

    pr = sub.add_parser("presets", help="list drug presets, vertebral levels, cord segments, "
                                        "allowed ranges, solvers",
                        description="List what a scenario may name.")
    pr.add_argument("what", nargs="?", default="all",
                    choices=("all", "drugs", "levels", "segments", "ranges", "solvers"))
    pr.set_defaults(func=_cmd_presets)

    for mod in _COMMAND_MODULES:
        importlib.import_module(mod).register_cli(sub)
    return p


_DEBUG_ENV = "CSFMODEL_DEBUG"


def _debug() -> bool:
    return os.environ.get(_DEBUG_ENV, "").strip() not in ("", "0", "false", "no")


def _one_line(text: object, limit: int = 1000) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _quiet_stdout() -> None:
    """After a broken pipe: send what is left of stdout to devnull (no error at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):   # stdout is not a real file (tests)
        pass


def _err(msg: str) -> None:
    try:
        print(f"csfmodel: {_one_line(msg)}", file=sys.stderr)
    except (OSError, ValueError):   # stderr closed too: nothing left to tell
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``csfmodel`` command.

    Exit status: 0 success, 1 a validation row failed (``validate``) or stdout was
    closed early (``| head``), 2 bad input or an unwritable/unreadable file or out
    of memory (a one-line message), 3 an internal error (set ``CSFMODEL_DEBUG=1``
    for the traceback), 130 interrupted.
    """
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit:          # --help, --version, a usage error
            sys.stdout.flush()
            raise
        if not getattr(args, "func", None):
            parser.print_help()
            sys.stdout.flush()
            return 2
        code = int(args.func(args) or 0)
        sys.stdout.flush()          # a broken pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except ScenarioError as exc:
        _err(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except MemoryError:
        if _debug():
            traceback.print_exc()
        _err("error: out of memory; try a coarser [simulation] output_interval or "
             "resolution, or a shorter duration (sweeps: a smaller --chunk-size)")
        return 2
    except OSError as exc:
        if _debug():
            traceback.print_exc()
        reason = exc.strerror or str(exc) or type(exc).__name__
        where = exc.filename if exc.filename is not None else None
        _err(f"error: {str(where)!r}: {reason}" if where is not None else f"error: {reason}")
        return 2
    except Exception as exc:
        if _debug():
            traceback.print_exc()
        _err(f"internal error: {type(exc).__name__}: {exc} (set {_DEBUG_ENV}=1 for the "
             "traceback; please report)")
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
