"""Every valid input gives complete, correct results; every invalid one a clear error.

Regression tests for inputs that once corrupted the last output row, made the
solvers loop for ever, or ran away with unbounded values.
"""

from __future__ import annotations

import numpy as np
import pytest

import csfmodel
from csfmodel.anatomy import PATIENT_PARAMETERS, VERTEBRAL_LEVELS, Anatomy
from csfmodel.api import check_memory, prepare
from csfmodel.drugs import DRUG_PARAMETERS, DRUGS
from csfmodel.errors import ScenarioError
from csfmodel.model import build_model, deposit
from csfmodel.scenario import LIMITS, SimulationOptions, parse_scenario
from csfmodel.solvers import BACKENDS, check_inputs, solve


def backend_params() -> list:
    """Every registered backend; jax skipped where it is not installed."""
    import importlib.util

    has_jax = importlib.util.find_spec("jax") is not None
    return [pytest.param(b, marks=pytest.mark.skipif(b == "jax" and not has_jax,
                                                     reason="jax not installed"))
            for b in sorted(BACKENDS)]


# ------------------------------------------------------------ output times
@pytest.mark.parametrize("duration,interval", [
    (4.1 * 60, 6.0), (246.0, 6.0), (1440.0, 5.0), (60.0, 7.0), (1.0, 1.0),
    (0.1 * 3 * 60, 0.1 * 60), (7 * 1440.0, 5.0), (366 * 1440.0, 1440.0 / 7),
])
def test_output_times_end_exactly_at_the_duration(duration, interval):
    t = SimulationOptions(duration=duration, output_interval=interval).output_times()
    assert t[0] == 0.0 and t[-1] == duration
    assert np.all(np.diff(t) > 0)
    assert np.all(t <= duration)


def test_output_times_never_past_the_end_for_many_awkward_durations():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        hours = round(float(rng.uniform(1.0, 48.0)), int(rng.integers(1, 4)))
        interval = float(rng.choice([1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 10.0, 12.0, 15.0, 30.0]))
        sim = parse_scenario({"simulation": {"duration": f"{hours} h",
                                             "output_interval": f"{interval} min"},
                              "dose": [{"route": "iv", "amount": "1 mg"}]}).simulation
        t = sim.output_times()
        assert t[-1] == sim.duration and np.all(np.diff(t) > 0)


AWKWARD_END = {"simulation": {"duration": "4.1 h", "output_interval": "6 min",
                              "resolution": "1 cm"},
               "dose": [{"route": "intrathecal", "type": "infusion", "site": "T10",
                         "rate": "1 mg/day"}]}


@pytest.mark.parametrize("backend", backend_params())
def test_last_row_is_filled_on_every_backend(backend):
    ds = csfmodel.simulate(AWKWARD_END, solver=backend)
    assert float(ds.time[-1]) == pytest.approx(4.1, rel=1e-15)
    dosed = 1.0 * 4.1 / 24.0  # mg
    assert float(ds.amount_dosed[-1]) == pytest.approx(dosed, rel=1e-12)
    assert float(ds.amount_present[-1]) > 0.5 * dosed
    bal = abs(ds.amount_dosed - ds.amount_present - ds.amount_eliminated).max()
    assert float(bal) <= 1e-9 * dosed
    assert np.all(np.isfinite(ds.csf_concentration.values))


# ------------------------------------------------------------ bolus deposits
@pytest.mark.parametrize("level", VERTEBRAL_LEVELS)
@pytest.mark.parametrize("volume", [0.01, 1.0, 4.6, 8.0, 20.0])
def test_deposit_keeps_the_dose_at_every_level_and_volume(level, volume):
    model = build_model(Anatomy(), DRUGS["morphine"], 1.0)
    z = Anatomy().level_z(level, 0.5)
    for rate in (np.inf, 4.0, 0.1):
        y = deposit(model, z, 1000.0, volume, rate)
        assert np.all(np.isfinite(y)) and np.all(y >= 0.0)
        assert y.sum() == pytest.approx(1000.0, rel=1e-12)


HIGH_BIG_BOLUS = {"simulation": {"duration": "2 h", "resolution": "1 cm"},
                  "dose": [{"route": "intrathecal", "type": "bolus", "site": "T1-T2",
                            "amount": "1 mg", "volume": "8 mL"}]}


