"""Batches: many parameter sets solved in one kernel call per chunk (numba, or jax).

A batch is a base scenario plus, for each member, a few values that replace keys of
the base (written as in the TOML file, with units)::

    from csfmodel.sweep import run_batch

    ds = run_batch("pump.toml", {
        "patient.dispersion": ["0.2 cm^2/min", "0.4 cm^2/min", "0.8 cm^2/min"],
        "dose[0].rate": ["0.5 mg/day", "1 mg/day", "2 mg/day"],
    })                                   # 3 scenarios (values zipped)
    ds = run_batch("pump.toml", {...}, mode="product")   # 9 scenarios

Every scenario is validated like a single run (a bad value raises a
:class:`~csfmodel.errors.ScenarioError` naming the key and the scenario). A chunk
of scenarios is assembled by :func:`assemble_chunk`: scenarios with the same
geometry share one grid, and their models are assembled together in one pass of the
model's equations over a batch axis (:func:`csfmodel.model.build_models`: only the
coefficients that depend on the swept values are computed per scenario; a sweep of
doses assembles one model); schedules differing only in infusion rates are built
together (:func:`csfmodel.model.build_schedules`), each distinct intrathecal deposit
computed once; and the systems of the same shape (cell counts; patients of
different anatomy too) are stacked along a batch axis and handed to the backend's
``solve_batch`` through the registry (:mod:`csfmodel.solvers`): with numba
(default) one compiled parallel kernel call per shape and chunk, with
``backend="jax"`` one vmapped call. Everything a chunk needs (models, schedules,
observables) lives as long as the chunk, so memory is bounded by the chunk size,
not by the number of scenarios. With ``summary=True`` only per-scenario peak, time
of peak, AUC and final value are kept.

:func:`solve_chunk` is the unit of work of :func:`csfmodel.sweep.run_sweep` (a
Dask task: parse, assemble and solve a chunk on the worker); :func:`run_batch` runs
the same chunks one after the other in this process, the kernel integrating one
chunk in a helper thread while this thread assembles the next and builds the Dataset
of the previous one.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
import time as _time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from csfmodel import results
from csfmodel.anatomy import Anatomy
from csfmodel.dosing import DoseEvents, expand
from csfmodel.errors import ScenarioError
from csfmodel.model import (
    BATCHED_ANATOMY_FIELDS,
    COMPARTMENTS,
    Grid,
    Model,
    Schedule,
    build_models,
    build_schedules,
    make_grid,
)
from csfmodel.scenario import Scenario, parse_scenarios
from csfmodel.solvers import Summary
from csfmodel.sweep._observables import (
    _SITES_ATTRS,
    SITES,
    TIP,
    _observables,
    _site_rows,
    _tip_rows,
    _with_spinal_rows,
    padded_schedule,
    padded_system,
)

__all__ = ["run_batch", "iter_batches", "scenario_sets", "merge_schedules", "assemble_chunk",
           "solve_chunk", "parse_chunk", "VARIABLES", "DEFAULT_VARIABLES",
           "NON_GEOMETRIC_FIELDS", "TIP", "SITES"]

#: variables a sweep can record (ng/mL), with their extra dimension: the
#: concentrations of :data:`csfmodel.results.VARIABLES`, defined there
VARIABLES: dict[str, str | None] = {
    v: results.VARIABLES[v].dim for v in (
        "cord_concentration", "csf_concentration", "cisternal_csf_concentration",
        "cortical_csf_concentration", "ventricular_csf_concentration",
        "brain_concentration", "plasma_concentration")}
DEFAULT_VARIABLES = ("cord_concentration", "cisternal_csf_concentration",
                     "brain_concentration", "plasma_concentration")

#: Anatomy fields that do not enter the grid (:func:`csfmodel.model.make_grid`):
#: scenarios differing only in these share one grid (tested).
NON_GEOMETRIC_FIELDS = BATCHED_ANATOMY_FIELDS
#: of those, the fields that shape an intrathecal bolus deposit (the dose schedule)
_DEPOSIT_FIELDS = ("injection_spread", "injection_mixing", "injection_mixing_time")
#: the Anatomy fields that do enter the grid
_GEOMETRIC_FIELDS = tuple(f.name for f in dataclasses.fields(Anatomy)
                          if f.name not in NON_GEOMETRIC_FIELDS)


# ------------------------------------------------------------------ scenarios
def _base_dict(base: Scenario | dict | str | Path) -> dict:
    if isinstance(base, Scenario):
        return copy.deepcopy(base.source)
    if isinstance(base, dict):
        return copy.deepcopy(base)
    if isinstance(base, (str, Path)):
        from csfmodel._io import read_text
        from csfmodel.scenario import parse_toml

        return parse_toml(read_text(base, "scenario", "a readable TOML file"), base)
    raise ScenarioError("scenario", type(base).__name__,
                        "a Scenario, a dict or the path of a TOML file")


_KEY = re.compile(r"^(simulation|patient|drug)\.(\w+)$|^dose\[(\d+)\]\.(\w+)$")


def _set(data: dict, key: str, value: Any) -> None:
    m = _KEY.match(key)
    if not m:
        raise ScenarioError(f"parameters[{key!r}]", key,
                            "a key such as 'patient.dispersion', 'drug.name' or 'dose[0].rate'")
    if m.group(1):
        table = data.setdefault(m.group(1), {})
        if not isinstance(table, dict):
            raise ScenarioError(m.group(1), table, "a table")
        table[m.group(2)] = value
        return
    i = int(m.group(3))
    doses = data.get("dose", [])
    if not isinstance(doses, list) or i >= len(doses):
        raise ScenarioError(f"parameters[{key!r}]", key,
                            f"a dose index below {len(doses) if isinstance(doses, list) else 0}"
                            " (the base scenario's [[dose]] tables)")
    doses[i][m.group(4)] = value


def scenario_sets(base: Scenario | dict | str | Path,
                  parameters: Mapping[str, Sequence[Any]] | None = None,
                  mode: str = "zip") -> tuple[list[dict], dict[str, list]]:
    """Scenario dicts of a sweep and the parameter value of each.

    ``mode="zip"`` pairs the i-th values of every key (equal lengths);
    ``mode="product"`` takes every combination.
    """
    data = _base_dict(base)
    parameters = dict(parameters or {})
    if not parameters:
        return [data], {}
    keys = list(parameters)
    values = []
    for k in keys:
        v = parameters[k]
        if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
            raise ScenarioError(f"parameters[{k!r}]", v, "a list of values")
        values.append(list(v))
    if mode == "zip":
        lengths = {len(v) for v in values}
        if len(lengths) != 1:
            raise ScenarioError("parameters", {k: len(v) for k, v in zip(keys, values)},
                                "lists of equal length (mode='zip'), or mode='product'")
        combos = list(zip(*values))
    elif mode == "product":
        combos = list(itertools.product(*values))
    else:
        raise ScenarioError("mode", mode, "'zip' or 'product'")
    sets = []
    for combo in combos:
        d = copy.deepcopy(data)
        for k, v in zip(keys, combo):
            _set(d, k, v)
        sets.append(d)
    return sets, {k: [c[i] for c in combos] for i, k in enumerate(keys)}


# ------------------------------------------------------------------ assembly
def _geometry_key(anatomy: Anatomy, resolution: float) -> tuple:
    return tuple(getattr(anatomy, f) for f in _GEOMETRIC_FIELDS) + (float(resolution),)


class _Assembly:
    """Builds the models and schedules of one chunk, sharing what scenarios have in common.

    Grids are shared by scenarios with the same geometry (and kept between chunks:
    a few per sweep); the models of the scenarios sharing a grid are assembled
    together, in one pass of the model's equations over a batch axis
    (:func:`csfmodel.model.build_models`: a sweep of the physiology or the drug
    evaluates only its coefficients per scenario, a sweep of doses assembles one
    model); schedules are shared by scenarios with the same doses and deposit
    geometry, and built together where they differ only in infusion rates
    (:func:`csfmodel.model.build_schedules`: one deposit per distinct bolus, the
    rates in one pass). Models and schedules live as long as the chunk.
    """

    def __init__(self, grids: dict[tuple, tuple[int, Grid]] | None = None) -> None:
        self.grids: dict[tuple, tuple[int, Grid]] = {} if grids is None else grids
        self.schedule_list: list[Schedule] = []
        self.events: dict[tuple, DoseEvents] = {}

    def grid(self, sc: Scenario) -> tuple[int, Grid]:
        """The scenario's grid and its number (unique in this process: a cheap key)."""
        key = _geometry_key(sc.anatomy, sc.simulation.resolution)
        if key not in self.grids:
            if len(self.grids) >= _MAX_GRIDS:
                self.grids.pop(next(iter(self.grids)))
            self.grids[key] = (next(_GRID_NUMBERS),
                               make_grid(sc.anatomy, sc.simulation.resolution))
        return self.grids[key]

    def build_all(self, scenarios: Sequence[Scenario]) -> list[tuple[int, Model, int]]:
        """``(grid number, model, schedule index)`` of each scenario."""
        keyed = [self.grid(sc) for sc in scenarios]
        by_grid: dict[int, list[int]] = {}
        for pos, (gkey, _) in enumerate(keyed):
            by_grid.setdefault(gkey, []).append(pos)
        models: list[Model] = [None] * len(scenarios)       # type: ignore[list-item]
        for members in by_grid.values():
            built = build_models([scenarios[p].anatomy for p in members],
                                 [scenarios[p].drug for p in members], keyed[members[0]][1])
            for p, m in zip(members, built):
                models[p] = m
        # schedules: per deposit geometry and duration, the distinct dose tables, built
        # together (those differing only in infusion rates share times and deposits)
        by_deposit: dict[tuple, dict[tuple, list[int]]] = {}
        for pos, ((gkey, _), sc) in enumerate(zip(keyed, scenarios)):
            dkey = (gkey, tuple(getattr(sc.anatomy, f) for f in _DEPOSIT_FIELDS),
                    sc.simulation.duration)
            by_deposit.setdefault(dkey, {}).setdefault(sc.doses, []).append(pos)
        sidx = [0] * len(scenarios)
        for (_, _, t_end), tables in by_deposit.items():
            firsts = [members[0] for members in tables.values()]
            built = build_schedules(models[firsts[0]],
                                    [self._events(scenarios[p].doses, t_end) for p in firsts],
                                    t_end)
            for members, schedule in zip(tables.values(), built):
                for p in members:
                    sidx[p] = len(self.schedule_list)
                self.schedule_list.append(schedule)
        return [(gkey, m, i) for (gkey, _), m, i in zip(keyed, models, sidx)]

    def build(self, sc: Scenario) -> tuple[int, Model, int]:
        """:meth:`build_all` of one scenario."""
        return self.build_all([sc])[0]

    def _events(self, doses: tuple, t_end: float) -> DoseEvents:
        key = (doses, t_end)
        if key not in self.events:
            self.events[key] = expand(doses, t_end)
        return self.events[key]


