"""Validation against published human data: scoring, designs, the CLI command."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import replace

import numpy as np
import pytest

import csfmodel
from csfmodel.cli import main
from csfmodel.validation import (
    DESIGNS,
    FACTOR,
    auc_inf,
    load_rows,
    run_validation,
    score,
    sensitivity,
    terminal_half_life,
)


@pytest.fixture(scope="module")
def rows():
    return load_rows()


@pytest.fixture(scope="module")
def results(rows):
    return run_validation(rows)


def _write(rows_text: list[dict], path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows_text[0]))
        w.writeheader()
        w.writerows(rows_text)


def _raw_rows() -> list[dict]:
    from importlib import resources

    text = resources.files("csfmodel").joinpath("data/calibration.csv").read_text()
    return list(csv.DictReader(io.StringIO(text)))


# ------------------------------------------------------------------- the data
def test_packaged_table_has_every_row_with_its_source(rows):
    assert len(rows) == 16
    assert len({r.id for r in rows}) == len(rows)
    for r in rows:
        assert r.study and any(ch.isdigit() for ch in r.study), r.id  # author + year
        assert r.value > 0 and r.unit
    designed = {k for d in DESIGNS for k in d.measures}
    assert {r.id for r in rows} == designed


# -------------------------------------------------------------------- scoring
def test_score_band_edges(rows):
    row = next(r for r in rows if r.measure == "concentration")
    assert score(row, row.value) == (1.0, True)
    assert score(row, row.value * FACTOR * 0.999)[1]
    assert not score(row, row.value * FACTOR * 1.001)[1]
    assert score(row, row.value / FACTOR * 1.001)[1]
    assert not score(row, row.value / FACTOR * 0.999)[1]
    ratio, ok = score(row, float("nan"))
    assert math.isnan(ratio) and not ok


def test_score_upper_bound_is_one_sided(rows):
    row = next(r for r in rows if r.measure == "upper_bound")
    assert score(row, 0.0)[1]               # far below a bound passes
    assert score(row, row.value * 1.9)[1]
    assert not score(row, row.value * 2.1)[1]


def test_half_life_and_auc_of_an_exponential():
    t = np.linspace(0, 24, 24 * 60 + 1)  # h
    k = np.log(2) / 150.0                  # 150 min half-life
    c = 100.0 * np.exp(-k * t * 60)
    assert terminal_half_life(t[t >= 2], c[t >= 2]) == pytest.approx(150.0, rel=1e-9)
    # trapezoids on 1 min steps: relative error (k h)^2 / 12 = 1.8e-6
    assert auc_inf(t, c, 2.0) == pytest.approx(100.0 / k, rel=3e-6)
    # a curve that has died out (with round-off below zero) is not extrapolated
    c2 = np.where(t > 20, -1e-12, c)
    assert np.isfinite(auc_inf(t, c2, 10.0))


# -------------------------------------------------------------------- designs
def test_every_row_within_a_factor_of_two(results):
    bad = [(r.row.id, r.model, r.ratio) for r in results if not r.passed]
    assert not bad, bad


def test_injection_loss_reaches_plasma_and_mass_is_conserved():
    """The early plasma peak comes from the injection loss: without it, plasma is low."""
    sc = {"simulation": {"duration": "1 h", "output_interval": "5 min"},
          "dose": [{"route": "intrathecal", "type": "bolus", "site": "L3-L4",
                    "amount": "0.3 mg", "volume": "1 mL"}]}
    ds = csfmodel.simulate(sc)
    sc0 = {**sc, "patient": {"injection_loss": 0.0}}
    ds0 = csfmodel.simulate(sc0)
    _, model, *_ = csfmodel.prepare(sc)
    loss = model.anatomy.injection_loss
    assert float(ds.amount.sel(pool="plasma")[0] + ds.amount.sel(pool="peripheral")[0]) \
        == pytest.approx(0.3 * loss, rel=1e-12)
    p5 = float(ds.plasma_concentration.sel(time=5 / 60, method="nearest"))
    p5_0 = float(ds0.plasma_concentration.sel(time=5 / 60, method="nearest"))
    assert p5 > 10 * p5_0
    err = np.abs(ds.amount_dosed - ds.amount_present - ds.amount_eliminated).max()
    assert float(err) < 1e-12
    # a 20 uL pump bolus loses 2 % of what a 1 mL injection does
    pump = replace(model.anatomy, injection_loss=loss)
    from csfmodel.model import build_model, deposit

    m = build_model(pump, model.drug, 1.0)
    y = deposit(m, 50.0, 100.0, volume=0.02, injection_rate=0.1)
    assert y[m.system.index("plasma")] == pytest.approx(100.0 * loss * 0.02)
    assert y.sum() == pytest.approx(100.0)


def test_sensitivities_have_the_physical_signs(rows):
    sj = [r for r in rows if r.id in ("sjostrom87_plasma_cmax", "sjostrom87_cmax")]
    s = sensitivity(sj)
    # plasma early peak is carried by the injection loss, nearly proportionally
    assert 0.8 < s["injection_loss"]["sjostrom87_plasma_cmax"] < 1.1
    # a wider injection spread dilutes the early lumbar CSF
    assert s["injection_spread"]["sjostrom87_cmax"] < -0.2
    # CR absorption does not touch intrathecal rows
    assert abs(s["ka_cr"]["sjostrom87_cmax"]) < 1e-6


# ------------------------------------------------------------------------ CLI
def test_validate_command_passes_and_draws(tmp_path, capsys):
    fig = tmp_path / "validation.png"
    assert main(["validate", "--figure", str(fig)]) == 0
    out = capsys.readouterr().out
    assert "16/16 rows within a factor of 2" in out
    assert "nordberg84_lumbar_1h_05" in out and " NO" not in out
    assert fig.stat().st_size > 10_000


def test_validate_exits_nonzero_when_a_row_fails(tmp_path, capsys):
    raw = _raw_rows()
    for r in raw:
        if r["id"] == "kroin93_tracer_gradient":
            r["value"] = "0.05"  # a gradient the model cannot make
    p = tmp_path / "cal.csv"
    _write(raw, p)
    assert main(["validate", "--data", str(p), "--no-figure"]) == 1
    cap = capsys.readouterr()
    assert "15/16 rows" in cap.out
    assert "kroin93_tracer_gradient" in cap.err


def test_row_without_a_design_fails(tmp_path, capsys):
    raw = _raw_rows()[:1]
    raw[0] = {**raw[0], "id": "unknown_study_row"}
    p = tmp_path / "cal.csv"
    _write(raw, p)
    assert main(["validate", "--data", str(p), "--no-figure"]) == 1
    assert "unknown_study_row" in capsys.readouterr().err


def test_unreadable_or_malformed_data_is_a_clear_error(tmp_path, capsys):
    assert main(["validate", "--data", str(tmp_path / "missing.csv"), "--no-figure"]) == 2
    assert "--data" in capsys.readouterr().err
    p = tmp_path / "bad.csv"
    p.write_text("id,value\nx,1\n")
    assert main(["validate", "--data", str(p), "--no-figure"]) == 2
    assert "missing" in capsys.readouterr().err


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_injection_loss_outside_zero_one_is_refused(value):
    from csfmodel.errors import ScenarioError

    with pytest.raises(ScenarioError, match="injection_loss"):
        csfmodel.prepare({"patient": {"injection_loss": value}})
