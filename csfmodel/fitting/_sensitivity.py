r"""Exact sensitivities of every output of :func:`csfmodel.simulate` to scenario values.

Two steps, both exact to rounding (no finite differences):

1. **The derivatives of the model's arrays.** ``J``, the dose jumps ``b`` and
   inputs ``u`` and the volumes that turn amounts into concentrations are assembled
   by numpy code (:mod:`csfmodel.model`) that is complex-safe, so one assembly with
   the parameter set to :math:`θ + i h` gives :math:`\partial J/\partial θ =
   \operatorname{Im} J(θ + i h)/h` with no subtractive cancellation (complex-step
   differentiation, Squire & Trapp 1998 SIAM Rev 40:110; ``h = 1e-20 θ``, exact to
   rounding for this analytic code). Dose amounts and rates enter linearly and
   are differentiated the same way.
2. **The forward sensitivity equations** :math:`\dot s = J s + J_θ y + u_θ`,
   :math:`s^+ = s^- + b_θ`, integrated together with the state by the ESDIRK
   method of the numba backend reusing its structured factorization
   (:mod:`csfmodel.fitting._kernel`), on the steps the state's error control
   chooses: three structured solves per parameter and step against the state's
   four (the cost against a forward solve: benchmarks/test_bench_sensitivity.py,
   docs/fitting.md).

Concentrations are ``c = W(V) y`` (``W`` the observation rows, ``V`` the volumes),
so :math:`\partial c/\partial θ = W s + (\partial W/\partial θ)\,y`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from csfmodel.dosing import DoseEvents
from csfmodel.errors import ScenarioError
from csfmodel.model import (
    LinearSystem,
    Model,
    Schedule,
    add_bolus,
    bolus_inputs,
    build_models,
    build_schedule,
)
from csfmodel.results import (
    CONCENTRATIONS,
    VARIABLES,
    Geometry,
    build_dataset,
    observation,
    series,
    to_dataset,
)
from csfmodel.scenario import Scenario

from ._parameters import DEPOSIT_FIELDS, Parameter, resolve

__all__ = ["sensitivity", "Sensitivities", "solve_sensitivities", "ELASTICITY_FLOOR"]

#: complex step relative to the parameter's value
_H = 1e-20
#: elasticities are NaN where the output is below this fraction of its largest value
ELASTICITY_FLOOR = 1e-9
_SYSTEM_ARRAYS = ("lower", "diag", "upper", "cord_diag", "csf_to_cord", "cord_to_csf",
                  "border_rows", "border_cols", "block")


@dataclass(frozen=True)
class Tangent:
    """The derivatives of one parameter's model arrays (internal units)."""

    system: LinearSystem       # dJ (and dvolume in .volume)
    jumps: np.ndarray          # (K, n_state)
    rates: np.ndarray          # (K, n_state)


@dataclass(frozen=True)
class Sensitivities:
    """State and sensitivities of one run at its output times (internal units).

    ``states`` ``(n_out, n_state)`` (ug), ``d_states`` ``(P, n_out, n_state)`` (ug per
    internal unit of each parameter); ``tangents`` the derivatives of the arrays.
    """

    model: Model
    schedule: Schedule
    t_out: np.ndarray
    params: list[Parameter]
    states: np.ndarray
    d_states: np.ndarray
    tangents: list[Tangent]
    stats: dict

    def concentrations(self, variables=CONCENTRATIONS) -> tuple[dict, dict]:
        """``({name: (n_out, rows)}, {name: (P, n_out, rows)})`` in ng/mL (and per
        internal unit); a variable without a dimension has rows = 1."""
        import scipy.sparse as sp

        obs = observation(self.model, variables)
        vol = self.model.system.volume
        ptr, cols, w = obs.csr(vol)
        W = sp.csr_matrix((w, cols, ptr), shape=(obs.n_rows, len(vol)))
        vals = (W @ self.states.T).T
        dvals = np.empty((len(self.params),) + vals.shape)
        for k, tan in enumerate(self.tangents):
            dvals[k] = (W @ self.d_states[k].T).T
            dvol = tan.system.volume
            if np.any(dvol):
                _, _, wc = obs.csr(vol + 1j * _H * dvol)
                dW = sp.csr_matrix((np.imag(wc) / _H, cols, ptr), shape=W.shape)
                dvals[k] += (dW @ self.states.T).T
        v_out, d_out = {}, {}
        for name, a, b in obs.layout:
            v_out[name] = vals[:, a:b]
            d_out[name] = dvals[:, :, a:b]
        return v_out, d_out


