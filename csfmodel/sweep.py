"""Sweeps: many parameter sets solved in batches (numba by default, or jax).

Longer than 400 lines: one concept (sweeps); grouping, chunking, resume and the parameter grammar.

A sweep is a base scenario plus, for each scenario of the sweep, a few values
that replace keys of the base (written as in the TOML file, with units)::

    from csfmodel.sweep import run_batch

    ds = run_batch("pump.toml", {
        "patient.dispersion": ["0.2 cm^2/min", "0.4 cm^2/min", "0.8 cm^2/min"],
        "dose[0].rate": ["0.5 mg/day", "1 mg/day", "2 mg/day"],
    })                                   # 3 scenarios (values zipped)
    ds = run_batch("pump.toml", {...}, mode="product")   # 9 scenarios

Every scenario is validated like a single run (a bad value raises a
:class:`~csfmodel.errors.ScenarioError` naming the key and the scenario). The
scenarios are assembled in Python (one grid and one dose schedule are shared by
all scenarios with the same geometry and doses), stacked along a batch axis and
handed to the backend's ``solve_batch`` through the registry
(:mod:`csfmodel.solvers`): with numba (default) one compiled parallel kernel call
per chunk (no recompilation per parameter set), with ``backend="jax"`` one
vmapped call. Work proceeds in chunks, so memory stays bounded; assembling the
next chunk (main thread) overlaps with integrating the current one (a worker
thread; the numba kernel releases the GIL). With ``summary=True`` only
per-scenario metrics (peak, time of peak, AUC, final value) are kept, which is
what sweeps of 10^4-10^6 scenarios need.

``csfmodel sweep`` runs the same from the command line and writes each chunk to
its own netCDF file as soon as it is done, so an interrupted sweep keeps what
it computed and ``--resume`` skips finished chunks.
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
    COMPARTMENTS,
    Grid,
    Model,
    Schedule,
    build_model,
    build_schedule,
    make_grid,
)
from csfmodel.scenario import Scenario, parse_scenario

__all__ = ["run_batch", "iter_batches", "scenario_sets", "run_to_directory", "load_sweep",
           "merge_schedules", "VARIABLES", "DEFAULT_VARIABLES", "NON_GEOMETRIC_FIELDS"]

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
NON_GEOMETRIC_FIELDS = ("dispersion", "dispersion_caudal_fraction", "spinal_bulk_flow",
                        "csf_production", "ventricular_mixing", "cranial_mixing",
                        "injection_spread", "injection_mixing", "brain_mass", "body_weight",
                        "cisternal_volume", "cortical_sas_volume", "ventricular_volume")
#: of those, the fields that shape an intrathecal bolus deposit (the dose schedule)
_DEPOSIT_FIELDS = ("injection_spread", "injection_mixing")


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
    return (dataclasses.replace(anatomy, **{f: 0.0 for f in NON_GEOMETRIC_FIELDS}),
            float(resolution))


class _Assembly:
    """Builds models and schedules, sharing grids and schedules between scenarios."""

    def __init__(self) -> None:
        self.grids: dict[tuple, Grid] = {}
        self.schedules: dict[tuple, tuple[int, Schedule]] = {}
        self.schedule_list: list[Schedule] = []
        self.bolus_parts: dict[tuple, Schedule] = {}

    def grid(self, sc: Scenario) -> tuple[tuple, Grid]:
        key = _geometry_key(sc.anatomy, sc.simulation.resolution)
        if key not in self.grids:
            self.grids[key] = make_grid(sc.anatomy, sc.simulation.resolution)
        return key, self.grids[key]

    def build(self, sc: Scenario) -> tuple[tuple, Model, int]:
        gkey, grid = self.grid(sc)
        model = build_model(sc.anatomy, sc.drug, sc.simulation.resolution, grid=grid)
        skey = (gkey, tuple(getattr(sc.anatomy, f) for f in _DEPOSIT_FIELDS), sc.doses,
                sc.simulation.duration)
        if skey not in self.schedules:
            self.schedules[skey] = (len(self.schedule_list), self._schedule(skey, model, sc))
            self.schedule_list.append(self.schedules[skey][1])
        return gkey, model, self.schedules[skey][0]

    def _schedule(self, skey: tuple, model: Model, sc: Scenario) -> Schedule:
        """The dose schedule, with bolus deposits shared between scenarios.

        Depositing a bolus on the grid is the costly part; scenarios that differ
        only in infusion rates reuse the bolus part (the two parts add up).
        """
        from csfmodel.api import schedule_for

        t_end = sc.simulation.duration
        ev = expand(sc.doses, t_end)
        bkey = (skey[0], skey[1], tuple(ev.boluses), t_end)
        if bkey not in self.bolus_parts:
            self.bolus_parts[bkey] = schedule_for(model, DoseEvents(boluses=ev.boluses), t_end)
        return merge_schedules(self.bolus_parts[bkey],
                               build_schedule(model, DoseEvents(steps=ev.steps), t_end))


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
def _prepare_chunk(scenarios: list[Scenario], asm: _Assembly, variables: Sequence[str]):
    """Assemble a chunk: the groups (same grid) ready for the backend, and per scenario
    its geometry and :func:`~csfmodel.results.run_record`."""
    from csfmodel.solvers import SYSTEM_FIELDS

    groups: dict[tuple, list] = {}
    geometry: dict[tuple, results.Geometry] = {}
    geometries, records = [], []
    for pos, sc in enumerate(scenarios):
        gkey, model, sidx = asm.build(sc)
        groups.setdefault(gkey, []).append((pos, model, sidx))
        if gkey not in geometry:
            geometry[gkey] = results.Geometry.of(model)
        geometries.append(geometry[gkey])
        records.append(results.run_record(sc, model))
    out = []
    for members in groups.values():
        models = [m for _, m, _ in members]
        stack = {f: np.ascontiguousarray(np.stack([getattr(m.system, f) for m in models]))
                 for f in SYSTEM_FIELDS}
        # the pattern and the segment fractions depend on the grid only (shared by the
        # group); the weights divide by each member's volumes
        obs = results.observation(models[0], variables)
        ptr, idx, weights = obs.csr(stack["volume"])
        out.append(([p for p, _, _ in members], stack,
                    np.array([s for _, _, s in members], np.int64), (ptr, idx, weights)))
    return _Chunk(groups=out, layout=obs.layout, geometries=geometries, records=records)


@dataclasses.dataclass
class _Chunk:
    """A chunk assembled for the backend (groups of scenarios sharing a grid)."""

    groups: list
    layout: list
    geometries: list
    records: list


def _solve_chunk(chunk: _Chunk, schedules: list[Schedule], t_out: np.ndarray, backend,
                 options, summary: bool, n_total: int):
    """Values ``(n, rows, n_obs)`` and step statistics of a chunk, one batch per group.

    Runs in a worker thread: the numba kernel releases the GIL, so the main thread
    assembles the next chunk meanwhile. The backend's own host-side preparation (input
    checks, schedule tables: ~10 ms for 64 scenarios, a few % of the kernel's time)
    runs here too, so the sweep needs nothing but the registry's ``solve_batch`` (a
    separate prepare/run API measured no faster).
    """
    n_obs = chunk.layout[-1][2]
    values = np.empty((n_total, 4 if summary else len(t_out), n_obs))
    stats: list = [None] * n_total
    for positions, stack, sidx, obs in chunk.groups:
        used, local = np.unique(sidx, return_inverse=True)   # only this group's schedules
        sol = backend.solve_batch(stack, [schedules[i] for i in used], t_out, options,
                                  schedule_index=local, observables=obs, summary=summary)
        values[positions] = sol.values
        for p, st in zip(positions, sol.stats):
            stats[p] = st
    return values, stats


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
                 skip_chunks: Iterable[int] = (), backend: Any = "numba"
                 ) -> Iterator[tuple[int, xr.Dataset]]:
    """Yield ``(chunk_index, Dataset)`` chunk by chunk (see :func:`run_batch`)."""
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
    asm = _Assembly()
    t_out_ref: list[np.ndarray] = []

    def parse(c: int) -> list[Scenario]:
        out = []
        for i in range(c * chunk_size, min((c + 1) * chunk_size, len(sets))):
            try:
                out.append(parse_scenario(sets[i]))
            except ScenarioError as exc:
                raise ScenarioError(f"scenario[{i}].{exc.key}", exc.value, exc.allowed,
                                    detail=exc.detail) from None
        t = out[0].simulation.output_times()
        for k, sc in enumerate(out):
            tk = sc.simulation.output_times()
            if not t_out_ref:
                t_out_ref.append(tk)
            if len(tk) != len(t_out_ref[0]) or not np.array_equal(tk, t_out_ref[0]):
                raise ScenarioError(f"scenario[{c * chunk_size + k}].simulation", sc.simulation,
                                    "the same duration and output interval for every "
                                    "scenario of a sweep")
        del t
        return out

    def prepare(c: int):
        scs = parse(c)
        return scs, _prepare_chunk(scs, asm, variables)

    from csfmodel._version import __version__

    attrs = {"title": "csfmodel sweep", "csfmodel_version": __version__,
             "solver": solver.name, "solver_rtol": options.rtol, "Conventions": "CF-1.8"}
    todo = [c for c in range(n_chunks) if c not in skip]
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        nxt = prepare(todo[0])
        for pos, c in enumerate(todo):
            scs, chunk = nxt
            fut = pool.submit(_solve_chunk, chunk, list(asm.schedule_list), t_out_ref[0],
                              solver, options, summary, len(scs))
            if pos + 1 < len(todo):
                nxt = prepare(todo[pos + 1])    # overlaps with the compiled kernel (no GIL)
            values, stats = fut.result()
            yield c, _to_dataset(values, stats, t_out_ref[0], chunk, params, c * chunk_size,
                                 summary, attrs)


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


# ------------------------------------------------------------------ files
_SPEC = "sweep.json"
_LOCK = ".sweep.lock"


def _n_scenarios(base: Any, parameters: Mapping[str, Sequence[Any]], mode: str) -> int:
    """Number of scenarios of a sweep (without building them when possible)."""
    try:
        lengths = [len(list(v)) for v in parameters.values()
                   if not isinstance(v, (str, bytes))]
        if len(lengths) == len(parameters):
            if not lengths:
                return 1
            if mode == "product":
                return int(np.prod(lengths))
            if mode == "zip" and len(set(lengths)) == 1:
                return lengths[0]
    except TypeError:
        pass
    return len(scenario_sets(base, parameters, mode)[0])   # raises the proper ScenarioError


def _chunk_problem(path: Path, c: int, n_total: int, chunk_size: int,
                   variables: Sequence[str], summary: bool) -> str | None:
    """Why a chunk file of a sweep cannot be kept (None if it is complete)."""
    n_chunks = (n_total + chunk_size - 1) // chunk_size
    if not 0 <= c < n_chunks:
        return f"chunk {c} is outside the sweep's {n_chunks} chunk(s)"
    want = min(chunk_size, n_total - c * chunk_size)
    names = ([f"{v}_{s}" for v in variables for s in ("max", "tmax", "auc", "final")]
             if summary else list(variables)) + ["solver_steps"]
    try:
        with xr.open_dataset(path) as raw:
            ds = raw.load()
    except MemoryError:
        raise
    except Exception as exc:      # truncated/damaged files raise many kinds
        return f"does not open ({type(exc).__name__})"
    if ds.sizes.get("scenario") != want:
        return f"{ds.sizes.get('scenario', 0)} scenarios instead of {want}"
    missing = [v for v in names if v not in ds.variables]
    if missing:
        return "missing " + ", ".join(missing)
    expect = {"sweep_chunk": c, "sweep_chunk_size": chunk_size, "sweep_scenarios": n_total}
    for k, v in expect.items():
        if k not in ds.attrs or int(ds.attrs[k]) != v:
            return f"attribute {k} is {ds.attrs.get(k)!r}, not {v}"
    first = int(ds.scenario.values[0]) if "scenario" in ds.coords else -1
    if first != c * chunk_size:
        return f"starts at scenario {first}, not {c * chunk_size}"
    return None


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary files of an interrupted write (``.chunk_*.part``, old ``*.nc.part``)."""
    from csfmodel._io import TEMP_SUFFIX

    stale = [*out.glob(f".chunk_*{TEMP_SUFFIX}"), *out.glob(f".{_SPEC}.*{TEMP_SUFFIX}"),
             *out.glob("chunk_*.nc.part")]
    for p in stale:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


