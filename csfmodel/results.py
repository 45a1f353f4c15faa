"""Self-describing results: states → an :class:`xarray.Dataset` with units.

Longer than 400 lines: every variable's definition (units, long_name, description) lives here once.

Variable names are part of the public API (scripts rely on them):

===================================  ===============  ==========================
variable                             dims             units
===================================  ===============  ==========================
``csf_concentration``                (time, z)        ng/mL
``cord_concentration``               (time, segment)  ng/mL (unbound, tissue)
``cisternal_csf_concentration``      (time,)          ng/mL
``cortical_csf_concentration``       (time,)          ng/mL
``ventricular_csf_concentration``    (time,)          ng/mL
``brain_concentration``              (time,)          ng/mL (unbound brain ECF)
``plasma_concentration``             (time,)          ng/mL (total)
``amount_dosed/present/eliminated``  (time,)          mg
``amount``                           (time, pool)     mg
===================================  ===============  ==========================

``time`` is in h, ``z`` in cm from the foramen magnum (caudal positive) with
a ``vertebral_level`` coordinate. Every variable and coordinate carries ``units``,
a short ``long_name`` (a plot axis label, at most :data:`LONG_NAME_MAX` characters)
and a ``description`` with the detail.

One path from states to a Dataset
---------------------------------
Each variable is defined once, in :data:`VARIABLES`. The concentrations are
*observations* of the state (amounts): :func:`observation` gives them as rows
over the state, which :meth:`Observation.apply` evaluates on states in Python
and :meth:`Observation.csr` hands to a batch kernel (sweeps), so both give the
same numbers. :func:`build_dataset` is the one place a Dataset is made: a single
run (:func:`to_dataset`, used by :func:`csfmodel.simulate` and for each window of
:func:`csfmodel.simulate_to_file`) and each chunk of a sweep
(:mod:`csfmodel.sweep`, with a leading ``scenario`` dimension) get the same
variables, coordinates and attributes, so ``sweep.isel(scenario=i)`` describes
itself exactly as ``simulate`` of that scenario does.

What later steps need from a run is recorded with it (:func:`run_record`): the
drug, the catheter sites and the inputs of the effect model
(:class:`csfmodel._effect_inputs.EffectInputs`) — in ``attrs`` for a single run, as
coordinates along ``scenario`` in a sweep — so effects and metrics work from the
Dataset alone, and :func:`level_z` places a vertebral level on ``z`` with the
run's own anatomy (the ``level_z_top``/``level_z_bottom`` coordinates).

Reductions: xarray's ``idxmax``/``idxmin`` copy the *reduced array's* attrs
(e.g. ``units = "ng/mL"``) onto the coordinate label they return. For the time of
a peak with the time's own units use ``ds.time[da.argmax("time")]`` (or
:func:`csfmodel.metrics.tmax`, which labels it "Tmax of ...", units h).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from csfmodel.anatomy import CORD_SEGMENTS, VERTEBRAL_LEVELS

if TYPE_CHECKING:
    from csfmodel.dosing import Request
    from csfmodel.model import Model, Schedule
    from csfmodel.scenario import Scenario

__all__ = ["to_dataset", "build_dataset", "series", "summaries", "observation",
           "Observation", "Geometry", "Variable", "VARIABLES", "CONCENTRATIONS", "SUMMARIES",
           "POOLS", "RECORD_ATTRS", "run_record", "level_z", "save", "load", "NetCDFStream",
           "LONG_NAME_MAX"]

_NG_PER_ML = 1000.0  # ug/mL -> ng/mL
_MG = 1e-3           # ug -> mg

#: pools of the ``amount`` variable and the states they sum
POOLS = ("spinal_csf", "cord", "cranial_csf", "brain", "plasma", "peripheral", "gut")

#: longest ``long_name``: xarray's ``.plot()`` builds axis labels "long_name [units]"
LONG_NAME_MAX = 30


def _attrs(units: str, long_name: str, description: str = "", **kw: str) -> dict:
    """``units``, a short ``long_name`` (a plot axis label) and a longer ``description``."""
    out = {"units": units, "long_name": long_name}
    if description:
        out["description"] = description
    return {**out, **kw}


# ------------------------------------------------------------------ variables
@dataclass(frozen=True)
class Variable:
    """One output variable, defined once for single runs and sweeps.

    ``dim`` is its dimension beside ``time`` (``z``, ``segment``, ``pool``) or None;
    ``label`` the shortest name, used in the labels of a sweep's summaries
    ("Cmax of <label>"); ``compartment`` the well-mixed compartment whose
    concentration it is, if it is one.
    """

    name: str
    dim: str | None
    units: str
    long_name: str
    description: str
    label: str = ""
    compartment: str | None = None

    def attrs(self) -> dict:
        return _attrs(self.units, self.long_name, self.description)


VARIABLES: dict[str, Variable] = {v.name: v for v in (
    Variable("csf_concentration", "z", "ng/mL", "spinal CSF concentration",
             "drug concentration in the spinal CSF, per grid cell along z",
             "spinal CSF conc."),
    Variable("cord_concentration", "segment", "ng/mL", "cord concentration (unbound)",
             "unbound drug concentration in spinal cord tissue (dorsal-horn target), "
             "volume-averaged per cord segment", "cord conc. (unbound)"),
    Variable("cisternal_csf_concentration", None, "ng/mL", "cisternal CSF concentration",
             "CSF concentration in the cisterna magna and basal cisterns",
             "cisternal CSF conc.", "cisterna"),
    Variable("cortical_csf_concentration", None, "ng/mL", "cortical CSF concentration",
             "CSF concentration in the cortical subarachnoid space",
             "cortical CSF conc.", "cortical_sas"),
    Variable("ventricular_csf_concentration", None, "ng/mL", "ventricular CSF concentration",
             "CSF concentration in the cerebral ventricles",
             "ventricular CSF conc.", "ventricles"),
    Variable("brain_concentration", None, "ng/mL", "brain concentration (unbound)",
             "unbound drug concentration in brain ECF (supraspinal target)",
             "brain conc. (unbound)", "brain"),
    Variable("plasma_concentration", None, "ng/mL", "plasma concentration (total)",
             "total (bound + unbound) drug concentration in plasma",
             "plasma conc. (total)", "plasma"),
    Variable("amount_dosed", None, "mg", "amount dosed",
             "cumulative amount of drug dosed, all routes"),
    Variable("amount_present", None, "mg", "amount in the body",
             "amount of drug in the body (all compartments and depots); "
             "amount_dosed = amount_present + amount_eliminated"),
    Variable("amount_eliminated", None, "mg", "amount eliminated",
             "cumulative amount eliminated (metabolism, excretion, first pass)"),
    Variable("amount", "pool", "mg", "amount per pool",
             "amount of drug in each pool (see the pool coordinate)"),
)}

#: the concentrations: observations of the state (ng/mL), what a sweep can record
CONCENTRATIONS: tuple[str, ...] = tuple(v for v in VARIABLES if v.endswith("_concentration"))

#: summaries of a sweep (``summary=True``): suffix -> (row of the batch kernel's
#: summary, what it is); ``tmax`` in h, ``auc`` in (units) h
SUMMARIES: dict[str, tuple[int, str]] = {
    "max": (0, "largest value over the output times"),
    "tmax": (1, "time of the (first) largest value over the output times"),
    "auc": (2, "area under the curve over the run (trapezoid over the output times)"),
    "final": (3, "value at the last output time"),
}


def _summary_attrs(var: Variable, stat: str) -> dict:
    what = SUMMARIES[stat][1]
    if stat == "max":
        return _attrs(var.units, f"Cmax of {var.label}", f"{what}: {var.description}")
    if stat == "tmax":
        return _attrs("h", f"Tmax of {var.label}", f"{what}: {var.description}")
    if stat == "auc":
        units = "ng h/mL" if var.units == "ng/mL" else f"{var.units} h"
        return _attrs(units, f"AUC of {var.label}", f"{what}: {var.description}")
    return _attrs(var.units, f"final {var.label}", f"{what}: {var.description}")


# ------------------------------------------------------------------ observation
@dataclass(frozen=True)
class Observation:
    """Concentrations (ng/mL) of some variables as rows over the state.

    Each variable is a block of state columns ``[start, stop)`` divided by their
    volumes (amount -> concentration), either one row per column (``matrix`` None:
    spinal CSF cells, a compartment) or combined by ``matrix`` (cord cells ->
    segments, volume-weighted). :meth:`apply` evaluates it on states (single runs);
    :meth:`csr` gives the same rows as a sparse matrix for a batch kernel (sweeps).
    """

    variables: tuple[str, ...]
    blocks: tuple[tuple[int, int, np.ndarray | None], ...]

    @property
    def layout(self) -> list[tuple[str, int, int]]:
        """``(variable, first row, end row)`` of each variable."""
        out, k = [], 0
        for v, (a, b, mat) in zip(self.variables, self.blocks):
            n = (b - a) if mat is None else mat.shape[0]
            out.append((v, k, k + n))
            k += n
        return out

    @property
    def n_rows(self) -> int:
        return self.layout[-1][2] if self.variables else 0

    def apply(self, states: np.ndarray, volume: np.ndarray) -> dict[str, np.ndarray]:
        """The variables on ``states`` (``(..., n_state)``, ug): ``{name: (..., rows)}``,
        a variable without a dimension as ``(...)``.

        A concentration is ``amount / volume * 1000``; a cord segment's is the sum
        over its cells of ``amount * weight``, the weights of :meth:`csr` (``1000 *
        volume fraction / volume``), in a fixed order: the same numbers however many
        rows are evaluated at once.
        """
        states = np.asarray(states)
        lead = states.shape[:-1]
        flat = states.reshape(-1, states.shape[-1])
        out = {}
        for v, (a, b, mat) in zip(self.variables, self.blocks):
            if mat is not None:
                res = _segment_sums(flat[:, a:b], volume[a:b], mat)
            else:
                res = np.divide(flat[:, a:b], volume[a:b])
                res *= _NG_PER_ML
                if VARIABLES[v].dim is None:
                    res = res[:, 0]
            out[v] = res.reshape(lead + res.shape[1:])
        return out

    def csr(self, volume: np.ndarray, pattern: Sequence[np.ndarray | None] | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ptr, idx, weights)``: the rows in CSR form, weights in ng/mL per ug.

        ``volume`` is one system's (``(n_state,)``) or a stack's (``(B, n_state)``,
        weights ``(B, nnz)``). ``pattern`` (per block, a boolean mask or None) gives the
        entries of the matrix blocks instead of their nonzeros: a superset of them, e.g.
        the union over the grids of a batch of the same shape (weight 0 where this grid
        has none), so that grids of the same shape share one pattern.
        """
        counts, idx, frac = [], [], []
        for k, (a, b, mat) in enumerate(self.blocks):
            if mat is None:
                counts.append(np.ones(b - a, np.int64))
                idx.append(np.arange(a, b))
                frac.append(np.ones(b - a))
            else:
                r, c = np.nonzero(mat if pattern is None else pattern[k])
                counts.append(np.bincount(r, minlength=mat.shape[0]))
                idx.append(a + c)
                frac.append(mat[r, c])
        ptr = np.zeros(sum(len(c) for c in counts) + 1, np.int64)
        ptr[1:] = np.cumsum(np.concatenate(counts))
        cols = np.concatenate(idx).astype(np.int64)
        weights = _NG_PER_ML * np.concatenate(frac) / np.asarray(volume)[..., cols]
        return ptr, cols, np.ascontiguousarray(weights)


