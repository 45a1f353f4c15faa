"""Figures: kymograph of spinal CSF, cord-segment courses, brain and plasma.

All functions take a results :class:`xarray.Dataset` from :func:`csfmodel.simulate`
and return a matplotlib Figure. matplotlib is imported lazily and the Agg
backend is used when no display is configured.

The figures read the regimen from the Dataset's attrs: ``scenario`` (the user's
input as JSON: drug, routes, sites, rates and amounts, for the title and for
telling a needle injection from a catheter tip) and ``catheter_sites_cm`` (z of
every intrathecal dose site). Patient-bolus requests (``request_time``,
``request_accepted``, ``request_reason``) are marked on the kymograph.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass

import numpy as np
import xarray as xr

__all__ = ["plot_overview", "plot_kymograph", "regimen_title", "dose_sites", "DoseSite"]

_LEVEL_TICKS = ("C1", "C4", "T1", "T4", "T7", "T10", "L1", "L3", "L5", "S1")
#: level whose CSF is plotted over time when the scenario has no intrathecal dose
#: (lumbar CSF: where a lumbar puncture samples it)
FALLBACK_LEVEL = "L3"
_ROUTE = {"intrathecal": "IT", "iv": "IV", "oral": "oral"}
_SITE_COLOR = "#00e5ff"


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # pragma: no cover
            pass
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------- regimen from attrs
def _source(ds: xr.Dataset) -> dict:
    """The user's scenario (``attrs["scenario"]``, JSON text or a dict); {} if absent."""
    src = ds.attrs.get("scenario", "{}")
    if isinstance(src, str):
        try:
            src = json.loads(src)
        except ValueError:
            return {}
    return src if isinstance(src, dict) else {}


def _doses(ds: xr.Dataset) -> list[dict]:
    doses = _source(ds).get("dose", [])
    doses = [doses] if isinstance(doses, dict) else doses
    return [d for d in doses if isinstance(d, dict)] if isinstance(doses, list) else []


def _repeat(d: dict) -> str:
    out = ""
    if d.get("time") not in (None, 0, "0 h", "0 min"):
        out += f" at {d['time']}"
    if "interval" in d:
        out += f" every {d['interval']}"
        if "count" in d:
            out += f" \u00d7{d['count']}"
    return out


def _window(d: dict) -> str:
    out = f" from {d['start']}" if d.get("start") not in (None, 0, "0 h", "0 min") else ""
    return out + (f" for {d['duration']}" if "duration" in d else "")


def _program_rates(program: list) -> str:
    """``[{at, rate}, ...]`` -> "0.8/1.0 mg/day program" (rates in the user's words)."""
    rates = []
    for st in program:
        r = str(st.get("rate", "?")) if isinstance(st, dict) else "?"
        if r not in rates:
            rates.append(r)
    split = [r.split(maxsplit=1) for r in rates]
    if all(len(p) == 2 for p in split) and len({p[1] for p in split}) == 1:
        return "/".join(p[0] for p in split) + f" {split[0][1]} program"
    return " / ".join(rates) + " program"


def _dose_text(d: dict) -> str:
    route = str(d.get("route", "?")).lower()
    typ = str(d.get("type", "bolus")).lower()
    r = _ROUTE.get(route, route)
    site = f" at {d['site']}" if "site" in d else ""
    if typ == "infusion":
        rate = _program_rates(d["program"]) if isinstance(d.get("program"), list) \
            else str(d.get("rate", "?"))
        return f"{r} infusion{site}, {rate}{_window(d)}"
    if typ == "patient_bolus":
        return (f"{r} patient bolus{site}, {d.get('amount', '?')} (lockout "
                f"{d.get('lockout', '?')}, max {d.get('max_per_day', '?')}/day)")
    if route == "intrathecal":
        how = str(d.get("delivery", "needle")).lower()
        vol = f" in {d['volume']}" if "volume" in d else ""
        return f"{r} {how} bolus{site}, {d.get('amount', '?')}{vol}{_repeat(d)}"
    if route == "oral":
        form = str(d.get("formulation", "immediate")).lower()
        cr = " controlled-release" if form in ("controlled", "cr") else ""
        return f"oral{cr} {d.get('amount', '?')}{_repeat(d)}"
    return f"{r} bolus {d.get('amount', '?')}{_repeat(d)}"


