"""Speed of the direct steady states and of the route comparison (pytest-benchmark).

Run with ``pytest benchmarks/test_bench_route_comparison.py``. Nothing here
asserts a time; the numbers are for comparing versions and machines.
"""

from __future__ import annotations

import numpy as np
import pytest

from csfmodel.compare import _setup, compare_routes
from csfmodel.dosing import OralDose, expand
from csfmodel.model import build_schedule
from csfmodel.steady_state import input_vector, periodic_steady_state, plateau


@pytest.fixture(scope="module", params=["5 mm", "1 mm"])
def model(request):
    return _setup("morphine", None, request.param, "T10")[1]


def test_plateau(benchmark, model):
    """One sparse solve of J_c y = -u for an IT infusion at T10."""
    u = input_vector(model, "intrathecal", 1.0, model.anatomy.level_z("T10"))
    y = benchmark(plateau, model, u)
    assert np.all(np.isfinite(y))


def test_periodic_steady_state(benchmark, model):
    """Oral CR every 12 h: monodromy expm + one period of exact propagation (5-min outputs)."""
    sched = build_schedule(model, expand([OralDose(30000.0, formulation="controlled")], 720.0),
                           720.0)
    pss = benchmark(periodic_steady_state, model, sched, 145)
    assert pss.states.shape[0] == 145


def test_compare_defaults(benchmark):
    """`csfmodel compare` at its defaults, without the figure (5 mm grid)."""
    res = benchmark.pedantic(compare_routes, rounds=1, iterations=1)
    assert res.ratios["equianalgesic"]["oral"] > 1
