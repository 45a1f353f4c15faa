"""Fitting: parameters recovered from synthetic data, the report, the CLI and bad data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from csfmodel.api import simulate
from csfmodel.cli import main
from csfmodel.errors import ScenarioError
from csfmodel.fitting import fit, read_observations
from csfmodel.fitting._parameters import resolve, with_values
from csfmodel.scenario import parse_scenario

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fit"
DESIGN = {"simulation": {"duration": "12 h", "output_interval": "10 min", "resolution": "2 cm"},
          "dose": [{"route": "intrathecal", "type": "bolus", "site": "L3-L4",
                    "amount": "0.5 mg", "volume": "1 mL"}]}
KEYS = ["patient.dispersion", "drug.meningeal_permeability", "patient.injection_spread"]
TIMES = (0.25, 0.5, 1, 2, 3, 4, 6, 8, 10, 12)


def _synthetic(tmp_path: Path, factors, noise: float, seed: int) -> tuple[Path, np.ndarray]:
    """Observations of DESIGN with the KEYS scaled by ``factors`` (true values returned in
    the scenario's units), log-normal noise of SD ``noise``."""
    sc = parse_scenario(DESIGN)
    ps = resolve(sc, KEYS)
    true = np.array([p.value for p in ps]) * np.asarray(factors)
    data = with_values(sc, ps, true)
    data["simulation"]["output_interval"] = "5 min"     # every sample time is an output time
    ds = simulate(parse_scenario(data), rtol=1e-8)
    rng = np.random.default_rng(seed)
    z = sc.anatomy.level_z("L3", 1.0)
    rows = ["time_h,site,value,unit"]
    for t in TIMES:
        for site, v in (("L3-L4", ds.csf_concentration.interp(z=z, time=t)),
                        ("cisterna", ds.cisternal_csf_concentration.interp(time=t)),
                        ("plasma", ds.plasma_concentration.interp(time=t))):
            value = float(float(v) * np.exp(noise * rng.standard_normal()))
            rows.append(f"{t},{site},{value!r},ng/mL")
    path = tmp_path / "obs.csv"
    path.write_text("\n".join(rows) + "\n")
    return path, true / np.array([p.factor for p in ps])


def test_noise_free_data_are_fitted_exactly(tmp_path):
    """Without noise the estimates are the true values (the fit starts from the
    defaults, 20-40 % away)."""
    path, true = _synthetic(tmp_path, (1.4, 0.75, 0.8), noise=0.0, seed=0)
    res = fit(DESIGN, path, KEYS, profile=False, rtol=1e-8)
    assert res.converged
    got = np.array(list(res.estimates().values()))
    np.testing.assert_allclose(got, true, rtol=2e-3)
    assert res.objective < 1e-5


def test_three_parameters_recovered_within_their_intervals(tmp_path):
    """Two-three perturbed at once, 10 % log noise (fixed seed): each true value lies
    inside its reported 95 % interval (Laplace) and the residual SD is the noise's."""
    path, true = _synthetic(tmp_path, (1.6, 0.7, 0.8), noise=0.1, seed=3)
    res = fit(DESIGN, path, KEYS, profile=False)
    assert res.converged
    for (key, v), t in zip(res.parameters.items(), true):
        assert v["ci_low"] < t < v["ci_high"], (key, v, t)
        assert v["ci_low"] < v["estimate"] < v["ci_high"]
        assert v["rse_percent"] > 0
    assert 0.06 < res.sigma < 0.14
    assert res.correlation.shape == (3, 3)
    np.testing.assert_allclose(np.diag(res.correlation), 1.0)
    assert len(res.residuals) == 30


@pytest.mark.slow
def test_profile_intervals_bracket_the_estimate(tmp_path):
    path, _ = _synthetic(tmp_path, (1.6, 0.7, 0.8), noise=0.1, seed=3)
    res = fit(DESIGN, path, KEYS[:2])
    for v in res.parameters.values():
        assert v["profile_low"] is not None
        assert v["profile_low"] < v["estimate"] < v["profile_high"]
        # the profile interval is close to the Laplace one for a well-determined parameter
        assert abs(np.log(v["profile_high"] / v["laplace_high"])) < 0.3


def test_priors_pull_towards_the_defaults(tmp_path):
    path, _ = _synthetic(tmp_path, (1.6, 0.7, 0.8), noise=0.1, seed=3)
    free = fit(DESIGN, path, KEYS[:1], profile=False)
    tight = fit(DESIGN, path, KEYS[:1], priors={"patient.dispersion": 0.01}, profile=False)
    d0 = 8.3
    assert abs(tight.estimates()["patient.dispersion"] - d0) < \
        abs(free.estimates()["patient.dispersion"] - d0)
    assert abs(tight.estimates()["patient.dispersion"] / d0 - 1) < 0.03


def test_cli_writes_the_fit_json_in_the_scenario_units(tmp_path, capsys):
    out = tmp_path / "fit.json"
    rc = main(["fit", str(EXAMPLE / "lumbar_bolus_design.toml"),
               str(EXAMPLE / "lumbar_bolus_data.csv"), "--param", "patient.dispersion",
               "--param", "drug.meningeal_permeability", "--no-profile", "-o", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["converged"] is True
    p = doc["parameters"]["patient.dispersion"]
    assert p["unit"] == "cm^2/min"
    assert p["ci_low"] < p["estimate"] < p["ci_high"]
    m = doc["parameters"]["drug.meningeal_permeability"]
    assert m["unit"] == "cm/min" and 1e-4 < m["estimate"] < 1e-2
    assert p["profile_low"] is None                # --no-profile: Laplace intervals
    assert doc["correlation"]["keys"] == ["patient.dispersion", "drug.meningeal_permeability"]
    assert doc["objective"] > 0
    assert "patient.dispersion" in capsys.readouterr().out
    assert sorted(x.name for x in tmp_path.iterdir()) == ["fit.json"]   # no figure unasked


BAD = [
    ("time_h,site,value\n1,L3,5\n", "row 1", "column unit is missing"),
    ("time_h,site,value,unit\n1,L9,5,ng/mL\n", "row 2, column site", "vertebral level"),
    ("time_h,site,value,unit\n1,cord:X1,5,ng/mL\n", "row 2, column site", "cord:<segment>"),
    ("time_h,site,value,unit\n1,L3,5,ng/mL\n2,L3,5,mg/day\n", "row 3, column unit",
     "concentration unit"),
    ("time_h,site,value,unit\n1,L3,-5,ng/mL\n", "row 2, column value", "0 or more"),
    ("time_h,site,value,unit\n1,L3,0,ng/mL\n", "row 2, column value", "positive"),
    ("time_h,site,value,unit\n99,L3,5,ng/mL\n", "row 2, column time_h", "0 to 12 h"),
    ("time_h,site,value,unit\n1,L3,abc,ng/mL\n", "row 2, column value", "a number"),
    ("time_h,site,value,unit,sd\n1,L3,5,ng/mL,\n", "row 2, column sd", "standard deviation"),
    ("time_h,site,value,unit\n", "obs.csv", "at least one"),
]


@pytest.mark.parametrize("text,where,what", BAD)
def test_bad_data_names_row_and_column(tmp_path, text, where, what):
    path = tmp_path / "obs.csv"
    path.write_text(text)
    with pytest.raises(ScenarioError) as exc:
        read_observations(path, parse_scenario(DESIGN))
    msg = str(exc.value)
    assert where in msg and what in msg, msg
    assert "\n" not in msg


def test_cli_bad_data_exits_2_with_one_line(tmp_path, capsys):
    data = tmp_path / "obs.csv"
    data.write_text("time_h,site,value,unit\n1,L3,5,ng/mL\n2,spleen,5,ng/mL\n")
    rc = main(["fit", str(EXAMPLE / "lumbar_bolus_design.toml"), str(data), "--param",
               "patient.dispersion", "-o", str(tmp_path / "fit.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert "row 3, column site" in err[-1] and "spleen" in err[-1]
    assert not (tmp_path / "fit.json").exists()


def test_units_and_sites_are_read(tmp_path):
    path = tmp_path / "obs.csv"
    path.write_text("time_h,site,value,unit,sd\n1,L3-L4,2,ug/mL,0.1\n2,cord:T10,30,ug/L,3\n"
                    "3,plasma,0,ng/mL,0.1\n4, brain ,1,mg/L,0.2\n")
    obs = read_observations(path, parse_scenario(DESIGN))
    np.testing.assert_allclose(obs.value, [2000.0, 30.0, 0.0, 1000.0])
    np.testing.assert_allclose(obs.sd, [100.0, 3.0, 0.1, 200.0])
    assert obs.variable == ("csf_concentration", "cord_concentration", "plasma_concentration",
                            "brain_concentration")
    np.testing.assert_allclose(obs.time, [60.0, 120.0, 180.0, 240.0])
    assert obs.has_sd
