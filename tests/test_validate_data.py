"""``csfmodel validate --data``: rows whose design is given in their columns.

A row with a new id is run from its route, dose, site, volume, sample site, measure and
time; its number must equal the built-in design's where the design is the same, and
``simulate`` where the measure is a concentration at a time. Rows that cannot be run are
reported with the row, the column and the reason (exit status 2)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

import csfmodel
from csfmodel import validation as val
from csfmodel.anatomy import Anatomy
from csfmodel.cli import main
from csfmodel.errors import ScenarioError

HEADER = ("id,study,route,dose_mg,dose_site,injected_volume_ml,sample_site,measure,time_h,"
          "value,spread,unit,note")


def _table() -> dict[str, list[str]]:
    from importlib import resources

    text = resources.files("csfmodel").joinpath("data/calibration.csv").read_text("utf-8")
    return {r[0]: r for r in list(csv.reader(io.StringIO(text)))[1:]}


def _write(tmp_path, lines: list[str], name: str = "rows.csv"):
    p = tmp_path / name
    p.write_text("\n".join([HEADER] + lines) + "\n", encoding="utf-8")
    return p


def _copy(row_id: str, new_id: str) -> str:
    """A packaged row under a new id, as a CSV line."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([new_id] + _table()[row_id][1:])
    return buf.getvalue()


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """One run over rows whose numbers are known (shared runs keep it fast)."""
    tmp = tmp_path_factory.mktemp("rows")
    path = _write(tmp, [
        _copy("nordberg84_lumbar_1h_025", "nordberg84_lumbar_1h_025"),      # built-in
        _copy("nordberg84_lumbar_1h_025", "copy_nordberg_1h"),              # same, by columns
        _copy("moulin86_lumbar_cisternal_tipL2", "moulin86_lumbar_cisternal_tipL2"),
        _copy("moulin86_lumbar_cisternal_tipL2", "copy_moulin_tipL2"),
        "t10_2h,me,intrathecal_bolus,0.25,L3-L4,,T10 CSF,concentration,2,1,,ug/mL,",
        "cord_3h,me,intrathecal_bolus,0.25,L3-L4,,cord:T10,concentration,3,100,,ng/mL,",
        "thalf_min,me,intrathecal_bolus,0.25,L3-L4,,lumbar CSF,terminal_half_life_min,,175,,min,",
        "thalf_h,me,intrathecal_bolus,0.25,L3-L4,,lumbar CSF,terminal_half_life_min,,3,,h,",
        "cl_ml,me,intrathecal_bolus,0.25,L3-L4,,lumbar CSF,clearance,,0.2,,mL/min,",
        "cl_kg,me,intrathecal_bolus,0.25,L3-L4,,lumbar CSF,clearance,,2.8,,uL/kg/min,",
        "bad_site,me,intrathecal_bolus,0.25,L3-L4,,spleen,concentration,1,10,,ng/mL,",
        "bad_measure,me,intrathecal_bolus,0.25,L3-L4,,lumbar CSF,mrt,,10,,min,",
    ])
    rows = val.read_rows(path)
    results, reasons, runs = val.run_rows(rows, source=str(path), return_runs=True)
    return path, {r.row.id: r for r in results}, reasons, runs


def test_copied_rows_give_the_built_in_numbers(scored):
    _, res, reasons, _ = scored
    # a copy of a packaged row with a new id runs the same design from its columns
    assert res["copy_nordberg_1h"].model == pytest.approx(
        res["nordberg84_lumbar_1h_025"].model, rel=1e-9)
    assert res["copy_nordberg_1h"].passed and "intrathecal bolus" in res["copy_nordberg_1h"].how
    # a plateau ratio (infusion without a time): lumbar puncture over cisterna, tip at L2
    assert res["copy_moulin_tipL2"].model == pytest.approx(
        res["moulin86_lumbar_cisternal_tipL2"].model, rel=1e-9)
    assert "copy_nordberg_1h" not in reasons and "copy_moulin_tipL2" not in reasons


def test_concentration_rows_equal_simulate(scored):
    _, res, _, runs = scored
    ds = runs["user:t10_2h"].ds
    a = Anatomy()
    direct = csfmodel.simulate({
        "simulation": {"duration": "24 h", "output_interval": "1 min", "resolution": "5 mm"},
        "drug": {"name": "morphine"},
        "dose": [{"route": "intrathecal", "type": "bolus", "site": "L3-L4", "amount": "0.25 mg",
                  "volume": "1 mL", "injection_rate": "4 mL/min"}]})
    c_t10 = float(direct.csf_concentration.interp(z=a.level_z("T10", 0.5)).sel(time=2.0))
    assert res["t10_2h"].model == pytest.approx(c_t10 / 1000.0, rel=1e-9)   # ug/mL
    assert res["t10_2h"].ratio == pytest.approx(c_t10 / 1000.0, rel=1e-9)   # observed 1
    c_cord = float(direct.cord_concentration.sel(segment="T10", time=3.0))
    assert res["cord_3h"].model == pytest.approx(c_cord, rel=1e-9)
    assert runs["user:cord_3h"] is runs["user:t10_2h"]   # one design, one run
    np.testing.assert_allclose(ds.csf_concentration.values, direct.csf_concentration.values,
                               rtol=1e-12)