#: grids kept between chunks (one per geometry of the sweep; a sweep over the anatomy
#: makes new ones)
_MAX_GRIDS = 16
#: grids shared by the chunks solved in this process (a worker keeps them between tasks),
#: by geometry: ``(number, grid)``
_GRIDS: dict[tuple, tuple[int, Grid]] = {}
_GRID_NUMBERS = itertools.count()


def merge_schedules(a: Schedule, b: Schedule) -> Schedule:
    """The schedule of the doses of ``a`` and ``b`` together (same model and end)."""
    times = np.union1d(a.times, b.times)
    jumps = np.zeros((len(times), a.jumps.shape[1]))
    rates = np.zeros_like(jumps)
    for s in (a, b):
        k = np.searchsorted(times, s.times)
        jumps[k] += s.jumps
        rates += s.rates[np.searchsorted(s.times, times, side="right") - 1]
    return Schedule(times=times, jumps=jumps, rates=rates, t_end=a.t_end)


# ------------------------------------------------------------------ running
def assemble_chunk(scenarios: Sequence[Scenario], variables: Sequence[str], *,
                   tip: bool = False, sites: Sequence[np.ndarray] | None = None) -> _Chunk:
    """Assemble a chunk for the backend: groups of scenarios of the same shape, stacked.

    Scenarios whose arrays have the same shape (cell counts) are solved in one kernel
    call, whether or not they share a grid (patients of different anatomy). Per group:
    the positions of its members in the chunk, the stacked system arrays, the schedule
    of each member and the observables (CSR rows of ``variables`` on one pattern for
    the group, weights per member, and with ``tip`` one more row: the CSF concentration
    at the catheter tip, :data:`TIP`; with ``sites`` (per scenario, positions z in cm of
    its own anatomy, the same number for every scenario) one row per site,
    :data:`SITES`). Per scenario: its geometry and
    :func:`~csfmodel.results.run_record`.
    """
    from csfmodel.solvers import SYSTEM_FIELDS

    asm = _Assembly(_GRIDS)
    groups: dict[int, list] = {}
    geometry: dict[tuple, results.Geometry] = {}
    geometries, records = [], []
    for pos, (sc, (gkey, model, sidx)) in enumerate(zip(scenarios, asm.build_all(scenarios))):
        # one group per spinal cell count: cord blocks are padded to the group's longest
        groups.setdefault(model.system.n_spinal, []).append((pos, model, sidx, sc, gkey))
        if gkey not in geometry:
            geometry[gkey] = results.Geometry.of(model)
        geometries.append(geometry[gkey])
        records.append(results.run_record(sc, model))
    out = []
    layout: list = []
    for members in groups.values():
        models = [mem[1] for mem in members]
        n_cord = max(m.system.n_cord for m in models)
        padded = [padded_system(m.system, n_cord) for m in models]
        stack = {f: np.stack([a[f] for a in padded]) for f in SYSTEM_FIELDS}
        ptr, idx, weights, layout = _observables(members, stack["volume"], variables, n_cord)
        if tip:
            ptr, idx, weights = _with_spinal_rows((ptr, idx, weights), layout, TIP, _tip_rows(
                [(mem[1], mem[3]) for mem in members])[:, None, :])
        if sites is not None:
            ptr, idx, weights = _with_spinal_rows((ptr, idx, weights), layout, SITES, np.stack(
                [_site_rows(mem[1], sites[mem[0]]) for mem in members]))
        used, local = np.unique([mem[2] for mem in members], return_inverse=True)
        cord_of = {mem[2]: mem[1].system for mem in members}
        out.append(([mem[0] for mem in members], stack,
                    [padded_schedule(asm.schedule_list[i], cord_of[i], n_cord) for i in used],
                    local.astype(np.int64), (ptr, idx, weights)))
    return _Chunk(groups=out, layout=layout, geometries=geometries, records=records)


