"""The figure of a route comparison (:meth:`RouteComparison.plot`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._record import RouteComparison


def plot_comparison(res: RouteComparison, path: str | None = None):
    """Figure: target vs brain exposure per route; coverage along the spine."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    colors = {"oral": "tab:orange", "iv": "tab:red", "intrathecal": "tab:blue"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    ax = axes[0]
    for r in [res.reference, *res.routes]:
        eq = r.basis != "equal dorsal-horn"
        big = r.basis == "reference"
        ax.scatter(r.brain, r.target_dorsal_horn, s=140 if big else 60,
                   color=colors[r.route], marker="D" if big else ("o" if eq else "s"),
                   facecolors="none" if (big or not eq) else colors[r.route], zorder=3,
                   label=f"{r.route} {r.daily_dose_mg:.3g} mg/day ({r.basis})")
    ax.axhline(res.pd["ec50_spinal"], color="0.5", ls=":", lw=1)
    ax.axvline(res.pd["ec50_brain"], color="0.5", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("brain ECF, unbound (ng/mL)")
    ax.set_ylabel("target dorsal horn, unbound (ng/mL)")
    ax.set_title("target vs brain exposure (dotted: EC50s)")
    ax.legend(fontsize=7, loc="best")
    x = np.arange(len(res.segments))
    tgt = [res.segments.index(t) for t in res.target]
    for ax in axes[1:]:
        ax.axvspan(min(tgt) - 0.5, max(tgt) + 0.5, color="0.9")
    for r in [res.reference, *res.routes]:
        if r.basis == "equal dorsal-horn":
            continue
        ls = "--" if r.route == "iv" else "-"
        axes[1].semilogy(x, np.maximum(r.cord_profile, 1e-6), color=colors[r.route], ls=ls,
                         label=f"{r.route} {r.daily_dose_mg:.3g} mg/day")
        axes[2].plot(x, r.analgesia_profile, color=colors[r.route], ls=ls, label=r.route)
    axes[1].axhline(res.pd["ec50_spinal"], color="0.5", ls=":", lw=1,
                    label="spinal EC50")
    axes[1].set_ylabel("dorsal horn, unbound (ng/mL)")
    axes[1].set_title("coverage along the spine (equianalgesic doses)")
    axes[2].set_ylabel("analgesia (fraction of max)")
    axes[2].set_ylim(0, 1)
    axes[2].set_title("analgesia per segment (shaded: target)")
    for ax in axes[1:]:
        ax.set_xticks(x[::2])
        ax.set_xticklabels(res.segments[::2], rotation=90, fontsize=7)
        ax.set_xlabel("cord segment")
        ax.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        from csfmodel._io import save_figure

        save_figure(fig, path, dpi=120, close=False)
    return fig
