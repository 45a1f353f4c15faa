"""Scenario files: units at the boundary, and a clear one-line error for every bad input."""

from __future__ import annotations

import copy

import pytest

import csfmodel
from csfmodel.anatomy import Anatomy
from csfmodel.cli import main
from csfmodel.errors import ScenarioError
from csfmodel.scenario import parse_scenario
from csfmodel.units import convert

GOOD = {
    "simulation": {"duration": "12 h", "output_interval": "10 min", "resolution": "1 cm"},
    "patient": {"spinal_csf_volume": "90 mL"},
    "drug": {"name": "morphine", "fu_plasma": 0.6},
    "dose": [
        {"route": "intrathecal", "type": "infusion", "site": "T10", "rate": "1 mg/day"},
        {"route": "intrathecal", "type": "patient_bolus", "site": "T10", "amount": "50 ug",
         "lockout": "3 h", "max_per_day": 4, "requests": ["1 h", "2 h", "5 h"]},
    ],
}


def test_units_are_converted_once():
    sc = parse_scenario(GOOD)
    assert sc.simulation.duration == 720.0
    assert sc.simulation.resolution == 1.0
    assert sc.anatomy.spinal_csf_volume == 90.0
    assert sc.drug.fu_plasma == 0.6
    assert sc.doses[0].program == ((0.0, pytest.approx(1000 / 1440)),)
    assert sc.doses[1].amount == 50.0 and sc.doses[1].lockout == 180.0
    assert convert("0.5 mg/day", "ug/min") == pytest.approx(500 / 1440)
    assert convert("20 uL", "mL") == pytest.approx(0.02)
    assert convert("2.81 uL/kg/min", "mL/min/kg") == pytest.approx(2.81e-3)
    assert convert("6 /h", "1/min") == pytest.approx(0.1)


def test_sites_levels_interspaces_and_cm():
    a = Anatomy()
    for site, z in (("T10", a.level_z("T10")), ("L3-L4", a.level_z("L3", 1.0)),
                    ("45 cm", 45.0), ("450 mm", 45.0)):
        d = copy.deepcopy(GOOD)
        d["dose"] = [{"route": "intrathecal", "type": "bolus", "site": site, "amount": "1 mg"}]
        assert parse_scenario(d).doses[0].site_z == pytest.approx(z)


def _bad(path: str, value):
    d = copy.deepcopy(GOOD)
    node = d
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return d


_DELETE = object()

BAD = [
    # (where, new value, key named in the message, words the message must contain)
    ("simulation.durration", "1 h", "simulation.durration", "unknown key"),
    ("dose.0.sight", "T10", "dose[0].sight", "unknown key"),
    ("patient.csf_volume", "90 mL", "patient.csf_volume", "unknown key"),
    ("drug.name", "heroin", "drug.name", "morphine"),
    ("dose.1.amount", _DELETE, "dose[1].amount", "missing"),
    ("dose.0.route", _DELETE, "dose[0].route", "missing"),
    ("dose.0.rate", "5 kg/day", "dose[0].rate", "100 mg/day"),
    ("dose.0.rate", "5 mL/day", "dose[0].rate", "mass/time"),
    ("dose.1.amount", "0.05 mg/day", "dose[1].amount", "mass"),
    ("simulation.duration", "0 h", "simulation.duration", "1 min to 366 days"),
    ("simulation.duration", "-3 h", "simulation.duration", "1 min to 366 days"),
    ("simulation.duration", "12", "simulation.duration", "time"),
    ("simulation.output_interval", "2 day", "simulation.output_interval", "at most"),
    ("simulation.resolution", "10 cm", "simulation.resolution", "5 mm"),
    ("dose.0.site", "T13", "dose[0].site", "vertebral level"),
    ("dose.0.site", "75 cm", "dose[0].site", "outside"),
    ("dose.0.site", "L3-L5", "dose[0].site", "adjacent"),
    ("dose.1.lockout", "30 h", "dose[1].lockout", "24 h"),
    ("dose.1.lockout", "0 h", "dose[1].lockout", "1 min to under 24 h"),
    ("dose.1.max_per_day", 12, "dose[1].max_per_day", "impossible"),
    ("dose.1.max_per_day", 0, "dose[1].max_per_day", "whole number"),
    ("dose.0.type", "drip", "dose[0].type", "infusion"),
    ("dose.0.route", "epidural", "dose[0].route", "intrathecal"),
    ("patient.spinal_csf_volume", "-5 mL", "patient.spinal_csf_volume", "40 to 200 mL"),
    ("patient.conus_level", "T2", "patient.conus_level", "conus"),
    ("drug.fu_plasma", 1.5, "drug.fu_plasma", "fraction"),
    ("drug.cl", "3 mg", "drug.cl", "volume/time"),
]


