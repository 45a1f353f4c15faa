"""Exact propagation (``expm``) against the numba backend on the 7-day pump scenario.

Run with::

    OPENBLAS_NUM_THREADS=1 pytest benchmarks/test_bench_expm.py --benchmark-group-by=group

Each group (``expm-<res>``) holds, on the same arrays: the ``expm`` backend (matrix
exponentials on the output grid, exact to rounding), the numba backend at its
default tolerance and at ``rtol = 1e-9`` (``esdirk3`` named, so that numba's
automatic choice does not switch to the exponentials), so the table's relative
column gives the ratios. ``extra_info`` holds each run's error against the exact
solution (max |difference| / peak, worst variable) and its step counts. One BLAS
thread: the numba single-run kernel uses one core, and the exponential of a few
hundred states is slower on two BLAS threads on a busy 2-core machine.
"""

from __future__ import annotations

import pytest
from conftest import _relative_error

from csfmodel.solvers import SolverOptions, get_backend

RESOLUTIONS = ["10mm", "5mm", "1mm"]
NUMBA = {"default": SolverOptions(method="esdirk3"),
         "rtol1e-9": SolverOptions(rtol=1e-9, method="esdirk3")}
EXACT: dict[str, object] = {}


def _exact(prepared, res):
    if res not in EXACT:
        prep = prepared(res)
        EXACT[res] = get_backend("expm").solve(prep.model.system, prep.schedule,
                                               prep.t_out).states
    return EXACT[res]


@pytest.mark.parametrize("res", RESOLUTIONS)
def test_expm(benchmark, prepared, res):
    prep = prepared(res)
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    backend = get_backend("expm")
    benchmark.group = f"expm-{res}"
    rounds = 2 if res == "1mm" else 10
    sol = benchmark.pedantic(backend.solve, args=(model.system, schedule, t_out),
                             rounds=rounds, iterations=1, warmup_rounds=1)
    exact = _exact(prepared, res)
    benchmark.extra_info.update(n_state=model.system.n_state, n_out=len(t_out),
                                error=_relative_error(sol.states, exact,
                                                      model.system.n_spinal),
                                **sol.stats.as_dict())
    # mass: dosed = present + eliminated to round-off
    dosed = schedule.dosed(t_out)
    assert abs(sol.states.sum(axis=1) - dosed).max() <= 1e-11 * dosed.max()


@pytest.mark.parametrize("tol", list(NUMBA))
@pytest.mark.parametrize("res", RESOLUTIONS)
def test_numba(benchmark, prepared, res, tol):
    prep = prepared(res)
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    backend = get_backend("numba")
    options = NUMBA[tol]
    backend.solve(model.system, schedule, t_out, options)        # JIT warm
    benchmark.group = f"expm-{res}"
    sol = benchmark.pedantic(backend.solve, args=(model.system, schedule, t_out, options),
                             rounds=3 if tol == "rtol1e-9" else 20, iterations=1)
    err = _relative_error(sol.states, _exact(prepared, res), model.system.n_spinal)
    benchmark.extra_info.update(n_state=model.system.n_state, n_out=len(t_out), error=err,
                                rtol=sol.options.rtol, **sol.stats.as_dict())
    assert err < (1e-3 if tol == "default" else 1e-7)