def regimen_title(ds: xr.Dataset, width: int = 110) -> str:
    """The regimen in words, e.g. "morphine: IT infusion at T10, 1 mg/day + ..."."""
    drug = str(ds.attrs.get("drug") or _source(ds).get("drug", {}).get("name", "drug"))
    parts = [_dose_text(d) for d in _doses(ds)] or ["no dose"]
    one = f"{drug}: " + " + ".join(parts)
    if len(one) <= width:
        return one
    # too long for one line: one dose a line (each wrapped itself if need be)
    lines = [f"{drug}: {parts[0]}"] + [f"+ {p}" for p in parts[1:]]
    return "\n".join(textwrap.fill(line, width, subsequent_indent="  ") for line in lines)


@dataclass(frozen=True)
class DoseSite:
    """An intrathecal dose site: z (cm), the user's site ("T10") and what is there."""

    z: float
    site: str
    kind: str  # "catheter tip", "needle injection" or both joined by " / "

    @property
    def label(self) -> str:
        return f"{self.kind} ({self.site})"


def _level_at(ds: xr.Dataset, z: float) -> str:
    return str(ds.vertebral_level.sel(z=z, method="nearest").values)


def dose_sites(ds: xr.Dataset) -> list[DoseSite]:
    """Every intrathecal dose site of the run, rostral first (from the attrs).

    A bolus with ``delivery = "needle"`` (the default of ``type = "bolus"``) is a
    "needle injection"; infusions, patient boluses and catheter boluses come
    through a "catheter tip".
    """
    zs = [float(z) for z in json.loads(ds.attrs.get("catheter_sites_cm", "[]") or "[]")]
    it = [d for d in _doses(ds) if str(d.get("route", "")).lower() == "intrathecal"]
    try:  # the site of every dose, in z, exactly as the run placed it
        from csfmodel.scenario import parse_scenario

        parsed = parse_scenario(_source(ds)).doses
        placed = [(float(p.site_z), d) for p, d in zip(parsed, _doses(ds))
                  if hasattr(p, "site_z")]
    except Exception:  # an older or edited file: match by order only if unambiguous
        placed = [(zs[0], d) for d in it] if len(zs) == 1 else []
    out = []
    for z in zs:
        here = [d for zd, d in placed if abs(zd - z) < 1e-6]
        kinds = []
        for d in here:
            needle = str(d.get("type", "bolus")).lower() == "bolus" and \
                str(d.get("delivery", "needle")).lower() == "needle"
            k = "needle injection" if needle else "catheter tip"
            if k not in kinds:
                kinds.append(k)
        sites = {str(d["site"]) for d in here if "site" in d}
        site = sites.pop() if len(sites) == 1 else _level_at(ds, z)
        out.append(DoseSite(z, site, " / ".join(sorted(kinds)) or "IT dose site"))
    return out


# ---------------------------------------------------------------- helpers
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


def _mark_sites(ax, sites: list[DoseSite], x_axes: float = 0.985) -> None:
    """A dashed line at every dose site with a legible boxed label (dark on light)."""
    for s in sites:
        ax.axhline(s.z, color=_SITE_COLOR, lw=1.2, ls="--", zorder=3)
        ax.annotate(s.label, (x_axes, s.z), xycoords=ax.get_yaxis_transform(),
                    xytext=(0, -3), textcoords="offset points", ha="right", va="bottom",
                    fontsize=8.5, color="black", zorder=6, gid="dose_site_label",
                    bbox=dict(boxstyle="round,pad=0.25", fc="white", ec=_SITE_COLOR,
                              lw=1.0, alpha=0.9))


def _mark_requests(ax, ds: xr.Dataset) -> None:
    """Patient-bolus requests along the top of a time axis: given ▼, refused ✕."""
    if "request_time" not in ds or not ds.sizes.get("request", 0):
        return
    t = ds.request_time.values
    ok = ds.request_accepted.values.astype(bool)
    reason = ds.request_reason.values.astype(str) if "request_reason" in ds else \
        np.where(ok, "accepted", "refused")
    tr = ax.get_xaxis_transform()
    ax.plot(t[ok], np.full(ok.sum(), 0.965), ls="none", marker="v", ms=7, mfc="white",
            mec="black", mew=0.8, transform=tr, clip_on=False, zorder=7,
            gid="requests_accepted", label=f"patient bolus given ({ok.sum()})")
    why = {}
    for r in reason[~ok]:
        why[r] = why.get(r, 0) + 1
    detail = ", ".join(f"{n} {r.replace('max_per_day', 'daily maximum')}"
                       for r, n in why.items())
    ax.plot(t[~ok], np.full((~ok).sum(), 0.965), ls="none", marker="X", ms=8, mfc="#ff3b3b",
            mec="white", mew=0.8, transform=tr, clip_on=False, zorder=7,
            gid="requests_refused", label=f"request refused ({detail or (~ok).sum()})")
    leg = ax.legend(loc="lower right", fontsize=8, framealpha=0.9,
                    title="patient requests", title_fontsize=8)
    leg.set_zorder(8)