@pytest.mark.parametrize("backend", backend_params())
def test_large_high_bolus_runs_and_keeps_mass(backend):
    ds = csfmodel.simulate(HIGH_BIG_BOLUS, solver=backend)
    assert float(ds.amount_dosed[-1]) == pytest.approx(1.0, rel=1e-12)
    bal = abs(ds.amount_dosed - ds.amount_present - ds.amount_eliminated).max()
    assert float(bal) <= 1e-9
    assert float(ds.cisternal_csf_concentration.max()) > 0


# ------------------------------------------------------------ solver guards
@pytest.fixture(scope="module")
def prepared():
    prep = prepare(HIGH_BIG_BOLUS)
    model, schedule, t_out = prep.model, prep.schedule, prep.t_out
    return model, schedule, t_out


@pytest.mark.parametrize("backend", backend_params())
def test_every_backend_refuses_non_finite_systems(backend, prepared):
    from dataclasses import replace

    model, schedule, t_out = prepared
    diag = model.system.diag.copy()
    diag[3] = np.nan
    bad = replace(model.system, diag=diag)
    with pytest.raises(ScenarioError, match="system.diag"):
        solve(bad, schedule, t_out, backend=backend)
    jumps = schedule.jumps.copy()
    jumps[0, 0] = np.inf
    with pytest.raises(ScenarioError, match="schedule.jumps"):
        solve(model.system, replace(schedule, jumps=jumps), t_out, backend=backend)


@pytest.mark.parametrize("backend", backend_params())
def test_every_backend_refuses_output_times_past_the_end(backend, prepared):
    model, schedule, t_out = prepared
    with pytest.raises(ScenarioError, match="t_out"):
        solve(model.system, schedule, np.append(t_out, t_out[-1] + 1e-9), backend=backend)


def test_check_inputs_accepts_a_valid_problem(prepared):
    model, schedule, t_out = prepared
    assert check_inputs(model.system, schedule, t_out).dtype == float


def test_numba_kernel_gives_up_on_non_finite_values_instead_of_looping(prepared):
    """The step-size collapse guard: NaN in the state stops the kernel with a flag."""
    pytest.importorskip("numba")
    from csfmodel.solvers import _numba_kernels as k
    from csfmodel.solvers._prepare import border_pattern
    from csfmodel.solvers._tableaus import TABLEAUS

    model, schedule, t_out = prepared
    s = model.system
    tab = TABLEAUS["esdirk3"]
    act, ptr, idx = border_pattern(s.border_rows, s.border_cols)
    jumps = schedule.jumps.copy()
    jumps[0, 5] = np.nan
    out = np.zeros((len(t_out), s.n_state))
    st = np.zeros(k.N_STATS)
    empty_i = np.zeros(0, np.int64)
    k.integrate(s.lower, s.diag, s.upper, s.cord_diag, s.csf_to_cord, s.cord_to_csf,
                np.ascontiguousarray(s.border_rows), np.ascontiguousarray(s.border_cols),
                np.ascontiguousarray(s.block), s.volume, act, ptr, idx,
                np.ascontiguousarray(schedule.times), jumps,
                np.ascontiguousarray(schedule.rates), float(schedule.t_end), t_out,
                np.zeros(s.n_state), empty_i, empty_i, np.zeros(0), tab.gamma, tab.A,
                tab.error_weights, 5e-5, 1e-12, np.inf, np.inf, True, out, st, np.zeros((4, 0)),
                np.zeros(k.SPEC_SIZE), np.zeros(k.RESUME_SIZE + 2 + s.block.shape[0]),
                len(t_out))
    assert st[k.ST_FAILED] == 1.0
    assert st[k.ST_ROWS] < len(t_out)


# ------------------------------------------------------------ declared ranges
def test_defaults_and_presets_are_inside_their_declared_ranges():
    Anatomy().validate()
    for drug in DRUGS.values():
        drug.validate()
    for key, bound in PATIENT_PARAMETERS.items():
        assert bound.basis, key
    for key, bound in DRUG_PARAMETERS.items():
        assert bound.basis, key
    for key, bound in LIMITS.items():
        assert bound.basis, key


def _unit_value(unit: str, value: float):
    return value if unit == "1" else f"{value:g} {unit}"


