"""Every worked example scenario runs, conserves mass, and all backends agree on it."""

from __future__ import annotations

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


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "reference"])
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
