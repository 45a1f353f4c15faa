"""The JAX backend: agreement with the reference, mass balance, order in dt, batches."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from csfmodel.api import prepare, simulate
from csfmodel.errors import ScenarioError
from csfmodel.solvers import SolveInterrupted
from csfmodel.solvers.reference import solve as reference_solve

pytest.importorskip("jax")

from csfmodel.solvers import jax_backend  # noqa: E402

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
    _, model, schedule, _, t_out = prepare(_scenario(name))
    stats: dict = {}
    states = jax_backend.solve(model.system, schedule, t_out, rtol=1e-2, stats=stats)
    dosed = schedule.dosed(t_out)
    assert np.abs(states.sum(axis=1) - dosed).max() <= 1e-12 * dosed.max()
    assert states[:, -1].max() > 0.01 * dosed[-1]        # the eliminated account moved
    # the loose tolerance really took coarse steps (so the check above means something)
    assert stats["max_step_min"] == pytest.approx(10.0)


def test_output_at_event_time_is_taken_after_the_jump():
    """A bolus at an output time shows in that row (as in the reference backend)."""
    _, model, schedule, _, _ = prepare(_scenario("iv"))
    t_out = np.arange(0.0, 301.0, 5.0)
    states = jax_backend.solve(model.system, schedule, t_out)
    plasma = model.system.index("plasma")
    k = 3
    assert t_out[k] == 15.0
    assert states[k - 1, plasma] == pytest.approx(0.0, abs=1e-12)
    assert states[k, plasma] == pytest.approx(5000.0, rel=1e-12)   # 5 mg, ug


def test_error_control_tightens_with_rtol():
    """Smaller rtol -> smaller error against the reference; the estimate stays <= 1."""
    _, model, schedule, _, t_out = prepare(_scenario("it_bolus"))
    ref = reference_solve(model.system, schedule, t_out, rtol=1e-12)
    n = model.system.n_spinal
    vol = model.system.volume[:n]
    errors, steps = [], []
    for rtol in (1e-3, 1e-5, 1e-7):
        stats: dict = {}
        y = jax_backend.solve(model.system, schedule, t_out, rtol=rtol, stats=stats)
        errors.append(_peak_relative(y[:, :n] / vol, ref[:, :n] / vol))
        steps.append(stats["steps"])
        assert 0 < stats["max_error_estimate"] <= 1.0
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
    scen = {"simulation": {"duration": "3 h", "output_interval": "30 min", "resolution": "2 cm"},
            "dose": doses}
    _, model, schedule, _, t_out = prepare(scen)
    ref = reference_solve(model.system, schedule, t_out, rtol=1e-12)
    errs = []
    for h in steps:                 # every step divides the gaps between events/outputs
        stats: dict = {}
        y = jax_backend.solve(model.system, schedule, t_out, adaptive=False, max_step=h,
                              stats=stats)
        assert stats["steps"] == round(180 / h)
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
        _, model, schedule, _, t_out = prepare({"simulation": SIM, "dose": doses, **v})
        out.append((model.system, schedule, t_out))
    return out


def test_batch_equals_single_runs():
    members = _batch_members()
    t_out = members[0][2]
    systems = [m[0] for m in members]
    # different schedules per member: the third is also given an IV bolus at 1 h
    _, _, iv_schedule, _, _ = prepare({"simulation": SIM, "dose": SCENARIOS["it_bolus"] + [
        {"route": "iv", "type": "bolus", "amount": "2 mg", "time": "1 h"}]})
    schedules = [members[0][1], members[1][1], iv_schedule]
    stats: list = []
    batch = jax_backend.solve_batch(systems, schedules, t_out, stats=stats)
    assert batch.shape == (3, len(t_out), systems[0].n_state)
    singles = [jax_backend.solve(s, sch, t_out) for s, sch in zip(systems, schedules)]
    for b, single in zip(batch, singles):
        np.testing.assert_allclose(b, single, rtol=0, atol=1e-9 * np.abs(single).max())
    # members really differ (drug, dispersion, schedule) and kept their own step sizes
    assert _peak_relative(batch[1], batch[0]) > 0.05
    assert _peak_relative(batch[2], batch[0]) > 0.05
    assert len({s["steps"] for s in stats}) > 1
    # each member also agrees with the reference
    for s, sch, b in zip(systems, schedules, batch):
        ref = reference_solve(s, sch, t_out)
        assert _peak_relative(b, ref) < 1e-3


def test_batch_shared_schedule_stacked_arrays_observables_and_chunks():
    members = _batch_members()
    t_out = members[0][2]
    systems = [m[0] for m in members]
    schedule = members[0][1]
    full = jax_backend.solve_batch(systems, schedule, t_out)
    stacked = jax_backend.stack_systems(systems)
    assert stacked["diag"].shape == (3, systems[0].n_spinal)
    brain, plasma = systems[0].index("brain"), systems[0].index("plasma")
    obs = np.zeros((2, systems[0].n_state))
    obs[0, brain] = 1.0
    obs[1, plasma] = 1.0
    reduced = jax_backend.solve_batch(stacked, schedule, t_out, observables=obs, batch_size=2)
    assert reduced.shape == (3, len(t_out), 2)
    np.testing.assert_allclose(reduced, full[:, :, [brain, plasma]], rtol=0,
                               atol=1e-9 * np.abs(full[:, :, [brain, plasma]]).max())
    # CSR observables (ptr, idx, weights), as the numba backend takes them
    csr = (np.array([0, 1, 2]), np.array([brain, plasma]), np.array([1.0, 1.0]))
    again = jax_backend.solve_batch(stacked, schedule, t_out, observables=csr)
    np.testing.assert_allclose(again, reduced, rtol=0, atol=1e-9 * np.abs(reduced).max())


def test_interrupt_returns_completed_rows(monkeypatch):
    """Ctrl-C between blocks: the rows finished so far come back, and they are right."""
    _, model, schedule, _, t_out = prepare(_scenario("it_bolus"))
    full = jax_backend.solve(model.system, schedule, t_out, block_size=8)
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
        jax_backend.solve(model.system, schedule, t_out, block_size=8)
    part = exc.value.states
    # two blocks of 8 intervals done: outputs 0 ... 150 min (the bolus is at an output time)
    assert part.shape == (16, model.system.n_state)
    np.testing.assert_array_equal(part, full[: len(part)])
    calls.update(n=0, at=1)           # interrupted before anything was computed
    with pytest.raises(SolveInterrupted) as exc:
        jax_backend.solve(model.system, schedule, t_out, block_size=8)
    assert exc.value.states.shape == (0, model.system.n_state)


def test_bad_options_are_refused():
    _, model, schedule, _, t_out = prepare(_scenario("iv"))
    with pytest.raises(ScenarioError):
        jax_backend.solve(model.system, schedule, t_out, rtol=2.0)
    with pytest.raises(ValueError, match="max_step"):
        jax_backend.solve(model.system, schedule, t_out, adaptive=False)
    with pytest.raises(ValueError, match="t_out"):
        jax_backend.solve(model.system, schedule, t_out + 1.0)
    _, other, _, _, _ = prepare({"simulation": dict(SIM, resolution="1 cm"),
                                 "dose": SCENARIOS["iv"]})
    with pytest.raises(ValueError, match="grid size"):
        jax_backend.solve_batch([model.system, other.system], schedule, t_out)


def test_import_csfmodel_does_not_import_jax():
    code = ("import sys, csfmodel, csfmodel.solvers; "
            "assert 'jax' not in sys.modules; "
            "csfmodel.solvers.get_solver('jax'); assert 'jax' in sys.modules; "
            "import jax; assert jax.config.jax_enable_x64")
    subprocess.run([sys.executable, "-c", code], check=True)