class _DirectoryLock:
    """An exclusive lock on a sweep directory: a second sweep there is refused."""

    def __init__(self, out: Path):
        self.path = out / _LOCK
        self.fd: int | None = None

    def __enter__(self) -> _DirectoryLock:
        import os

        try:
            import fcntl
        except ImportError:             # pragma: no cover - not POSIX: no lock
            return self
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise ScenarioError("output", str(self.path.parent),
                                "a directory no other sweep is writing to",
                                detail="another csfmodel sweep is running there") from None
        return self

    def __exit__(self, *exc: object) -> None:
        import os

        if self.fd is not None:
            os.close(self.fd)          # closing releases the lock
            self.fd = None


def run_to_directory(base: Scenario | dict | str | Path,
                     parameters: Mapping[str, Sequence[Any]], out_dir: str | Path, *,
                     mode: str = "zip", variables: Sequence[str] = DEFAULT_VARIABLES,
                     rtol: float | None = None, chunk_size: int = 64, summary: bool = True,
                     resume: bool = False, progress: Any = None) -> list[Path]:
    """Run a sweep writing ``chunk_NNNNN.nc`` files to ``out_dir`` as chunks finish.

    An interrupted sweep keeps every finished chunk; ``resume=True`` skips them
    (the sweep definition, saved in ``sweep.json``, must be the same). On resume
    every chunk file is checked (it opens, has the expected scenarios, variables
    and attributes); a truncated or foreign one is computed again. Files are
    written atomically (a temporary file renamed when complete), temporary files
    left by an interrupted sweep are removed, and a second sweep writing to the
    same directory at the same time is refused. ``sweep.json`` is written with the
    first finished chunk, so a sweep that fails before it leaves no trace and can
    simply be run again.
    """
    import json

    from csfmodel._io import read_text, write_text
    from csfmodel.results import save

    spec = {"base": _base_dict(base), "parameters": {k: [str(v) for v in vals]
                                                     for k, vals in parameters.items()},
            "mode": mode, "variables": list(variables), "rtol": rtol,
            "chunk_size": chunk_size, "summary": summary}
    spec = json.loads(json.dumps(spec, default=str))
    n_total = _n_scenarios(base, parameters, mode)      # also checks the parameters
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ScenarioError("output", str(out), "a directory (existing or to be created)",
                            detail="exists and is not a directory")
    created = [d for d in (out, *out.parents) if not d.exists()]   # deepest first
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / _SPEC
    written: list[Path] = []
    wrote_spec = False
    try:
        with _DirectoryLock(out):
            _remove_stale_temporaries(out)
            chunks = {}
            for p in out.glob("chunk_*.nc"):
                try:
                    chunks[int(p.stem.split("_")[1])] = p
                except (IndexError, ValueError):
                    continue
            have_spec = spec_path.exists()
            if chunks and not have_spec:
                raise ScenarioError("output", str(out), "an empty directory or one holding a "
                                    "csfmodel sweep", detail="chunk_*.nc files without "
                                    "sweep.json")
            done: set[int] = set()
            if chunks:
                try:
                    old = json.loads(read_text(spec_path, "sweep.json", "a sweep definition"))
                except ValueError:    # ScenarioError or JSONDecodeError: damaged
                    old = None
                if not resume:
                    raise ScenarioError("output", str(out), "an empty directory, or --resume "
                                        "to continue the sweep written there",
                                        detail="it holds a sweep (sweep.json)")
                if old != spec:
                    raise ScenarioError("output", str(out), "the same sweep definition to "
                                        "resume, or another (or emptied) directory",
                                        detail="sweep.json differs or is damaged")
                for c, p in sorted(chunks.items()):
                    if _chunk_problem(p, c, n_total, chunk_size, variables, summary) is None:
                        done.add(c)
                    else:
                        p.unlink()   # truncated or foreign: computed again
            spec_ok = bool(done) and have_spec
            for c, ds in iter_batches(base, parameters, mode=mode, variables=variables,
                                      rtol=rtol, chunk_size=chunk_size, summary=summary,
                                      skip_chunks=done):
                if not spec_ok:
                    write_text(spec_path, json.dumps(spec, indent=1))
                    spec_ok = wrote_spec = True
                path = out / f"chunk_{c:05d}.nc"
                ds.attrs.update({"sweep_chunk": c, "sweep_chunk_size": chunk_size,
                                 "sweep_scenarios": n_total})
                save(ds, path)
                written.append(path)
                if progress is not None:
                    progress(c, ds, path)
    finally:
        if not written:
            # nothing came of it: leave no sweep.json (it would block a rerun) and no
            # directory this call created
            for p in ([spec_path] if wrote_spec else []) + ([out / _LOCK] if created else []):
                try:
                    p.unlink()
                except OSError:
                    pass
            for d in created:
                try:
                    d.rmdir()
                except OSError:
                    break
    return written


def load_sweep(out_dir: str | Path) -> xr.Dataset:
    """All finished chunks of a sweep directory as one Dataset (ordered by scenario)."""
    files = sorted(Path(out_dir).glob("chunk_*.nc"))
    if not files:
        raise ScenarioError("sweep", str(out_dir), "a directory with chunk_*.nc files")
    parts = []
    for f in files:
        try:
            with xr.open_dataset(f) as ds:
                parts.append(ds.load())
        except MemoryError:
            raise
        except Exception as exc:     # truncated/damaged files raise many kinds
            raise ScenarioError("sweep", str(f), "a complete chunk file (rerun the sweep with "
                                "--resume to compute it again)",
                                detail=f"cannot be read: {type(exc).__name__}") from None
    return _concat(parts).sortby("scenario")


def _concat(parts: list[xr.Dataset]) -> xr.Dataset:
    """Chunks along ``scenario``; a coordinate that differs between chunks (the geometry
    of a sweep over the anatomy) gets the ``scenario`` dimension."""
    if len(parts) == 1:
        return parts[0]
    return xr.concat(parts, dim="scenario", data_vars="minimal", coords="different",
                     compat="equals", join="outer", combine_attrs="override")
