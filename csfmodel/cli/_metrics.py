"""``csfmodel metrics RESULTS.nc``: exposure metrics (:mod:`csfmodel.metrics`) of saved results."""

from __future__ import annotations

import argparse
import json
import sys

from csfmodel.errors import ScenarioError

TARGET_HELP = ("the pain target: one cord segment (C1 ... S5, e.g. T10) or a range running "
               "down the cord (e.g. T8-L1); adds the 'target dorsal horn (worst)' row and the "
               "target:brain selectivity, both of the worst-covered segment of the target "
               "(without --target no selectivity is reported)")


def register(subparsers) -> None:
    """Add ``csfmodel metrics RESULTS.nc`` (argparse only)."""
    m = subparsers.add_parser(
        "metrics", help="exposure metrics of saved results (AUC, Cmax, Tmax, coverage, "
                        "supraspinal exposure, selectivity)",
        description="Compute exposure metrics on a results file written by `csfmodel run` "
                    "(netCDF), or on a scenario TOML (simulated first).")
    m.add_argument("results", help="results .nc file (or a scenario .toml)")
    m.add_argument("--start", help="window start, e.g. '0 h'")
    m.add_argument("--stop", help="window end, e.g. '24 h'")
    m.add_argument("--threshold", help="concentration threshold, e.g. '100 ng/mL' (time above "
                                       "it; segment coverage)")
    m.add_argument("--target", help=TARGET_HELP)
    m.add_argument("--interval", help="dosing interval for Cavg,ss, e.g. '12 h'")
    m.add_argument("--effects", action="store_true",
                   help="also analgesia (of the worst-covered --target segment; of all cord "
                        "segments without --target) and respiratory depression")
    m.add_argument("--json", action="store_true", help="print JSON")
    m.set_defaults(func=cmd_metrics)


#: variables ``csfmodel metrics`` needs, with their dimensions
_NEEDED = {"csf_concentration": ("time", "z"),
           "cord_concentration": ("time", "segment"),
           "cisternal_csf_concentration": ("time",),
           "brain_concentration": ("time",),
           "plasma_concentration": ("time",)}
_RESULTS = "a results file written by `csfmodel run` (netCDF) or a scenario .toml"


def open_results(path):
    """Open a results file for the CLI, refusing (one line) anything it cannot use."""
    import os
    import stat

    key, value = "results", str(path)
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:
        raise ScenarioError(key, value, _RESULTS,
                            detail=getattr(exc, "strerror", None) or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ScenarioError(key, value, _RESULTS, detail="is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise ScenarioError(key, value, _RESULTS, detail="not a regular file")
    with open(path, "rb") as f:
        magic = f.read(8)
    if not (magic.startswith(b"CDF") or magic.startswith(b"\x89HDF\r\n\x1a\n")):
        raise ScenarioError(key, value, _RESULTS, detail="not a netCDF file")
    import numpy as np
    import xarray as xr

    try:
        with xr.open_dataset(path) as raw:
            ds = raw.load()
    except MemoryError:
        raise
    except Exception as exc:   # truncated or damaged: netCDF4/HDF5 raise many kinds
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ScenarioError(key, value, _RESULTS,
                            detail=f"cannot be read (truncated or damaged?): {reason}") from None
    missing = [v for v in _NEEDED if v not in ds.variables]
    if missing:
        raise ScenarioError(key, value, _RESULTS,
                            detail="missing variable(s) " + ", ".join(missing))
    for v, dims in _NEEDED.items():
        if set(ds[v].dims) != set(dims):
            raise ScenarioError(key, value, _RESULTS,
                                detail=f"{v} has dimensions {ds[v].dims}, expected {dims}")
    if ds.sizes["time"] < 2 or not np.issubdtype(ds.time.dtype, np.number):
        raise ScenarioError(key, value, _RESULTS,
                            detail=f"{ds.sizes['time']} output time(s) in h; metrics need "
                                   "at least 2")
    return ds


def check_effects_input(ds, value: str) -> None:
    """``--effects`` rebuilds the model from the ``scenario`` attribute: it must be there."""
    text = ds.attrs.get("scenario")
    if text is None:
        raise ScenarioError("--effects", value, "results written by `csfmodel run` (they keep "
                            "the scenario), or the scenario .toml itself",
                            detail="the file has no 'scenario' attribute")
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise ScenarioError("--effects", value, "a 'scenario' attribute holding the scenario "
                            "as JSON (as `csfmodel run` writes it)",
                            detail="the 'scenario' attribute is not a JSON table")


def cmd_metrics(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from csfmodel import metrics

    path = Path(args.results)
    if path.suffix.lower() == ".toml":
        from csfmodel.api import simulate

        ds = simulate(path)
    else:
        ds = open_results(path)
        if args.effects:
            check_effects_input(ds, str(path))
    out = metrics.summary(ds, args.threshold, args.target, args.start, args.stop,
                          args.interval)
    if args.target is None:
        # the selectivity of "all segments" would be that of the worst cord segment of all
        # (usually a cervical one): not a target anybody chose, so it is not reported
        del out["selectivity"]
    if args.effects:
        from csfmodel.effects import effects

        ef = effects(ds, target=args.target)
        rd = ef.respiratory_depression
        k = int(np.argmax(rd.values))
        out["effects"] = {"analgesia_max": float(ef.analgesia.max()),
                          "analgesia_mean": float(metrics.cavg(
                              ef.analgesia.assign_attrs(units="1"), args.start, args.stop)),
                          "respiratory_depression_max": float(rd.values[k]),
                          "respiratory_depression_tmax_h": float(ds.time.values[k])}
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    print(f"{'series':<28}{'AUC ng*h/mL':>13}{'Cmax ng/mL':>12}{'Tmax h':>8}{'Cavg ng/mL':>12}"
          + (f"{'Cavg,ss ng/mL':>15}" if args.interval else "")
          + (f"{'t>thr h':>9}" if args.threshold else ""))
    for name, r in out["series"].items():
        line = (f"{name:<28}{r['auc_ng_h_per_ml']:>13.4g}{r['cmax_ng_per_ml']:>12.4g}"
                f"{r['tmax_h']:>8.2f}{r['cavg_ng_per_ml']:>12.4g}")
        if args.interval:
            line += f"{r['cavg_ss_ng_per_ml']:>15.4g}"
        if args.threshold:
            line += f"{r['time_above_h']:>9.2f}"
        print(line)
    if "coverage" in out:
        c = out["coverage"]
        print(f"cord segments reaching {c['threshold_ng_per_ml']:g} ng/mL (dorsal horn): "
              f"{c['covered']} ({c['n_covered']} segments)")
    if "selectivity" in out:
        s = out["selectivity"]
        print(f"target:brain selectivity ({s['target_segments']}, worst-covered segment): "
              f"AUC ratio {s['auc_ratio']:.4g}, Cmax ratio {s['cmax_ratio']:.4g}")
    else:
        print("target:brain selectivity: not computed; give --target (the pain target's cord "
              "segment or range, e.g. T10 or T8-L1)")
    if "effects" in out:
        e = out["effects"]
        where = ("worst-covered target segment" if args.target
                 else "worst of all cord segments, no --target")
        print(f"analgesia, fraction 0-1 ({where}): max {e['analgesia_max']:.3f}, mean "
              f"{e['analgesia_mean']:.3f}; respiratory depression, fraction 0-1: max "
              f"{e['respiratory_depression_max']:.3f} at "
              f"{e['respiratory_depression_tmax_h']:.2f} h")
    return 0
