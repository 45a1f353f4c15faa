"""Timings of the JAX backend against the scipy reference (pytest-benchmark).

Run with::

    pytest benchmarks/test_bench_jax.py --benchmark-group-by=group

Each group holds the JAX backend (warm: compiled code reused) and the reference
solver on the same 24 h scenario at 5 mm, so the table's relative column is the
speed-up. Compilation is timed on its own (caches cleared before each round), and
a vmapped batch of parameter sets is timed per member. The 7-day pump scenario of
the suite (``prepared`` fixture of ``conftest.py``) is timed in the ``single-<res>``
groups, beside the numba and reference runs of ``test_single.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from csfmodel.api import prepare
from csfmodel.solvers import get_backend
from csfmodel.solvers.reference import solve as reference_solve

jax = pytest.importorskip("jax")

from csfmodel.solvers import jax_backend  # noqa: E402

JAX = get_backend("jax")

SIM = {"duration": "24 h", "output_interval": "5 min", "resolution": "5 mm"}

SCENARIOS = {
    # trial bolus: 0.5 mg in 2 mL at L3-L4, the stiff transient of the injection
    "lumbar_bolus_24h": [{"route": "intrathecal", "type": "bolus", "site": "L3-L4",
                          "amount": "0.5 mg", "volume": "2 mL",
                          "injection_rate": "4 mL/min"}],
    # pump at T10 with a day/night program and patient boluses
    "pump_program_boluses_24h": [
        {"route": "intrathecal", "type": "infusion", "site": "T10",
         "program": [{"at": "0 h", "rate": "0.8 mg/day"}, {"at": "7 h", "rate": "1.0 mg/day"},
                     {"at": "22 h", "rate": "0.8 mg/day"}]},
        {"route": "intrathecal", "type": "patient_bolus", "site": "T10", "amount": "0.05 mg",
         "volume": "20 uL", "lockout": "3 h", "max_per_day": 4,
         "daily_requests": ["8 h", "10 h", "13 h", "17 h", "21 h"]}],
}


def _prepared(name: str):
    prep = prepare({"simulation": SIM, "dose": SCENARIOS[name]})
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    return model, schedule, t_out


@pytest.fixture(scope="module", params=list(SCENARIOS))
def jax_case(request):
    model, schedule, t_out = _prepared(request.param)
    return request.param, model, schedule, t_out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_reference(benchmark, name):
    model, schedule, t_out = _prepared(name)
    benchmark.group = f"{name} (5 mm, 24 h)"
    benchmark.extra_info["n_state"] = model.system.n_state
    out = benchmark.pedantic(reference_solve, args=(model.system, schedule, t_out),
                             rounds=3, iterations=1)
    assert np.all(np.isfinite(out))


def test_jax_warm(benchmark, jax_case):
    name, model, schedule, t_out = jax_case
    JAX.solve(model.system, schedule, t_out)          # compile outside the timing
    benchmark.group = f"{name} (5 mm, 24 h)"
    sol = benchmark.pedantic(JAX.solve, args=(model.system, schedule, t_out), rounds=10,
                             iterations=1, warmup_rounds=1)
    out = sol.states
    benchmark.extra_info.update(sol.stats.as_dict())
    ref = reference_solve(model.system, schedule, t_out)
    benchmark.extra_info["max_rel_diff_vs_reference"] = float(
        np.abs(out - ref).max() / np.abs(ref).max())


def test_jax_compile(benchmark, jax_case):
    """First call in a process: tracing plus XLA compilation plus one solve."""
    name, model, schedule, t_out = jax_case

    def clear():
        jax_backend._COMPILED.clear()
        jax.clear_caches()

    benchmark.group = "jax compile + first solve"
    benchmark.pedantic(JAX.solve, args=(model.system, schedule, t_out), setup=clear,
                       rounds=3, iterations=1)


@pytest.mark.parametrize("size", [16, 64])
def test_jax_batch(benchmark, size):
    """A sweep of the dispersion coefficient: vmapped batch, time per member in extra_info."""
    systems = []
    for d in np.geomspace(0.2, 1.0, size):
        prep = prepare({"simulation": SIM, "patient": {
            "dispersion": f"{d} cm^2/min"}, "dose": SCENARIOS["lumbar_bolus_24h"]})
        model, schedule, t_out = prep.model, prep.schedule, prep.t_out
        systems.append(model.system)
    brain = systems[0].index("brain")
    obs = np.zeros((1, systems[0].n_state))
    obs[0, brain] = 1.0
    JAX.solve_batch(systems, schedule, t_out, observables=obs)      # compile
    benchmark.group = "jax batch (lumbar bolus, 5 mm, 24 h)"
    sol = benchmark.pedantic(JAX.solve_batch, args=(systems, schedule, t_out),
                             kwargs={"observables": obs}, rounds=3, iterations=1)
    if benchmark.stats:                    # None with --benchmark-disable
        benchmark.extra_info["seconds_per_member"] = benchmark.stats.stats.mean / size
    benchmark.extra_info["steps_per_member"] = float(np.mean([s.steps for s in sol.stats]))
    assert sol.values.shape == (size, len(t_out), 1)


@pytest.mark.parametrize("res", ["5mm", "1mm"])
def test_single_jax(benchmark, prepared, res):
    """The suite's 7-day pump scenario; lands in the group of test_single.py."""
    prep = prepared(res)
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    JAX.solve(model.system, schedule, t_out)          # compile outside the timing
    benchmark.group = f"single-{res}"
    sol = benchmark.pedantic(JAX.solve, args=(model.system, schedule, t_out), rounds=3,
                             iterations=1)
    states = sol.states
    benchmark.extra_info.update(n_state=model.system.n_state, n_out=len(t_out),
                                **sol.stats.as_dict())
    dosed = schedule.dosed(t_out)
    assert np.max(np.abs(states.sum(axis=1) - dosed)) <= 1e-9 * dosed.max()