@dataclasses.dataclass
class _Chunk:
    """A chunk assembled for the backend (groups of scenarios sharing a grid)."""

    groups: list
    layout: list
    geometries: list
    records: list


def _solve_chunk(chunk: _Chunk, t_out: np.ndarray, backend, options, summary: bool | Summary,
                 n_total: int):
    """Values ``(n, rows, n_obs)`` and step statistics of a chunk, one batch per group.

    ``summary``: as for ``solve_batch`` (a per-scenario ``effect_half_life`` is given
    to each group for its members).

    The backend's own host-side preparation (input checks, schedule tables: ~10 ms
    for 64 scenarios, a few % of the kernel's time) runs here too, so the sweep needs
    nothing but the registry's ``solve_batch``.
    """
    n_obs = chunk.layout[-1][2]
    if summary is True:
        summary = Summary()
    rows = len(t_out) if not summary else len(summary.rows)
    shape = (n_total, rows, n_obs)
    values = None
    stats: list = [None] * n_total
    for positions, stack, schedules, local, obs in chunk.groups:
        sol = backend.solve_batch(stack, schedules, t_out, options, schedule_index=local,
                                  observables=obs,
                                  summary=summary.for_members(positions) if summary else False)
        if len(chunk.groups) == 1 and positions == list(range(n_total)) and \
                isinstance(sol.values, np.ndarray) and sol.values.shape == shape and \
                sol.values.dtype == np.float64:
            values = sol.values             # one group in order: the backend's own array
        else:
            if values is None:
                values = np.empty(shape)
            values[positions] = sol.values
        for p, st in zip(positions, sol.stats):
            stats[p] = st
    return values, stats


