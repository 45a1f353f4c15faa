r"""Global sensitivity: Sobol indices of a summary output of a Sobol-design sweep.

A Sobol design (``[design] kind = "sobol"``, ``n`` base points) holds Saltelli's
scheme, ``n (d + 2)`` scenarios for ``d`` parameters. For an output :math:`Y` (any
per-scenario summary of the store, e.g. ``brain_concentration_max``) SALib's
estimators (Saltelli 2010; Jansen 1999 for the total) give per parameter
:math:`X_i` the first-order index :math:`S_i = V[E(Y|X_i)]/V(Y)` and the total
index :math:`S_{Ti} = E[V(Y|X_{\sim i})]/V(Y)`, with bootstrap confidence
intervals (:func:`SALib.analyze.sobol.analyze`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from csfmodel.errors import ScenarioError

__all__ = ["sobol_indices", "sobol_table", "plot_sobol"]


def _summaries(ds: xr.Dataset) -> list[str]:
    return [v for v in ds.data_vars if ds[v].dims and ds[v].dims[0] == "scenario"
            and v not in ("scenario_done",)]


def sobol_indices(store: str | Path | xr.Dataset, output: str, *, select: dict | None = None,
                  conf_level: float = 0.95, num_resamples: int = 1000,
                  seed: int | None = None) -> xr.Dataset:
    """First-order and total Sobol indices of ``output`` with confidence intervals.

    Parameters
    ----------
    store
        A sweep store (path) or Dataset with design ``sobol``, complete.
    output
        A per-scenario output, e.g. ``"brain_concentration_max"``,
        ``"selectivity_auc_ratio"``; one with a further dimension needs ``select``
        (``{"segment": "T10"}``).
    conf_level, num_resamples, seed
        Bootstrap of the confidence intervals (SALib).

    Returns
    -------
    xarray.Dataset
        Along ``parameter``: ``S1``, ``S1_conf``, ``ST``, ``ST_conf`` (half-widths of
        the ``conf_level`` intervals).
    """
    from SALib.analyze import sobol

    from csfmodel.sweep._store import open_store

    ds = store if isinstance(store, xr.Dataset) else open_store(store)
    if ds.attrs.get("design") != "sobol":
        raise ScenarioError("store", ds.attrs.get("design"), "a sweep with design 'sobol'")
    if output not in ds.data_vars or "scenario" not in ds[output].dims:
        raise ScenarioError("output", output, "a per-scenario output of the store: " +
                            ", ".join(_summaries(ds)[:12]) + ", ...")
    da = ds[output]
    if select:
        try:
            da = da.sel(select)
        except (KeyError, ValueError) as exc:
            raise ScenarioError("select", select, f"labels of {output}'s dimensions "
                                f"{da.dims[1:]}", detail=str(exc)) from None
    if da.dims != ("scenario",):
        raise ScenarioError("output", output, "one value per scenario; choose the others "
                            f"with select={{...}} (dimensions {da.dims[1:]})")
    if "scenario_done" in ds and not bool(ds.scenario_done.all()):
        raise ScenarioError("store", "an unfinished sweep", "a complete sweep (resume it)")
    y = np.asarray(da.values, float)
    if not np.all(np.isfinite(y)):
        raise ScenarioError("output", output, "finite values in every scenario")
    names = json.loads(ds.attrs["parameters"])
    problem = {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}
    if np.ptp(y) == 0:
        raise ScenarioError("output", output, "an output that varies between scenarios")
    res = sobol.analyze(problem, y, calc_second_order=False, conf_level=conf_level,
                        num_resamples=num_resamples, seed=seed, print_to_console=False)
    attrs = {"units": "1"}
    out = xr.Dataset({
        "S1": ("parameter", res["S1"], {**attrs, "long_name": "first-order Sobol index"}),
        "S1_conf": ("parameter", res["S1_conf"], {**attrs, "long_name": "S1 CI half-width"}),
        "ST": ("parameter", res["ST"], {**attrs, "long_name": "total Sobol index"}),
        "ST_conf": ("parameter", res["ST_conf"], {**attrs, "long_name": "ST CI half-width"}),
    }, coords={"parameter": ("parameter", names, {"units": "1", "long_name": "parameter"})},
        attrs={"output": output, "conf_level": conf_level, "base_points": ds.attrs["design_n"],
               "select": json.dumps(select or {}, default=str)})
    return out


def sobol_table(si: xr.Dataset) -> str:
    """The indices as a text table."""
    lines = [f"Sobol indices of {si.attrs['output']} "
             f"({si.attrs['conf_level']:.0%} intervals, {si.attrs['base_points']} base points)",
             f"{'parameter':<28} {'S1':>8} {'+/-':>7} {'ST':>8} {'+/-':>7}"]
    for i, p in enumerate(si.parameter.values):
        lines.append(f"{str(p):<28} {float(si.S1[i]):8.3f} {float(si.S1_conf[i]):7.3f} "
                     f"{float(si.ST[i]):8.3f} {float(si.ST_conf[i]):7.3f}")
    return "\n".join(lines)


def plot_sobol(si: xr.Dataset, ax: Any = None) -> Any:
    """Bars of S1 and ST per parameter with their confidence intervals; returns the figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * si.sizes["parameter"], 3.2))
    else:
        fig = ax.figure
    x = np.arange(si.sizes["parameter"])
    ax.bar(x - 0.2, si.S1, 0.4, yerr=si.S1_conf, capsize=3, label="first order $S_i$")
    ax.bar(x + 0.2, si.ST, 0.4, yerr=si.ST_conf, capsize=3, label="total $S_{Ti}$")
    ax.set_xticks(x, [str(p) for p in si.parameter.values], rotation=20, ha="right")
    ax.set_ylabel("Sobol index")
    ax.set_ylim(min(0.0, float((si.S1 - si.S1_conf).min())) - 0.02, 1.05)
    ax.set_title(f"Sobol indices of {si.attrs['output']}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
