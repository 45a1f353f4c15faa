"""The pump in a patient's life (csfmodel.clinic): reservoir arithmetic, practice limits,
conversions, the first pump rate and rescue-dose onset."""

from __future__ import annotations

import copy
import random
import warnings
from datetime import date, datetime

import numpy as np
import pytest

from csfmodel.cli import main
from csfmodel.clinic import (
    attach_reservoir,
    oral_morphine_equivalents,
    rescue_onset,
    reservoir,
    start_rate,
)
from csfmodel.dosing import ITPatientBolus
from csfmodel.errors import ScenarioError
from csfmodel.scenario import PracticeWarning, parse_scenario

EXAMPLE = "examples/clinic/pump_refills.toml"


def _pump_scenario(rate="1 mg/day", conc="10 mg/mL", duration="30 day", **pump):
    return {"simulation": {"duration": duration, "output_interval": "6 h",
                           "resolution": "1 cm"},
            "pump": {"reservoir": "20 mL", "concentration": conc, **pump},
            "dose": [{"route": "intrathecal", "type": "infusion", "site": "T10",
                      "rate": rate}]}


# ------------------------------------------------------------------ reservoir arithmetic
def test_constant_rate_depletion_matches_hand_calculation():
    # 1 mg/day at 10 mg/mL = 0.1 mL/day: the alarm (2 mL) after 180 days, empty after 200
    rep = reservoir(_pump_scenario())
    f = rep.fills[0]
    assert f.programmed_ml_per_day == pytest.approx(0.1, rel=1e-12)
    assert f.days_to_alarm == pytest.approx(180.0, rel=1e-9)
    assert f.days_to_empty == pytest.approx(200.0, rel=1e-9)
    days = np.array([0.0, 1.0, 50.0, 199.0, 250.0])
    np.testing.assert_allclose(rep.volume(days * 24.0).values,
                               [20.0, 19.9, 15.0, 0.1, 0.0], atol=1e-9)


def test_program_and_patient_boluses_deplete_the_reservoir_exactly():
    # program 0.8 mg/day (0-7 h, 22-24 h) and 1.0 mg/day (7-22 h): 22.2 mg / 24 h = 0.925
    # mg/day; requests at 8, 10, 13, 17, 21 h with a 3 h lockout and 4 a day: 10 h is
    # refused, 4 boluses of 0.05 mg a day. 10 days: 9.25 + 2.0 mg = 11.25 mg = 4.5 mL
    rep = reservoir(EXAMPLE)
    assert rep.fills[0].programmed_mg_per_day == pytest.approx(0.925, rel=1e-12)
    assert float(rep.volume([240.0])[0]) == pytest.approx(20.0 - 11.25 / 2.5, abs=1e-9)
    # the patient bolus volume is derived from the pump: 0.05 mg / 2.5 mg/mL = 20 uL
    sc = parse_scenario(_example())
    bolus = next(d for d in sc.doses if isinstance(d, ITPatientBolus))
    assert bolus.volume == pytest.approx(0.02, rel=1e-12)


def _example() -> dict:
    import tomllib

    with open(EXAMPLE, "rb") as fh:
        return tomllib.load(fh)


def test_refill_with_a_new_concentration_halves_the_volume_used():
    rep = reservoir(EXAMPLE)
    first, second = rep.fills
    t_refill = first.refill_day
    # start 2025-01-30 09:00, refill 2025-03-10 00:00: 38 days and 15 h
    assert t_refill == pytest.approx(38.625, abs=1e-9)
    used = 20.0 - first.residual_at_refill_ml
    assert first.drug_delivered_mg == pytest.approx(used * 2.5, rel=1e-9)
    # after the refill at 5 mg/mL the same daily drug takes half the volume
    assert second.programmed_ml_per_day == pytest.approx(first.programmed_ml_per_day / 2)
    v = rep.volume(np.array([t_refill, t_refill + 10.0]) * 24.0).values
    assert v[0] == pytest.approx(20.0)
    drug_10d = 10 * 0.925 + 10 * 4 * 0.05         # whole days from 00:00: 4 boluses a day
    assert 20.0 - v[1] == pytest.approx(drug_10d / 5.0, abs=1e-9)
    assert second.alarm_date.startswith("2025-05-29")


@pytest.mark.parametrize("start, alarm", [("2025-01-30T09:00", "2025-03-07 09:00"),
                                          ("2024-01-30T09:00", "2024-03-06 09:00"),
                                          ("2025-12-20T00:00", "2026-01-25 00:00")])