def parse_chunk(sets: Sequence[dict], first: int) -> tuple[list[Scenario], np.ndarray]:
    """Parse scenario dicts (numbered from ``first`` in error messages); their output times.

    Raises
    ------
    ScenarioError
        ``scenario[i].<key>`` for a bad value; all scenarios must share the duration
        and output interval.
    """
    out = parse_scenarios(list(sets), first)
    t = out[0].simulation.output_times()
    for k, sc in enumerate(out):
        tk = sc.simulation.output_times()
        if len(tk) != len(t) or not np.array_equal(tk, t):
            raise ScenarioError(f"scenario[{first + k}].simulation", sc.simulation,
                                "the same duration and output interval for every "
                                "scenario of a sweep")
    return out, t


def solve_chunk(sets: Sequence[dict], first: int, variables: Sequence[str], *,
                backend: Any = "numba", rtol: float | None = None, summary: bool = False,
                tip: bool = False) -> dict[str, Any]:
    """Parse, assemble and solve a chunk of scenario dicts (the unit of work of a sweep).

    Returns ``{"scenarios", "t_out", "values", "stats", "layout", "geometries",
    "records"}``: ``values`` ``(n, len(t_out), rows)`` (or ``(n, 4, rows)`` with
    ``summary``) in the rows of ``layout`` (``(variable, first row, end row)``).
    """
    from csfmodel.solvers import SolverOptions, get_backend

    solver = get_backend(backend)
    options = solver.resolve(SolverOptions(rtol=rtol))
    scs, t_out = parse_chunk(sets, first)
    chunk = assemble_chunk(scs, variables, tip=tip)
    values, stats = _solve_chunk(chunk, t_out, solver, options, summary, len(scs))
    return {"scenarios": scs, "t_out": t_out, "values": values, "stats": stats,
            "layout": chunk.layout, "geometries": chunk.geometries, "records": chunk.records,
            "solver": solver.name, "rtol": options.rtol}