def _perturbed(model: Model, p: Parameter, h: float) -> tuple:
    """The anatomy and drug of ``model`` with ``p`` moved by ``i h`` (complex step)."""
    an, dr = model.anatomy, model.drug
    if p.section == "patient":
        an = dataclasses.replace(an, **{p.name: p.value + 1j * h})
    else:
        dr = dataclasses.replace(dr, **{p.name: p.value + 1j * h})
    return an, dr


def tangents(model: Model, schedule: Schedule, events: DoseEvents,
             params: list[Parameter]) -> list[Tangent]:
    """The derivatives of the model arrays for every parameter (:func:`_tangent`).

    The complex models of all patient and drug parameters are assembled together
    (:func:`csfmodel.model.build_models`: one pass of the equations over a batch axis
    holding one complex-perturbed model per parameter), each equal to its own complex
    assembly to round-off (complex products of a batch axis may round in the last bit).
    """
    idx = [i for i, p in enumerate(params) if p.section in ("patient", "drug")]
    complex_models: dict[int, Model] = {}
    if idx:
        hs = [_H * max(abs(params[i].value), 1e-300) for i in idx]
        an, dr = [], []
        for i, h in zip(idx, hs):
            a, d = _perturbed(model, params[i], h)
            an.append(a)
            # the meningeal permeability written out as the value it takes (computed
            # from the drug's other numbers, complex where one of them is perturbed, or
            # the perturbed value itself): the same numbers, and every member in one pass
            dr.append(dataclasses.replace(d, meningeal_permeability=d.meningeal_p()))
        complex_models = dict(zip(idx, build_models(an, dr, model.grid)))
    return [_tangent(model, schedule, events, p, complex_models.get(i))
            for i, p in enumerate(params)]


def _bolus_derivative(model: Model, b, h: float, **change) -> tuple:
    """The derivative of bolus ``b``'s inputs (:func:`~csfmodel.model.bolus_inputs`:
    offsets, jumps, rates) along a complex step ``h`` in ``model`` or in ``change``."""
    b = dataclasses.replace(b, time=0.0, source=0, **change)
    offsets, jumps, rates = bolus_inputs(model, b)
    return offsets, np.imag(jumps) / h, np.imag(rates) / h


def _tangent(model: Model, schedule: Schedule, events: DoseEvents, p: Parameter,
             mc: Model | None = None) -> Tangent:
    """The derivatives of ``J``, the volumes, the jumps and rates with respect to ``p``
    (``mc``: the complex model of a patient or drug parameter, from :func:`tangents`)."""
    n_state = model.system.n_state
    K = len(schedule.times)
    h = _H * max(abs(p.value), 1e-300)
    jumps = np.zeros((K, n_state))
    rates = np.zeros((K, n_state))
    zero = {name: np.zeros_like(getattr(model.system, name)) for name in _SYSTEM_ARRAYS}
    if p.section in ("patient", "drug"):
        arrays = {name: np.imag(getattr(mc.system, name)) / h for name in _SYSTEM_ARRAYS}
        dvol = np.imag(mc.system.volume) / h
        if p.section == "patient" and p.name in DEPOSIT_FIELDS:
            shared: dict[Any, tuple] = {}
            for b in events.boluses:
                if b.target != "spinal":
                    continue
                key = dataclasses.replace(b, time=0.0, source=0)
                if key not in shared:
                    shared[key] = _bolus_derivative(mc, key, h)
                add_bolus(schedule.times, jumps, rates, b.time, shared[key])
        system = dataclasses.replace(model.system, **arrays, volume=dvol)
        return Tangent(system, jumps, rates)
    # dose values: the jumps or rates of that dose only
    if p.name == "rate":
        steps = [dataclasses.replace(st, rate=1.0) for st in events.steps if st.source == p.index]
        if steps:
            sc = build_schedule(model, DoseEvents(steps=steps), schedule.t_end)
            rates = sc.rates[np.searchsorted(sc.times, schedule.times, side="right") - 1]
    else:
        shared = {}
        for b in events.boluses:
            if b.source != p.index:
                continue
            key = dataclasses.replace(b, time=0.0, source=0)
            if key not in shared:
                shared[key] = _bolus_derivative(model, key, h, **{p.name: p.value + 1j * h})
            add_bolus(schedule.times, jumps, rates, b.time, shared[key])
    system = dataclasses.replace(model.system, **zero,
                                 volume=np.zeros_like(model.system.volume))
    return Tangent(system, jumps, rates)


