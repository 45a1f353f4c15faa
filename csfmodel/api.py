"""The one entry point: :func:`simulate` a scenario into an xarray Dataset."""

from __future__ import annotations

import inspect
import json
import os
import time as _time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from csfmodel.dosing import expand
from csfmodel.errors import ScenarioError
from csfmodel.model import Model, Schedule, build_model, build_schedule
from csfmodel.results import to_dataset
from csfmodel.scenario import Scenario, load_scenario, parse_scenario

__all__ = ["simulate", "prepare", "check_memory", "SimulationInterrupted"]


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


def prepare(scenario: Scenario | dict | str | Path) -> tuple[Scenario, Model, Schedule, Any,
                                                             np.ndarray]:
    """Validate a scenario and build everything a backend needs.

    Returns ``(scenario, model, schedule, dose_events, t_out)`` with ``t_out`` in min.
    """
    sc = _as_scenario(scenario)
    if not sc.doses:
        raise ScenarioError("dose", None, "at least one [[dose]] table (route, type, amount or "
                            "rate); see examples/scenarios/", detail="no dose given")
    sim = sc.simulation
    model = build_model(sc.anatomy, sc.drug, sim.resolution)
    t_out = sim.output_times()
    check_memory(len(t_out), model.system.n_state)
    events = expand(sc.doses, sim.duration)
    schedule = build_schedule(model, events, sim.duration)
    return sc, model, schedule, events, t_out


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
        Passed to the backend (e.g. ``rtol`` for the reference solver).

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
    >>> float(ds.amount_dosed[-1])
    0.3
    """
    from csfmodel import __version__
    from csfmodel.solvers import SolveInterrupted, get_solver

    sc, model, schedule, events, t_out = prepare(scenario)
    name = solver or sc.simulation.solver
    solve = get_solver(name)
    # backends that report step statistics (steps, largest error estimate, ...) get a
    # dict to fill; the entries go into the attrs as solver_<name>
    stats: dict | None = None
    if "stats" not in solver_options and "stats" in inspect.signature(solve).parameters:
        stats = {}
        solver_options = dict(solver_options, stats=stats)
    t0 = _time.perf_counter()
    interrupted = None
    try:
        states = solve(model.system, schedule, t_out, **solver_options)
    except SolveInterrupted as exc:
        states = exc.states
        last = t_out[len(states) - 1] / 60 if len(states) else 0.0
        interrupted = (f"stopped by the user at t = {last:.4g} h of "
                       f"{sc.simulation.duration / 60:.4g} h")
        t_out = t_out[: len(states)]
    elapsed = _time.perf_counter() - t0
    if not np.all(np.isfinite(states)):  # pragma: no cover - a solver bug, never silent
        from csfmodel.solvers import SolverFailure

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
    for k, v in (stats or {}).items():
        if isinstance(v, (int, float, str)):
            attrs[f"solver_{k}"] = v
    if "rtol" in inspect.signature(solve).parameters:
        attrs.setdefault("solver_rtol", solver_options.get(
            "rtol", inspect.signature(solve).parameters["rtol"].default))
    if interrupted:
        attrs["interrupted"] = interrupted
    ds = to_dataset(model, schedule, t_out, states,
                    [r for r in events.requests if r.time <= t_out[-1]] if len(t_out)
                    else [], attrs)
    if interrupted:
        raise SimulationInterrupted(ds)
    return ds
