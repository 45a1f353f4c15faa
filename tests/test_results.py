"""Results are self-describing: fixed names, units, attrs, netCDF round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

import csfmodel

SC = {
    "simulation": {"duration": "26 h", "output_interval": "30 min", "resolution": "1 cm"},
    "dose": [
        {"route": "intrathecal", "type": "infusion", "site": "T10", "rate": "1 mg/day"},
        {"route": "intrathecal", "type": "patient_bolus", "site": "T10", "amount": "0.05 mg",
         "lockout": "3 h", "max_per_day": 2,
         "requests": ["1 h", "2 h", "4.5 h", "9 h", "25.5 h"]},
    ],
}


@pytest.fixture(scope="module")
def ds():
    return csfmodel.simulate(SC, solver="reference")


REQUIRED = {
    "csf_concentration": ("time", "z"),
    "cord_concentration": ("time", "segment"),
    "cisternal_csf_concentration": ("time",),
    "brain_concentration": ("time",),
    "plasma_concentration": ("time",),
    "amount_dosed": ("time",),
    "amount_present": ("time",),
    "amount_eliminated": ("time",),
}


def test_variables_dims_units(ds):
    for name, dims in REQUIRED.items():
        assert ds[name].dims == dims
        unit = "mg" if name.startswith("amount") else "ng/mL"
        assert ds[name].attrs["units"] == unit
    for name in list(ds.data_vars) + list(ds.coords):
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name
    assert ds.time.attrs["units"] == "h" and ds.z.attrs["units"] == "cm"
    assert ds.time.values[-1] == pytest.approx(26.0)
    assert list(ds.segment.values[:2]) == ["C1", "C2"] and ds.segment.values[-1] == "S5"
    assert ds.vertebral_level.sel(z=ds.z[0]).item() == "C1"
    assert ds.attrs["csfmodel_version"] == csfmodel.__version__
    assert json.loads(ds.attrs["scenario"])["dose"][0]["rate"] == "1 mg/day"


def test_every_name_is_short_with_units_and_a_description(ds):
    """``long_name`` is a plot axis label (xarray's ``.plot()`` shows "long_name [units]");
    the detail is in ``description``."""
    assert "request" in ds.coords  # the patient-bolus log is covered too
    for name in list(ds.data_vars) + list(ds.coords):
        attrs = ds[name].attrs
        assert "units" in attrs, name
        assert 0 < len(attrs["long_name"]) <= 32, (name, attrs["long_name"])
        if name in ds.data_vars:
            assert len(attrs["description"]) > len(attrs["long_name"]), name
    assert ds.cord_concentration.attrs["long_name"] == "cord concentration (unbound)"
    assert "dorsal-horn" in ds.cord_concentration.attrs["description"]


def test_time_of_a_peak_is_labelled_in_hours(ds):
    """xarray's ``idxmax`` labels its result with the *array's* attrs (ng/mL); the
    README's idiom ``ds.time[da.argmax("time")]`` keeps the time's own attrs."""
    peak = ds.time[ds.brain_concentration.argmax("time")]
    assert peak.attrs["units"] == "h" and peak.attrs["long_name"] == "time"
    assert float(peak) == float(ds.brain_concentration.idxmax("time"))
    from csfmodel.metrics import tmax

    assert tmax(ds.brain_concentration).attrs["units"] == "h"
    assert float(tmax(ds.brain_concentration)) == float(peak)


def test_patient_bolus_lockout_and_daily_maximum_are_reported(ds):
    assert list(ds.request_time.values) == [1.0, 2.0, 4.5, 9.0, 25.5]
    # 1 h given; 2 h inside the 3 h lockout; 4.5 h given; 9 h: 2 already in 24 h;
    # 25.5 h: the 1 h bolus left the 24 h window, so it is given
    assert list(ds.request_accepted.values) == [1, 0, 1, 0, 1]
    assert list(ds.request_reason.values) == ["accepted", "lockout", "accepted",
                                              "max_per_day", "accepted"]
    assert float(ds.amount_dosed[-1]) == pytest.approx(26 / 24 + 3 * 0.05)


def test_netcdf_round_trip(ds, tmp_path):
    p = csfmodel.save(ds, tmp_path / "r.nc")
    back = csfmodel.load(p)
    for name in REQUIRED:
        np.testing.assert_array_equal(back[name].values, ds[name].values)
        assert back[name].attrs == ds[name].attrs
    for name in ("time", "z", "request_reason"):
        assert back[name].attrs == ds[name].attrs, name
    assert back.attrs["scenario"] == ds.attrs["scenario"]
    assert list(back.vertebral_level.values) == list(ds.vertebral_level.values)


def test_cord_targets_under_a_t10_catheter(ds):
    """A T10 catheter sits over lumbar cord segments: they get the most drug."""
    end = ds.cord_concentration.isel(time=-1)
    top = str(ds.segment.values[int(np.argmax(end.values))])
    assert top[0] in "LS" or top in ("T11", "T12")
    # the cervical cord gets a fifth of it: morphine infused at T10 spreads rostrally
    # (lumbar : cisternal CSF ~2 : 1 with the tip at T10, Moulin 1986; docs/validation.md)
    assert float(end.sel(segment="C2")) < 0.3 * float(end.max())


# ------------------------------------------------------------ one path, recorded inputs
def test_prepare_returns_a_named_record():
    from csfmodel.api import Prepared, prepare

    p = prepare(SC)
    assert isinstance(p, Prepared)
    assert p.scenario.drug.name == "morphine" and p.t_out[-1] == 26 * 60
    assert p.model.system.n_state == p.schedule.jumps.shape[1]
    assert len(p.events.requests) == 5
    with pytest.raises(TypeError):        # a record, not a tuple
        sc, model, *_ = p


def test_schedule_shares_each_bolus_deposit_and_is_exact():
    """``schedule_for`` deposits each distinct bolus once: the same arrays, bit for bit,
    as ``build_schedule``."""
    import tomllib
    from pathlib import Path

    from csfmodel.api import prepare, schedule_for
    from csfmodel.model import build_schedule

    examples = sorted(Path(__file__).parents[1].glob("examples/scenarios/*.toml"))
    # two needle boluses whose spreads over minutes overlap each other and an infusion
    spreading = {"simulation": {"duration": "3 h", "resolution": "1 cm"},
                 "dose": [{"route": "intrathecal", "type": "infusion", "site": "T10",
                           "rate": "1 mg/day", "start": "5 min"},
                          {"route": "intrathecal", "type": "bolus", "site": "L3",
                           "amount": "0.3 mg", "volume": "1 mL", "time": "2 min"},
                          {"route": "intrathecal", "type": "bolus", "site": "L3",
                           "amount": "0.3 mg", "volume": "1 mL", "time": "12 min"},
                          {"route": "intrathecal", "type": "bolus", "site": "L1",
                           "amount": "0.5 mg", "volume": "2 mL", "time": "20 min"}]}
    for data in [SC, spreading] + [tomllib.loads(p.read_text()) for p in examples]:
        p = prepare(data)
        t_end = p.scenario.simulation.duration
        ref = build_schedule(p.model, p.events, t_end)
        got = schedule_for(p.model, p.events, t_end)
        for f in ("times", "jumps", "rates"):
            np.testing.assert_array_equal(getattr(got, f), getattr(ref, f), err_msg=f)
        assert got.t_end == ref.t_end


def test_grids_are_reused_and_read_only():
    from csfmodel.api import prepare

    a, b = prepare(SC).model.grid, prepare(SC).model.grid
    assert a is b and not a.csf_volume.flags.writeable
    other = prepare({**SC, "patient": {"conus_level": "L2"}}).model.grid
    assert other is not a


def test_concentrations_are_the_observation_rows(ds):
    """The rows a batch kernel gets (CSR) give the Dataset's concentrations; segment sums
    do not depend on how many rows are evaluated at once, and agree with a dense product."""
    from csfmodel.api import prepare
    from csfmodel.results import CONCENTRATIONS, observation
    from csfmodel.solvers import get_backend

    p = prepare(SC)
    states = get_backend("reference").solve(p.model.system, p.schedule, p.t_out).states
    obs = observation(p.model)
    vol = p.model.system.volume
    full = obs.apply(states, vol)
    ptr, idx, w = obs.csr(vol)
    rows = np.stack([(states[:, idx[ptr[q]:ptr[q + 1]]] * w[ptr[q]:ptr[q + 1]]).sum(1)
                     for q in range(len(ptr) - 1)], axis=1)
    for v, a, b in obs.layout:
        x = full[v].reshape(len(states), -1)
        np.testing.assert_allclose(rows[:, a:b], x, rtol=1e-14, atol=1e-300)
        np.testing.assert_array_equal(ds[v].values, full[v])
    for k in (1, 7, len(states) // 2):
        part = obs.apply(states[k:k + 5], vol)
        for v in CONCENTRATIONS:
            np.testing.assert_array_equal(part[v], full[v][k:k + 5])
    w_seg = p.model.grid.segment_weights
    dense = (states / vol * 1000.0)[:, p.model.system.n_spinal:p.model.system.n_spatial] \
        @ (w_seg / w_seg.sum(axis=1, keepdims=True)).T
    np.testing.assert_allclose(full["cord_concentration"], dense, rtol=4e-15, atol=0)


def test_the_run_records_what_later_steps_need(ds, tmp_path):
    from csfmodel.api import prepare
    from csfmodel.effects import EffectInputs
    from csfmodel.results import level_z

    p = prepare(SC)
    assert json.loads(ds.attrs["catheter_sites_cm"]) == p.scenario.catheter_sites()
    assert EffectInputs.from_dataset(ds) == EffectInputs.of(p.model)
    assert level_z(ds, "L3", 0.25) == pytest.approx(p.scenario.anatomy.level_z("L3", 0.25),
                                                    rel=1e-15)
    assert list(ds.level.values[:2]) == ["C1", "C2"] and ds.level_z_top.attrs["units"] == "cm"
    back = csfmodel.load(csfmodel.save(ds, tmp_path / "r.nc"))
    assert EffectInputs.from_dataset(back) == EffectInputs.of(p.model)


def test_a_run_written_window_by_window_is_the_same_to_the_bit(tmp_path, monkeypatch):
    """Each window goes through the same builder, and nothing depends on how many rows
    are worked out at once (cord segment sums in a fixed order)."""
    import xarray as xr

    from csfmodel.api import simulate_to_file
    from csfmodel.solvers import _prepare

    monkeypatch.setattr(_prepare, "SINK_BYTES", 2**13)
    mem = csfmodel.simulate(SC)
    windows = []
    path = simulate_to_file(SC, tmp_path / "s.nc", on_window=lambda w: windows.append(w))
    assert len(windows) > 5
    with xr.open_dataset(path) as f:
        for v in mem.variables:
            np.testing.assert_array_equal(f[v].values, mem[v].values, err_msg=v)
            assert f[v].attrs == mem[v].attrs, v
        for k in ("drug", "catheter_sites_cm", "drug_kp_cord_mL_per_g"):
            assert f.attrs[k] == mem.attrs[k]