@pytest.mark.parametrize("key", [k for k, b in PATIENT_PARAMETERS.items() if b.unit != "str"])
def test_every_patient_value_beyond_its_range_is_refused(key):
    b = PATIENT_PARAMETERS[key]
    for v in (b.high * 1.5 + 1.0, b.low - abs(b.low) * 0.5 - 1e-3):
        with pytest.raises(ScenarioError, match=rf"patient\.{key}"):
            parse_scenario({"patient": {key: _unit_value(b.unit, v)},
                            "dose": [{"route": "iv", "amount": "1 mg"}]})


@pytest.mark.parametrize("key", list(DRUG_PARAMETERS))
def test_every_drug_value_beyond_its_range_is_refused(key):
    b = DRUG_PARAMETERS[key]
    for v in (b.high * 1.5 + 1.0, b.low - abs(b.low) * 0.5 - 1e-3):
        with pytest.raises(ScenarioError, match=rf"drug\.{key}"):
            parse_scenario({"drug": {key: _unit_value(b.unit, v)},
                            "dose": [{"route": "iv", "amount": "1 mg"}]})


RUNAWAY = [
    ("patient", "dispersion", "1e30 cm^2/min"),
    ("drug", "ka_ir", "1e300 1/min"),
    ("patient", "cervical_length", "1e7 cm"),
    ("drug", "cl", "1e300 mL/min"),
    ("drug", "octanol_buffer", float("inf")),
    ("drug", "mw", float("inf")),
    ("patient", "spinal_csf_volume", "1e6 mL"),
    ("patient", "body_weight", "1e-300 kg"),
    ("patient", "conus_fraction", 1.5),
]


@pytest.mark.parametrize("section,key,value", RUNAWAY)
def test_runaway_values_are_refused_at_once(section, key, value):
    with pytest.raises(ScenarioError, match=rf"{section}\.{key}: got"):
        parse_scenario({section: {key: value}, "dose": [{"route": "iv", "amount": "1 mg"}]})


@pytest.mark.parametrize("dose,key", [
    ({"route": "oral", "amount": "10 mg", "interval": "1e-9 min", "count": 1000000},
     "dose[0].interval"),
    ({"route": "oral", "amount": "10 mg", "interval": "1 h", "count": 10000000000},
     "dose[0].count"),
    ({"route": "intrathecal", "site": "L3", "amount": "1 mg", "injection_rate": "1e9 mL/min"},
     "dose[0].injection_rate"),
    ({"route": "iv", "amount": "1 mg", "time": "1e9 day"}, "dose[0].time"),
])
def test_dose_values_beyond_practice_are_refused(dose, key):
    with pytest.raises(ScenarioError, match=key.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario({"dose": [dose]})


@pytest.mark.parametrize("sim,key", [
    ({"duration": "1e-12 min"}, "simulation.duration"),
    ({"duration": "400 day"}, "simulation.duration"),
    ({"duration": "2 h", "output_interval": "1e-6 s"}, "simulation.output_interval"),
    ({"resolution": "1 um"}, "simulation.resolution"),
])
def test_simulation_options_name_the_right_key(sim, key):
    with pytest.raises(ScenarioError, match=key):
        parse_scenario({"simulation": sim, "dose": [{"route": "iv", "amount": "1 mg"}]})


def test_short_duration_without_output_interval_is_fine():
    sim = parse_scenario({"simulation": {"duration": "2 min"},
                          "dose": [{"route": "iv", "amount": "1 mg"}]}).simulation
    assert sim.output_times().tolist() == [0.0, 2.0]


def test_a_scenario_without_doses_is_refused():
    with pytest.raises(ScenarioError, match="dose: got None.*at least one"):
        prepare({})


def test_conus_level_messages_name_the_allowed_levels():
    with pytest.raises(ScenarioError, match="T11, T12, L1, L2, L3"):
        parse_scenario({"patient": {"conus_level": "45 cm"},
                        "dose": [{"route": "iv", "amount": "1 mg"}]})


# ------------------------------------------------------------ feasibility
def test_infeasible_run_is_refused_before_any_work():
    sc = {"simulation": {"duration": "366 day", "output_interval": "1 min",
                         "resolution": "0.2 mm"},
          "dose": [{"route": "iv", "amount": "1 mg"}]}
    with pytest.raises(ScenarioError, match="simulation.output_interval.*GiB"):
        prepare(sc)


def test_memory_estimate_scales_with_times_and_states():
    assert check_memory(1000, 200, available=10**12) == 3 * 1000 * 200 * 8
    with pytest.raises(ScenarioError, match="too large"):
        check_memory(10**6, 10**4, available=10**9)


# ------------------------------------------------------------ streaming long runs
STREAMED = {"simulation": {"duration": "3 day", "output_interval": "10 min",
                           "resolution": "1 cm"},
            "dose": [{"route": "intrathecal", "type": "patient_bolus", "site": "T10",
                      "amount": "0.1 mg", "lockout": "1 h", "max_per_day": 12,
                      "daily_requests": ["1 h", "3 h", "3.5 h"]},
                     {"route": "oral", "amount": "10 mg", "interval": "12 h", "count": 6}]}


@pytest.fixture
def small_windows(monkeypatch):
    """Windows (numba) and blocks (other backends) of 16 kB of rows."""
    from csfmodel.solvers import _prepare

    monkeypatch.setattr(_prepare, "SINK_BYTES", 2**14)


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_streamed_file_equals_the_in_memory_result(backend, tmp_path, small_windows):
    import xarray as xr

    from csfmodel.api import simulate_to_file

    ds = csfmodel.simulate(STREAMED, solver=backend)
    windows = []
    path = simulate_to_file(STREAMED, tmp_path / "s.nc", solver=backend,
                            on_window=lambda w: windows.append(w.sizes["time"]))
    assert len(windows) > 5 and sum(windows) == ds.sizes["time"]
    with xr.open_dataset(path) as f:
        assert set(f.data_vars) == set(ds.data_vars)
        for v in ds.data_vars:
            a, b = ds[v].values, f[v].values
            if a.dtype.kind == "f":
                np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12 * np.abs(a).max())
            else:
                np.testing.assert_array_equal(b, a)
            assert f[v].attrs["units"] == ds[v].attrs["units"]
        assert f.attrs["solver"] == backend and "solver_seconds" in f.attrs


