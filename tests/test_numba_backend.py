"""The numba backend against the scipy reference, mass balance, order of accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from csfmodel.api import prepare, simulate
from csfmodel.solvers import SolverOptions, solve, solve_batch
from csfmodel.solvers._prepare import border_pattern
from csfmodel.solvers.reference import solve as reference_solve

pytest.importorskip("numba")

from csfmodel.solvers import _numba_kernels as kernels  # noqa: E402
from csfmodel.solvers import numba_backend  # noqa: E402


def _numba(system, schedule, t_out, **options) -> np.ndarray:
    """States from the numba backend through the registry."""
    return solve(system, schedule, t_out, SolverOptions(**options), backend="numba").states

SIM = {"duration": "18 h", "output_interval": "10 min", "resolution": "1 cm"}

SCENARIOS = {
    "it_bolus": [{"route": "intrathecal", "type": "bolus", "site": "L3", "amount": "0.3 mg",
                  "volume": "2 mL", "time": "30 min"}],
    "it_program": [{"route": "intrathecal", "type": "infusion", "site": "T10",
                    "program": [{"at": "0 h", "rate": "0.4 mg/day"},
                                {"at": "7 h", "rate": "1.2 mg/day"},
                                {"at": "13 h", "rate": "0.6 mg/day"}]}],
    "patient_bolus": [
        {"route": "intrathecal", "type": "infusion", "site": "T10", "rate": "1 mg/day"},
        {"route": "intrathecal", "type": "patient_bolus", "site": "T10", "amount": "0.05 mg",
         "lockout": "3 h", "max_per_day": 4,
         "requests": ["2 h", "3 h", "6 h", "9.5 h", "14 h"]}],
    "oral": [{"route": "oral", "type": "bolus", "amount": "30 mg", "formulation": "immediate",
              "interval": "6 h", "count": 3},
             {"route": "oral", "type": "bolus", "amount": "30 mg", "formulation": "controlled",
              "time": "1 h"}],
    "iv": [{"route": "iv", "type": "bolus", "amount": "5 mg", "time": "15 min"},
           {"route": "iv", "type": "infusion", "rate": "24 mg/day", "start": "4 h",
            "duration": "8 h"}],
}


def _scenario(name: str, sim: dict | None = None) -> dict:
    return {"simulation": dict(SIM, **(sim or {})), "dose": SCENARIOS[name]}


def _relative_errors(a, b) -> dict[str, float]:
    """max |a - b| / max |b| for every float variable of two result Datasets."""
    out = {}
    for v in b.data_vars:
        if b[v].dtype.kind != "f":
            continue
        peak = float(np.abs(b[v]).max())
        if peak > 0.0:
            out[v] = float(np.abs(a[v] - b[v]).max()) / peak
        else:
            out[v] = float(np.abs(a[v]).max())
    return out


@pytest.fixture(scope="module")
def references():
    """Reference results (scipy Radau, rtol 1e-10) of every test scenario."""
    return {name: simulate(_scenario(name), solver="reference") for name in SCENARIOS}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_agrees_with_reference(name, references):
    ds = simulate(_scenario(name), solver="numba")
    errors = _relative_errors(ds, references[name])
    assert max(errors.values()) < 1e-3, errors
    # the tolerance is met with a margin, not by luck
    assert max(errors.values()) < 5e-4, errors


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_mass_balance(name):
    prep = prepare(_scenario(name))
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    states = _numba(model.system, schedule, t_out)
    dosed = schedule.dosed(t_out)
    assert dosed[-1] > 0
    assert np.max(np.abs(states.sum(axis=1) - dosed)) <= 1e-9 * dosed.max()
    assert np.all(states[:, -1] >= -1e-12 * dosed.max())  # eliminated never decreases below 0
    assert np.all(np.diff(states[:, -1]) >= -1e-9 * dosed.max())


def test_output_at_event_is_after_the_jump():
    prep = prepare(_scenario("iv", {"output_interval": "5 min"}))
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    states = _numba(model.system, schedule, t_out)
    k = int(np.flatnonzero(np.isclose(t_out, 15.0))[0])
    assert states[k].sum() == pytest.approx(5000.0, rel=1e-12)   # 5 mg bolus at 15 min
    assert states[k - 1].sum() == 0.0


def test_structured_solve_matches_dense():
    """The numba kernels' factorization, shifted solve and J y + u against dense algebra
    (the jax kernels have the same test in test_jax_backend.py)."""
    model = prepare(_scenario("it_bolus", {"resolution": "2 cm"})).model
    s = model.system
    act, ptr, idx = border_pattern(s.border_rows, s.border_cols)
    n, mc, m = s.n_spinal, s.n_cord, s.block.shape[0]
    ns, nst = n + mc, s.n_state
    rng = np.random.default_rng(1)
    J = s.to_dense()
    for c in (1e-3, 0.3, 40.0):
        arrs = [np.empty(n), np.empty(n), np.empty(n), np.empty(mc), np.empty(mc), np.empty(mc),
                np.empty((ns, len(act))), np.empty((m, m))]
        kernels._factor_shifted(c, s.lower, s.diag, s.upper, s.cord_diag, s.csf_to_cord,
                                s.cord_to_csf, s.border_rows, s.border_cols, s.block, act, ptr,
                                idx, *arrs, np.empty(nst), np.empty(nst), np.empty((m, m)))
        r = rng.standard_normal(nst)
        x = np.empty(nst)
        kernels._solve_shifted(c, s.border_rows, act, ptr, idx, *arrs, r, x, np.empty(m),
                               np.empty(m))
        expected = np.linalg.solve(np.eye(nst) - c * J, r)
        assert np.allclose(x, expected, rtol=1e-11, atol=1e-11 * np.abs(expected).max())
        # 1^T (I - cJ) = 1^T: the solve conserves the total exactly (to round-off)
        assert x.sum() == pytest.approx(r.sum(), rel=1e-12, abs=1e-12 * np.abs(r).sum())
        # two and three right-hand sides at once (the sensitivity kernel's groups): each
        # the single solve's result to the bit
        r2 = rng.standard_normal(nst)
        x2 = np.empty(nst)
        kernels._solve_shifted(c, s.border_rows, act, ptr, idx, *arrs, r2, x2, np.empty(m),
                               np.empty(m))
        xa, xb = np.empty(nst), np.empty(nst)
        kernels._solve_shifted2(c, s.border_rows, act, ptr, idx, *arrs, r, xa, r2, xb,
                                np.empty(m), np.empty(m), np.empty(m), np.empty(m))
        np.testing.assert_array_equal(xa, x)
        np.testing.assert_array_equal(xb, x2)
        r3 = rng.standard_normal(nst)
        x3 = np.empty(nst)
        kernels._solve_shifted(c, s.border_rows, act, ptr, idx, *arrs, r3, x3, np.empty(m),
                               np.empty(m))
        xa, xb, xc = np.empty(nst), np.empty(nst), np.empty(nst)
        kernels._solve_shifted3(c, s.border_rows, act, ptr, idx, *arrs, r, xa, r2, xb, r3, xc,
                                *(np.empty(m) for _ in range(6)))
        for got, single in ((xa, x), (xb, x2), (xc, x3)):
            np.testing.assert_array_equal(got, single)
    y = rng.standard_normal(nst)
    u = rng.standard_normal(nst)
    out = np.empty(nst)
    kernels._jacobian_times(s.lower, s.diag, s.upper, s.cord_diag, s.csf_to_cord, s.cord_to_csf,
                    s.border_rows, s.border_cols, s.block, act, ptr, idx, y, u, out)
    assert np.allclose(out, J @ y + u, rtol=1e-12, atol=1e-12 * np.abs(J @ y).max())


def _fixed_step_error(model, schedule, t_out, ref, h, method):
    y = _numba(model.system, schedule, t_out, adaptive=False, max_step=h, method=method)
    return np.max(np.abs(y - ref)) / np.max(np.abs(ref))


@pytest.mark.parametrize("method,order", [("trbdf2", 2), ("esdirk3", 3)])
@pytest.mark.parametrize("name", ["it_program", "iv"])
def test_order_in_dt(name, method, order):
    """Fixed steps h, h/2, h/4, h/8: the error against the reference falls as h^order."""
    prep = prepare(
        _scenario(name, {"duration": "12 h", "output_interval": "1 h", "resolution": "2 cm"}))
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    ref = reference_solve(model.system, schedule, t_out, rtol=1e-13)
    errs = [_fixed_step_error(model, schedule, t_out, ref, h, method)
            for h in (8.0, 4.0, 2.0, 1.0)]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(orders - order) < 0.2), (errs, orders)


def test_tolerance_controls_the_error(references):
    """A tighter rtol gives a smaller error, and the reported estimate stays <= 1."""
    prep = prepare(_scenario("it_bolus"))
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    ref = reference_solve(model.system, schedule, t_out)
    errs = []
    for rtol in (1e-3, 1e-4, 1e-5, 1e-6):
        sol = solve(model.system, schedule, t_out, SolverOptions(rtol=rtol), backend="numba")
        errs.append(np.max(np.abs(sol.states - ref)) / np.max(np.abs(ref)))
        assert sol.stats.max_error_estimate <= 1.0
        assert sol.stats.steps > 0 and sol.stats.factorizations <= sol.stats.steps
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 1e-5


def test_no_ringing_after_bolus():
    """Point bolus at T10: the concentration at the tip decays monotonically, no
    negative concentrations anywhere (default adaptive stepping)."""
    prep = prepare(
        {"simulation": {"duration": "3 h", "output_interval": "1 min", "resolution": "5 mm"},
         "dose": [{"route": "intrathecal", "type": "patient_bolus", "site": "T10",
                   "amount": "0.1 mg", "lockout": "1 h", "max_per_day": 4,
                   "requests": ["0 h"]}]})
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    y = _numba(model.system, schedule, t_out)
    csf = y[:, :model.system.n_spinal] / model.system.volume[:model.system.n_spinal]
    tip = int(np.argmax(csf[0]))
    assert np.all(np.diff(csf[:, tip]) < 0)
    # round-off-level undershoot only: far from the tip the profile underflows to ~0
    assert csf.min() >= -1e-8 * csf.max()


def test_batch_equals_single_runs():
    prep = prepare(_scenario("patient_bolus"))
    sc, schedule, t_out = prep.scenario, prep.schedule, prep.t_out
    from dataclasses import replace

    from csfmodel.model import build_model

    systems = [build_model(replace(sc.anatomy, dispersion=sc.anatomy.dispersion * f),
                           sc.drug, sc.simulation.resolution).system for f in (0.5, 1.0, 2.0)]
    batch = solve_batch(systems, [schedule], t_out, backend="numba").values
    for b, s in enumerate(systems):
        single = _numba(s, schedule, t_out)
        assert np.allclose(batch[b], single, rtol=0, atol=1e-12 * np.abs(single).max())
    assert not np.allclose(batch[0], batch[2])


def test_dense_output_after_rate_change():
    """A program step while the steps are long (day 2, 31 h): the outputs inside the
    next step must not carry the fast transient of the new input into the cubic
    interpolant (this gave a 1e-2 error before the interpolant was checked against
    the first stage)."""
    scen = {"simulation": {"duration": "36 h", "output_interval": "10 min",
                           "resolution": "5 mm"},
            "dose": [{"route": "intrathecal", "type": "infusion", "site": "T10",
                      "program": [{"at": "0 h", "rate": "0.8 mg/day"},
                                  {"at": "7 h", "rate": "1.0 mg/day"},
                                  {"at": "22 h", "rate": "0.8 mg/day"}]},
                     {"route": "intrathecal", "type": "patient_bolus", "site": "T10",
                      "amount": "0.05 mg", "volume": "20 uL", "lockout": "3 h",
                      "max_per_day": 4, "daily_requests": ["8 h", "13 h", "17 h", "21 h"]}]}
    ref = simulate(scen, solver="reference")
    ds = simulate(scen, solver="numba", rtol=5e-5)
    errors = _relative_errors(ds, ref)
    assert max(errors.values()) < 5e-4, errors


def test_simulate_reports_the_error_control():
    """The Dataset says what the integrator did: tolerance, steps, largest estimate."""
    ds = simulate(_scenario("iv"))
    assert ds.attrs["solver"] == "numba"
    assert ds.attrs["solver_rtol"] == numba_backend.DEFAULT_RTOL
    assert ds.attrs["solver_steps"] > 10
    assert 0.0 < ds.attrs["solver_max_error_estimate"] <= 1.0


def test_windows_do_not_change_the_solution(monkeypatch):
    """Runs are done one simulated week per kernel call; one call for all gives the
    same solution to within the tolerance."""
    scen = _scenario("patient_bolus", {"duration": "15 day", "output_interval": "1 h"})
    prep = prepare(scen)
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    daily = _numba(model.system, schedule, t_out)
    monkeypatch.setattr(numba_backend, "WINDOW_MIN", 1e12)
    whole = _numba(model.system, schedule, t_out)
    assert np.max(np.abs(daily - whole)) < 1e-4 * np.max(np.abs(whole))
    assert np.max(np.abs(daily.sum(axis=1) - whole.sum(axis=1))) < 1e-9 * whole.sum(axis=1).max()


def test_ctrl_c_keeps_finished_windows(monkeypatch):
    """Ctrl-C during the third kernel call (a simulated week each): the outputs of the
    first two come back, equal to those of an uninterrupted run."""
    from csfmodel.api import SimulationInterrupted

    real = kernels.integrate
    calls = {"n": 0}

    def flaky(*args):
        calls["n"] += 1
        real(*args)
        if calls["n"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(kernels, "integrate", flaky)
    scen = _scenario("iv", {"duration": "30 day", "output_interval": "6 h"})
    with pytest.raises(SimulationInterrupted) as exc:
        simulate(scen, solver="numba")
    part = exc.value.partial
    monkeypatch.setattr(kernels, "integrate", real)
    full = simulate(scen, solver="numba")
    n = part.sizes["time"]
    assert 2 * 28 <= n < 3 * 28 + 1            # two weeks of 6-hourly outputs
    np.testing.assert_array_equal(part.time.values, full.time.values[:n])
    np.testing.assert_allclose(part.plasma_concentration.values,
                               full.plasma_concentration.values[:n], rtol=1e-12)
