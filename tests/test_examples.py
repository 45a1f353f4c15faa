"""Every worked example scenario runs, conserves mass, and all backends agree on it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import csfmodel
from csfmodel.solvers import BACKENDS

EXAMPLES = sorted((Path(__file__).parents[1] / "examples" / "scenarios").glob("*.toml"))
VARS = ("csf_concentration", "cord_concentration", "cisternal_csf_concentration",
        "brain_concentration", "plasma_concentration", "amount_present")


@pytest.fixture(scope="module", params=EXAMPLES, ids=[p.stem for p in EXAMPLES])
def reference(request):
    return request.param, csfmodel.simulate(request.param, solver="reference")


def test_examples_exist():
    assert len(EXAMPLES) >= 5


def test_example_runs_and_conserves_mass(reference):
    _, ds = reference
    dosed = ds.amount_dosed.values
    assert dosed[-1] > 0
    err = np.abs(dosed - ds.amount_present.values - ds.amount_eliminated.values).max()
    assert err <= 1e-9 * dosed.max()
    for v in VARS:
        assert np.all(np.isfinite(ds[v].values)) and ds[v].values.min() > -1e-9 * ds[v].max()


@pytest.mark.parametrize("backend", [
    pytest.param(b, marks=pytest.mark.skipif(
        b == "jax" and importlib.util.find_spec("jax") is None, reason="jax not installed"))
    for b in BACKENDS if b != "reference"])
def test_backend_matches_reference_on_example(reference, backend):
    """Max |difference| / peak below 1e-3 for every output, as the solver contract asks."""
    path, ref = reference
    ds = csfmodel.simulate(path, solver=backend)
    for v in VARS:
        peak = np.abs(ref[v].values).max()
        diff = np.abs(ds[v].values - ref[v].values).max()
        assert diff <= 1e-3 * peak, (v, diff / peak)
    dosed = ds.amount_dosed.values
    err = np.abs(dosed - ds.amount_present.values - ds.amount_eliminated.values).max()
    assert err <= 1e-9 * dosed.max()


def test_catheter_position_teaching_script(tmp_path):
    """The teaching script runs and shows the rostral tip reaching more brain."""
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "examples" / "catheter_position.py"
    out = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "c.png")],
                         capture_output=True, text=True, check=True).stdout
    brain = [float(line.split("brain at 24 h")[1].split()[0]) for line in out.splitlines()
             if line.startswith("tip")]
    assert len(brain) == 5 and brain == sorted(brain, reverse=True)   # T4 > ... > L2
    assert (tmp_path / "c.png").stat().st_size > 20_000

