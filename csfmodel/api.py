"""The one entry point: :func:`simulate` a scenario into an xarray Dataset."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from csfmodel.anatomy import Anatomy
from csfmodel.dosing import DoseEvents, expand
from csfmodel.errors import ScenarioError
from csfmodel.model import (
    Grid,
    Model,
    Schedule,
    add_bolus,
    bolus_inputs,
    bolus_times,
    build_model,
    build_schedule,
    make_grid,
)
from csfmodel.results import run_record, to_dataset
from csfmodel.scenario import Scenario, load_scenario, parse_scenario

__all__ = ["simulate", "simulate_to_file", "prepare", "Prepared", "schedule_for",
           "check_memory", "check_disk", "SimulationInterrupted"]


class SimulationInterrupted(KeyboardInterrupt):
    """A simulation stopped by Ctrl-C; ``partial`` holds the results computed so far.

    ``partial`` is a complete Dataset over the output times reached before the
    interrupt, with ``attrs["interrupted"]`` saying where it stopped. The CLI
    saves it before exiting.
    """

    def __init__(self, partial: xr.Dataset):
        super().__init__(partial.attrs.get("interrupted", "interrupted"))
        self.partial = partial


def _as_scenario(scenario: Scenario | dict | str | Path) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, dict):
        return parse_scenario(scenario)
    if isinstance(scenario, (str, Path)):
        return load_scenario(scenario)
    raise ScenarioError("scenario", type(scenario).__name__,
                        "a Scenario, a dict or the path of a TOML file")


@dataclass(frozen=True)
class Prepared:
    """A validated scenario with everything a backend needs (:func:`prepare`).

    Attributes
    ----------
    scenario
        The validated :class:`~csfmodel.scenario.Scenario`.
    model
        The assembled :class:`~csfmodel.model.Model` (grid, matrix, drug, anatomy).
    schedule
        The dose :class:`~csfmodel.model.Schedule` (jumps and rates, ug and ug/min).
    events
        The expanded dose events (:class:`~csfmodel.dosing.DoseEvents`, with the
        pump's log of patient requests).
    t_out
        Output times, min.
    """

    scenario: Scenario
    model: Model
    schedule: Schedule
    events: DoseEvents
    t_out: np.ndarray


def prepare(scenario: Scenario | dict | str | Path, *, in_memory: bool = True) -> Prepared:
    """Validate a scenario and build everything a backend needs.

    Returns a :class:`Prepared` (``.scenario``, ``.model``, ``.schedule``,
    ``.events``, ``.t_out`` in min). With ``in_memory`` (the default) a run whose
    results would not fit in memory is refused (:func:`check_memory`).
    """
    sc = _as_scenario(scenario)
    if not sc.doses:
        raise ScenarioError("dose", None, "at least one [[dose]] table (route, type, amount or "
                            "rate); see examples/scenarios/", detail="no dose given")
    sim = sc.simulation
    model = build_model(sc.anatomy, sc.drug, sim.resolution,
                        grid=_grid(sc.anatomy, float(sim.resolution)))
    t_out = sim.output_times()
    if in_memory:
        check_memory(len(t_out), model.system.n_state)
    events = expand(sc.doses, sim.duration)
    schedule = schedule_for(model, events, sim.duration)
    return Prepared(sc, model, schedule, events, t_out)


@functools.lru_cache(maxsize=16)
def _grid(anatomy: Anatomy, resolution: float) -> Grid:
    """:func:`~csfmodel.model.make_grid`, kept for the next run with the same anatomy.

    The grid is a function of the anatomy and the resolution only (and the sweeps
    share it between models the same way); its arrays are made read-only, as they
    are shared. Building it is most of the model's assembly (~4 ms at 5 mm, 4x the
    rest; benchmarks/test_overhead.py).
    """
    grid = make_grid(anatomy, resolution)
    for f in dataclasses.fields(grid):
        value = getattr(grid, f.name)
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return grid


def schedule_for(model: Model, events: DoseEvents, t_end: float) -> Schedule:
    """:func:`~csfmodel.model.build_schedule`, depositing each distinct bolus once.

    Depositing an intrathecal bolus on the grid is the costly part of a schedule
    (~0.4 ms each at 5 mm); a pump's patient boluses repeat the same deposit at many
    times. The jump of each distinct bolus (same target, site, amount, volume,
    injection rate) is computed once by ``build_schedule`` and added at its times
    in the order ``build_schedule`` adds them, and the rates come from
    ``build_schedule`` of the rate steps alone, so the result is identical (tested).
    """
    t = np.array(sorted(x for x in {0.0, *bolus_times(events.boluses, model),
                                    *(v for st in events.steps for v in (st.start, st.stop))}
                        if 0.0 <= x < t_end))
    steps = build_schedule(model, DoseEvents(steps=list(events.steps)), t_end)
    rates = steps.rates[np.searchsorted(steps.times, t, side="right") - 1]
    jumps = np.zeros((len(t), model.system.n_state))
    shared: dict[Any, tuple] = {}
    for b in events.boluses:
        key = dataclasses.replace(b, time=0.0, source=0)    # frozen: hashable
        if key not in shared:
            shared[key] = bolus_inputs(model, key)
        add_bolus(t, jumps, rates, b.time, shared[key])
    return Schedule(times=t, jumps=jumps, rates=rates, t_end=float(t_end))


def _available_memory() -> int | None:
    """Bytes of memory available to this process now (None where unknown)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