_SCENARIO_ATTRS = {"units": "1", "long_name": "scenario number",
                   "description": "number of the scenario in the sweep, from 0"}


def _parameter_attrs(key: str) -> dict:
    short = key if len(key) <= results.LONG_NAME_MAX else key.rsplit(".", 1)[-1]
    return {"units": "1", "long_name": short[:results.LONG_NAME_MAX],
            "description": f"value of {key} in this scenario, as written (with its units)"}


def _to_dataset(values: np.ndarray, stats: list, t_out: np.ndarray, chunk: _Chunk,
                params: dict[str, list], offset: int, summary: bool,
                attrs: dict | None = None) -> xr.Dataset:
    """A chunk's Dataset, by the builder of single runs (:func:`results.build_dataset`)."""
    n = values.shape[0]
    scen = {"scenario": (np.arange(offset, offset + n), _SCENARIO_ATTRS)}
    for key, vals in params.items():
        scen[key] = (np.array([str(v) for v in vals[offset:offset + n]]), _parameter_attrs(key))
    variables: dict[str, tuple] = {}
    for v, a, b in chunk.layout:
        block = values[:, :, a:b]
        if v == SITES:
            if not summary:
                variables[v] = (("scenario", "time", "site"), block, dict(_SITES_ATTRS))
            continue
        if summary:
            variables.update(results.summaries(v, block))
        else:
            variables[v] = results.series(v, block if VARIABLES[v] else block[:, :, 0],
                                          lead=("scenario",))
    variables["solver_steps"] = ("scenario", np.array([s.steps for s in stats]), {
        "units": "1", "long_name": "accepted time steps",
        "description": "time steps the solver accepted in this scenario"})
    variables["solver_max_error_estimate"] = (
        "scenario", np.array([s.max_error_estimate for s in stats]), {
            "units": "1", "long_name": "largest error estimate",
            "description": "largest local error estimate / tolerance of an accepted step "
                           "(<= 1)"})
    return results.build_dataset(chunk.geometries, variables,
                                 t_out=None if summary else t_out, scenarios=scen,
                                 records=chunk.records, attrs=attrs)