def _segment_sums(amounts: np.ndarray, volume: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Rows of the sparse ``mat`` (cells -> segments, volume fractions) on amounts:
    per segment, the sum over its cells of ``amount * 1000 * fraction / volume``.

    The rows and weights of :meth:`Observation.csr` (the batch kernel's), summed in a
    fixed order. (A BLAS product ``conc @ mat.T`` gave a last bit that depended on the
    number of rows and of BLAS threads, so one run saved window by window or in one
    piece differed, and on a busy machine its threads waited for each other longer
    than the product took.) Worked out a few rows at a time: small temporaries (fresh
    memory for a copy of the cord states at every output time cost more than the
    arithmetic).
    """
    r, c = np.nonzero(mat)
    starts = np.flatnonzero(np.diff(r, prepend=-1))
    seg = r[starts]
    weights = _NG_PER_ML * mat[r, c] / volume[c]
    out = np.zeros((len(amounts), mat.shape[0]))
    rows = max(1, 2**14 // max(len(c), 1))
    for i in range(0, len(amounts) if len(c) else 0, rows):
        x = amounts[i:i + rows, c]
        x *= weights
        out[i:i + rows, seg] = np.add.reduceat(x, starts, axis=1)
    return out


def observation(model: Model, variables: Sequence[str] = CONCENTRATIONS) -> Observation:
    """The rows of the requested concentration variables over ``model``'s state.

    The pattern and the segment fractions depend on the grid only; the volumes
    (per state) are applied by :meth:`Observation.apply` and :meth:`Observation.csr`.
    """
    s, g = model.system, model.grid
    n, sp = s.n_spinal, s.n_spatial
    blocks = []
    for v in variables:
        var = VARIABLES.get(v)
        if var is None or v not in CONCENTRATIONS:
            raise KeyError(v)
        if v == "csf_concentration":
            blocks.append((0, n, None))
        elif v == "cord_concentration":
            w = g.segment_weights
            tot = w.sum(axis=1, keepdims=True)     # a segment without cord: no rows
            blocks.append((n, sp, np.divide(w, tot, out=np.zeros_like(w), where=tot > 0)))
        else:
            k = s.index(var.compartment)
            blocks.append((k, k + 1, None))
    return Observation(tuple(variables), tuple(blocks))


# ------------------------------------------------------------------ coordinates
@dataclass(frozen=True)
class Geometry:
    """The coordinates a run's grid and anatomy give its results (cm, mL)."""

    z: np.ndarray
    vertebral_level: np.ndarray
    csf_cell_volume: np.ndarray
    segment_z_top: np.ndarray
    segment_z_bottom: np.ndarray
    segment_volume: np.ndarray
    level_z_top: np.ndarray
    level_z_bottom: np.ndarray

    @classmethod
    def of(cls, model: Model) -> Geometry:
        g, an = model.grid, model.anatomy
        z = g.centers
        seg = an.segment_edges()
        lev = an.level_edges()
        return cls(z=z, vertebral_level=an.level_at(z).astype(str),
                   csf_cell_volume=np.array(g.csf_volume, float),
                   segment_z_top=np.array(seg[:-1]), segment_z_bottom=np.array(seg[1:]),
                   segment_volume=g.segment_weights.sum(axis=1),
                   level_z_top=np.array(lev[:-1]), level_z_bottom=np.array(lev[1:]))

    def same_as(self, other: Geometry) -> bool:
        return all(np.array_equal(getattr(self, f), getattr(other, f))
                   for f in self.__dataclass_fields__)


#: coordinates by dimension: name -> (Geometry field, attrs)
_GEOMETRY_COORDS: dict[str, dict[str, tuple[str, dict]]] = {
    "z": {
        "vertebral_level": ("vertebral_level", _attrs(
            "1", "vertebral level", "vertebral level at z")),
        "csf_cell_volume": ("csf_cell_volume", _attrs(
            "mL", "CSF cell volume", "CSF volume of the grid cell at z")),
    },
    "segment": {
        "segment_z_top": ("segment_z_top", _attrs(
            "cm", "segment rostral end", "z of the rostral end of the cord segment")),
        "segment_z_bottom": ("segment_z_bottom", _attrs(
            "cm", "segment caudal end", "z of the caudal end of the cord segment")),
        "segment_volume": ("segment_volume", _attrs(
            "mL", "segment tissue volume", "cord tissue volume of the segment")),
    },
    "level": {
        "level_z_top": ("level_z_top", _attrs(
            "cm", "level rostral end", "z of the rostral end of the vertebral level")),
        "level_z_bottom": ("level_z_bottom", _attrs(
            "cm", "level caudal end", "z of the caudal end of the vertebral level "
            "(of the sac for the last one)")),
    },
}
_TIME_ATTRS = _attrs("h", "time", "time since the start of the scenario", axis="T")
_Z_ATTRS = _attrs("cm", "distance from foramen magnum",
                  "distance along the spinal subarachnoid space from the foramen magnum "
                  "(caudal positive), centre of the grid cell", axis="Y", positive="down")
_INDEX_COORDS = {
    "segment": (list(CORD_SEGMENTS), _attrs("1", "cord segment", "spinal cord segment, C1 to S5")),
    "pool": (list(POOLS), _attrs("1", "drug pool",
                                 "pool of the amount variable: " + ", ".join(POOLS))),
    "level": (list(VERTEBRAL_LEVELS), _attrs("1", "vertebral level",
                                             "vertebral level, C1 to the sacrum")),
}
#: dimensions whose coordinates come with z (the anatomy's levels place z)
_WITH = {"z": ("level",)}


def _geometry_coords(geometries: Sequence[Geometry], dims: set[str]) -> dict[str, xr.Variable]:
    """Coordinates of ``dims`` from one geometry, or per scenario where members differ."""
    first = geometries[0]
    # a chunk's scenarios on one grid share their Geometry object: compared by identity
    uniform = all(g is first or first.same_as(g) for g in geometries[1:])
    out: dict[str, xr.Variable] = {}
    if "z" in dims:
        if not all(g is first or np.array_equal(first.z, g.z) for g in geometries[1:]):
            from csfmodel.errors import ScenarioError

            raise ScenarioError("variables", "csf_concentration", "scenarios sharing one grid "
                                "(the same anatomy length and resolution) to record the "
                                "spinal CSF profile", detail="the grids along z differ")
        out["z"] = xr.IndexVariable("z", np.array(first.z), _Z_ATTRS)
    for dim in sorted(dims):
        if dim in _INDEX_COORDS and dim not in out:
            labels, attrs = _INDEX_COORDS[dim]
            out[dim] = xr.IndexVariable(dim, np.array(labels), attrs)
        for name, (field, attrs) in _GEOMETRY_COORDS.get(dim, {}).items():
            if uniform:
                out[name] = xr.Variable(dim, np.array(getattr(first, field)), attrs)
            else:
                out[name] = xr.Variable(("scenario", dim), np.stack(
                    [getattr(g, field) for g in geometries]), attrs)
    return out


def level_z(ds: xr.Dataset, level: str, fraction: float = 0.5) -> float:
    """z (cm) of a point ``fraction`` of the way through vertebral ``level``, from the
    run's own anatomy (the ``level_z_top``/``level_z_bottom`` coordinates)."""
    top = float(ds.level_z_top.sel(level=level.strip().upper()))
    bottom = float(ds.level_z_bottom.sel(level=level.strip().upper()))
    return top + fraction * (bottom - top)


# ------------------------------------------------------------------ run record
#: what a run records for later steps (effects, plots): name -> attrs when it is a
#: coordinate along ``scenario`` (a sweep); a single run keeps the values in ``attrs``
RECORD_ATTRS: dict[str, dict] = {
    "drug": _attrs("1", "drug", "drug name (preset)"),
    "catheter_sites_cm": _attrs("1", "intrathecal dose sites",
                                "z (cm) of every intrathecal dose site, as a JSON list"),
}


def run_record(scenario: Scenario, model: Model) -> dict[str, Any]:
    """What later steps need from a run: drug, dose sites, the effect model's inputs.

    A single run keeps these in ``attrs``; a sweep as coordinates along ``scenario``
    (:data:`RECORD_ATTRS` and :data:`csfmodel._effect_inputs.EFFECT_INPUT_ATTRS` give
    their attrs). :func:`csfmodel.effects.effects` reads them instead of building
    the model again.
    """
    from csfmodel._effect_inputs import EffectInputs

    return {"drug": scenario.drug.name,
            "catheter_sites_cm": json.dumps(scenario.catheter_sites()),
            **EffectInputs.of(model).as_record()}


def _record_coords(records: Sequence[Mapping[str, Any]]) -> dict[str, xr.Variable]:
    from csfmodel._effect_inputs import EFFECT_INPUT_ATTRS

    spec = {**RECORD_ATTRS, **EFFECT_INPUT_ATTRS}
    return {k: xr.Variable("scenario", np.array([r[k] for r in records]), spec.get(k, {}))
            for k in records[0]}


# ------------------------------------------------------------------ the builder
def build_dataset(geometry: Geometry | Sequence[Geometry],
                  variables: Mapping[str, tuple[tuple[str, ...], np.ndarray, dict]], *,
                  t_out: np.ndarray | None = None,
                  scenarios: Mapping[str, tuple[np.ndarray, dict]] | None = None,
                  records: Sequence[Mapping[str, Any]] | None = None,
                  requests: Sequence[Request] = (), attrs: dict | None = None) -> xr.Dataset:
    """The one constructor of results Datasets (single runs, sweep chunks, windows).

    Parameters
    ----------
    geometry
        The run's :class:`Geometry` (one per scenario in a sweep; where they differ,
        the geometric coordinates get a ``scenario`` dimension).
    variables
        ``{name: (dims, values, attrs)}``.
    t_out
        Output times (min) when a variable has a ``time`` dimension.
    scenarios
        A sweep's coordinates along ``scenario`` (``{name: (values, attrs)}``; the
        ``scenario`` index itself included).
    records
        A sweep's :func:`run_record` of each scenario (coordinates along ``scenario``).
    requests
        The pump's log of patient bolus requests (single runs).
    attrs
        The Dataset's attributes.
    """
    geoms = [geometry] if isinstance(geometry, Geometry) else list(geometry)
    data = {k: xr.Variable(d, v, a) for k, (d, v, a) in variables.items()}
    dims = {d for v in data.values() for d in v.dims}
    for d in list(dims):
        dims.update(_WITH.get(d, ()))
    coords: dict[str, xr.Variable] = {}
    if scenarios is not None:
        coords.update({k: (xr.IndexVariable if k == "scenario" else xr.Variable)(
            "scenario", v, a) for k, (v, a) in scenarios.items()})
    if "time" in dims:
        coords["time"] = xr.IndexVariable("time", np.asarray(t_out, float) / 60.0, _TIME_ATTRS)
    coords.update(_geometry_coords(geoms, dims))
    if records:
        coords.update(_record_coords(records))
    if len(requests):
        coords["request"] = xr.IndexVariable("request", np.arange(len(requests)), _attrs(
            "1", "request number", "patient bolus request number, in time order"))
        data["request_time"] = xr.Variable("request", np.array(
            [r.time / 60 for r in requests]), _attrs(
            "h", "request time", "time of a patient bolus request"))
        data["request_accepted"] = xr.Variable("request", np.array(
            [int(r.accepted) for r in requests], dtype=np.int8), _attrs(
            "1", "request accepted", "1 if the pump gave the bolus, 0 if it refused it"))
        data["request_reason"] = xr.Variable("request", np.array(
            [r.reason for r in requests]), _attrs(
            "1", "request outcome", "accepted, lockout (refused: within the lockout) or "
            "max_per_day (refused: the daily maximum was reached)"))
        data["request_dose"] = xr.Variable("request", np.array(
            [r.source for r in requests], dtype=np.int32), _attrs(
            "1", "request dose table", "index of the [[dose]] table of the request"))
    return xr.Dataset(data, coords=coords, attrs=dict(attrs or {}))


def series(name: str, values: np.ndarray, lead: tuple[str, ...] = ()) -> tuple:
    """``(dims, values, attrs)`` of variable ``name`` over time (after ``lead`` dims)."""
    var = VARIABLES[name]
    return (*lead, "time", *((var.dim,) if var.dim else ())), values, var.attrs()


def summaries(name: str, values: np.ndarray) -> dict[str, tuple]:
    """The ``<name>_max/_tmax/_auc/_final`` variables of a sweep from the batch kernel's
    summaries ``values`` (``(scenario, 4, rows)``; times in min)."""
    var = VARIABLES[name]
    dims = ("scenario",) + ((var.dim,) if var.dim else ())
    out = {}
    for stat, (row, _) in SUMMARIES.items():
        v = values[:, row, :] if var.dim else values[:, row, 0]
        if stat in ("tmax", "auc"):
            v = v / 60.0
        out[f"{name}_{stat}"] = (dims, v, _summary_attrs(var, stat))
    return out


def _amounts(model: Model, states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``amount_present``, ``amount_eliminated`` and ``amount`` (per pool), mg.

    Worked out a few rows at a time: the temporaries stay small (a copy of every
    state at every output time costs more in fresh memory than in arithmetic), and
    the sums are those of whole rows (the same numbers).
    """
    sysm = model.system
    n, s = sysm.n_spinal, sysm.n_spatial
    ix = sysm.index
    e = ix("eliminated")
    cranial = [ix(c) for c in ("cisterna", "cortical_sas", "ventricles")]
    peripheral, gut = [ix("shallow"), ix("deep")], [ix("gut_ir"), ix("gut_cr")]
    brain, plasma = ix("brain"), ix("plasma")
    nt = len(states)
    present, elim, pools = np.empty(nt), np.empty(nt), np.empty((nt, len(POOLS)))
    rows = max(16, 2**16 // max(states.shape[1], 1))
    for i in range(0, nt, rows):
        j = min(i + rows, nt)
        amt = states[i:j] * _MG
        elim[i:j] = amt[:, e]
        present[i:j] = amt.sum(axis=1) - elim[i:j]
        pools[i:j, 0] = amt[:, :n].sum(1)
        pools[i:j, 1] = amt[:, n:s].sum(1)
        pools[i:j, 2] = amt[:, cranial].sum(1)
        pools[i:j, 3] = amt[:, brain]
        pools[i:j, 4] = amt[:, plasma]
        pools[i:j, 5] = amt[:, peripheral].sum(1)
        pools[i:j, 6] = amt[:, gut].sum(1)
    return present, elim, pools


def to_dataset(model: Model, schedule: Schedule, t_out: np.ndarray, states: np.ndarray,
               requests: Sequence[Request] = (), attrs: dict | None = None, *,
               record: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Turn a single run's states (amounts, ug; times in min) into the results Dataset.

    The concentrations are :func:`observation` applied to the states; the amounts
    are summed per pool. Every variable and coordinate has ``units``, a short
    ``long_name`` and a ``description``; ``record`` (:func:`run_record`) and
    ``attrs`` become the Dataset's attributes.
    """
    conc = observation(model).apply(states, model.system.volume)
    present, elim, pools = _amounts(model, states)
    variables = {name: series(name, conc[name]) for name in CONCENTRATIONS}
    variables["amount_dosed"] = series("amount_dosed", schedule.dosed(t_out) * _MG)
    variables["amount_present"] = series("amount_present", present)
    variables["amount_eliminated"] = series("amount_eliminated", elim)
    variables["amount"] = series("amount", pools)
    attrs = dict(attrs or {})
    attrs.update({k: v for k, v in (record or {}).items() if k not in attrs})
    return build_dataset(Geometry.of(model), variables, t_out=t_out, requests=requests,
                         attrs=attrs)


# ------------------------------------------------------------------ files
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
