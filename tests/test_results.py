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