def test_units_and_measures(scored):
    _, res, _, runs = scored
    # the same half-life in min and in h; a clearance in mL/min and per kg (70 kg)
    assert res["thalf_h"].model == pytest.approx(res["thalf_min"].model / 60.0, rel=1e-12)
    assert res["cl_kg"].model == pytest.approx(res["cl_ml"].model / 70.0 * 1000.0, rel=1e-12)
    # the half-life is the log-linear slope of the curve from 2 to 24 h: check against
    # the curve's own decay over that window
    ds = runs["user:thalf_min"].ds
    t = ds.time.values
    c = ds.csf_concentration.interp(z=Anatomy().level_z("L3", 1.0)).values  # lumbar: L3-L4
    sel = (t >= 2.0) & (t <= 24.0)
    slope = np.polyfit(t[sel] * 60.0, np.log(c[sel]), 1)[0]
    assert res["thalf_min"].model == pytest.approx(np.log(2.0) / -slope, rel=1e-12)
    assert 60.0 < res["thalf_min"].model < 400.0
    # clearance = dose / AUC(0-inf): AUC by trapezoids at least as large as the
    # curve's own integral to 24 h
    auc24 = np.trapezoid(c, t * 60.0) / 1000.0      # ug/mL*min
    assert res["cl_ml"].model <= 250.0 / auc24 * (1 + 1e-9)
    assert res["cl_ml"].model > 0.5 * 250.0 / auc24


def test_rows_that_cannot_run_are_reported_with_the_reason(scored):
    path, res, reasons, _ = scored
    assert set(reasons) == {"bad_site", "bad_measure"}
    assert f"{path}, row 12 (bad_site), column sample_site: got 'spleen'" in reasons["bad_site"]
    assert "column measure: got 'mrt'" in reasons["bad_measure"]
    assert "terminal_half_life_min" in reasons["bad_measure"]
    for rid in reasons:
        assert np.isnan(res[rid].model) and not res[rid].passed
        assert res[rid].how.startswith("cannot run")


@pytest.mark.parametrize("line,column", [
    ("a,me,intrathecal_bolus,0.25,,,lumbar CSF,concentration,1,10,,ng/mL,", "dose_site"),
    ("a,me,intrathecal_bolus,0.25,Z9,,lumbar CSF,concentration,1,10,,ng/mL,", "dose_site"),
    ("a,me,intrathecal_bolus,,L3-L4,,lumbar CSF,concentration,1,10,,ng/mL,", "dose_mg"),
    ("a,me,intrathecal_bolus,0.25,L3-L4,,lumbar CSF,concentration,,10,,ng/mL,", "time_h"),
    ("a,me,intrathecal_bolus,0.25,L3-L4,,lumbar CSF,concentration,1,10,,min,", "unit"),
    ("a,me,intrathecal_bolus,0.25,L3-L4,,lumbar CSF,ratio,1,10,,1,", "sample_site"),
    ("a,me,subcutaneous,0.25,,,plasma,concentration,1,10,,ng/mL,", "route"),
    ("a,me,intrathecal_bolus_hyperbaric,2,L5-S1,,T10 CSF,cmax,,2000,,ng/mL,", "route"),
    ("a,me,intrathecal_infusion,1,L2,,lumbar CSF,cmax,,10,,ng/mL,", "time_h"),
    ("a,me,intrathecal_infusion,1,L2,,lumbar CSF,clearance,,10,,mL/min,", "measure"),
])
def test_user_design_reasons(line, column):
    rec = next(csv.DictReader(io.StringIO(HEADER + "\n" + line)))
    r = val.Row(id=rec["id"], study="", route=rec["route"],
                dose_mg=float(rec["dose_mg"]) if rec["dose_mg"] else None,
                dose_site=rec["dose_site"], injected_volume_ml=None,
                sample_site=rec["sample_site"], measure=rec["measure"],
                time_h=float(rec["time_h"]) if rec["time_h"] else None,
                value=float(rec["value"]), spread=None, unit=rec["unit"], note="")
    with pytest.raises(ScenarioError, match=f"row a, column {column}"):
        val.user_design(r)


def test_cli_runs_rows_and_reports_the_ones_it_cannot_run(tmp_path, capsys):
    path = _write(tmp_path, [
        _copy("nordberg84_lumbar_1h_025", "mine_1h"),
        "mine_bad,me,intrathecal_bolus,0.25,L3-L4,,spleen,concentration,1,10,,ng/mL,"])
    rc = main(["validate", "--data", str(path), "--designs"])
    out, err = capsys.readouterr()
    assert rc == 2
    line = next(x for x in out.splitlines() if x.startswith("mine_1h "))
    assert line.split()[-1] == "yes" and "nan" not in line
    assert "mine_1h: 0.25 mg intrathecal bolus at L3-L4 in 1.0 mL" in out
    assert "rows that cannot be run:" in out and "row 3 (mine_bad), column sample_site" in out
    assert err.count("\n") == 1 and "mine_bad" in err and "Traceback" not in err


def test_cli_bad_cell_names_row_and_column(tmp_path, capsys):
    path = _write(tmp_path, ["x,me,intrathecal_bolus,0.25,L3-L4,,lumbar CSF,concentration,"
                             "1,abc,,ng/mL,"])
    rc = main(["validate", "--data", str(path)])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert f"{path}, row 2 (x), column value" in err and "Traceback" not in err
    path = _write(tmp_path, ["x,me,intrathecal_bolus,-1,L3-L4,,lumbar CSF,concentration,"
                             "1,5,,ng/mL,"], "neg.csv")
    assert main(["validate", "--data", str(path)]) == 2
    assert "column dose_mg" in capsys.readouterr().err
