"""Anatomy: the vertebral and cord-segment maps and CSF volumes against their sources."""

from __future__ import annotations

import numpy as np
import pytest

from csfmodel.anatomy import CORD_SEGMENTS, VERTEBRAL_LEVELS, Anatomy
from csfmodel.drugs import get_drug
from csfmodel.model import build_model


def test_lengths_and_volumes_match_design_numbers():
    a = Anatomy()
    assert a.length == pytest.approx(61.0)                       # ~60 cm (Sincomb 2022)
    assert a.csf_volume_between(0, a.length) == pytest.approx(95.0)  # Chen 2017
    lumbosacral = a.csf_volume_between(a.level_z("T11", 1.0), a.length)
    assert abs(lumbosacral - 49.9) < 12.1                         # Hogan 1996: 49.9 +- 12.1
    # cranial CSF by MRI volumetry (Condon 1986): ventricles 25.3 mL, extraventricular
    # 97.6 mL; with the 95 mL spinal SAS, 218 mL in all
    assert a.ventricular_volume == pytest.approx(25.3, abs=0.5)
    assert a.cisternal_volume + a.cortical_sas_volume == pytest.approx(97.6, abs=0.5)
    assert a.total_csf_volume == pytest.approx(218.0)
    assert len(VERTEBRAL_LEVELS) == 26 and len(CORD_SEGMENTS) == 30


def test_cord_segments_sit_above_their_vertebrae():
    a = Anatomy()
    e = a.segment_edges()
    seg = dict(zip(CORD_SEGMENTS, zip(e[:-1], e[1:])))
    # conus near L1; lumbar segments behind T10-T12, sacral behind T12-L1
    assert a.level_at(a.conus_z) == "L1"
    for s in ("L1", "L3", "L5"):
        assert a.level_at(np.mean(seg[s])) in ("T10", "T11", "T12")
    for s in ("S1", "S3", "S5"):
        assert a.level_at(np.mean(seg[s])) in ("T12", "L1")
    assert a.level_at(np.mean(seg["C8"])) == "C7"
    assert np.all(np.diff(e) > 0)
    assert 40 < a.conus_z < 46                                    # cord ~45 cm


def test_cord_area_matches_frostell():
    a = Anatomy()
    e = a.segment_edges()
    c5 = 0.5 * (e[4] + e[5])
    t8 = 0.5 * (e[15] + e[16])
    assert a.cord_area(c5) == pytest.approx(np.pi / 4 * 1.33 * 0.74, rel=0.02)
    assert a.cord_area(t8) == pytest.approx(np.pi / 4 * 0.83 * 0.63, rel=0.02)
    assert a.cord_area(a.conus_z + 0.1) == 0.0


@pytest.mark.parametrize("res", [0.5, 0.2, 0.1])
def test_grid_conserves_volumes_and_maps_every_segment(res):
    m = build_model(Anatomy(), get_drug("morphine"), res)
    g = m.grid
    assert g.csf_volume.sum() == pytest.approx(95.0, rel=1e-12)
    assert np.all(g.segment_weights.sum(axis=1) > 0)   # every segment sees some cord cells
    assert g.cord_volume.sum() == pytest.approx(g.segment_weights.sum(), rel=1e-12)
    assert g.dz <= res * (1 + 1e-12)


def test_overrides_move_the_conus_and_scale_volumes():
    a = Anatomy().with_overrides({"conus_level": "L2", "spinal_csf_volume": 80.0})
    assert a.level_at(a.conus_z) == "L2"
    assert a.csf_volume_between(0, a.length) == pytest.approx(80.0)
    assert a.segment_edges()[-1] == pytest.approx(a.conus_z)