@pytest.mark.parametrize("where,value,key,words", BAD,
                         ids=[b[0] + "=" + ("<deleted>" if b[1] is _DELETE else str(b[1]))
                              for b in BAD])
def test_bad_input_names_key_value_and_allowed(where, value, key, words):
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(_bad(where, value))
    msg = str(exc.value)
    assert exc.value.key == key
    assert "\n" not in msg and msg.startswith(key)
    assert words in msg
    if value is not _DELETE:
        assert repr(value) in msg


def test_program_and_rate_are_exclusive():
    d = _bad("dose.0.program", [{"at": "0 h", "rate": "1 mg/day"}])
    with pytest.raises(ScenarioError, match="either rate"):
        parse_scenario(d)


@pytest.mark.parametrize("at", ["25 h", "-1 min", "1.797693134862316e+302 min", "1e300 h"])
def test_program_step_outside_the_day(at):
    d = _bad("dose.0.rate", _DELETE)
    d["dose"][0]["program"] = [{"at": at, "rate": "1 mg/day"}]
    with pytest.raises(ScenarioError, match=r"dose\[0\]\.program\[0\]\.at"):
        parse_scenario(d)


def test_count_without_interval():
    d = copy.deepcopy(GOOD)
    d["dose"] = [{"route": "oral", "amount": "10 mg", "count": 3}]
    with pytest.raises(ScenarioError, match=r"dose\[0\]\.interval"):
        parse_scenario(d)


@pytest.mark.parametrize("text,words", [
    ("[simulation\nduration = '1 h'\n", "valid TOML"),
    ("[simulation]\nduration = 1 h\n", "valid TOML"),
    ("[simulation]\nduration = '1 h'\n[[dose]]\nroute = 'oral'\namount = '10 mg'\ncolour = 1\n",
     "unknown key"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, text, words):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    code = main(["run", str(p), "-o", str(tmp_path / "out.nc")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and words in err
    assert not (tmp_path / "out.nc").exists()


def test_cli_missing_file_exits_2(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "o.nc")]) == 2
    assert "readable TOML file" in capsys.readouterr().err


def test_simulate_accepts_dict_path_and_scenario(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("[simulation]\nduration = '1 h'\nresolution = '2 cm'\n[[dose]]\nroute = 'iv'\n"
                 "amount = '1 mg'\n")
    a = csfmodel.simulate(p, solver="reference")
    b = csfmodel.simulate(csfmodel.load_scenario(p), solver="reference")
    assert float(a.plasma_concentration[-1]) == float(b.plasma_concentration[-1]) > 0
    with pytest.raises(ScenarioError, match="scenario"):
        csfmodel.simulate(42)


def test_unknown_solver_is_refused_when_the_run_starts():
    """The scenario layer does not import the solver registry; simulate checks the name."""
    import csfmodel

    sc = _bad("simulation.solver", "euler")
    parse_scenario(sc)
    with pytest.raises(ScenarioError) as exc:
        csfmodel.simulate(sc)
    assert exc.value.key == "simulation.solver" and "reference" in str(exc.value)


def test_parse_scenarios_shares_tables_and_equals_one_by_one():
    """A sweep chunk's dicts share the base's untouched tables: parsed once, the same
    scenarios as parsing each dict alone; errors name the scenario."""
    from csfmodel.scenario import parse_scenarios

    drug = {"name": "morphine"}
    bolus = {"route": "intrathecal", "type": "bolus", "site": "L2", "amount": "0.2 mg"}
    sets = [{"simulation": {"duration": "2 h"}, "drug": drug,
             "patient": {"dispersion": f"{x} cm^2/min", "lumbar_length": f"{y} cm"},
             "dose": [{"route": "intrathecal", "type": "infusion", "site": "T10",
                       "rate": f"{r} mg/day"}, bolus]}
            for x, y, r in [(0.3, 17.0, 1.0), (0.5, 17.0, 2.0), (0.5, 19.0, 2.0)]]
    got = parse_scenarios(sets)
    assert got == [parse_scenario(d) for d in sets]
    assert got[0].doses[1] is got[1].doses[1]          # same levels: parsed once
    assert got[2].doses[1].site_z != got[1].doses[1].site_z    # longer lumbar: L2 moves
    assert got[0].drug is got[2].drug
    bad = [sets[0], {**sets[1], "drug": {"name": "morphine", "mw": "-1 g/mol"}}]
    with pytest.raises(ScenarioError, match=r"scenario\[8\]\.drug"):
        parse_scenarios(bad, first=7)
