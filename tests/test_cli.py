"""The command line: run, presets and help texts."""

from __future__ import annotations

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
