"""Direct steady states against long reference integrations and exact identities."""

from __future__ import annotations

import numpy as np
import pytest

from csfmodel.api import prepare
from csfmodel.dosing import expand
from csfmodel.model import build_schedule
from csfmodel.solvers.reference import solve
from csfmodel.steady_state import input_vector, periodic_steady_state, plateau

DAYS = 8  # slowest mode of the conserved subsystem has t1/2 ~ 7 h: 8 days is > 25 half-lives


def _scenario(doses, days=DAYS, resolution="2 cm"):
    return {"simulation": {"duration": f"{24 * days} h", "resolution": resolution,
                           "output_interval": "60 min"}, "dose": doses}


IT_T10 = {"route": "intrathecal", "type": "infusion", "site": "T10", "rate": "1 mg/day"}
ORAL_CR = {"route": "oral", "type": "bolus", "formulation": "controlled", "amount": "30 mg",
           "interval": "12 h", "count": 2 * DAYS}


@pytest.fixture(scope="module")
def it_long():
    prep = prepare(_scenario([IT_T10]))
    sc, model, sched, t_out = prep.scenario, prep.model, prep.schedule, prep.t_out
    return model, sc, solve(model.system, sched, t_out[-1:], rtol=1e-10)[-1]


def test_plateau_matches_long_integration(it_long):
    model, sc, y_end = it_long
    u = input_vector(model, "intrathecal", 1000.0 / 1440.0, sc.doses[0].site_z)
    y = plateau(model, u)
    k = model.system.index("eliminated")
    keep = np.arange(model.system.n_state) != k
    scale = np.abs(y[keep]) + 1e-3 * np.abs(y[keep]).max()
    assert np.max(np.abs(y[keep] - y_end[keep]) / scale) < 1e-6
    assert y[k] == 0.0


def test_plateau_residual_and_multiple_inputs(it_long):
    model, sc, _ = it_long
    U = np.stack([input_vector(model, "intrathecal", 2.0, sc.doses[0].site_z),
                  input_vector(model, "iv", 3.0)], axis=1)
    Y = plateau(model, U)
    J = model.system.to_sparse()
    k = model.system.index("eliminated")
    res = J @ Y + U
    # every conserved state is stationary; the eliminated account grows at the input rate
    assert np.allclose(np.delete(res, k, axis=0), 0.0, atol=1e-10 * np.abs(Y).max())
    assert np.allclose(res[k], U.sum(axis=0), rtol=1e-9)


@pytest.mark.parametrize("route", ["iv", "intrathecal", "oral_controlled"])
def test_plasma_plateau_is_rate_over_clearance(it_long, route):
    """All drug ends up cleared from plasma (or lost to first pass): Css = F R / CL exactly."""
    model, sc, _ = it_long
    rate = 5.0  # ug/min
    y = plateau(model, input_vector(model, route, rate, sc.doses[0].site_z))
    cp = y[model.system.index("plasma")] / model.drug.v1
    f = model.drug.f_oral if route.startswith("oral") else 1.0
    assert cp == pytest.approx(f * rate / model.drug.cl, rel=1e-9)


@pytest.fixture(scope="module")
def oral_pss():
    prep = prepare(_scenario([ORAL_CR]))
    sc, model, sched, t_out = prep.scenario, prep.model, prep.schedule, prep.t_out
    one = build_schedule(model, expand([sc.doses[0].__class__(
        amount=sc.doses[0].amount, formulation="controlled")], 720.0), 720.0)
    return model, sched, t_out, one, periodic_steady_state(model, one, n_out=13)


def test_periodic_steady_state_matches_long_integration(oral_pss):
    model, sched, t_out, _, pss = oral_pss
    last = solve(model.system, sched, t_out[-13:], rtol=1e-10)  # last 12 h, hourly
    keep = np.arange(model.system.n_state) != model.system.index("eliminated")
    ref = last[:, keep]
    scale = np.abs(ref).max(axis=0) + 1e-6 * np.abs(ref).max()
    # all 13 hourly outputs, including the state just before the next dose at 12 h
    assert np.max(np.abs(pss.states[:, keep] - ref) / scale) < 1e-6
    assert np.allclose(pss.states[0], pss.states[-1] + one_dose(model))


def one_dose(model):
    y = np.zeros(model.system.n_state)
    y[model.system.index("gut_cr")] = 30000.0
    return y


def test_periodic_mean_equals_plateau_of_mean_input(oral_pss):
    """Integrating dy/dt = J y + u over a period at steady state: mean y = -J^-1 mean u."""
    model, _, _, one, _ = oral_pss
    fine = periodic_steady_state(model, one, n_out=721)  # 1-min outputs
    t = fine.times
    pl = model.system.index("plasma")
    br = model.system.index("brain")
    for k in (pl, br):
        trap = np.trapezoid(fine.states[:, k], t) / fine.period
        assert trap == pytest.approx(fine.mean[k], rel=1e-4)
    u_mean = input_vector(model, "oral_controlled", 30000.0 / 720.0)
    assert np.allclose(fine.mean, plateau(model, u_mean), rtol=1e-10, atol=1e-12)


def test_input_vector_rejects_unknown_route(it_long):
    model, _, _ = it_long
    with pytest.raises(ValueError):
        input_vector(model, "rectal", 1.0)
    with pytest.raises(ValueError):
        input_vector(model, "intrathecal", 1.0)


def test_periodic_steady_state_of_a_daily_pump_program():
    """Piecewise-constant inputs (a day/night IT program) against an 8-day integration."""
    prog = {"route": "intrathecal", "type": "infusion", "site": "T10",
            "program": [{"at": "0 h", "rate": "0.4 mg/day"}, {"at": "7.5 h", "rate": "0.8 mg/day"},
                        {"at": "21 h", "rate": "0.4 mg/day"}]}
    prep = prepare(_scenario([prog]))
    sc, model, sched, t_out = prep.scenario, prep.model, prep.schedule, prep.t_out
    one = build_schedule(model, expand(sc.doses, 1440.0), 1440.0)
    pss = periodic_steady_state(model, one, n_out=25)
    last = solve(model.system, sched, t_out[-25:], rtol=1e-10)
    keep = np.arange(model.system.n_state) != model.system.index("eliminated")
    scale = np.abs(last[:, keep]).max(axis=0) + 1e-6 * np.abs(last).max()
    assert np.max(np.abs(pss.states[:, keep] - last[:, keep]) / scale) < 1e-6
    # mean input 0.4 + 0.4 * 13.5/24 mg/day
    rate = (0.4 + 0.4 * 13.5 / 24) * 1000 / 1440
    ref = plateau(model, input_vector(model, "intrathecal", rate, sc.doses[0].site_z))
    assert np.allclose(pss.mean, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())