def test_alarm_dates_cross_month_and_year_boundaries(start, alarm):
    # 5 mg/day at 10 mg/mL = 0.5 mL/day; (20 - 2) mL / 0.5 = 36 days to the alarm
    rep = reservoir(_pump_scenario(rate="5 mg/day", start=start))
    assert rep.fills[0].days_to_alarm == pytest.approx(36.0)
    assert rep.fills[0].alarm_date == alarm


def test_toml_dates_and_refills_by_date():
    sc = parse_scenario(_pump_scenario(rate="5 mg/day", start=date(2025, 2, 1),
                                       refills=[{"date": date(2025, 3, 1),
                                                 "volume": "10 mL"}]))
    assert sc.pump.start == datetime(2025, 2, 1)
    assert sc.pump.refills[0].time == pytest.approx(28 * 1440.0)
    assert sc.pump.refills[0].volume == 10.0


def test_reservoir_volume_in_the_results_dataset():
    import csfmodel

    scen = _pump_scenario(duration="2 day")
    ds = attach_reservoir(csfmodel.simulate(scen))
    v = ds.reservoir_volume
    assert v.attrs["units"] == "mL" and v.attrs["long_name"] == "pump reservoir volume"
    np.testing.assert_allclose(v.values, 20.0 - 0.1 * ds.time.values / 24.0, atol=1e-9)
    assert ds.reservoir_concentration.attrs["units"] == "mg/mL"


# ------------------------------------------------------------------ errors and warnings
@pytest.mark.parametrize("change, key", [
    ({"concentration": "60 mg/mL"}, "pump.concentration"),
    ({"concentration": "10 mg/day"}, "pump.concentration"),
    ({"reservoir": "200 mL"}, "pump.reservoir"),
    ({"alarm": "25 mL"}, "pump.alarm"),
    ({"fill": "1 mL"}, "pump.fill"),
    ({"refills": [{"date": "2025-03-01"}]}, "pump.refills[0].date"),
    ({"refills": [{"at": "10 day", "volume": "30 mL"}]}, "pump.refills[0].volume"),
    ({"refills": [{"at": "10 day"}, {"at": "5 day"}]}, "pump.refills[1]"),
    ({"refills": [{"at": "10 day", "date": "2025-03-01"}]}, "pump.refills[0].at"),
    ({"colour": "blue"}, "pump.colour"),
])
def test_bad_pump_tables_name_the_key(change, key):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_pump_scenario(**change))
    assert err.value.key == key


def test_a_reservoir_running_dry_is_an_error_with_the_dates():
    # 10 mg/day at 10 mg/mL: 1 mL/day, empty on day 20 of a 30-day scenario
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_pump_scenario(rate="10 mg/day", start="2025-02-20T00:00"))
    assert err.value.key == "pump.refills"
    assert "2025-03-12" in str(err.value) and "2025-03-10" in str(err.value)
    # a refill on day 15 keeps it going
    parse_scenario(_pump_scenario(rate="10 mg/day", refills=[{"at": "15 day"}]))


def test_patient_bolus_volume_must_agree_with_the_pump():
    scen = _example()
    scen["dose"][1]["volume"] = "50 uL"      # 0.05 mg at 2.5 mg/mL is 20 uL
    with pytest.raises(ScenarioError) as err:
        parse_scenario(scen)
    assert err.value.key == "dose[1].volume" and "20 uL" in str(err.value)
    scen["dose"][1]["volume"] = "20 uL"
    parse_scenario(scen)


def test_a_pump_needs_something_to_deliver():
    scen = _pump_scenario()
    scen["dose"] = [{"route": "oral", "amount": "10 mg"}]
    with pytest.raises(ScenarioError, match="nothing to deliver"):
        parse_scenario(scen)


def test_practice_limits_warn_with_their_source():
    with pytest.warns(PracticeWarning) as rec:
        parse_scenario(_pump_scenario(rate="16 mg/day", conc="22 mg/mL",
                                      refills=[{"at": "20 day"}]))
    text = " | ".join(str(w.message) for w in rec)
    assert "20 mg/mL" in text and "Deer" in text          # PACC concentration
    assert "15 mg/day" in text                             # PACC daily dose
    assert "25 mg/mL" not in text and "20 mg/day" not in text
    with warnings.catch_warnings():
        warnings.simplefilter("error", PracticeWarning)
        parse_scenario(_pump_scenario())                   # 1 mg/day at 10 mg/mL: none
    with pytest.warns(PracticeWarning, match="0.048 mL/day"):
        parse_scenario(_pump_scenario(rate="0.2 mg/day", conc="20 mg/mL"))


