"""Self-describing results: states → an :class:`xarray.Dataset` with units.

Variable names are part of the public API (scripts rely on them):

==================================  ===============  ==========================
variable                            dims             units
==================================  ===============  ==========================
``csf_concentration``               (time, z)        ng/mL
``cord_concentration``              (time, segment)  ng/mL (unbound, tissue)
``cisternal_csf_concentration``     (time,)          ng/mL
``cortical_csf_concentration``      (time,)          ng/mL
``ventricular_csf_concentration``   (time,)          ng/mL
``brain_concentration``             (time,)          ng/mL (unbound brain ECF)
``plasma_concentration``            (time,)          ng/mL (total)
``amount_dosed/present/eliminated`` (time,)          mg
``amount``                          (time, pool)     mg
==================================  ===============  ==========================

``time`` is in h, ``z`` in cm from the foramen magnum (caudal positive) with
a ``vertebral_level`` coordinate. Every variable and coordinate carries ``units``,
a short ``long_name`` (a plot axis label, at most :data:`LONG_NAME_MAX` characters)
and a ``description`` with the detail.

Reductions: xarray's ``idxmax``/``idxmin`` copy the *reduced array's* attrs
(e.g. ``units = "ng/mL"``) onto the coordinate label they return. For the time of
a peak with the time's own units use ``ds.time[da.argmax("time")]`` (or
:func:`csfmodel.metrics.tmax`, which labels it "Tmax of ...", units h).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from csfmodel.anatomy import CORD_SEGMENTS
from csfmodel.dosing import Request
from csfmodel.model import Model, Schedule

__all__ = ["to_dataset", "save", "load", "NetCDFStream", "POOLS"]

_NG_PER_ML = 1000.0  # ug/mL -> ng/mL
_MG = 1e-3           # ug -> mg

#: pools of the ``amount`` variable and the states they sum
POOLS = ("spinal_csf", "cord", "cranial_csf", "brain", "plasma", "peripheral", "gut")


def _attrs(units: str, long_name: str, description: str = "", **kw: str) -> dict:
    """``units``, a short ``long_name`` (a plot axis label) and a longer ``description``."""
    out = {"units": units, "long_name": long_name}
    if description:
        out["description"] = description
    return {**out, **kw}


#: longest ``long_name``: xarray's ``.plot()`` builds axis labels "long_name [units]"
LONG_NAME_MAX = 30


def to_dataset(model: Model, schedule: Schedule, t_out: np.ndarray, states: np.ndarray,
               requests: list[Request] = (), attrs: dict | None = None) -> xr.Dataset:
    """Turn states (amounts, ug, internal times in min) into the results Dataset.

    Every variable and coordinate has ``units`` and a short ``long_name`` (what a
    plot axis needs, at most :data:`LONG_NAME_MAX` characters); the detail is in
    ``description``.
    """
    sysm, g = model.system, model.grid
    n, s = sysm.n_spinal, sysm.n_spatial
    conc = states / sysm.volume * _NG_PER_ML
    w = g.segment_weights
    cord = conc[:, n:s] @ (w / w.sum(axis=1, keepdims=True)).T

    def comp(name: str) -> np.ndarray:
        return conc[:, sysm.index(name)]

    amt = states * _MG
    elim = amt[:, sysm.index("eliminated")]
    present = amt.sum(axis=1) - elim
    pools = np.stack([
        amt[:, :n].sum(1), amt[:, n:s].sum(1),
        amt[:, [sysm.index(c) for c in ("cisterna", "cortical_sas", "ventricles")]].sum(1),
        amt[:, sysm.index("brain")], amt[:, sysm.index("plasma")],
        amt[:, [sysm.index("shallow"), sysm.index("deep")]].sum(1),
        amt[:, [sysm.index("gut_ir"), sysm.index("gut_cr")]].sum(1),
    ], axis=1)
    time_h = np.asarray(t_out) / 60.0
    seg = g.segment_weights
    seg_edges = model.anatomy.segment_edges()
    ds = xr.Dataset(
        data_vars={
            "csf_concentration": (("time", "z"), conc[:, :n], _attrs(
                "ng/mL", "spinal CSF concentration",
                "drug concentration in the spinal CSF, per grid cell along z")),
            "cord_concentration": (("time", "segment"), cord, _attrs(
                "ng/mL", "cord concentration (unbound)",
                "unbound drug concentration in spinal cord tissue (dorsal-horn target), "
                "volume-averaged per cord segment")),
            "cisternal_csf_concentration": ("time", comp("cisterna"), _attrs(
                "ng/mL", "cisternal CSF concentration",
                "CSF concentration in the cisterna magna and basal cisterns")),
            "cortical_csf_concentration": ("time", comp("cortical_sas"), _attrs(
                "ng/mL", "cortical CSF concentration",
                "CSF concentration in the cortical subarachnoid space")),
            "ventricular_csf_concentration": ("time", comp("ventricles"), _attrs(
                "ng/mL", "ventricular CSF concentration",
                "CSF concentration in the cerebral ventricles")),
            "brain_concentration": ("time", comp("brain"), _attrs(
                "ng/mL", "brain concentration (unbound)",
                "unbound drug concentration in brain ECF (supraspinal target)")),
            "plasma_concentration": ("time", comp("plasma"), _attrs(
                "ng/mL", "plasma concentration (total)",
                "total (bound + unbound) drug concentration in plasma")),
            "amount_dosed": ("time", schedule.dosed(t_out) * _MG, _attrs(
                "mg", "amount dosed", "cumulative amount of drug dosed, all routes")),
            "amount_present": ("time", present, _attrs(
                "mg", "amount in the body",
                "amount of drug in the body (all compartments and depots); "
                "amount_dosed = amount_present + amount_eliminated")),
            "amount_eliminated": ("time", elim, _attrs(
                "mg", "amount eliminated",
                "cumulative amount eliminated (metabolism, excretion, first pass)")),
            "amount": (("time", "pool"), pools, _attrs(
                "mg", "amount per pool", "amount of drug in each pool (see the pool coordinate)")),
        },
        coords={
            "time": ("time", time_h, _attrs(
                "h", "time", "time since the start of the scenario", axis="T")),
            "z": ("z", g.centers, _attrs(
                "cm", "distance from foramen magnum",
                "distance along the spinal subarachnoid space from the foramen magnum "
                "(caudal positive), centre of the grid cell", axis="Y", positive="down")),
            "vertebral_level": ("z", model.anatomy.level_at(g.centers).astype(str), _attrs(
                "1", "vertebral level", "vertebral level at z")),
            "csf_cell_volume": ("z", g.csf_volume, _attrs(
                "mL", "CSF cell volume", "CSF volume of the grid cell at z")),
            "segment": ("segment", list(CORD_SEGMENTS), _attrs(
                "1", "cord segment", "spinal cord segment, C1 to S5")),
            "segment_z_top": ("segment", seg_edges[:-1], _attrs(
                "cm", "segment rostral end", "z of the rostral end of the cord segment")),
            "segment_z_bottom": ("segment", seg_edges[1:], _attrs(
                "cm", "segment caudal end", "z of the caudal end of the cord segment")),
            "segment_volume": ("segment", seg.sum(axis=1), _attrs(
                "mL", "segment tissue volume", "cord tissue volume of the segment")),
            "pool": ("pool", list(POOLS), _attrs(
                "1", "drug pool", "pool of the amount variable: " + ", ".join(POOLS))),
        },
        attrs=dict(attrs or {}),
    )
    if len(requests):
        ds = ds.assign_coords(request=("request", np.arange(len(requests)), _attrs(
            "1", "request number", "patient bolus request number, in time order")))
        ds["request_time"] = ("request", np.array([r.time / 60 for r in requests]), _attrs(
            "h", "request time", "time of a patient bolus request"))
        ds["request_accepted"] = ("request", np.array([int(r.accepted) for r in requests],
                                                      dtype=np.int8), _attrs(
            "1", "request accepted", "1 if the pump gave the bolus, 0 if it refused it"))
        ds["request_reason"] = ("request", np.array([r.reason for r in requests]), _attrs(
            "1", "request outcome", "accepted, lockout (refused: within the lockout) or "
            "max_per_day (refused: the daily maximum was reached)"))
        ds["request_dose"] = ("request", np.array([r.source for r in requests], dtype=np.int32),
                              _attrs("1", "request dose table",
                                     "index of the [[dose]] table of the request"))
    return ds


def save(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a results Dataset to netCDF (the engine picks what is installed).

    The file is written atomically: to a temporary file in the same directory,
    moved over ``path`` only once complete. If writing fails (disk full, no
    permission, ...) an existing ``path`` is left as it was, no partial file is
    left behind, and an :class:`OSError` naming ``path`` is raised. Missing
    parent directories are created.
    """
    from csfmodel._io import atomic_path

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    out = ds.copy()
    out.attrs = _netcdf_attrs(out.attrs)
    with atomic_path(p) as tmp:
        out.to_netcdf(tmp)
    return p


