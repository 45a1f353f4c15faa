"""Effect model: limiting cases, effect-site filters against closed forms, parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import csfmodel
from csfmodel.compare import _setup
from csfmodel.effects import (
    EffectParameters,
    analgesia,
    brain_equilibration_half_life,
    effect_site,
    effect_site_periodic,
    effects,
    resolve,
    respiratory_depression,
    target_segments,
)
from csfmodel.errors import ScenarioError


@pytest.fixture(scope="module")
def model():
    return _setup("morphine", None, "2 cm", "T10")[1]


@pytest.fixture(scope="module")
def r(model):
    return resolve(EffectParameters(), model)


def test_no_spinal_exposure_is_purely_supraspinal(r):
    cb = np.logspace(-2, 2, 9)
    expect = cb ** r.gamma / (r.ec50_brain ** r.gamma + cb ** r.gamma)
    assert np.allclose(analgesia(0.0, cb, r), expect, rtol=1e-12)
    assert analgesia(0.0, r.ec50_brain, r) == pytest.approx(0.5)


def test_no_supraspinal_exposure_is_purely_spinal(r):
    cs = np.logspace(0, 5, 9)
    expect = cs ** r.gamma / (r.ec50_spinal ** r.gamma + cs ** r.gamma)
    assert np.allclose(analgesia(cs, 0.0, r), expect, rtol=1e-12)
    assert analgesia(r.ec50_spinal, 0.0, r) == pytest.approx(0.5)


def test_additive_and_interacting_response_surface(model):
    add = resolve(EffectParameters(), model)
    syn = resolve(EffectParameters(interaction=2.0), model)
    cs, cb = 0.5 * add.ec50_spinal, 0.5 * add.ec50_brain
    # additive: half of each EC50 is one whole EC50
    assert analgesia(cs, cb, add) == pytest.approx(0.5)
    u = 1.0 + 2.0 * 0.25
    assert analgesia(cs, cb, syn) == pytest.approx(u ** syn.gamma / (1 + u ** syn.gamma))
    assert analgesia(0.0, 0.0, add) == 0.0


def test_respiratory_depression_emax(r):
    assert respiratory_depression(r.ec50_resp, r) == pytest.approx(0.5)
    assert respiratory_depression(0.0, r) == 0.0
    c = 3.0 * r.ec50_resp
    assert respiratory_depression(c, r) == pytest.approx(0.75)


def test_resolved_parameters_follow_their_sources(model, r):
    d = model.drug
    # Dahan 2004: 32 nM plasma-equivalent -> unbound brain ECF via Kp,uu * fu
    assert r.ec50_brain == pytest.approx(32e-3 * d.mw * d.kpuu_brain * d.fu_plasma)
    # 3 pmol/mg total cord tissue -> unbound via Kp,cord
    assert r.ec50_spinal == pytest.approx(3.0 * d.mw / d.kp_cord())
    # residual delay: Dahan's 4.4 h minus the model's own BBB equilibration
    s = model.system
    b = s.index("brain")
    t_b = np.log(2) / -s.to_dense()[b, b] / 60
    assert brain_equilibration_half_life(model) == pytest.approx(t_b)
    assert r.t_half_brain == pytest.approx(4.4 - t_b)
    over = resolve(EffectParameters(ec50_spinal=123.0, t_half_ke0_h=0.1), model)
    assert over.ec50_spinal == 123.0 and over.t_half_brain == 0.0


def _series(values, t):
    return xr.DataArray(values, dims="time", coords={"time": t}, attrs={"units": "ng/mL"})


def test_effect_site_step_and_ramp_closed_forms():
    t = np.linspace(0, 24, 97)
    k = np.log(2) / 3.0
    step = effect_site(_series(np.ones_like(t), t), 3.0)
    assert np.allclose(step.values[1:], 1 - np.exp(-k * t[1:]), rtol=1e-12, atol=1e-14)
    ramp = effect_site(_series(2.0 * t, t), 3.0)  # exact for piecewise-linear input
    assert np.allclose(ramp.values, 2.0 * (t - (1 - np.exp(-k * t)) / k), rtol=1e-10,
                       atol=1e-12)
    assert step.attrs["t_half_ke0_h"] == 3.0
    same = effect_site(_series(t, t), 0.0)
    assert np.array_equal(same.values, t)


def test_periodic_effect_site_equals_many_repeated_periods():
    t = np.linspace(0, 12, 49)
    c = 5 + 4 * np.sin(2 * np.pi * t / 12) ** 2
    direct = effect_site_periodic(c, t, 4.0)
    # repeat the period 40 times and filter from zero
    tt = np.concatenate([t[:-1] + 12 * n for n in range(40)] + [[480.0]])
    cc = np.concatenate([c[:-1]] * 40 + [[c[-1]]])
    long = effect_site(_series(cc, tt), 4.0).values[-49:]
    assert np.allclose(direct, long, rtol=1e-9)
    assert direct[0] == pytest.approx(direct[-1])


def test_target_segments_parsing():
    assert target_segments("t10") == ["T10"]
    assert target_segments("T11-L2") == ["T11", "T12", "L1", "L2"]
    assert target_segments(["L1", "S1"]) == ["L1", "S1"]
    assert len(target_segments(None)) == 30
    for bad in ("T13", "L2-T11", "", ["X1"]):
        with pytest.raises(ScenarioError):
            target_segments(bad)


@pytest.fixture(scope="module")
def it_bolus():
    return csfmodel.simulate({
        "simulation": {"duration": "24 h", "resolution": "2 cm", "output_interval": "10 min"},
        "dose": [{"route": "intrathecal", "type": "bolus", "site": "L3", "amount": "0.5 mg"}]})


def test_delayed_respiratory_depression_after_it_bolus(it_bolus):
    ef = effects(it_bolus, target="L1-L5")
    t = it_bolus.time.values
    t_brain = t[int(np.argmax(it_bolus.brain_concentration.values))]
    t_resp = t[int(np.argmax(ef.respiratory_depression.values))]
    # the brain peaks hours after the bolus, and the effect site later still
    assert t_brain > 2.0
    assert t_resp > t_brain + 1.0
    assert ef.analgesia.attrs["target_segments"] == "L1,L2,L3,L4,L5"
    assert np.allclose(ef.analgesia, ef.analgesia_segment.sel(
        segment=["L1", "L2", "L3", "L4", "L5"]).min("segment"))


def test_effects_limit_without_spinal_potency(it_bolus, model):
    """With no spinal action, analgesia is the supraspinal sigmoid of the brain effect site."""
    r0 = resolve(EffectParameters(ec50_spinal=1e30), model)
    ef = effects(it_bolus, params=r0)
    ce = ef.brain_effect_site_concentration.values
    expect = ce ** r0.gamma / (r0.ec50_brain ** r0.gamma + ce ** r0.gamma)
    assert np.allclose(ef.analgesia.values, expect, rtol=1e-10, atol=1e-15)


def test_other_drugs_need_their_own_potencies():
    fent = _setup("fentanyl", None, "2 cm", "T10")[1]
    with pytest.raises(ScenarioError, match="morphine"):
        resolve(None, fent)
    r = resolve(EffectParameters(ec50_spinal=1.0, ec50_brain=0.5, ec50_resp=0.6), fent)
    assert (r.ec50_spinal, r.ec50_brain, r.ec50_resp) == (1.0, 0.5, 0.6)


def test_effects_read_the_inputs_recorded_with_the_results(it_bolus, monkeypatch, tmp_path):
    """No model is built from a Dataset: the run recorded the drug's partitions and the
    PK model's BBB half-life; saved and loaded results give the same effects."""
    from csfmodel import api
    from csfmodel import model as model_mod
    from csfmodel.api import prepare
    from csfmodel.effects import EffectInputs

    m = prepare(json.loads(it_bolus.attrs["scenario"])).model
    ref = effects(it_bolus, model=m, target="L1-L5")

    def refuse(*a, **k):
        raise AssertionError("a model was built")

    monkeypatch.setattr(model_mod, "build_model", refuse)
    monkeypatch.setattr(api, "build_model", refuse)
    got = effects(it_bolus, target="L1-L5")
    xr.testing.assert_identical(got, ref)
    back = csfmodel.load(csfmodel.save(it_bolus, tmp_path / "r.nc"))
    xr.testing.assert_identical(effects(back, target="L1-L5"), ref)
    assert resolve(None, EffectInputs.from_dataset(it_bolus)) == resolve(None, m)


