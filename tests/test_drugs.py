"""Drug presets: sources marked, lipophilicity drives the rates, label CSF half-lives."""

from __future__ import annotations

import numpy as np
import pytest

import csfmodel
from csfmodel.drugs import DRUGS, get_drug


def test_every_preset_has_sources_and_valid_values():
    for name in ("morphine", "hydromorphone", "fentanyl", "sufentanil", "baclofen",
                 "ziconotide"):
        d = get_drug(name)
        d.validate()
        assert d.sources, name
    assert set(DRUGS) >= {"morphine", "hydromorphone", "fentanyl", "sufentanil", "baclofen",
                          "ziconotide"}


def test_lipophilicity_drives_meninges_and_tissue_partition():
    m, f, s = get_drug("morphine"), get_drug("fentanyl"), get_drug("sufentanil")
    assert m.meningeal_p() < f.meningeal_p() <= s.meningeal_p() * 1.01
    assert m.kp_cord() < f.kp_cord() < s.kp_cord()
    # Bernards & Hill 1990/1992: permeabilities of order 1e-3 cm/min
    for d in (m, f, s):
        assert 3e-4 <= d.meningeal_p() <= 3e-3


def _lumbar_half_life(drug: str, window: tuple[float, float]) -> float:
    ds = csfmodel.simulate({
        "simulation": {"duration": "14 h", "output_interval": "10 min", "resolution": "1 cm"},
        "drug": {"name": drug},
        "dose": [{"route": "intrathecal", "type": "bolus", "site": "L3-L4", "amount": "0.1 mg",
                  "volume": "1 mL", "delivery": "catheter"}]})
    c = ds.csf_concentration.sel(z=csfmodel.Anatomy().level_z("L3"), method="nearest").values
    t = ds.time.values
    sel = (t >= window[0]) & (t <= window[1])
    return float(-np.log(2) / np.polyfit(t[sel], np.log(c[sel]), 1)[0])


@pytest.mark.parametrize("drug,window,label", [
    ("ziconotide", (4.0, 12.0), 4.6),   # Prialt label 2004
    ("baclofen", (0.5, 4.0), 1.51),     # Lioresal Intrathecal label, first 4 h
])
def test_label_csf_half_lives_within_factor_two(drug, window, label):
    assert 0.5 <= _lumbar_half_life(drug, window) / label <= 2.0
