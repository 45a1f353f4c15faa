"""Sweeps: batches agree with single runs, summaries with time series, sharing is exact."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from csfmodel.anatomy import Anatomy
from csfmodel.api import prepare, simulate
from csfmodel.dosing import expand
from csfmodel.errors import ScenarioError
from csfmodel.model import build_model, build_schedule, make_grid

pytest.importorskip("numba")

from csfmodel import sweep  # noqa: E402

BASE = {
    "simulation": {"duration": "10 h", "output_interval": "10 min", "resolution": "2 cm"},
    "dose": [
        {"route": "intrathecal", "type": "infusion", "site": "T10", "rate": "1 mg/day"},
        {"route": "intrathecal", "type": "patient_bolus", "site": "T10", "amount": "0.05 mg",
         "lockout": "3 h", "max_per_day": 4, "requests": ["1 h", "5 h"]},
        {"route": "oral", "type": "bolus", "amount": "10 mg", "time": "2 h"},
    ],
}
PARAMS = {"patient.dispersion": ["0.2 cm^2/min", "0.4 cm^2/min", "0.8 cm^2/min"],
          "dose[0].rate": ["0.5 mg/day", "1 mg/day", "3 mg/day"]}
VARS = ("cord_concentration", "csf_concentration", "brain_concentration",
        "plasma_concentration", "cisternal_csf_concentration")


@pytest.fixture(scope="module")
def batch():
    return sweep.run_batch(BASE, PARAMS, variables=VARS, chunk_size=2)


def _single(i: int):
    sets, _ = sweep.scenario_sets(BASE, PARAMS)
    return simulate(sets[i], solver="numba")


@pytest.mark.parametrize("i", [0, 2])
def test_batch_equals_single_runs(batch, i):
    ref = _single(i)
    for v in VARS:
        a = batch[v].isel(scenario=i).values
        b = ref[v].values
        assert a.shape == b.shape
        assert np.max(np.abs(a - b)) <= 1e-9 * np.max(np.abs(b)), v
    assert batch["patient.dispersion"].values[i] == PARAMS["patient.dispersion"][i]


def test_summary_matches_time_series(batch):
    s = sweep.run_batch(BASE, PARAMS, variables=VARS, summary=True)
    t = batch.time.values
    for v in VARS:
        x = batch[v].values                       # (scenario, time, ...)
        np.testing.assert_allclose(s[f"{v}_max"].values, x.max(axis=1), rtol=1e-12)
        np.testing.assert_allclose(s[f"{v}_final"].values, x[:, -1], rtol=1e-12)
        np.testing.assert_allclose(s[f"{v}_auc"].values, np.trapezoid(x, t, axis=1),
                                   rtol=1e-10, atol=1e-12 * np.abs(x).max())
        np.testing.assert_allclose(s[f"{v}_tmax"].values, t[np.argmax(x, axis=1)])
    assert np.all(s.solver_max_error_estimate <= 1.0)


def test_product_mode_and_sizes():
    sets, params = sweep.scenario_sets(BASE, PARAMS, mode="product")
    assert len(sets) == 9 and len(params["dose[0].rate"]) == 9
    assert sets[5]["patient"]["dispersion"] == "0.4 cm^2/min"
    assert sets[5]["dose"][0]["rate"] == "3 mg/day"
    assert BASE["dose"][0]["rate"] == "1 mg/day"          # the base is not modified


def test_bolus_and_rate_schedules_merge_exactly():
    prep = prepare(BASE)
    sc, model, schedule = prep.scenario, prep.model, prep.schedule
    ev = expand(sc.doses, sc.simulation.duration)
    from csfmodel.dosing import DoseEvents

    merged = sweep.merge_schedules(
        build_schedule(model, DoseEvents(boluses=ev.boluses), sc.simulation.duration),
        build_schedule(model, DoseEvents(steps=ev.steps), sc.simulation.duration))
    np.testing.assert_array_equal(merged.times, schedule.times)
    np.testing.assert_allclose(merged.jumps, schedule.jumps, rtol=1e-15, atol=0)
    np.testing.assert_allclose(merged.rates, schedule.rates, rtol=1e-15, atol=0)


@pytest.mark.parametrize("field", sweep.NON_GEOMETRIC_FIELDS)
def test_non_geometric_fields_do_not_change_the_grid(field):
    """Scenarios differing in these fields share a grid: it must really be the same."""
    a = Anatomy()
    b = dataclasses.replace(a, **{field: getattr(a, field) * 1.7 + 0.01})
    ga, gb = make_grid(a, 2.0), make_grid(b, 2.0)
    for f in ("edges", "csf_volume", "face_area", "cord_volume", "segment_weights"):
        np.testing.assert_array_equal(getattr(ga, f), getattr(gb, f))
    # and the shared grid gives the model built from scratch
    from csfmodel.drugs import get_drug

    d = get_drug("morphine")
    m1 = build_model(b, d, 2.0)
    m2 = build_model(b, d, 2.0, grid=ga)
    np.testing.assert_array_equal(m1.system.diag, m2.system.diag)
    np.testing.assert_array_equal(m1.system.border_rows, m2.system.border_rows)


def test_iter_batches_resume_skips_chunks():
    sets, _ = sweep.scenario_sets(BASE, PARAMS)
    got = [c for c, _ in sweep.iter_batches(BASE, PARAMS, chunk_size=1, skip_chunks={0, 2},
                                            summary=True)]
    assert got == [1]


def test_bad_sweeps():
    with pytest.raises(ScenarioError, match="dose index"):
        sweep.run_batch(BASE, {"dose[7].rate": ["1 mg/day"]})
    with pytest.raises(ScenarioError, match="equal length"):
        sweep.run_batch(BASE, {"patient.dispersion": ["0.2 cm^2/min"],
                               "dose[0].rate": ["1 mg/day", "2 mg/day"]})
    with pytest.raises(ScenarioError, match=r"scenario\[1\]\.dose\[0\]\.rate"):
        sweep.run_batch(BASE, {"dose[0].rate": ["1 mg/day", "5 kg/day"]})
    with pytest.raises(ScenarioError, match="same duration"):
        sweep.run_batch(BASE, {"simulation.duration": ["10 h", "12 h"]})
    with pytest.raises(ScenarioError, match="variables"):
        sweep.run_batch(BASE, PARAMS, variables=("nothing",))


@pytest.mark.slow
def test_cli_sweep_with_params_writes_a_store_equal_to_run_batch(tmp_path, capsys):
    """``csfmodel sweep BASE.toml --param ...`` (zip): a zarr store whose summaries are
    run_batch's, on a local Dask cluster; a second run on the store is refused."""
    import xarray as xr

    from csfmodel.cli import main

    base = tmp_path / "base.toml"
    base.write_text(_toml(BASE))
    out = tmp_path / "sweep.zarr"
    args = ["sweep", str(base), "-o", str(out), "--chunk-size", "2", "--workers", "1",
            "--param", "patient.dispersion=" + ";".join(PARAMS["patient.dispersion"]),
            "--param", "dose[0].rate=" + ";".join(PARAMS["dose[0].rate"])]
    assert main(args) == 0
    assert main(args) == 2                       # refuses to overwrite
    got = xr.open_zarr(out)
    ref = sweep.run_batch(BASE, PARAMS, summary=True)
    np.testing.assert_allclose(got.brain_concentration_max.values,
                               ref.brain_concentration_max.values, rtol=1e-12)
    np.testing.assert_allclose(got["dose[0].rate"].values, [0.5, 1.0, 3.0])
    assert got["dose[0].rate"].attrs["units"] == "mg/day"