def test_patient_bolus_limit_per_day_is_unchanged():
    """The linear-time 24 h window gives the same log as counting every earlier bolus."""
    rng = random.Random(4)
    for _ in range(20):
        reqs = tuple(sorted(rng.uniform(0, 5 * 1440) for _ in range(60)))
        pb = ITPatientBolus(site_z=40.0, amount=10.0, lockout=rng.choice([10.0, 60.0, 120.0]),
                            max_per_day=rng.randint(1, 8), requests=reqs)
        given, ok = [], []
        for t in reqs:
            accept = not (given and t - given[-1] < pb.lockout) and \
                sum(1 for g in given if t - g < 1440.0) < pb.max_per_day
            ok.append(accept)
            given += [t] if accept else []
        assert [r.accepted for r in pb.expand(6 * 1440)[2]] == ok


# ------------------------------------------------------------------ conversions
def test_oral_morphine_equivalents_cdc_2022():
    doses = oral_morphine_equivalents("oxycodone 520 mg/day + morphine iv 24 mg/day + "
                                      "fentanyl transdermal 50 ug/h; tramadol 200 mg/day")
    assert [d.ome_mg_per_day for d in doses] == pytest.approx([780.0, 72.0, 120.0, 40.0])
    m = oral_morphine_equivalents("methadone 30 mg/day")[0]
    assert m.ome_mg_per_day == pytest.approx(141.0) and "240" in m.note  # band factor 8
    with pytest.raises(ScenarioError):
        oral_morphine_equivalents("unobtainium 5 mg/day")
    with pytest.raises(ScenarioError):
        oral_morphine_equivalents("oxycodone 5 mg")          # a dose per day is needed


# ------------------------------------------------------------------ modelled answers
@pytest.fixture(scope="module")
def trial_rates():
    return {d: start_rate(trial_bolus=f"{d} mg", resolution="1 cm") for d in (0.2, 0.4)}


def test_start_rate_scales_with_the_trial_dose(trial_rates):
    a, b = trial_rates[0.2], trial_rates[0.4]
    assert b.proposed.rate_mg_per_day == pytest.approx(2 * a.proposed.rate_mg_per_day,
                                                       rel=1e-6)
    # the analgesia-matched rate rises with the dose too (not proportionally)
    assert b.candidates[1].rate_mg_per_day > a.candidates[1].rate_mg_per_day
    # the rules beside it: the trial dose per day and half of it
    rules = {c.name: c.rate_mg_per_day for c in a.candidates}
    assert rules["trial dose per day"] == pytest.approx(0.2)
    assert rules["half trial dose per day"] == pytest.approx(0.1)


def test_start_rate_round_trip_on_exposure_and_analgesia(trial_rates):
    """At the proposed rate the pump's plateau (a long simulation) gives the trial's peak
    target exposure; the analgesia-matched rate's plateau the trial's peak analgesia."""
    import csfmodel
    from csfmodel.effects import effects

    res = trial_rates[0.2]
    rate = res.proposed.rate_mg_per_day
    ds = csfmodel.simulate({"simulation": {"duration": "4 day", "output_interval": "1 h",
                                           "resolution": "1 cm"},
                            "dose": [{"route": "intrathecal", "type": "infusion",
                                      "site": "T10", "rate": f"{rate} mg/day"}]})
    dh = float(ds.cord_concentration.sel(segment=["L1", "L2", "L3", "L4", "L5"])
               .min("segment")[-1])
    assert dh == pytest.approx(res.trial["peak_target_dorsal_horn"], rel=0.02)
    assert res.candidates[1].analgesia == pytest.approx(res.trial["peak_analgesia"],
                                                        abs=1e-6)
    a_end = float(effects(ds, target="L1-L5").analgesia[-1])
    assert a_end == pytest.approx(res.proposed.analgesia, abs=0.02)


def test_start_rate_rises_with_the_tip_distance_from_the_target():
    # the L1-L5 cord segments lie behind the T11-L1 vertebrae: the exposure-matched rate is
    # least with the tip at T11 and rises as the tip moves away, up or down
    def rate(s):
        return start_rate(trial_bolus="0.2 mg", site=s, resolution="1 cm").proposed \
            .rate_mg_per_day

    for path in (("T11", "T10", "T8", "T6"), ("T11", "T12", "L1", "L2")):
        rates = [rate(s) for s in path]
        assert all(a < b for a, b in zip(rates, rates[1:])), (path, rates)


