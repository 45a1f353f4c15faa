"""Cost of exact sensitivities for p parameters against one forward solve, in the same run.

The forward solve is the numba backend on the 7-day pump scenario at 5 mm (the
production path of ``simulate``); the sensitivities integrate the state and its p
sensitivities together (:mod:`csfmodel.fitting._kernel`) at the same ``rtol``, on the
steps of the state's error control. The ratio (time of ``solve_sensitivities`` / time
of the forward solve) is printed and kept in ``extra_info``, with the share spent in
Python assembling the derivatives of the model arrays (complex-step builds of the
model, one per parameter); forward mode aims at no more than 1 + p.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from csfmodel.fitting import solve_sensitivities
from csfmodel.fitting._parameters import resolve
from csfmodel.fitting._sensitivity import _tangent
from csfmodel.solvers import get_backend

KEYS = ["patient.dispersion", "drug.meningeal_permeability", "patient.injection_spread",
        "drug.cl", "patient.dispersion_caudal_fraction", "drug.octanol_buffer",
        "drug.bbb_efflux", "patient.cisternal_volume"]
TIMES: dict[str, float] = {}


def _best(fn, rounds: int = 7) -> float:
    best = np.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def test_forward(benchmark, prepared):
    prep = prepared("5mm")
    backend = get_backend("numba")
    backend.solve(prep.model.system, prep.schedule, prep.t_out)      # JIT warm
    benchmark.group = "sensitivity-5mm"
    benchmark(backend.solve, prep.model.system, prep.schedule, prep.t_out)
    TIMES["forward"] = _best(lambda: backend.solve(prep.model.system, prep.schedule,
                                                   prep.t_out))


@pytest.mark.parametrize("p", [1, 2, 4, 8])
def test_sensitivities(benchmark, prepared, p):
    prep = prepared("5mm")
    params = resolve(prep.scenario, KEYS[:p])
    solve_sensitivities(prep, params)                                  # JIT warm
    benchmark.group = "sensitivity-5mm"
    res = benchmark(solve_sensitivities, prep, params)
    t = _best(lambda: solve_sensitivities(prep, params))
    TIMES[f"p={p}"] = t
    t_arrays = _best(lambda: [_tangent(prep.model, prep.schedule, prep.events, q)
                              for q in params])
    if "forward" in TIMES:
        ratio = t / TIMES["forward"]
        benchmark.extra_info.update(p=p, ratio_to_forward=ratio, target=1 + p,
                                    steps=res.stats["steps"],
                                    array_derivatives_s=t_arrays,
                                    ratio_integration=(t - t_arrays) / TIMES["forward"])
        print(f"\nsensitivities p={p}: {t * 1e3:.1f} ms = {ratio:.2f} x forward "
              f"({TIMES['forward'] * 1e3:.1f} ms), target <= {1 + p}; {res.stats['steps']} steps;"
              f" array derivatives {t_arrays * 1e3:.1f} ms, integration "
              f"{(t - t_arrays) / TIMES['forward']:.2f} x forward")