def _toml(data: dict) -> str:
    lines = []
    for sec in ("simulation",):
        lines.append(f"[{sec}]")
        lines += [f'{k} = "{v}"' for k, v in data[sec].items()]
    for d in data["dose"]:
        lines.append("[[dose]]")
        for k, v in d.items():
            lines.append(f"{k} = {v!r}".replace("'", '"') if not isinstance(v, list)
                         else f"{k} = [" + ", ".join(f'"{x}"' for x in v) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("drug", ["morphine", "fentanyl"])
def test_vectorized_assembly_is_exact(monkeypatch, drug):
    """The replayed, vectorized ``_Assembler._add`` gives the matrix, bit for bit, of
    adding every transfer entry by entry in order into a dense J (the accumulation order
    of repeated entries is kept), on a first build and on a replay."""
    from csfmodel import model as model_mod
    from csfmodel.drugs import get_drug
    from csfmodel.model._system import _assemble

    g = make_grid(Anatomy(), 1.0)
    fast = [build_model(Anatomy(), get_drug(drug), 1.0, grid=g).system for _ in range(2)]
    dense = np.zeros((fast[0].n_state, fast[0].n_state))

    def elementwise(self, r, c, v):
        r, c, v = np.broadcast_arrays(np.asarray(r), np.asarray(c), np.asarray(v, float))
        for rr, cc, vv in zip(r.ravel().tolist(), c.ravel().tolist(), v.ravel().tolist()):
            dense[rr, cc] += vv

    monkeypatch.setattr(model_mod._Assembler, "_add", elementwise)
    _assemble(Anatomy(), get_drug(drug), g)
    for system in fast:
        np.testing.assert_array_equal(system.to_sparse().toarray(), dense)


# ------------------------------------------------------------ one path to a Dataset
ALL_VARS = tuple(sweep.VARIABLES)


@pytest.fixture(scope="module")
def members():
    """A sweep recording every concentration, and the single runs of its scenarios."""
    sw = sweep.run_batch(BASE, PARAMS, variables=ALL_VARS, chunk_size=2)
    sets, _ = sweep.scenario_sets(BASE, PARAMS)
    return sw, [simulate(s, solver="numba") for s in sets]


def test_a_sweep_member_is_the_single_run(members):
    """Same variables (values to 1e-12 of their peak), dims, attrs and coordinates."""
    sw, singles = members
    for i, ref in enumerate(singles):
        m = sw.isel(scenario=i)
        for v in ALL_VARS:
            a, b = m[v], ref[v]
            assert a.dims == b.dims and a.attrs == b.attrs, v
            assert np.max(np.abs(a.values - b.values)) <= 1e-12 * np.max(np.abs(b.values)), v
            for c in b.coords:
                np.testing.assert_array_equal(m[v][c].values, b[c].values, err_msg=c)
                assert m[v][c].attrs == b[c].attrs, c
        # what later steps need is recorded: attrs of a run, coordinates of a member
        for k in ("drug", "catheter_sites_cm", "drug_kp_cord_mL_per_g",
                  "brain_equilibration_half_life_h"):
            assert m[k].item() == ref.attrs[k], k
        for k in ("level_z_top", "level_z_bottom"):
            np.testing.assert_array_equal(sw[k].values, ref[k].values)
    assert sw.attrs["csfmodel_version"] == singles[0].attrs["csfmodel_version"]


def test_summaries_are_labelled_like_the_variables():
    s = sweep.run_batch(BASE, PARAMS, variables=VARS, summary=True)
    for v in VARS:
        for stat, units in (("max", "ng/mL"), ("tmax", "h"), ("auc", "ng h/mL"),
                            ("final", "ng/mL")):
            attrs = s[f"{v}_{stat}"].attrs
            assert attrs["units"] == units
            assert 0 < len(attrs["long_name"]) <= 30, attrs["long_name"]
            assert len(attrs["description"]) > len(attrs["long_name"])
    assert s.cord_concentration_max.attrs["long_name"] == "Cmax of cord conc. (unbound)"
    for name in list(s.data_vars) + list(s.coords):
        assert "units" in s[name].attrs and "long_name" in s[name].attrs, name
    assert "segment_z_top" in s.coords and "z" in s.coords and "time" not in s.dims


def test_a_sweep_over_the_anatomy_keeps_each_scenarios_geometry():
    """Scenarios with different cord segment positions: per-scenario coordinates."""
    params = {"patient.conus_level": ["L1", "L2", "L2", "L2"]}
    s = sweep.run_batch(BASE, params, variables=("cord_concentration",), summary=True,
                        chunk_size=2)
    assert s.segment_z_top.dims == ("scenario", "segment")
    ref = simulate(sweep.scenario_sets(BASE, params)[0][0])
    np.testing.assert_array_equal(s.segment_z_top.isel(scenario=0).values,
                                  ref.segment_z_top.values)
    assert not np.array_equal(s.segment_z_top.values[0], s.segment_z_top.values[1])


# ------------------------------------------------------------ batched assembly
def test_models_assembled_together_are_the_models_built_alone():
    """build_models (the equations over a batch axis) gives each member's arrays and rates
    bit for bit: physiology, drug properties, a permeability override, a branch field."""
    from csfmodel.drugs import get_drug
    from csfmodel.model import build_models

    a0, g = Anatomy(), make_grid(Anatomy(), 2.0)
    rng = np.random.default_rng(3)
    anat = [dataclasses.replace(a0, dispersion=float(x), cisternal_volume=float(y),
                                brain_mass=float(z)) for x, y, z in rng.uniform(1, 9, (9, 3))]
    anat[4] = dataclasses.replace(anat[4], dispersion_exponent=1.0)     # its own pass
    drugs = [dataclasses.replace(get_drug("morphine"), octanol_buffer=float(x), cl=float(y))
             for x, y in rng.uniform(0.5, 5, (9, 2))]
    drugs[2] = get_drug("fentanyl")
    drugs[6] = dataclasses.replace(drugs[6], meningeal_permeability=1.2e-3)
    anat.append(anat[0])
    drugs.append(drugs[0])                                              # a repeat
    for got, a, d in zip(build_models(anat, drugs, g), anat, drugs):
        ref = build_model(a, d, 2.0, grid=g)
        for f in dataclasses.fields(ref.system):
            x, y = getattr(got.system, f.name), getattr(ref.system, f.name)
            assert np.array_equal(x, y) and np.shape(x) == np.shape(y), f.name
        assert got.rates == ref.rates and got.anatomy is a and got.drug is d


def test_patients_of_the_same_shape_share_one_kernel_call():
    """Different anatomies with the same cell counts: one group (one kernel call), the
    union of their cord-segment patterns, each member equal to its single run."""
    from csfmodel.sweep._batch import assemble_chunk, parse_chunk

    params = {"patient.conus_fraction": [0.3, 0.7, 0.5],
              "patient.spinal_csf_volume": ["80 mL", "110 mL", "95 mL"]}
    sets, _ = sweep.scenario_sets(BASE, params)
    scs, _ = parse_chunk(sets, 0)
    grids = [make_grid(sc.anatomy, sc.simulation.resolution) for sc in scs]
    assert len({(g.n, g.n_cord) for g in grids}) == 1
    assert not np.array_equal(grids[0].segment_weights != 0, grids[1].segment_weights != 0)
    chunk = assemble_chunk(scs, ("cord_concentration",), tip=True)
    assert len(chunk.groups) == 1 and chunk.groups[0][1]["diag"].shape[0] == 3
    got = sweep.run_batch(BASE, params, variables=("cord_concentration", "brain_concentration"))
    for i, d in enumerate(sets):
        ref = simulate(d, solver="numba")
        for v in ("cord_concentration", "brain_concentration"):
            a, b = got[v].isel(scenario=i).values, ref[v].values
            assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b)), v