def iter_batches(base: Scenario | dict | str | Path,
                 parameters: Mapping[str, Sequence[Any]] | None = None, *,
                 scenarios: Sequence[Scenario | dict | str | Path] | None = None,
                 mode: str = "zip", variables: Sequence[str] = DEFAULT_VARIABLES,
                 rtol: float | None = None, chunk_size: int = 64, summary: bool = False,
                 skip_chunks: Iterable[int] = (), backend: Any = "numba",
                 sites: np.ndarray | None = None) -> Iterator[tuple[int, xr.Dataset]]:
    """Yield ``(chunk_index, Dataset)`` chunk by chunk (see :func:`run_batch`).

    ``sites`` (``(scenarios, k)``, cm): record the CSF at these positions of each
    scenario's own anatomy as :data:`SITES` ``(scenario, time, site)`` (time series only),
    which, unlike the CSF profile, scenarios on different grids can share.
    """
    from csfmodel.solvers import SolverOptions, get_backend

    solver = get_backend(backend)
    options = solver.resolve(SolverOptions(rtol=rtol))     # refused before any work
    for v in variables:
        if v not in VARIABLES:
            raise ScenarioError("variables", v, "one of: " + ", ".join(VARIABLES))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ScenarioError("chunk_size", chunk_size, "a whole number >= 1")
    if scenarios is not None:
        if parameters:
            raise ScenarioError("parameters", parameters, "nothing when scenarios are given")
        sets = [_base_dict(s) for s in scenarios]
        params = {"scenario_source": [str(s) if isinstance(s, (str, Path)) else f"#{i}"
                                      for i, s in enumerate(scenarios)]}
    else:
        sets, params = scenario_sets(base, parameters, mode)
    skip = set(skip_chunks)
    n_chunks = (len(sets) + chunk_size - 1) // chunk_size
    t_ref: list[np.ndarray] = []

    def prepare(c: int):
        first = c * chunk_size
        scs, t = parse_chunk(sets[first:first + chunk_size], first)
        if not t_ref:
            t_ref.append(t)
        elif len(t) != len(t_ref[0]) or not np.array_equal(t, t_ref[0]):
            raise ScenarioError(f"scenario[{first}].simulation", scs[0].simulation,
                                "the same duration and output interval for every "
                                "scenario of a sweep")
        chunk_sites = None if sites is None else np.asarray(sites, float)[first:first + len(scs)]
        return scs, assemble_chunk(scs, variables, sites=chunk_sites)

    from csfmodel._version import __version__

    attrs = {"title": "csfmodel sweep", "csfmodel_version": __version__,
             "solver": solver.name, "solver_rtol": options.rtol, "Conventions": "CF-1.8"}
    todo = [c for c in range(n_chunks) if c not in skip]
    if not todo:
        return
    # the compiled kernel (which releases the GIL) integrates one chunk in a helper
    # thread while this thread parses and assembles the next one and builds the
    # Dataset of the previous one: the kernel never waits for the Python around it
    with ThreadPoolExecutor(max_workers=1) as pool:
        def submit(prepared: tuple) -> Any:
            return pool.submit(_solve_chunk, prepared[1], t_ref[0], solver, options, summary,
                               len(prepared[0]))

        cur = prepare(todo[0])
        fut = submit(cur)
        for pos, c in enumerate(todo):
            nxt = prepare(todo[pos + 1]) if pos + 1 < len(todo) else None
            values, stats = fut.result()
            if nxt is not None:
                fut = submit(nxt)
            chunk = cur[1]
            yield c, _to_dataset(values, stats, t_ref[0], chunk, params, c * chunk_size,
                                 summary, attrs)
            cur = nxt


