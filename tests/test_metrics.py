"""Exposure metrics against analytic curves."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import csfmodel
from csfmodel import metrics
from csfmodel.errors import ScenarioError


def curve(f, t_end=24.0, n=4801, extra=None):
    t = np.linspace(0.0, t_end, n)
    return xr.DataArray(f(t), dims="time", coords={"time": t},
                        attrs={"units": "ng/mL", "long_name": "test"})


K = np.log(2) / 3.0  # 1/h
C0 = 100.0


def test_exponential_decay_auc_cavg_time_above():
    da = curve(lambda t: C0 * np.exp(-K * t))
    auc = metrics.auc(da)
    assert float(auc) == pytest.approx(C0 / K * (1 - np.exp(-K * 24)), rel=1e-6)
    assert auc.attrs["units"] == "ng/mL*h"
    # window with interpolated ends
    a = metrics.auc(da, 1.2345, "600 min")
    exact = C0 / K * (np.exp(-K * 1.2345) - np.exp(-K * 10))
    assert float(a) == pytest.approx(exact, rel=1e-6)
    assert float(metrics.cavg(da, 2, 8)) == pytest.approx(
        C0 / K * (np.exp(-2 * K) - np.exp(-8 * K)) / 6, rel=1e-6)
    # time above: ln(C0/thr)/k
    ta = metrics.time_above(da, 10.0)
    assert float(ta) == pytest.approx(np.log(C0 / 10.0) / K, rel=1e-6)
    assert float(metrics.time_above(da, "0.01 ug/mL")) == pytest.approx(float(ta))
    assert ta.attrs["units"] == "h"
    assert float(metrics.time_above(da, 1000.0)) == 0.0


def test_bateman_cmax_tmax():
    ka, ke = 1.2, 0.2
    da = curve(lambda t: C0 * ka / (ka - ke) * (np.exp(-ke * t) - np.exp(-ka * t)), n=24001)
    tmax = np.log(ka / ke) / (ka - ke)
    cmax = C0 * ka / (ka - ke) * (np.exp(-ke * tmax) - np.exp(-ka * tmax))
    assert float(metrics.tmax(da)) == pytest.approx(tmax, abs=1e-3)
    assert float(metrics.cmax(da)) == pytest.approx(cmax, rel=1e-7)
    # AUC to infinity approached: C0/ke * (1 - tail)
    assert float(metrics.auc(da)) == pytest.approx(
        C0 * ka / (ka - ke) * ((1 - np.exp(-ke * 24)) / ke - (1 - np.exp(-ka * 24)) / ka),
        rel=1e-6)


def test_piecewise_linear_curves_are_exact():
    t = np.array([0.0, 1.0, 3.0, 4.0])
    da = xr.DataArray([0.0, 10.0, 10.0, 0.0], dims="time", coords={"time": t},
                      attrs={"units": "ng/mL"})
    assert float(metrics.auc(da)) == 30.0
    # above 5: from 0.5 h to 3.5 h
    assert float(metrics.time_above(da, 5.0)) == pytest.approx(3.0, abs=1e-14)
    assert float(metrics.auc(da, 0.5, 3.5)) == pytest.approx(2 * 0.5 * 7.5 + 20, abs=1e-12)
    assert float(metrics.cmax(da, 3.5, 4.0)) == 5.0


def test_periodic_cavg_ss():
    tau = 12.0
    da = curve(lambda t: 50 + 20 * np.sin(2 * np.pi * t / tau), t_end=72.0, n=7201)
    assert float(metrics.cavg_ss(da, "12 h")) == pytest.approx(50.0, rel=1e-8)
    with pytest.raises(ScenarioError):
        metrics.cavg_ss(da, "100 h")


def test_metrics_keep_other_dims():
    t = np.linspace(0, 10, 1001)
    k = np.array([0.1, 0.3, 0.9])
    da = xr.DataArray(C0 * np.exp(-np.outer(t, k)), dims=("time", "segment"),
                      coords={"time": t, "segment": ["A", "B", "C"]}, attrs={"units": "ng/mL"})
    a = metrics.auc(da)
    assert a.dims == ("segment",)
    assert np.allclose(a.values, C0 / k * (1 - np.exp(-10 * k)), rtol=1e-5)
    assert np.allclose(metrics.time_above(da, 50.0).values, np.minimum(np.log(2) / k, 10),
                       rtol=1e-6)


def test_bad_windows_are_scenario_errors():
    da = curve(lambda t: t)
    for start, stop in ((5, 2), (-1, 3), (0, 30)):
        with pytest.raises(ScenarioError):
            metrics.auc(da, start, stop)
    with pytest.raises(ScenarioError):
        metrics.time_above(da, "5 mg")


@pytest.fixture(scope="module")
def bolus_ds():
    return csfmodel.simulate({
        "simulation": {"duration": "24 h", "resolution": "2 cm", "output_interval": "10 min"},
        "dose": [{"route": "intrathecal", "type": "bolus", "site": "L3", "amount": "0.3 mg"}]})


def test_segment_coverage_and_supraspinal_on_results(bolus_ds):
    ds = bolus_ds
    thr = 100.0
    cov = metrics.segment_coverage(ds, thr)
    mx = ds.cord_concentration.max("time")
    assert np.array_equal(cov.reached.values, (mx >= thr).values)
    assert cov.attrs["n_covered"] == int((mx >= thr).sum())
    # a lumbar bolus covers caudal segments first: the covered set is one caudal block
    names = list(ds.segment.values)
    first = names.index(cov.attrs["covered"].split("-")[0])
    assert cov.reached.values[first:].all() and not cov.reached.values[:first].any()
    ta = cov.time_above.values
    assert np.all(ta[cov.reached.values] > 0) and np.all(ta[~cov.reached.values] == 0)
    sup = metrics.supraspinal(ds)
    k = int(np.argmax(ds.brain_concentration.values))
    assert float(sup.brain_cmax) == float(ds.brain_concentration[k])
    assert float(sup.brain_tmax) == float(ds.time[k])
    assert sup.brain_auc.attrs["units"] == "ng/mL*h"
    sel = metrics.selectivity(ds, "L1-L5")
    tgt = metrics.auc(ds.cord_concentration.sel(segment=["L1", "L2", "L3", "L4", "L5"]))
    assert float(sel.auc_ratio) == pytest.approx(float(tgt.min()) / float(sup.brain_auc))
    assert float(sel.auc_ratio) > 30  # IT: spinal targets far above brain (~70)


def test_metrics_cli_on_saved_results(bolus_ds, tmp_path, capsys):
    from csfmodel.cli import main

    path = tmp_path / "r.nc"
    csfmodel.save(bolus_ds, path)
    assert main(["metrics", str(path), "--threshold", "100 ng/mL", "--target", "L1-L5",
                 "--json", "--effects"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["coverage"]["n_covered"] == int((bolus_ds.cord_concentration.max("time")
                                                 >= 100).sum())
    assert out["series"]["brain ECF (unbound)"]["auc_ng_h_per_ml"] == pytest.approx(
        float(metrics.auc(bolus_ds.brain_concentration)))
    assert out["effects"]["respiratory_depression_tmax_h"] > 2
    assert main(["metrics", str(path), "--interval", "12 h"]) == 0
    assert "brain ECF" in capsys.readouterr().out
    assert main(["metrics", str(tmp_path / "missing.nc")]) == 2