def test_patients_with_different_conus_levels_share_one_kernel_call():
    """Cords of different lengths (conus at T12, L1, L2): the cord blocks are padded to
    the longest with inert cells, one group, each member equal to its single run (1e-12
    of peak), and the padded arrays solve like the unpadded ones."""
    from csfmodel.sweep._batch import assemble_chunk, parse_chunk
    from csfmodel.sweep._observables import padded_schedule, padded_system

    params = {"patient.conus_level": ["T12", "L1", "L2"]}
    sets, _ = sweep.scenario_sets(BASE, params)
    scs, _ = parse_chunk(sets, 0)
    cords = {make_grid(sc.anatomy, sc.simulation.resolution).n_cord for sc in scs}
    assert len(cords) == 3
    chunk = assemble_chunk(scs, ("cord_concentration",))
    assert len(chunk.groups) == 1
    assert chunk.groups[0][1]["cord_diag"].shape == (3, max(cords))
    variables = ("cord_concentration", "brain_concentration", "plasma_concentration")
    got = sweep.run_batch(BASE, params, variables=variables)
    for i, d in enumerate(sets):
        ref = simulate(d, solver="numba")
        for v in variables:
            a, b = got[v].isel(scenario=i).values, ref[v].values
            assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b)), v
    # the padded system on its own: same real states, inert cells exactly zero
    from csfmodel.model import LinearSystem
    from csfmodel.solvers import SolverOptions, get_backend

    prep = prepare(sets[0])
    system = prep.model.system
    arrays = padded_system(system, system.n_cord + 7)
    padded = LinearSystem(n_spinal=system.n_spinal, n_cord=system.n_cord + 7, **arrays)
    sched = padded_schedule(prep.schedule, system, system.n_cord + 7)
    backend = get_backend("numba")
    t = np.linspace(0.0, 600.0, 61)
    opts = SolverOptions()
    y = backend.solve(system, prep.schedule, t, opts).states
    yp = backend.solve(padded, sched, t, opts).states
    sp = system.n_spatial
    assert np.all(yp[:, sp:sp + 7] == 0.0)
    np.testing.assert_allclose(np.delete(yp, np.s_[sp:sp + 7], axis=1), y, rtol=0,
                               atol=1e-12 * np.abs(y).max())