def test_streaming_bypasses_the_memory_limit_but_simulate_does_not(tmp_path, monkeypatch):
    import csfmodel.api as api

    monkeypatch.setattr(api, "_available_memory", lambda: 10**5)
    with pytest.raises(ScenarioError, match="fit in memory"):
        csfmodel.simulate(STREAMED)
    assert api.simulate_to_file(STREAMED, tmp_path / "s.nc").exists()


def test_streaming_refuses_a_file_larger_than_the_free_disk(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from csfmodel.api import simulate_to_file

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(ScenarioError, match="fits on the disk"):
        simulate_to_file(STREAMED, tmp_path / "s.nc")
    assert not list(tmp_path.iterdir())


def test_interrupted_stream_keeps_the_rows_written(tmp_path, small_windows):
    from csfmodel.api import SimulationInterrupted, simulate_to_file

    seen = []

    def stop_after_three(w):
        seen.append(w.sizes["time"])
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(SimulationInterrupted) as exc:
        simulate_to_file(STREAMED, tmp_path / "s.nc", on_window=stop_after_three)
    part = exc.value.partial
    assert part.sizes["time"] == sum(seen)
    assert "stopped by the user" in part.attrs["interrupted"]
    full = csfmodel.simulate(STREAMED)
    np.testing.assert_allclose(part.plasma_concentration.values,
                               full.plasma_concentration.values[: sum(seen)], rtol=1e-12)
    hours = float(part.time[-1])
    assert f"t = {hours:.4g} h" in part.attrs["interrupted"]
    part.close()


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_doses_a_hair_apart_are_simultaneous(backend):
    """Dose times 1e-300 min apart once left the solvers an interval they could not step."""
    sc = {"simulation": {"duration": "6 h", "output_interval": "13 min", "resolution": "1 cm"},
          "dose": [{"route": "intrathecal", "type": "patient_bolus", "site": "L2",
                    "amount": "0.433 mg", "lockout": "1 h", "max_per_day": 10,
                    "requests": ["1.628e-111 min", "4.94e-324 h", "2 h"], "volume": "0.246 mL"},
                   {"route": "iv", "amount": "1 mg", "time": "1e-7 min"}]}
    parsed = parse_scenario(sc)
    assert parsed.doses[0].requests[:2] == (0.0, 0.0) and parsed.doses[1].time == 0.0
    ds = csfmodel.simulate(sc, solver=backend)
    assert float(ds.amount_dosed[-1]) == pytest.approx(0.433 * 2 + 1.0, rel=1e-12)