def run_batch(base: Scenario | dict | str | Path | None = None,
              parameters: Mapping[str, Sequence[Any]] | None = None, *,
              scenarios: Sequence[Scenario | dict | str | Path] | None = None,
              mode: str = "zip", variables: Sequence[str] = DEFAULT_VARIABLES,
              rtol: float | None = None, chunk_size: int = 64,
              summary: bool = False, backend: Any = "numba") -> xr.Dataset:
    """Simulate many scenarios in batches (numba: one parallel kernel call per chunk).

    Parameters
    ----------
    base
        The base scenario (``Scenario``, dict in the TOML layout, or TOML path).
    parameters
        ``{key: [values...]}`` replacing keys of the base, keys written
        ``"patient.dispersion"``, ``"drug.octanol_buffer"``, ``"dose[0].rate"``
        (index of the base's ``[[dose]]`` tables), values as in TOML
        (``"0.5 mg/day"``).
    scenarios
        Instead of ``base``/``parameters``: a list of complete scenarios.
    mode
        ``"zip"`` (i-th values together) or ``"product"`` (all combinations).
    variables
        What to record, from :data:`VARIABLES` (ng/mL).
    rtol
        Tolerance of the backend (default the backend's ``default_rtol``).
    chunk_size
        Scenarios per parallel batch (bounds memory).
    summary
        Keep only ``<variable>_max``, ``_tmax`` (h), ``_auc`` (ng h/mL) and
        ``_final`` per scenario instead of the time series.
    backend
        The backend (a registered name or a :class:`~csfmodel.solvers.Backend`):
        ``"numba"`` (default; one parallel kernel call per chunk) or ``"jax"``
        (vmapped; ``get_backend("jax", batch_size=...)`` bounds its memory), or any
        registered one (the reference loops over the scenarios).

    Returns
    -------
    xarray.Dataset
        Dimension ``scenario`` (with one coordinate per swept key), ``time`` (h)
        unless ``summary``, ``segment``/``z`` for profiles; ``solver_steps`` and
        ``solver_max_error_estimate`` per scenario. All scenarios must share the
        duration and output interval. Built by the builder of single runs
        (:func:`csfmodel.results.build_dataset`): ``ds.isel(scenario=i)`` has the
        variables, coordinates and attributes of :func:`csfmodel.simulate` of that
        scenario, and what a run records in its ``attrs`` (drug, dose sites, the
        effect model's inputs: :func:`csfmodel.results.run_record`) as coordinates
        along ``scenario``; geometric coordinates that differ between scenarios (a
        sweep over the anatomy) get the ``scenario`` dimension too.
    """
    t0 = _time.perf_counter()
    parts = [ds for _, ds in iter_batches(base, parameters, scenarios=scenarios, mode=mode,
                                           variables=variables, rtol=rtol,
                                           chunk_size=chunk_size, summary=summary,
                                           backend=backend)]
    ds = _concat(parts)
    ds.attrs.update({"scenarios": int(ds.sizes["scenario"]),
                     "wall_seconds": _time.perf_counter() - t0,
                     "compartments": ", ".join(COMPARTMENTS)})
    return ds


def _concat(parts: list[xr.Dataset]) -> xr.Dataset:
    """Chunks along ``scenario``; a coordinate that differs between chunks (the geometry
    of a sweep over the anatomy) gets the ``scenario`` dimension."""
    if len(parts) == 1:
        return parts[0]
    return xr.concat(parts, dim="scenario", data_vars="minimal", coords="different",
                     compat="equals", join="outer", combine_attrs="override")