def test_schedules_built_together_are_the_schedules_built_alone():
    """build_schedules: rate sweeps share times and deposits, rates in one pass; each
    schedule equals build_schedule of its events bit for bit (and a table with other
    boluses gets its own times)."""
    from csfmodel.model import build_schedules
    from csfmodel.scenario import parse_scenario

    params = {"dose[0].rate": ["0.5 mg/day", "1 mg/day", "3 mg/day", "0.5 mg/day"],
              "dose[1].amount": ["0.05 mg", "0.05 mg", "0.05 mg", "0.1 mg"]}
    sets, _ = sweep.scenario_sets(BASE, params)
    scs = [parse_scenario(d) for d in sets]
    model = prepare(sets[0]).model
    t_end = scs[0].simulation.duration
    events = [expand(sc.doses, t_end) for sc in scs]
    got = build_schedules(model, events, t_end)
    assert got[0].jumps is got[1].jumps and got[3].jumps is not got[0].jumps
    for g, ev in zip(got, events):
        ref = build_schedule(model, ev, t_end)
        np.testing.assert_array_equal(g.times, ref.times)
        np.testing.assert_array_equal(g.jumps, ref.jumps)
        np.testing.assert_array_equal(g.rates, ref.rates)
    assert not np.array_equal(got[0].rates, got[2].rates)
