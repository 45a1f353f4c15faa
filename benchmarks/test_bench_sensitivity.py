"""Cost of exact sensitivities for p parameters against one forward solve, in the same run.

The forward solve is the numba backend on the 7-day pump scenario at 5 mm (the
production path of ``simulate``); the sensitivities integrate the state and its p
sensitivities together (:mod:`csfmodel.fitting._kernel`) at the same ``rtol``, on the
steps of the state's error control. The ratio (time of ``solve_sensitivities`` / time
of the forward solve, both timed alternately in the same loop, best of each, so that
a load on the machine weighs on both alike) is printed and kept in ``extra_info``,
in wall-clock and in CPU time, with the median over the rounds of each round's
ratio (``median_pair_ratio``: steadier than the ratio of two best times when a load
comes and goes) and the time spent in Python assembling the
derivatives of the model arrays (complex-step builds of the model, one per
parameter; :func:`csfmodel.fitting._sensitivity.tangents`); forward mode aims at no
more than 1 + p.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from csfmodel.fitting import solve_sensitivities
from csfmodel.fitting._parameters import resolve
from csfmodel.fitting._sensitivity import tangents
from csfmodel.solvers import get_backend

KEYS = ["patient.dispersion", "drug.meningeal_permeability", "patient.injection_spread",
        "drug.cl", "patient.dispersion_caudal_fraction", "drug.octanol_buffer",
        "drug.bbb_efflux", "patient.cisternal_volume"]


def _best(fn, rounds: int = 7, clock=time.perf_counter) -> float:
    best = np.inf
    for _ in range(rounds):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def _alternate(fa, fb, rounds: int = 9, clock=time.perf_counter
               ) -> tuple[float, float, float]:
    """Best time of ``fa`` and of ``fb``, timed in turn (the same load on both), and the
    median over the rounds of ``fb``'s time over ``fa``'s in the same round (a load
    that comes and goes weighs on a pair alike, where it may spare one best time)."""
    ta, tb = [], []
    for _ in range(rounds):
        t0 = clock()
        fa()
        ta.append(clock() - t0)
        t0 = clock()
        fb()
        tb.append(clock() - t0)
    return min(ta), min(tb), float(np.median(np.array(tb) / np.array(ta)))


def test_forward(benchmark, prepared):
    prep = prepared("5mm")
    backend = get_backend("numba")
    backend.solve(prep.model.system, prep.schedule, prep.t_out)      # JIT warm
    benchmark.group = "sensitivity-5mm"
    benchmark(backend.solve, prep.model.system, prep.schedule, prep.t_out)


@pytest.mark.parametrize("p", [1, 2, 4, 8])
def test_sensitivities(benchmark, prepared, p):
    prep = prepared("5mm")
    params = resolve(prep.scenario, KEYS[:p])
    backend = get_backend("numba")

    def forward():
        return backend.solve(prep.model.system, prep.schedule, prep.t_out)

    def sens():
        return solve_sensitivities(prep, params)

    forward()
    sens()                                                            # JIT warm
    benchmark.group = "sensitivity-5mm"
    res = benchmark(sens)
    t_fwd, t, median = _alternate(forward, sens)
    c_fwd, c, _ = _alternate(forward, sens, clock=time.process_time)
    t_arrays = _best(lambda: tangents(prep.model, prep.schedule, prep.events, params))
    ratio, cpu_ratio = t / t_fwd, c / c_fwd
    benchmark.extra_info.update(p=p, ratio_to_forward=ratio, cpu_ratio_to_forward=cpu_ratio,
                                median_pair_ratio=median,
                                target=1 + p, steps=res.stats["steps"], forward_s=t_fwd,
                                array_derivatives_s=t_arrays,
                                ratio_integration=(t - t_arrays) / t_fwd)
    print(f"\nsensitivities p={p}: {t * 1e3:.1f} ms = {ratio:.2f} x forward "
          f"({t_fwd * 1e3:.1f} ms; CPU time {cpu_ratio:.2f} x; median of the rounds' "
          f"ratios {median:.2f} x), target <= {1 + p}; "
          f"{res.stats['steps']} steps; array derivatives {t_arrays * 1e3:.1f} ms, "
          f"the rest {(t - t_arrays) / t_fwd:.2f} x forward")