def _netcdf_attrs(attrs: dict) -> dict:
    """Attrs netCDF can hold: containers as JSON text."""
    return {k: json.dumps(v) if isinstance(v, (dict, list, tuple)) else v
            for k, v in attrs.items()}


class NetCDFStream:
    """A results file grown along ``time`` one window at a time (long runs).

    The first window's Dataset (from :func:`to_dataset`) fixes the layout: it is
    written with an unlimited ``time`` dimension; :meth:`append` adds the rows of
    later windows, and :meth:`close` sets the final attributes. Reading the file
    gives the same Dataset :func:`to_dataset` would have built in one piece.
    """

    def __init__(self, path: str | Path, first: xr.Dataset):
        import netCDF4

        self.path = Path(path)
        first.to_netcdf(self.path, unlimited_dims=["time"])
        self._nc = netCDF4.Dataset(self.path, "a")
        self._timed = [k for k, v in first.variables.items() if "time" in v.dims]

    def append(self, piece: xr.Dataset) -> None:
        """Write the rows of a later window after those already in the file."""
        n0 = self._nc.dimensions["time"].size
        k = piece.sizes["time"]
        for name in self._timed:
            self._nc[name][n0:n0 + k] = piece[name].values

    def close(self, attrs: dict | None = None) -> None:
        """Set the file's global attributes and close it."""
        if attrs:
            self._nc.setncatts(_netcdf_attrs(attrs))
        self._nc.close()


def load(path: str | Path) -> xr.Dataset:
    """Read results written by :func:`save`."""
    with xr.open_dataset(path) as ds:
        return ds.load()