def test_effects_of_results_written_before_inputs_were_recorded(it_bolus):
    """Older files: the inputs come from the scenario attribute (built once)."""
    from csfmodel.effects import EFFECT_INPUT_ATTRS

    old = it_bolus.copy()
    old.attrs = {k: v for k, v in old.attrs.items() if k not in EFFECT_INPUT_ATTRS}
    xr.testing.assert_identical(effects(old), effects(it_bolus))
    del old.attrs["scenario"]
    with pytest.raises(ScenarioError, match="effect inputs"):
        effects(old)


def test_effects_of_a_sweep_member():
    from csfmodel import sweep

    base = {"simulation": {"duration": "12 h", "resolution": "2 cm",
                           "output_interval": "10 min"},
            "dose": [{"route": "intrathecal", "type": "bolus", "site": "L3",
                      "amount": "0.5 mg"}]}
    params = {"drug.kpuu_brain": [0.2, 0.4]}
    sw = sweep.run_batch(base, params)
    single = csfmodel.simulate(sweep.scenario_sets(base, params)[0][1])
    a = effects(sw.isel(scenario=1))
    b = effects(single)
    assert a.attrs == b.attrs
    np.testing.assert_allclose(a.analgesia.values, b.analgesia.values, rtol=1e-10, atol=1e-14)


def test_compiled_effect_site_filter_equals_the_recursion():
    """The effect-site filter (compiled: sweeps filter thousands of columns) gives the
    recursion Ce[i+1] = a Ce[i] + b C[i] + lin (C[i+1] - C[i]) exactly, along axis 0 of
    any shape and for read-only input, from one compiled signature."""
    from csfmodel.effects import _filter, _filter_coeffs, _filter_loop

    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(0.1, 2.0, 40))
    ro = rng.random((40, 3))
    ro.setflags(write=False)
    for c in (rng.random(40), rng.random((40, 3)), rng.random((40, 2, 2)), ro):
        a, b, lin = _filter_coeffs(np.diff(t), np.log(2.0) / 1.5)
        ref = np.empty_like(c)
        ref[0] = 0.25
        for i in range(len(t) - 1):
            ref[i + 1] = a[i] * ref[i] + b[i] * c[i] + lin[i] * (c[i + 1] - c[i])
        np.testing.assert_array_equal(_filter(c, t, 1.5, 0.25), ref)
    assert len(_filter_loop.signatures) == 1
