"""Single runs of the 7-day pump scenario: numba at several resolutions, reference beside it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RESOLUTIONS, RESULTS

from csfmodel.solvers import get_backend


@pytest.mark.parametrize("res", list(RESOLUTIONS))
def test_single_numba(benchmark, prepared, res):
    prep = prepared(res)
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    backend = get_backend("numba")
    backend.solve(model.system, schedule, t_out)   # JIT warm (loaded from cache or compiled)
    benchmark.group = f"single-{res}"
    sol = benchmark(backend.solve, model.system, schedule, t_out)
    states = sol.states
    benchmark.extra_info.update(n_state=model.system.n_state, n_spinal=model.system.n_spinal,
                                n_out=len(t_out), **sol.stats.as_dict())
    RESULTS[("numba", res)] = states
    dosed = schedule.dosed(t_out)
    assert np.max(np.abs(states.sum(axis=1) - dosed)) <= 1e-9 * dosed.max()


@pytest.mark.parametrize("res", ["5mm", "1mm"])
def test_single_reference(benchmark, prepared, res):
    prep = prepared(res)
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    backend = get_backend("reference")
    benchmark.group = f"single-{res}"
    benchmark.extra_info.update(n_state=model.system.n_state, n_out=len(t_out))
    # minutes per round at fine grids: few rounds (pedantic)
    sol = benchmark.pedantic(backend.solve, args=(model.system, schedule, t_out),
                             rounds=2 if res == "5mm" else 1, iterations=1)
    RESULTS[("reference", res)] = sol.states