def solve_sensitivities(prepared, params: list[Parameter], t_out: np.ndarray | None = None,
                        rtol: float | None = None, method: str = "esdirk3",
                        error_control: str = "state") -> Sensitivities:
    """State and sensitivities of a prepared scenario (:func:`csfmodel.prepare`).

    ``t_out`` (min) defaults to the scenario's output times; ``rtol`` to the numba
    backend's default. ``error_control``: ``"state"`` (steps chosen by the state's
    error alone: the sensitivities are the exact derivative of that discrete
    solution) or ``"all"`` (each sensitivity, scaled by its parameter, in the error
    test too). Raises :class:`~csfmodel.solvers.SolverFailure` if the error control
    cannot be met.
    """
    from csfmodel.api import check_memory
    from csfmodel.solvers import SolverFailure, SolverOptions
    from csfmodel.solvers._prepare import atol_floor, border_pattern, kernel_array
    from csfmodel.solvers._tableaus import TABLEAUS
    from csfmodel.solvers.numba_backend import DEFAULT_RTOL

    from . import _kernel

    model, schedule, events = prepared.model, prepared.schedule, prepared.events
    t_out = np.asarray(prepared.t_out if t_out is None else t_out, float)
    rtol = float(SolverOptions(rtol=rtol).rtol or DEFAULT_RTOL)
    if error_control not in ("state", "all"):
        raise ScenarioError("error_control", error_control, "'state' or 'all'")
    n_state = model.system.n_state
    P = len(params)
    check_memory(len(t_out) * (1 + P), n_state)
    tans = tangents(model, schedule, events, params)
    s = model.system
    act, ptr, idx = border_pattern(s.border_rows, s.border_cols)
    tan_args = _tangent_structure([t.system for t in tans], [t.rates for t in tans], s)
    tab = TABLEAUS[method]
    floor = atol_floor(schedule.total_dosed(), rtol)
    out = np.empty((len(t_out), n_state))      # every row is written (checked below)
    d_out = np.empty((P, len(t_out), n_state))
    stats = np.zeros(_kernel.N_STATS)
    d_jumps = np.stack([t.jumps for t in tans]) if P else np.zeros((0,) + schedule.jumps.shape)
    d_rates = np.stack([t.rates for t in tans]) if P else np.zeros((0,) + schedule.jumps.shape)
    scales = np.array([abs(p.value) if p.value != 0 else 1.0 for p in params], float)
    _kernel.compile_notice()
    _kernel.integrate_sensitivities(
        *(kernel_array(getattr(s, name)) for name in _SYSTEM_ARRAYS), kernel_array(s.volume),
        act, ptr, idx, kernel_array(schedule.times), kernel_array(schedule.jumps),
        kernel_array(schedule.rates), float(schedule.t_end), kernel_array(t_out),
        *tan_args, kernel_array(d_jumps), kernel_array(d_rates),
        kernel_array(scales), float(tab.gamma), kernel_array(tab.A),
        kernel_array(tab.error_weights), rtol, float(floor), np.inf, error_control == "all",
        out, d_out, stats)
    if stats[_kernel.ST_FAILED] or int(stats[_kernel.ST_ROWS]) < len(t_out):
        raise SolverFailure("sensitivities: the error control could not be met "
                            f"(rtol={rtol:g}); try a larger rtol")
    info = {"steps": int(stats[_kernel.ST_STEPS]), "rejected": int(stats[_kernel.ST_REJECTED]),
            "factorizations": int(stats[_kernel.ST_FACTORIZATIONS]), "rtol": rtol}
    return Sensitivities(model, schedule, t_out, list(params), out, d_out, tans, info)