def test_start_rate_from_opioids_beside_the_300_to_1_rule():
    res = start_rate(regimen="oxycodone 520 mg/day + morphine iv 24 mg/day",
                     basis="analgesia", resolution="1 cm")
    assert res.ome_mg_per_day == pytest.approx(852.0)
    rules = {c.name: c.rate_mg_per_day for c in res.candidates}
    assert rules["oral:IT 300:1"] == pytest.approx(852.0 / 300.0)
    assert rules["IV:IT 100:1"] == pytest.approx(24.0 / 100 + 780.0 / 300)
    assert rules["50% of the conversion"] == pytest.approx(852.0 / 600.0)
    # round trip: the equianalgesic IT plateau gives the oral regimen's analgesia
    assert res.proposed.analgesia == pytest.approx(res.trial["oral_analgesia"], abs=1e-6)
    assert res.proposed.respiratory_depression > 0


@pytest.fixture(scope="module")
def rescue():
    return rescue_onset(resolution="1 cm", duration="10 h", step="2 min")


def test_rescue_equianalgesic_doses_match_the_pump_bolus_peak(rescue):
    ref = rescue.result("pump bolus").peak_gain
    for route in ("oral IR", "IV bolus"):
        r = rescue.result(route)
        assert r.basis == "equianalgesic"
        assert r.peak_gain == pytest.approx(ref, abs=1e-6)
        assert r.onset_min < r.peak_min
    # the oral dose is larger than the IV dose (bioavailability and first pass)
    assert rescue.result("oral IR").dose_mg > rescue.result("IV bolus").dose_mg


def test_rescue_onset_is_where_the_gain_reaches_the_fraction(rescue):
    r = rescue.result("IV bolus")
    t = rescue.time_h * 60.0
    g_on = np.interp(r.onset_min, t, r.gain)
    assert g_on == pytest.approx(0.5 * r.peak_gain, rel=1e-6)
    assert np.all(r.gain[t < r.onset_min - 1e-9] < 0.5 * r.peak_gain)


def test_rescue_peak_rises_with_the_dose_and_onset_with_the_tip_distance():
    gains = [rescue_onset(it_bolus=f"{d} mg", oral_dose="10 mg", iv_dose="2 mg",
                          resolution="1 cm", duration="10 h", step="2 min")
             .result("pump bolus").peak_gain for d in (0.05, 0.1, 0.2)]
    assert gains[0] < gains[1] < gains[2]
    # the spinal share of the effect (no supraspinal potency): the onset of the pump bolus
    # is earliest with the tip at the target's segment (L1 lies behind T10) and later as
    # the tip moves away, up or down
    from csfmodel.effects import EffectParameters

    spinal = EffectParameters(ec50_brain=1e9)

    def onset(s):
        return rescue_onset(site=s, target="L1", oral_dose="10 mg", iv_dose="2 mg",
                            resolution="1 cm", duration="10 h", step="2 min",
                            params=spinal).result("pump bolus").onset_min

    for path in (("T10", "T9", "T6"), ("T10", "T11", "T12")):
        onsets = [onset(s) for s in path]
        assert onsets[0] < onsets[1] < onsets[2], (path, onsets)


def test_rescue_bad_input_names_the_argument():
    for kw, key in (({"fraction": 1.5}, "fraction"), ({"iv_dose": "2 kg"}, "iv_dose"),
                    ({"basal": "1 mg"}, "basal"), ({"duration": "3 day"}, "duration")):
        with pytest.raises(ScenarioError) as err:
            rescue_onset(**kw)
        assert err.value.key == key


# ------------------------------------------------------------------ command line
def test_cli_pump_reservoir(tmp_path, capsys):
    out = tmp_path / "res.nc"
    assert main(["pump", "reservoir", EXAMPLE, "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "next refill due: 2025-05-29" in text and "2.63 mL" in text
    import xarray as xr

    with xr.open_dataset(out) as ds:
        assert ds.reservoir_volume.attrs["units"] == "mL"
        assert float(ds.reservoir_volume[0]) == 20.0


def test_cli_pump_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    scen = copy.deepcopy(_pump_scenario(conc="60 mg/mL"))
    import json

    bad.write_text("[pump]\n" + "\n".join(f"{k} = {json.dumps(v)}"
                                          for k, v in scen["pump"].items())
                   + '\n[[dose]]\nroute = "intrathecal"\ntype = "infusion"\nsite = "T10"\n'
                   'rate = "1 mg/day"\n')
    assert main(["pump", "reservoir", str(bad)]) == 2
    assert "pump.concentration" in capsys.readouterr().err
    assert main(["pump", "start-rate"]) == 2
    assert main(["pump", "rescue", "--fraction", "2"]) == 2


def test_docstring_examples():
    import doctest

    import csfmodel.clinic._conversion as conv
    import csfmodel.clinic._pump as pump

    for module in (pump, conv):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0
