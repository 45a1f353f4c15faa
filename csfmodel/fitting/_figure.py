"""Figure of a fit: the fitted model against the data per site, and the residuals."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._fit import FitResult

__all__ = ["plot_fit"]


def _curve(ds, variable: str, site: str, position: float) -> np.ndarray:
    from csfmodel.anatomy import CORD_SEGMENTS

    da = ds[variable]
    if variable == "csf_concentration":
        return da.interp(z=position).values
    if variable == "cord_concentration":
        return da.sel(segment=CORD_SEGMENTS[int(position)]).values
    return da.values


def plot_fit(result: FitResult):
    """Per site: observations (points) and the model at the estimates (line, log
    scale); below, the weighted residuals against time."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from csfmodel.api import simulate
    from csfmodel.scenario import parse_scenario

    from ._parameters import with_values

    sc, params, theta = (result.curves[k] for k in ("scenario", "params", "theta"))
    ds = simulate(parse_scenario(with_values(sc, params, theta)))
    obs = result.data
    sites = list(dict.fromkeys(obs.site))
    fig, axes = plt.subplots(2, len(sites), figsize=(3.6 * len(sites) + 1, 6),
                             squeeze=False, sharex=True,
                             gridspec_kw={"height_ratios": [3, 1.3]})
    for j, site in enumerate(sites):
        sel = np.array([s == site for s in obs.site])
        var = obs.variable[int(np.flatnonzero(sel)[0])]
        pos = float(obs.position[sel][0])
        ax = axes[0, j]
        y = _curve(ds, var, site, pos)
        ax.plot(ds.time.values, y, color="C0", label="model at the estimates")
        ax.plot(obs.time[sel] / 60.0, obs.value[sel], "o", color="C3", label="data")
        if obs.has_sd:
            ax.errorbar(obs.time[sel] / 60.0, obs.value[sel], yerr=obs.sd[sel], fmt="none",
                        color="C3")
        pos_y = y[y > 0]
        if pos_y.size:
            ax.set_yscale("log")
            ax.set_ylim(max(pos_y.max() * 1e-4, min(obs.value[sel].min() / 3, pos_y.max())),
                        max(pos_y.max(), obs.value[sel].max()) * 2)
        ax.set_title(site)
        ax.set_ylabel("concentration (ng/mL)")
        ra = axes[1, j]
        res = np.array([r["residual"] for r, s in zip(result.residuals, sel) if s])
        ra.axhline(0.0, color="0.5", lw=0.8)
        ra.plot(obs.time[sel] / 60.0, res, "o", color="C3")
        ra.set_xlabel("time (h)")
        ra.set_ylabel("weighted residual")
    axes[0, 0].legend(fontsize=8)
    est = ", ".join(
        f"{k.split('.')[-1]} = {v['estimate']:.3g} {v['unit'] if v['unit'] != '1' else ''}"
        .strip() for k, v in result.parameters.items())
    fig.suptitle(f"fit: {est}", fontsize=9)
    fig.tight_layout()
    return fig