#: copies of the state array a simulation holds at its peak (states, concentrations,
#: the Dataset's variables)
_COPIES = 3


def check_memory(n_times: int, n_state: int, available: int | None = None) -> int:
    """Refuse, before any work, a simulation whose results would not fit in memory.

    The estimate is ``3 x n_times x n_state x 8`` bytes (the states, their
    concentrations and the Dataset built from them); it must stay below half of
    the memory available now. Returns the estimate in bytes.

    Raises
    ------
    ScenarioError
        Naming ``simulation.output_interval`` with the estimate, what is available
        and what to change.
    """
    need = _COPIES * n_times * n_state * 8
    avail = _available_memory() if available is None else available
    if avail is not None and need > 0.5 * avail:
        raise ScenarioError(
            "simulation.output_interval", f"{n_times:,} output times x {n_state:,} states",
            f"results that fit in memory: this run needs ~{need / 2**30:.3g} GiB and "
            f"{avail / 2**30:.3g} GiB are available; use a longer output_interval, a "
            "coarser resolution or a shorter duration (or `csfmodel sweep --summary` for "
            "peak, AUC and final values only)", detail="too large")
    return need


def simulate(scenario: Scenario | dict | str | Path, *, solver: str | None = None,
             **solver_options: Any) -> xr.Dataset:
    """Simulate a scenario and return a self-describing :class:`xarray.Dataset`.

    Parameters
    ----------
    scenario
        A :class:`~csfmodel.scenario.Scenario`, a dict in the TOML layout, or the
        path of a scenario TOML file.
    solver
        Backend name (overrides ``[simulation] solver``); see
        :func:`csfmodel.solvers.available_backends`.
    **solver_options
        :class:`~csfmodel.solvers.SolverOptions` (``rtol``, ``atol``, ``max_step``,
        ``first_step``, ``method``, ``adaptive``; defaults: the backend's) and the
        backend's own settings (e.g. ``block_size`` for jax); anything else is refused.

    Returns
    -------
    xarray.Dataset
        Concentrations (ng/mL) on ``time`` (h), ``z`` (cm) and ``segment``,
        amounts (mg) with ``amount_dosed == amount_present + amount_eliminated``;
        the scenario, drug, solver and package version in ``attrs``.

    Examples
    --------
    >>> ds = simulate({"simulation": {"duration": "2 h"},
    ...                "dose": [{"route": "intrathecal", "type": "bolus",
    ...                          "site": "L3", "amount": "0.3 mg"}]})
    >>> round(float(ds.amount_dosed[-1]), 12)
    0.3
    """
    p = prepare(scenario)
    run = _execute(p.scenario, p.model, p.schedule, p.t_out, solver, solver_options)
    t_done = p.t_out[: run.n_done]
    ds = to_dataset(p.model, p.schedule, t_done, run.states, _requests(p.events, t_done),
                    run.attrs, record=run_record(p.scenario, p.model))
    if run.interrupted:
        raise SimulationInterrupted(ds)
    return ds


def _requests(events, t_done: np.ndarray) -> list:
    """The patient bolus requests up to the last output time reached."""
    return [r for r in events.requests if r.time <= t_done[-1]] if len(t_done) else []


@dataclass
class _Run:
    """What a backend returned: states (none when streamed), rows reached, attrs."""

    states: np.ndarray
    n_done: int
    attrs: dict
    interrupted: str | None


