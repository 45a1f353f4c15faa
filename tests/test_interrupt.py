"""Ctrl-C during a long run keeps what was computed: partial results are saved."""

from __future__ import annotations

import numpy as np
import pytest

import csfmodel
import csfmodel.solvers.reference as reference
from csfmodel.api import SimulationInterrupted
from csfmodel.cli import main

SC = """
[simulation]
duration = "10 h"
output_interval = "30 min"
resolution = "2 cm"

[[dose]]
route = "iv"
type = "bolus"
amount = "5 mg"
interval = "2 h"
count = 5
"""


@pytest.fixture
def interrupt_on_third_interval(monkeypatch):
    real = reference.solve_ivp
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(reference, "solve_ivp", flaky)


def test_simulate_returns_partial_results(tmp_path, interrupt_on_third_interval):
    p = tmp_path / "s.toml"
    p.write_text(SC)
    with pytest.raises(SimulationInterrupted) as exc:
        csfmodel.simulate(p, solver="reference")
    part = exc.value.partial
    # intervals [0, 2) and [2, 4) h were finished: outputs 0 ... 3.5 h
    np.testing.assert_allclose(part.time.values, np.arange(0, 4, 0.5))
    assert "stopped by the user at t = 3.5 h of 10 h" == part.attrs["interrupted"]
    full = csfmodel.simulate(p, solver="reference")  # not interrupted any more
    np.testing.assert_allclose(part.plasma_concentration.values,
                               full.plasma_concentration.values[:8], rtol=1e-12)


def test_cli_saves_partial_results_and_exits_130(tmp_path, capsys, interrupt_on_third_interval):
    p = tmp_path / "s.toml"
    p.write_text(SC)
    assert main(["run", str(p), "-o", str(tmp_path / "o.nc"), "--solver", "reference"]) == 130
    assert "partial results saved" in capsys.readouterr().err
    assert csfmodel.load(tmp_path / "o.nc").sizes["time"] == 8
