"""The overview figure says what was given, where, and what the pump did."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import csfmodel  # noqa: E402
from csfmodel.plotting import dose_sites, plot_kymograph, plot_overview, regimen_title  # noqa: E402

SIM = {"duration": "10 h", "output_interval": "15 min", "resolution": "1 cm"}
PUMP = {
    "simulation": SIM,
    "dose": [
        {"route": "intrathecal", "type": "infusion", "site": "T10", "rate": "1 mg/day"},
        {"route": "intrathecal", "type": "patient_bolus", "site": "T10", "amount": "0.05 mg",
         "lockout": "3 h", "max_per_day": 2, "requests": ["1 h", "2 h", "4.5 h", "9 h"]},
    ],
}


def _sc(*doses: dict, duration: str = "3 h") -> dict:
    return {"simulation": dict(SIM, duration=duration), "dose": list(doses)}


NEEDLE = _sc({"route": "intrathecal", "type": "bolus", "site": "L3-L4", "amount": "0.5 mg",
              "volume": "2 mL"})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def pump():
    return csfmodel.simulate(PUMP)


@pytest.fixture(scope="module")
def needle():
    return csfmodel.simulate(NEEDLE)


def _ax(fig, title: str):
    """The panel of the overview whose title starts with ``title``."""
    hits = [a for a in fig.axes if a.get_title().startswith(title)]
    assert len(hits) == 1, title
    return hits[0]


def _panels(fig):
    """kymograph, cord segments, profiles, exposure."""
    return [_ax(fig, t) for t in ("Spinal CSF", "Dorsal-horn", "Profiles", "Supraspinal")]


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _legend(ax) -> list[str]:
    leg = ax.get_legend()
    return [t.get_text() for t in leg.get_texts()] if leg else []


def _by_gid(ax, gid: str):
    hits = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    assert len(hits) == 1, gid
    return hits[0]


def test_title_names_the_regimen_not_the_solver(pump):
    fig = plot_overview(pump)
    title = fig.get_suptitle()
    for part in ("morphine", "IT infusion at T10", "1 mg/day",
                 "IT patient bolus at T10", "0.05 mg", "lockout 3 h", "max 2/day"):
        assert part in title, (part, title)
    assert "solver" not in title and "dz" not in title


def test_program_rates_in_the_title():
    sc = _sc({"route": "intrathecal", "type": "infusion", "site": "T10",
              "program": [{"at": "0 h", "rate": "0.8 mg/day"}, {"at": "7 h", "rate": "1.0 mg/day"},
                          {"at": "22 h", "rate": "0.8 mg/day"}]},
             {"route": "oral", "type": "bolus", "amount": "30 mg", "formulation": "controlled",
              "interval": "12 h", "count": 6}, duration="1 h")
    title = regimen_title(csfmodel.simulate(sc))
    assert "IT infusion at T10, 0.8/1.0 mg/day program" in title
    assert "oral controlled-release 30 mg every 12 h \u00d76" in title


def test_csf_is_plotted_at_the_catheter_tip(pump):
    fig = plot_overview(pump)
    kymo, _, profile, exposure = _panels(fig)
    assert "catheter tip (T10)" in _texts(kymo)
    assert "catheter tip (T10)" in _texts(profile)
    assert "spinal CSF at catheter tip (T10)" in _legend(exposure)
    assert not any("L4" in s for s in _legend(exposure))
    (tip,) = json.loads(pump.attrs["catheter_sites_cm"])
    ref = _by_gid(exposure, "reference_csf")
    want = pump.csf_concentration.sel(z=tip, method="nearest")
    assert str(want.vertebral_level.values) == "T10"
    np.testing.assert_allclose(ref.get_ydata(), np.clip(want.values, 1e-6, None))


def test_accepted_and_refused_requests_are_marked(pump):
    # 1 h given; 2 h inside the 3 h lockout; 4.5 h given; 9 h: 2 already in 24 h
    assert list(pump.request_accepted.values) == [1, 0, 1, 0]
    ax = _panels(plot_overview(pump))[0]
    given, refused = _by_gid(ax, "requests_accepted"), _by_gid(ax, "requests_refused")
    assert list(given.get_xdata()) == [1.0, 4.5]
    assert list(refused.get_xdata()) == [2.0, 9.0]
    labels = _legend(ax)
    assert "patient bolus given (2)" in labels
    assert "request refused (1 lockout, 1 daily maximum)" in labels


def test_no_request_markers_without_patient_boluses(needle):
    ax = plot_kymograph(needle).axes[0]
    assert "needle injection (L3-L4)" in _texts(ax)
    assert not [ln for ln in ax.get_lines() if str(ln.get_gid()).startswith("requests")]


def test_needle_bolus_is_a_needle_injection_not_a_catheter(needle):
    fig = plot_overview(needle)
    assert "IT needle bolus at L3-L4, 0.5 mg in 2 mL" in fig.get_suptitle()
    kymo, _, profile, exposure = _panels(fig)
    labels = _texts(kymo) + _texts(profile) + _legend(exposure)
    assert "needle injection (L3-L4)" in labels
    assert "spinal CSF at needle injection (L3-L4)" in labels
    assert not any("catheter" in s for s in labels)


def test_catheter_bolus_is_at_a_catheter_tip():
    sc = _sc({"route": "intrathecal", "type": "bolus", "site": "T11", "amount": "0.2 mg",
              "delivery": "catheter"}, duration="1 h")
    ds = csfmodel.simulate(sc)
    assert [s.label for s in dose_sites(ds)] == ["catheter tip (T11)"]
    assert "IT catheter bolus at T11" in regimen_title(ds)


def test_without_an_intrathecal_dose_the_fallback_level_is_named():
    ds = csfmodel.simulate(_sc({"route": "iv", "type": "bolus", "amount": "10 mg"},
                               duration="1 h"))
    fig = plot_overview(ds)
    kymo, _, profile, exposure = _panels(fig)
    assert dose_sites(ds) == [] and not _texts(kymo) and not _texts(profile)
    assert "lumbar CSF at L3 (no IT dose)" in _legend(exposure)
    assert "IV bolus 10 mg" in fig.get_suptitle()


def test_figure_from_a_saved_file(needle, tmp_path):
    """``csfmodel run --plot`` draws from the netCDF file: the attrs survive it."""
    back = csfmodel.load(csfmodel.save(needle, tmp_path / "n.nc"))
    assert [s.label for s in dose_sites(back)] == ["needle injection (L3-L4)"]
    assert regimen_title(back) == regimen_title(needle)
    fig = plot_overview(back)
    fig.savefig(tmp_path / "n.png", dpi=50)
    assert (tmp_path / "n.png").stat().st_size > 10_000
