"""The JAX backend: agreement with the reference, mass balance, order in dt, batches,
dense output, structured solves against dense algebra."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from csfmodel.api import prepare, simulate
from csfmodel.errors import ScenarioError
from csfmodel.solvers import SolveInterrupted, SolverOptions, get_backend, solve, solve_batch
from csfmodel.solvers._prepare import stack_systems
from csfmodel.solvers.reference import solve as reference_solve

jax = pytest.importorskip("jax")

from csfmodel.solvers import jax_backend  # noqa: E402


def _jax(system, schedule, t_out, backend=None, **options):
    """Solution of the jax backend through the registry."""
    return solve(system, schedule, t_out, SolverOptions(**options),
                 backend=backend or "jax")

SIM = {"duration": "5 h", "output_interval": "10 min", "resolution": "2 cm"}

SCENARIOS = {
    "it_bolus": [{"route": "intrathecal", "type": "bolus", "site": "L3", "amount": "0.5 mg",
                  "volume": "2 mL", "injection_rate": "4 mL/min", "time": "20 min"}],
    "it_program": [{"route": "intrathecal", "type": "infusion", "site": "T10",
                    "program": [{"at": "0 h", "rate": "0.4 mg/day"},
                                {"at": "1.5 h", "rate": "1.2 mg/day"},
                                {"at": "3.5 h", "rate": "0.6 mg/day"}]}],
    "patient_bolus": [
        {"route": "intrathecal", "type": "infusion", "site": "T10", "rate": "1 mg/day"},
        {"route": "intrathecal", "type": "patient_bolus", "site": "T10", "amount": "0.05 mg",
         "volume": "20 uL", "lockout": "1 h", "max_per_day": 4,
         "requests": ["30 min", "1 h", "1.7 h", "3 h"]}],
    "oral": [{"route": "oral", "type": "bolus", "amount": "30 mg", "formulation": "immediate",
              "interval": "2 h", "count": 2},
             {"route": "oral", "type": "bolus", "amount": "30 mg", "formulation": "controlled",
              "time": "1 h"}],
    "iv": [{"route": "iv", "type": "bolus", "amount": "5 mg", "time": "15 min"},
           {"route": "iv", "type": "infusion", "rate": "24 mg/day", "start": "1 h",
            "duration": "2 h"}],
}

COMPARED = ("csf_concentration", "cord_concentration", "brain_concentration",
            "plasma_concentration", "cisternal_csf_concentration")


def _scenario(name: str, **sim) -> dict:
    return {"simulation": dict(SIM, **sim), "dose": SCENARIOS[name]}


def _peak_relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def references():
    return {name: simulate(_scenario(name), solver="reference") for name in SCENARIOS}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_agrees_with_reference(name, references):
    ref = references[name]
    ds = simulate(_scenario(name), solver="jax")
    assert ds.attrs["solver"] == "jax"
    np.testing.assert_array_equal(ds.time.values, ref.time.values)
    errors = {v: _peak_relative(ds[v].values, ref[v].values) for v in COMPARED}
    assert max(errors.values()) < 1e-3, errors
    # met with a wide margin at the default tolerance, not by luck
    assert max(errors.values()) < 3e-4, errors
    dosed = ds.amount_dosed.values
    balance = np.abs(dosed - ds.amount_present.values - ds.amount_eliminated.values).max()
    assert dosed[-1] > 0 and balance <= 1e-9 * dosed.max()


@pytest.mark.parametrize("name", ["it_bolus", "patient_bolus", "iv"])
def test_mass_balance_is_round_off_even_at_loose_tolerance(name):
    """Conservation comes from the method (1^T (I - cJ) = 1^T), not from accuracy."""
    prep = prepare(_scenario(name))
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    sol = _jax(model.system, schedule, t_out, rtol=1e-2)
    states = sol.states
    dosed = schedule.dosed(t_out)
    assert np.abs(states.sum(axis=1) - dosed).max() <= 1e-12 * dosed.max()
    assert states[:, -1].max() > 0.01 * dosed[-1]        # the eliminated account moved
    # the loose tolerance really took coarse steps, across output times (dense output),
    # so the check above means something (outputs every 10 min)
    assert sol.stats.max_step_min > 30.0


def test_output_at_event_time_is_taken_after_the_jump():
    """A bolus at an output time shows in that row (as in the reference backend)."""
    prep = prepare(_scenario("iv"))
    model, schedule = prep.model, prep.schedule
    t_out = np.arange(0.0, 301.0, 5.0)
    states = _jax(model.system, schedule, t_out).states
    plasma = model.system.index("plasma")
    k = 3
    assert t_out[k] == 15.0
    assert states[k - 1, plasma] == pytest.approx(0.0, abs=1e-12)
    assert states[k, plasma] == pytest.approx(5000.0, rel=1e-12)   # 5 mg, ug


def test_error_control_tightens_with_rtol():
    """Smaller rtol -> smaller error against the reference; the estimate stays <= 1."""
    prep = prepare(_scenario("it_bolus"))
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    ref = reference_solve(model.system, schedule, t_out, rtol=1e-12)
    n = model.system.n_spinal
    vol = model.system.volume[:n]
    errors, steps = [], []
    for rtol in (1e-3, 1e-5, 1e-7):
        sol = _jax(model.system, schedule, t_out, rtol=rtol)
        y = sol.states
        errors.append(_peak_relative(y[:, :n] / vol, ref[:, :n] / vol))
        steps.append(sol.stats.steps)
        assert 0 < sol.stats.max_error_estimate <= 1.0
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-5
    assert steps[0] < steps[1] < steps[2]


ORDER_CASES = {
    # smooth inputs: IT infusion and an IV bolus
    "infusion_iv": ([{"route": "intrathecal", "type": "infusion", "site": "T10",
                      "rate": "1 mg/day"},
                     {"route": "iv", "type": "bolus", "amount": "2 mg", "time": "30 min"}],
                    (5.0, 2.5, 1.25, 0.625), 2e-6),
    # a 2 mL lumbar bolus: stiff transient, order 2 once the steps resolve it
    "it_bolus": (SCENARIOS["it_bolus"], (1.25, 0.625, 0.3125), 2e-4),
}


@pytest.mark.parametrize("case", list(ORDER_CASES))
def test_second_order_in_dt(case):
    """Fixed steps h, h/2, ...: the error against the reference falls by 4 each halving."""
    doses, steps, finest = ORDER_CASES[case]
    # the bolus spreads over 20 min: its stages (multiples of 20/16 = 1.25 min) are on
    # every step grid below
    scen = {"simulation": {"duration": "3 h", "output_interval": "30 min", "resolution": "2 cm"},
            "patient": {"injection_mixing_time": "20 min"}, "dose": doses}
    prep = prepare(scen)
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    ref = reference_solve(model.system, schedule, t_out, rtol=1e-12)
    errs = []
    for h in steps:                 # every step divides the gaps between events/outputs
        sol = _jax(model.system, schedule, t_out, adaptive=False, max_step=h, method="trbdf2")
        y = sol.states
        assert sol.stats.steps == round(180 / h)
        errs.append(np.abs(y - ref).max() / np.abs(ref).max())
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all((orders > 1.9) & (orders < 2.1)), (errs, orders)
    assert errs[-1] < finest            # converges to the reference solution


def _batch_members():
    """Three parameter sets on the same grid: two drugs, a lower dispersion."""
    doses = SCENARIOS["it_bolus"]
    variants = [{}, {"drug": {"name": "hydromorphone"}},
                {"patient": {"dispersion": "0.5 cm^2/min"}}]
    out = []
    for v in variants:
        prep = prepare({"simulation": SIM, "dose": doses, **v})
        model, schedule, t_out = prep.model, prep.schedule, prep.t_out
        out.append((model.system, schedule, t_out))
    return out


def test_batch_equals_single_runs():
    members = _batch_members()
    t_out = members[0][2]
    systems = [m[0] for m in members]
    # different schedules per member: the third is also given an IV bolus at 1 h
    iv_schedule = prepare({"simulation": SIM, "dose": SCENARIOS["it_bolus"] + [
        {"route": "iv", "type": "bolus", "amount": "2 mg", "time": "1 h"}]}).schedule
    schedules = [members[0][1], members[1][1], iv_schedule]
    sol = solve_batch(systems, schedules, t_out, backend="jax")
    batch, stats = sol.values, sol.stats
    assert batch.shape == (3, len(t_out), systems[0].n_state)
    singles = [_jax(s, sch, t_out).states for s, sch in zip(systems, schedules)]
    for b, single in zip(batch, singles):
        np.testing.assert_allclose(b, single, rtol=0, atol=1e-9 * np.abs(single).max())
    # members really differ (drug, dispersion, schedule) and kept their own step sizes
    assert _peak_relative(batch[1], batch[0]) > 0.05
    assert _peak_relative(batch[2], batch[0]) > 0.05
    assert len({s.steps for s in stats}) > 1
    # each member also agrees with the reference
    for s, sch, b in zip(systems, schedules, batch):
        ref = reference_solve(s, sch, t_out)
        assert _peak_relative(b, ref) < 1e-3


def test_batch_shared_schedule_stacked_arrays_observables_and_chunks():
    members = _batch_members()
    t_out = members[0][2]
    systems = [m[0] for m in members]
    schedule = members[0][1]
    full = solve_batch(systems, schedule, t_out, backend="jax").values
    stacked = stack_systems(systems)
    assert stacked["diag"].shape == (3, systems[0].n_spinal)
    brain, plasma = systems[0].index("brain"), systems[0].index("plasma")
    obs = np.zeros((2, systems[0].n_state))
    obs[0, brain] = 1.0
    obs[1, plasma] = 1.0
    reduced = get_backend("jax", batch_size=2).solve_batch(stacked, schedule, t_out,
                                                           observables=obs).values
    assert reduced.shape == (3, len(t_out), 2)
    np.testing.assert_allclose(reduced, full[:, :, [brain, plasma]], rtol=0,
                               atol=1e-9 * np.abs(full[:, :, [brain, plasma]]).max())
    # CSR observables (ptr, idx, weights), as the numba backend takes them
    csr = (np.array([0, 1, 2]), np.array([brain, plasma]), np.array([1.0, 1.0]))
    again = solve_batch(stacked, schedule, t_out, observables=csr, backend="jax").values
    np.testing.assert_allclose(again, reduced, rtol=0, atol=1e-9 * np.abs(reduced).max())


def test_interrupt_returns_completed_rows(monkeypatch):
    """Ctrl-C between blocks: the rows finished so far come back, and they are right."""
    prep = prepare(_scenario("it_bolus"))
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    small_blocks = get_backend("jax", block_size=8)
    full = _jax(model.system, schedule, t_out, backend=small_blocks).states
    real = jax_backend._block_function
    calls = {"n": 0, "at": 3}

    def flaky(*args, **kw):
        fn = real(*args, **kw)

        def wrapped(*a):
            calls["n"] += 1
            if calls["n"] == calls["at"]:
                raise KeyboardInterrupt
            return fn(*a)
        return wrapped

    monkeypatch.setattr(jax_backend, "_block_function", flaky)
    with pytest.raises(SolveInterrupted) as exc:
        _jax(model.system, schedule, t_out, backend=small_blocks)
    part = exc.value.states
    # two blocks of 8 output rows done: outputs 0 ... 150 min
    assert part.shape == (16, model.system.n_state)
    np.testing.assert_array_equal(part, full[: len(part)])
    calls.update(n=0, at=1)           # interrupted before anything was computed
    with pytest.raises(SolveInterrupted) as exc:
        _jax(model.system, schedule, t_out, backend=small_blocks)
    assert exc.value.states.shape == (0, model.system.n_state)


def test_bad_options_are_refused():
    prep = prepare(_scenario("iv"))
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    with pytest.raises(ScenarioError):
        _jax(model.system, schedule, t_out, rtol=2.0)
    with pytest.raises(ValueError, match="max_step"):
        _jax(model.system, schedule, t_out, adaptive=False)
    with pytest.raises(ValueError, match="t_out"):
        _jax(model.system, schedule, t_out + 1.0)
    with pytest.raises(ScenarioError, match="block_size"):
        get_backend("jax", block_size=0)
    with pytest.raises(ScenarioError, match="block_size, batch_size"):
        get_backend("jax", blocksize=8)
    other = prepare({"simulation": dict(SIM, resolution="1 cm"),
                     "dose": SCENARIOS["iv"]}).model
    with pytest.raises(ValueError, match="grid size"):
        solve_batch([model.system, other.system], schedule, t_out, backend="jax")


def test_import_csfmodel_does_not_import_jax():
    code = ("import sys, csfmodel, csfmodel.solvers; "
            "assert 'jax' not in sys.modules; "
            "csfmodel.solvers.get_backend('jax'); assert 'jax' in sys.modules; "
            "import jax; assert jax.config.jax_enable_x64")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_structured_solve_matches_dense():
    """The jax kernels' factorization, shifted solve and J y against dense algebra (the
    numba kernels have the same test in test_numba_backend.py)."""
    model = prepare({"simulation": dict(SIM, resolution="2 cm"),
                     "dose": SCENARIOS["it_bolus"]}).model
    s = model.system
    nst = s.n_state
    J = s.to_dense()
    cols = tuple(int(k) for k in np.flatnonzero(np.any(s.border_cols != 0, axis=0)))
    rows = tuple(int(k) for k in np.flatnonzero(np.any(s.border_rows != 0, axis=1)))
    p = {k: np.asarray(getattr(s, k)) for k in ("lower", "diag", "upper", "cord_diag",
                                                 "csf_to_cord", "cord_to_csf", "block",
                                                 "volume")}
    p["border_rows"] = s.border_rows[list(rows)]
    p["border_cols"] = s.border_cols[:, list(cols)]
    p = {k: jax.numpy.asarray(v) for k, v in p.items()}
    sizes = (s.n_spinal, s.n_cord, s.block.shape[0])
    pat = (cols, rows)
    rng = np.random.default_rng(1)
    y = rng.standard_normal(nst)
    np.testing.assert_allclose(np.asarray(jax_backend._matvec(p, jax.numpy.asarray(y), pat)),
                               J @ y, rtol=0,
                               atol=1e-12 * np.abs(J @ y).max())
    for c in (1e-3, 0.3, 40.0):
        r = rng.standard_normal(nst)
        expected = np.linalg.solve(np.eye(nst) - c * J, r)
        f, x0 = jax_backend._factor(p, c, pat, jax.numpy.asarray(r), sizes)
        x1 = jax_backend._solve(f, jax.numpy.asarray(r), sizes, pat)
        for x in (np.asarray(x0), np.asarray(x1)):
            np.testing.assert_allclose(x, expected, rtol=1e-11,
                                       atol=1e-11 * np.abs(expected).max())
            # 1^T (I - cJ) = 1^T: the solve conserves the total exactly (to round-off)
            assert x.sum() == pytest.approx(r.sum(), rel=1e-12, abs=1e-12 * np.abs(r).sum())


def test_steps_span_output_times():
    """Dense output: steps are not cut at output times, so their number hardly depends
    on how many outputs are asked for, and the outputs inside steps are accurate."""
    scen = {"simulation": {"duration": "24 h", "output_interval": "1 min",
                           "resolution": "2 cm"}, "dose": SCENARIOS["patient_bolus"]}
    prep = prepare(scen)
    model, schedule, t_fine = prep.model, prep.schedule, prep.t_out
    t_coarse = t_fine[::60]
    fine = _jax(model.system, schedule, t_fine)
    coarse = _jax(model.system, schedule, t_coarse)
    assert fine.stats.steps <= 1.2 * coarse.stats.steps
    assert fine.stats.max_step_min > 30.0          # many outputs inside one step
    np.testing.assert_allclose(fine.states[::60], coarse.states, rtol=0,
                               atol=1e-4 * np.abs(coarse.states).max())
    ref = reference_solve(model.system, schedule, t_fine)
    assert _peak_relative(fine.states, ref) < 3e-4


def test_block_size_does_not_change_the_solution():
    """The integrator (and the last step's interpolant) is carried from block to block."""
    prep = prepare(_scenario("patient_bolus"))
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    a = _jax(model.system, schedule, t_out, backend=get_backend("jax", block_size=7))
    b = _jax(model.system, schedule, t_out)
    np.testing.assert_allclose(a.states, b.states, rtol=0,
                               atol=1e-13 * np.abs(b.states).max())
    assert a.stats == b.stats


@pytest.mark.parametrize("method", ["trbdf2", "esdirk3"])
def test_both_methods_agree_with_reference(method, references):
    ds = simulate(_scenario("patient_bolus"), solver="jax", method=method)
    ref = references["patient_bolus"]
    errors = {v: _peak_relative(ds[v].values, ref[v].values) for v in COMPARED}
    assert max(errors.values()) < 3e-4, errors
    assert ds.attrs["solver_rtol"] == jax_backend.DEFAULT_RTOL


def test_sweep_with_the_jax_backend():
    """``run_batch(..., backend="jax")``: the sweep reaches jax through the registry
    (per-member observables, summaries on the host) and agrees with numba."""
    pytest.importorskip("numba")
    from csfmodel import sweep

    base = {"simulation": {"duration": "8 h", "output_interval": "15 min",
                           "resolution": "2 cm"},
            "dose": [{"route": "intrathecal", "type": "infusion", "site": "T10",
                      "rate": "1 mg/day"},
                     {"route": "oral", "type": "bolus", "amount": "10 mg", "time": "2 h"}]}
    params = {"patient.dispersion": ["0.2 cm^2/min", "0.8 cm^2/min"],
              "dose[0].rate": ["0.5 mg/day", "2 mg/day"]}
    variables = ("cord_concentration", "csf_concentration", "plasma_concentration")
    a = sweep.run_batch(base, params, variables=variables, backend="jax")
    b = sweep.run_batch(base, params, variables=variables, backend="numba")
    assert a.attrs["solver"] == "jax" and b.attrs["solver"] == "numba"
    for v in variables:
        assert _peak_relative(a[v].values, b[v].values) < 1e-3, v
    s = sweep.run_batch(base, params, variables=variables, summary=True,
                        backend=get_backend("jax", batch_size=1))
    np.testing.assert_allclose(s["plasma_concentration_max"].values,
                               a["plasma_concentration"].values.max(axis=1), rtol=1e-12)
    assert np.all(s.solver_max_error_estimate <= 1.0)