# ---------------------------------------------------------------- figures
def plot_kymograph(ds: xr.Dataset, ax=None, decades: float = 4.0):
    """Spinal CSF concentration over z (down) and time (across), log colour scale.

    Dose sites are dashed and labelled ("catheter tip (T10)", "needle injection
    (L3-L4)"); patient-bolus requests are marked along the top (given ▼, refused ✕).
    """
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
    _mark_sites(ax, dose_sites(ds))
    _mark_requests(ax, ds)
    ax.figure.colorbar(mesh, ax=ax, label="CSF concentration (ng/mL)")
    ax.set_title("Spinal CSF concentration")
    return ax.figure


def _reference_csf(ds: xr.Dataset) -> list[tuple[xr.DataArray, str]]:
    """CSF over time at every dose site; without an IT dose at the fallback level."""
    sites = dose_sites(ds)
    if sites:
        return [(ds.csf_concentration.sel(z=s.z, method="nearest"), f"spinal CSF at {s.label}")
                for s in sites]
    hit = np.nonzero(ds.vertebral_level.values == FALLBACK_LEVEL)[0]
    k = int(hit[len(hit) // 2]) if len(hit) else int(0.85 * (ds.sizes["z"] - 1))
    da = ds.csf_concentration.isel(z=k)
    return [(da, f"lumbar CSF at {str(da.vertebral_level.values)} (no IT dose)")]


def plot_overview(ds: xr.Dataset, decades: float = 4.0):
    """Four panels: CSF kymograph, cord segments over time, spinal profiles, brain/plasma.

    Titled by the regimen (drug, route/type, site, rate or amount); the CSF time
    course is taken at the catheter tip / needle injection site.
    """
    plt = _plt()
    from matplotlib.colors import LogNorm

    fig, axs = plt.subplots(2, 2, figsize=(13, 8.5), constrained_layout=True)
    plot_kymograph(ds, axs[0, 0], decades)
    sites = dose_sites(ds)

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
    _mark_sites(ax, sites, x_axes=0.03)
    for a in ax.texts:  # labels on the left here: the legend is on the right
        a.set_horizontalalignment("left")
    ax.legend(fontsize=8, title="time", loc="best")
    ax.grid(alpha=0.3)

    # brain, cisterna, plasma and CSF at the dose site
    ax = axs[1, 1]
    for name, label in (("cisternal_csf_concentration", "cisternal CSF"),
                        ("brain_concentration", "brain ECF (unbound)"),
                        ("plasma_concentration", "plasma (total)")):
        v = ds[name].values
        if np.any(v > 0):
            ax.semilogy(t, np.clip(v, 1e-6, None), label=label)
    ref = _reference_csf(ds)
    for da, label in ref:
        ax.semilogy(t, np.clip(da.values, 1e-6, None), "--", color="gray", label=label,
                    gid="reference_csf")
    top = max(float(np.nanmax(ds[v].values)) for v in ("cisternal_csf_concentration",
              "brain_concentration", "plasma_concentration")) * 3
    top = max([top, 1e-5] + [float(np.nanmax(da.values)) * 3 for da, _ in ref])
    # one decade more below than the curves need: room for the legend
    ax.set_ylim(top / 10 ** (decades + 3), top)
    ax.set_xlabel("time (h)")
    ax.set_ylabel("concentration (ng/mL)")
    ax.set_title("Supraspinal and systemic exposure")
    ax.legend(fontsize=8, loc="lower center", ncol=2, framealpha=0.9)
    ax.grid(alpha=0.3)

    fig.suptitle(regimen_title(ds), fontsize=12)
    dz = float(ds.attrs.get("grid_resolution_cm", 0))
    fig.text(0.995, 0.002, f"csfmodel {ds.attrs.get('csfmodel_version', '')} \u00b7 solver "
             f"{ds.attrs.get('solver', '?')} \u00b7 dz {dz:.2g} cm", ha="right", va="bottom",
             fontsize=7, color="gray")
    return fig
