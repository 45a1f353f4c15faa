"""Sensitivities against finite differences of the exact solution, on every example.

The reference is independent of everything the sensitivities use: each perturbed
scenario is written as a dict (the value in the scenario's own unit), parsed and
assembled by the ordinary real-valued path, and solved *exactly* (matrix
exponentials of the piecewise-constant linear system, no time stepping); the
derivative is the fourth-order central difference of those exact solutions at
h = 1e-3 of the value (truncation ~h^4 ~ 1e-12, rounding ~1e-13/h ~ 1e-10 of the
output), or 1e-6 for the values that shape a bolus deposit (rounding ~1e-7): a
larger step may straddle a change of the number of quadrature points of the deposit
(a jump of ~1e-4 of it) or a kink, where an edge of the mixed stretch crosses the edge
of a cell (a needle bolus lays down 15 stretches while it spreads, 30 edges). The
sensitivities (complex-step derivatives of the arrays, forward sensitivity
equations integrated at ``rtol = 1e-9``) must agree to 1e-6 of each output's
largest derivative.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import numpy as np
import pytest

from csfmodel.api import prepare
from csfmodel.errors import ScenarioError
from csfmodel.fitting import sensitivity
from csfmodel.fitting._parameters import resolve, with_values
from csfmodel.results import CONCENTRATIONS, observation
from csfmodel.scenario import load_scenario, parse_scenario

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "scenarios"
DOMINANT = ("csf_concentration", "cord_concentration", "cisternal_csf_concentration",
            "brain_concentration", "plasma_concentration")
TOL = 1e-6


def _exact_outputs(data: dict) -> dict[str, np.ndarray]:
    """Concentrations (ng/mL) and amounts at the output times, by matrix exponentials."""
    from scipy.linalg import expm

    p = prepare(parse_scenario(data))
    J = p.model.system.to_dense()
    n = J.shape[0]
    sched, t_out = p.schedule, p.t_out
    cache: dict = {}

    def prop(dt: float):
        key = round(dt, 10)
        if key not in cache:
            big = np.zeros((2 * n, 2 * n))
            big[:n, :n] = J * dt
            big[:n, n:] = np.eye(n) * dt
            E = expm(big)
            cache[key] = (E[:n, :n], E[:n, n:])      # e^{J dt}, int_0^dt e^{Js} ds
        return cache[key]

    brk = np.unique(np.concatenate([t_out, sched.times]))
    y = np.zeros(n)
    states = np.zeros((len(t_out), n))
    ke = 0
    for i, t in enumerate(brk):
        while ke < len(sched.times) and sched.times[ke] <= t:
            y = y + sched.jumps[ke]
            ke += 1
        states[t_out == t] = y
        if i + 1 < len(brk):
            k = int(np.searchsorted(sched.times, t, side="right") - 1)
            E, G = prop(brk[i + 1] - t)
            y = E @ y + G @ sched.rates[k]
    conc = observation(p.model).apply(states, p.model.system.volume)
    elim = states[:, p.model.system.index("eliminated")]
    conc["amount_present"] = (states.sum(axis=1) - elim) * 1e-3
    conc["amount_eliminated"] = elim * 1e-3
    return conc


#: values that shape a bolus deposit (the last part of the key): a small step (see the
#: module docstring); ``patient.cisternal_volume`` is not one
_DEPOSIT = ("injection_spread", "injection_mixing", "volume", "injection_rate")


def _fd(sc, key: str, rel: float | None = None) -> dict[str, np.ndarray]:
    """Fourth-order central difference of the exact outputs, per the user's unit (and
    the exact outputs themselves under ``"value:<name>"``)."""
    (par,) = resolve(sc, [key])
    if rel is None:
        rel = 1e-6 if key.rsplit(".", 1)[-1] in _DEPOSIT else 1e-3
    h = rel * par.value
    outs = {}
    for m in (-2, -1, 1, 2):
        outs[m] = _exact_outputs(with_values(sc, [par], [par.value + m * h]))
    d = {k: (8 * (outs[1][k] - outs[-1][k]) - (outs[2][k] - outs[-2][k])) / (12 * h)
         * par.factor for k in outs[1]}
    d.update({f"value:{k}": outs[1][k] for k in outs[1]})
    return d


CASES = {
    "lumbar_bolus.toml": ["patient.dispersion", "patient.injection_spread", "dose[0].volume",
                          "drug.meningeal_permeability"],
    "pump_t10_patient_boluses.toml": ["patient.dispersion_caudal_fraction", "dose[1].amount",
                                      "drug.octanol_buffer"],
    "fentanyl_vs_catheter.toml": ["dose[0].rate", "drug.bbb_efflux", "patient.cisternal_volume"],
    "iv_bolus_and_infusion.toml": ["dose[0].amount", "dose[1].rate", "drug.v1", "drug.cl"],
    "oral_controlled_release.toml": ["drug.ka_cr", "drug.f_oral", "patient.brain_mass"],
}


def test_every_example_is_covered():
    assert sorted(CASES) == sorted(p.name for p in EXAMPLES.glob("*.toml"))


def _check(name: str | dict, keys: list[str]) -> None:
    sc = load_scenario(EXAMPLES / name) if isinstance(name, str) else parse_scenario(name)
    ds = sensitivity(sc, keys, rtol=1e-9)
    for key in keys:
        ref = _fd(sc, key)
        got = ds.sel(parameter=key)
        theta = float(got.parameter_value)
        for var in DOMINANT + ("amount_present", "amount_eliminated"):
            r = ref[var]
            g = got[var].values
            if var in CONCENTRATIONS and r.ndim == 2 and var != "csf_concentration" \
                    and var != "cord_concentration":
                r = r[:, 0]
            # of the largest derivative where the output responds to the parameter (an
            # elasticity above 1e-2: the dominant outputs); an output that hardly
            # responds, 1e-8 in elasticity units (the exact reference has ~1e-13
            # rounding, which its difference quotient amplifies to ~1e-6 of such a tiny
            # derivative). The amounts in the body: 1e-6 of amount per unit parameter.
            per_unit = np.abs(ref[f"value:{var}"]).max() / theta
            scale = max(np.abs(r).max(), 1e-2 * per_unit) if var in DOMINANT else per_unit
            if scale == 0.0:
                assert np.abs(g).max() == 0.0, (name, key, var)
                continue
            err = np.abs(g - r).max() / scale
            assert err < TOL, (name, key, var, err)


def test_bolus_against_exact_differences():
    """The example lumbar bolus on a coarse grid over 8 h (fast); the examples
    themselves follow (slow)."""
    data = tomllib.loads((EXAMPLES / "lumbar_bolus.toml").read_text())
    data["simulation"] = {"duration": "8 h", "output_interval": "10 min",
                          "resolution": "2 cm"}
    _check(data, ["patient.dispersion", "patient.injection_spread", "drug.octanol_buffer"])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_examples_against_exact_differences(name):
    _check(name, CASES[name])


def test_steady_infusion_profile_derivative_in_dispersion():
    """At the plateau of an infusion J y = -u, so dy/dD = -J^-1 (dJ/dD) y: the profile's
    derivative is one linear solve (steady_state.plateau), here with dJ/dD assembled
    by central differences of the real assembly (independent of the complex step)."""
    import dataclasses

    from csfmodel.model import build_model
    from csfmodel.steady_state import input_vector, plateau

    data = {"simulation": {"duration": "20 day", "output_interval": "10 day",
                           "resolution": "1 cm"},
            "dose": [{"route": "intrathecal", "type": "infusion", "site": "T10",
                      "rate": "1 mg/day"}]}
    ds = sensitivity(data, ["patient.dispersion"], rtol=1e-9)
    p = prepare(data)
    m = p.model
    u = input_vector(m, "intrathecal", 1000.0 / 1440.0, p.scenario.doses[0].site_z)
    y = plateau(m, u)
    D = m.anatomy.dispersion
    h = 1e-4 * D

    def J(d):
        return build_model(dataclasses.replace(m.anatomy, dispersion=d), m.drug, m.grid.dz,
                           grid=m.grid).system.to_dense()

    dJ = (8 * (J(D + h) - J(D - h)) - (J(D + 2 * h) - J(D - 2 * h))) / (12 * h)
    keep = np.arange(len(y)) != m.system.index("eliminated")
    dy = np.zeros_like(y)
    dy[keep] = np.linalg.solve(J(D)[np.ix_(keep, keep)], -(dJ @ y)[keep])
    want = dy[: m.system.n_spinal] / m.system.volume[: m.system.n_spinal] * 1000.0
    got = ds.csf_concentration.sel(parameter="patient.dispersion").isel(time=-1).values
    assert np.abs(got - want).max() < 1e-6 * np.abs(want).max()
    # the profile's peak at the catheter falls as dispersion spreads it, and the
    # elasticity there is between -1 and 0
    k = int(np.argmax(y[: m.system.n_spinal] / m.system.volume[: m.system.n_spinal]))
    el = ds.csf_concentration_elasticity.sel(parameter="patient.dispersion").isel(time=-1)
    assert -1.0 < float(el[k]) < 0.0


def test_units_follow_the_scenario_file():
    data = {"simulation": {"duration": "6 h", "output_interval": "1 h", "resolution": "2 cm"},
            "patient": {"dispersion": "0.135 cm^2/s"},
            "dose": [{"route": "intrathecal", "type": "infusion", "site": "T10",
                      "rate": "1 mg/day"}]}
    ds = sensitivity(data, ["patient.dispersion", "dose[0].rate"], rtol=1e-8)
    assert list(ds.parameter_unit.values) == ["cm^2/s", "mg/day"]
    np.testing.assert_allclose(ds.parameter_value.values, [0.135, 1.0])
    # linear in the rate: d c / d rate * rate = c
    base = prepare(data)
    from csfmodel.api import simulate

    sim = simulate(base.scenario, rtol=1e-8)
    d = ds.plasma_concentration.sel(parameter="dose[0].rate").values
    np.testing.assert_allclose(d * 1.0, sim.plasma_concentration.values, rtol=1e-5,
                               atol=1e-9 * float(sim.plasma_concentration.max()))
    el = ds.plasma_concentration_elasticity.sel(parameter="dose[0].rate").values[1:]
    np.testing.assert_allclose(el, 1.0, rtol=1e-9)
    assert "per parameter_unit" in ds.plasma_concentration.attrs["units"]


@pytest.mark.parametrize("key,match", [
    ("patient.spinal_csf_volume", "changes the grid"),
    ("patient.injection_mixing_time", "moves the dose events"),
    ("patient.nonsense", "unknown key"),
    ("dose[0].site", "not differentiable"),
    ("dose[3].amount", "dose index below 1"),
    ("simulation.duration", "a key such as"),
    ("drug.name", "unknown key"),
])
def test_unsupported_keys_are_refused(key, match):
    data = {"dose": [{"route": "intrathecal", "type": "bolus", "site": "L3",
                      "amount": "0.5 mg"}]}
    with pytest.raises(ScenarioError, match=match):
        sensitivity(data, [key])


def test_program_rate_is_refused():
    sc = load_scenario(EXAMPLES / "pump_t10_patient_boluses.toml")
    with pytest.raises(ScenarioError, match="not a program"):
        sensitivity(sc, ["dose[0].rate"])


def test_scenario_dict_is_not_changed():
    data = {"simulation": {"duration": "2 h", "resolution": "2 cm"},
            "dose": [{"route": "iv", "type": "bolus", "amount": "1 mg"}]}
    before = copy.deepcopy(data)
    sensitivity(data, ["drug.cl"])
    assert data == before


def test_state_is_the_backends_solution_and_error_controls_agree():
    """With the state's error control alone the augmented run takes the numba
    backend's steps, so its state is the backend's discrete solution; testing the
    sensitivities' error too (``error_control="all"``) changes them by no more than
    the tolerance allows."""
    from csfmodel.fitting import solve_sensitivities
    from csfmodel.solvers import get_backend

    data = tomllib.loads((EXAMPLES / "lumbar_bolus.toml").read_text())
    data["simulation"] = {"duration": "8 h", "output_interval": "10 min",
                          "resolution": "2 cm"}
    prep = prepare(data)
    params = resolve(prep.scenario, ["patient.dispersion", "drug.meningeal_permeability"])
    res = solve_sensitivities(prep, params)
    fwd = get_backend("numba").solve(prep.model.system, prep.schedule, prep.t_out)
    assert res.stats["steps"] == fwd.stats.steps
    np.testing.assert_allclose(res.states, fwd.states, rtol=1e-12,
                               atol=1e-12 * np.abs(fwd.states).max())
    both = solve_sensitivities(prep, params, error_control="all", rtol=1e-7)
    state = solve_sensitivities(prep, params, rtol=1e-7)
    assert both.stats["steps"] >= state.stats["steps"]
    for k in range(len(params)):
        scale = np.abs(state.d_states[k]).max()
        assert np.abs(both.d_states[k] - state.d_states[k]).max() < 1e-4 * scale
    with pytest.raises(ScenarioError, match="error_control"):
        solve_sensitivities(prep, params, error_control="some")


def test_every_tableau_gives_the_backends_state_and_the_same_derivatives():
    """The sensitivity kernel schedules each step's solves as jobs whose number depends
    on the tableau's stages (four for esdirk3, three for trbdf2): with either, the state
    is the numba backend's solution with that method, and the two methods' derivatives
    agree as their tolerance allows."""
    from csfmodel.fitting import solve_sensitivities
    from csfmodel.solvers import SolverOptions, get_backend
    from csfmodel.solvers._tableaus import TABLEAUS

    data = tomllib.loads((EXAMPLES / "lumbar_bolus.toml").read_text())
    data["simulation"] = {"duration": "8 h", "output_interval": "10 min",
                          "resolution": "2 cm"}
    prep = prepare(data)
    params = resolve(prep.scenario, ["patient.dispersion", "drug.meningeal_permeability",
                                     "drug.cl"])
    for method in TABLEAUS:
        res = solve_sensitivities(prep, params, method=method)
        fwd = get_backend("numba").solve(prep.model.system, prep.schedule, prep.t_out,
                                         SolverOptions(method=method))
        assert res.stats["steps"] == fwd.stats.steps
        np.testing.assert_array_equal(res.states, fwd.states)
    a, b = (solve_sensitivities(prep, params, method=m, rtol=1e-8) for m in TABLEAUS)
    for k in range(len(params)):
        scale = np.abs(a.d_states[k]).max()
        assert np.abs(a.d_states[k] - b.d_states[k]).max() < 1e-5 * scale
