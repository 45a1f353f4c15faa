"""Exact propagation with matrix exponentials (``backend="expm"``, numba's ``method="expm"``).

Checked against the scipy reference to 1e-9 of each variable's peak on the worked
examples, on events off the output grid, and on its own exactness (splitting a
step changes nothing); the step plan and the input basis on hand-made cases; the
numba backend's automatic choice.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_backend_contract import _relative_error

from csfmodel.api import prepare, simulate
from csfmodel.model import Schedule
from csfmodel.solvers import (
    SolveInterrupted,
    SolverOptions,
    _prepare,
    get_backend,
    solve,
    solve_batch,
)
from csfmodel.solvers.expm_backend import input_basis, make_plan
from csfmodel.solvers.reference import solve as reference_solve

EXAMPLES = Path(__file__).parents[1] / "examples" / "scenarios"
#: the three quick examples run by default; the two longer ones (3 days, pump) are slow
QUICK = ("fentanyl_vs_catheter", "iv_bolus_and_infusion", "lumbar_bolus")
SLOW = ("oral_controlled_release", "pump_t10_patient_boluses")


def _example(name: str):
    prep = prepare(tomllib.loads((EXAMPLES / f"{name}.toml").read_text(encoding="utf-8")))
    return prep.model.system, prep.schedule, prep.t_out


@pytest.mark.parametrize("name", [*QUICK, *(pytest.param(n, marks=pytest.mark.slow)
                                            for n in SLOW)])
def test_agrees_with_the_reference_on_the_examples(name):
    """1e-9 of each variable's peak (the reference at its default rtol 1e-10 agrees with
    itself at 1e-12 to ~1e-10), and mass to round-off."""
    system, schedule, t_out = _example(name)
    ref = reference_solve(system, schedule, t_out)
    sol = solve(system, schedule, t_out, backend="expm")
    assert _relative_error(sol.states, ref, system.n_spinal) < 1e-9
    dosed = schedule.dosed(t_out)
    assert np.abs(sol.states.sum(axis=1) - dosed).max() <= 1e-12 * dosed.max()
    # a regular output grid with every dose event on it: one exponential, one step per
    # output (a needle bolus spreading over minutes adds its own event times)
    if np.isin(schedule.times, t_out).all():
        assert sol.stats.factorizations == 1 and sol.stats.steps == len(t_out) - 1
    else:
        assert sol.stats.steps > len(t_out) - 1


#: the bolus spreads at once here (injection_mixing_time 0): the tests below count the
#: steps between a known set of dose events (a spread over minutes adds 14 more)
SMALL = {"simulation": {"duration": "5 h", "output_interval": "15 min", "resolution": "2 cm"},
         "patient": {"injection_mixing_time": "0 min"},
         "dose": [{"route": "intrathecal", "type": "infusion", "site": "T10",
                   "rate": "1 mg/day", "start": "10 min", "duration": "200 min"},
                  {"route": "intrathecal", "type": "bolus", "site": "L3", "amount": "0.2 mg",
                   "volume": "1 mL", "time": "37 min"},
                  {"route": "iv", "type": "bolus", "amount": "2 mg", "time": "2 h"}]}


@pytest.fixture(scope="module")
def small():
    prep = prepare(SMALL)
    system, schedule, t_out = prep.model.system, prep.schedule, prep.t_out
    return system, schedule, t_out, reference_solve(system, schedule, t_out, rtol=1e-12)


def test_events_between_output_times_are_aligned(small):
    """Infusion start at 10 min, bolus at 37 min, infusion stop at 210 min: steps split at
    each; lengths 15, 10, 5, 7, 8 min (one exponential each)."""
    system, schedule, t_out, ref = small
    sol = solve(system, schedule, t_out, backend="expm")
    assert _relative_error(sol.states, ref, system.n_spinal) < 1e-9
    assert sol.stats.factorizations == 5
    assert sol.stats.steps == len(t_out) - 1 + 2
    assert (sol.stats.min_step_min, sol.stats.max_step_min) == (5.0, 15.0)


def test_splitting_a_step_changes_nothing(small):
    """exp((a + b) J) = exp(aJ) exp(bJ): max_step only adds steps, to round-off."""
    system, schedule, t_out, _ = small
    whole = solve(system, schedule, t_out, backend="expm")
    split = solve(system, schedule, t_out, SolverOptions(max_step=2.0), backend="expm")
    assert split.stats.steps > 7 * whole.stats.steps and split.stats.max_step_min <= 2.0
    np.testing.assert_allclose(split.states, whole.states, rtol=0,
                               atol=1e-12 * np.abs(whole.states).max())


def test_steady_infusion_into_plasma_is_exact():
    """Constant IV infusion: present + eliminated = rate x t exactly; and from a state at
    rest the solution of a closed system stays put (J y = 0 for y on the null space)."""
    prep = prepare({"simulation": {"duration": "3 day", "output_interval": "6 h",
                                   "resolution": "2 cm"},
                    "dose": [{"route": "iv", "type": "infusion", "rate": "14.4 mg/day"}]})
    s, schedule, t_out = prep.model.system, prep.schedule, prep.t_out
    y = solve(s, schedule, t_out, backend="expm").states
    np.testing.assert_allclose(y.sum(axis=1), 10.0 * t_out, rtol=1e-13, atol=1e-9)
    # the eliminated compartment is absorbing: an amount there never moves
    quiet = Schedule(times=np.zeros(1), jumps=np.zeros((1, s.n_state)),
                     rates=np.zeros((1, s.n_state)), t_end=schedule.t_end)
    y0 = np.zeros(s.n_state)
    y0[s.index("eliminated")] = 7.0
    z = solve(s, quiet, t_out, backend="expm", y0=y0).states
    np.testing.assert_array_equal(z, np.tile(y0, (len(t_out), 1)))


def test_plan_of_a_hand_made_schedule():
    """Outputs at 0, 10, 20, 30 (twice); events at 0, 5 and 30; max_step 4."""
    times = np.array([0.0, 5.0, 30.0])
    t_out = np.array([0.0, 10.0, 20.0, 30.0, 30.0])
    p = make_plan(times, t_out)
    np.testing.assert_array_equal(p.points, [0, 5, 10, 20, 30])
    np.testing.assert_array_equal(p.lengths, [5, 10])
    np.testing.assert_array_equal(p.step_length, [0, 0, 1, 1])
    np.testing.assert_array_equal(p.step_rate, [0, 1, 1, 1])
    np.testing.assert_array_equal(p.jump, [0, 1, -1, -1, 2])
    np.testing.assert_array_equal(p.rows, [0, 1, 1, 2, 3, 5])   # 30 min: rows 3 and 4
    q = make_plan(times, t_out, max_step=4.0)
    np.testing.assert_allclose(q.points, [0, 2.5, 5, 7.5, 10, 13.3333333333, 16.6666666667,
                                          20, 23.3333333333, 26.6666666667, 30])
    np.testing.assert_allclose(q.lengths, [2.5, 10 / 3])
    # outputs before the first event, none at 0: the steps start at 0 without input
    r = make_plan(np.array([12.0]), np.array([6.0, 12.0]))
    np.testing.assert_array_equal(r.step_rate, [-1, -1])
    np.testing.assert_array_equal(r.rows, [0, 0, 1, 2])


def test_input_basis_reproduces_every_rate():
    """Unit vectors of the states fed (2 of 6) or the distinct rate vectors (1), the fewer."""
    rates = np.zeros((3, 6))
    rates[0, [1, 2]] = [0.25, 0.75]
    rates[2, [1, 2]] = [0.25, 0.75]
    U, (C,) = input_basis([SimpleNamespace(rates=rates)])
    assert U.shape == (6, 1)
    np.testing.assert_array_equal(C @ U.T, rates)
    rates2 = rates.copy()
    rates2[1, 1] = 1.0                           # two states fed, three distinct vectors
    rates2[2, 2] = 2.0
    U, (C2,) = input_basis([SimpleNamespace(rates=rates2)])
    assert U.shape == (6, 2) and np.all(U.sum(axis=0) == 1.0)
    np.testing.assert_array_equal(C2 @ U.T, rates2)


def test_batch_shares_the_exponentials_of_equal_matrices(small):
    system, schedule, t_out, ref = small
    y0 = np.zeros((3, system.n_state))
    y0[2, 0] = 100.0
    sol = solve_batch([system, system, system], schedule, t_out, backend="expm", y0=y0)
    assert [s.factorizations for s in sol.stats] == [5, 0, 0]
    np.testing.assert_array_equal(sol.values[0], sol.values[1])
    np.testing.assert_allclose(sol.values[2] - sol.values[0],
                               solve(system, Schedule(times=np.zeros(1),
                                                      jumps=y0[2:3], rates=0 * y0[2:3],
                                                      t_end=schedule.t_end),
                                     t_out, backend="expm").states,
                               rtol=0, atol=1e-11 * np.abs(sol.values[2]).max())
    assert _relative_error(sol.values[0], ref, system.n_spinal) < 1e-9


def test_ctrl_c_in_the_sink_keeps_the_rows_handed_over(small, monkeypatch):
    system, schedule, t_out, _ = small
    monkeypatch.setattr(_prepare, "SINK_BYTES", 8 * system.n_state * 4)   # 4 rows a block
    got: list = []

    def sink(i0, states):
        if len(got) == 2:
            raise KeyboardInterrupt
        got.append((i0, states.copy()))

    with pytest.raises(SolveInterrupted) as exc:
        solve(system, schedule, t_out, backend="expm", sink=sink)
    assert exc.value.n_done == 8 and [i0 for i0, _ in got] == [0, 4]
    full = solve(system, schedule, t_out, backend="expm").states
    np.testing.assert_array_equal(np.concatenate([s for _, s in got]), full[:8])


# ------------------------------------------------------------ numba's choice
def test_numba_auto_picks_exponentials_for_tight_tolerances(small):
    """Default rtol: esdirk3. rtol 1e-9 on a coarse grid: the exponentials, recorded as
    such, with their accuracy; the same through simulate() and in batches."""
    system, schedule, t_out, ref = small
    default = solve(system, schedule, t_out, backend="numba")
    assert default.options.method == "esdirk3"
    tight = solve(system, schedule, t_out, SolverOptions(rtol=1e-9), backend="numba")
    assert tight.options.method == "expm" and tight.stats.factorizations == 5
    assert _relative_error(tight.states, ref, system.n_spinal) < 1e-9
    named = solve(system, schedule, t_out, SolverOptions(rtol=1e-9, method="esdirk3"),
                  backend="numba")
    assert named.options.method == "esdirk3" and named.stats.steps > 100
    batch = solve_batch([system], schedule, t_out, SolverOptions(rtol=1e-9), backend="numba")
    assert batch.options.method == "expm"
    np.testing.assert_array_equal(batch.values[0], tight.states)
    ds = simulate(SMALL, rtol=1e-9)
    assert ds.attrs["solver_factorizations"] == 5 and ds.attrs["solver_rejected"] == 0


def test_numba_auto_keeps_esdirk3_where_exponentials_cost_more(small):
    from csfmodel.solvers.numba_backend import EXPM_MAX_STATES, auto_method

    system, schedule, t_out, _ = small
    numba = get_backend("numba")
    tight = numba.resolve(SolverOptions(rtol=1e-9))
    assert tight.method == "auto"
    assert auto_method(tight, system.n_state, [schedule], t_out) == "expm"
    # a fine grid; fixed steps (convergence studies); many distinct step lengths
    assert auto_method(tight, EXPM_MAX_STATES + 1, [schedule], t_out) == "esdirk3"
    fixed = numba.resolve(SolverOptions(rtol=1e-9, adaptive=False, max_step=5.0))
    assert auto_method(fixed, system.n_state, [schedule], t_out) == "esdirk3"
    ragged = np.sort(np.random.default_rng(0).uniform(0, schedule.t_end, 50))
    assert auto_method(tight, 217, [schedule], ragged) == "esdirk3"     # 5 mm: 50 lengths
    assert auto_method(tight, 217, [schedule], t_out) == "expm"        # 5 mm: 5 lengths
    loose = numba.resolve(SolverOptions(rtol=1e-6))
    assert auto_method(loose, system.n_state, [schedule], t_out) == "esdirk3"