def _tangent_structure(systems: list[LinearSystem], rates: list[np.ndarray],
                       s: LinearSystem) -> tuple:
    """Each ``J_k`` in the structure the kernel applies it in
    (:func:`csfmodel.fitting._kernel._tangent_times`): flags (rates, tridiagonal (2: its
    diagonal alone), cord, block not zero), stacked parts, the border rows and columns
    that are not zero (each column with the span of its nonzero entries) and the CSR
    pattern of the border rows."""
    from csfmodel.solvers._prepare import kernel_array

    P = len(systems)
    n, n_cord = len(s.diag), len(s.cord_diag)
    n_spatial, m = n + n_cord, s.block.shape[0]
    flags = np.zeros((P, 4), np.int64)
    tri = np.zeros((P, 3, n))
    cord = np.zeros((P, 3, n_cord))
    rows = np.zeros((P, m, n_spatial))
    cols = np.zeros((P, m, n_spatial))
    block = np.zeros((P, m, m))
    row_idx, col_idx, row_ptr, col_ptr = [], [], [0], [0]
    for k, t in enumerate(systems):
        tri[k, 0, 1:] = t.lower
        tri[k, 1] = t.diag
        tri[k, 2, :-1] = t.upper
        cord[k] = (t.cord_diag, t.csf_to_cord, t.cord_to_csf)
        rows[k] = t.border_rows
        cols[k] = np.asarray(t.border_cols).T
        block[k] = t.block
        tri_kind = 0 if not np.any(tri[k]) else 2 if not np.any(tri[k, [0, 2]]) else 1
        flags[k] = (np.any(rates[k]), tri_kind, np.any(cord[k]), np.any(block[k]))
        r = np.flatnonzero(np.any(rows[k] != 0, axis=1))
        c = np.flatnonzero(np.any(cols[k] != 0, axis=1))
        row_idx.extend(r)
        for j in c:                 # the column and the span of its nonzero entries
            nz = np.flatnonzero(cols[k, j])
            col_idx.append((j, nz[0], nz[-1] + 1))
        row_ptr.append(len(row_idx))
        col_ptr.append(len(col_idx))

    def ints(a):
        return kernel_array(np.asarray(a, np.int64), np.int64)

    flat = rows.reshape(P * m, n_spatial)
    csr_ptr = np.concatenate([[0], np.cumsum(np.count_nonzero(flat, axis=1))])
    csr_idx = np.nonzero(flat)[1]
    return (ints(flags), kernel_array(tri), kernel_array(cord), kernel_array(flat),
            ints(row_ptr), ints(row_idx), ints(csr_ptr), ints(csr_idx), kernel_array(cols),
            ints(col_ptr), ints(np.reshape(col_idx, (-1, 3))), kernel_array(block))


def sensitivity(scenario: Scenario | dict | str | Path, parameters: list[str] | tuple[str, ...],
                *, rtol: float | None = None, method: str = "esdirk3",
                error_control: str = "state") -> xr.Dataset:
    r"""Derivatives of every output of :func:`csfmodel.simulate` with respect to scenario values.

    Parameters
    ----------
    scenario
        A :class:`~csfmodel.scenario.Scenario`, a dict in the TOML layout or a TOML path.
    parameters
        Scenario keys, as :func:`csfmodel.sweep.run_batch` writes them:
        ``"patient.<field>"`` (fields that do not change the grid:
        :data:`~csfmodel.fitting.SUPPORTED_PATIENT`), ``"drug.<field>"`` (every numeric
        drug value; ``drug.meningeal_permeability`` is the permeability in effect,
        derived from the drug's properties unless set) and ``"dose[i].amount"``,
        ``"dose[i].rate"`` (a constant rate), ``"dose[i].volume"``,
        ``"dose[i].injection_rate"``.
    rtol
        Relative tolerance of the integration (state and sensitivities, see
        :mod:`csfmodel.fitting._kernel`); default the numba backend's.
    method
        ``"esdirk3"`` (default) or ``"trbdf2"``.
    error_control
        ``"state"`` (default): the steps are those the state's error control
        chooses, and the sensitivities the exact derivative of that discrete
        solution (converging with ``rtol``); ``"all"``: each sensitivity, scaled by
        its parameter, enters the error test too (more steps, about 1.3x the cost).

    Returns
    -------
    xarray.Dataset
        For every output variable of ``simulate`` (same name and dimensions, after a
        leading ``parameter`` dimension): :math:`\partial\,\mathrm{output}/\partial
        θ` in the output's units per the parameter's unit (the ``parameter_unit``
        coordinate: the unit the scenario writes the value in), and
        ``<name>_elasticity``, :math:`\partial \ln \mathrm{output}/\partial \ln θ`
        (NaN where the output is below :data:`ELASTICITY_FLOOR` of its largest value).
        Coordinates ``parameter``, ``parameter_unit``, ``parameter_value``.

    Raises
    ------
    ScenarioError
        A key that is unknown, moves the grid or an event, or is not in the scenario.

    Examples
    --------
    >>> ds = sensitivity("examples/scenarios/lumbar_bolus.toml",
    ...                  ["patient.dispersion", "drug.meningeal_permeability"])  # doctest: +SKIP
    >>> ds.cisternal_csf_concentration.sel(parameter="patient.dispersion")  # doctest: +SKIP
    """
    from csfmodel.api import _as_scenario, prepare

    if method not in ("esdirk3", "trbdf2"):
        raise ScenarioError("method", method, "'esdirk3' or 'trbdf2'")
    sc = _as_scenario(scenario)
    params = resolve(sc, list(parameters) if not isinstance(parameters, str) else parameters)
    prepared = prepare(sc)
    res = solve_sensitivities(prepared, params, rtol=rtol, method=method,
                              error_control=error_control)
    return to_sensitivity_dataset(res)


