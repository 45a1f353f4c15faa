"""The command line: run, presets and help texts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import csfmodel
from csfmodel.cli import main

SCEN = """
[simulation]
duration = "4 h"
output_interval = "10 min"
resolution = "1 cm"

[[dose]]
route = "intrathecal"
type = "bolus"
site = "L3"
amount = "0.3 mg"
volume = "1 mL"
"""


def test_run_writes_netcdf_and_png(tmp_path, capsys):
    p = tmp_path / "s.toml"
    p.write_text(SCEN)
    code = main(["run", str(p), "-o", str(tmp_path / "o.nc"), "--plot", str(tmp_path / "o.png"),
                 "--solver", "reference"])
    out = capsys.readouterr().out
    assert code == 0
    assert "mass balance error" in out and "plasma" in out
    ds = csfmodel.load(tmp_path / "o.nc")
    assert float(ds.amount_dosed[-1]) == pytest.approx(0.3)
    png = (tmp_path / "o.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_presets_lists_drugs_levels_segments(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for word in ("morphine", "fentanyl", "sufentanil", "baclofen", "ziconotide",
                 "hydromorphone", "T10", "S5", "reference"):
        assert word in out


def test_help_teaches_and_import_is_light():
    out = subprocess.run([sys.executable, "-m", "csfmodel", "run", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "1 mg/day" in out and "csf_concentration" in out
    code = ("import sys, csfmodel; bad = [m for m in ('numba', 'jax') if m in sys.modules];"
            "print(','.join(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == ""


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


# ------------------------------------------------------------------ a light, fast --help
HEAVY = ("numba", "jax", "matplotlib", "netCDF4", "scipy", "xarray")
COMMANDS = ("run", "presets", "compare", "metrics", "validate", "sweep")


def test_import_and_every_help_load_no_heavy_module():
    """`import csfmodel`, `csfmodel --help` and `csfmodel COMMAND --help` stay light."""
    code = f"""
import contextlib, io, sys
import csfmodel
bad = {{"import csfmodel": [m for m in {HEAVY!r} if m in sys.modules]}}
from csfmodel.cli import main
for argv in [["--help"], ["--version"]] + [[c, "--help"] for c in {COMMANDS!r}]:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code == 0, (argv, exc.code)
    assert out.getvalue(), argv
    bad[" ".join(argv)] = [m for m in {HEAVY!r} if m in sys.modules]
print({{k: v for k, v in bad.items() if v}})
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "{}"


def test_lazy_package_attributes():
    code = ("import csfmodel; assert csfmodel.simulate is csfmodel.api.simulate; "
            "assert csfmodel.load is csfmodel.results.load; "
            "assert set(csfmodel.__all__) <= set(dir(csfmodel)); "
            "from csfmodel import *; from csfmodel import sweep, simulate_to_file; "
            "assert not hasattr(csfmodel, 'no_such_name')")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_copies_of_domain_names_agree():
    """The parsers list choices without importing the domain modules: same lists."""
    from csfmodel import compare
    from csfmodel.cli import _compare, _sweep

    assert _compare.ROUTES == compare.ROUTES
    sweep = pytest.importorskip("csfmodel.sweep")
    assert _sweep.VARIABLES == tuple(sweep.VARIABLES)


# ------------------------------------------------------------------ honest outputs
UNIT_SUFFIXES = ("_mg_per_day", "_ng_per_ml", "_h", "_cm", "_fraction", "_ratio",
                 "_dimensionless")


def _numbers_without_unit(obj, path=()):
    """Paths of the numbers with no unit suffix on their key or an enclosing key."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _numbers_without_unit(v, (*path, str(k)))]
    if isinstance(obj, list):
        return [p for v in obj for p in _numbers_without_unit(v, path)]
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return [] if any(k.endswith(UNIT_SUFFIXES) for k in path) else ["/".join(path)]
    return []


def test_compare_json_names_the_unit_of_every_number(capsys):
    assert main(["compare", "--resolution", "2 cm", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["elasticity_dimensionless"] and out["it_rate_by_site_mg_per_day"]
    assert _numbers_without_unit(out) == []
    assert "_ng_per_ml" in out["units"]
    it = [r for r in out["routes"] if r["route"] == "intrathecal"][0]
    assert it["daily_dose_mg_per_day"] > 0 and 0 < it["analgesia_fraction"] < 1
    assert out["dose_ratio"]["equianalgesic"]["intrathecal"] == 1
    assert out["clinical_rule_dose_ratio"]["oral"] == 300
    assert out["pd_parameters"]["ec50_spinal_ng_per_ml"] > 0


def test_compare_other_drug_names_the_cli_flags(capsys):
    assert main(["compare", "--drug", "hydromorphone", "--resolution", "2 cm",
                 "--spinal-ec50", "100 ng/mL"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("csfmodel: error: --drug: got 'hydromorphone'")
    assert "--spinal-ec50, --brain-ec50 and --resp-ec50" in err
    assert "missing --brain-ec50, --resp-ec50" in err and "EffectParameters" not in err
    assert main(["compare", "--drug", "hydromorphone", "--resolution", "2 cm",
                 "--no-sensitivity", "--spinal-ec50", "100 ng/mL", "--brain-ec50",
                 "2 ng/mL", "--resp-ec50", "2 ng/mL", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["drug"] == "hydromorphone"


@pytest.mark.parametrize("command", ["compare", "metrics"])
def test_target_help_says_what_it_takes(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "cord segment (C1 ... S5, e.g. T10)" in text and "T8-L1" in text
    assert "worst-covered segment" in text


def test_metrics_table_units_and_selectivity_only_with_target(tmp_path, capsys):
    p = tmp_path / "s.toml"
    p.write_text(SCEN)
    nc = tmp_path / "o.nc"
    assert main(["run", str(p), "-o", str(nc), "--solver", "reference"]) == 0
    capsys.readouterr()
    assert main(["metrics", str(nc), "--interval", "1 h", "--threshold", "10 ng/mL"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    for col in ("AUC ng*h/mL", "Cmax ng/mL", "Tmax h", "Cavg ng/mL", "Cavg,ss ng/mL",
                "t>thr h"):
        assert col in header
    assert "selectivity: not computed; give --target" in out and "AUC ratio" not in out
    assert main(["metrics", str(nc), "--json"]) == 0
    assert "selectivity" not in json.loads(capsys.readouterr().out)
    assert main(["metrics", str(nc), "--target", "L1-L5"]) == 0
    out = capsys.readouterr().out
    assert "selectivity (L1,L2,L3,L4,L5, worst-covered segment): AUC ratio" in out
    assert main(["metrics", str(nc), "--target", "L1-L5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["selectivity"]["target_segments"] == \
        "L1,L2,L3,L4,L5"
