"""Where ``simulate()`` spends its time on the 7-day benchmark (5 mm, output every 5 min).

``csfmodel.simulate`` = parse the scenario, assemble the model (on a grid made once per
anatomy and resolution), build the dose schedule, run the solver (the kernel, plus the
checks and attributes around it), build the Dataset. Each stage is timed on its own
(group ``overhead-5mm``), and ``simulate`` end to end: with the grid already made (any
later run with the same anatomy) and with a new anatomy (the grid made too).

The summary at the end of the session prints each stage's share of the end-to-end time
and the ratio end to end / solver, from the minima over the rounds (the timings least
disturbed by other jobs, as for the regression check in README.md); ``extra_info`` of
``test_simulate_end_to_end[warm]`` holds the same breakdown measured stage after stage
in one loop (every stage under the same machine load), printed beside it.
"""

from __future__ import annotations

import time

import pytest
from conftest import scenario_dict

from csfmodel import api
from csfmodel.dosing import expand
from csfmodel.model import build_model, make_grid
from csfmodel.results import run_record, to_dataset
from csfmodel.scenario import parse_scenario
from csfmodel.solvers import get_backend


def _stages(prep) -> dict:
    """The stages of ``simulate`` as functions of nothing, on the prepared benchmark."""
    data = scenario_dict("5mm")
    sc, model, schedule, events, t_out = (prep.scenario, prep.model, prep.schedule,
                                          prep.events, prep.t_out)
    sim = sc.simulation
    backend = get_backend("numba")
    run = api._execute(sc, model, schedule, t_out, None, {})
    requests = api._requests(events, t_out)
    return {
        "parse": lambda: parse_scenario(data),
        "model": lambda: build_model(sc.anatomy, sc.drug, sim.resolution,
                                     grid=api._grid(sc.anatomy, float(sim.resolution))),
        "schedule": lambda: api.schedule_for(model, expand(sc.doses, sim.duration),
                                             sim.duration),
        "solve": lambda: backend.solve(model.system, schedule, t_out),
        "run": lambda: api._execute(sc, model, schedule, t_out, None, {}),
        "dataset": lambda: to_dataset(model, schedule, t_out, run.states, requests,
                                      run.attrs, record=run_record(sc, model)),
        "grid": lambda: make_grid(sc.anatomy, sim.resolution),
    }


#: what each stage is, for the summary (conftest.py)
LABELS = {
    "parse": "parse + validate the scenario",
    "model": "assemble the model (grid reused)",
    "schedule": "dose schedule",
    "solve": "solver (numba kernel)",
    "run": "solver + checks and attrs",
    "dataset": "Dataset (observe, amounts, coords)",
    "grid": "grid (a new anatomy only)",
}


@pytest.mark.parametrize("stage", list(LABELS))
def test_stage(benchmark, prepared, stage):
    fn = _stages(prepared("5mm"))[stage]
    fn()                                         # JIT warm, caches filled
    benchmark.group = "overhead-5mm"
    benchmark.extra_info["stage"] = LABELS[stage]
    benchmark(fn)


def _interleaved(stages: dict, rounds: int) -> dict[str, float]:
    """Least seconds of every stage and of ``simulate`` over ``rounds`` rounds of one of
    each (the minimum: the timing least disturbed by other jobs on the machine)."""
    data = scenario_dict("5mm")
    todo = {**stages, "simulate": lambda: api.simulate(data)}
    times: dict[str, list[float]] = {k: [] for k in todo}
    for _ in range(rounds):
        for k, f in todo.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


@pytest.mark.parametrize("grid", ["warm", "new anatomy"])
def test_simulate_end_to_end(benchmark, prepared, grid):
    """``simulate`` of the benchmark scenario; ``new anatomy``: the grid is made too."""
    data = scenario_dict("5mm")
    api.simulate(data)                           # JIT warm
    benchmark.group = "overhead-5mm"
    if grid == "warm":
        ds = benchmark(api.simulate, data)
        med = _interleaved(_stages(prepared("5mm")), rounds=40)
        benchmark.extra_info.update({f"{k}_s": v for k, v in med.items()})
        benchmark.extra_info["ratio_end_to_end_to_solver"] = med["simulate"] / med["solve"]
    else:
        ds = benchmark.pedantic(api.simulate, args=(data,), setup=api._grid.cache_clear,
                                rounds=30, iterations=1)
    assert ds.sizes["time"] == 2017 and float(ds.amount_dosed[-1]) > 0