def to_sensitivity_dataset(res: Sensitivities) -> xr.Dataset:
    """The Dataset of :func:`sensitivity` from solved sensitivities."""
    model, t_out = res.model, res.t_out
    base = to_dataset(model, res.schedule, t_out, res.states)
    conc_v, conc_d = res.concentrations()
    per: dict[str, list[np.ndarray]] = {}
    for k, (p, tan) in enumerate(zip(res.params, res.tangents)):
        tsched = Schedule(res.schedule.times, tan.jumps, tan.rates, res.schedule.t_end)
        dk = to_dataset(model, tsched, t_out, res.d_states[k])
        for name in VARIABLES:
            if name in CONCENTRATIONS:
                v = conc_d[name][k]
                arr = v if VARIABLES[name].dim else v[:, 0]
            else:
                arr = dk[name].values
            per.setdefault(name, []).append(arr * p.factor)   # per user unit
    variables = {}
    uvals = np.array([p.user_value for p in res.params])
    for name, arrs in per.items():
        d = np.stack(arrs)
        var = VARIABLES[name]
        dims, _, attrs = series(name, d, lead=("parameter",))
        attrs = dict(attrs, units=f"{var.units} per parameter_unit",
                     long_name=f"d {var.long_name}"[:30],
                     description=f"derivative of {name} with respect to each parameter, in "
                     f"{var.units} per the parameter's unit (coordinate parameter_unit)")
        variables[name] = (dims, d, attrs)
        value = base[name].values
        big = np.nanmax(np.abs(value)) if value.size else 0.0
        shape = (-1,) + (1,) * value.ndim
        with np.errstate(divide="ignore", invalid="ignore"):
            el = uvals.reshape(shape) * d / value[None]
        el = np.where(np.abs(value)[None] > ELASTICITY_FLOOR * big, el, np.nan)
        variables[f"{name}_elasticity"] = (dims, el, {
            "units": "1", "long_name": f"elasticity of {var.label or name}"[:30],
            "description": f"d ln {name} / d ln parameter (NaN where {name} is below "
                           f"{ELASTICITY_FLOOR:g} of its largest value)"})
    attrs = {"title": "csfmodel sensitivities", "method": "forward sensitivity equations, "
             "array derivatives by complex step", **{f"solver_{k}": v
                                                      for k, v in res.stats.items()}}
    for key in ("drug", "csfmodel_version", "scenario", "grid_resolution_cm"):
        if key in base.attrs:
            attrs[key] = base.attrs[key]
    ds = build_dataset(Geometry.of(model), variables, t_out=t_out, attrs=attrs)
    return ds.assign_coords(
        parameter=("parameter", [p.key for p in res.params],
                   {"units": "1", "long_name": "parameter", "description": "scenario key"}),
        parameter_unit=("parameter", [p.unit for p in res.params],
                        {"units": "1", "long_name": "parameter unit",
                         "description": "unit of the parameter the derivatives are per"}),
        parameter_value=("parameter", uvals,
                         {"units": "1", "long_name": "parameter value",
                          "description": "value of the parameter, in parameter_unit"}))
