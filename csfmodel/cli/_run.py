"""``csfmodel run SCENARIO.toml -o OUT.nc``: simulate and write netCDF (and a figure)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Add ``csfmodel run`` (argparse only)."""
    from csfmodel.cli import EPILOG

    r = subparsers.add_parser(
        "run", help="simulate a scenario file; write netCDF (and a PNG)",
        description="Simulate SCENARIO.toml and write the results as netCDF. The Dataset "
                    "holds csf_concentration(time, z), cord_concentration(time, segment), "
                    "cisternal_csf_concentration, brain_concentration, plasma_concentration "
                    "(ng/mL) and amount_dosed/present/eliminated (mg).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("scenario", help="scenario TOML file")
    r.add_argument("-o", "--output", required=True, help="netCDF file to write")
    r.add_argument("--plot", help="also draw the overview figure to this file (format from "
                                  "the extension: .png, .pdf, .svg, ...); no figure without it")
    r.add_argument("--solver", help="backend (overrides [simulation] solver); "
                                    "see `csfmodel presets solvers`")
    r.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from csfmodel._io import check_figure_path, check_output_file, same_file
    from csfmodel.errors import ScenarioError

    # every argument is checked before the (possibly long) simulation
    check_output_file(args.output, "--output", inputs=[args.scenario])
    if args.plot:
        check_figure_path(args.plot, "--plot", inputs=[args.scenario])
        if same_file(args.plot, args.output):
            raise ScenarioError("--plot", args.plot, "a file other than --output",
                                detail="the same file as --output")

    from csfmodel import api

    summary = RunSummary()
    try:
        out = api.simulate_to_file(args.scenario, args.output, solver=args.solver,
                                   on_window=summary.update)
    except api.SimulationInterrupted as exc:
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
