"""Figures: kymograph of spinal CSF, cord-segment courses, brain and plasma.

All functions take a results :class:`xarray.Dataset` from :func:`csfmodel.simulate`
and return a matplotlib Figure. matplotlib is imported lazily and the Agg
backend is used when no display is configured.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

__all__ = ["plot_overview", "plot_kymograph"]

_LEVEL_TICKS = ("C1", "C4", "T1", "T4", "T7", "T10", "L1", "L3", "L5", "S1")


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # pragma: no cover
            pass
    import matplotlib.pyplot as plt

    return plt


def _level_ticks(ds: xr.Dataset) -> tuple[list[float], list[str]]:
    lv = ds.vertebral_level.values
    z = ds.z.values
    pos, lab = [], []
    for name in _LEVEL_TICKS:
        hit = np.nonzero(lv == name)[0]
        if len(hit):
            pos.append(float(z[hit[0]]))
            lab.append(name)
    return pos, lab


def _log_limits(values: np.ndarray, decades: float = 4.0) -> tuple[float, float]:
    vmax = float(np.nanmax(values)) if np.size(values) else 1.0
    vmax = vmax if vmax > 0 else 1.0
    return vmax / 10**decades, vmax


def plot_kymograph(ds: xr.Dataset, ax=None, decades: float = 4.0):
    """Spinal CSF concentration over z (down) and time (across), log colour scale."""
    plt = _plt()
    from matplotlib.colors import LogNorm

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    c = ds.csf_concentration.values.T
    vmin, vmax = _log_limits(c, decades)
    t = ds.time.values
    edges_t = np.concatenate([[t[0]], 0.5 * (t[1:] + t[:-1]), [t[-1]]]) if len(t) > 1 else \
        np.array([t[0], t[0] + 1])
    z = ds.z.values
    dz = z[1] - z[0] if len(z) > 1 else 1.0
    edges_z = np.concatenate([z - dz / 2, [z[-1] + dz / 2]])
    mesh = ax.pcolormesh(edges_t, edges_z, np.clip(c, vmin, None),
                         norm=LogNorm(vmin=vmin, vmax=vmax), cmap="magma", shading="flat")
    ax.set_ylim(edges_z[-1], edges_z[0])
    pos, lab = _level_ticks(ds)
    ax.set_yticks(pos, lab)
    ax.set_ylabel("vertebral level (z down)")
    ax.set_xlabel("time (h)")
    for site in json.loads(ds.attrs.get("catheter_sites_cm", "[]")):
        ax.axhline(site, color="cyan", lw=1, ls="--")
        ax.annotate("catheter tip", (t[-1], site), color="cyan", fontsize=8, ha="right",
                    va="bottom")
    ax.figure.colorbar(mesh, ax=ax, label="CSF concentration (ng/mL)")
    ax.set_title("Spinal CSF concentration")
    return ax.figure


def plot_overview(ds: xr.Dataset, decades: float = 4.0):
    """Four panels: CSF kymograph, cord segments over time, spinal profiles, brain/plasma."""
    plt = _plt()
    from matplotlib.colors import LogNorm

    fig, axs = plt.subplots(2, 2, figsize=(13, 8.5), constrained_layout=True)
    plot_kymograph(ds, axs[0, 0], decades)

    # cord segments x time
    ax = axs[0, 1]
    cc = ds.cord_concentration.values.T
    vmin, vmax = _log_limits(cc, decades)
    t = ds.time.values
    seg = [str(s) for s in ds.segment.values]
    mesh = ax.pcolormesh(t, np.arange(len(seg)), np.clip(cc, vmin, None),
                         norm=LogNorm(vmin=vmin, vmax=vmax), cmap="viridis", shading="nearest")
    ax.set_yticks(np.arange(0, len(seg), 2), seg[::2])
    ax.set_ylim(len(seg) - 0.5, -0.5)
    ax.set_xlabel("time (h)")
    ax.set_ylabel("spinal cord segment")
    ax.set_title("Dorsal-horn target (unbound cord tissue)")
    fig.colorbar(mesh, ax=ax, label="concentration (ng/mL)")

    # spinal profiles at a few times
    ax = axs[1, 0]
    picks = np.unique(np.linspace(0, len(t) - 1, 6).astype(int))[1:]
    for k in picks:
        prof = ds.csf_concentration.isel(time=k).values
        ax.semilogx(np.clip(prof, 1e-6, None), ds.z.values, label=f"{t[k]:.3g} h")
    ax.set_ylim(ds.z.values[-1], ds.z.values[0])
    pos, lab = _level_ticks(ds)
    ax.set_yticks(pos, lab)
    lo, hi = _log_limits(ds.csf_concentration.values, decades)
    ax.set_xlim(lo, hi * 2)
    ax.set_xlabel("CSF concentration (ng/mL)")
    ax.set_title("Profiles along the spine")
    ax.legend(fontsize=8, title="time")
    ax.grid(alpha=0.3)

    # brain, cisterna, plasma
    ax = axs[1, 1]
    for name, label in (("cisternal_csf_concentration", "cisternal CSF"),
                        ("brain_concentration", "brain ECF (unbound)"),
                        ("plasma_concentration", "plasma (total)")):
        v = ds[name].values
        if np.any(v > 0):
            ax.semilogy(t, np.clip(v, 1e-6, None), label=label)
    lumbar = ds.csf_concentration.sel(z=float(ds.z.values[-1]) * 0.85, method="nearest")
    ax.semilogy(t, np.clip(lumbar.values, 1e-6, None), "--", color="gray",
                label=f"spinal CSF at {str(lumbar.vertebral_level.values)}")
    top = max(float(np.nanmax(ds[v].values)) for v in ("cisternal_csf_concentration",
              "brain_concentration", "plasma_concentration")) * 3
    top = max(top, float(np.nanmax(lumbar.values)) * 3, 1e-5)
    ax.set_ylim(top / 10 ** (decades + 2), top)
    ax.set_xlabel("time (h)")
    ax.set_ylabel("concentration (ng/mL)")
    ax.set_title("Supraspinal and systemic exposure")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle(f"csfmodel: {ds.attrs.get('drug', '')}  "
                 f"(solver {ds.attrs.get('solver', '')}, dz = "
                 f"{float(ds.attrs.get('grid_resolution_cm', 0)):.2g} cm)")
    return fig