def _execute(sc: Scenario, model: Model, schedule: Schedule, t_out: np.ndarray,
             solver: str | None, solver_options: dict, sink=None) -> _Run:
    """Run the chosen backend; with ``sink``, hand it the states window by window.

    ``solver_options`` are split into :class:`~csfmodel.solvers.SolverOptions`
    (``rtol``, ``method``, ...) and the backend's own settings (e.g. jax's
    ``block_size``); the backend is reached through the registry. Backends that
    stream (numba) hand the sink each window as it is computed (memory bounded by
    one window); for the others the rows are handed over once solved.
    """
    from csfmodel._version import __version__
    from csfmodel.solvers import SolveInterrupted, SolverFailure, get_backend, split_options

    name = solver or sc.simulation.solver
    options, settings = split_options(solver_options)
    backend = get_backend(name, **settings)
    options = backend.resolve(options)
    delivered = [0]

    def counting_sink(i0: int, states: np.ndarray) -> None:
        if not np.all(np.isfinite(states)):  # pragma: no cover - a solver bug
            raise SolverFailure(f"solver {name!r} produced non-finite values")
        sink(i0, states)
        delivered[0] = i0 + len(states)

    t0 = _time.perf_counter()
    interrupted = None
    stats: dict = {}
    try:
        sol = backend.solve(model.system, schedule, t_out, options,
                            sink=counting_sink if sink is not None else None)
        states = sol.states
        stats = sol.stats.as_dict()
        n_done = delivered[0] if sink is not None else len(states)
    except SolveInterrupted as exc:
        states = exc.states
        n_done = delivered[0] if sink is not None else len(states)
        interrupted = _stopped_at(t_out, n_done, sc.simulation.duration)
    elapsed = _time.perf_counter() - t0
    if not np.all(np.isfinite(states)):  # pragma: no cover - a solver bug, never silent
        raise SolverFailure(f"solver {name!r} produced non-finite values")
    attrs = {
        "title": "csfmodel simulation",
        "csfmodel_version": __version__,
        "drug": sc.drug.name,
        "solver": name,
        "solver_seconds": elapsed,
        "grid_resolution_cm": model.grid.dz,
        "catheter_sites_cm": json.dumps(sc.catheter_sites()),
        "scenario": json.dumps(sc.source, default=str),
        "Conventions": "CF-1.8",
    }
    for k, v in stats.items():
        attrs[f"solver_{k}"] = v
    attrs["solver_rtol"] = options.rtol
    if interrupted:
        attrs["interrupted"] = interrupted
    return _Run(states=states, n_done=n_done, attrs=attrs, interrupted=interrupted)


def _stopped_at(t_out: np.ndarray, n_done: int, duration: float) -> str:
    """The ``interrupted`` attribute of a run stopped after ``n_done`` output rows."""
    last = t_out[n_done - 1] / 60 if n_done else 0.0
    return f"stopped by the user at t = {last:.4g} h of {duration / 60:.4g} h"


def simulate_to_file(scenario: Scenario | dict | str | Path, path: str | Path, *,
                     solver: str | None = None,
                     on_window: Callable[[xr.Dataset], None] | None = None,
                     **solver_options: Any) -> Path:
    """Simulate a scenario and write the results to netCDF while they are computed.

    The file holds exactly what :func:`simulate` returns, but the run never holds
    more than one window of results in memory (with the ``numba`` backend; the
    others solve first and then write), so runs far larger than memory are
    possible. The file is written atomically (a temporary file renamed when
    complete); on Ctrl-C the rows computed so far are kept, with an
    ``interrupted`` attribute, and :class:`SimulationInterrupted` is raised with
    the file opened lazily as ``partial``.

    Parameters
    ----------
    scenario
        As for :func:`simulate`.
    path
        netCDF file to write; refused beforehand if the disk cannot hold it.
    solver, **solver_options
        As for :func:`simulate`.
    on_window
        Called with each window's Dataset as it is written (e.g. running summaries).

    Returns
    -------
    pathlib.Path
        The file written; open it with :func:`csfmodel.load` or ``xarray.open_dataset``.
    """
    from csfmodel._io import atomic_path
    from csfmodel.results import NetCDFStream

    p = prepare(scenario, in_memory=False)
    sc, model, schedule, events, t_out = p.scenario, p.model, p.schedule, p.events, p.t_out
    record = run_record(sc, model)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    check_disk(target, len(t_out), model)
    stream: list = []
    with atomic_path(target) as tmp:
        def sink(i0: int, states: np.ndarray) -> None:
            t_win = t_out[i0:i0 + len(states)]
            piece = to_dataset(model, schedule, t_win, states,
                               _requests(events, t_out) if i0 == 0 else [], {}, record=record)
            if not stream:
                stream.append(NetCDFStream(tmp, piece))
            else:
                stream[0].append(piece)
            written[0] = i0 + len(states)
            if on_window is not None:
                on_window(piece)

        written = [0]
        run = _execute(sc, model, schedule, t_out, solver, solver_options, sink=sink)
        if not stream:
            raise SimulationInterrupted(to_dataset(model, schedule, t_out[:0],
                                                   np.zeros((0, model.system.n_state)), [],
                                                   run.attrs, record=record))
        if run.interrupted:  # the rows in the file, whatever the backend had handed over
            run.attrs["interrupted"] = _stopped_at(t_out, written[0], sc.simulation.duration)
        stream[0].close(run.attrs)
    if run.interrupted:
        raise SimulationInterrupted(xr.open_dataset(target))
    return target


def check_disk(path: Path, n_times: int, model: Model) -> int:
    """Refuse a results file larger than the free space where it is to be written."""
    import shutil

    n = model.system
    per_row = n.n_spinal + model.grid.segment_weights.shape[0] + 16
    need = n_times * per_row * 8
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:  # pragma: no cover - checked again when writing
        return need
    if need > free:
        raise ScenarioError(
            "simulation.output_interval", f"{n_times:,} output times",
            f"a results file that fits on the disk: ~{need / 2**30:.3g} GiB needed, "
            f"{free / 2**30:.3g} GiB free in {path.parent}; use a longer output_interval "
            "or a coarser resolution", detail="too large")
    return need
