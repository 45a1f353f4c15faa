"""The backend contract, checked on every registered backend (and on a plug-in).

One test per promise of :class:`csfmodel.solvers.Backend`, parametrized over the
registry (in the style of py-pde's ``tests/solvers/test_generic_solvers.py``): the
same options, records, checks, sinks and batches whatever the backend. Plus the
shared pieces: the tableaus (order conditions, L-stability) and the one list of
:class:`~csfmodel.model.LinearSystem` arrays.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

from csfmodel.api import prepare, simulate
from csfmodel.errors import ScenarioError
from csfmodel.model import LinearSystem, Schedule
from csfmodel.solvers import (
    BACKENDS,
    SYSTEM_FIELDS,
    TABLEAUS,
    Backend,
    BatchSolution,
    Solution,
    SolverOptions,
    Stats,
    Summary,
    _prepare,
    get_backend,
    register,
    solve,
    solve_batch,
)
from csfmodel.solvers._prepare import summarize
from csfmodel.solvers.reference import solve as reference_solve

HAVE = {"numba": importlib.util.find_spec("numba") is not None,
        "jax": importlib.util.find_spec("jax") is not None}


def _params() -> list:
    """Every registered backend; those whose package is missing are skipped."""
    return [pytest.param(b, marks=pytest.mark.skipif(not HAVE.get(b, True),
                                                     reason=f"{b} not installed"))
            for b in sorted(BACKENDS)]


BACKEND_PARAMS = _params()

SCENARIO = {
    "simulation": {"duration": "6 h", "output_interval": "15 min", "resolution": "2 cm"},
    "dose": [
        {"route": "intrathecal", "type": "infusion", "site": "T10", "rate": "0.8 mg/day"},
        {"route": "iv", "type": "bolus", "amount": "5 mg", "time": "1 h"},
        {"route": "intrathecal", "type": "bolus", "site": "L3", "amount": "0.2 mg",
         "volume": "1 mL", "time": "2.5 h"},
    ],
}


@pytest.fixture(scope="module")
def problem():
    """``(model, schedule, t_out, reference states)`` of the contract scenario."""
    prep = prepare(SCENARIO)
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    return model, schedule, t_out, reference_solve(model.system, schedule, t_out)


def _relative_error(a: np.ndarray, b: np.ndarray, n_spinal: int) -> float:
    """Worst of: the spinal CSF block and each compartment, max |a - b| / peak |b|."""
    err = np.abs(a[:, :n_spinal] - b[:, :n_spinal]).max() / np.abs(b[:, :n_spinal]).max()
    for k in range(n_spinal, b.shape[1]):
        peak = np.abs(b[:, k]).max()
        if peak > 0:
            err = max(err, np.abs(a[:, k] - b[:, k]).max() / peak)
    return float(err)


# ------------------------------------------------------------ single runs
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_solution_record(backend, problem):
    """A Solution says what was solved, with which options (defaults filled in)."""
    model, schedule, t_out, _ = problem
    sol = solve(model.system, schedule, t_out, backend=backend)
    b = get_backend(backend)
    assert isinstance(sol, Solution) and sol.backend == backend == b.name
    np.testing.assert_array_equal(sol.t, t_out)
    assert sol.states.shape == (len(t_out), model.system.n_state)
    assert sol.options.rtol == b.default_rtol and b.resolve().method == b.default_method
    # the method that was run: the default, or what an "auto" default picked for the problem
    assert sol.options.method in b.methods and sol.options.method != "auto"
    if b.default_method != "auto":
        assert sol.options.method == b.default_method
    assert isinstance(sol.stats, Stats)
    assert set(sol.stats.as_dict()) <= set(Stats.VECTOR)
    if sol.stats.max_error_estimate is not None:
        assert 0.0 < sol.stats.max_error_estimate <= 1.0
    # the same backend object is what the registry hands out, and it can be passed on
    assert get_backend(backend) is b
    again = solve(model.system, schedule, t_out, backend=b)
    np.testing.assert_array_equal(again.states, sol.states)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_agrees_with_reference_and_keeps_mass(backend, problem):
    model, schedule, t_out, ref = problem
    y = solve(model.system, schedule, t_out, backend=backend).states
    assert _relative_error(y, ref, model.system.n_spinal) < 1e-3
    dosed = schedule.dosed(t_out)
    assert np.abs(y.sum(axis=1) - dosed).max() <= 1e-9 * dosed.max()
    # an output time on a dose event is taken after the jump (5 mg IV at 60 min)
    k = int(np.flatnonzero(t_out == 60.0)[0])
    plasma = model.system.index("plasma")
    assert y[k, plasma] - y[k - 1, plasma] > 0.5 * 5000.0


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_sink_receives_every_row(backend, problem, monkeypatch):
    """With a sink the rows are handed over (in blocks) and not kept; same numbers.

    (numba's windows are at most ``SINK_BYTES`` of rows whether or not a sink is given,
    so that its numbers do not depend on where the rows go.)
    """
    model, schedule, t_out, _ = problem
    monkeypatch.setattr(_prepare, "SINK_BYTES", 8 * model.system.n_state * 5)  # 5 rows
    full = solve(model.system, schedule, t_out, backend=backend).states
    got: list = []
    sol = solve(model.system, schedule, t_out, backend=backend,
                sink=lambda i0, s: got.append((i0, s.copy())))
    assert sol.states.shape == (0, model.system.n_state)
    assert len(got) > 3 and all(len(s) <= 5 for _, s in got)
    assert [i0 for i0, _ in got] == list(np.cumsum([0] + [len(s) for _, s in got[:-1]]))
    streamed = np.concatenate([s for _, s in got])
    np.testing.assert_allclose(streamed, full, rtol=0, atol=1e-12 * np.abs(full).max())


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_initial_state(backend, problem):
    """``y0``: a state left to evolve without doses keeps its total and relaxes like the
    reference's."""
    model, schedule, t_out, ref = problem
    y0 = ref[len(t_out) // 2]
    n = model.system.n_state
    quiet = Schedule(times=np.zeros(1), jumps=np.zeros((1, n)), rates=np.zeros((1, n)),
                     t_end=schedule.t_end)
    y = solve(model.system, quiet, t_out, backend=backend, y0=y0).states
    expected = reference_solve(model.system, quiet, t_out, y0=y0)
    np.testing.assert_allclose(y[0], y0, rtol=1e-12)
    assert np.abs(y.sum(axis=1) - y0.sum()).max() <= 1e-9 * y0.sum()
    assert _relative_error(y, expected, model.system.n_spinal) < 1e-3


# ------------------------------------------------------------ options
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_options_are_checked_against_the_backend(backend, problem):
    model, schedule, t_out, _ = problem
    b = get_backend(backend)
    with pytest.raises(ScenarioError, match="method.*" + b.methods[0]):
        solve(model.system, schedule, t_out, SolverOptions(method="euler"), backend=backend)
    with pytest.raises(ScenarioError, match="rtol"):
        solve(model.system, schedule, t_out, SolverOptions(rtol=b.rtol_range[0] / 10),
              backend=backend)
    fixed = SolverOptions(adaptive=False, max_step=30.0)
    if b.fixed_steps:
        sol = solve(model.system, schedule, t_out, fixed, backend=backend)
        assert sol.stats.steps >= 6 * 60 / 30.0
    else:
        with pytest.raises(ScenarioError, match="adaptive"):
            solve(model.system, schedule, t_out, fixed, backend=backend)
    with pytest.raises(ScenarioError, match="solver option 'nonsense'"):
        get_backend(backend, nonsense=1)


def test_options_are_checked_once_when_made():
    for bad, key in (({"rtol": 0.5}, "rtol"), ({"rtol": -1e-6}, "rtol"), ({"rtol": True}, "rtol"),
                     ({"atol": 0.0}, "atol"), ({"max_step": -1.0}, "max_step"),
                     ({"first_step": float("nan")}, "first_step"), ({"method": 3}, "method"),
                     ({"adaptive": "no"}, "adaptive"), ({"adaptive": False}, "max_step")):
        with pytest.raises(ScenarioError, match=key):
            SolverOptions(**bad)
    assert SolverOptions(rtol=np.float64(1e-6)).rtol == 1e-6


# ------------------------------------------------------------ batches
def _batch_inputs(model, schedule):
    """Two parameter sets, two schedules, per-member CSR observables (concentrations)."""
    from csfmodel.dosing import expand
    from csfmodel.model import build_model, build_schedule
    from csfmodel.scenario import parse_scenario

    sc = parse_scenario(SCENARIO)
    other = build_model(dataclasses.replace(sc.anatomy, dispersion=sc.anatomy.dispersion * 0.5),
                        sc.drug, sc.simulation.resolution)
    doses = parse_scenario(dict(SCENARIO, dose=SCENARIO["dose"][:2])).doses
    schedule2 = build_schedule(model, expand(doses, sc.simulation.duration),
                               sc.simulation.duration)
    systems = [model.system, other.system]
    s = model.system
    idx = np.array([3, s.n_spinal + 1, s.index("brain"), s.index("plasma")])
    ptr = np.arange(len(idx) + 1)
    weights = np.stack([1.0 / sys.volume[idx] for sys in systems])
    return systems, [schedule, schedule2], (ptr, idx, weights)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_batch_equals_single_runs(backend, problem):
    model, schedule, t_out, _ = problem
    systems, schedules, obs = _batch_inputs(model, schedule)
    sol = solve_batch(systems, schedules, t_out, backend=backend, observables=obs)
    assert isinstance(sol, BatchSolution) and not sol.summary
    assert sol.values.shape == (2, len(t_out), 4) and len(sol.stats) == 2
    ptr, idx, w = obs
    for b in range(2):
        single = solve(systems[b], schedules[b], t_out, backend=backend).states
        expected = single[:, idx] * w[b]
        np.testing.assert_allclose(sol.values[b], expected, rtol=0,
                                   atol=1e-9 * np.abs(expected).max())
    assert not np.allclose(sol.values[0], sol.values[1], rtol=1e-3)
    # summaries: max, time of max, integral, final of the same rows
    summ = solve_batch(systems, schedules, t_out, backend=backend, observables=obs,
                       summary=True)
    assert summ.summary and summ.values.shape == (2, 4, 4)
    expected = summarize(sol.values, t_out)
    np.testing.assert_allclose(summ.values, expected, rtol=1e-9,
                               atol=1e-12 * np.abs(expected).max())
    # more rows: window mean, time above a threshold, peak of an effect site per member
    spec = Summary(window=t_out[-1] / 3, threshold=0.3 * float(expected[:, 0].max()),
                   effect_row=1, effect_half_life=[30.0, 0.0])
    summ = solve_batch(systems, schedules, t_out, backend=backend, observables=obs,
                       summary=spec)
    assert summ.rows == Summary.ROWS and summ.values.shape == (2, 7, 4)
    expected = summarize(sol.values, t_out, spec)
    np.testing.assert_allclose(summ.values, expected, rtol=1e-9,
                               atol=1e-12 * np.abs(expected).max())
    assert expected[:, 5].max() > 0 and expected[1, 6, 1] == expected[1, 0, 1]


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_batch_with_stacked_arrays_and_initial_states(backend, problem):
    model, schedule, t_out, ref = problem
    systems, schedules, _ = _batch_inputs(model, schedule)
    stacked = _prepare.stack_systems(systems)
    y0 = np.stack([ref[4], ref[8]])
    sol = solve_batch(stacked, schedules[0], t_out, backend=backend, y0=y0)
    for b in range(2):
        single = solve(systems[b], schedules[0], t_out, backend=backend, y0=y0[b]).states
        np.testing.assert_allclose(sol.values[b], single, rtol=0,
                                   atol=1e-9 * np.abs(single).max())
    with pytest.raises(ValueError, match="schedule_index"):
        solve_batch(stacked, schedules, t_out, backend=backend, schedule_index=[0, 2])
    with pytest.raises(ValueError, match="summary needs observables"):
        solve_batch(stacked, schedules, t_out, backend=backend, summary=True)


# ------------------------------------------------------------ plug-ins
class ExactBackend(Backend):
    """A plug-in: exact propagation with matrix exponentials (small grids only)."""

    name = "exact"
    description = "matrix exponential of the augmented system (tests)"
    methods = ("expm",)
    default_method = "expm"
    default_rtol = 1e-10
    rtol_range = (1e-13, 0.1)

    def _solve(self, system, schedule, t_out, options, y0, sink):
        from scipy.linalg import expm

        n = system.n_state
        J = system.to_dense()
        y = np.zeros(n) if y0 is None else y0.copy()
        out = np.empty((len(t_out), n))
        ends = np.append(schedule.times[1:], schedule.t_end)
        for k, (t0, t1) in enumerate(zip(schedule.times, ends)):
            y = y + schedule.jumps[k]
            aug = np.zeros((n + 1, n + 1))
            aug[:n, :n] = J
            aug[:n, n] = schedule.rates[k]
            last = k == len(ends) - 1
            sel = np.flatnonzero((t_out >= t0) & ((t_out < t1) | (last & (t_out <= t1))))
            for i in sel:
                out[i] = (expm(aug * (t_out[i] - t0)) @ np.append(y, 1.0))[:n]
            y = (expm(aug * (t1 - t0)) @ np.append(y, 1.0))[:n]
        return out, Stats()


@pytest.fixture
def exact_backend():
    register("exact", ExactBackend)
    yield
    BACKENDS.pop("exact")


def test_a_plugin_registers_like_the_built_in_backends(exact_backend, problem):
    model, schedule, t_out, ref = problem
    assert "exact" in BACKENDS
    from csfmodel.solvers import available_backends

    assert available_backends()["exact"] == ExactBackend.description
    sol = solve(model.system, schedule, t_out, backend="exact")
    assert sol.backend == "exact" and sol.options.method == "expm"
    assert _relative_error(sol.states, ref, model.system.n_spinal) < 1e-6
    # the generic parts come for free: batches (a loop), observables, summaries, sinks
    systems, schedules, obs = _batch_inputs(model, schedule)
    summ = solve_batch(systems, schedules, t_out, backend="exact", observables=obs,
                       summary=True)
    assert summ.values.shape == (2, 4, 4)
    ds = simulate(SCENARIO, solver="exact")
    assert ds.attrs["solver"] == "exact" and ds.attrs["solver_rtol"] == 1e-10
    with pytest.raises(ScenarioError, match="method"):
        solve(model.system, schedule, t_out, SolverOptions(method="Radau"), backend="exact")


def test_unknown_backend_is_refused():
    with pytest.raises(ScenarioError, match="simulation.solver.*numba"):
        get_backend("fortran")


# ------------------------------------------------------------ shared pieces
def test_system_fields_are_the_arrays_of_a_linear_system():
    names = [f.name for f in dataclasses.fields(LinearSystem)]
    assert list(SYSTEM_FIELDS) == [n for n in names if n not in ("n_spinal", "n_cord")]


@pytest.mark.parametrize("name", list(TABLEAUS))
def test_tableau_order_conditions(name):
    """Stiffly accurate ESDIRK with the orders it claims (method and embedded)."""
    tab = TABLEAUS[name]
    A, b, bh = tab.A, tab.b, tab.b_hat
    s = tab.stages
    c = A.sum(axis=1)
    assert np.all(A[0] == 0.0) and np.allclose(np.diag(A)[1:], tab.gamma, rtol=0, atol=0)
    assert np.all(np.triu(A, 1) == 0.0)
    assert np.array_equal(b, A[-1]) and c[-1] == pytest.approx(1.0, abs=1e-15)
    assert tab.c1 == pytest.approx(c[1], abs=1e-15)
    conditions = {1: [lambda w: w.sum() - 1.0],
                  2: [lambda w: w @ c - 0.5],
                  3: [lambda w: w @ c**2 - 1 / 3, lambda w: w @ A @ c - 1 / 6]}
    for order in range(1, tab.order + 1):
        for cond in conditions[order]:
            assert abs(cond(b)) < 1e-12, (name, order)
    for order in range(1, tab.embedded_order + 1):
        for cond in conditions[order]:
            assert abs(cond(bh)) < 1e-12, (name, "embedded", order)
    # the embedded method really is of another order: the estimate is not zero
    nxt = max(tab.order, tab.embedded_order)
    assert any(abs(cond(w)) > 1e-6 for w in (b, bh) for cond in conditions[nxt])
    assert s == len(tab.error_weights)


@pytest.mark.parametrize("name", list(TABLEAUS))
def test_l_stability(name):
    """|R(z)| <= 1 on the closed left half-plane and R(z) -> 0 as z -> -inf.

    A method that is only A-stable (trapezoidal rule: R(-inf) = -1) would carry
    the stiff spike of a bolus on with alternating sign: ringing.
    """
    tab = TABLEAUS[name]
    zs = np.concatenate([-np.logspace(-3, 8, 300), 1j * np.logspace(-3, 8, 300),
                         np.logspace(-3, 8, 300) * np.exp(1j * 2.0)])
    assert max(abs(tab.stability_function(z)) for z in zs) <= 1.0 + 1e-12
    assert abs(tab.stability_function(-1e8)) < 1e-6
